"""One resolved settings record per run: frozen dataclasses built once from argv, the processed
folder and the preset (options.options_pretraining, options.options_classification), printed and
saved once (`settings.json` and every checkpoint), and compared by `differences` on resume and when
an evaluation meets its checkpoint. Loops and builders take the parts they need; nothing changes a
record after it is built. Every field has the name of its command-line flag, and keeps it down to the
part of the record a module takes (`hidden_size` from `--hidden-size` to `nn.GRU`), so the names are
unique across the parts and a record flattens without loss.
"""

import dataclasses
from dataclasses import dataclass

from dataset.layouts import Layout
from feeder.augmentations import ViewSettings  # the views' part, defined where the views are made


@dataclass(frozen=True)
class DataSettings:
    """The processed folder a run reads."""

    dataset: str  # the folder's recorded name, else the published dataset chosen by flag
    protocol: str
    data_dir: str
    layout: Layout
    num_class: int
    train_samples: int
    median_frames: float  # of the training recordings
    fingerprint: str  # of the training files (dataset.processed.fingerprint)


@dataclass(frozen=True)
class EncoderSettings:
    """The GRU encoder of each modality (docs/published-behaviour.md §3.1)."""

    hidden_size: int
    num_layers: int


@dataclass(frozen=True)
class ContrastSettings:
    """MoCo and CMD (docs/published-behaviour.md §3.2); the arguments of moco.model.CMD."""

    contrast_dim: int
    contrast_k: int
    contrast_m: float
    contrast_t: float
    teacher_t: float
    student_t: float
    cmd_weight: float
    topk: int
    mlp: bool


@dataclass(frozen=True)
class OptimSettings:
    """SGD and its schedule."""

    lr: float
    momentum: float
    weight_decay: float
    batch_size: int  # per process
    epochs: int
    schedule: tuple  # epochs at which the rate is multiplied by 0.1
    cos: bool
    steps: object  # the training length the preset asked for in optimisation steps (epochs follow), or None


@dataclass(frozen=True)
class RunSettings:
    """Where and how a pretraining computes: nothing here changes what it trains, except the seed."""

    seed: int
    device: str
    world_size: int
    local_rank: int
    workers: int
    print_freq: int
    checkpoint_path: str
    checkpoint_every: int  # epochs between periodic checkpoints
    resume: str
    fresh: bool
    rewind: bool
    start_epoch: int
    amp: bool
    augment_on: str


@dataclass(frozen=True)
class PretrainSettings:
    preset: str  # 'ntu60', 'ntu120', 'pku_v2' (published) or 'small' (docs/small-data.md)
    skeleton_representation: str
    data: DataSettings
    encoder: EncoderSettings
    contrast: ContrastSettings
    views: ViewSettings
    optim: OptimSettings
    run: RunSettings


@dataclass(frozen=True)
class ProbeSettings:
    """How action_classification.py trains its classifiers."""

    probe: str  # 'sgd' (the published probe, or fine-tuning) or 'logistic' (docs/small-data.md)
    finetune: bool
    data_ratio: float
    batch_size: int
    # the SGD training's (None for a logistic probe, which uses none of them)
    lr: float | None
    momentum: float | None
    weight_decay: float | None
    epochs: int | None
    schedule: tuple | None
    eval_freq: int | None


@dataclass(frozen=True)
class KnnSettings:
    knn_neighbours: int
    train_crop: str
    chunk_size: int
    batch_size: int
    save_features: object  # a .npz path, or None


@dataclass(frozen=True)
class EvalRunSettings:
    seed: int
    device: str
    workers: int
    checkpoint_path: str
    results: str
    resume: str
    fresh: bool
    view: str
    pretrained: str  # '' for a randomly initialised encoder
    pretrain_dataset: object
    # identities a resume must find unchanged (paths may change): the checkpoint's bytes ('' without
    # one; dataset.files.file_fingerprint) and the evaluation part's files (dataset.processed.fingerprint)
    pretrained_fingerprint: str = ""
    val_fingerprint: str = ""
    pretrain_cmd_weight: object = None  # the checkpoint's recorded --cmd-weight (None: released or random)
    pretrain_fingerprint: str = ""  # the training part the checkpoint learnt from, as it records it ('' if not)


@dataclass(frozen=True)
class EvalSettings:
    """An evaluation run: action_classification.py (`probe` set) or knn_eval.py (`knn` set)."""

    preset: str
    stage: str  # 'linear', 'semi', 'transfer' or 'knn'
    data: DataSettings
    encoder: EncoderSettings
    view_frames: int  # frames of the evaluation crops: the pretraining views' length
    min_crop_frames: int  # a random training crop keeps at least this many frames (the pretraining's)
    run: EvalRunSettings
    probe: object = None  # ProbeSettings
    knn: object = None  # KnnSettings


