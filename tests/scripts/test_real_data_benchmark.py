"""scripts/real_data_benchmark.sh (dry run), its report (by hand) and the coordinate baselines."""

import json
import os
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest

from dataset.layouts import KINECT20
from dataset.processed import fingerprint, load_splits
from scripts import coordinate_baseline, real_data_report
from scripts.reporting import cell, over_seeds, stats
from tests.feeder.reference_augmentations import centre_crop
from tests.helpers import write_processed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def benchmark(*args, **env):
    proc = subprocess.run(
        ["bash", "scripts/real_data_benchmark.sh", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DRY_RUN": "1", **env},
        timeout=30,
    )
    return proc, [shlex.split(line[2:]) for line in proc.stdout.splitlines() if line.startswith("+ ")]


def test_arguments_are_checked():
    proc, _ = benchmark()
    assert proc.returncode == 2 and "usage:" in proc.stderr
    proc, _ = benchmark("nw_ucla")
    assert proc.returncode == 2 and "expected NAME=SOURCE" in proc.stderr
    proc, _ = benchmark("nw_ucla=/nowhere/all_sqe", DRY_RUN="0")
    assert proc.returncode == 2 and "/nowhere/all_sqe: no such file or folder" in proc.stderr


def test_dry_run_runs_every_part_with_the_same_defaults(tmp_path):
    proc, commands = benchmark(
        "nw_ucla=ucla.tar.gz", "msr_action3d=msr/", "mine=data/mine", WORK_DIR=str(tmp_path / "w")
    )
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "w").exists()
    scripts = [c[c.index("-m") + 1] if "-m" in c else next((w for w in c if w.endswith(".py")), None) for c in commands]
    assert scripts.count("data_gen.ucla_gendata") == 1 and scripts.count("data_gen.msr_gendata") == 1
    pretrain = [c for c in commands if "pretrain_cmd.py" in c]
    assert len(pretrain) == 3 * 2 * 3  # data sets x (CMD, CMD-weight-0) x seeds
    for words in pretrain:
        flags = {w for w in words if w.startswith("--")}
        # nothing but the folder, the seed, the method and where things go: the preset decides the rest
        assert flags <= {"--data-dir", "--seed", "--cmd-weight", "--checkpoint-path"}, flags
        assert ("--cmd-weight" in words) == ("cmd_weight0" in words[words.index("--checkpoint-path") + 1])
    mine = [c for c in pretrain if c[c.index("--data-dir") + 1] == os.path.join(ROOT, "data/mine")]
    assert len(mine) == 6  # a processed folder is used as it is (a relative one: from where the script was called)
    assert not any("--protocol" in c for c in commands)  # each folder's record says its benchmark
    for entry in ("knn_eval.py", "action_classification.py"):
        runs = [c for c in commands if entry in c]
        assert len(runs) == 3 * 3 * 3  # data sets x (CMD, CMD-weight-0, random) x seeds
        assert all(c[c.index("--view") + 1] == "all" for c in runs)
        assert sum("--pretrained" not in c for c in runs) == 9
        assert not any(w in c for c in runs for w in ("--hidden-size", "--probe", "--epochs"))
    assert scripts.count("scripts.coordinate_baseline") == 3
    assert commands[-1][1:3] == ["-m", "scripts.real_data_report"]
    assert commands[-1][commands[-1].index("--datasets") + 1 : commands[-1].index("--seeds")] == [
        "nw_ucla",
        "msr_action3d",
        "mine",
    ]


def write_records(path, records, **extra):
    with open(path, "w") as f:
        for stage, view, value in records:
            f.write(
                json.dumps(
                    {
                        "stage": stage,
                        "dataset": "d",
                        "protocol": "cross_subject",
                        "view": view,
                        "metric": "top1",
                        "value": value,
                        **extra,
                    }
                )
                + "\n"
            )


