"""scripts/synthetic_benchmark.sh (dry runs, and one tiny real run) and its report, scripts/benchmark_report.py."""

import json
import os
import shlex
import subprocess
import sys

import pytest

from dataset.processed import load_split
from options.options_classification import parse_knn
from options.options_pretraining import parse_args
from options.parsing import fill
from options.presets import preset
from scripts import benchmark_report

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def dry_run(**env):
    proc = subprocess.run(
        ["bash", "scripts/synthetic_benchmark.sh"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, DRY_RUN="1", **env),
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return [shlex.split(line[2:]) for line in proc.stdout.splitlines() if line.startswith("+ ")]


def value(words, flag, n=1):
    i = words.index(flag)
    return words[i + 1] if n == 1 else words[i + 1 : i + 1 + n]


@pytest.mark.parametrize(
    "size, epochs, hidden, layers, batch, k, topk, classes",
    [
        ("cpu", "31", "48", "2", "32", "256", "128", 20),
        ("gpu", "41", "256", "3", "128", "1024", "512", 40),
    ],
)
def test_benchmark_dry_run(size, epochs, hidden, layers, batch, k, topk, classes, tmp_path):
    commands = dry_run(BENCH_SIZE=size, BENCH_DIR=str(tmp_path / "b"))
    assert not (tmp_path / "b").exists()
    generators = [c for c in commands if "data_gen.synthetic" in c]
    ids = [int(a) for c in generators for a in c[c.index("--action-ids") + 1 : c.index("--subjects")]]
    assert sorted(ids) == list(range(1, classes + 1))
    assert len({shlex.join(c[c.index("--subjects") :]) for c in generators}) == 1  # same nuisances everywhere
    assert value(generators[0], "--max-yaw") == "90"

    pretrain = [c for c in commands if "pretrain_cmd.py" in c]
    assert sorted((value(c, "--seed"), value(c, "--cmd-weight")) for c in pretrain) == [
        (s, w) for s in "012" for w in ("0", "1.0")
    ]
    for words in pretrain:
        assert (
            value(words, "--epochs"),
            value(words, "--hidden-size"),
            value(words, "--num-layers"),
            value(words, "--batch-size"),
            value(words, "--contrast-k"),
            value(words, "--topk"),
        ) == (epochs, hidden, layers, batch, k, topk)
        assert (value(words, "--contrast-m"), value(words, "--lr")) == ("0.99", "0.05")
        resolved = parse_args(words[words.index("pretrain_cmd.py") + 1 :])[1]
        fill(resolved, preset("pretrain", "ntu60"))  # the rest from the preset of the converter's ntu60 folder
        assert (resolved.contrast_t, resolved.teacher_t, resolved.student_t, resolved.mlp) == (0.07, 0.05, 0.1, True)
        assert words[-4:] == ["--corrupted-joints", "5", "--view-frames", "32"]

    knn = [c for c in commands if "knn_eval.py" in c]
    checkpoints = [value(c, "--pretrained") for c in knn if "--pretrained" in c]
    per_run = int(epochs) // 10 + 1  # checkpoints at epochs 0, 10, ..., the last one included
    assert len(checkpoints) == len(set(checkpoints)) == 6 * per_run
    assert sum(c.endswith("checkpoint_%04d.pth.tar" % (int(epochs) - 1)) for c in checkpoints) == 6
    random = [c for c in knn if "--pretrained" not in c]
    assert len(random) == 3 and all(value(c, "--hidden-size") == hidden for c in random)
    assert all(value(c, "--view-frames") == "32" for c in random)  # the pretrained encoders' crops
    assert all(parse_knn(c[c.index("knn_eval.py") + 1 :])[1].knn_neighbours is None for c in knn)  # the preset's 1
    folders = [value(c, "--checkpoint-path") for c in commands if "--checkpoint-path" in c]
    assert len(folders) == len(set(folders)) == 6 + len(knn)  # every run a folder of its own
    assert commands[-1][1:3] == ["-m", "scripts.benchmark_report"]


def test_each_size_has_its_own_default_folder_and_the_random_encoder_follows_the_views(tmp_path):
    for size in ("cpu", "gpu"):  # a GPU run never empties the CPU run's folder
        commands = dry_run(BENCH_SIZE=size, BENCH_PRETRAIN_ARGS="--view-frames 64", SEEDS="0")
        pretrain = [c for c in commands if "pretrain_cmd.py" in c]
        assert {value(c, "--checkpoint-path").split("/")[-3] for c in pretrain} == {f"synthetic_benchmark_{size}"}
        random = [c for c in commands if "knn_eval.py" in c and "--pretrained" not in c]
        assert [value(c, "--view-frames") for c in random] == ["64"]


def _jsonl(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _knn(checkpoint, value):
    return {
        "stage": "knn",
        "dataset": "ntu60",
        "protocol": "cross_subject",
        "view": "joint",
        "metric": "top1",
        "value": value,
        "checkpoint": checkpoint,
    }


def test_benchmark_report_curves_and_gap(tmp_path):
    finals = {"cmd": (60.0, 70.0), "cmd_weight0": (50.0, 54.0)}
    for seed, random_value in ((0, 40.0), (1, 44.0)):
        _jsonl(tmp_path / "eval" / f"random_seed{seed}.jsonl", [_knn(None, random_value)])
        for method, values in finals.items():
            run = tmp_path / "checkpoints" / f"{method}_seed{seed}"
            _jsonl(
                tmp_path / "eval" / f"{method}_seed{seed}.jsonl",
                [
                    _knn(str(run / "checkpoint_0000.pth.tar"), 30.0 + seed),
                    _knn(str(run / "checkpoint_0010.pth.tar"), values[seed]),
                ],
            )
            _jsonl(run / "log.jsonl", [{"epoch": e, "loss": 9.0 - e} for e in range(11)])
            (run / "settings.json").write_text(
                json.dumps(
                    {
                        "data": {"train_samples": 1440},
                        "optim": {"batch_size": 32},
                        "run": {"world_size": 1},
                        "encoder": {"hidden_size": 48},
                    }
                )
            )
    out = tmp_path / "out" / "bench"
    assert benchmark_report.main(["--bench-dir", str(tmp_path), "--seeds", "0", "1", "--out", str(out)]) == 0
    summary = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert summary["random"]["mean"] == 42.0
    cmd = summary["methods"]["cmd"]
    assert cmd["final"]["epochs"] == 11 and cmd["final"]["steps"] == 495
    assert cmd["final"]["mean"] == 65.0 and cmd["final"]["std"] == pytest.approx(50**0.5)
    assert cmd["gap_vs_random"] == 23.0
    assert summary["methods"]["cmd_weight0"]["gap_vs_random"] == 10.0
    assert [(p["epochs"], p["steps"], p["mean"]) for p in cmd["curve"]] == [(1, 45, 30.5), (11, 495, 65.0)]
    assert cmd["final_loss"] == [-1.0, -1.0]
    text = (tmp_path / "out" / "bench.md").read_text()
    assert "| CMD | 11 | 495 | 65.0 ± 7.1 | 60.0, 70.0 | +23.0 |" in text


def test_benchmark_report_names_missing_runs(tmp_path, capsys):
    assert benchmark_report.main(["--bench-dir", str(tmp_path), "--seeds", "0", "--out", str(tmp_path / "x")]) == 1
    assert "random_seed0.jsonl" in capsys.readouterr().err


def test_extra_pretraining_flags_come_last(tmp_path):
    commands = dry_run(BENCH_DIR=str(tmp_path / "b"), BENCH_PRETRAIN_ARGS="--cos --epochs 5", SEEDS="3")
    pretrain = [c for c in commands if "pretrain_cmd.py" in c]
    assert len(pretrain) == 2
    for words in pretrain:
        assert words[-3:] == ["--cos", "--epochs", "5"] and value(words, "--seed") == "3"


def test_parallel_generators_write_every_recording_once(tmp_path):
    # MAX_JOBS generators side by side, each into a folder of its own, gathered for the converter
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        DRY_RUN="0",
        BENCH_DIR=str(tmp_path / "b"),
        RESULTS_DIR=str(tmp_path / "r"),
        BENCH_CLASSES="6",
        BENCH_SUBJECTS="3",
        BENCH_REPLICATIONS="2",
        BENCH_EPOCHS="1",
        SEEDS="0",
        MAX_JOBS="3",
    )
    proc = subprocess.run(
        ["bash", "scripts/synthetic_benchmark.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = str(tmp_path / "b" / "data" / "xsub")
    names = sorted(load_split(data, "train").names + load_split(data, "val").names)
    assert names == sorted(
        f"S{s:03d}C{c:03d}P{p:03d}R{r:03d}A{a:03d}.skeleton"
        for a in range(1, 7)
        for p in range(1, 4)
        for c in range(1, 4)
        for s in range(1, 3)
        for r in range(1, 3)
    )
    assert not (tmp_path / "b" / "raw").exists()
