"""Summarise scripts/real_data_benchmark.sh: one table over data sets, mean ± std over seeds.

    python -m scripts.real_data_report --work-dir runs/real_data_benchmark --datasets nw_ucla msr_action3d \
        --seeds 0 1 2 --out results/real_data_benchmark

Reads, for every data set NAME under the work folder, `NAME/eval/<method>_seed<s>.jsonl` for the methods
cmd, cmd_weight0 and random (knn_eval.py's 'all' record: kNN on the mean feature; action_classification.py's
joint, motion, bone, fusion and concat records), `NAME/eval/baseline.jsonl` (scripts/coordinate_baseline.py),
`NAME/seconds` and the CMD runs' settings.json. Writes OUT.json and OUT.md and prints the markdown.
"""

import argparse
import os
import sys

from engine.results import load_results
from scripts.reporting import cell, over_seeds, publish_summary, run_settings, stats

METHODS = {"cmd": "CMD", "cmd_weight0": "CMD, --cmd-weight 0", "random": "random encoder"}
COLUMNS = (
    ("knn", "all"),
    ("linear", "joint"),
    ("linear", "motion"),
    ("linear", "bone"),
    ("linear", "fusion"),
    ("linear", "concat"),
)
HEADER = (
    "kNN, mean feature",
    "linear joint",
    "linear motion",
    "linear bone",
    "**linear 3-stream**",
    "linear, 3 streams side by side",
)
SETTINGS = (
    "preset",
    "train_samples",
    "median_frames",
    "hidden_size",
    "num_layers",
    "batch_size",
    "steps",
    "epochs",
    "lr",
    "contrast_k",
    "topk",
    "contrast_m",
    "view_frames",
    "min_crop_frames",
    "corrupted_joints",
    "num_class",
)


WEIGHTS = {"cmd": 1.0, "cmd_weight0": 0.0}  # the --cmd-weight each method's encoder was pretrained with


def run_values(path, method):
    """{(stage, view): top-1} of one run's results file of `method` (the last record of each pair wins).
    A ValueError where a record is not of that method, as far as it says (a checkpoint for the random
    encoder, none or another --cmd-weight for CMD's), or where its linear records come from two probes."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: results file missing (did the evaluations run?)")
    latest = {(r["stage"], r["view"]): r for r in load_results([path])}
    for (stage, view), record in latest.items():
        checkpoint, weight = record.get("checkpoint"), record.get("pretrain_cmd_weight")
        if (method == "random") != (checkpoint is None) or weight is not None and float(weight) != WEIGHTS[method]:
            found = f"checkpoint {checkpoint}, --cmd-weight {weight}" if checkpoint else "a random encoder"
            raise ValueError(f"{path}: its {stage} {view} record is of {found}, not of the {METHODS[method]}")
    probes = sorted({str(r.get("probe")) for (stage, _), r in latest.items() if stage == "linear"})
    if len(probes) > 1:
        raise ValueError(f"{path}: its linear records come from several probes ({', '.join(probes)})")
    values = {pair: float(record["value"]) for pair, record in latest.items()}
    missing = [f"{stage} {view}" for stage, view in COLUMNS if (stage, view) not in values]
    if missing:
        raise ValueError(f"{path}: no top-1 record for {', '.join(missing)}")
    return values


def collect_dataset(root, seeds):
    """The summary of one data set's runs under `root`."""
    summary = {"methods": {}}
    for method in METHODS:
        runs = [run_values(os.path.join(root, "eval", f"{method}_seed{seed}.jsonl"), method) for seed in seeds]
        summary["methods"][method] = {f"{s}_{v}": stats([r[(s, v)] for r in runs]) for s, v in COLUMNS}
    path = os.path.join(root, "eval", "baseline.jsonl")
    baseline = {r["view"]: r for r in load_results([path])}
    missing = [view for view in ("coordinates_logistic", "coordinates_1nn") if view not in baseline]
    if missing:
        raise ValueError(f"{path}: no {' or '.join(missing)} record (did scripts.coordinate_baseline run?)")
    summary["coordinates"] = {
        "logistic": baseline["coordinates_logistic"]["value"],
        "C": baseline["coordinates_logistic"].get("C"),
        "1nn": baseline["coordinates_1nn"]["value"],
        "val_samples": baseline["coordinates_1nn"].get("val_samples"),
    }
    gap = [
        a - b
        for a, b in zip(
            summary["methods"]["cmd"]["linear_fusion"]["per_seed"],
            summary["methods"]["cmd_weight0"]["linear_fusion"]["per_seed"],
        )
    ]
    summary["cmd_minus_weight0_linear_fusion"] = stats(gap)
    path = os.path.join(root, "checkpoints", f"cmd_seed{seeds[0]}", "settings.json")
    settings = run_settings(path)
    lacking = [k for k in SETTINGS if k not in settings]
    if lacking:
        raise ValueError(f"{path}: no {', '.join(lacking)} (a pretraining's settings record?)")
    summary["settings"] = {k: settings[k] for k in SETTINGS}
    path = os.path.join(root, "seconds")
    with open(path) as f:
        text = f.read()
    try:
        summary["minutes"] = int(text) / 60
    except ValueError:
        raise ValueError(f"{path}: expected the seconds the data set took, found {text[:40]!r}") from None
    return summary


