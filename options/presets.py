"""The published experiments' settings as data: the one source of every default.

`preset(stage, dataset, protocol)` returns the defaults of one experiment (see
docs/published-behaviour.md §4). The entry points leave every flag that a preset holds unset
(None) when parsing and fill it from the preset afterwards (`options.parsing.fill_from_preset`),
so a flag given on the command line always wins, and the resolved values are printed and saved with
the run. The bash scripts choose dataset, protocol and stage and pass only what differs.
"""

NUM_CLASSES = {"ntu60": 60, "ntu120": 120, "pku_v2": 51}

PROTOCOLS = {
    "ntu60": ("cross_subject", "cross_view"),
    "ntu120": ("cross_subject", "cross_setup"),
    "pku_v2": ("cross_subject", "cross_view"),
}
SEMI_SUFFIX = "_semi"
SEMI_PROTOCOLS = ("cross_subject_semi", "cross_view_semi")

STAGES = ("pretrain", "linear", "semi", "transfer", "knn")

# The encoder of every published experiment; an evaluation without a checkpoint (a random encoder)
# uses it too, and an evaluation with one reads the sizes from the checkpoint.
ENCODER = {"hidden_size": 1024, "num_layers": 3}

_PRETRAIN = dict(
    ENCODER,
    lr=0.01,
    momentum=0.9,
    weight_decay=1e-4,
    batch_size=64,
    epochs=451,
    schedule=[351],
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
    view_frames=64,
)

_LINEAR = dict(
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

PRESETS = {
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


def base_protocol(protocol):
    """The benchmark a protocol runs on: 'cross_view_semi' -> 'cross_view'; others unchanged."""
    if protocol and protocol.endswith(SEMI_SUFFIX):
        return protocol[: -len(SEMI_SUFFIX)]
    return protocol


def preset(stage, dataset, protocol=None):
    """The settings of `stage` on `dataset` (a fresh dict, with num_class, dataset and protocol).

    Raises ValueError naming the valid choices for an unknown stage/dataset pair or a protocol the
    dataset does not define.
    """
    if (stage, dataset) not in PRESETS:
        known = sorted(f"{s}/{d}" for s, d in PRESETS)
        raise ValueError(f"no preset for stage {stage!r} on dataset {dataset!r}; known: {', '.join(known)}")
    base = base_protocol(protocol)
    if base is not None and base not in PROTOCOLS[dataset]:
        raise ValueError(
            f"protocol {protocol!r} is not defined for {dataset}; use one of {', '.join(PROTOCOLS[dataset])}"
        )
    settings = {k: (list(v) if isinstance(v, list) else v) for k, v in PRESETS[(stage, dataset)].items()}
    settings.update(dataset=dataset, protocol=protocol, num_class=NUM_CLASSES[dataset])
    return settings
