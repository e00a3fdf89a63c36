"""The results report: the paper-layout tables of evaluation records, with the published numbers.

    python -m tools.report [FILE ...]      # default results/results.jsonl

prints the linear evaluation table with the published numbers (docs/published-behaviour.md §5) beside
the measured ones (a probe given a --data-ratio subset of the labels in rows of its own), and the kNN,
semi-supervised and transfer tables. A cell with several runs (different seeds or checkpoints) shows
mean ± sample standard deviation over the latest record (by date) of each checkpoint (by its content's
fingerprint where recorded) and seed, and how many checkpoints it pools when more than one; a rerun of
the same checkpoint and seed replaces the earlier one (of the same checkpoint, for kNN on centre crops
of a pretrained encoder, which no seed changes).
Runs without a checkpoint (randomly initialised encoders), encoders pretrained with another
`--cmd-weight` than the published 1, encoders pretrained on another data set than the one they are
evaluated on (or on other data of its name: another training part), encoders of other sizes, and (in
the linear, kNN and semi-supervised tables) evaluations of one benchmark whose own settings or data
differ (an SGD probe's epochs or validation frequency, kNN's training crop, the folder's training or
evaluation part, …: `_setup`) are reported in rows of their own. A record that cannot be reported (a
value that is not a finite number, fields of the wrong type) is an error naming the file and line.
"""

import argparse
import json
import os
import statistics
import sys

from dataset.catalog import base_protocol
from engine.results import load_results
from options.options_classification import DEFAULT_RESULTS
from options.settings import flatten

BENCHMARKS = (
    ("ntu60", "cross_subject"),
    ("ntu60", "cross_view"),
    ("ntu120", "cross_subject"),
    ("ntu120", "cross_setup"),
    ("pku_v2", "cross_subject"),
)
DATASET_NAMES = {"ntu60": "NTU-60", "ntu120": "NTU-120", "pku_v2": "PKU-MMD II"}
PROTOCOL_NAMES = {"cross_subject": "x-sub", "cross_view": "x-view", "cross_setup": "x-set"}
VIEW_NAMES = {
    "joint": "CMD (joint)",
    "motion": "CMD (motion)",
    "bone": "CMD (bone)",
    "fusion": "3s-CMD",
    "all": "CMD (mean of the 3 encoders' features)",
    "concat": "CMD (3 encoders' features side by side)",
}

# The published top-1 % (docs/published-behaviour.md §5) on BENCHMARKS, in order.
PUBLISHED = {
    ("linear", "joint"): (79.8, 86.9, 70.3, 71.5, 43.0),
    ("linear", "fusion"): (84.1, 90.9, 74.7, 76.1, 52.6),
}
CONTEXT = {  # the single-modality predecessor (ISC), four NTU benchmarks
    "linear": (76.3, 85.2, 67.1, 67.9, None),
    "knn": (62.5, 82.6, 50.6, 52.3, None),
}


# The evaluation's own settings that make two records two methods rather than two seeds of one: records
# of one column that differ in any of them get rows of their own, labelled with it.
# `fingerprint` and `val_fingerprint` are the evaluated folder's training and evaluation parts: two folders
# of one data set's name (another file list, another import, part of its evaluation recordings) are two
# benchmarks. The encoder's size makes two encoders two methods; the SGD probe's `eval_freq` too, since its
# result is the best of its validations.
SETUP_VIEWS = ("hidden_size", "num_layers", "view_frames", "min_crop_frames", "fingerprint", "val_fingerprint")
SETUP_KNN = ("train_crop", *SETUP_VIEWS)
SETUP_PROBE = ("finetune", "lr", "momentum", "weight_decay", "epochs", "schedule", "batch_size", "eval_freq")
SETUP_PROBE += SETUP_VIEWS
SETUP_LABELS = {"fingerprint": "data", "val_fingerprint": "evaluation data"}  # in a row's name


def _scalar(value):
    """Whether `value` is JSON's null, a string or a number (a list or dict is shown as its JSON)."""
    return value is None or isinstance(value, (str, int, float))


def _settings(record):
    """The record's settings record as one flat dict (nested as `to_dict` writes it, or flat as older
    versions did); {} where it has none."""
    return flatten(record["settings"]) if isinstance(record.get("settings"), dict) else {}


def _setup(record):
    """{name: value} of the record's setup settings that its settings record holds (nested as `to_dict`
    writes it, or flat as older versions did; a list as its JSON)."""
    settings = _settings(record)
    names = SETUP_KNN if record["stage"] == "knn" else SETUP_PROBE
    return {n: settings[n] if _scalar(settings[n]) else json.dumps(settings[n]) for n in names if n in settings}


