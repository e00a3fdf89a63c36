"""The published experiments' settings as data (SPEC §4).

`preset(stage, dataset, protocol)` returns the defaults one experiment uses; entry scripts fill their
argparse defaults from it, so a flag given on the command line always wins and the resolved values
are printed and saved with the run. Bash scripts only choose dataset, protocol and stage.
"""

NUM_CLASSES = {"ntu60": 60, "ntu120": 120, "pku_v2": 51}

PROTOCOLS = {
    "ntu60": ("cross_subject", "cross_view"),
    "ntu120": ("cross_subject", "cross_setup"),
    "pku_v2": ("cross_subject", "cross_view"),
}

STAGES = ("pretrain", "linear", "semi", "transfer", "knn")

_ENCODER = {"hidden_size": 1024, "num_layers": 3, "input_size": 150}

_PRETRAIN = dict(
    _ENCODER,
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
)

_LINEAR = dict(
    _ENCODER,
    lr=0.1,
    momentum=0.9,
    weight_decay=0.0,
    batch_size=64,
    epochs=80,
    schedule=[50, 70],
    eval_freq=5,
    finetune=False,
)

_SEMI = dict(_LINEAR, lr=0.01, finetune=True, data_ratios=[0.01, 0.05, 0.1, 0.2], repeats=5)

PRESETS = {
    ("pretrain", "ntu60"): _PRETRAIN,
    ("pretrain", "ntu120"): _PRETRAIN,
    ("pretrain", "pku_v2"): dict(_PRETRAIN, epochs=1001, schedule=[801]),
    ("linear", "ntu60"): _LINEAR,
    ("linear", "ntu120"): _LINEAR,
    ("linear", "pku_v2"): _LINEAR,
    ("semi", "ntu60"): _SEMI,
    ("semi", "ntu120"): _SEMI,
    ("semi", "pku_v2"): _SEMI,
    # transfer: an NTU-pretrained encoder fine-tuned on PKU-MMD II x-sub with all its labels
    ("transfer", "pku_v2"): dict(_SEMI, data_ratio=1.0, protocol="cross_subject"),
    ("knn", "ntu60"): dict(_ENCODER, batch_size=64, knn_neighbours=1),
    ("knn", "ntu120"): dict(_ENCODER, batch_size=64, knn_neighbours=1),
    ("knn", "pku_v2"): dict(_ENCODER, batch_size=64, knn_neighbours=1),
}


def preset(stage, dataset, protocol=None):
    """The settings of `stage` on `dataset` (a fresh dict, with num_class, dataset and protocol)."""
    if (stage, dataset) not in PRESETS:
        known = sorted(f"{s}/{d}" for s, d in PRESETS)
        raise ValueError(f"no preset for stage {stage!r} on dataset {dataset!r}; known: {', '.join(known)}")
    base = protocol.replace("_semi", "") if protocol else None
    if base is not None and base not in PROTOCOLS[dataset]:
        raise ValueError(
            f"protocol {protocol!r} is not defined for {dataset}; use one of {', '.join(PROTOCOLS[dataset])}"
        )
    settings = {k: (list(v) if isinstance(v, list) else v) for k, v in PRESETS[(stage, dataset)].items()}
    settings.setdefault("protocol", protocol)
    settings.update(dataset=dataset, num_class=NUM_CLASSES[dataset])
    return settings
