"""Checkpoint files: atomic writes, safe reads with clear errors, RNG state capture.

A checkpoint is `torch.save` of a dict. The published keys are 'epoch' (the next epoch),
'state_dict' and 'optimizer' (docs/published-behaviour.md §3.3); ours add 'arch' (the model's
constructor arguments), 'options' (the run's resolved settings) and 'rng' (Python, NumPy and torch
generator states) beside them, so released checkpoints and ours load through the same code.
"""
import os
import random

import numpy as np
import torch

from engine.runtime import atomic_output, plain


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or not what the caller needs."""


def save_checkpoint_atomic(obj, path):
    """`torch.save(obj)` to `path` through a temporary file and a rename (never half-written).

    A full disk raises engine.runtime.NoSpaceError naming `path` (torch writes through a Python
    file, so the system's error reaches us instead of torch's "enforce fail").
    """
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def check_same_run(path, recorded, current, may_change, paths=(), names=None):
    """Raise CheckpointError when resuming checkpoint `path` would continue another run.

    `recorded` (the checkpoint's settings) and `current` (this command's) are compared on every key
    both hold, except those in `may_change`; keys in `paths` compare as the files they name. The
    message names each differing setting (as `names[key]`, by default its flag) with both values.
    """
    names = names or {}

    def name(key):
        return names.get(key, "--" + key.replace("_", "-"))

    def same(key, a, b):
        if key in paths and isinstance(a, str) and isinstance(b, str) and a and b:
            return os.path.realpath(a) == os.path.realpath(b)
        return plain(a) == plain(b)

    differ = [f"{name(key)}: {recorded[key]!r} in the checkpoint, {current[key]!r} now"
              for key in sorted(set(recorded) & set(current) - set(may_change))
              if not same(key, recorded[key], current[key])]
    if differ:
        raise CheckpointError(f"--resume {path} belongs to another run: " + "; ".join(differ)
                              + f". Only these may change on resume: {', '.join(name(k) for k in may_change)}; "
                              "start a new run (another output folder, no --resume) to change the others")


def read_checkpoint(path):
    """Load a checkpoint dict with `torch.load(weights_only=True)` onto the CPU.

    Raises CheckpointError naming the file when it is missing, truncated, not a torch file, holds
    something other than a dict, or holds objects outside the weights-only allowlist.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        size = os.path.getsize(path)
        raise CheckpointError(
            f"checkpoint {path!r} ({size} bytes) could not be read as a torch checkpoint "
            f"(truncated, not a checkpoint, or holding non-tensor objects): {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {path!r}: expected a dict, found {type(obj).__name__}")
    return obj


def rng_state():
    """The current Python, NumPy and torch RNG states, in a form `weights_only` loading accepts."""
    np_state = np.random.get_state()
    state = {
        "python": repr(random.getstate()),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    """Restore RNG states captured by `rng_state`."""
    import ast

    py = ast.literal_eval(state["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["numpy"]
    np.random.set_state(
        ("MT19937", npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
