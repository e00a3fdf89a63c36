"""Run-time helpers shared by every entry point: seeding, device choice, settings, logging files.

Everything here is stage-agnostic; the training and evaluation loops build on it.
"""
import argparse
import contextlib
import errno
import fcntl
import json
import logging
import math
import os
import random
import re
import secrets
import socket
import stat
import time

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


# Temporary files of `atomic_output`: ".<name>.<pid>-<host>-<8 random>.tmp<extension of name>" beside
# `<name>`, so that the writer is known and tools that go by the extension (np.savez) keep working.
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-(?P<host>[A-Za-z0-9-]*)-[a-z0-9]{8}\.tmp(?P<ext>\.[^.]*)?$")
# The mkstemp names ".<name>.<8 random>.tmp<ext>" earlier versions wrote (no writer recorded).
_OLD_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp(?P<ext>\.[^.]*)?$")
# A temporary file whose writer cannot be checked (another host, or an old name) is stale once it
# has not been written to for this long.
STALE_AFTER_S = 3600


class NoSpaceError(OSError):
    """A write failed because the file system is full or over quota; the message names the path."""

    def __init__(self, message):
        super().__init__(message)
        self.errno = errno.ENOSPC


def _out_of_space(exc):
    """Whether `exc`, or an error it was raised from or while handling, says the disk is full."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _host():
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32]


def temp_path(path):
    """A fresh temporary path beside `path` in the naming that `remove_stale_temporaries` recognises."""
    name = os.path.basename(path)
    token = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8))
    temp = f".{name}.{os.getpid()}-{_host()}-{token}.tmp{os.path.splitext(name)[1]}"
    return os.path.join(os.path.dirname(os.path.abspath(path)), temp)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _is_stale(name, info):
    """Whether `name` (lstat `info`) is a temporary file of ours whose writer is gone.

    Written on this host: stale when its process no longer runs. Written on another host, or under
    the old naming: stale when untouched for STALE_AFTER_S (a live writer keeps writing to it).
    """
    if not stat.S_ISREG(info.st_mode):
        return False
    match = _TEMP_NAME.match(name) or _OLD_TEMP_NAME.match(name)
    if match is None or (match["ext"] or "") != os.path.splitext(match["name"])[1]:
        return False
    if match.re is _TEMP_NAME and match["host"] == _host():
        return not _pid_alive(int(match["pid"]))
    return time.time() - info.st_mtime > STALE_AFTER_S


def remove_stale_temporaries(folder):
    """Delete the temporary files that interrupted writes of ours left in `folder`; returns their paths.

    Only names made by `temp_path` (and by earlier versions) are considered, and a file whose
    writer may still be running is kept (see `_is_stale`).
    """
    removed = []
    if not os.path.isdir(folder):
        return removed
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        try:
            info = os.lstat(path)
            if not _is_stale(name, info):
                continue
            os.unlink(path)
        except FileNotFoundError:  # removed meanwhile by another cleaner
            continue
        log.warning("removed %s (%d bytes), left by an interrupted write", path, info.st_size)
        removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path in `path`'s folder; on success it is renamed to `path`, else removed.

    Whatever is written there appears at `path` whole or not at all, with the permissions the
    user's umask gives new files. Stale temporary files of interrupted writes in the folder are
    removed first. A full disk raises NoSpaceError naming `path`; files written earlier are untouched.
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        remove_stale_temporaries(folder)
        candidate = temp_path(path)
        os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # mode 0o666 & ~umask, as open()
        tmp = candidate
        yield tmp
        os.replace(tmp, path)
    except Exception as exc:  # torch reports a failed write as a RuntimeError raised while handling it
        if _out_of_space(exc):
            raise NoSpaceError(f"no space left on {path}: its file system is full; the partial file was "
                               f"removed and files written earlier are unchanged") from exc
        raise
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)


def atomic_write_text(path, text):
    """Write `text` to `path` through a temporary file in the same folder and a rename."""
    with atomic_output(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def json_line(record):
    """`record` as one line of a JSON-lines file (keys sorted, other objects as their str)."""
    return json.dumps(record, sort_keys=True, default=str) + "\n"


def append_jsonl(path, record):
    """Append `record` as one JSON line to `path` (created with its folder if missing).

    Appenders hold an exclusive lock on the file, so lines never interleave. A line always starts
    a line of its own: after a fragment an interrupted append left, a newline is written first. A
    full disk raises NoSpaceError naming `path`, with the file cut back to what it held before.
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as exc:
        if _out_of_space(exc):
            raise NoSpaceError(f"no space left on {path}: the record was not appended") from exc
        raise
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: the line is still one write of its own
            pass
        size = os.fstat(fd).st_size
        data = json_line(record).encode()
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        try:
            while data:
                data = data[os.write(fd, data):]
        except OSError as exc:
            os.ftruncate(fd, size)
            if _out_of_space(exc):
                raise NoSpaceError(f"no space left on {path}: the record was not appended and the file "
                                   f"is as it was before") from exc
            raise
    finally:
        os.close(fd)


def plain(value):
    """`value` with tuples as lists, dict keys as strings and other objects as their str (JSON-ready)."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def save_settings(settings, out_dir, name="settings.json", announce=True):
    """Print the resolved settings and write them as JSON to `out_dir/name`; returns them as a dict."""
    if isinstance(settings, argparse.Namespace):
        settings = vars(settings)
    resolved = plain(dict(settings))
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
