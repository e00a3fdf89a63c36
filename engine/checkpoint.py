"""Checkpoint files: atomic writes, safe reads with clear errors, RNG state, state-dict checks.

A checkpoint is `torch.save` of a dict. The published keys are 'epoch' (the next epoch), 'state_dict'
and 'optimizer' (docs/published-behaviour.md §3.3); ours add 'settings' (the run's settings record,
options.settings), 'rng' (Python, NumPy and torch generator states) and, per stage, 'log', 'best' or
'scaler', so released checkpoints and ours load through the same code. Checkpoints of earlier
versions of this code hold 'options' (flat settings) and 'arch' instead of 'settings'; they load too.
"""

import ast
import contextlib
import os
import random
import warnings

import numpy as np
import torch

from dataset.files import atomic_output, file_fingerprint, no_space_error


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or not what the caller needs."""


def save_checkpoint(obj, path, *more):
    """`torch.save(obj)` to `path`, and to each path of `more`, through temporary files renamed in the
    given order once all are whole: never half-written, and a failure in any write (a full disk raises
    dataset.files.NoSpaceError naming the file) changes none of them."""
    paths = (path, *more)
    with contextlib.ExitStack() as renames:  # entered last-first, so renamed (on leaving) first-first
        temps = [renames.enter_context(atomic_output(p)) for p in reversed(paths)][::-1]
        for tmp, target in zip(temps, paths):
            with no_space_error(target), open(tmp, "wb") as f:
                torch.save(obj, f)


def evaluation_keys(checkpoint):
    """The keys that make `checkpoint` an evaluation's: ours keep 'best', the published evaluation's
    'best_acc1' (its encoders were probed or fine-tuned with labels)."""
    return [key for key in ("best", "best_acc1") if key in checkpoint]


def read_checkpoint(path, need=("state_dict",), fingerprint=False):
    """The checkpoint dict at `path`, loaded with `torch.load(weights_only=True)` onto the CPU; with
    `fingerprint`, (dict, dataset.files.file_fingerprint of the bytes loaded), read through one open file
    so that a checkpoint a running pretraining renames over the path meanwhile is not mixed in.

    Raises CheckpointError naming the file when it is missing, truncated, not a torch file, holds
    something other than a dict or objects outside the weights-only allowlist, or lacks a key of `need`.
    """
    if os.path.isdir(path):
        found = sorted(name for name in os.listdir(path) if name.endswith((".pth.tar", ".pth", ".pt")))
        raise CheckpointError(
            f"checkpoint {path} is a folder; give a checkpoint file in it"
            + (f" ({', '.join(found[-3:])})" if found else " (it holds none)")
        )
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        with open(path, "rb") as f, warnings.catch_warnings():
            # a plain pickle: torch warns of its protocol before it fails (or loads it), two lines of noise
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(f, map_location="cpu", weights_only=True)
            identity = file_fingerprint(f) if fingerprint else None
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(
            f"checkpoint {path} ({os.path.getsize(path)} bytes) could not be read as a torch "
            f"checkpoint (truncated, not a checkpoint, or holding non-tensor objects): {_load_reason(exc)}"
        ) from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {path}: expected a dict, found {type(obj).__name__}")
    missing = [key for key in need if key not in obj]
    if missing:
        raise CheckpointError(
            f"checkpoint {path}: no {', '.join(map(repr, missing))} entry; its keys are {short_list(map(str, obj))}"
        )
    return (obj, identity) if fingerprint else obj


def _load_reason(exc):
    """One line of why torch.load failed: a weights-only refusal's own reason, without torch's advice to
    load with weights_only=False (which would run whatever code the file holds)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def recorded_settings(ckpt):
    """The settings record a checkpoint of ours holds (older ones: their flat 'options', or an older
    linear evaluation's 'run'), else None."""
    for key in ("settings", "options", "run"):
        if isinstance(ckpt.get(key), dict):
            return ckpt[key]
    return None


def short_list(keys, limit=8):
    """'a, b, c … and N more' of sorted `keys`, for messages."""
    keys = sorted(keys)
    more = f" … and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def strip_module_prefix(state_dict):
    """`state_dict` without the `module.` prefix DistributedDataParallel adds to every key."""
    if state_dict and all(key.startswith("module.") for key in state_dict):
        return {key[len("module.") :]: value for key, value in state_dict.items()}
    return state_dict


