"""Shared test set-up: torch on few threads (2-core CI), and the fixtures several packages' tests use.

Tests are arranged by the package they check (tests/<package>/); end-to-end runs of the entry points
and scripts are marked `slow` (`python -m pytest -m "not slow" tests` leaves them out).
"""

import hashlib
import os
import pickle

import numpy as np
import pytest
import torch

from dataset.layouts import NTU25, get_layout, write_folder_record

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest, and steadiest on a shared 2-core machine, on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_processed(folder, n=(16, 4), layout=NTU25, num_class=3, dataset=None, seed=0, frames=None):
    """A processed folder of random skeletons in `layout` (docs/published-behaviour.md §1.3): labels
    i % num_class; frame counts random in [30, 300) or `frames`; a layout.json record when `dataset` is
    given (without one the folder is as the published tools write it)."""
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
        write_folder_record(folder, layout, num_class, dataset)
    return str(folder)


@pytest.fixture(scope="session")
def processed():
    """`write_processed`, for tests that need a processed folder."""
    return write_processed


@pytest.fixture(scope="session")
def sha256():
    """The SHA-256 hex digest of a file's bytes."""

    def digest(path):
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    return digest
