"""Downstream models: the three query encoders of a pretrained checkpoint with fresh classifiers.

One loader serves linear evaluation, fine-tuning and kNN. It reads released checkpoints
(`checkpoint_0450.pth.tar`: {'epoch', 'state_dict', 'optimizer'} with the names of docs/published-behaviour.md §3.3) and
ours (which add 'arch', 'options', 'rng') with `torch.load(weights_only=True)`, accepts a `module.`
prefix (DistributedDataParallel), keeps only `encoder_q*` keys without `.fc` (docs/published-behaviour.md §3.3), infers
input size, hidden size, layer count and head type from the tensor shapes, and maps the weights
onto `MoCo(pretrain=False)`. Exactly the three classifiers' `fc.weight`/`fc.bias` may be missing;
anything else missing, unexpected or of another shape is an error naming the file and the keys.
The fresh classifiers get `fc.weight` ~ N(0, 0.01) and `fc.bias` = 0.
"""
import logging
import re

import torch

from dataset.layouts import NTU25, LayoutError, get_layout
from engine.checkpoint import CheckpointError, read_checkpoint
from moco.builder import MoCo

log = logging.getLogger(__name__)

# view name -> query encoder attribute of MoCo (docs/published-behaviour.md §3.3 names)
ENCODERS = {"joint": "encoder_q", "motion": "encoder_q_motion", "bone": "encoder_q_bone"}
CLASSIFIER_KEYS = frozenset(f"{prefix}.fc.{p}" for prefix in ENCODERS.values() for p in ("weight", "bias"))
SKELETON_REPRESENTATION = "graph-based"


def build_model(num_class, hidden_size, num_layers, layout=NTU25):
    """A randomly initialised MoCo(pretrain=False) for skeletons of `layout`, with fresh classifiers."""
    args_bi_gru = {"en_input_size": layout.input_size, "en_hidden_size": hidden_size,
                   "en_num_layers": num_layers, "num_class": num_class}
    model = MoCo(SKELETON_REPRESENTATION, args_bi_gru, pretrain=False, layout=layout)
    reset_classifiers(model)
    return model


@torch.no_grad()
def reset_classifiers(model):
    """Re-initialise every encoder's classifier: weight ~ N(0, 0.01), bias = 0."""
    for prefix in ENCODERS.values():
        fc = getattr(model, prefix).fc
        fc.weight.normal_(mean=0.0, std=0.01)
        fc.bias.zero_()


def _short_list(keys, limit=8):
    keys = sorted(keys)
    more = f" … and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def encoder_state(checkpoint, path):
    """The `encoder_q*` entries without `.fc` of a checkpoint dict, `module.` prefix removed."""
    if "state_dict" not in checkpoint:
        raise CheckpointError(f"checkpoint {path!r}: expected a dict with a 'state_dict' entry "
                              f"(released or CMD checkpoint), found keys {_short_list(map(str, checkpoint))}")
    state = checkpoint["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {path!r}: 'state_dict' is not a mapping of names to tensors")
    kept = {}
    for key, value in state.items():
        name = key[len("module."):] if key.startswith("module.") else key
        if name.startswith("encoder_q") and ".fc" not in name:
            kept[name] = value
    if not kept:
        raise CheckpointError(
            f"checkpoint {path!r} holds another architecture: no 'encoder_q*' weights of a CMD model "
            f"(docs/published-behaviour.md §3.3); its state_dict has {_short_list(state)}")
    return kept


def infer_arch(state, path):
    """Input size, hidden size, layer count of the encoders in `state` (from tensor shapes)."""
    found = {}
    for view, prefix in ENCODERS.items():
        gru = f"{prefix}.encoder.gru."
        if gru + "weight_ih_l0" not in state or gru + "weight_hh_l0" not in state:
            raise CheckpointError(f"checkpoint {path!r} holds another architecture: the {view} encoder "
                                  f"has no {gru}weight_ih_l0/weight_hh_l0 (a GRU encoder as in docs/published-behaviour.md §3.1)")
        three_h, hidden = state[gru + "weight_hh_l0"].shape
        input_size = state[gru + "weight_ih_l0"].shape[1]
        if three_h != 3 * hidden:
            raise CheckpointError(f"checkpoint {path!r} holds another architecture: {gru}weight_hh_l0 has "
                                  f"shape {tuple(state[gru + 'weight_hh_l0'].shape)}, expected (3H, H) of a GRU")
        layers = 1 + max(int(m.group(1)) for k in state
                         if (m := re.fullmatch(re.escape(gru) + r"weight_ih_l(\d+)", k)))
        found[view] = {"input_size": int(input_size), "hidden_size": int(hidden), "num_layers": int(layers)}
    if len({tuple(sorted(a.items())) for a in found.values()}) != 1:
        raise CheckpointError(f"checkpoint {path!r}: the three encoders differ in shape: {found}")
    return found["joint"]


