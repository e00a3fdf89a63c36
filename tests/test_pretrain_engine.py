"""Pretraining loop: checkpoints, exact resume, non-finite loss, bad input, options, faults (tiny CPU runs)."""
import errno
import hashlib
import io
import json
import os
import pickle

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import pretrain_cmd
from dataset.processed import ProcessedDataError
from engine import pretrain as engine
from engine import checkpoint
from engine.checkpoint import read_checkpoint
from engine.distributed import init_distributed
from options.options_pretraining import parse_args

TINY = ["--hidden-size", "8", "--num-layers", "1", "--contrast-k", "32", "--topk", "16", "-b", "8", "-j", "0",
        "--device", "cpu", "--contrast-dim", "16", "--print-freq", "1"]


def make_folder(folder, n_train=16, n_val=4, seed=0, frames=None):
    """A processed folder (docs/published-behaviour.md §1.3) of random samples."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for part, n in (("train", n_train), ("val", n_val)):
        np.save(os.path.join(folder, f"{part}_data_joint.npy"),
                rng.standard_normal((n, 3, 300, 25, 2)).astype(np.float32))
        counts = rng.integers(30, 300, n) if frames is None else np.full(n, frames)
        np.save(os.path.join(folder, f"{part}_num_frame.npy"), counts.astype(np.int64))
        with open(os.path.join(folder, f"{part}_label.pkl"), "wb") as f:
            pickle.dump(([f"S001C001P001R001A{i:03d}" for i in range(n)], [i % 3 for i in range(n)]), f)
    return str(folder)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("processed"))


def run(data_dir, out, *extra):
    args = parse_args(["--data-dir", data_dir, "--checkpoint-path", str(out)] + TINY + list(extra))
    return engine.run_pretraining(args)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.parametrize("augment_on", ["loader", "device"])
def test_resume_reproduces_the_uninterrupted_run(data_dir, tmp_path, augment_on):
    run(data_dir, tmp_path / "straight", "--epochs", "2", "--augment-on", augment_on)
    run(data_dir, tmp_path / "split", "--epochs", "1", "--augment-on", augment_on)
    run(data_dir, tmp_path / "split", "--epochs", "2", "--augment-on", augment_on,
        "--resume", str(tmp_path / "split" / "checkpoint_last.pth.tar"))
    a = read_checkpoint(str(tmp_path / "straight" / "checkpoint_last.pth.tar"))
    b = read_checkpoint(str(tmp_path / "split" / "checkpoint_last.pth.tar"))
    assert a["epoch"] == b["epoch"] == 2
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    for pa, pb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(pa["momentum_buffer"], pb["momentum_buffer"])
    # training moved the weights and the queues
    first = read_checkpoint(str(tmp_path / "split" / "checkpoint_0000.pth.tar"))
    assert not torch.equal(first["state_dict"]["encoder_q.fc.0.weight"], a["state_dict"]["encoder_q.fc.0.weight"])
    assert not torch.equal(first["state_dict"]["queue_bone"], a["state_dict"]["queue_bone"])


def test_checkpoint_contents(data_dir, tmp_path):
    history = run(data_dir, tmp_path, "--epochs", "2")
    assert [h["epoch"] for h in history] == [0, 1]
    names = sorted(os.listdir(tmp_path))
    assert "checkpoint_0000.pth.tar" in names and "checkpoint_0001.pth.tar" not in names
    assert {"checkpoint_last.pth.tar", "settings.json", "log.jsonl", "tensorboard"} <= set(names)
    assert not [n for n in names if n.endswith(".tmp")]
    ckpt = read_checkpoint(str(tmp_path / "checkpoint_0000.pth.tar"))
    assert ckpt["epoch"] == 1
    assert {"epoch", "state_dict", "optimizer", "arch", "options", "rng"} <= set(ckpt)
    state = ckpt["state_dict"]
    assert not [k for k in state if k.startswith("module.")]
    for prefix in ("encoder_q", "encoder_k", "encoder_q_motion", "encoder_k_motion", "encoder_q_bone",
                   "encoder_k_bone"):
        for name in ("encoder.gru.weight_ih_l0", "encoder.gru.bias_hh_l0_reverse", "fc.0.weight", "fc.2.bias",
                     "input_norm.running_var", "input_norm.num_batches_tracked"):
            assert f"{prefix}.{name}" in state
    for name in ("queue", "queue_motion", "queue_bone"):
        assert state[name].shape == (16, 32)
    # 16 samples, batch 8: two steps per epoch move each queue pointer by 16 of K = 32
    assert int(state["queue_ptr"]) == int(state["queue_ptr_bone"]) == 16
    assert ckpt["arch"]["args_bi_gru"] == {"en_input_size": 150, "en_hidden_size": 8, "en_num_layers": 1,
                                           "num_class": 16}
    assert ckpt["options"]["contrast_k"] == 32 and ckpt["options"]["topk"] == 16
    last = read_checkpoint(str(tmp_path / "checkpoint_last.pth.tar"))
    assert last["epoch"] == 2 and int(last["state_dict"]["queue_ptr_motion"]) == 0
    with open(tmp_path / "settings.json") as f:
        settings = json.load(f)
    assert settings["contrast_k"] == 32 and settings["global_batch_size"] == 8 and settings["augment_on"] == "loader"
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for name in ("loss_ce_joint", "loss_ce_motion", "loss_ce_bone", "loss_cmd", "loss", "top1_joint",
                 "top1_motion", "top1_bone"):
        assert f"train/{name}" in tags and f"step/{name}" in tags
    assert [e.value for e in events.Scalars("train/lr")] == pytest.approx([0.01, 0.01])
    total = [e.value for e in events.Scalars("train/loss")]
    parts = [sum(events.Scalars(f"train/{k}")[i].value for k in ("loss_ce_joint", "loss_ce_motion", "loss_ce_bone",
                                                                  "loss_cmd")) for i in range(2)]
    assert total == pytest.approx(parts, rel=1e-5)


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(data_dir, tmp_path, monkeypatch):
    run(data_dir, tmp_path, "--epochs", "1")
    last = tmp_path / "checkpoint_last.pth.tar"
    before = sha(last)
    build = engine.build_model
    calls = {"n": 0}

    def poisoned(args, layout):
        model = build(args, layout)
        forward = model.forward

        def forward_with_nan(im_q, im_k):
            out = forward(im_q, im_k)
            calls["n"] += 1
            return out[:-1] + (out[-1] * float("nan") if calls["n"] == 2 else out[-1],)

        model.forward = forward_with_nan
        return model

    monkeypatch.setattr(engine, "build_model", poisoned)
    with pytest.raises(engine.NonFiniteLossError, match="epoch 1, step 1 of 2"):
        run(data_dir, tmp_path, "--epochs", "3", "--resume", str(last))
    assert sha(last) == before
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".pth.tar")) == [
        "checkpoint_0000.pth.tar", "checkpoint_last.pth.tar"]


def test_bad_options_fail_before_training(data_dir, tmp_path, capsys):
    base = ["--data-dir", data_dir, "--checkpoint-path", str(tmp_path), "--epochs", "1"]
    with pytest.raises(SystemExit):
        parse_args(base + TINY + ["--contrast-k", "36"])
    assert "--contrast-k 36 is not divisible by the global batch size 8" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(base + TINY + ["--topk", "64"])
    assert "--topk 64 is larger than the queue length --contrast-k 32" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--pre-dataset", "ntu60", "--protocol", "cross_setup"])
    assert "cross_setup" in capsys.readouterr().err
    # K against the global batch of several processes: tests/test_options.py (WORLD_SIZE)
    args = parse_args(base + TINY + ["--contrast-k", "24"])
    with pytest.raises(engine.SettingsError, match="fewer than one global batch"):
        engine._check_settings(args, 1, 7)
    assert not os.listdir(tmp_path)


def test_bad_data_folders_fail_before_training(tmp_path, capsys):
    out = tmp_path / "out"
    missing = str(tmp_path / "nowhere")
    assert pretrain_cmd.main(["--data-dir", missing, "--checkpoint-path", str(out), "--epochs", "1"] + TINY) == 1
    assert f"processed folder {missing}: no such folder" in capsys.readouterr().err
    broken = make_folder(tmp_path / "broken", n_train=4)
    np.save(os.path.join(broken, "train_data_joint.npy"), np.zeros((4, 3, 300, 25), dtype=np.float32))
    with pytest.raises(ProcessedDataError, match="broken.*train_data_joint.npy has shape"):
        run(broken, out, "--epochs", "1")
    small = make_folder(tmp_path / "small", n_train=5)
    with pytest.raises(engine.SettingsError, match="5 samples, fewer than one global batch of 8"):
        run(small, out, "--epochs", "1")
    empty = make_folder(tmp_path / "empty_sample", n_train=8)
    counts = np.load(os.path.join(empty, "train_num_frame.npy"))
    counts[3] = 0
    np.save(os.path.join(empty, "train_num_frame.npy"), counts)
    with pytest.raises(ProcessedDataError, match="sample 3 .*has 0 frames"):
        run(empty, out, "--epochs", "1")
    assert not os.path.exists(out) or not [n for n in os.listdir(out) if n.endswith(".pth.tar")]


def test_options_take_preset_defaults_and_flags_win():
    args = parse_args([])
    assert (args.lr, args.momentum, args.weight_decay, args.batch_size, args.epochs) == (0.01, 0.9, 1e-4, 64, 451)
    assert (args.schedule, args.mlp, args.cos, args.contrast_k, args.topk) == ([351], True, False, 16384, 8192)
    assert (args.contrast_t, args.contrast_m, args.teacher_t, args.student_t) == (0.07, 0.999, 0.05, 0.1)
    assert (args.hidden_size, args.num_layers, args.seed, args.cmd_weight) == (1024, 3, 42, 1.0)
    pku = parse_args(["--pre-dataset", "pku_v2", "--protocol", "cross_view"])
    assert (pku.epochs, pku.schedule) == (1001, [801])
    published = parse_args(["-j", "3", "--epochs", "20", "--start-epoch", "2", "-b", "16", "--lr", "0.5",
                            "--schedule", "5", "9", "--momentum", "0.8", "--wd", "0.5", "-p", "7",
                            "--resume", "r.pth.tar", "--local_rank", "1", "--seed", "3", "--checkpoint-path", "c",
                            "--skeleton-representation", "graph-based", "--pre-dataset", "ntu120",
                            "--protocol", "cross_setup", "--contrast-dim", "64", "--contrast-k", "128",
                            "--contrast-m", "0.99", "--contrast-t", "0.2", "--teacher-t", "0.3",
                            "--student-t", "0.4", "--cmd-weight", "2", "--topk", "100", "--mlp", "--cos"])
    assert (published.workers, published.epochs, published.start_epoch, published.batch_size) == (3, 20, 2, 16)
    assert (published.lr, published.schedule, published.momentum, published.weight_decay) == (0.5, [5, 9], 0.8, 0.5)
    assert (published.print_freq, published.resume, published.local_rank, published.seed) == (7, "r.pth.tar", 1, 3)
    assert (published.pre_dataset, published.protocol, published.contrast_dim) == ("ntu120", "cross_setup", 64)
    assert (published.contrast_k, published.contrast_m, published.contrast_t) == (128, 0.99, 0.2)
    assert (published.teacher_t, published.student_t, published.cmd_weight, published.topk) == (0.3, 0.4, 2.0, 100)
    assert published.mlp and published.cos and published.checkpoint_path == "c"
    assert parse_args(["--local-rank", "2", "--no-mlp", "--weight-decay", "0"]).local_rank == 2
    assert not parse_args(["--no-mlp"]).mlp


def test_single_process_without_torchrun_environment(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    ctx = init_distributed("cpu", local_rank=3)
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.distributed, ctx.is_main) == (0, 1, 3, False, True)
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two'"):
        init_distributed("cpu")


@pytest.mark.parametrize("augment_on", ["loader", "device"])
def test_view_frames_and_corrupted_joints_reach_the_views(data_dir, tmp_path, monkeypatch, augment_on):
    seen = []
    original = engine._views

    def spy(batch, device, augment_on_device, generator, args):
        views = original(batch, device, augment_on_device, generator, args)
        seen.append(tuple(views[0].shape))
        return views

    monkeypatch.setattr(engine, "_views", spy)
    run(data_dir, tmp_path / "run", "--epochs", "1", "--augment-on", augment_on, "--view-frames", "24",
        "--corrupted-joints", "5")
    assert seen and all(shape == (8, 3, 24, 25, 2) for shape in seen)
    settings = json.loads((tmp_path / "run" / "settings.json").read_text())
    assert (settings["view_frames"], settings["corrupted_joints"]) == (24, 5)
    args = parse_args(["--data-dir", data_dir, "--checkpoint-path", str(tmp_path / "bad")] + TINY
                      + ["--corrupted-joints", "26"])
    with pytest.raises(engine.SettingsError, match="--corrupted-joints must be between 1 and the 25 joints of "
                                                   "the folder's layout 'ntu25', found 26"):
        engine._check_settings(args, 1, 100)


class _Killed(BaseException):
    """Stands for a kill -9 at a chosen point: nothing in the run catches it."""


def _log_epochs(folder):
    return [json.loads(line)["epoch"] for line in (folder / "log.jsonl").read_text().splitlines()]


def test_periodic_checkpoint_is_written_first_and_restored_on_resume(data_dir, tmp_path, monkeypatch):
    # A kill between the two writes of epoch 0 leaves the periodic file, not checkpoint_last.
    save = engine.save_checkpoint_atomic

    def killed_at_last(obj, path):
        if path.endswith(engine.LAST_CHECKPOINT):
            raise _Killed
        save(obj, path)

    monkeypatch.setattr(engine, "save_checkpoint_atomic", killed_at_last)
    with pytest.raises(_Killed):
        run(data_dir, tmp_path / "killed", "--epochs", "1")
    monkeypatch.undo()
    assert sorted(n for n in os.listdir(tmp_path / "killed") if n.endswith(".pth.tar")) == ["checkpoint_0000.pth.tar"]
    # A folder written with checkpoint_last first and killed before checkpoint_0000: a resume, even
    # one with nothing left to train, re-creates checkpoint_0000 as it was (both hold the same state).
    out = tmp_path / "old"
    run(data_dir, out, "--epochs", "1")
    periodic, last = out / "checkpoint_0000.pth.tar", out / "checkpoint_last.pth.tar"
    expected = sha(periodic)
    assert sha(last) == expected
    periodic.unlink()
    assert run(data_dir, out, "--epochs", "1", "--resume", str(last)) == []
    assert sha(periodic) == expected
    periodic.unlink()
    run(data_dir, out, "--epochs", "2", "--resume", str(last))
    assert sha(periodic) == expected and read_checkpoint(str(last))["epoch"] == 2


def test_resume_leaves_one_log_line_per_epoch(data_dir, tmp_path, monkeypatch):
    # Resuming from an earlier periodic checkpoint: epochs 1 and 2 are trained again, logged once.
    out = tmp_path / "rewound"
    run(data_dir, out, "--epochs", "3")
    run(data_dir, out, "--epochs", "3", "--resume", str(out / "checkpoint_0000.pth.tar"))
    assert _log_epochs(out) == [0, 1, 2]
    # A log from a run that appended before its checkpoint: epoch 1 twice, a fragment at the end.
    lines = (out / "log.jsonl").read_text().splitlines(keepends=True)
    (out / "log.jsonl").write_text("".join(lines[:2] + lines[1:2] + lines[2:]) + '{"epoch": 3, "lo')
    run(data_dir, out, "--epochs", "3", "--resume", str(out / "checkpoint_0000.pth.tar"))
    assert _log_epochs(out) == [0, 1, 2]
    # A kill after epoch 1's checkpoint but before its log line: the resume restores the line from
    # the checkpoint, and the record of epoch 1 is the one the straight run logged.
    killed = tmp_path / "killed"
    append = engine.append_jsonl

    def killed_at_epoch_1(path, record):
        if record["epoch"] == 1:
            raise _Killed
        append(path, record)

    monkeypatch.setattr(engine, "append_jsonl", killed_at_epoch_1)
    with pytest.raises(_Killed):
        run(data_dir, killed, "--epochs", "3")
    monkeypatch.undo()
    assert _log_epochs(killed) == [0]
    run(data_dir, killed, "--epochs", "3", "--resume", str(killed / "checkpoint_last.pth.tar"))
    assert _log_epochs(killed) == [0, 1, 2]
    straight = [json.loads(line) for line in (tmp_path / "rewound" / "log.jsonl").read_text().splitlines()]
    restored = [json.loads(line) for line in (killed / "log.jsonl").read_text().splitlines()]
    assert restored == straight


def test_resume_refuses_another_run_and_says_when_nothing_is_left(data_dir, tmp_path, caplog):
    out = tmp_path / "run"
    run(data_dir, out, "--epochs", "1")
    last = str(out / "checkpoint_last.pth.tar")
    other_data = make_folder(tmp_path / "other_data", seed=1)
    for extra, message in ((["--topk", "8"], "--topk: 16 in the checkpoint, 8 now"),
                           (["--cmd-weight", "2"], "--cmd-weight: 1.0 in the checkpoint, 2.0 now"),
                           (["--seed", "7"], "--seed: 42 in the checkpoint, 7 now")):
        with pytest.raises(engine.CheckpointError, match=message):
            run(data_dir, out, "--epochs", "2", "--resume", last, *extra)
    with pytest.raises(engine.CheckpointError, match=f"--data-dir: '{data_dir}' in the checkpoint, '{other_data}' now"):
        run(other_data, out, "--epochs", "2", "--resume", last)
    assert read_checkpoint(last)["epoch"] == 1  # nothing was trained or written
    # Settings listed as changeable may change: another learning rate, schedule, workers, frequency.
    run(data_dir, out, "--epochs", "2", "--resume", last, "--lr", "0.02", "--schedule", "1", "-p", "2")
    assert read_checkpoint(last)["options"]["lr"] == 0.02
    # A checkpoint without 'options' (the released ones) is not compared.
    released = tmp_path / "released.pth.tar"
    ckpt = read_checkpoint(last)
    torch.save({k: ckpt[k] for k in ("epoch", "state_dict", "optimizer")}, released)
    run(data_dir, tmp_path / "from_released", "--epochs", "3", "--resume", str(released), "--topk", "8")
    # --epochs not beyond the checkpoint's epoch: nothing is written, and the log says so.
    before = {name: sha(out / name) for name in ("checkpoint_last.pth.tar", "settings.json", "log.jsonl")}
    with caplog.at_level("WARNING", logger="engine.pretrain"):
        assert pretrain_cmd.main(["--data-dir", data_dir, "--checkpoint-path", str(out), "--epochs", "2",
                                  "--resume", last] + TINY) == 0
    assert f"nothing to do: checkpoint {last} is at epoch 2, --epochs 2" in caplog.text
    assert {name: sha(out / name) for name in before} == before


def test_full_disk_during_a_checkpoint_says_so_and_keeps_the_last_one(data_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    run(data_dir, out, "--epochs", "1")
    before = {name: sha(out / name) for name in ("checkpoint_0000.pth.tar", "checkpoint_last.pth.tar")}

    class FullDisk(io.FileIO):
        """A file on a disk that fills up after 1000 bytes."""

        def write(self, data):
            if self.tell() + len(data) > 1000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    monkeypatch.setattr(checkpoint, "open", lambda path, mode: FullDisk(path, "w"), raising=False)
    argv = ["--data-dir", data_dir, "--checkpoint-path", str(out), "--epochs", "2",
            "--resume", str(out / "checkpoint_last.pth.tar")] + TINY
    assert pretrain_cmd.main(argv) == 1
    err = capsys.readouterr().err
    assert f"no space left on {out / 'checkpoint_last.pth.tar'}" in err and "enforce fail" not in err
    assert {name: sha(out / name) for name in before} == before
    assert sorted(os.listdir(out)) == ["checkpoint_0000.pth.tar", "checkpoint_last.pth.tar", "log.jsonl",
                                       "settings.json", "tensorboard"]
