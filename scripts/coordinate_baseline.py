"""No-learning baselines on a processed folder's normalised coordinates: logistic regression and 1-NN.

    python -m scripts.coordinate_baseline --data-dir data/nw_ucla --results results/ucla.jsonl

Every sample becomes the published evaluations' input (the 0.95 centre crop resized to 64 frames;
the small-data preset's evaluations resize to its 16 or 32 view frames, which on MSR-Action3D moved
these baselines by about a point), flattened to one vector of 64 x channels x joints x bodies
coordinates. The logistic regression is the
linear probe of engine/probe.py (standardised inputs, C chosen by stratified cross-validation on the
training part alone, from a grid reaching stronger regularisation, as thousands of coordinates need);
the 1-NN is the kNN evaluation of engine/knn.py (cosine similarity). Two records are appended to
--results: stage 'baseline', view 'coordinates_logistic' and 'coordinates_1nn', no checkpoint.
"""

import argparse
import os
import sys

import numpy as np
import torch

from dataset.catalog import PROTOCOL_FOLDERS
from dataset.files import check_writable
from dataset.processed import ProcessedDataError, fingerprint, load_splits
from engine.evaluate import check_classes
from engine.knn import knn_top1
from engine.probe import fit_stream
from engine.results import append_results, new_record
from feeder.feeder_downstream import DownstreamFeeder
from options.parsing import check_output_path, print_import_warnings, resolve_protocol
from options.presets import DEFAULT_DATASET

C_GRID = (0.0003, 0.001, 0.003, 0.01, 0.1)


def centre_crops(split):
    """N x (C x 64 x V x M) float32: the validation-style input of every sample, flattened."""
    feeder = DownstreamFeeder(split, train=False)
    return np.stack([feeder[i][0].numpy().reshape(-1) for i in range(len(feeder))])


def baselines(train, val, seed=0):
    """{'logistic': top-1, 'C': the chosen C, '1nn': top-1} (percent) of the two baselines."""
    x_train, x_val = centre_crops(train), centre_crops(val)
    model, c = fit_stream(x_train, train.labels, seed, C_GRID)
    logistic = float((model.predict(x_val) == val.labels).mean() * 100.0)
    nearest = knn_top1(
        torch.from_numpy(x_train), torch.from_numpy(train.labels), torch.from_numpy(x_val), torch.from_numpy(val.labels)
    )
    return {"logistic": logistic, "C": c, "1nn": nearest}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="processed folder")
    parser.add_argument("--results", required=True, help="JSON-lines file the results are appended to")
    parser.add_argument(
        "--protocol",
        default=None,
        choices=PROTOCOL_FOLDERS,
        help="protocol recorded with the results (default: the folder's record, else the benchmark its name "
        "stands for, else cross_subject, as the entry points record it)",
    )
    args = parser.parse_args(argv)
    if not args.data_dir:  # an unset shell variable: a usage error, as the entry points make it
        parser.error("--data-dir is empty; name a processed folder")
    check_output_path(parser, "results", args.results)
    torch.set_num_threads(1)
    try:
        check_writable(args.results, "--results")  # before the fits, whose result would be lost
        train, val = load_splits(args.data_dir)
        check_classes(train.folder, train.labels)
    except (ProcessedDataError, ValueError, OSError) as exc:
        parser.exit(1, f"error: {exc}\n")
    print_import_warnings(train)  # as every run on the folder repeats them (a wrong joint order, ...)
    protocol = resolve_protocol(parser, args.protocol, train)  # as the entry points record it
    found = baselines(train, val)
    dataset = train.dataset or DEFAULT_DATASET  # a folder without a record: as the entry points record it
    common = dict(  # the folder and its parts as the encoders' records name them (options.parsing.data_settings)
        train_samples=len(train),
        val_samples=len(val),
        data_dir=os.path.abspath(args.data_dir),
        fingerprint=fingerprint(train.folder, train.part),
        val_fingerprint=fingerprint(val.folder, val.part),
    )
    try:
        append_results(
            args.results,
            [
                new_record(
                    "baseline",
                    dataset,
                    protocol,
                    "coordinates_logistic",
                    found["logistic"],
                    C=found["C"],
                    C_grid=list(C_GRID),
                    **common,
                ),
                new_record("baseline", dataset, protocol, "coordinates_1nn", found["1nn"], **common),
            ],
        )
    except OSError as exc:
        parser.exit(1, f"error: {exc}\n")
    chosen = "by cross-validation on" if found["C"] in C_GRID else "scikit-learn's default: no fold could be fitted on"
    print(
        f"coordinates: logistic regression top-1 {found['logistic']:.2f} (C={found['C']:g}, {chosen} "
        f"the {len(train)} training samples), 1-NN top-1 {found['1nn']:.2f}; appended to {args.results}"
    )
    return found


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