def test_report_means_and_spreads_by_hand(tmp_path, capsys):
    root = tmp_path / "w" / "d"
    (root / "eval").mkdir(parents=True)
    base = {"cmd": 80.0, "cmd_weight0": 78.0, "random": 40.0}
    for method, level in base.items():
        for seed, shift in zip((0, 1, 2), (-1.0, 0.0, 1.0)):
            write_records(
                root / "eval" / f"{method}_seed{seed}.jsonl",
                [(s, v, level + shift + i) for i, (s, v) in enumerate(real_data_report.COLUMNS)],
                **({} if method == "random" else {"checkpoint": f"{method}_seed{seed}/checkpoint_last.pth.tar"}),
            )
    write_records(
        root / "eval" / "baseline.jsonl",
        [("baseline", "coordinates_logistic", 76.5), ("baseline", "coordinates_1nn", 61.0)],
        val_samples=12,
    )
    (root / "checkpoints" / "cmd_seed0").mkdir(parents=True)
    settings = {
        "preset": "small",
        "data": {"train_samples": 200, "median_frames": 31, "num_class": 10},
        "encoder": {"hidden_size": 64, "num_layers": 2},
        "optim": {"batch_size": 32, "steps": 3000, "epochs": 500, "lr": 0.05},
        "contrast": {"contrast_k": 96, "topk": 48, "contrast_m": 0.99},
        "views": {"view_frames": 32, "min_crop_frames": 16, "corrupted_joints": 3},
    }
    (root / "checkpoints" / "cmd_seed0" / "settings.json").write_text(json.dumps(settings))
    (root / "seconds").write_text("1800")
    summary = real_data_report.collect(str(tmp_path / "w"), ["d"], [0, 1, 2])["datasets"]["d"]
    fusion = summary["methods"]["cmd"]["linear_fusion"]
    assert fusion["mean"] == pytest.approx(84.0) and fusion["std"] == pytest.approx(1.0)  # 83, 84, 85
    assert summary["methods"]["random"]["knn_all"]["per_seed"] == [39.0, 40.0, 41.0]
    assert summary["cmd_minus_weight0_linear_fusion"]["mean"] == pytest.approx(2.0)
    assert (summary["coordinates"]["logistic"], summary["coordinates"]["1nn"]) == (76.5, 61.0)
    assert summary["minutes"] == 30 and summary["settings"]["contrast_k"] == 96
    out = tmp_path / "results" / "real"
    assert (
        real_data_report.main(
            ["--work-dir", str(tmp_path / "w"), "--datasets", "d", "--seeds", "0", "1", "2", "--out", str(out)]
        )
        == 0
    )
    text = (tmp_path / "results" / "real.md").read_text()
    assert "| d | CMD | 80.0 ± 1.0 | 81.0 ± 1.0 |" in text and "30 minutes" in text and "12 evaluated" in text
    # a run's file holding a record twice: the later one counts (a rerun's)
    runs = [(s, v, 50.0) for s, v in real_data_report.COLUMNS] + [("linear", "joint", 90.0)]
    write_records(root / "eval" / "cmd_seed0.jsonl", runs, checkpoint="c.pth.tar", pretrain_cmd_weight=1.0)
    summary = real_data_report.collect(str(tmp_path / "w"), ["d"], [0])["datasets"]["d"]
    assert summary["methods"]["cmd"]["linear_joint"]["per_seed"] == [90.0]
    # a file reused outside the benchmark (which writes each afresh) holding another method's records, or two
    # probes' records of one run, is refused instead of put in the row its name gives
    for method, extra, found in (
        (
            "random",
            {"checkpoint": "c.pth.tar"},
            "record is of checkpoint c.pth.tar, --cmd-weight None, not of the random",
        ),
        ("cmd", {}, "its knn all record is of a random encoder, not of the CMD"),
        ("cmd_weight0", {"checkpoint": "c.pth.tar", "pretrain_cmd_weight": 1.0}, "--cmd-weight 1.0, not of the CMD,"),
    ):
        write_records(tmp_path / "reused.jsonl", runs, **extra)
        with pytest.raises(ValueError, match=found):
            real_data_report.run_values(str(tmp_path / "reused.jsonl"), method)
    # the SGD probe's fusion appended to a logistic probe's run: the row would mix the two
    probes = [(stage, view, 70.0, "logistic") for stage, view in real_data_report.COLUMNS]
    with open(tmp_path / "reused.jsonl", "w") as f:
        for stage, view, value, probe in probes + [("linear", "fusion", 60.0, "sgd")]:
            record = dict(stage=stage, view=view, value=value, probe=probe, dataset="d", protocol="cross_subject")
            f.write(json.dumps(dict(record, metric="top1")) + "\n")
    with pytest.raises(ValueError, match=r"its linear records come from several probes \(logistic, sgd\)"):
        real_data_report.run_values(str(tmp_path / "reused.jsonl"), "random")
    (root / "eval" / "random_seed2.jsonl").write_text("")
    with pytest.raises(ValueError, match="random_seed2.jsonl: no top-1 record for knn all"):
        real_data_report.collect(str(tmp_path / "w"), ["d"], [0, 1, 2])
    write_records(root / "eval" / "baseline.jsonl", [("baseline", "coordinates_1nn", 61.0)])
    argv = ["--work-dir", str(tmp_path / "w"), "--datasets", "d", "--seeds", "0", "--out", str(out)]
    assert real_data_report.main(argv) == 1
    said = f"real_data_report.py: error: {root / 'eval' / 'baseline.jsonl'}: no coordinates_logistic record"
    assert capsys.readouterr().err.startswith(said)
    # the runs' settings and time named when unreadable, and an output pair written both or neither
    write_records(
        root / "eval" / "baseline.jsonl",
        [("baseline", "coordinates_logistic", 76.5), ("baseline", "coordinates_1nn", 61.0)],
        val_samples=12,
    )
    assert real_data_report.main(argv) == 0
    capsys.readouterr()
    record = root / "checkpoints" / "cmd_seed0" / "settings.json"
    for text, found in (("[1]", "expected a run's settings record, found list"), ("{}", "no preset, train_samples")):
        record.write_text(text)
        assert real_data_report.main(argv) == 1
        assert capsys.readouterr().err.startswith(f"real_data_report.py: error: {record}: {found}")
    record.write_text(json.dumps(settings))
    (root / "seconds").write_text("abc\n")
    assert real_data_report.main(argv) == 1
    said = f"real_data_report.py: error: {root / 'seconds'}: expected the seconds the data set took, found 'abc\\n'"
    assert capsys.readouterr().err.startswith(said)
    (root / "seconds").write_text("60")
    before = (tmp_path / "results" / "real.json").read_text()
    (tmp_path / "results" / "real.md").unlink()
    (tmp_path / "results" / "real.md").mkdir()  # the markdown cannot be written: the JSON is left as it was
    assert real_data_report.main(argv) == 1
    assert "real.md is a folder" in capsys.readouterr().err
    assert (tmp_path / "results" / "real.json").read_text() == before


