"""Runs that cannot clobber each other: claimed output folders, --fresh, --rewind, outputs checked
before work, the data's identity on resume, and the red-team's remaining defects (one test each)."""

import errno
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import action_classification
import knn_eval
import pretrain_cmd
from dataset.files import append_lines, file_fingerprint
from engine.checkpoint import read_checkpoint
from engine.results import load_results
from engine.runfolder import RunFolderError, open_run_folder
from tests.helpers import TINY_PRETRAIN, write_processed
from tools.report import report

TINY = [*TINY_PRETRAIN, "--print-freq", "1"]
PROBE = ["-j", "0", "--device", "cpu", "--epochs", "2", "--schedule", "1", "--eval-freq", "1", "-b", "8"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from tests.helpers import write_processed

    return write_processed(tmp_path_factory.mktemp("processed"), n=(16, 6))


def pretrain(data_dir, out, *extra):
    return pretrain_cmd.main(["--data-dir", data_dir, "--checkpoint-path", str(out), *TINY, *extra])


def snapshot(folder, sha256):
    """{name: digest} of the files directly in `folder`."""
    return {
        name: sha256(os.path.join(folder, name))
        for name in sorted(os.listdir(folder))
        if os.path.isfile(os.path.join(folder, name)) and name != ".claim"
    }


@pytest.fixture(scope="module")
def finished(data_dir, tmp_path_factory):
    """A finished 3-epoch pretraining run (checkpoint_0000 and checkpoint_last at epoch 3)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert pretrain(data_dir, out, "--epochs", "3") == 0
    return out


def hold_claim(folder):
    """A real other process that claims `folder` and sleeps; returns it once it holds the claim."""
    ready = os.path.join(str(folder), "..", f"claimed-{os.getpid()}")
    code = (
        "import sys, time; from dataset.files import claim_folder; claim_folder(sys.argv[1], 'a test run'); "
        "open(sys.argv[2], 'w').close(); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder), ready])
    for _ in range(200):
        if os.path.exists(ready):
            return holder
        time.sleep(0.05)
    holder.kill()
    raise AssertionError("the claiming process did not start")


def test_fresh_run_into_a_finished_run_is_refused_and_changes_nothing(finished, data_dir, sha256, capsys):
    before = snapshot(finished, sha256)
    assert pretrain(data_dir, finished, "--epochs", "3") == 1
    err = capsys.readouterr().err
    assert f"{finished} holds a pretraining run" in err and "checkpoint_last.pth.tar" in err
    assert "--resume" in err and "--fresh" in err
    assert "or keep it and choose another output folder (--checkpoint-path)" in err  # when it is another's run
    assert snapshot(finished, sha256) == before


def test_fresh_keeps_the_old_run_aside(data_dir, tmp_path, sha256, capsys):
    out = tmp_path / "run"
    assert pretrain(data_dir, out, "--epochs", "1") == 0
    before = snapshot(out, sha256)
    assert pretrain(data_dir, out, "--epochs", "1", "--seed", "7", "--fresh") == 0
    aside = [d for d in os.listdir(out) if d.startswith("previous-")]
    assert len(aside) == 1 and snapshot(out / aside[0], sha256) == before
    assert "moved to" in capsys.readouterr().out


def test_a_second_run_into_a_claimed_folder_is_refused_naming_the_holder(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    holder = hold_claim(out)
    try:
        assert pretrain(data_dir, out, "--epochs", "1") == 1
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and "in use" in err
        assert not os.path.exists(out / "settings.json")
    finally:
        holder.kill()
        holder.wait()
    assert pretrain(data_dir, out, "--epochs", "1") == 0  # the claim died with its process


def test_resume_from_an_older_checkpoint_needs_rewind_and_keeps_the_newer_files(
    finished, data_dir, tmp_path, sha256, capsys, trained_epochs
):
    out = tmp_path / "run"
    assert pretrain(data_dir, out, "--epochs", "3") == 0
    last = sha256(out / "checkpoint_last.pth.tar")
    log = (out / "log.jsonl").read_text()
    older = str(out / "checkpoint_0000.pth.tar")
    assert pretrain(data_dir, out, "--epochs", "3", "--resume", older) == 1
    err = capsys.readouterr().err
    assert f"--resume {older} continues after 1 epochs, but {out} holds a newer state (3 epochs, " in err
    assert f"Resume from {out / 'checkpoint_last.pth.tar'}, or pass --rewind" in err
    assert sha256(out / "checkpoint_last.pth.tar") == last
    # killed between the periodic checkpoint and checkpoint_last: the advice names the newest file
    kept = shutil.copyfile(out / "checkpoint_last.pth.tar", tmp_path / "kept.pth.tar")
    periodic = out / "checkpoint_0002.pth.tar"
    shutil.copyfile(kept, periodic)
    shutil.copyfile(older, out / "checkpoint_last.pth.tar")
    assert pretrain(data_dir, out, "--epochs", "3", "--resume", str(out / "checkpoint_last.pth.tar")) == 1
    assert f"Resume from {periodic}, or pass --rewind" in capsys.readouterr().err
    periodic.unlink()
    shutil.copyfile(kept, out / "checkpoint_last.pth.tar")
    seen = trained_epochs(read_checkpoint(older)["state_dict"])  # which epochs run, and from which state
    assert pretrain(data_dir, out, "--epochs", "3", "--resume", older, "--rewind") == 0
    assert seen[0] == (1, True) and [epoch for epoch, _ in seen] == [1, 2]
    aside = out / [d for d in os.listdir(out) if d.startswith("rewound-")][0]
    assert sha256(aside / "checkpoint_last.pth.tar") == last and (aside / "log.jsonl").read_text() == log
    # the rewound run redid epochs 1 and 2 from the same state: the same weights as the first time
    redone = read_checkpoint(str(out / "checkpoint_last.pth.tar"))
    first = read_checkpoint(str(aside / "checkpoint_last.pth.tar"))
    assert redone["epoch"] == 3
    for key, value in first["state_dict"].items():
        assert torch.equal(value, redone["state_dict"][key]), key


def test_an_unreadable_checkpoint_last_or_a_log_beyond_every_checkpoint_can_be_rewound(
    finished, data_dir, tmp_path, capsys
):
    out = tmp_path / "run"
    assert pretrain(data_dir, out, "--epochs", "3") == 0
    older, last = str(out / "checkpoint_0000.pth.tar"), out / "checkpoint_last.pth.tar"
    damaged = last.read_bytes()[:1000]  # a copy cut short
    last.write_bytes(damaged)
    assert pretrain(data_dir, out, "--epochs", "3", "--resume", older) == 1
    err = capsys.readouterr().err
    assert f"--resume {older}: {last} cannot be read (or holds no epoch), so whether it holds a newer state" in err
    assert "pass --rewind to continue from this checkpoint" in err and last.read_bytes() == damaged
    assert pretrain(data_dir, out, "--epochs", "3", "--resume", older, "--rewind") == 0  # it was refused here
    aside = out / [d for d in os.listdir(out) if d.startswith("rewound-")][0]
    assert (aside / "checkpoint_last.pth.tar").read_bytes() == damaged
    assert read_checkpoint(str(last))["epoch"] == 3
    # checkpoint_last gone, the log beyond every periodic checkpoint: no advice to resume from a missing file
    last.unlink()
    for name in os.listdir(out):
        if name.startswith("checkpoint_000") and name != "checkpoint_0000.pth.tar":
            os.unlink(out / name)
    assert pretrain(data_dir, out, "--epochs", "3", "--resume", older) == 1
    err = capsys.readouterr().err
    assert f"{out}'s log.jsonl reaches 3 epochs, a state no checkpoint there holds; pass --rewind" in err
    assert "Resume from" not in err
    # checkpoint_last there but older than the log, and the file resumed: it is not offered back either
    shutil.copyfile(older, last)
    assert pretrain(data_dir, out, "--epochs", "3", "--resume", str(last)) == 1
    err = capsys.readouterr().err
    assert f"{out}'s log.jsonl reaches 3 epochs, a state no checkpoint there holds" in err and "Resume from" not in err


def test_rewind_without_resume_is_a_usage_error(data_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        pretrain(data_dir, tmp_path / "run", "--epochs", "1", "--rewind")
    assert stop.value.code == 2 and "--rewind goes with --resume" in capsys.readouterr().err


def test_resume_refuses_data_reconverted_with_other_content(data_dir, tmp_path, capsys):
    from tests.helpers import write_processed

    folder = write_processed(tmp_path / "data", n=(16, 6), seed=1)
    out = tmp_path / "run"
    assert pretrain(folder, out, "--epochs", "1") == 0
    write_processed(folder, n=(16, 6), seed=2)  # same path, same count, other recordings
    assert pretrain(folder, out, "--epochs", "2", "--resume", str(out / "checkpoint_last.pth.tar")) == 1
    assert "the training data (its fingerprint)" in capsys.readouterr().err


def test_malformed_rng_is_refused_before_anything_is_written(data_dir, tmp_path, sha256, capsys):
    out = tmp_path / "run"
    assert pretrain(data_dir, out, "--epochs", "1") == 0
    ckpt = read_checkpoint(str(out / "checkpoint_last.pth.tar"))
    ckpt["rng"]["python"] = "(3, (1, 2"  # not a literal
    torch.save(ckpt, out / "bad.pth.tar")
    before = snapshot(out, sha256)
    assert pretrain(data_dir, out, "--epochs", "2", "--resume", str(out / "bad.pth.tar")) == 1
    assert "'rng' entry is malformed" in capsys.readouterr().err
    assert snapshot(out, sha256) == before


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--lr", "inf"], "--lr must be positive and finite"),
        (["--contrast-t", "inf"], "--contrast-t must be positive and finite"),
        (["--cmd-weight", "nan"], "--cmd-weight must be at least 0 and finite"),
        (["--device", "tpu"], "--device tpu: this code runs on cpu, cuda or cuda:N"),
        (["--device", "cuda:x"], "--device cuda:x: this code runs on cpu, cuda or cuda:N"),
        pytest.param(
            ["--device", "cuda"],
            "--device cuda: CUDA is not available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        ),
    ],
)
def test_impossible_settings_are_usage_errors(data_dir, tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_:
        pretrain(data_dir, tmp_path / "run", *flags)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "run")


def test_checkpoint_path_with_bytes_that_are_not_utf8_is_a_usage_error(data_dir, tmp_path, capsys):
    bad = os.fsdecode(os.fsencode(str(tmp_path)) + b"/run\xff")
    with pytest.raises(SystemExit) as exit_:
        pretrain(data_dir, bad)
    assert exit_.value.code == 2 and "not UTF-8" in capsys.readouterr().err


def test_checkpoint_path_naming_a_file_is_a_usage_error(data_dir, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit) as exit_:
        pretrain(data_dir, tmp_path / "file")
    assert exit_.value.code == 2 and "is a file" in capsys.readouterr().err


def classify(data_dir, out, results, *extra):
    return action_classification.main(
        [
            "--data-dir",
            data_dir,
            "--checkpoint-path",
            str(out),
            "--results",
            str(results),
            "--hidden-size",
            "8",
            "--num-layers",
            "1",
            *PROBE,
            *extra,
        ]
    )


def knn(data_dir, out, results, *extra):
    return knn_eval.main(
        [
            "--data-dir",
            data_dir,
            "--checkpoint-path",
            str(out),
            "--results",
            str(results),
            "--hidden-size",
            "8",
            "--num-layers",
            "1",
            "-j",
            "0",
            "--device",
            "cpu",
            *extra,
        ]
    )


def test_a_linear_probe_folder_is_not_reused_without_resume(data_dir, tmp_path, capsys):
    out, results = tmp_path / "lin", tmp_path / "r.jsonl"
    assert classify(data_dir, out, results) == 0
    events = sorted(os.listdir(out / "tensorboard"))
    assert classify(data_dir, out, results) == 1
    err = capsys.readouterr().err
    assert f"{out} holds a linear classification run" in err and "checkpoint.pth.tar" in err
    assert "--resume" in err and "--fresh" in err
    assert sorted(os.listdir(out / "tensorboard")) == events  # no second run's events mixed in
    assert classify(data_dir, out, results, "--fresh") == 0


def test_an_evaluation_records_the_checkpoint_it_loaded_while_a_pretraining_renames_another_over_it(
    finished, data_dir, tmp_path, monkeypatch
):
    evaluated, newer = tmp_path / "checkpoint_last.pth.tar", tmp_path / "newer.pth.tar"
    shutil.copyfile(finished / "checkpoint_0000.pth.tar", evaluated)
    shutil.copyfile(finished / "checkpoint_last.pth.tar", newer)
    loaded = file_fingerprint(str(evaluated))
    load = torch.load

    def load_then_replaced(f, *args, **kwargs):
        obj = load(f, *args, **kwargs)
        if os.path.exists(newer) and getattr(f, "name", f) == str(evaluated):
            os.replace(newer, evaluated)  # the pretraining's next epoch lands right after the load
        return obj

    monkeypatch.setattr(torch, "load", load_then_replaced)
    assert knn(data_dir, tmp_path / "k", tmp_path / "r.jsonl", "--pretrained", str(evaluated)) == 0
    monkeypatch.undo()
    recorded = json.loads((tmp_path / "k" / "settings.json").read_text())["run"]["pretrained_fingerprint"]
    assert not newer.exists() and recorded == loaded != file_fingerprint(str(evaluated))


def test_fresh_refuses_to_move_the_checkpoint_an_evaluation_reads_out_of_its_folder(
    finished, data_dir, tmp_path, capsys
):
    out, results = tmp_path / "knn", tmp_path / "r.jsonl"
    assert knn(data_dir, out, results) == 0  # a random encoder's evaluation
    evaluated = out / "checkpoint_0002.pth.tar"  # a pretraining's checkpoint copied in
    shutil.copyfile(finished / "checkpoint_last.pth.tar", evaluated)
    assert knn(data_dir, out, results, "--fresh", "--pretrained", str(evaluated)) == 1
    assert f"--fresh would move {evaluated}, which this run reads" in capsys.readouterr().err
    assert evaluated.exists() and not [name for name in os.listdir(out) if name.startswith("previous-")]


def test_knn_folder_is_not_reused_without_fresh(data_dir, tmp_path, capsys):
    out, results = tmp_path / "knn", tmp_path / "r.jsonl"
    assert knn(data_dir, out, results) == 0
    assert knn(data_dir, out, results) == 1
    assert "--fresh" in capsys.readouterr().err
    assert knn(data_dir, out, results, "--fresh") == 0


@pytest.mark.parametrize("evaluate", [classify, knn])
def test_unwritable_results_are_found_before_any_work(data_dir, tmp_path, capsys, monkeypatch, evaluate):
    def no_work(*args, **kwargs):
        raise AssertionError("features were extracted although the results could not be written")

    monkeypatch.setattr("engine.evaluate.extract_features", no_work)
    monkeypatch.setattr("engine.evaluate.train_one_epoch", no_work)
    (tmp_path / "results_dir.jsonl").mkdir()
    assert evaluate(data_dir, tmp_path / "a", tmp_path / "results_dir.jsonl") == 1
    assert "is a folder" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert evaluate(data_dir, tmp_path / "b", tmp_path / "file" / "r.jsonl") == 1
    assert "file is a file, not a folder" in capsys.readouterr().err


def test_one_evaluations_records_are_appended_all_or_none(data_dir, tmp_path, capsys, monkeypatch):
    results = tmp_path / "r.jsonl"
    append_lines(str(results), [{"metric": "top1", "earlier": 1}])  # an earlier result
    before = results.read_bytes()
    real_write = os.write

    def full_disk(fd, data):
        if data.count(b"\n") > 1:  # the evaluation's records, written together
            real_write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_disk)
    assert classify(data_dir, tmp_path / "lin", results, "--view", "all") == 1
    assert "no space left on" in capsys.readouterr().err
    assert results.read_bytes() == before  # neither the streams' records nor the fusion's


def test_full_disk_at_settings_is_one_line(data_dir, tmp_path, capsys, monkeypatch):
    import dataset.files

    real = dataset.files.write_text

    def full(path, text):
        if path.endswith("settings.json"):
            raise dataset.files.NoSpaceError(f"no space left on {path}: its file system is full")
        return real(path, text)

    monkeypatch.setattr("engine.runtime.write_text", full)
    assert knn(data_dir, tmp_path / "knn", tmp_path / "r.jsonl") == 1
    err = capsys.readouterr().err
    assert "knn_eval.py: error: no space left on" in err and "Traceback" not in err


def test_non_finite_weights_or_a_diverging_probe_stop_with_one_line(data_dir, tmp_path, capsys):
    out = tmp_path / "pre"
    assert pretrain(data_dir, out, "--epochs", "1") == 0
    ckpt = read_checkpoint(str(out / "checkpoint_last.pth.tar"))
    for key, value in ckpt["state_dict"].items():
        if key.startswith("encoder_q.encoder.gru.weight_ih_l0"):
            value.fill_(float("nan"))
    torch.save(ckpt, tmp_path / "nan.pth.tar")
    results = tmp_path / "r.jsonl"

    def probe(checkpoint, *flags):
        argv = ["--data-dir", data_dir, "--checkpoint-path", str(tmp_path / "lin"), "--results", str(results)]
        return action_classification.main([*argv, "--pretrained", checkpoint, *PROBE, *flags])

    # NaN weights: refused at loading, naming the tensor, before any output
    assert probe(str(tmp_path / "nan.pth.tar")) == 1
    err = capsys.readouterr().err
    assert f"checkpoint {tmp_path / 'nan.pth.tar'} holds NaN or inf in encoder_q.encoder.gru.weight_ih_l0" in err
    assert "Traceback" not in err and not (tmp_path / "lin").exists()
    # finite weights and a learning rate that makes the classifier's loss overflow: stopped at that step
    assert probe(str(out / "checkpoint_last.pth.tar"), "--lr", "3e38") == 1
    err = capsys.readouterr().err
    assert "the classifier's loss became" in err and "Traceback" not in err
    assert not results.exists()


def test_linear_resume_given_a_pretraining_checkpoint_says_what_it_is(data_dir, tmp_path, capsys):
    out = tmp_path / "pre"
    assert pretrain(data_dir, out, "--epochs", "1") == 0
    assert (
        classify(data_dir, tmp_path / "lin", tmp_path / "r.jsonl", "--resume", str(out / "checkpoint_last.pth.tar"))
        == 1
    )
    err = capsys.readouterr().err
    assert "is not an action_classification.py checkpoint" in err and "--pretrained" in err


def test_save_features_replaces_an_earlier_export_whole(data_dir, tmp_path):
    target = tmp_path / "f.npz"
    np.savez(target, train_features=np.zeros((2, 3)))  # an earlier export
    assert knn(data_dir, tmp_path / "knn", tmp_path / "r.jsonl", "--save-features", str(target)) == 0
    with np.load(target) as data:
        assert data["train_features"].shape == (16, 16) and data["val_features"].shape == (6, 16)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".f.npz")]


@pytest.mark.parametrize("flag", ["--save-features", "--results"])
def test_outputs_never_replace_or_extend_files_of_another_kind(data_dir, tmp_path, capsys, flag):
    # a checkpoint, a folder's layout record, anything that is not a feature export or a .jsonl
    checkpoint = tmp_path / "checkpoint_last.pth.tar"
    checkpoint.write_bytes(b"weights")
    record = tmp_path / "layout.json"
    record.write_text("{}")
    for target in (checkpoint, record):
        with pytest.raises(SystemExit) as stop:
            if flag == "--save-features":
                knn(data_dir, tmp_path / "knn", tmp_path / "r.jsonl", flag, str(target))
            else:
                knn(data_dir, tmp_path / "knn", target)
        assert stop.value.code == 2
        assert str(target) in capsys.readouterr().err
    assert checkpoint.read_bytes() == b"weights" and record.read_text() == "{}"


def test_the_resume_hint_names_only_a_checkpoint_that_exists(tmp_path):
    # a run that failed before its first checkpoint left settings.json: the hint is --fresh alone
    (tmp_path / "settings.json").write_text("{}")
    last = tmp_path / "checkpoint_last.pth.tar"
    with pytest.raises(RunFolderError) as refused:
        open_run_folder(str(tmp_path), "pretraining", {}, (), resume_file=str(last))
    assert "--fresh" in str(refused.value) and "--resume" not in str(refused.value)
    last.write_bytes(b"")
    with pytest.raises(RunFolderError, match=f"continue it with --resume {last}; start afresh with --fresh"):
        open_run_folder(str(tmp_path), "pretraining", {}, (), resume_file=str(last))


def test_fresh_never_moves_aside_the_checkpoint_an_evaluation_reads(tmp_path):
    (tmp_path / "settings.json").write_text(json.dumps({"stage": "linear"}))
    evaluated = tmp_path / "checkpoint_0003.pth.tar"  # a pretraining's checkpoint copied into the folder
    evaluated.write_bytes(b"weights")
    with pytest.raises(RunFolderError) as refused:
        open_run_folder(str(tmp_path), "linear", {"stage": "linear"}, (), fresh=True, reads=str(evaluated))
    assert str(refused.value) == (
        f"--fresh would move {evaluated}, which this run reads, out of {tmp_path} with the earlier run's files: "
        "copy it elsewhere first, or choose another output folder (--checkpoint-path)"
    )
    assert sorted(os.listdir(tmp_path)) == [".claim", "checkpoint_0003.pth.tar", "settings.json"]
    link = tmp_path.parent / f"{tmp_path.name}-link.pth.tar"  # --pretrained reaching it through a link
    link.symlink_to(evaluated)
    with pytest.raises(RunFolderError, match="--fresh would move .*-link.pth.tar, which this run reads"):
        open_run_folder(str(tmp_path), "linear", {"stage": "linear"}, (), fresh=True, reads=str(link))
    elsewhere = tmp_path.parent / f"{tmp_path.name}-pretrained.pth.tar"
    elsewhere.write_bytes(b"weights")
    open_run_folder(str(tmp_path), "linear", {"stage": "linear"}, (), fresh=True, reads=str(elsewhere)).release()
    aside = [name for name in os.listdir(tmp_path) if name.startswith("previous-")]  # an earlier run's, moved
    assert len(aside) == 1 and (tmp_path / aside[0] / "checkpoint_0003.pth.tar").read_bytes() == b"weights"


def test_a_run_file_that_is_a_symbolic_link_is_refused_before_its_target_is_written(
    data_dir, finished, tmp_path, capsys, sha256
):
    # a released checkpoint linked into a folder to be trained further: the resume would replace the
    # released file with the new run's weights
    released = tmp_path / "released" / "checkpoint_last.pth.tar"
    released.parent.mkdir()
    shutil.copyfile(finished / "checkpoint_last.pth.tar", released)
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint_last.pth.tar").symlink_to(released)
    digest = sha256(released)
    assert pretrain(data_dir, out, "--epochs", "4", "--resume", str(out / "checkpoint_last.pth.tar")) == 1
    assert (
        f"{out / 'checkpoint_last.pth.tar'} is a symbolic link (to {released}), which this run would write over: "
        "replace the link by a copy of the file, or give this run another folder (--checkpoint-path)"
        in capsys.readouterr().err
    )
    assert sha256(released) == digest and sorted(os.listdir(out)) == [".claim", "checkpoint_last.pth.tar"]
    # what the message offers: the released checkpoint resumed into a folder of its own
    assert pretrain(data_dir, tmp_path / "own", "--epochs", "4", "--resume", str(released)) == 0
    assert read_checkpoint(str(tmp_path / "own" / "checkpoint_last.pth.tar"))["epoch"] == 4
    assert sha256(released) == digest
    # --fresh moves the link aside (the link itself, not its target) and the run starts afresh
    assert pretrain(data_dir, out, "--epochs", "1", "--fresh") == 0
    (aside,) = [name for name in os.listdir(out) if name.startswith("previous-")]
    assert os.path.islink(out / aside / "checkpoint_last.pth.tar") and sha256(released) == digest
    # a tensorboard folder reached through a link is a folder the run adds event files to: accepted
    board = tmp_path / "board"
    board.mkdir()
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "tensorboard").symlink_to(board)
    open_run_folder(str(linked), "pretraining", {}, (), resume=str(linked / "checkpoint_last.pth.tar")).release()


def test_a_resume_from_outside_a_folder_that_holds_a_run_is_refused(data_dir, tmp_path, capsys):
    # run A, restarted with --fresh as run B; resuming A's checkpoint (now in previous-*/) into the folder
    # would write A's epochs beside B's files: refused, naming the folder; --fresh moves B aside first
    out = tmp_path / "run"
    assert pretrain(data_dir, out, "--epochs", "2") == 0
    assert pretrain(data_dir, out, "--epochs", "1", "--fresh") == 0
    (previous,) = [name for name in os.listdir(out) if name.startswith("previous-")]
    old = str(out / previous / "checkpoint_last.pth.tar")
    assert pretrain(data_dir, out, "--epochs", "3", "--resume", old) == 1
    assert f"{out} holds a pretraining run" in capsys.readouterr().err
    assert read_checkpoint(str(out / "checkpoint_last.pth.tar"))["epoch"] == 1  # B untouched
    assert pretrain(data_dir, out, "--epochs", "3", "--resume", old, "--fresh") == 0
    assert read_checkpoint(str(out / "checkpoint_last.pth.tar"))["epoch"] == 3


def test_a_refusal_names_what_the_folder_holds_not_what_would_run(data_dir, finished, tmp_path, capsys):
    knn_out = tmp_path / "knn"
    common = ["--data-dir", data_dir, "--pretrained", str(finished / "checkpoint_last.pth.tar"), "-j", "0"]
    assert knn_eval.main([*common, "--checkpoint-path", str(knn_out), "--results", str(tmp_path / "r.jsonl")]) == 0
    capsys.readouterr()
    assert pretrain(data_dir, knn_out, "--epochs", "1") == 1
    assert f"{knn_out} holds a kNN evaluation run (result.jsonl, settings.json, tensorboard)" in capsys.readouterr().err
    assert action_classification.main([*common, *PROBE, "--checkpoint-path", str(finished)]) == 1
    assert f"{finished} holds a pretraining run (" in capsys.readouterr().err
    converted = tmp_path / "converted"  # what a converter leaves beside the data: its settings.json
    converted.mkdir()
    (converted / "settings.json").write_text('{"counts": {"train": 16, "val": 6}, "layout": "ntu25"}\n')
    assert pretrain(data_dir, converted, "--epochs", "1") == 1
    assert f"{converted} holds a converter's processed data (settings.json)" in capsys.readouterr().err


def test_a_refusal_says_how_the_run_found_differs_from_this_one(data_dir, finished, tmp_path, capsys):
    out, results = tmp_path / "knn", str(tmp_path / "r.jsonl")
    common = ["--data-dir", data_dir, "-j", "0", "--checkpoint-path", str(out), "--results", results]
    last = ["--pretrained", str(finished / "checkpoint_last.pth.tar")]
    assert knn_eval.main([*common, *last]) == 0
    capsys.readouterr()
    assert knn_eval.main([*common, *last]) == 1  # the same run again: refused, nothing differs
    err = capsys.readouterr().err
    assert "holds a kNN evaluation run" in err and "other settings" not in err
    # the same command once its checkpoint has changed (here: another checkpoint of the run)
    assert knn_eval.main([*common, "--pretrained", str(finished / "checkpoint_0000.pth.tar")]) == 1
    err = capsys.readouterr().err
    assert "made with other settings than this run (the --pretrained checkpoint" in err and "--fresh" in err


def test_no_run_goes_into_a_processed_folder_not_even_one_of_the_published_tools(data_dir, finished, tmp_path, capsys):
    # the published tools write no settings.json and no layout.json: the arrays alone mark the folder
    published = tmp_path / "xsub"
    shutil.copytree(data_dir, published)
    assert not (published / "layout.json").exists() and not (published / "settings.json").exists()
    before = sorted(os.listdir(published))
    assert pretrain(data_dir, published, "--epochs", "1", "--fresh") == 1
    assert f"{published} holds processed data (train_data_joint.npy, val_data_joint.npy)" in capsys.readouterr().err
    argv = ["--data-dir", data_dir, "--pretrained", str(finished / "checkpoint_last.pth.tar"), "-j", "0"]
    assert knn_eval.main([*argv, "--checkpoint-path", str(published), "--results", str(tmp_path / "r.jsonl")]) == 1
    assert f"{published} holds processed data (train_data_joint.npy" in capsys.readouterr().err
    assert sorted(os.listdir(published)) == before  # nothing written, not even a claim
    recorded = tmp_path / "recorded"  # an importer's folder
    write_processed(str(recorded), dataset="mine")
    assert pretrain(data_dir, recorded, "--epochs", "1") == 1
    assert f"{recorded} holds processed data (train_data_joint.npy, val_data_joint.npy)" in capsys.readouterr().err
    mine = tmp_path / "mine"  # a layout file kept beside the checkpoints is no processed data
    mine.mkdir()
    (mine / "layout.json").write_text("{}")
    assert pretrain(data_dir, mine, "--epochs", "1") == 0


def test_fresh_never_moves_aside_data_or_a_run_of_the_other_family(data_dir, finished, tmp_path, sha256, capsys):
    # --fresh would have moved away the pretraining whose checkpoint is evaluated, or the converter's record
    converted = tmp_path / "converted"
    converted.mkdir()
    (converted / "settings.json").write_text('{"counts": {"train": 16, "val": 6}, "layout": "ntu25"}\n')
    pretraining, data = snapshot(finished, sha256), snapshot(converted, sha256)
    common = ["--data-dir", data_dir, "--pretrained", str(finished / "checkpoint_last.pth.tar"), "-j", "0", "--fresh"]
    assert knn_eval.main([*common, "--checkpoint-path", str(finished), "--results", str(tmp_path / "r.jsonl")]) == 1
    err = capsys.readouterr().err
    assert f"{finished} holds a pretraining run (" in err and "not even with --fresh" in err
    assert pretrain(data_dir, converted, "--epochs", "1", "--fresh") == 1
    assert "a pretraining run does not go there, not even with --fresh" in capsys.readouterr().err
    assert snapshot(finished, sha256) == pretraining and snapshot(converted, sha256) == data
    assert not [n for n in os.listdir(finished) if n.startswith("previous-")]
    # a released model's folder: no settings.json, its checkpoint named as a pretraining's
    released = tmp_path / "released"
    released.mkdir()
    shutil.copyfile(finished / "checkpoint_last.pth.tar", released / "checkpoint_0450.pth.tar")
    evaluated = ["--pretrained", str(released / "checkpoint_0450.pth.tar")]
    for out, message in [
        (released, f"{released} holds the files of a run (checkpoint_0450.pth.tar)"),  # the one evaluated
        (finished, f"{finished} holds a pretraining run ("),  # another pretraining's
    ]:
        argv = [*common, *evaluated, "--checkpoint-path", str(out), "--results", str(tmp_path / "r.jsonl")]
        assert knn_eval.main(argv) == 1
        err = capsys.readouterr().err
        assert message in err and "choose another output folder" in err
    assert [n for n in os.listdir(released) if n != ".claim"] == ["checkpoint_0450.pth.tar"]
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(finished / "checkpoint_last.pth.tar", other / "checkpoint_0450.pth.tar")
    argv = [*common, "--checkpoint-path", str(other), "--results", str(tmp_path / "r.jsonl")]
    assert knn_eval.main(argv) == 1
    assert "holds the files of a run (checkpoint_0450.pth.tar); a kNN evaluation run does not go there" in (
        capsys.readouterr().err
    )
    # any checkpoint without a record, under any run-file name: here the evaluated one, named as ours
    copied = tmp_path / "copied"
    copied.mkdir()
    shutil.copyfile(finished / "checkpoint_last.pth.tar", copied / "checkpoint.pth.tar")
    argv = [*common, "--pretrained", str(copied / "checkpoint.pth.tar"), "--checkpoint-path", str(copied)]
    assert knn_eval.main([*argv, "--results", str(tmp_path / "r.jsonl")]) == 1
    assert "not even with --fresh" in capsys.readouterr().err
    assert [n for n in os.listdir(copied) if n != ".claim"] == ["checkpoint.pth.tar"]


def test_a_resume_without_an_output_folder_goes_on_in_its_checkpoints_folder(data_dir, finished, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the default folders (checkpoints/, runs/) would go
    run = tmp_path / "pre"
    assert pretrain(data_dir, run, "--epochs", "1") == 0
    resume = ["--resume", str(run / "checkpoint_last.pth.tar"), "--epochs", "2"]
    assert pretrain_cmd.main(["--data-dir", data_dir, *TINY, *resume]) == 0
    assert torch.load(run / "checkpoint_last.pth.tar", weights_only=False)["epoch"] == 2
    downloads = tmp_path / "downloads"  # a checkpoint alone, as released ones arrive: nothing is written beside it
    downloads.mkdir()
    shutil.copyfile(run / "checkpoint_0000.pth.tar", downloads / "checkpoint_0000.pth.tar")
    resume = ["--resume", str(downloads / "checkpoint_0000.pth.tar"), "--epochs", "2"]
    assert pretrain_cmd.main(["--data-dir", data_dir, *TINY, *resume]) == 0
    assert os.listdir(downloads) == ["checkpoint_0000.pth.tar"]
    assert os.listdir(tmp_path / "checkpoints") == ["ntu60_cross_subject_pretrain"]  # the default folder
    shutil.rmtree(tmp_path / "checkpoints")
    lin, results = tmp_path / "lin", tmp_path / "r.jsonl"
    common = ["--pretrained", str(finished / "checkpoint_last.pth.tar"), "--seed", "1", "--probe", "sgd"]
    assert classify(data_dir, lin, results, *common) == 0  # PROBE: 2 epochs
    argv = ["--data-dir", data_dir, "--results", str(results), "--hidden-size", "8", "--num-layers", "1", *PROBE]
    resumed = [*common, "--resume", str(lin / "checkpoint.pth.tar"), "--epochs", "3"]
    assert action_classification.main([*argv, *resumed]) == 0
    assert torch.load(lin / "checkpoint.pth.tar", weights_only=False)["epoch"] == 3
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "runs").exists()


def test_a_probe_of_five_classes_or_fewer_records_no_top5_even_resumed_from_an_older_run(finished, tmp_path):
    three = write_processed(tmp_path / "three", n=(16, 6), num_class=3, dataset="three")  # 3 classes recorded
    out, results = tmp_path / "lin", tmp_path / "r.jsonl"
    common = ["--pretrained", str(finished / "checkpoint_last.pth.tar"), "--seed", "1", "--probe", "sgd"]
    assert classify(three, out, results, *common) == 0
    assert all("top5" not in json.loads(line) for line in results.read_text().splitlines())
    state = torch.load(out / "checkpoint.pth.tar", weights_only=False)
    for values in state["best"].values():  # as runs saved it before top-5 was left out over 5 classes or fewer,
        values.update(top1=100.0, top5=100.0)  # and a best no later epoch replaces
    torch.save(state, out / "checkpoint.pth.tar")
    assert classify(three, out, results, *common, "--resume", str(out / "checkpoint.pth.tar"), "--epochs", "3") == 0
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(records) == 2 and records[1]["value"] == 100.0 and all("top5" not in r for r in records)


def test_an_evaluation_resume_checks_its_data_and_checkpoint_before_writing(
    data_dir, finished, tmp_path, capsys, sha256
):
    from dataset.processed import split_paths
    from tests.helpers import write_processed

    other = tmp_path / "other"  # the same training part, another evaluation part
    shutil.copytree(data_dir, other)
    for theirs, ours in zip(
        split_paths(write_processed(tmp_path / "v", n=(16, 6), seed=5), "val"), split_paths(other, "val")
    ):
        shutil.copyfile(theirs, ours)
    out, results = tmp_path / "lin", tmp_path / "r.jsonl"
    checkpoint = str(finished / "checkpoint_last.pth.tar")
    common = ["--pretrained", checkpoint, "--seed", "1"]
    assert classify(data_dir, out, results, *common) == 0
    before, lines = snapshot(out, sha256), results.read_text()
    resume = ["--resume", str(out / "checkpoint.pth.tar"), "--epochs", "3"]
    assert classify(str(other), out, results, *common, *resume) == 1
    assert "other settings or data: the evaluation data (its fingerprint)" in capsys.readouterr().err
    assert (
        classify(
            data_dir, out, results, "--pretrained", str(finished / "checkpoint_0000.pth.tar"), "--seed", "1", *resume
        )
        == 1
    )
    assert "the --pretrained checkpoint's content (its fingerprint)" in capsys.readouterr().err
    assert snapshot(out, sha256) == before and results.read_text() == lines  # settings.json untouched too
    # a finished run resumed with its own length: nothing to do, nothing appended
    assert classify(data_dir, out, results, *common, "--resume", str(out / "checkpoint.pth.tar")) == 0
    assert f"nothing is appended to {results} now" in capsys.readouterr().out and results.read_text() == lines
    # stopped after its last checkpoint, before its records: the resume records them (once)
    (out / "result.jsonl").unlink()
    results.write_text("")
    # asked for fewer epochs than it ran: refused, not recorded under a length it never had
    shorter = ["--resume", str(out / "checkpoint.pth.tar"), "--epochs", "1"]
    assert classify(data_dir, out, results, *common, *shorter) == 1
    assert (
        "is at epoch 2, beyond --epochs 1: a run is not cut back; pass --epochs 2, its length, or more"
        in capsys.readouterr().err
    )
    assert results.read_text() == "" and not (out / "result.jsonl").exists()
    assert classify(data_dir, out, results, *common, "--resume", str(out / "checkpoint.pth.tar")) == 0
    assert "finished training (epoch 2); recording its results" in capsys.readouterr().out
    assert (out / "result.jsonl").read_text() == results.read_text()
    assert [json.loads(x)["value"] for x in results.read_text().splitlines()] == [
        json.loads(x)["value"] for x in lines.splitlines()
    ]
    assert classify(data_dir, out, results, *common, "--resume", str(out / "checkpoint.pth.tar")) == 0
    assert "nothing to do" in capsys.readouterr().out and len(results.read_text().splitlines()) == len(
        lines.splitlines()
    )
    # stopped between its two writes (appended, the run folder's copy not yet written): not appended twice
    recorded = results.read_text()
    (out / "result.jsonl").unlink()
    assert classify(data_dir, out, results, *common, "--resume", str(out / "checkpoint.pth.tar")) == 0
    out_text = capsys.readouterr().out
    assert "recording its results" in out_text and results.read_text() == recorded
    assert f"results already in {results} (appended before the stop)" in out_text and "appended to" not in out_text
    assert [json.loads(x)["value"] for x in (out / "result.jsonl").read_text().splitlines()] == [
        json.loads(x)["value"] for x in recorded.splitlines()
    ]
    moved = shutil.copyfile(checkpoint, tmp_path / "moved.pth.tar")  # the same checkpoint elsewhere continues it
    assert classify(data_dir, out, results, "--pretrained", str(moved), "--seed", "1", *resume) == 0
    assert len(results.read_text().splitlines()) == 2 * len(lines.splitlines())


def test_pretrain_dataset_cannot_contradict_what_the_checkpoint_records(data_dir, finished, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        classify(
            data_dir,
            tmp_path / "lin",
            tmp_path / "r.jsonl",
            "--pretrained",
            str(finished / "checkpoint_last.pth.tar"),
            "--pretrain-dataset",
            "pku_v2",
        )
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "--pretrain-dataset pku_v2: the checkpoint" in err
    assert "records that it was pretrained on ntu60" in err


def test_an_encoder_evaluated_on_another_data_set_is_said_to_be(data_dir, finished, tmp_path, capsys):
    other = write_processed(tmp_path / "other", n=(16, 6), dataset="other_set")  # the encoder saw ntu60's
    argv = [tmp_path / "r.jsonl", "--pretrained", str(finished / "checkpoint_last.pth.tar")]
    assert knn(other, tmp_path / "knn", *argv) == 0
    assert "note: the encoder was pretrained on ntu60 and is evaluated on other_set" in capsys.readouterr().out
    record = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[0])
    assert (record["dataset"], record["pretrain_dataset"], record["pretrain_cmd_weight"]) == ("other_set", "ntu60", 1.0)
    assert knn(data_dir, tmp_path / "knn_same", *argv) == 0
    assert "note:" not in capsys.readouterr().out


def test_an_encoder_evaluated_on_its_folder_written_again_or_another_of_its_name_is_told_apart(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    write_processed(tmp_path / "mine", n=(16, 6))
    assert pretrain("mine", tmp_path / "run", "--epochs", "1") == 0  # a relative --data-dir
    argv = [tmp_path / "r.jsonl", "--pretrained", str(tmp_path / "run" / "checkpoint_last.pth.tar")]
    (tmp_path / "elsewhere").mkdir()
    write_processed(tmp_path / "elsewhere" / "mine", n=(16, 6), seed=2)  # another folder of the same name
    capsys.readouterr()
    assert knn("mine", tmp_path / "knn", *argv) == 0
    assert "note:" not in capsys.readouterr().out
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert knn("mine", tmp_path / "knn2", *argv) == 0  # other data, but not the folder it learnt from
    out = capsys.readouterr().out
    assert "warning" not in out
    said = (
        f"note: the encoder was pretrained on {tmp_path / 'mine'} of ntu60, whose training part is not "
        f"{tmp_path / 'elsewhere' / 'mine'}'s (another fingerprint); the results say so ('pretrained on other "
        "ntu60 data' in tools.report)"
    )
    assert said in out
    assert knn("../mine", tmp_path / "knn3", *argv) == 0  # its own folder, by another path
    assert "warning" not in capsys.readouterr().out
    write_processed(tmp_path / "mine", n=(16, 6), seed=1)  # imported again: other coordinates and frame counts
    assert knn("../mine", tmp_path / "knn4", *argv) == 0
    out = capsys.readouterr().out
    assert f"was pretrained on {tmp_path / 'mine'} when its training part held other data (another fingerprint)" in out
    assert "whose training part is not" not in out  # the folder it learnt from, written again: the warning alone
    # the report keeps the encoder on its own data apart from it on others of the name (the same checkpoint)
    rows = [line.split(" | ")[0] for line in report(load_results([str(tmp_path / "r.jsonl")])).splitlines()]
    learnt = json.loads((tmp_path / "run" / "settings.json").read_text())["data"]["fingerprint"][:8]
    ours = sorted(row.split(", data ")[0] for row in rows if "— ours" in row)  # three folders, each its own data
    assert ours == ["| CMD (joint) — ours"] + 2 * [f"| CMD (joint) — ours, pretrained on other ntu60 data ({learnt})"]
    (tmp_path / "link").symlink_to(tmp_path / "mine")  # the folder written again, reached through a link
    assert knn(str(tmp_path / "link"), tmp_path / "knn4b", tmp_path / "r2.jsonl", *argv[1:]) == 0
    out = capsys.readouterr().out
    assert "when its training part held other data" in out and "whose training part is not" not in out
    # imported again in place as another benchmark: the benchmark's note does not hide the data's warning
    write_processed(tmp_path / "mine", n=(16, 6), seed=3, dataset="ntu60", protocol="cross_view")
    assert knn("../mine", tmp_path / "knn5", *argv) == 0
    out = capsys.readouterr().out
    assert "note: the encoder was pretrained on the training part of the cross_subject benchmark of ntu60" in out
    assert "when its training part held other data (another fingerprint)" in out and out.count("the results say") == 1


def test_an_encoder_pretrained_on_another_benchmark_of_the_data_set_is_said_to_be(finished, tmp_path, capsys):
    # the cross-view training part holds recordings a cross-subject evaluation validates on, and vice versa
    xview = write_processed(tmp_path / "xview", n=(16, 6), dataset="ntu60", protocol="cross_view")
    argv = [tmp_path / "r.jsonl", "--pretrained", str(finished / "checkpoint_last.pth.tar")]
    assert knn(xview, tmp_path / "knn", *argv) == 0
    out = capsys.readouterr().out
    assert "note: the encoder was pretrained on the training part of the cross_subject benchmark of ntu60" in out
    assert "this cross_view evaluation validates on" in out


def test_a_transfer_to_another_data_set_gets_no_note_of_other_data(finished, tmp_path, capsys):
    # an encoder pretrained on NTU, fine-tuned on PKU-MMD II: other data by design, not a folder mixed up
    pku = write_processed(tmp_path / "pku", n=(16, 6), num_class=4, dataset="pku_v2", protocol="cross_subject")
    argv = ["--pretrained", str(finished / "checkpoint_last.pth.tar"), "--transfer"]
    capsys.readouterr()
    assert classify(pku, tmp_path / "transfer", tmp_path / "r.jsonl", *argv) == 0
    out = capsys.readouterr().out
    assert "note:" not in out and "warning: " not in out
    assert load_results([str(tmp_path / "r.jsonl")])[0]["stage"] == "transfer"
    assert not (tmp_path / "transfer" / "train_subset.json").exists()  # all labels: no subset drawn


def test_a_logistic_probe_is_not_resumed(finished, data_dir, tmp_path, capsys):
    argv = ["--pretrained", str(finished / "checkpoint_last.pth.tar"), "--probe", "logistic"]
    with pytest.raises(SystemExit) as stop:
        classify(data_dir, tmp_path / "probe", tmp_path / "r.jsonl", *argv, "--seed", "0", "--resume", argv[1])
    assert stop.value.code == 2
    assert "this command's probe is the logistic regression, fitted in one go: give the run's own flags" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "probe").exists() and not (tmp_path / "r.jsonl").exists()


def test_every_run_on_a_folder_repeats_its_imports_warnings(tmp_path, capsys):
    folder = write_processed(tmp_path / "mine", n=(16, 6))
    # an importer's summary: 20 of 22 recordings upside down once normalised (a y-down frame, say)
    (tmp_path / "mine" / "settings.json").write_text('{"counts": {"train": 16, "val": 6}, "upside_down": 20}\n')
    said = f"warning: {folder}: 20 of its 22 recordings stood upside down once normalised when it was imported"
    assert pretrain(folder, tmp_path / "run", "--epochs", "1") == 0
    assert said in capsys.readouterr().out
    argv = ["--pretrained", str(tmp_path / "run" / "checkpoint_last.pth.tar")]
    assert knn(folder, tmp_path / "knn", tmp_path / "r.jsonl", *argv) == 0
    assert said in capsys.readouterr().out
    assert classify(folder, tmp_path / "probe", tmp_path / "r.jsonl", *argv, "--epochs", "1") == 0
    assert said in capsys.readouterr().out


def test_knn_with_random_training_crops_changes_the_training_features_only(finished, data_dir, tmp_path):
    argv = ["--pretrained", str(finished / "checkpoint_last.pth.tar"), "--seed", "0"]
    saved = {}
    for crop in ("centre", "random"):
        npz = tmp_path / f"{crop}.npz"
        flags = ["--train-crop", crop, "--save-features", str(npz)]
        assert knn(data_dir, tmp_path / crop, tmp_path / "r.jsonl", *argv, *flags) == 0
        with np.load(npz) as f:
            saved[crop] = {key: f[key] for key in ("train_features", "val_features")}
    assert not np.allclose(saved["centre"]["train_features"], saved["random"]["train_features"])
    np.testing.assert_array_equal(saved["centre"]["val_features"], saved["random"]["val_features"])
