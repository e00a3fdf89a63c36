"""scripts/ucla_benchmark.sh (dry run), scripts/ucla_report.py and scripts/coordinate_baseline.py."""
import json
import os
import pickle
import shlex
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import coordinate_baseline  # noqa: E402
import ucla_report  # noqa: E402
from dataset.layouts import KINECT20, write_folder_record  # noqa: E402


def dry_run(**env):
    proc = subprocess.run(["bash", "scripts/ucla_benchmark.sh"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "DRY_RUN": "1", **env}, timeout=30)
    return proc, [shlex.split(line[2:]) for line in proc.stdout.splitlines() if line.startswith("+ ")]


def test_missing_data_variable_is_named():
    env = {k: v for k, v in os.environ.items() if k != "UCLA_DATA"}
    proc = subprocess.run(["bash", "scripts/ucla_benchmark.sh"], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=30)
    assert proc.returncode == 2 and "UCLA_DATA is not set" in proc.stderr
    proc, _ = dry_run(UCLA_DATA="/nowhere/all_sqe", DRY_RUN="0")
    assert proc.returncode == 2 and "UCLA_DATA=/nowhere/all_sqe: no such file" in proc.stderr


def test_dry_run_runs_every_part_of_the_benchmark(tmp_path):
    proc, commands = dry_run(UCLA_DATA="archive.tar.gz", WORK_DIR=str(tmp_path / "w"))
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "w").exists()
    scripts = [next((w for w in c if w.endswith(".py")), None) for c in commands]
    assert "data_gen/ucla_gendata.py" in scripts
    pretrain = [c for c in commands if "pretrain_cmd.py" in c]
    runs = {os.path.basename(c[c.index("--checkpoint-path") + 1]): c for c in pretrain}
    assert set(runs) == {f"{m}_seed{s}" for m in ("cmd", "cmd_weight0") for s in "012"} | {"cmd_paper_views_seed0"}
    for name, words in runs.items():
        weight = words[words.index("--cmd-weight") + 1]
        assert weight == ("0" if "weight0" in name else "1")
        frames = words[words.index("--view-frames") + 1]
        assert frames == ("64" if "paper" in name else "32")
        assert ("--corrupted-joints" in words) == ("paper" not in name)  # the paper's: the layout's 12
    knn = [c for c in commands if "knn_eval.py" in c]
    assert len(knn) == 4 * 10  # joint, motion, bone, all x (6 pretrained + 3 random + paper views)
    linear = [c for c in commands if "action_classification.py" in c]
    assert len(linear) == 10 and all(c[c.index("--view") + 1] == "all" for c in linear)
    random = [c for c in linear if "--pretrained" not in c]
    assert len(random) == 3 and all(c[c.index("--hidden-size") + 1] == "64" for c in random)
    assert any("coordinate_baseline.py" in w for c in commands for w in c)
    assert commands[-1][1] == "scripts/ucla_report.py"


def write_records(path, values, stage_views):
    with open(path, "w") as f:
        for (stage, view), value in zip(stage_views, values):
            f.write(json.dumps({"stage": stage, "dataset": "nw_ucla", "protocol": "cross_view", "view": view,
                                "metric": "top1", "value": value}) + "\n")


def test_report_means_and_spreads_by_hand(tmp_path):
    work = tmp_path / "w"
    (work / "eval").mkdir(parents=True)
    base = {"cmd": 80.0, "cmd_weight0": 78.0, "random": 40.0}
    for method, level in base.items():
        for seed, shift in zip((0, 1, 2), (-1.0, 0.0, 1.0)):
            write_records(work / "eval" / f"{method}_seed{seed}.jsonl",
                          [level + shift + i for i in range(8)], ucla_report.COLUMNS)
    write_records(work / "eval" / "baseline.jsonl", [76.5], [("baseline", "joint")])
    (work / "checkpoints" / "cmd_seed0").mkdir(parents=True)
    (work / "checkpoints" / "cmd_seed0" / "settings.json").write_text(json.dumps({"hidden_size": 64}))
    summary = ucla_report.collect(str(work), [0, 1, 2])
    fusion = summary["methods"]["cmd"]["linear_fusion"]
    assert fusion["mean"] == pytest.approx(87.0) and fusion["std"] == pytest.approx(1.0)  # 86, 87, 88
    assert summary["methods"]["random"]["knn_joint"]["per_seed"] == [39.0, 40.0, 41.0]
    assert summary["cmd_minus_weight0_linear_fusion"]["mean"] == pytest.approx(2.0)
    assert summary["coordinate_baseline"]["linear_joint"] == 76.5
    out = tmp_path / "results" / "ucla"
    assert ucla_report.main(["--work-dir", str(work), "--seeds", "0", "1", "2", "--seconds", "1800",
                             "--out", str(out)]) == 0
    written = json.loads((tmp_path / "results" / "ucla.json").read_text())
    assert written["seconds"] == 1800 and written["methods"]["cmd"]["linear_fusion"]["mean"] == pytest.approx(87.0)
    assert "| CMD | 80.0 ± 1.0 | 81.0 ± 1.0 |" in (tmp_path / "results" / "ucla.md").read_text()
    (work / "eval" / "random_seed2.jsonl").write_text("")
    with pytest.raises(ValueError, match="random_seed2.jsonl: no top-1 record for knn joint"):
        ucla_report.collect(str(work), [0, 1, 2])


def test_coordinate_baseline_against_a_separable_folder(tmp_path):
    # Two classes whose coordinates differ in sign: any linear model separates them.
    folder = tmp_path / "d"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for part, n in (("train", 40), ("val", 10)):
        labels = np.arange(n) % 2
        data = rng.normal(0.1, 0.05, size=(n, 3, 300, 20, 1)).astype(np.float32)
        data[labels == 1] *= -1
        np.save(folder / f"{part}_data_joint.npy", data)
        np.save(folder / f"{part}_num_frame.npy", np.full(n, 50, dtype=np.int64))
        with open(folder / f"{part}_label.pkl", "wb") as f:
            pickle.dump(([f"{part}{i}" for i in range(n)], labels.tolist()), f)
    write_folder_record(str(folder), KINECT20, 2, dataset="separable")
    results = tmp_path / "r.jsonl"
    assert coordinate_baseline.main(["--data-dir", str(folder), "--results", str(results)]) == 100.0
    record = json.loads(results.read_text())
    assert (record["stage"], record["dataset"], record["value"], record["checkpoint"]) == (
        "baseline", "separable", 100.0, None)
    with pytest.raises(SystemExit) as stop:
        coordinate_baseline.main(["--data-dir", str(tmp_path / "missing"), "--results", str(results)])
    assert stop.value.code == 2
