"""kNN evaluation of frozen CMD encoder features.

Features are the frozen 2048-d encoder outputs (eval mode, no gradient) of the chosen view ('all'
averages the three encoders' features, as MoCo(pretrain=False) does). As in the published kNN, both
the training and the validation features come from the centre crop of ratio 0.95 resized to 64
frames (`--train-crop random` draws the training side from the training feeder's random crop
instead). On CUDA the GRUs run in full float32 (TF32 off), so exported features agree with a CPU
computation to float32 rounding. Each validation sample takes the label of its nearest training
sample by cosine similarity (`--knn-neighbours k`: majority vote, ties to the class with the nearest
neighbour). `--save-features FILE.npz` keeps both feature sets with labels and names.

    python knn_eval.py --finetune-dataset ntu60 --protocol cross_subject \
        --pretrained checkpoints/ntu60_xsub/checkpoint_0450.pth.tar --save-features runs/ntu60_xsub.npz
"""
import sys

import numpy as np
import torch

from dataset.layouts import LayoutError
from dataset.processed import ProcessedDataError
from engine.checkpoint import CheckpointError
from engine.evaluate import extract_features, make_loader, setup_downstream
from engine.knn import knn_top1
from engine.results import append_result, make_record
from engine.runtime import NoSpaceError, atomic_output, save_settings
from feeder.feeder_downstream import DownstreamFeeder
from options.options_classification import parse_knn


def save_features(path, view, checkpoint, train, val):
    """Write train/val features (N x D float32), labels (N int64) and sample names to `path` (.npz)."""
    with atomic_output(path) as tmp:
        np.savez(tmp, view=np.array(view), checkpoint=np.array(checkpoint or ""),
                 train_features=train[0], train_labels=train[1], train_names=np.array(train[2]),
                 val_features=val[0], val_labels=val[1], val_names=np.array(val[2]))


def main(argv=None):
    parser, args = parse_knn(argv)
    try:
        device, folder, train_split, val_split, model, info = setup_downstream(args)
    except (ProcessedDataError, LayoutError, CheckpointError) as exc:
        parser.exit(2, f"error: {exc}\n")
    if args.knn_neighbours > len(train_split):
        parser.error(f"--knn-neighbours {args.knn_neighbours} is larger than the training set of {folder} "
                     f"({len(train_split)} samples)")
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False  # full float32 GRUs: exported features match the CPU's
    train_set = DownstreamFeeder(train_split, train=args.train_crop == "random", seed=args.seed)
    val_set = DownstreamFeeder(val_split, train=False)

    model.to(device)
    settings = save_settings(dict(vars(args), data_folder=folder, train_samples=len(train_set),
                                  val_samples=len(val_set), device=str(device), checkpoint_info=info),
                             args.checkpoint_path)

    features = {}
    for name, dataset in (("train", train_set), ("val", val_set)):
        loader = make_loader(dataset, args.batch_size, args.workers, False, args.seed, device)
        feats, labels, indices = extract_features(model, loader, args.view, device)  # N x 2H, N, N
        features[name] = (feats, labels, [dataset.split.names[int(i)] for i in indices])
    try:
        if args.save_features:
            save_features(args.save_features, args.view, args.pretrained,
                          *[(f.numpy(), l.numpy(), n) for f, l, n in (features["train"], features["val"])])
            print(f"features written to {args.save_features}")
        top1 = knn_top1(features["train"][0], features["train"][1], features["val"][0], features["val"][1],
                        k=args.knn_neighbours, chunk_size=args.chunk_size, device=device)
        append_result(args.results, make_record("knn", args.dataset_name, args.protocol, args.view, "top1",
                                                top1, args.pretrained or None, settings, seed=args.seed,
                                                k=args.knn_neighbours, pretrain_dataset=args.pretrain_dataset,
                                                run=args.checkpoint_path))
    except (ValueError, NoSpaceError) as exc:  # non-finite features, a full disk: nothing recorded
        parser.exit(1, f"error: {exc}\n")
    print(f"kNN (k={args.knn_neighbours}) {args.dataset_name} {args.protocol} {args.view}: "
          f"top-1 {top1:.2f}; results appended to {args.results}")
    return top1


if __name__ == "__main__":
    main(sys.argv[1:])
