"""CMD pretraining: three-modality MoCo with cross-modal mutual distillation (docs/published-behaviour.md §3.2, §6).

    python pretrain_cmd.py --data-dir data/my_skeletons --checkpoint-path checkpoints/mine
    python pretrain_cmd.py --pre-dataset ntu60 --protocol cross_subject --checkpoint-path checkpoints/ntu60_xsub
    torchrun --nproc_per_node 4 pretrain_cmd.py ...      (one process per GPU)

Defaults come from the preset the data folder implies (options/presets.py); flags given win.
"""

import sys

from engine.cli import main_guard
from engine.pretrain import run_pretraining
from options.options_pretraining import parse_args, resolve


def main(argv=None):
    parser, args = parse_args(argv)
    return main_guard("pretrain_cmd.py", lambda: run_pretraining(*resolve(parser, args)))


if __name__ == "__main__":
    sys.exit(main())
