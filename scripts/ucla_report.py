"""Summarise scripts/ucla_benchmark.sh: kNN and linear-probe top-1 per stream, mean ± std over seeds.

    python scripts/ucla_report.py --work-dir runs/ucla_benchmark --seeds 0 1 2 --seconds 2400 \
        --out results/ucla_benchmark

Reads, under the work folder, `eval/<method>_seed<s>.jsonl` for the methods cmd, cmd_weight0 and random
(knn_eval.py records of views joint, motion, bone and all; action_classification.py records of
joint, motion, bone and fusion; the last record of each counts), `eval/cmd_paper_views_seed0.jsonl`
when present, `eval/baseline.jsonl` (scripts/coordinate_baseline.py) and the pretraining runs'
settings.json. Writes OUT.json and OUT.md and prints the markdown table.
"""
import argparse
import json
import os
import statistics
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine.results import load_results, publish_summary  # noqa: E402

METHODS = {"cmd": "CMD", "cmd_weight0": "CMD, --cmd-weight 0", "random": "random encoder"}
PAPER_VIEWS = "cmd_paper_views"
COLUMNS = (("knn", "joint"), ("knn", "motion"), ("knn", "bone"), ("knn", "all"),
           ("linear", "joint"), ("linear", "motion"), ("linear", "bone"), ("linear", "fusion"))
HEADER = ("kNN joint", "kNN motion", "kNN bone", "kNN mean feature", "linear joint", "linear motion",
          "linear bone", "**linear 3-stream**")


def run_values(path):
    """{(stage, view): top-1} of one run's results file (the last record of each pair wins)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: results file missing (did the evaluations run?)")
    values = {(r["stage"], r["view"]): float(r["value"]) for r in load_results([path]) if r["metric"] == "top1"}
    missing = [f"{stage} {view}" for stage, view in COLUMNS if (stage, view) not in values]
    if missing:
        raise ValueError(f"{path}: no top-1 record for {', '.join(missing)}")
    return values


def stats(values):
    """Mean, sample standard deviation (0 for one value) and the values themselves."""
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "per_seed": list(values)}


def collect(work_dir, seeds):
    """The benchmark summary: per method and column, mean ± std over seeds; the extra runs."""
    summary = {"seeds": list(seeds), "methods": {}}
    for method in METHODS:
        runs = [run_values(os.path.join(work_dir, "eval", f"{method}_seed{seed}.jsonl")) for seed in seeds]
        summary["methods"][method] = {f"{stage}_{view}": stats([r[(stage, view)] for r in runs])
                                      for stage, view in COLUMNS}
    paper = os.path.join(work_dir, "eval", f"{PAPER_VIEWS}_seed0.jsonl")
    if os.path.exists(paper):
        values = run_values(paper)
        summary["paper_views"] = {f"{stage}_{view}": values[(stage, view)] for stage, view in COLUMNS}
    baseline = [r for r in load_results([os.path.join(work_dir, "eval", "baseline.jsonl")])
                if r["stage"] == "baseline" and r["metric"] == "top1"]
    if not baseline:
        raise ValueError(f"{work_dir}/eval/baseline.jsonl: no baseline record")
    summary["coordinate_baseline"] = {"linear_joint": float(baseline[-1]["value"]), "C": baseline[-1].get("C")}
    gap = [a - b for a, b in zip(summary["methods"]["cmd"]["linear_fusion"]["per_seed"],
                                 summary["methods"]["cmd_weight0"]["linear_fusion"]["per_seed"])]
    summary["cmd_minus_weight0_linear_fusion"] = stats(gap)
    with open(os.path.join(work_dir, "checkpoints", f"cmd_seed{seeds[0]}", "settings.json")) as f:
        settings = json.load(f)
    summary["settings"] = {k: settings.get(k) for k in (
        "hidden_size", "num_layers", "batch_size", "contrast_k", "topk", "contrast_m", "lr", "epochs",
        "view_frames", "corrupted_joints", "train_samples", "steps_per_epoch", "layout", "device")}
    return summary


def _cell(s):
    return f"{s['mean']:.1f} ± {s['std']:.1f}"


def markdown(summary):
    s = summary["settings"]
    lines = [f"NW-UCLA cross-view (train views 1-2, {s['train_samples']} recordings; evaluate view 3), top-1 %, "
             f"mean ± std over seeds {', '.join(map(str, summary['seeds']))}. GRU {s['hidden_size']} x "
             f"{s['num_layers']}, {s['epochs']} epochs x {s['steps_per_epoch']} steps of batch {s['batch_size']}, "
             f"K {s['contrast_k']}, top-k {s['topk']}, views of {s['view_frames']} frames with "
             f"{s['corrupted_joints']} corrupted joints, layout {s['layout']}, device {s['device']}.", "",
             "| encoder | " + " | ".join(HEADER) + " |", "|---|" + "---|" * len(HEADER)]
    for method, label in METHODS.items():
        cells = summary["methods"][method]
        lines.append(f"| {label} | " + " | ".join(_cell(cells[f'{a}_{b}']) for a, b in COLUMNS) + " |")
    if "paper_views" in summary:
        paper = summary["paper_views"]
        lines.append("| CMD, the paper's views (64 frames, 12 corrupted joints; seed 0) | "
                     + " | ".join(f"{paper[f'{a}_{b}']:.1f}" for a, b in COLUMNS) + " |")
    base = summary["coordinate_baseline"]
    lines.append("| logistic regression on coordinates (no learning) | | | | | "
                 f"{base['linear_joint']:.1f} | | | |")
    gap = summary["cmd_minus_weight0_linear_fusion"]
    lines += ["", f"CMD − CMD-weight-0, linear 3-stream: {gap['mean']:+.1f} ± {gap['std']:.1f} "
                  f"(per seed {', '.join(f'{v:+.1f}' for v in gap['per_seed'])})."]
    if summary.get("seconds"):
        lines.append(f"Whole benchmark: {summary['seconds'] / 60:.0f} minutes.")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Summarise the NW-UCLA benchmark")
    parser.add_argument("--work-dir", required=True, help="the benchmark's WORK_DIR")
    parser.add_argument("--seeds", required=True, nargs="+", type=int, help="the model seeds of the runs")
    parser.add_argument("--seconds", type=float, default=None, help="wall time of the whole benchmark")
    parser.add_argument("--out", required=True, help="output path without extension (.json and .md are written)")
    args = parser.parse_args(argv)
    return publish_summary(args.out, lambda: dict(collect(args.work_dir, args.seeds), seconds=args.seconds),
                           markdown, "ucla_report.py")


if __name__ == "__main__":
    sys.exit(main())
