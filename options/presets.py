"""Every default setting, as data: the published experiments' presets and the small-data preset.

`preset(stage, name, facts, given)` gives the defaults of one stage ('pretrain', 'linear', 'semi',
'transfer', 'knn') under preset `name`: a published dataset ('ntu60', 'ntu120', 'pku_v2';
docs/published-behaviour.md §4), or 'small', whose values are rules computed from the processed
folder (`FolderFacts`: training samples, median recording length, joints; docs/small-data.md).
`choose_preset` picks the name from the folder's record and the flags. The entry points leave every
preset-held flag unset (None) when parsing and fill it from here, so a flag given always wins.
"""

import math
from dataclasses import dataclass

from dataset.catalog import DATASETS
from feeder.augmentations import PUBLISHED_VIEWS

DEFAULT_DATASET = "ntu60"  # --pre-dataset / --finetune-dataset of a folder without a record, as published

SMALL = "small"
PRESET_NAMES = tuple(DATASETS) + (SMALL,)
STAGES = ("pretrain", "linear", "semi", "transfer", "knn")

# The encoder of every published experiment.
ENCODER = {"hidden_size": 1024, "num_layers": 3}

_PRETRAIN = dict(
    ENCODER,
    lr=0.01,
    momentum=0.9,
    weight_decay=1e-4,
    batch_size=64,
    epochs=451,
    schedule=[351],
    steps=None,
    mlp=True,
    cos=False,
    contrast_dim=128,
    contrast_k=16384,
    contrast_t=0.07,
    contrast_m=0.999,
    teacher_t=0.05,
    student_t=0.1,
    topk=8192,
    cmd_weight=1.0,
    skeleton_representation="graph-based",
    view_frames=PUBLISHED_VIEWS.view_frames,
    min_crop_frames=PUBLISHED_VIEWS.min_crop_frames,
    corrupted_joints=None,  # the layout's: 15 of NTU's 25 joints
    checkpoint_every=10,  # epochs between periodic checkpoints
)

_LINEAR = dict(
    probe="sgd",
    lr=0.1,
    momentum=0.9,
    weight_decay=0.0,
    batch_size=64,
    epochs=80,
    schedule=[50, 70],
    eval_freq=5,
    finetune=False,
)

_FINETUNE = dict(_LINEAR, lr=0.01, finetune=True)

_KNN = dict(batch_size=64, knn_neighbours=1)

PUBLISHED = {
    ("pretrain", "ntu60"): _PRETRAIN,
    ("pretrain", "ntu120"): _PRETRAIN,
    ("pretrain", "pku_v2"): dict(_PRETRAIN, epochs=1001, schedule=[801]),
    ("linear", "ntu60"): _LINEAR,
    ("linear", "ntu120"): _LINEAR,
    ("linear", "pku_v2"): _LINEAR,
    ("semi", "ntu60"): _FINETUNE,
    ("semi", "ntu120"): _FINETUNE,
    ("semi", "pku_v2"): _FINETUNE,
    # transfer: an NTU-pretrained encoder fine-tuned on PKU-MMD II x-sub with all its labels
    ("transfer", "pku_v2"): dict(_FINETUNE, data_ratio=1.0),
    ("knn", "ntu60"): _KNN,
    ("knn", "ntu120"): _KNN,
    ("knn", "pku_v2"): _KNN,
}


@dataclass(frozen=True)
class FolderFacts:
    """What the small-data rules read from a processed folder's training part."""

    train_samples: int
    median_frames: float  # half frames: the median of an even count
    num_joints: int


# The small-data preset (docs/small-data.md gives each rule's reason and the measurements behind it).
SMALL_STEPS = 3000  # optimisation steps of a pretraining, whatever the folder's size
SMALL_BATCH = 32
# The key encoder's momentum: a time constant of 100 steps, 1/30 of the run (0.999, the published value for
# 282,000 steps, cost 1.3 and 3.5 points here). Fixed with the step budget: a resume that extends a run
# with --steps keeps its teacher.
SMALL_KEY_MOMENTUM = 0.99
SMALL_ENCODER = {"hidden_size": 64, "num_layers": 2}
SMALL_CORRUPTED_SHARE = 0.15  # of the layout's joints (at least 1): the published 60 % erases a one-hand action