def _check_declared_arch(checkpoint, arch, path):
    """Our checkpoints carry the constructor arguments; they must agree with the tensor shapes."""
    declared = checkpoint.get("arch")
    gru_args = declared.get("args_bi_gru") if isinstance(declared, dict) else None
    if not isinstance(gru_args, dict):
        return
    for name, key in (("input_size", "en_input_size"), ("hidden_size", "en_hidden_size"),
                      ("num_layers", "en_num_layers")):
        if key in gru_args and int(gru_args[key]) != arch[name]:
            raise CheckpointError(f"checkpoint {path!r}: its 'arch' says {key}={gru_args[key]} but the "
                                  f"weights have {name}={arch[name]}")


def checkpoint_layout(checkpoint, path):
    """The skeleton layout a checkpoint was pretrained on: recorded in our 'arch', else the published ntu25."""
    declared = checkpoint.get("arch")
    record = declared.get("layout") if isinstance(declared, dict) else None
    if record is None:
        return NTU25
    try:
        return get_layout(record)
    except LayoutError as exc:
        raise CheckpointError(f"checkpoint {path!r}: unreadable layout record ({exc})") from None


def load_pretrained(path, num_class, hidden_size=None, num_layers=None, layout=NTU25):
    """MoCo(pretrain=False) holding the query encoders of checkpoint `path` and fresh classifiers.

    `hidden_size`/`num_layers`, when given, must match the checkpoint; so must `layout`, the skeleton
    layout of the data it will see (CheckpointError naming both otherwise). Returns (model, info)
    where info describes the checkpoint (epoch, inferred architecture, head type, format, layout).
    """
    checkpoint = read_checkpoint(path)
    state = encoder_state(checkpoint, path)
    arch = infer_arch(state, path)
    pretrained_on = checkpoint_layout(checkpoint, path)
    if pretrained_on != layout:
        raise CheckpointError(f"checkpoint {path!r} was pretrained on skeletons of layout {pretrained_on.name!r} "
                              f"({pretrained_on.num_joints} joints, {pretrained_on.bodies} bodies), but the data "
                              f"folder holds layout {layout.name!r} ({layout.num_joints} joints, "
                              f"{layout.bodies} bodies)")
    if arch["input_size"] != layout.input_size:
        raise CheckpointError(f"checkpoint {path!r} has encoders of input size {arch['input_size']}, but the data "
                              f"folder's layout {layout.name!r} gives {layout.input_size} features per frame "
                              f"({layout.num_joints} joints x {layout.channels} x {layout.bodies} bodies)")
    for name, wanted in (("hidden_size", hidden_size), ("num_layers", num_layers)):
        if wanted is not None and int(wanted) != arch[name]:
            raise CheckpointError(f"checkpoint {path!r} has {name}={arch[name]}, "
                                  f"but {name}={wanted} was requested")
    _check_declared_arch(checkpoint, arch, path)
    model = build_model(num_class, arch["hidden_size"], arch["num_layers"], layout)
    expected = model.state_dict()
    wrong_shape = [f"{k} {tuple(v.shape)} (expected {tuple(expected[k].shape)})"
                   for k, v in state.items() if k in expected and v.shape != expected[k].shape]
    missing = set(expected) - set(state) - CLASSIFIER_KEYS
    unexpected = set(state) - set(expected)
    if wrong_shape or missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing {_short_list(missing)}")
        if unexpected:
            problems.append(f"unexpected {_short_list(unexpected)}")
        if wrong_shape:
            problems.append(f"other shapes {_short_list(wrong_shape)}")
        raise CheckpointError(f"checkpoint {path!r} does not match a CMD encoder with {arch}: "
                              + "; ".join(problems))
    result = model.load_state_dict(state, strict=False)
    assert set(result.missing_keys) == CLASSIFIER_KEYS and not result.unexpected_keys, result
    reset_classifiers(model)
    raw = checkpoint["state_dict"]
    options = checkpoint.get("options") if isinstance(checkpoint.get("options"), dict) else {}
    info = dict(arch,
                pretrain_dataset=options.get("dataset_name") or options.get("pre_dataset"),
                path=path,
                epoch=checkpoint.get("epoch"),
                mlp=any(k.endswith("encoder_q.fc.0.weight") for k in raw),
                module_prefix=any(k.startswith("module.") for k in raw),
                format="ours" if "arch" in checkpoint else "released",
                layout=layout.name)
    log.info("loaded %s: %s", path, info)
    return model, info


def downstream_model(pretrained, num_class, hidden_size=None, num_layers=None, layout=NTU25):
    """The model of an evaluation run: `load_pretrained(pretrained, …)`, or, when `pretrained` is
    None, randomly initialised encoders of the given sizes (a baseline)."""
    if pretrained:
        return load_pretrained(pretrained, num_class, hidden_size, num_layers, layout)
    if hidden_size is None or num_layers is None:
        raise ValueError("a randomly initialised encoder needs hidden_size and num_layers")
    model = build_model(num_class, int(hidden_size), int(num_layers), layout)
    return model, {"path": None, "format": "random", "input_size": layout.input_size, "hidden_size": int(hidden_size),
                   "num_layers": int(num_layers), "epoch": None, "mlp": False, "pretrain_dataset": None,
                   "layout": layout.name}
