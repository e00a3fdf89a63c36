"""Action classification on top of CMD encoders (docs/published-behaviour.md §4, §6).

Linear evaluation (default): encoders frozen, only the classifiers trained — the published SGD probe,
or under the small-data preset a logistic regression fitted to convergence (`--probe`). Semi-supervised
(`--protocol cross_subject_semi|cross_view_semi --data-ratio R`) and transfer (`--finetune-dataset
pku_v2 --finetune`, or `--transfer`) fine-tune the whole network. `--view all` trains the joint,
motion and bone classifiers and also reports their fusion (3s-CMD). `--help` lists every flag.

    python action_classification.py --data-dir data/my_skeletons --view all \
        --pretrained checkpoints/mine/checkpoint_last.pth.tar
    python action_classification.py --finetune-dataset ntu60 --protocol cross_subject \
        --pretrained checkpoints/ntu60_xsub/checkpoint_0450.pth.tar --view all
"""

import sys

from engine.cli import main_guard
from engine.evaluate import prepare_evaluation, run_classification
from options.options_classification import parse_classification


def main(argv=None):
    parser, args = parse_classification(argv)
    return main_guard("action_classification.py", lambda: run_classification(*prepare_evaluation(parser, args)))


if __name__ == "__main__":
    sys.exit(main())