def small_pretrain(facts, given=None):
    """The small-data pretraining settings of a folder (the rules of docs/small-data.md). `given`: the
    values the command line sets of the rules' inputs (batch_size, world_size, contrast_k, view_frames),
    which the values derived from them follow (queue, top-k, shortest crop)."""
    given = {key: value for key, value in (given or {}).items() if value is not None}
    batch = given.get("batch_size", min(SMALL_BATCH, _power_of_two_at_most(facts.train_samples // 4)))
    global_batch = max(1, batch * given.get("world_size", 1))  # -b 0 is the flag rules' usage error
    queue = given.get("contrast_k", max(global_batch, global_batch * (facts.train_samples // 2 // global_batch)))
    frames = given.get("view_frames", view_frames(facts.median_frames))
    return dict(
        _PRETRAIN,
        **SMALL_ENCODER,
        lr=0.05,
        batch_size=batch,
        steps=SMALL_STEPS,
        epochs=None,  # from the steps: options.options_pretraining divides them by the steps per epoch
        schedule=[],
        cos=True,
        contrast_k=queue,
        topk=queue // 2,
        contrast_m=SMALL_KEY_MOMENTUM,
        view_frames=frames,
        min_crop_frames=frames // 2,
        corrupted_joints=max(1, round(facts.num_joints * SMALL_CORRUPTED_SHARE)),
        checkpoint_every=None,  # a tenth of the run: checkpoint_every(epochs), once the epochs are known
    )


def checkpoint_every(epochs):
    """Epochs between periodic checkpoints under the small-data preset: a tenth of the run, so a run
    keeps about ten whatever the folder's size (every 10 epochs, 3,000 steps of a 291-recording folder
    would write 34)."""
    return max(1, -(-epochs // 10))


def view_frames(median_frames):
    """Frames of a view: the power of two nearest half the median recording length (on a log scale),
    within [16, 32]: a step's time grows with the view, and 64-frame views would take a 3,000-step run past
    10 minutes on a 2-core CPU."""
    return int(min(32, max(16, 2 ** round(math.log2(max(1, median_frames / 2))))))


def _power_of_two_at_most(n):
    return 2 ** int(math.log2(max(1, n)))


SMALL_PRESETS = {
    "pretrain": small_pretrain,
    "linear": lambda facts, given=None: dict(_LINEAR, probe="logistic"),
    "semi": lambda facts, given=None: _FINETUNE,
    "transfer": lambda facts, given=None: dict(_FINETUNE, data_ratio=1.0),
    "knn": lambda facts, given=None: _KNN,
}


def preset(stage, name, facts=None, given=None):
    """The default settings (a fresh dict) of `stage` under preset `name`; ValueError naming the valid
    choices otherwise. The small-data preset needs the folder's `facts` (and `given`: small_pretrain)."""
    if name == SMALL:
        settings = SMALL_PRESETS[stage](facts, given)
    elif (stage, name) in PUBLISHED:
        settings = PUBLISHED[(stage, name)]
    else:
        known = sorted(f"{s}/{d}" for s, d in PUBLISHED)
        raise ValueError(f"no preset for stage {stage!r} of {name!r}; known: {', '.join(known)} and {SMALL!r}")
    return {k: (list(v) if isinstance(v, list) else v) for k, v in settings.items()}


def choose_preset(recorded_dataset, dataset_flag, preset_flag, dataset_option):
    """The preset of a run: `preset_flag` when given; else the published preset of the dataset the
    folder's record names, or 'small' for any other dataset; else (a folder without a record, as the
    published tools write them) that of `dataset_flag` (default ntu60).

    A `dataset_flag` that names another dataset than the folder's record is a ValueError: it would
    silently apply that dataset's settings to this folder (`dataset_option` names the flag)."""
    if preset_flag is not None:
        return preset_flag
    if recorded_dataset is None:
        return dataset_flag or DEFAULT_DATASET
    if dataset_flag is not None and dataset_flag != recorded_dataset:
        raise ValueError(
            f"the folder's layout.json records dataset {recorded_dataset!r}; {dataset_option} "
            f"{dataset_flag} would apply {dataset_flag}'s published settings to it. Drop "
            f"{dataset_option}, or pass --preset {dataset_flag} to use them deliberately"
        )
    return recorded_dataset if recorded_dataset in DATASETS else SMALL