def check_fits(path, state, expected, may_miss=frozenset()):
    """Raise CheckpointError naming `path` and the keys unless the tensors of `state` have exactly the
    names (but `may_miss`) and shapes of the `expected` state dict, and hold finite numbers only (a
    NaN weight would surface minutes later as a probe's error that names no checkpoint)."""
    missing = set(expected) - set(state) - set(may_miss)
    unexpected = set(state) - set(expected)
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in set(state) & set(expected)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = [
        f"{what} {short_list(keys)}"
        for what, keys in (("missing", missing), ("unexpected", unexpected), ("other shapes", wrong))
        if keys
    ]
    if problems:
        raise CheckpointError(f"checkpoint {path} does not fit the model: " + "; ".join(problems))
    not_finite = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if not_finite:
        raise CheckpointError(f"checkpoint {path} holds NaN or inf in {short_list(not_finite)}")


# Within one encoder the published BIGRU registers the GRU, then the head, then the input BatchNorm
# (moco/GRU.py); ours registers the BatchNorm first. An SGD state dict lists its momentum buffers by
# parameter position, so a published optimizer state is put in our order by these ranks.
_PUBLISHED_RANK = {"encoder": 0, "fc": 1, "input_norm": 2}


def published_order(names):
    """Positions of the parameter `names` (ours, in our order) in the order the published modules
    register them: top-level modules as they come, within one the GRU, the head, the BatchNorm."""
    first = {}
    for i, name in enumerate(names):
        first.setdefault(name.split(".")[0], i)

    def key(i):
        parts = names[i].split(".")
        return first[parts[0]], _PUBLISHED_RANK.get(parts[1] if len(parts) > 1 else "", 0), i

    return sorted(range(len(names)), key=key)


def optimizer_state_for(path, state, named_params):
    """The SGD state dict `state` of checkpoint `path` with its momentum buffers in the order of
    `named_params` ((name, parameter) pairs, as the optimizer lists them). A state written in the
    published modules' order (the published code's and released checkpoints') is reordered; one that
    fits neither order raises CheckpointError naming the file."""
    names = [name for name, _ in named_params]
    shapes = [tuple(p.shape) for _, p in named_params]
    groups = state.get("param_groups") if isinstance(state, dict) else None
    buffers = state.get("state") if isinstance(state, dict) else None
    if not isinstance(buffers, dict) or not isinstance(groups, list) or len(groups) != 1:
        raise CheckpointError(f"checkpoint {path}: its 'optimizer' entry is not the state of one SGD parameter group")
    if len(groups[0].get("params", ())) != len(names):
        raise CheckpointError(
            f"checkpoint {path}: its optimizer state is for {len(groups[0].get('params', ()))} parameters, "
            f"the model has {len(names)}"
        )

    def fits(order):
        return all(
            not isinstance(entry, dict)
            or entry.get("momentum_buffer") is None
            or tuple(entry["momentum_buffer"].shape) == shapes[order[int(i)]]
            for i, entry in buffers.items()
        )

    ours = list(range(len(names)))
    if fits(ours):
        return state
    published = published_order(names)
    if fits(published):
        return dict(state, state={published[int(i)]: entry for i, entry in buffers.items()})
    raise CheckpointError(
        f"checkpoint {path}: its optimizer state's momentum buffers do not fit the model's parameters "
        f"in this code's order nor in the published code's"
    )


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


def parse_rng_state(state, path):
    """A function restoring the RNG states `rng_state` captured; CheckpointError naming `path` when the
    entry is malformed. Called before anything is written, so a bad entry stops a resume cleanly."""
    try:
        py = ast.literal_eval(state["python"])
        python = (py[0], tuple(py[1]), py[2])
        npst = state["numpy"]
        numpy_state = (
            "MT19937",
            npst["keys"].numpy().astype(np.uint32),
            int(npst["pos"]),
            int(npst["has_gauss"]),
            float(npst["cached_gaussian"]),
        )
        torch_state = state["torch"]
        random.Random().setstate(python)
        np.random.RandomState().set_state(numpy_state)
        torch.Generator().set_state(torch_state)
    except Exception as exc:  # any malformed part: a wrong type, a bad literal, a wrong size
        raise CheckpointError(
            f"checkpoint {path}: its 'rng' entry is malformed ({type(exc).__name__}: {exc}); "
            f"the run cannot continue exactly from it"
        ) from None

    def restore():
        random.setstate(python)
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])

    return restore
