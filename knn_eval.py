"""kNN evaluation of frozen CMD encoder features (docs/published-behaviour.md §4).

Features are the frozen 2H-d encoder outputs (eval mode, no gradient) of the chosen view ('all'
averages the three encoders' features). As in the published kNN, both the training and the
validation features come from the centre crop of ratio 0.95 (`--train-crop random` draws the
training side from the training feeder's random crop instead). On CUDA the GRUs run in full float32
(TF32 off). Each validation sample takes the label of its nearest training sample by cosine similarity
(`--knn-neighbours k`: majority vote, ties to the class with the nearest neighbour).
`--save-features FILE.npz` keeps both feature sets with labels and names.

    python knn_eval.py --data-dir data/my_skeletons --pretrained checkpoints/mine/checkpoint_last.pth.tar
    python knn_eval.py --finetune-dataset ntu60 --protocol cross_subject \
        --pretrained checkpoints/ntu60_xsub/checkpoint_0450.pth.tar --save-features runs/ntu60_xsub.npz
"""

import sys

from engine.cli import main_guard
from engine.evaluate import run_knn
from engine.pretrained import downstream_model
from engine.runtime import seed_everything
from options.options_classification import choose_preset, eval_settings, open_data, parse_knn


def run(parser, args):
    seed_everything(args.seed)  # a random encoder's weights, as every draw after, follow --seed
    train, val = open_data(parser, args)
    preset = choose_preset(parser, args, train)
    model, info = downstream_model(args.pretrained, train.num_class, train.layout, args.hidden_size, args.num_layers)
    return run_knn(eval_settings(parser, args, preset, train, info), model, train, val)


def main(argv=None):
    parser, args = parse_knn(argv)
    return main_guard("knn_eval.py", run, parser, args)


if __name__ == "__main__":
    sys.exit(main())
