"""Collect the demo's evaluations into results/demo.json and print them as a table.

    python -m scripts.demo_report --work-dir runs/demo --out results/demo.json --seconds 312

Reads, under the work folder, `eval/<encoder>_knn.jsonl` and `eval/<encoder>_linear.jsonl` (the
results files knn_eval.py and action_classification.py append to; the last joint top-1 record of
each counts) for the encoders cmd, cmd_weight0 and random, and `checkpoints/cmd/settings.json` and
`log.jsonl` for how much pretraining was done. Writes
{"seconds": ..., "runs": [{"encoder", "knn_top1", "linear_top1"}, ...], "pretraining": {...},
"chance_top1": ...} with top-1 in percent.
"""

import argparse
import json
import os
import sys

from dataset.files import write_text
from engine.results import load_results
from scripts.reporting import run_settings

ENCODERS = ("cmd", "cmd_weight0", "random")
LABELS = {"cmd": "CMD", "cmd_weight0": "CMD, --cmd-weight 0", "random": "random encoder"}


def last_top1(path):
    """The value of the last joint-stream top-1 record of a results JSON-lines file."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: results file missing (did the evaluation run?)")
    values = [
        float(record["value"])
        for record in load_results([path])
        if record["metric"] == "top1" and record["view"] == "joint"
    ]
    if not values:
        raise ValueError(f"{path}: no joint-stream top1 record")
    return values[-1]


def pretraining_summary(folder):
    """Epochs, steps, samples and model size of the pretraining run in `folder` (settings.json, log.jsonl)."""
    settings = run_settings(os.path.join(folder, "settings.json"))
    epochs_done = 0
    last = {}
    log_path = os.path.join(folder, "log.jsonl")
    if os.path.exists(log_path):
        with open(log_path) as f:
            for line in f:
                if line.strip():
                    last = json.loads(line)
                    epochs_done += 1
    return {
        "epochs": epochs_done,
        "steps": epochs_done
        * (int(settings["train_samples"]) // (int(settings["batch_size"]) * int(settings["world_size"]))),
        "train_samples": int(settings["train_samples"]),
        "batch_size": int(settings["batch_size"]),
        "hidden_size": int(settings["hidden_size"]),
        "num_layers": int(settings["num_layers"]),
        "contrast_k": int(settings["contrast_k"]),
        "final_loss": last.get("loss"),
    }


def num_classes(work_dir):
    """Number of distinct labels in the processed training split of the demo."""
    from dataset.processed import load_label_pkl

    _, labels = load_label_pkl(os.path.join(work_dir, "data", "xsub", "train_label.pkl"))
    return len(set(labels))


def collect(work_dir, seconds):
    """The demo.json dict for the runs under `work_dir`."""
    runs = [
        {
            "encoder": name,
            "knn_top1": last_top1(os.path.join(work_dir, "eval", f"{name}_knn.jsonl")),
            "linear_top1": last_top1(os.path.join(work_dir, "eval", f"{name}_linear.jsonl")),
        }
        for name in ENCODERS
    ]
    return {
        "seconds": float(seconds),
        "runs": runs,
        "pretraining": pretraining_summary(os.path.join(work_dir, "checkpoints", "cmd")),
        "chance_top1": 100.0 / num_classes(work_dir),
    }


def table(summary):
    """The demo's results as a markdown table with a line on the pretraining done."""
    lines = ["| encoder | kNN top-1 % | linear top-1 % |", "|---|---|---|"]
    for run in summary["runs"]:
        lines.append(f"| {LABELS[run['encoder']]} | {run['knn_top1']:.1f} | {run['linear_top1']:.1f} |")
    p = summary["pretraining"]
    lines.append("")
    lines.append(
        f"Pretraining (each of CMD and CMD-weight-0): {p['epochs']} epochs = {p['steps']} steps of "
        f"batch {p['batch_size']} over {p['train_samples']} training samples; GRU hidden "
        f"{p['hidden_size']} x {p['num_layers']} layers, queue K {p['contrast_k']}. "
        f"Chance level {summary['chance_top1']:.1f} %. Whole demo: {summary['seconds']:.0f} s."
    )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Collect the demo's results into demo.json")
    parser.add_argument("--work-dir", required=True, help="the demo's WORK_DIR")
    parser.add_argument("--out", required=True, help="demo.json to write")
    parser.add_argument("--seconds", required=True, type=float, help="wall-clock seconds of the demo so far")
    args = parser.parse_args(argv)
    try:
        summary = collect(args.work_dir, args.seconds)
    except (OSError, ValueError, KeyError) as exc:
        print(f"demo_report.py: error: {exc}", file=sys.stderr)
        return 1
    write_text(args.out, json.dumps(summary, indent=2) + "\n")
    print(table(summary))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
