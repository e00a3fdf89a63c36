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
from engine.evaluate import run_classification
from engine.pretrained import downstream_model
from engine.runtime import seed_everything
from options.options_classification import choose_preset, eval_settings, open_data, parse_classification


def run(parser, args):
    seed_everything(args.seed)  # a random encoder's weights, as every draw after, follow --seed
    train, val = open_data(parser, args)
    preset = choose_preset(parser, args, train)
    model, info = downstream_model(args.pretrained, train.num_class, train.layout, args.hidden_size, args.num_layers)
    return run_classification(eval_settings(parser, args, preset, train, info), model, train, val)


def main(argv=None):
    parser, args = parse_classification(argv)
    return main_guard("action_classification.py", run, parser, args)


if __name__ == "__main__":
    sys.exit(main())