def test_coordinate_baselines_against_a_separable_folder(tmp_path, monkeypatch, capsys):
    # Two classes whose coordinates differ in sign: a linear model and 1-NN both separate them.
    folder = write_processed(
        tmp_path / "d", n=(40, 10), layout=KINECT20, num_class=2, dataset="separable", frames=50, protocol="cross_view"
    )
    for part in ("train", "val"):
        data = np.load(os.path.join(folder, f"{part}_data_joint.npy"))
        data = np.abs(data) * 0.1 + 0.05
        data[1::2] *= -1  # label i % 2
        np.save(os.path.join(folder, f"{part}_data_joint.npy"), data)
    results = tmp_path / "r.jsonl"
    grids, fit_stream = [], coordinate_baseline.fit_stream
    monkeypatch.setattr(
        coordinate_baseline, "fit_stream", lambda x, y, seed, grid: grids.append(grid) or fit_stream(x, y, seed, grid)
    )
    monkeypatch.chdir(tmp_path)  # the folder given relative to the working folder, as a user types it
    found = coordinate_baseline.main(["--data-dir", "d", "--results", str(results)])
    assert found["logistic"] == 100.0 and found["1nn"] == 100.0
    assert grids == [(0.0003, 0.001, 0.003, 0.01, 0.1)]  # the grid the records name (below)
    # the input: each recording's 0.95 centre crop resized to 64 frames, as evaluations see it
    train = load_splits(folder)[0]
    expected = [centre_crop(d, int(f), 0.95, 64).reshape(-1) for d, f in zip(train.data, train.num_frame)]
    np.testing.assert_allclose(coordinate_baseline.centre_crops(train), np.stack(expected), rtol=1e-5, atol=1e-6)
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["stage"], r["view"], r["value"]) for r in records] == [
        ("baseline", "coordinates_logistic", 100.0),
        ("baseline", "coordinates_1nn", 100.0),
    ]
    assert records[0]["dataset"] == "separable" and "checkpoint" not in records[0]
    assert records[0]["C_grid"] == [0.0003, 0.001, 0.003, 0.01, 0.1] and records[0]["C"] in records[0]["C_grid"]
    assert {r["protocol"] for r in records} == {"cross_view"}  # the folder's record
    # the folder and its parts named as an encoder's record names them, so that the two can be matched
    parts = {
        "data_dir": folder,
        "fingerprint": fingerprint(folder, "train"),
        "val_fingerprint": fingerprint(folder, "val"),
    }
    assert all({key: r[key] for key in parts} == parts for r in records)
    assert f"(C={records[0]['C']:g}, by cross-validation on the 40 training samples)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        coordinate_baseline.main(["--data-dir", str(tmp_path / "missing"), "--results", str(results)])
    assert stop.value.code == 1
    with pytest.raises(SystemExit) as stop:  # an unset shell variable: a usage error, as the entry points make it
        coordinate_baseline.main(["--data-dir", "", "--results", str(results)])
    assert stop.value.code == 2 and "--data-dir is empty; name a processed folder" in capsys.readouterr().err
    # no fold can be fitted (two classes of one training recording each): C is the fallback, and said to be
    monkeypatch.setattr(
        coordinate_baseline, "fit_stream", lambda x, y, seed, grid: (fit_stream(x, y, seed, grid)[0], 1.0)
    )
    coordinate_baseline.main(["--data-dir", folder, "--results", str(results)])
    assert (
        "(C=1, scikit-learn's default: no fold could be fitted on the 40 training samples)" in capsys.readouterr().out
    )


