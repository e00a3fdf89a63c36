"""Summarise scripts/synthetic_benchmark.sh: kNN curves over training and the final gap to random.

    python -m scripts.benchmark_report --bench-dir runs/synthetic_benchmark_cpu --seeds 0 1 2 \
        --out results/synthetic_benchmark_cpu

Reads, under the benchmark folder, `eval/<method>_seed<s>.jsonl` (kNN records of knn_eval.py, one
per checkpoint_%04d.pth.tar of the run; `random_seed<s>.jsonl` holds the random encoder's) and the
runs' `checkpoints/<method>_seed<s>/settings.json` and `log.jsonl`. Writes OUT.json and OUT.md and
prints the markdown. A checkpoint_%04d (0-based epoch e) counts as e + 1 epochs of training.
"""

import argparse
import json
import os
import re
import statistics
import sys

from engine.results import load_results
from scripts.reporting import cell, over_seeds, publish_summary, run_settings, stats

METHODS = ("cmd", "cmd_weight0")
LABELS = {"cmd": "CMD", "cmd_weight0": "CMD, --cmd-weight 0", "random": "random encoder"}
CHECKPOINT = re.compile(r"checkpoint_(\d{4})\.pth\.tar$")


def knn_records(path):
    """{checkpoint path or None: top-1} of the joint-stream kNN records of a results file (last wins)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: results file missing (did the kNN evaluations run?)")
    values = {
        record.get("checkpoint"): float(record["value"])
        for record in load_results([path])
        if record["stage"] == "knn" and record["view"] == "joint" and record["metric"] == "top1"
    }
    if not values:
        raise ValueError(f"{path}: no joint-stream kNN top1 record")
    return values


def curve(path):
    """{epochs trained: top-1} from the kNN records of one pretraining run's checkpoints."""
    points = {}
    for checkpoint, value in knn_records(path).items():
        match = CHECKPOINT.search(checkpoint or "")
        if match is None:
            raise ValueError(f"{path}: record of checkpoint {checkpoint!r} is not a checkpoint_%04d.pth.tar")
        points[int(match.group(1)) + 1] = value
    return points


def run_info(folder):
    """Settings of a pretraining run (flat) and its logged epochs."""
    settings = run_settings(os.path.join(folder, "settings.json"))
    settings["steps_per_epoch"] = int(settings["train_samples"]) // (
        int(settings["batch_size"]) * int(settings["world_size"])
    )
    with open(os.path.join(folder, "log.jsonl")) as f:
        epochs = [json.loads(line) for line in f if line.strip()]
    return settings, epochs


def collect(bench_dir, seeds):
    """The benchmark summary dict (see the module docstring)."""
    random = [list(knn_records(os.path.join(bench_dir, "eval", f"random_seed{s}.jsonl")).values())[-1] for s in seeds]
    summary = {"seeds": list(seeds), "random": stats(random), "methods": {}}
    for method in METHODS:
        curves, finals, losses = [], [], []
        for seed in seeds:
            points = curve(os.path.join(bench_dir, "eval", f"{method}_seed{seed}.jsonl"))
            settings, epochs = run_info(os.path.join(bench_dir, "checkpoints", f"{method}_seed{seed}"))
            curves.append(points)
            finals.append(points[max(points)])
            losses.append(epochs[-1]["loss"] if epochs else None)
        common = sorted(set.intersection(*(set(c) for c in curves)))
        steps_per_epoch = int(settings["steps_per_epoch"])
        summary["methods"][method] = {
            "curve": [dict(epochs=e, steps=e * steps_per_epoch, **stats([c[e] for c in curves])) for e in common],
            "final": dict(epochs=max(common), steps=max(common) * steps_per_epoch, **stats(finals)),
            "gap_vs_random": statistics.mean(finals) - statistics.mean(random),
            "final_loss": losses,
        }
        summary["settings"] = {
            k: settings.get(k)
            for k in (
                "hidden_size",
                "num_layers",
                "batch_size",
                "contrast_k",
                "topk",
                "contrast_m",
                "lr",
                "epochs",
                "train_samples",
                "steps_per_epoch",
                "mlp",
                "device",
            )
        }
    return summary


def markdown(summary):
    """The summary as markdown: the final table, then the kNN curve."""
    seeds = summary["seeds"]
    s = summary["settings"]
    lines = [
        f"kNN top-1 % (cosine 1-NN on frozen joint-encoder features), {over_seeds(seeds)}. "
        f"GRU {s['hidden_size']} x {s['num_layers']}, batch {s['batch_size']}, "
        f"K {s['contrast_k']}, top-k {s['topk']}, m {s['contrast_m']}, lr {s['lr']}, "
        f"{s['train_samples']} training samples ({s['steps_per_epoch']} steps per epoch), device {s['device']}.",
        "",
        "| encoder | epochs | steps | kNN top-1 % | per seed | gap vs random |",
        "|---|---|---|---|---|---|",
    ]
    for method, result in summary["methods"].items():
        final = result["final"]
        lines.append(
            f"| {LABELS[method]} | {final['epochs']} | {final['steps']} | {cell(final)} | "
            f"{', '.join(f'{v:.1f}' for v in final['per_seed'])} | {result['gap_vs_random']:+.1f} |"
        )
    random = summary["random"]
    lines.append(
        f"| {LABELS['random']} | 0 | 0 | {cell(random)} | {', '.join(f'{v:.1f}' for v in random['per_seed'])} | |"
    )
    lines += [
        "",
        f"kNN top-1 % over training ({over_seeds(seeds)}):",
        "",
        "| epochs | steps | " + " | ".join(LABELS[m] for m in summary["methods"]) + " |",
        "|---|---|" + "---|" * len(summary["methods"]),
    ]
    curves = {m: {p["epochs"]: p for p in r["curve"]} for m, r in summary["methods"].items()}
    lines.append("| 0 | 0 | " + " | ".join(cell(random) + " (random)" for _ in summary["methods"]) + " |")
    for epochs in sorted(set.intersection(*(set(c) for c in curves.values()))):
        steps = next(iter(curves.values()))[epochs]["steps"]
        lines.append(f"| {epochs} | {steps} | " + " | ".join(cell(c[epochs]) for c in curves.values()) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Summarise the synthetic benchmark")
    parser.add_argument("--bench-dir", required=True, help="the benchmark's BENCH_DIR")
    parser.add_argument("--seeds", required=True, nargs="+", type=int, help="the model seeds of the runs")
    parser.add_argument("--out", required=True, help="output path without extension (.json and .md are written)")
    args = parser.parse_args(argv)
    return publish_summary(args.out, lambda: collect(args.bench_dir, args.seeds), markdown, "benchmark_report.py")


if __name__ == "__main__":
    sys.exit(main())
