"""kNN evaluation of frozen CMD encoder features (docs/published-behaviour.md §4).

Features are the frozen 2H-d encoder outputs (eval mode, no gradient) of the chosen view ('all'
averages the three encoders' features). As in the published kNN, both the training and the
validation features come from the centre crop of ratio 0.95 (`--train-crop random` draws the
training side from the training feeder's random crop instead). On CUDA the GRUs run in full float32
(TF32 off). Each validation sample takes the label of its nearest training sample by cosine similarity
(`--knn-neighbours k`: majority vote, ties to the smallest label, as scikit-learn's).
`--save-features FILE.npz` keeps both feature sets with labels and names (it replaces only an earlier
export).

    python knn_eval.py --data-dir data/my_skeletons --pretrained checkpoints/mine/checkpoint_last.pth.tar
    python knn_eval.py --finetune-dataset ntu60 --protocol cross_subject \
        --pretrained checkpoints/ntu60_xsub/checkpoint_0450.pth.tar --save-features runs/ntu60_xsub.npz
"""

import sys

from engine.cli import main_guard
from engine.evaluate import prepare_evaluation, run_knn
from options.options_classification import parse_knn


def main(argv=None):
    parser, args = parse_knn(argv)
    return main_guard("knn_eval.py", lambda: run_knn(*prepare_evaluation(parser, args)))


if __name__ == "__main__":
    sys.exit(main())