def test_coordinate_baseline_outputs_are_checked_before_the_fits(tmp_path, processed, capsys, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("fitted although the results could not be written")

    monkeypatch.setattr(coordinate_baseline, "baselines", no_work)
    folder = processed(tmp_path / "data", n=(8, 4), layout="kinect20", num_class=2, dataset="mine")
    record = os.path.join(folder, "layout.json")
    log = tmp_path / "log.jsonl"  # a pretraining's epoch log
    log.write_text('{"epoch": 0, "loss": 9.1}\n')
    before = open(record).read()
    for results, code, message in [
        (record, 2, "results are appended to a JSON-lines file; name one ending in .jsonl"),
        (os.path.join(record, "r.jsonl"), 1, "layout.json is a file, not a folder"),
        (str(log), 2, "holds JSON lines that are not results"),
    ]:
        with pytest.raises(SystemExit) as stop:
            coordinate_baseline.main(["--data-dir", folder, "--results", results])
        assert stop.value.code == code and message in capsys.readouterr().err
    assert open(record).read() == before and log.read_text() == '{"epoch": 0, "loss": 9.1}\n'
    # a training part of one class: refused by the folder, before any fit
    one = processed(tmp_path / "one", n=(8, 4), layout="kinect20", num_class=1, dataset="mine")
    with pytest.raises(SystemExit) as stop:
        coordinate_baseline.main(["--data-dir", one, "--results", str(tmp_path / "r.jsonl")])
    assert stop.value.code == 1 and f"{one}: its training part holds one class (label 0)" in capsys.readouterr().err


def test_bad_arguments_are_refused_before_anything_is_removed(tmp_path):
    work = tmp_path / "w"
    (work / "mine" / "data").mkdir(parents=True)
    (work / "keep.txt").write_text("x")
    (work / ".cmd-work-folder").write_text("")  # the scripts' own: each case is refused by its own check
    archive = tmp_path / "x.tar.gz"
    archive.write_bytes(b"")
    (tmp_path / "empty").mkdir()
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a01_s01_e01_skeleton3D.txt").write_text("")
    tiny = write_processed(tmp_path / "tiny", n=(5, 4), layout="kinect20", num_class=2, dataset="tiny")
    ntu = write_processed(tmp_path / "ntu", n=(64, 4), num_class=60, dataset="ntu60", protocol="cross_subject")
    published = write_processed(tmp_path / "published", n=(64, 4), num_class=60)  # no layout.json
    one = write_processed(tmp_path / "one", n=(16, 4), layout="kinect20", num_class=1, dataset="one")
    for args, message in [
        # every source is looked into before the first data set's folder is emptied
        ([f"msr_action3d={tmp_path / 'raw'}", f"nw_ucla={tmp_path / 'empty'}"], "no files named a*_s*_e*_v*.json"),
        ([f"msr_action3d={tmp_path / 'raw'}", f"nw_ucla={archive}"], "not a readable archive"),
        ([f"msr_action3d={tmp_path / 'raw' / 'a01_s01_e01_skeleton3D.txt'}"], "expected a folder or an archive"),
        ([f"mine={tmp_path / 'raw'}"], "not a processed folder every evaluation can open"),
        # checked as its pretraining will be: too few recordings, or a published data set's preset
        ([f"msr_action3d={tmp_path / 'raw'}", f"tiny={tiny}"], "the small-data preset needs 8 or more"),
        ([f"ntu={ntu}"], "records ntu60, whose published preset a pretraining takes"),
        ([f"published={published}"], "its layout.json names no dataset, or it has none (NTU-60 then)"),
        # pretrained, then refused by every probe and baseline
        ([f"msr_action3d={tmp_path / 'raw'}", f"one={one}"], "its training part holds one class (label 0)"),
        ([f"msr_action3d={tmp_path / 'raw'}"] * 2, "data set msr_action3d given twice"),
        ([f"my data={tmp_path}"], "expected NAME=SOURCE"),
        ([f"NW_UCLA={archive}"], "an archive is imported only for nw_ucla and msr_action3d"),
        # a processed folder inside WORK_DIR would be emptied with it
        ([f"again={work / 'mine' / 'data'}"], "the source is inside WORK_DIR"),
    ]:
        proc, commands = benchmark(*args, WORK_DIR=str(work), DRY_RUN="0", MAX_JOBS="1")
        assert proc.returncode == 2 and message in proc.stderr and commands == [], (args, proc.stderr)
    assert (work / "mine" / "data").is_dir() and (work / "keep.txt").exists()


def test_a_source_in_a_relative_work_folder_is_refused(tmp_path):
    # WORK_DIR relative to the repository, the source one level down (the subfolder the script would
    # empty) or further: both refused, and nothing removed
    work = tmp_path / "w"
    (work / "mine" / "data").mkdir(parents=True)
    (work / ".cmd-work-folder").write_text("")
    (tmp_path / "elsewhere").mkdir()
    for source in (work / "mine", work / "mine" / "data", tmp_path / "elsewhere" / ".." / "w" / "mine"):
        proc, commands = benchmark(f"mine={source}", WORK_DIR=os.path.relpath(work, ROOT), DRY_RUN="0")
        assert proc.returncode == 2 and "the source is inside WORK_DIR" in proc.stderr, (source, proc.stderr)
        assert commands == []
    assert (work / "mine" / "data").is_dir()


def test_each_run_appends_to_its_own_results_file_and_the_import_skips_bad_files(tmp_path):
    proc, commands = benchmark("msr_action3d=msr/", "mine=data/mine", SEEDS="0 1", WORK_DIR=str(tmp_path / "w"))
    assert proc.returncode == 0, proc.stderr
    (importer,) = [c for c in commands if "data_gen.msr_gendata" in c]
    assert "--skip-bad" in importer
    for name in ("msr_action3d", "mine"):
        root = tmp_path / "w" / name
        for entry in ("knn_eval.py", "action_classification.py"):
            runs = [c for c in commands if entry in c and c[c.index("--checkpoint-path") + 1].startswith(f"{root}/")]
            results = sorted(c[c.index("--results") + 1] for c in runs)
            expected = [f"{root}/eval/{m}_seed{s}.jsonl" for m in ("cmd", "cmd_weight0", "random") for s in (0, 1)]
            assert results == sorted(expected), (entry, results)


def test_the_evaluations_start_once_every_pretraining_has_ended_and_the_time_is_kept(tmp_path):
    order = tmp_path / "order"
    fake = tmp_path / "python"  # does nothing but note when each command starts and ends
    fake.write_text(f'#!/bin/bash\necho "start $1" >> "{order}"\nsleep 0.2\necho "end $1" >> "{order}"\n')
    fake.chmod(0o755)
    (tmp_path / "processed").mkdir()
    work = tmp_path / "w"
    proc, _ = benchmark(
        f"mine={tmp_path / 'processed'}",
        WORK_DIR=str(work),
        RESULTS_DIR=str(tmp_path / "r"),
        DRY_RUN="0",
        PYTHON=str(fake),
        MAX_JOBS="4",  # more than the two pretrainings: only the script's wait keeps the evaluations back
        SEEDS="0",
    )
    assert proc.returncode == 0, proc.stderr
    lines = order.read_text().splitlines()
    ended = [i for i, line in enumerate(lines) if line == "end pretrain_cmd.py"]
    started = [i for i, line in enumerate(lines) if line in ("start knn_eval.py", "start action_classification.py")]
    assert len(ended) == 2 and len(started) == 6 and max(ended) < min(started)
    assert int((work / "mine" / "seconds").read_text()) >= 0


@pytest.mark.parametrize("suffix", [".tgz", ".tar.gz", ".zip"])
def test_an_archive_is_unpacked_and_an_import_that_left_nothing_stops_before_the_pretrainings(tmp_path, suffix):
    raw = tmp_path / "release" / "MSRAction3DSkeletonReal3D"
    raw.mkdir(parents=True)
    (raw / "a01_s01_e01_skeleton3D.txt").write_text("0 0 0 0\n")
    base = str(tmp_path / "msr")
    archive = shutil.make_archive(base, "zip" if suffix == ".zip" else "gztar", tmp_path / "release")
    os.rename(archive, base + suffix)
    fake = tmp_path / "python"  # Python's own for the script's checks and the unpacking; every -m or .py does nothing
    fake.write_text(f'#!/bin/bash\nif [ "$1" = -c ]; then exec "{sys.executable}" "$@"; fi\nexit 0\n')
    fake.chmod(0o755)
    work = tmp_path / "w"
    proc, commands = benchmark(f"msr_action3d={base + suffix}", WORK_DIR=str(work), DRY_RUN="0", PYTHON=str(fake))
    assert (work / "msr_action3d" / "raw" / "MSRAction3DSkeletonReal3D" / "a01_s01_e01_skeleton3D.txt").exists()
    (importer,) = [c for c in commands if "data_gen.msr_gendata" in c]
    assert importer[importer.index("--data-path") + 1] == str(
        work / "msr_action3d" / "raw" / "MSRAction3DSkeletonReal3D"
    )
    # the importer (here: nothing) wrote no processed folder: stopped, naming it, before any pretraining
    assert proc.returncode == 2 and f"(converted to {work}/msr_action3d/data)" in proc.stderr, proc.stderr
    assert not [c for c in commands if "pretrain_cmd.py" in c]


def test_only_each_data_sets_subfolder_of_its_own_work_folder_is_emptied(tmp_path):
    work = tmp_path / "w"
    for name in ("mine", "other", "keep"):
        (work / name).mkdir(parents=True)
        (work / name / "f").write_text(name)
    # a work folder these scripts did not make: nothing of it is removed
    proc, commands = benchmark("mine=data/mine", "other=data/other", WORK_DIR=str(work))
    assert proc.returncode == 2 and "holds files these scripts did not make there" in proc.stderr
    assert not [c for c in commands if c[:2] == ["rm", "-rf"]]
    (work / ".cmd-work-folder").write_text("")  # as a run of these scripts leaves it
    proc, commands = benchmark("mine=data/mine", "other=data/other", WORK_DIR=str(work))
    assert proc.returncode == 0, proc.stderr
    assert [c for c in commands if c[:2] == ["rm", "-rf"]] == [["rm", "-rf", str(work / "mine"), str(work / "other")]]
    for name in (".", ".."):  # never names a work folder's parent or itself
        proc, _ = benchmark(f"{name}=data/mine", WORK_DIR=str(work))
        assert proc.returncode == 2 and "expected NAME=SOURCE" in proc.stderr


def test_a_claimed_folder_in_the_work_folder_stops_the_script(tmp_path):
    work = tmp_path / "w"
    (work / "mine" / "checkpoints" / "cmd").mkdir(parents=True)
    (work / ".cmd-work-folder").write_text("")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from dataset.files import claim_folder; "
            "claim_folder(sys.argv[1], 'a test run'); print('held', flush=True); time.sleep(60)",
            str(work / "mine" / "checkpoints" / "cmd"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        source = tmp_path / "processed"
        source.mkdir()
        proc, commands = benchmark(f"mine={source}", WORK_DIR=str(work), DRY_RUN="0", PYTHON="true")
        assert proc.returncode == 1 and "is in use by a running process" in proc.stderr
        assert (work / "mine" / "checkpoints" / "cmd" / ".claim").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_source_path_with_spaces_reaches_the_importer_whole(tmp_path):
    raw = tmp_path / "my data" / "all sqe"
    raw.mkdir(parents=True)
    (raw / "a01_s01_e01_v01.json").write_text("{}")  # unreadable: the import stops there, naming it
    proc, commands = benchmark(f"nw_ucla={tmp_path / 'my data'}", WORK_DIR=str(tmp_path / "w"), DRY_RUN="0")
    (importer,) = [c for c in commands if "data_gen.ucla_gendata" in c]
    assert importer[importer.index("--data-path") + 1] == str(raw)
    assert proc.returncode != 0 and f"{raw / 'a01_s01_e01_v01.json'}" in proc.stderr


def test_a_relative_source_is_relative_to_where_the_script_is_called(tmp_path):
    (tmp_path / "msr").mkdir()
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "scripts", "real_data_benchmark.sh"), "mine=msr"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "DRY_RUN": "1", "WORK_DIR": str(tmp_path / "w")},
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    pretrain = [shlex.split(line[2:]) for line in proc.stdout.splitlines() if "pretrain_cmd.py" in line]
    assert pretrain and all(c[c.index("--data-dir") + 1] == str(tmp_path / "msr") for c in pretrain)


