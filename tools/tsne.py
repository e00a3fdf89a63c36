"""Pictures of exported features (knn_eval.py --save-features FILE.npz).

    python -m tools.tsne --features FILE.npz --out DIR [--part val] [--max-points 3000]

writes DIR/tsne_<part>.png (a 2-D t-SNE of the features, points coloured by class) and a TensorBoard
projector export in DIR/projector/<part> (view with `tensorboard --logdir DIR/projector`, tab Projector;
each part a run of its own, so that the second does not replace the first).
At most --max-points samples are drawn (a seeded random subset) to keep t-SNE fast.
"""

import argparse
import os
import sys
import zipfile

import numpy as np

from dataset.files import atomic_output, check_writable, file_in_the_way
from engine.runtime import make_writer


def load_features(path, part):
    """(features N x D float32, labels N int64, names N) of `part` ('train' or 'val') in an export."""
    try:
        with np.load(path, allow_pickle=False) as data:  # an .npy gives an array: no context manager, TypeError
            features, labels, names = (data[f"{part}_{kind}"] for kind in ("features", "labels", "names"))
    except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile) as exc:  # EOFError: empty
        raise ValueError(
            f"{path}: not a feature export with {part}_features/_labels/_names "
            f"(written by knn_eval.py --save-features): {exc}"
        ) from None
    n = len(features) if features.ndim else 0
    for name, array, ok, expected in (
        ("features", features, features.ndim == 2 and features.shape[1] and features.dtype.kind in "fiu", "N x D real"),
        ("labels", labels, labels.shape == (n,) and labels.dtype.kind in "iu", f"{n} integer"),
        ("names", names, names.shape == (n,), f"{n}"),
    ):
        if not ok:
            raise ValueError(
                f"{path}: {part}_{name}: expected {expected} values, found {array.dtype} of shape {array.shape}"
            )
    features, labels, names = features.astype(np.float32), labels.astype(np.int64), [str(n) for n in names]
    bad = np.flatnonzero(~np.isfinite(features).all(axis=1))
    if bad.size:
        raise ValueError(
            f"{path}: {part}_features hold NaN or inf in {bad.size} of {len(features)} rows, "
            f"the first {names[bad[0]]!r}"
        )
    return features, labels, names


MIN_POINTS = 3  # t-SNE's perplexity (at least 2 here) must be below the number of samples


def subsample(count, max_points, seed):
    """Sorted indices of at most `max_points` of `count` items, chosen with `seed`."""
    if count <= max_points:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size=max_points, replace=False))


def tsne_plot(features, labels, path, seed=0, title=""):
    """Save a PNG of the 2-D t-SNE embedding of `features` (N x D) coloured by `labels`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3.0)))
    embedded = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        features
    )  # N x 2
    classes = np.unique(labels)
    colours = plt.get_cmap("turbo")(np.linspace(0.0, 1.0, max(len(classes), 2)))
    fig, ax = plt.subplots(figsize=(8, 8), dpi=120)
    for colour, label in zip(colours, classes):
        chosen = labels == label
        ax.scatter(embedded[chosen, 0], embedded[chosen, 1], s=6, color=colour, label=str(label))
    if len(classes) <= 20:
        ax.legend(title="class", markerscale=2, fontsize=7, loc="best")
    ax.set_title(title or f"t-SNE of {len(features)} features, {len(classes)} classes")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    with atomic_output(path) as tmp:  # the same extension, so the same image format
        fig.savefig(tmp)
    plt.close(fig)
    return embedded


def projector_export(features, labels, names, folder, tag="features"):
    """Write a TensorBoard projector export (tensors, metadata with name and class) to `folder`."""
    import torch

    writer = make_writer(folder)
    metadata = [[name, str(label)] for name, label in zip(names, labels)]
    writer.add_embedding(torch.from_numpy(features), metadata=metadata, metadata_header=["name", "class"], tag=tag)
    writer.close()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.tsne", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--features", required=True, type=os.path.expanduser, help="a .npz written by knn_eval.py --save-features"
    )
    parser.add_argument("--out", required=True, type=os.path.expanduser, help="output folder")
    parser.add_argument("--part", default="val", choices=["train", "val"])
    parser.add_argument("--max-points", default=3000, type=int)
    parser.add_argument("--seed", default=0, type=int)
    args = parser.parse_args(argv)
    if not 0 <= args.seed < 2**32:  # what scikit-learn's t-SNE takes
        parser.error(f"--seed must be from 0 to {2**32 - 1}, found {args.seed}")
    if args.max_points < MIN_POINTS:
        parser.error(f"--max-points must be at least {MIN_POINTS}, found {args.max_points}")
    blocking = file_in_the_way(os.path.abspath(args.out))  # checked first: nothing computed for a plot with no place
    if blocking:
        parser.error(f"--out {args.out}: {blocking} is a file, not a folder")
    png, projector = os.path.join(args.out, f"tsne_{args.part}.png"), os.path.join(args.out, "projector", args.part)
    try:  # a bad features file or an output that cannot be written: exit status 1, before the t-SNE
        features, labels, names = load_features(args.features, args.part)
        if len(features) < MIN_POINTS:
            raise ValueError(
                f"{args.features}: t-SNE needs {MIN_POINTS} samples or more; its {args.part} part has {len(features)}"
            )
        chosen = subsample(len(features), args.max_points, args.seed)
        features, labels, names = features[chosen], labels[chosen], [names[i] for i in chosen]
        if not np.ptp(features, axis=0).any():  # t-SNE's PCA start divides by their spread: a segmentation fault
            raise ValueError(
                f"{args.features}: the {len(features)} {args.part} features drawn are one and the same vector "
                "(a collapsed encoder?): t-SNE has nothing to spread out"
            )
        check_writable(png, "--out")
    except (ValueError, OSError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    try:
        tsne_plot(features, labels, png, args.seed, f"{os.path.basename(args.features)} ({args.part})")
        projector_export(features, labels, names, projector)
    except OSError as exc:  # the disk filled or the folder went away during the t-SNE
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {png} and {projector}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
