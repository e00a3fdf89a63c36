"""scripts/demo.sh end to end at a tiny scale, its dry run, and its report (scripts/demo_report.py)."""

import json
import os
import pickle
import shlex
import subprocess

import pytest

from scripts import demo_report

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# 3 classes x 4 subjects x 1 camera x 1 setup = 12 samples; x-sub trains on subjects 1, 2, 4 (9 samples)
# and validates on subject 3 (3 samples). Batch 4 with drop_last: 9 // 4 = 2 steps per epoch.
TINY = dict(
    DEMO_CLASSES="3",
    DEMO_SUBJECTS="4",
    DEMO_CAMERAS="1",
    DEMO_SETUPS="1",
    DEMO_REPLICATIONS="1",
    DEMO_HIDDEN="8",
    DEMO_LAYERS="1",
    DEMO_BATCH="4",
    DEMO_K="8",
    DEMO_TOPK="4",
    DEMO_EPOCHS="1",
    DEMO_LINEAR_EPOCHS="1",
    DEMO_WORKERS="0",
)


def run_script(env, script="demo.sh", timeout=30):
    """`bash scripts/<script>` from the repository root with the environment `env`."""
    return subprocess.run(
        ["bash", f"scripts/{script}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow  # the whole demo script, every stage, at tiny sizes
def test_demo_runs_end_to_end_at_tiny_scale(tmp_path):
    work, results = tmp_path / "work", tmp_path / "results"
    repo_json = os.path.join(ROOT, "results", "demo.json")
    before = os.stat(repo_json).st_mtime_ns if os.path.exists(repo_json) else None
    env = dict(os.environ, WORK_DIR=str(work), RESULTS_DIR=str(results), DRY_RUN="0", **TINY)
    proc = run_script(env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    summary = json.loads((results / "demo.json").read_text())
    assert summary["seconds"] > 0
    assert [run["encoder"] for run in summary["runs"]] == ["cmd", "cmd_weight0", "random"]
    for run in summary["runs"]:
        for key in ("knn_top1", "linear_top1"):
            # 3 validation samples: a top-1 is 0, 1, 2 or 3 thirds of 100.
            assert 0.0 <= run[key] <= 100.0
            assert run[key] * 3 / 100 == pytest.approx(round(run[key] * 3 / 100), abs=1e-3)
    assert summary["pretraining"]["epochs"] == 1 and summary["pretraining"]["steps"] == 2
    assert summary["pretraining"]["train_samples"] == 9
    assert summary["chance_top1"] == pytest.approx(100 / 3)

    assert "| random encoder |" in proc.stdout and "1 epochs = 2 steps" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("Done in ")
    for encoder in ("cmd", "cmd_weight0"):
        assert (work / "checkpoints" / encoder / "checkpoint_last.pth.tar").exists()
    after = os.stat(repo_json).st_mtime_ns if os.path.exists(repo_json) else None
    assert after == before, "the demo wrote into the repository's results/ although RESULTS_DIR was set"
    assert (work / ".cmd-work-folder").exists()  # its own: a rerun may empty its subfolders


def test_the_demo_never_empties_a_work_folder_it_did_not_make(tmp_path):
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    (work / "data" / "mine.npy").write_text("the user's")
    for script, variable in (("demo.sh", "WORK_DIR"), ("synthetic_benchmark.sh", "BENCH_DIR")):
        env = dict(os.environ, **{variable: str(work)}, DRY_RUN="1")
        proc = run_script(env, script)
        assert proc.returncode == 2 and f"{work} holds files these scripts did not make there" in proc.stderr
        assert not [line for line in proc.stdout.splitlines() if line.startswith("+ rm")]
    assert (work / "data" / "mine.npy").read_text() == "the user's"
    # a folder holding anything else is not made theirs either (the repository's root, say)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    env = dict(os.environ, WORK_DIR=str(other), DRY_RUN="0", PYTHON="true")
    proc = run_script(env)
    assert proc.returncode == 2 and sorted(os.listdir(other)) == ["notes.txt"]
    # these scripts start afresh: RESUME=1 does not apply
    env = dict(os.environ, WORK_DIR=str(tmp_path / "new"), DRY_RUN="1", RESUME="1")
    proc = run_script(env)
    assert proc.returncode == 2 and "RESUME=1: this script starts afresh" in proc.stderr


def test_a_switch_neither_1_nor_0_is_refused_before_anything_is_removed(tmp_path):
    # DRY_RUN=true read as "not 1" would run the demo for real and empty its work folder
    work = tmp_path / "work"
    (work / "checkpoints" / "cmd").mkdir(parents=True)
    (work / "checkpoints" / "cmd" / "checkpoint_last.pth.tar").write_text("days of training")
    (work / ".cmd-work-folder").write_text("")
    for switch, value in (("DRY_RUN", "true"), ("DRY_RUN", "yes"), ("FRESH", "on"), ("RESUME", "2")):
        env = dict(os.environ, WORK_DIR=str(work), RESULTS_DIR=str(tmp_path / "r"), DRY_RUN="1", PYTHON="true")
        env[switch] = value
        proc = run_script(env)
        assert proc.returncode == 2 and f"{switch}={value}: expected 1 (on) or 0 (off)" in proc.stderr
        assert not [line for line in proc.stdout.splitlines() if line.startswith("+ ")]
    assert sorted(os.listdir(work)) == [".cmd-work-folder", "checkpoints"]
    assert (work / "checkpoints" / "cmd" / "checkpoint_last.pth.tar").read_text() == "days of training"


def test_a_rerun_empties_exactly_its_own_subfolders(tmp_path):
    # left in place, an earlier run's eval/*.jsonl would be appended to and its checkpoints refused
    for script, variable in (("demo.sh", "WORK_DIR"), ("synthetic_benchmark.sh", "BENCH_DIR")):
        work = tmp_path / script
        for sub in ("raw", "data", "checkpoints", "eval", "logs", "keep"):
            (work / sub).mkdir(parents=True)
        (work / ".cmd-work-folder").write_text("")
        env = dict(os.environ, **{variable: str(work)}, RESULTS_DIR=str(tmp_path / "r"), DRY_RUN="1")
        proc = run_script(env, script)
        assert proc.returncode == 0, proc.stderr
        removed = [shlex.split(line[2:]) for line in proc.stdout.splitlines() if line.startswith("+ rm ")]
        assert removed[0] == ["rm", "-rf", *(str(work / sub) for sub in ("raw", "data", "checkpoints", "eval", "logs"))]


def fake_python(tmp_path, fails_on):
    """An interpreter for PYTHON that does nothing, fails (status 3, a line on stderr) on commands naming
    `fails_on`, and marks two commands running at once (each holds a folder for a moment)."""
    path = tmp_path / "python"
    path.write_text(
        "#!/bin/bash\n"
        f'case "$*" in *{fails_on}*) echo "a traceback from $1" >&2; exit 3 ;; esac\n'
        f'mkdir "{tmp_path}/running" 2> /dev/null || touch "{tmp_path}/overlap"\n'
        f'sleep 0.3; rmdir "{tmp_path}/running" 2> /dev/null; exit 0\n'
    )
    path.chmod(0o755)
    return str(path)


def test_a_failing_step_stops_the_demo_with_its_status_and_log(tmp_path):
    env = dict(os.environ, WORK_DIR=str(tmp_path / "w"), RESULTS_DIR=str(tmp_path / "r"), DRY_RUN="0", MAX_JOBS="1")
    # a step run in the foreground: the script stops with its status
    env["PYTHON"] = fake_python(tmp_path, "data_gen.synthetic")
    proc = run_script(env, timeout=60)
    assert proc.returncode == 3 and "a traceback from -m" in proc.stderr
    assert "data_gen.ntu_gendata" not in proc.stdout and "Done in" not in proc.stdout
    # a background job (one at a time, MAX_JOBS=1): named with the last lines of its log, stderr included
    env["PYTHON"] = fake_python(tmp_path, "pretrain_cmd.py")
    proc = run_script(env, timeout=60)
    log = tmp_path / "w" / "logs" / "pretrain_cmd.log"
    assert (
        proc.returncode != 0 and f"FAILED: {log}" in proc.stderr and "a traceback from pretrain_cmd.py" in proc.stderr
    )
    assert "knn_eval.py" not in proc.stdout and "Done in" not in proc.stdout
    assert log.read_text() == "a traceback from pretrain_cmd.py\n"  # a job's stderr goes to its log
    assert not (tmp_path / "overlap").exists()


def test_max_jobs_bounds_the_jobs_running_at_once(tmp_path):
    env = dict(os.environ, WORK_DIR=str(tmp_path / "w"), RESULTS_DIR=str(tmp_path / "r"), DRY_RUN="0", MAX_JOBS="1")
    env["PYTHON"] = fake_python(tmp_path, "nothing-names-this")
    proc = run_script(env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("(output: ") == 8 and not (tmp_path / "overlap").exists()
    env["MAX_JOBS"] = "2"  # the demo's default: the fake sees two at once
    proc = run_script(env, timeout=60)
    assert proc.returncode == 0 and (tmp_path / "overlap").exists()


def test_a_work_folder_in_use_by_another_script_is_refused(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / ".cmd-work-folder").write_text("")
    # flock runs its command only once it holds the lock, so "held" means held (no sleep to guess with)
    holder = subprocess.Popen(
        ["flock", str(work / ".cmd-work-folder"), "-c", "echo held; exec sleep 30"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        env = dict(os.environ, WORK_DIR=str(work), DRY_RUN="0", PYTHON="true")
        proc = run_script(env)
        assert proc.returncode == 1 and "is the work folder of another script that is running" in proc.stderr
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_demo_dry_run_prints_the_workflow_and_runs_nothing(tmp_path):
    env = dict(os.environ, WORK_DIR=str(tmp_path / "work"), RESULTS_DIR=str(tmp_path / "results"), DRY_RUN="1")
    proc = run_script(env)
    assert proc.returncode == 0, proc.stderr
    commands = [shlex.split(line[2:]) for line in proc.stdout.splitlines() if line.startswith("+ ")]
    assert not (tmp_path / "work").exists()
    pretrain = [c for c in commands if "pretrain_cmd.py" in c]
    assert [c[c.index("--cmd-weight") + 1] for c in pretrain] == ["1.0", "0"]
    for words in pretrain:
        assert words[words.index("--epochs") + 1] == "30"
        assert words[words.index("--data-dir") + 1] == str(tmp_path / "work" / "data" / "xsub")
    knn = [c for c in commands if "knn_eval.py" in c]
    linear = [c for c in commands if "action_classification.py" in c]
    assert len(knn) == len(linear) == 3
    random = [c for c in knn + linear if "--pretrained" not in c]
    assert len(random) == 2  # the random encoder, on crops of the pretrained encoders' 32 frames
    assert all(c[c.index("--view-frames") + 1] == "32" for c in random + pretrain)
    assert all(c[c.index("--corrupted-joints") + 1] == "5" for c in pretrain)
    for words in linear:
        assert words[words.index("--schedule") + 1 : words.index("--schedule") + 3] == ["10", "14"]
        assert "--finetune" not in words
    assert any("data_gen.ntu_gendata" in c for c in commands)  # as a module: this checkout's code
    assert commands[-1][1:3] == ["-m", "scripts.demo_report"]


def _write_jsonl(path, records):
    """Results records as the evaluation scripts write them (these fields are always present)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    common = {"stage": "knn", "dataset": "ntu60", "protocol": "cross_subject"}
    path.write_text("".join(json.dumps(dict(common, **r)) + "\n" for r in records))


def test_report_takes_the_last_joint_top1_and_the_pretraining_done(tmp_path):
    for encoder, knn, linear in (("cmd", 40.0, 55.5), ("cmd_weight0", 30.0, 45.0), ("random", 20.0, 25.0)):
        _write_jsonl(
            tmp_path / "eval" / f"{encoder}_knn.jsonl",
            [
                {"metric": "top1", "view": "joint", "value": 1.0},  # an earlier run: replaced
                {"metric": "top1", "view": "joint", "value": knn},
            ],
        )
        _write_jsonl(
            tmp_path / "eval" / f"{encoder}_linear.jsonl",
            [{"metric": "top1", "view": "joint", "value": linear}, {"metric": "top1", "view": "fusion", "value": 99.0}],
        )  # another stream: ignored
    ckpt = tmp_path / "checkpoints" / "cmd"
    ckpt.mkdir(parents=True)
    (ckpt / "settings.json").write_text(
        json.dumps(
            {
                "data": {"train_samples": 230},
                "optim": {"batch_size": 32},
                "run": {"world_size": 1},
                "encoder": {"hidden_size": 48, "num_layers": 2},
                "contrast": {"contrast_k": 256},
            }
        )
    )
    _write_jsonl(ckpt / "log.jsonl", [{"epoch": e, "loss": 10.0 - e} for e in range(5)])
    data = tmp_path / "data" / "xsub"
    data.mkdir(parents=True)
    with open(data / "train_label.pkl", "wb") as f:
        pickle.dump((["a", "b", "c", "d", "e"], [0, 1, 2, 3, 1]), f)

    out = tmp_path / "out" / "demo.json"
    assert demo_report.main(["--work-dir", str(tmp_path), "--out", str(out), "--seconds", "123"]) == 0
    summary = json.loads(out.read_text())
    assert summary["seconds"] == 123.0
    assert summary["runs"] == [
        {"encoder": "cmd", "knn_top1": 40.0, "linear_top1": 55.5},
        {"encoder": "cmd_weight0", "knn_top1": 30.0, "linear_top1": 45.0},
        {"encoder": "random", "knn_top1": 20.0, "linear_top1": 25.0},
    ]
    assert summary["pretraining"]["epochs"] == 5 and summary["pretraining"]["steps"] == 35
    assert summary["pretraining"]["final_loss"] == 6.0
    assert summary["chance_top1"] == 25.0  # 4 classes


def test_report_names_the_missing_results_file(tmp_path, capsys):
    out = tmp_path / "demo.json"
    assert demo_report.main(["--work-dir", str(tmp_path), "--out", str(out), "--seconds", "1"]) == 1
    err = capsys.readouterr().err
    assert "cmd_knn.jsonl" in err and "missing" in err
    assert not out.exists()
