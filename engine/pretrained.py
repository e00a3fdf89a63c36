"""Downstream models: the three query encoders of a pretraining checkpoint with fresh classifiers.

One loader serves linear evaluation, fine-tuning and kNN. It reads released checkpoints
(`checkpoint_0450.pth.tar`: {'epoch', 'state_dict', 'optimizer'} with the names of
docs/published-behaviour.md §3.3) and ours (which add 'settings') with `torch.load(weights_only=True)`,
accepts a `module.` prefix (DistributedDataParallel), keeps only `encoder_q*` keys without `.fc`,
reads the encoder's sizes from the tensor shapes (and checks them against our recorded settings), and
loads them into a `ThreeStreamClassifier`. Exactly the three classifiers may be missing; anything else
missing, unexpected or of another shape is an error naming the file and the keys. The fresh
classifiers get `fc.weight` ~ N(0, 0.01) and `fc.bias` = 0.
"""

import logging
import re

from dataset.layouts import NTU25, LayoutError, get_layout
from engine.checkpoint import (
    CheckpointError,
    check_fits,
    evaluation_keys,
    read_checkpoint,
    recorded_settings,
    short_list,
    strip_module_prefix,
)
from feeder.augmentations import PUBLISHED_VIEWS as VIEWS
from moco.model import ThreeStreamClassifier
from options.settings import flatten

log = logging.getLogger(__name__)

# a released checkpoint's views (the paper's)
PUBLISHED_VIEWS = {"view_frames": VIEWS.view_frames, "min_crop_frames": VIEWS.min_crop_frames}

# What an evaluation does not need of the layout an encoder was pretrained on: its name, and the
# corrupted joints (evaluations corrupt nothing). The skeleton itself (joints, bones, normalisation,
# channels, bodies) must be the same.
EVALUATION_IGNORES = ("name", "corrupted_joints")


def build_classifier(num_class, hidden_size, num_layers, layout):
    """A randomly initialised ThreeStreamClassifier for skeletons of `layout`, with fresh classifiers."""
    model = ThreeStreamClassifier(layout.input_size, hidden_size, num_layers, num_class, layout.parents)
    model.reset_classifiers()
    return model


def encoder_state(checkpoint, path):
    """The `encoder_q*` entries without `.fc` of a checkpoint dict, `module.` prefix removed."""
    state = checkpoint["state_dict"]
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise CheckpointError(f"checkpoint {path}: 'state_dict' is not a mapping of names to tensors")
    kept = {k: v for k, v in strip_module_prefix(state).items() if k.startswith("encoder_q") and ".fc" not in k}
    if not kept:
        raise CheckpointError(
            f"checkpoint {path} holds another architecture: no 'encoder_q*' weights of a CMD "
            f"model (docs/published-behaviour.md §3.3); its state_dict has {short_list(state)}"
        )
    return kept


def encoder_sizes(state, path):
    """{'input_size', 'hidden_size', 'num_layers'} of the encoders in `state` (from tensor shapes)."""
    found = {}
    for prefix in ("encoder_q", "encoder_q_motion", "encoder_q_bone"):
        gru = f"{prefix}.encoder.gru."
        if gru + "weight_ih_l0" not in state or gru + "weight_hh_l0" not in state:
            raise CheckpointError(
                f"checkpoint {path} holds another architecture: {prefix} has no "
                f"{gru}weight_ih_l0/weight_hh_l0 (a GRU encoder, docs/published-behaviour.md §3.1)"
            )
        three_h, hidden = state[gru + "weight_hh_l0"].shape
        if three_h != 3 * hidden:  # refused before a model of the size it implies is built
            raise CheckpointError(
                f"checkpoint {path} holds another architecture: {gru}weight_hh_l0 has shape "
                f"{(three_h, hidden)}, expected (3H, H) of a GRU"
            )
        layers = 1 + max(int(m.group(1)) for k in state if (m := re.fullmatch(re.escape(gru) + r"weight_ih_l(\d+)", k)))
        found[prefix] = {
            "input_size": int(state[gru + "weight_ih_l0"].shape[1]),
            "hidden_size": int(hidden),
            "num_layers": int(layers),
        }
    if len({tuple(sorted(sizes.items())) for sizes in found.values()}) != 1:
        raise CheckpointError(f"checkpoint {path}: the three encoders differ in shape: {found}")
    return found["encoder_q"]


def _layout_record(checkpoint):
    """The layout a checkpoint's settings record (or, in checkpoints of earlier versions, its 'arch')
    holds, else None."""
    settings = recorded_settings(checkpoint)
    if isinstance(settings, dict) and isinstance(settings.get("data"), dict):
        return settings["data"].get("layout")
    if isinstance(checkpoint.get("arch"), dict):
        return checkpoint["arch"].get("layout")
    return None


def checkpoint_layout(checkpoint, path):
    """The skeleton layout a checkpoint was pretrained on: as it records it (`_layout_record`), else the
    published ntu25."""
    record = _layout_record(checkpoint)
    if record is None:
        return NTU25
    try:
        return get_layout(record)
    except LayoutError as exc:
        raise CheckpointError(f"checkpoint {path}: unreadable layout record ({exc})") from None


# the recorded sizes an evaluation builds on, and the least value of the pretraining flags that set them
# (views longer than 300 frames: older versions allowed them)
RECORDED_SIZES = (("hidden_size", 1), ("num_layers", 1), ("view_frames", 2), ("min_crop_frames", 1))