def _repeat(record):
    """What makes two records of one cell the same run, the later replacing the earlier: the checkpoint
    and the seed, but the checkpoint alone for kNN on centre crops of a pretrained encoder (as its
    settings record says), which no seed changes. The checkpoint is its content's fingerprint where the
    record holds one (two pretrainings saved in turn at one path are two checkpoints), else its real path
    (records before it was written so were not)."""
    known = isinstance(record.get("settings"), dict) and record["settings"]  # without: each seed counts
    centre = known and _setup(record).get("train_crop", "centre") == "centre"  # before --train-crop: centre
    seedless = record["stage"] == "knn" and centre and record.get("checkpoint") is not None
    checkpoint = record.get("checkpoint")
    weights = checkpoint and (_settings(record).get("pretrained_fingerprint") or os.path.realpath(checkpoint))
    return weights, None if seedless else record.get("seed")


def _cell(records):
    """'mean ± std (n=k)' over the latest record (by date, then by order read) of each run (`_repeat`), or
    the single value; a cell that pools several checkpoints (pretraining seeds, or epochs of one run) says
    how many."""
    latest = {}
    for record in sorted(records, key=lambda r: str(r.get("date") or "")):  # stable: undated ones first
        latest[_repeat(record)] = record["value"]
    values = list(latest.values())
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.1f}"
    checkpoints = len({checkpoint for checkpoint, _ in latest})
    pooled = f", {checkpoints} checkpoints" if checkpoints > 1 else ""
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f} (n={len(values)}{pooled})"


def _label_ratio(record):
    """The share of the training labels a record's classifier saw (`--data-ratio`; 1 when absent)."""
    return float(record.get("data_ratio") or 1.0)


def _benchmark_name(benchmark):
    dataset, protocol = benchmark
    return f"{DATASET_NAMES.get(dataset, dataset)} {PROTOCOL_NAMES.get(protocol, protocol)}"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _columns(records):
    present = {(r["dataset"], base_protocol(r["protocol"])) for r in records}
    return list(BENCHMARKS) + sorted(present - set(BENCHMARKS))


def _published(values, columns):
    return [
        f"{values[BENCHMARKS.index(c)]:.1f}" if c in BENCHMARKS and values[BENCHMARKS.index(c)] is not None else "—"
        for c in columns
    ]


def _weight(record):
    """'--cmd-weight W' when the record's encoder was pretrained with another distillation weight than
    the published 1, else ''."""
    weight = record.get("pretrain_cmd_weight")
    return f"--cmd-weight {float(weight):g}" if weight is not None and float(weight) != 1.0 else ""


def _encoder_size(record):
    """'hidden_size H, num_layers L' as the record's settings hold them ('' where they do not)."""
    settings = _settings(record)
    return ", ".join(f"{name} {settings[name]}" for name in ("hidden_size", "num_layers") if name in settings)


def _variant(record):
    """What sets a record's encoder apart from the published method on its own data set: no or another
    distillation weight, pretraining on another data set, or on another training part than the evaluated
    folder's under the same name (its fingerprint: another import, another benchmark's part); '' for none."""
    source, pretrained = record.get("pretrain_dataset"), record.get("checkpoint") is not None
    settings = _settings(record)
    learnt, evaluated = settings.get("pretrain_fingerprint"), settings.get("fingerprint")
    if pretrained and source and source != record["dataset"]:
        elsewhere = f"pretrained on {source}"
    elif pretrained and learnt and evaluated and learnt != evaluated:
        elsewhere = f"pretrained on other {source + ' ' if source else ''}data ({learnt[:8]})"
    else:
        elsewhere = ""
    return ", ".join(part for part in (_weight(record), elsewhere) if part)


def _shown(name, value):
    """A setup's value in a row's name: a fingerprint by its first 8 digits, as `_variant` shows one."""
    return value[:8] if name.endswith("fingerprint") and isinstance(value, str) else value


def _measured_rows(records, columns, label):
    """Rows of measured cells per view, variant (`_variant`) and evaluation setup (the `_setup` settings
    that differ among the records of one column, named in the row); randomly initialised encoders (no
    checkpoint) get their own rows."""
    setups = [_setup(r) for r in records]
    values = {}  # (column, name) -> the values records of that column hold (a name a record lacks: none)
    for record, setup in zip(records, setups):
        for name, value in setup.items():
            values.setdefault(((record["dataset"], base_protocol(record["protocol"])), name), set()).add(value)
    varying = sorted({name for (_, name), found in values.items() if len(found) > 1})
    kinds = [  # each record's row suffix: its variant and its setup where the setups of a column differ
        ", ".join(
            part
            for part in [_variant(r)] + [f"{SETUP_LABELS.get(n, n)} {_shown(n, s[n])}" for n in varying if n in s]
            if part
        )
        for r, s in zip(records, setups)
    ]
    rows = []
    for baseline in (False, True):
        for kind in sorted(set(kinds)):
            for view, name in VIEW_NAMES.items():
                chosen = [
                    r
                    for r, k in zip(records, kinds)
                    if r["view"] == view and (r.get("checkpoint") is None) == baseline and k == kind
                ]
                cells = [
                    _cell([r for r in chosen if (r["dataset"], base_protocol(r["protocol"])) == c]) for c in columns
                ]
                if any(cells):
                    suffix = (f", {kind}" if kind else "") + (", random encoder" if baseline else "")
                    rows.append([f"{name} {label}{suffix}"] + cells)
    return rows


