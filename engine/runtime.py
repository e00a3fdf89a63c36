"""Run-time helpers shared by every entry point: seeding, device choice, settings, logging files.

Everything here is stage-agnostic; the training and evaluation loops build on it.
"""
import argparse
import contextlib
import json
import logging
import math
import os
import random
import tempfile

import numpy as np
import torch

log = logging.getLogger(__name__)


def seed_everything(seed):
    """Seed Python, NumPy and torch (all devices) with `seed`."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def resolve_device(name=None):
    """The torch device named by `name`; by default CUDA when available, else CPU."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    return device


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path in `path`'s folder; on success it is renamed to `path`, else removed.

    Whatever is written there appears at `path` whole or not at all.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(prefix="." + name + ".", suffix=".tmp" + os.path.splitext(name)[1], dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path, text):
    """Write `text` to `path` through a temporary file in the same folder and a rename."""
    with atomic_output(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def append_jsonl(path, record):
    """Append one JSON line to `path` (created with its folder if missing)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True, default=str) + "\n")


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def save_settings(settings, out_dir, name="settings.json", announce=True):
    """Print the resolved settings and write them as JSON to `out_dir/name`; returns them as a dict."""
    if isinstance(settings, argparse.Namespace):
        settings = vars(settings)
    resolved = _plain(dict(settings))
    text = json.dumps(resolved, indent=2, sort_keys=True)
    if announce:
        print("Resolved settings:\n" + text, flush=True)
    if out_dir:
        atomic_write_text(os.path.join(out_dir, name), text + "\n")
    return resolved


class _NullWriter:
    """Stands in for a SummaryWriter on ranks or runs that do not log."""

    def add_scalar(self, *args, **kwargs):
        pass

    def add_text(self, *args, **kwargs):
        pass

    def flush(self):
        pass

    def close(self):
        pass


def make_writer(out_dir, enabled=True):
    """A TensorBoard SummaryWriter logging to `out_dir`, or a no-op writer when disabled."""
    if not enabled or not out_dir:
        return _NullWriter()
    from torch.utils.tensorboard import SummaryWriter

    os.makedirs(out_dir, exist_ok=True)
    return SummaryWriter(log_dir=out_dir)


def adjust_learning_rate(optimizer, epoch, base_lr, schedule=(), cos=False, epochs=None):
    """Set and return the learning rate of `epoch` (0-based).

    Step schedule: base_lr × 0.1 for every milestone in `schedule` that `epoch` has reached.
    Cosine (`cos=True`): base_lr × ½(1 + cos(π · epoch / epochs)).
    """
    if cos:
        lr = base_lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    else:
        lr = base_lr * (0.1 ** sum(1 for milestone in schedule if epoch >= milestone))
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


@torch.no_grad()
def topk_correct(scores, target, ks=(1,)):
    """Percentage of rows of `scores` (N x C) whose target is among the k highest, for each k."""
    maxk = min(max(ks), scores.shape[1])
    pred = scores.topk(maxk, dim=1).indices  # N x maxk
    hit = pred.eq(target.view(-1, 1))  # N x maxk
    return [hit[:, : min(k, maxk)].any(dim=1).float().mean().item() * 100.0 for k in ks]
