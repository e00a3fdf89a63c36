"""Run-time helpers shared by every stage: seeding, settings, TensorBoard, learning rate, accuracy."""

import json
import math
import os
import random

import numpy as np
import torch

from dataset.files import no_space_error, write_text
from options.settings import describe


class RunError(RuntimeError):
    """A run cannot go on for a reason the message gives (a diverging loss, a frozen weight that moved)."""


def seed_everything(seed):
    """Seed Python, NumPy and torch (all devices) with `seed`."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_settings(record, out_dir, name="settings.json"):
    """Print a run's resolved settings (a `to_dict` record) and write them as JSON to `out_dir/name`."""
    path = os.path.join(out_dir, name)
    write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"Resolved settings (saved to {path}):\n{describe(record)}", flush=True)


class _NullWriter:
    """Stands in for a SummaryWriter on ranks or runs that do not log."""

    def add_scalar(self, *args, **kwargs):
        pass

    def flush(self):
        pass

    def close(self):
        pass


def make_writer(out_dir, enabled=True):
    """A TensorBoard SummaryWriter logging to `out_dir`, or a no-op writer when disabled. A full disk met
    when it is made, flushed or closed is a NoSpaceError naming `out_dir`."""
    if not enabled or not out_dir:
        return _NullWriter()
    from torch.utils.tensorboard import SummaryWriter

    unchanged = "the files written so far are unchanged"

    class Writer(SummaryWriter):
        def flush(self):
            with no_space_error(out_dir, unchanged):
                super().flush()

        def close(self):
            with no_space_error(out_dir, unchanged):
                super().close()

    with no_space_error(out_dir, unchanged):
        os.makedirs(out_dir, exist_ok=True)
        return Writer(log_dir=out_dir)


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
