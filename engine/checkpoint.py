"""Checkpoint files: atomic writes, safe reads with clear errors, RNG state capture.

A checkpoint is `torch.save` of a dict. The published keys are 'epoch' (the next epoch),
'state_dict' and 'optimizer' (SPEC §3.3); ours add 'arch' (the model's constructor arguments),
'options' (the run's resolved settings) and 'rng' (Python, NumPy and torch generator states) beside
them, so released checkpoints and ours load through the same code.
"""
import os
import random

import numpy as np
import torch

from engine.runtime import atomic_output


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or not what the caller needs."""


def save_checkpoint_atomic(obj, path):
    """`torch.save(obj)` to `path` through a temporary file and a rename (never half-written)."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


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