def test_coordinate_baseline_records_a_published_folders_benchmark_from_its_name(tmp_path, monkeypatch):
    monkeypatch.setattr(coordinate_baseline, "baselines", lambda train, val: {"logistic": 50.0, "C": 1.0, "1nn": 50.0})
    folder = write_processed(tmp_path / "NTU-RGB-D-60-AGCN" / "xview", n=(8, 4))  # as the published tools leave it
    results = tmp_path / "r.jsonl"
    monkeypatch.chdir(folder)
    coordinate_baseline.main(["--data-dir", ".", "--results", str(results)])
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert {r["protocol"] for r in records} == {"cross_view"}
    assert {r["dataset"] for r in records} == {"ntu60"}  # as the entry points record it, not the folder's name


def test_coordinate_baseline_refuses_a_protocol_the_folder_does_not_hold_before_the_fits(tmp_path, monkeypatch, capsys):
    fitted = []
    monkeypatch.setattr(coordinate_baseline, "baselines", lambda train, val: fitted.append(1))
    folder = write_processed(tmp_path / "mine", n=(8, 4), dataset="mine", protocol="cross_subject")
    with pytest.raises(SystemExit) as stop:
        coordinate_baseline.main(
            ["--data-dir", folder, "--protocol", "cross_view", "--results", str(tmp_path / "r.jsonl")]
        )
    assert stop.value.code == 2 and "holds the cross_subject benchmark" in capsys.readouterr().err
    assert not fitted and not (tmp_path / "r.jsonl").exists()


def test_one_seed_shows_no_spread():
    assert cell(stats([80.0])) == "80.0" and stats([80.0])["std"] is None  # one value's spread is unknown, not 0
    assert over_seeds([0]) == "seed 0 (one run: no spread)" and over_seeds([0, 1]) == "mean ± std over seeds 0, 1"
    assert cell(stats([79.0, 81.0])) == "80.0 ± 1.4"  # sample std: sqrt(2)
    assert cell(stats([-1.25]), "+") == "-1.2" and cell(stats([0.5, 1.5]), "+") == "+1.0 ± 0.7"