def report(records):
    """The markdown report of `records` (top-1 only), one table per stage that has records."""
    top1 = [r for r in records if r["metric"] == "top1"]
    sections = []
    linear = [r for r in top1 if r["stage"] == "linear"]
    if linear:
        columns = _columns(linear)
        rows = [
            ["CMD (joint) — paper"] + _published(PUBLISHED[("linear", "joint")], columns),
            ["3s-CMD — paper"] + _published(PUBLISHED[("linear", "fusion")], columns),
            ["ISC — paper (context)"] + _published(CONTEXT["linear"], columns),
        ]
        for probe in ("sgd", "logistic"):  # records before the logistic probe existed are SGD ones
            for ratio in sorted({_label_ratio(r) for r in linear}, reverse=True):  # all labels first
                chosen = [r for r in linear if r.get("probe", "sgd") == probe and _label_ratio(r) == ratio]
                label = "— ours" + (", logistic probe" if probe == "logistic" else "")
                label += f", {ratio * 100:g} % labels" if ratio < 1 else ""
                rows += _measured_rows(chosen, columns, label)
        sections.append(
            "### Linear evaluation (top-1 %)\n\n" + _table(["method"] + [_benchmark_name(c) for c in columns], rows)
        )
    knn = [r for r in top1 if r["stage"] == "knn"]
    if knn:
        columns = _columns(knn)
        rows = [["ISC — paper (context)"] + _published(CONTEXT["knn"], columns)]
        for k in sorted({int(r.get("k", 1)) for r in knn}):
            label = "— ours" if k == 1 else f"— ours, k={k}"
            rows += _measured_rows([r for r in knn if int(r.get("k", 1)) == k], columns, label)
        sections.append(
            "### kNN evaluation (top-1 %)\n\nThe paper's CMD kNN numbers are in its table "
            "(not restated here).\n\n" + _table(["method"] + [_benchmark_name(c) for c in columns], rows)
        )
    semi = [r for r in top1 if r["stage"] == "semi"]
    if semi:
        columns = [c for c in _columns(semi) if any((r["dataset"], base_protocol(r["protocol"])) == c for r in semi)]
        rows = []
        for ratio in sorted({r.get("data_ratio") for r in semi}, key=float):
            subset = [r for r in semi if r.get("data_ratio") == ratio]
            rows += _measured_rows(subset, columns, f"— ours, {float(ratio) * 100:g} % labels")
        sections.append(
            "### Semi-supervised fine-tuning (top-1 %, mean ± std over seeds)\n\n"
            + _table(["method"] + [_benchmark_name(c) for c in columns], rows)
        )
    transfer = [r for r in top1 if r["stage"] == "transfer"]
    if transfer:
        rows = []
        # a row per source, distillation weight and encoder size (named where the records hold several)
        groups = [(str(r.get("pretrain_dataset") or "unknown"), _weight(r), _encoder_size(r)) for r in transfer]
        named = len({size for _, _, size in groups}) > 1
        for group in sorted(set(groups)):
            source, weight, size = group
            for view, name in VIEW_NAMES.items():
                cell = _cell([r for r, g in zip(transfer, groups) if g == group and r["view"] == view])
                if cell:
                    label = ", ".join([f"{name} — ours"] + [part for part in (weight, named and size) if part])
                    rows.append([label, DATASET_NAMES.get(source, source), cell])
        sections.append(
            "### Transfer to PKU-MMD II (top-1 %)\n\n" + _table(["method", "pretrained on", "PKU-MMD II x-sub"], rows)
        )
    if sections:
        baselines = sum(r["stage"] == "baseline" for r in top1)
        if baselines:  # their rows belong beside the encoders of one data set (scripts/real_data_report.py)
            sections.append(
                f"({baselines} coordinate-baseline records ('baseline') left out: scripts/real_data_report.py "
                "tables them)"
            )
        return "\n\n".join(sections)
    if not records:
        return "no results"
    stages = sorted({str(r["stage"]) for r in records})
    return (
        f"no evaluation results among the {len(records)} records (stages: {', '.join(stages)}); the coordinate "
        "baselines' records ('baseline') are tabled by scripts/real_data_report.py"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.report", description="The results tables of CMD evaluations")
    parser.add_argument("files", nargs="*", help=f"results files (default {DEFAULT_RESULTS})")
    args = parser.parse_args(argv)
    paths = args.files or [DEFAULT_RESULTS]
    try:
        records = load_results(paths)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
