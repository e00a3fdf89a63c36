"""Fixtures the converter tests share: hand-made NTU RGB+D raw files and a snapshot of a folder's files."""

import os
from types import SimpleNamespace

import numpy as np
import pytest

from data_gen import ntu_gendata
from dataset.files import CLAIM_FILE


def _joint_line(x, y, z):
    return f"{x} {y} {z} 250.1 200.2 960.3 540.4 0.9 0.1 0.2 0.3 2"


def _skeleton_text(frames):
    """NTU file text (CRLF) for frames = list of lists of bodies, each body a 25 x 3 array."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for k, body in enumerate(bodies):
            lines.append(f"7205759403793{k} 0 1 1 1 1 0 0.01 -0.02 2")
            lines.append("25")
            lines.extend(_joint_line(*p) for p in body)
    return "\r\n".join(lines) + "\r\n"


def _body(offset, spread=1.0, seed=0):
    """A 25 x 3 body: distinct joint positions around ``offset``."""
    rng = np.random.default_rng(seed)
    return np.round(np.asarray(offset) + spread * rng.uniform(-0.5, 0.5, size=(25, 3)), 4)


def _write(folder, name, frames):
    """Write the NTU file ``folder/name`` holding ``frames`` (see `_skeleton_text`); returns its path."""
    path = os.path.join(folder, name)
    with open(path, "w", newline="") as f:
        f.write(_skeleton_text(frames))
    return path


def _raw_set(folder):
    """A small raw folder with awkward cases; returns the file names written."""
    os.makedirs(folder, exist_ok=True)
    walk = lambda n, seed: [[_body([0.1 * t, 0, 3], seed=seed + t)] for t in range(n)]  # noqa: E731
    _write(folder, "S001C002P001R001A003.skeleton", walk(20, 0))
    _write(folder, "S001C001P003R002A001.skeleton", [[]] * 3 + walk(10, 50) + [[]] * 4)  # missing ends
    _write(
        folder,
        "S002C003P002R001A051.skeleton",
        [
            [_body([0, 0, 3], seed=t), _body([1, 0, 3], spread=0.3, seed=90 + t), _body([2, 0, 3], 0.01)]
            for t in range(12)
        ],
    )
    _write(folder, "S001C001P001R001A002.skeleton", walk(310, 200))  # longer than 300
    return sorted(os.listdir(folder))


def _run(raw, out, *extra):
    """ntu_gendata on ``raw`` into ``out`` as ntu60, one worker, no progress bar, then ``extra`` flags."""
    ntu_gendata.main(
        ["--data-path", raw, "--out-folder", out, "--dataset", "ntu60", "--workers", "1", "--no-progress", *extra]
    )


@pytest.fixture(scope="session")
def ntu():
    """NTU RGB+D raw-file helpers: ``joint_line(x, y, z)``, ``skeleton_text(frames)``,
    ``body(offset, spread, seed)``, ``write(folder, name, frames)``, ``raw_set(folder)`` (four files with
    awkward cases) and ``run(raw, out, *flags)`` (ntu_gendata.main as ntu60 on one worker)."""
    return SimpleNamespace(
        joint_line=_joint_line, skeleton_text=_skeleton_text, body=_body, write=_write, raw_set=_raw_set, run=_run
    )


def _tree(folder):
    """{relative path: bytes} of every file under ``folder``; the claim file (``.claim``, which names the
    last process that claimed the folder) only by its presence, its content being None."""
    return {
        os.path.relpath(os.path.join(d, n), folder): None if n == CLAIM_FILE else open(os.path.join(d, n), "rb").read()
        for d, _, files in os.walk(folder)
        for n in files
    }


@pytest.fixture(scope="session")
def tree():
    """A snapshot of a folder's files: {relative path: bytes} of every file under it, the ``.claim`` file
    only by its presence. Comparing two snapshots shows changed outputs and stray temporary files."""
    return _tree