def collect(work_dir, datasets, seeds):
    return {
        "seeds": list(seeds),
        "datasets": {name: collect_dataset(os.path.join(work_dir, name), seeds) for name in datasets},
    }


def markdown(summary):
    lines = [
        f"Top-1 % on each data set's evaluation part, {over_seeds(summary['seeds'], 'sample standard deviation')}; "
        "every run with the small-data preset the folder implies "
        "(docs/small-data.md), the same for all data sets.",
        "",
        "| data set | encoder | " + " | ".join(HEADER) + " |",
        "|---|---|" + "---|" * len(HEADER),
    ]
    for name, d in summary["datasets"].items():
        for method, label in METHODS.items():
            cells = d["methods"][method]
            lines.append(f"| {name} | {label} | " + " | ".join(cell(cells[f"{s}_{v}"]) for s, v in COLUMNS) + " |")
        c = d["coordinates"]
        lines.append(f"| {name} | coordinates, logistic regression (no learning) | | | | | {c['logistic']:.1f} | |")
        lines.append(f"| {name} | coordinates, 1-NN (no learning) | {c['1nn']:.1f} | | | | | |")
    lines.append("")
    for name, d in summary["datasets"].items():
        s, gap = d["settings"], d["cmd_minus_weight0_linear_fusion"]
        lines.append(
            f"- **{name}**: {s['train_samples']} training recordings (median {s['median_frames']:g} frames), "
            f"{d['coordinates']['val_samples']} evaluated, {s['num_class']} classes; {d['minutes']:.0f} "
            f"minute{'' if round(d['minutes']) == 1 else 's'} for the whole data set. "
            f"Preset: GRU {s['hidden_size']} x {s['num_layers']}, "
            f"{s['steps']} steps of batch {s['batch_size']} ({s['epochs']} epochs), lr {s['lr']:g}, "
            f"K {s['contrast_k']}, top-k {s['topk']}, key momentum {s['contrast_m']:g}, views of "
            f"{s['view_frames']} frames (crops of at least {s['min_crop_frames']}), "
            f"{s['corrupted_joints']} corrupted joints. CMD − CMD-weight-0, linear 3-stream: "
            + cell(gap, "+")
            + (f" (per seed {', '.join(f'{v:+.1f}' for v in gap['per_seed'])})." if len(gap["per_seed"]) > 1 else ".")
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Summarise scripts/real_data_benchmark.sh")
    parser.add_argument("--work-dir", required=True, help="the benchmark's WORK_DIR")
    parser.add_argument("--datasets", required=True, nargs="+", help="the data sets' names")
    parser.add_argument("--seeds", required=True, nargs="+", type=int, help="the model seeds of the runs")
    parser.add_argument("--out", required=True, help="output path without extension (.json and .md are written)")
    args = parser.parse_args(argv)
    return publish_summary(
        args.out, lambda: collect(args.work_dir, args.datasets, args.seeds), markdown, "real_data_report.py"
    )


if __name__ == "__main__":
    sys.exit(main())
