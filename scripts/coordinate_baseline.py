"""A no-learning baseline: logistic regression on a processed folder's normalised coordinates.

    python scripts/coordinate_baseline.py --data-dir data/nw_ucla --results results/ucla.jsonl

Every sample becomes the input the evaluations see (the 0.95 centre crop resized to 64 frames, as
knn_eval.py and the linear probe's validation take it), flattened to one vector of
64 x joints x channels x bodies coordinates and standardised with the training set's statistics. A
multinomial logistic regression is fitted on the training part, its regularisation C chosen by
5-fold cross-validation on the training part alone, and scored on the validation part. The top-1
is appended to --results as one record (stage 'baseline', view 'joint', no checkpoint).
"""
import argparse
import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from dataset.layouts import read_folder_record  # noqa: E402
from dataset.processed import ProcessedDataError, load_splits  # noqa: E402
from engine.results import append_result, make_record  # noqa: E402
from engine.runtime import save_settings  # noqa: E402
from feeder.feeder_downstream import DownstreamFeeder  # noqa: E402

C_GRID = (0.0003, 0.001, 0.003, 0.01, 0.1)


def centre_crops(split):
    """N x (64 x V x C x M) float32: the validation-style input of every sample, flattened."""
    feeder = DownstreamFeeder(split, train=False)
    return np.stack([feeder[i][0].numpy().reshape(-1) for i in range(len(feeder))])


def fit_and_score(train, val):
    """Top-1 (percent) on `val` of a logistic regression fitted on `train`, and its C (the best mean
    accuracy of 5-fold cross-validation on `train`, the smaller C on a tie)."""
    x_train, x_val = centre_crops(train), centre_crops(val)

    def model(c):
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))

    scores = [cross_val_score(model(c), x_train, train.labels, cv=5).mean() for c in C_GRID]
    c = C_GRID[int(np.argmax(scores))]
    fitted = model(c).fit(x_train, train.labels)
    return float((fitted.predict(x_val) == val.labels).mean() * 100.0), c


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="processed folder")
    parser.add_argument("--results", required=True, help="JSON-lines file the result is appended to")
    parser.add_argument("--protocol", default="", help="protocol name recorded with the result")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        _, num_class, dataset = read_folder_record(args.data_dir)
        train, val = load_splits(args.data_dir, num_class=num_class)
    except (ProcessedDataError, ValueError) as exc:
        parser.exit(2, f"error: {exc}\n")
    top1, c = fit_and_score(train, val)
    settings = save_settings(dict(vars(args), C_grid=list(C_GRID), chosen_C=c, train_samples=len(train),
                                  val_samples=len(val)), None, announce=False)
    append_result(args.results, make_record("baseline", dataset or os.path.basename(args.data_dir), args.protocol,
                                            "joint", "top1", top1, None, settings, C=c))
    print(f"logistic regression on coordinates: top-1 {top1:.2f} (C={c:g}, chosen by 5-fold CV on the "
          f"{len(train)} training samples); appended to {args.results}")
    return top1


if __name__ == "__main__":
    main()
