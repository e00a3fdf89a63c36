"""CMD pretraining: three-modality MoCo with cross-modal mutual distillation (docs/published-behaviour.md §3.2, §6).

    python pretrain_cmd.py --pre-dataset ntu60 --protocol cross_subject --checkpoint-path ./checkpoints/x
    torchrun --nproc_per_node 4 pretrain_cmd.py ...      (one process per GPU)

Defaults are the published settings of the chosen dataset (options/presets.py); flags given win.
"""
import logging
import sys

from dataset.processed import ProcessedDataError
from engine.checkpoint import CheckpointError
from engine.pretrain import NonFiniteLossError, SettingsError, run_pretraining
from engine.runtime import NoSpaceError
from options.options_pretraining import parse_args


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        run_pretraining(args)
    except (ProcessedDataError, CheckpointError, SettingsError, NonFiniteLossError, NoSpaceError) as exc:
        print(f"pretrain_cmd.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