def load_pretrained(path, num_class, layout, hidden_size=None, num_layers=None, folder=None):
    """A ThreeStreamClassifier holding the query encoders of checkpoint `path` and fresh classifiers.

    `layout` is the skeleton layout of the data the model will see (that of data folder `folder`, named
    in errors when given); it, and `hidden_size`/`num_layers` when given, must match the checkpoint
    (CheckpointError naming both otherwise). Returns (model, info):
    info describes the checkpoint (sizes, epoch, head type, format, the dataset and views it was
    pretrained with, the fingerprint of the bytes loaded).
    """
    checkpoint, fingerprint = read_checkpoint(path, fingerprint=True)
    trained_with_labels = evaluation_keys(checkpoint)
    if trained_with_labels:
        raise CheckpointError(
            f"checkpoint {path} is an evaluation's (it holds {trained_with_labels[0]!r}): its encoders were probed or "
            f"fine-tuned with labels, and their results would be reported as a self-supervised encoder's; give "
            f"the pretraining checkpoint it started from"
        )
    state = encoder_state(checkpoint, path)
    sizes = encoder_sizes(state, path)
    pretrained_on = checkpoint_layout(checkpoint, path)
    unused = ("z_axis", "x_axis") if layout.channels == pretrained_on.channels == 2 else ()  # not rotated
    differ = pretrained_on.differences(layout, ignore=EVALUATION_IGNORES + unused)
    data = f"data folder {folder}" if folder else "data folder"
    shape = f"{pretrained_on.num_joints} joints, {pretrained_on.bodies} bodies"
    what = f"was pretrained on skeletons of layout {pretrained_on.name!r} ({shape})"
    if _layout_record(checkpoint) is None:  # a released checkpoint records nothing: the layout is assumed
        what = f"records no layout and is read as a released checkpoint, of layout {pretrained_on.name!r} ({shape})"
        if sizes["input_size"] != pretrained_on.input_size:
            raise CheckpointError(
                f"checkpoint {path} {what}, but its encoders take {sizes['input_size']} inputs a frame, not "
                f"{pretrained_on.input_size}: give the checkpoint its pretraining wrote, whose settings name its layout"
            )
    if differ:
        raise CheckpointError(
            f"checkpoint {path} {what}, but the {data} holds layout {layout.name!r} ({layout.num_joints} joints, "
            f"{layout.bodies} bodies); they differ in {differ}"
        )
    recorded = flatten(recorded_settings(checkpoint) or {})
    for name, low in RECORDED_SIZES:  # what a pretraining's flags allow: another value was not written by one
        value = recorded.get(name)
        if value is not None and not (type(value) is int and value >= low):
            raise CheckpointError(
                f"checkpoint {path}: its settings record holds {name}={value!r}; a pretraining records an integer "
                f"from {low}"
            )
    for name, wanted in (
        ("hidden_size", hidden_size),
        ("num_layers", num_layers),
        ("hidden_size", recorded.get("hidden_size")),
        ("num_layers", recorded.get("num_layers")),
    ):
        if wanted is not None and int(wanted) != sizes[name]:
            raise CheckpointError(
                f"checkpoint {path} has encoders with {name}={sizes[name]}, but "
                f"{name}={wanted} was requested or recorded"
            )
    model = build_classifier(num_class, sizes["hidden_size"], sizes["num_layers"], layout)
    check_fits(path, state, model.state_dict(), may_miss=model.classifier_keys)
    result = model.load_state_dict(state, strict=False)
    assert set(result.missing_keys) == model.classifier_keys and not result.unexpected_keys, result
    raw = checkpoint["state_dict"]
    info = dict(
        sizes,
        path=path,
        checkpoint_fingerprint=fingerprint,  # of the bytes loaded (pretrain_fingerprint: its training data's)
        epoch=checkpoint.get("epoch"),
        pretrain_dataset=recorded.get("dataset") or recorded.get("dataset_name") or recorded.get("pre_dataset"),
        pretrain_protocol=recorded.get("protocol"),
        pretrain_data_dir=recorded.get("data_dir"),
        pretrain_fingerprint=recorded.get("fingerprint"),  # of the training part it learnt from
        cmd_weight=recorded.get("cmd_weight"),
        pretrain_preset=recorded.get("preset"),
        view_frames=recorded.get("view_frames", PUBLISHED_VIEWS["view_frames"]),
        min_crop_frames=recorded.get("min_crop_frames", PUBLISHED_VIEWS["min_crop_frames"]),
        mlp=any(k.endswith("encoder_q.fc.0.weight") for k in raw),
        module_prefix=any(k.startswith("module.") for k in raw),
        format="ours" if recorded else "released",
        layout=layout.name,
    )
    log.info("loaded %s: %s", path, info)
    return model, info


def downstream_model(pretrained, num_class, layout, hidden_size=None, num_layers=None, views=None, folder=None):
    """The model of an evaluation run: `load_pretrained(pretrained, …, folder=folder)`, or, when `pretrained` is empty,
    randomly initialised encoders of the given sizes (a baseline) whose info records `views`
    ({'view_frames', 'min_crop_frames'}; the published 64 / 64 when None)."""
    if pretrained:
        return load_pretrained(pretrained, num_class, layout, hidden_size, num_layers, folder)
    model = build_classifier(num_class, int(hidden_size), int(num_layers), layout)
    return model, dict(
        path=None,
        format="random",
        input_size=layout.input_size,
        hidden_size=int(hidden_size),
        num_layers=int(num_layers),
        epoch=None,
        mlp=False,
        pretrain_dataset=None,
        layout=layout.name,
        **(views or PUBLISHED_VIEWS),
    )
