"""Helpers the tests of several packages share (imported; fixtures wrapping them are in conftest.py)."""

import os
import pickle

import numpy as np

from dataset.layouts import LAYOUT_FILE, NTU25, folder_record_text, get_layout

# The smallest pretraining that runs every part of the loop, for tests of the machinery.
TINY_PRETRAIN = (
    "--hidden-size 8 --num-layers 1 --contrast-k 32 --topk 16 -b 8 -j 0 --device cpu --contrast-dim 16".split()
)


def write_folder_record(folder, layout, num_class, dataset=None, protocol=None):
    """Write `folder/layout.json` as a converter does; returns its path."""
    path = os.path.join(folder, LAYOUT_FILE)
    os.makedirs(folder, exist_ok=True)
    with open(path, "w") as f:
        f.write(folder_record_text(layout, num_class, dataset, protocol))
    return path


def write_processed(folder, n=(16, 4), layout=NTU25, num_class=3, dataset=None, seed=0, frames=None, protocol=None):
    """A processed folder of random skeletons in `layout` (docs/published-behaviour.md §1.3): labels
    i % num_class; frame counts random in [30, 300) or `frames`; a layout.json record when `dataset` is
    given, with `protocol` in it (without one the folder is as the published tools write it)."""
    layout = get_layout(layout)
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for part, count in zip(("train", "val"), n):
        shape = (count, layout.channels, 300, layout.num_joints, layout.bodies)
        np.save(os.path.join(folder, f"{part}_data_joint.npy"), rng.standard_normal(shape).astype(np.float32))
        counts = rng.integers(30, 300, count) if frames is None else np.full(count, frames)
        np.save(os.path.join(folder, f"{part}_num_frame.npy"), counts.astype(np.int64))
        with open(os.path.join(folder, f"{part}_label.pkl"), "wb") as f:
            pickle.dump(([f"{part}{i:03d}" for i in range(count)], [i % num_class for i in range(count)]), f)
    if dataset is not None:
        write_folder_record(folder, layout, num_class, dataset, protocol)
    return str(folder)