def to_dict(settings):
    """The record as plain JSON-ready data (tuples as lists, the layout as its fields)."""
    return _plain(dataclasses.asdict(settings))


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def flatten(record):
    """{field: value} of a record's dict (`to_dict`), parts merged: names are unique across parts."""
    flat = {}
    for key, value in record.items():
        if isinstance(value, dict) and key != "layout":
            flat.update(flatten(value))
        else:
            flat[key] = value
    return flat


def differences(recorded, current, may_change=(), only=None):
    """['name: recorded → current', ...] for every setting both flattened records hold that differs,
    except those in `may_change` (and, given `only`, those not in it). Records are dicts as `to_dict`
    gives (older flat ones compare too)."""
    old, new = flatten(recorded), flatten(current)
    names = set(old) & set(new) - set(may_change)
    return [
        f"{flag(k)}: {old[k]!r} then, {new[k]!r} now"
        for k in sorted(names if only is None else names & set(only))
        if _plain(old[k]) != _plain(new[k])
    ]


def resume_refusal(path, differ):
    """The message refusing `--resume path`, whose recorded settings differ from this command's as
    `differ` (from `differences`) says: how to continue that run, and how to change them."""
    return (
        f"--resume {path} was made by a run with other settings or data: " + "; ".join(differ) + ". To "
        "continue that run, give it what it was given (each 'then' above: its flags, data folder, --pretrained "
        "checkpoint; its folder's settings.json records them); to change any of it, start a new run (another "
        "output folder, no --resume)"
    )


# The settings of the learning rate: lr and the schedule, whose milestones (without the cosine schedule)
# or the run's length (with it: --epochs, --steps stretch it) set it. A resume may change them, as the
# published code's flags do, and takes them from its command line and preset, not from the checkpoint:
# `learning_rate_change` says so (a resume that forgot --steps would otherwise go on silently for the
# preset's length, its learning rate jumping back up).
LEARNING_RATE = ("lr", "cos")
MILESTONES = "schedule"
RUN_LENGTH = ("epochs",)  # --steps sets the epochs; the schedule counts epochs (engine.runtime)


def learning_rate_change(recorded, current):
    """A warning's text when the learning-rate settings of `current` differ from the resumed run's
    `recorded` ones, else None."""
    old, new = flatten(recorded), flatten(current)
    cosine = old.get("cos") and new.get("cos")
    # where the epochs differ, --steps (the flag that sets them in a small-data run) is named beside them
    stretched = "epochs" in old and "epochs" in new and old["epochs"] != new["epochs"]
    length = RUN_LENGTH + (("steps",) if stretched else ())
    changed = differences(recorded, current, only=LEARNING_RATE + (length if cosine else (MILESTONES,)))
    if changed:
        return (
            f"the learning rate changes ({'; '.join(changed)}): a resume takes it from this command's flags "
            "and preset; give the run's own to keep it"
        )
    return None


def describe(record):
    """A run's settings (a `to_dict` record) as lines 'part: name=value, …' (the layout by its name)."""
    lines = []
    for key, value in record.items():
        if isinstance(value, dict):
            items = {k: (v["name"] if k == "layout" else v) for k, v in value.items()}
            lines.append(f"{key}: " + ", ".join(f"{k}={v}" for k, v in items.items()))
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines)


# Settings no flag sets, as a message names them.
_NOT_FLAGS = {
    "dataset": "the data folder's dataset",
    "layout": "the skeleton layout",
    "num_class": "the number of classes",
    "train_samples": "the number of training recordings",
    "median_frames": "the training recordings' median length",
    "fingerprint": "the training data (its fingerprint)",
    "val_fingerprint": "the evaluation data (its fingerprint)",
    "pretrained_fingerprint": "the --pretrained checkpoint's content (its fingerprint)",
    "pretrain_cmd_weight": "the --pretrained checkpoint's --cmd-weight",
    "pretrain_fingerprint": "the data the --pretrained checkpoint learnt from (its fingerprint)",
    "world_size": "the number of processes",
    "stage": "the stage",
    "preset": "the preset",
}


def flag(name):
    """The command-line flag of a setting ('batch_size' -> '--batch-size'), or what a setting no flag
    sets stands for."""
    return _NOT_FLAGS.get(name, "--" + name.replace("_", "-"))
