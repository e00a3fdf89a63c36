"""Pretraining loop: checkpoints, exact resume, run folders, non-finite loss, bad input, faults (tiny CPU runs)."""

import copy
import errno
import io
import json
import os
import shlex
import shutil

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import pretrain_cmd
from dataset.files import NoSpaceError, is_temporary
from dataset.layouts import NTU25
from dataset.processed import ProcessedDataError
from engine import checkpoint
from engine import pretrain as engine
from engine.checkpoint import CheckpointError, read_checkpoint
from engine.runfolder import RunFolderError
from feeder import feeder_pretraining
from moco.builder import MoCo
from options.options_classification import choose_preset, open_data, parse_classification
from options.options_pretraining import parse_args, resolve
from tests.helpers import TINY_PRETRAIN, write_folder_record

TINY = [*TINY_PRETRAIN, "--print-freq", "1"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, processed):
    """16 training recordings of ntu25 skeletons without layout.json: the published ntu60 preset, TINY sizes."""
    return processed(tmp_path_factory.mktemp("processed"))


def settings_of(data_dir, out, *extra):
    return resolve(*parse_args(["--data-dir", data_dir, "--checkpoint-path", str(out)] + TINY + list(extra)))


def run(data_dir, out, *extra):
    return engine.run_pretraining(*settings_of(data_dir, out, *extra))


def main(data_dir, out, *extra):
    return pretrain_cmd.main(["--data-dir", data_dir, "--checkpoint-path", str(out)] + TINY + list(extra))


def checkpoints(folder):
    return sorted(n for n in os.listdir(folder) if n.endswith(".pth.tar"))


def test_a_training_step_descends_the_sum_of_the_three_infonce_losses_and_the_cmd_loss():
    """One plain SGD step moves each query weight by -lr times the gradient of CE_joint + CE_motion + CE_bone
    + the weighted CMD loss, computed on a copy of the model by hand."""
    torch.manual_seed(0)
    args = {"en_input_size": 150, "en_hidden_size": 8, "en_num_layers": 1, "num_class": 16}
    model = MoCo("graph-based", args, dim=16, K=32, m=0.9, topk=16, mlp=True, cmd_weight=0.5).double()
    ref = copy.deepcopy(model)
    g = torch.Generator().manual_seed(5)
    im_q, im_k = (torch.randn(8, 3, 6, 25, 2, generator=g, dtype=torch.float64) for _ in range(2))
    lr = 0.3
    stats = engine.train_step(model, torch.optim.SGD(model.parameters(), lr=lr), im_q, im_k)

    *logits, labels, loss_cmd = ref(im_q, im_k)
    total = loss_cmd + sum(torch.nn.functional.cross_entropy(s, labels) for s in logits)
    total.backward()
    assert float(stats["loss"]) == pytest.approx(total.item(), rel=1e-6)  # train_step sums in float32
    assert loss_cmd.item() > 0
    moved = dict(model.named_parameters())
    for name, p in ref.named_parameters():
        if p.grad is None:  # key encoders: the momentum update only, checked in tests/moco
            continue
        torch.testing.assert_close(moved[name], p.detach() - lr * p.grad, rtol=1e-6, atol=1e-7, msg=name)


@pytest.mark.slow  # several pretrainings
@pytest.mark.parametrize("augment_on", ["loader", "device"])
def test_resume_reproduces_the_uninterrupted_run(data_dir, tmp_path, augment_on, trained_epochs):
    run(data_dir, tmp_path / "straight", "--epochs", "2", "--augment-on", augment_on)
    run(data_dir, tmp_path / "split", "--epochs", "1", "--augment-on", augment_on)
    saved = read_checkpoint(str(tmp_path / "split" / "checkpoint_last.pth.tar"))
    # the resumed run trains epoch 1 alone, from the saved state (a restart with the same seed would give the
    # same weights at the end, so the end alone cannot tell a resume from a restart)
    seen = trained_epochs(saved["state_dict"])
    run(
        data_dir,
        tmp_path / "split",
        "--epochs",
        "2",
        "--augment-on",
        augment_on,
        "--resume",
        str(tmp_path / "split" / "checkpoint_last.pth.tar"),
    )
    assert seen == [(1, True)]
    a = read_checkpoint(str(tmp_path / "straight" / "checkpoint_last.pth.tar"))
    b = read_checkpoint(str(tmp_path / "split" / "checkpoint_last.pth.tar"))
    assert a["epoch"] == b["epoch"] == 2
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    for pa, pb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(pa["momentum_buffer"], pb["momentum_buffer"])
    assert a["log"] == b["log"]
    # training moved the weights and the queues
    first = read_checkpoint(str(tmp_path / "split" / "checkpoint_0000.pth.tar"))
    assert not torch.equal(first["state_dict"]["encoder_q.fc.0.weight"], a["state_dict"]["encoder_q.fc.0.weight"])
    assert not torch.equal(first["state_dict"]["queue_bone"], a["state_dict"]["queue_bone"])


def test_a_resume_with_another_augment_on_warns_that_it_is_not_exact(data_dir, tmp_path, caplog):
    out = tmp_path / "run"
    last = str(out / "checkpoint_last.pth.tar")
    run(data_dir, out, "--epochs", "1", "--augment-on", "loader")
    with caplog.at_level("WARNING", logger="engine.pretrain"):
        run(data_dir, out, "--epochs", "2", "--augment-on", "device", "--resume", last)
    said = "--augment-on device, the run's was loader: its views are drawn from other random numbers"
    assert said in caplog.text and "pass --augment-on loader for that" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="engine.pretrain"):  # the checkpoint now records device
        run(data_dir, out, "--epochs", "3", "--augment-on", "device", "--resume", last)
    assert "--augment-on" not in caplog.text


def test_checkpoint_contents(data_dir, tmp_path):
    history = run(data_dir, tmp_path, "--epochs", "2")
    assert [h["epoch"] for h in history] == [0, 1]
    names = sorted(os.listdir(tmp_path))
    assert "checkpoint_0000.pth.tar" in names and "checkpoint_0001.pth.tar" not in names
    assert {"checkpoint_last.pth.tar", "settings.json", "log.jsonl", "tensorboard"} <= set(names)
    assert not [n for n in names if is_temporary(n)]
    ckpt = read_checkpoint(str(tmp_path / "checkpoint_0000.pth.tar"))
    assert ckpt["epoch"] == 1
    # 'arch' and 'options' of earlier versions are gone: the settings record holds what they held
    assert set(ckpt) == {"epoch", "state_dict", "optimizer", "settings", "rng", "log"}
    state = ckpt["state_dict"]
    assert not [k for k in state if k.startswith("module.")]
    for prefix in (
        "encoder_q",
        "encoder_k",
        "encoder_q_motion",
        "encoder_k_motion",
        "encoder_q_bone",
        "encoder_k_bone",
    ):
        for name in (
            "encoder.gru.weight_ih_l0",
            "encoder.gru.bias_hh_l0_reverse",
            "fc.0.weight",
            "fc.2.bias",
            "input_norm.running_var",
            "input_norm.num_batches_tracked",
        ):
            assert f"{prefix}.{name}" in state
    assert tuple(state["encoder_q.encoder.gru.weight_ih_l0"].shape) == (3 * 8, 150)  # 25 joints x 3 x 2 bodies
    for name in ("queue", "queue_motion", "queue_bone"):
        assert state[name].shape == (16, 32)
    # 16 samples, batch 8: two steps per epoch move each queue pointer by 16 of K = 32
    assert int(state["queue_ptr"]) == int(state["queue_ptr_bone"]) == 16
    record = ckpt["settings"]
    assert record["preset"] == "ntu60" and record["data"]["layout"]["name"] == "ntu25"
    assert record["encoder"] == {"hidden_size": 8, "num_layers": 1}
    assert (record["contrast"]["contrast_k"], record["contrast"]["topk"], record["contrast"]["contrast_dim"]) == (
        32,
        16,
        16,
    )
    assert (record["views"]["view_frames"], record["views"]["min_crop_frames"]) == (64, 64)
    assert ckpt["log"]["epoch"] == 0 and ckpt["log"]["lr"] == pytest.approx(0.01)
    last = read_checkpoint(str(tmp_path / "checkpoint_last.pth.tar"))
    assert last["epoch"] == 2 and int(last["state_dict"]["queue_ptr_motion"]) == 0
    with open(tmp_path / "settings.json") as f:
        settings = json.load(f)
    assert settings == last["settings"]  # the same record in the folder and in every checkpoint
    assert settings["contrast"]["contrast_k"] == 32 and settings["optim"]["batch_size"] == 8
    assert settings["run"]["world_size"] == 1 and settings["run"]["augment_on"] == "device"  # the default, on CPU too
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log == [ckpt["log"], last["log"]]
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for name in (
        "loss_ce_joint",
        "loss_ce_motion",
        "loss_ce_bone",
        "loss_cmd",
        "loss",
        "top1_joint",
        "top1_motion",
        "top1_bone",
    ):
        assert f"train/{name}" in tags and f"step/{name}" in tags
    assert [e.value for e in events.Scalars("train/lr")] == pytest.approx([0.01, 0.01])
    total = [e.value for e in events.Scalars("train/loss")]
    parts = [
        sum(
            events.Scalars(f"train/{k}")[i].value
            for k in ("loss_ce_joint", "loss_ce_motion", "loss_ce_bone", "loss_cmd")
        )
        for i in range(2)
    ]
    assert total == pytest.approx(parts, rel=1e-5)
    assert [line["loss"] for line in log] == pytest.approx(total, rel=1e-5)


def _poison(monkeypatch, at_call):
    """Make the model's CMD loss NaN at its `at_call`-th forward."""
    build = engine.build_model
    calls = {"n": 0}

    def poisoned(settings):
        model = build(settings)
        forward = model.forward

        def forward_with_nan(im_q, im_k):
            out = forward(im_q, im_k)
            calls["n"] += 1
            return out[:-1] + (out[-1] * float("nan") if calls["n"] == at_call else out[-1],)

        model.forward = forward_with_nan
        return model

    monkeypatch.setattr(engine, "build_model", poisoned)


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(data_dir, tmp_path, monkeypatch, capsys, sha256):
    run(data_dir, tmp_path, "--epochs", "1")
    last = tmp_path / "checkpoint_last.pth.tar"
    before = {name: sha256(tmp_path / name) for name in ("checkpoint_last.pth.tar", "log.jsonl")}
    _poison(monkeypatch, at_call=2)
    with pytest.raises(engine.NonFiniteLossError, match="epoch 1, step 1 of 2"):
        run(data_dir, tmp_path, "--epochs", "3", "--resume", str(last))
    assert {name: sha256(tmp_path / name) for name in before} == before
    assert checkpoints(tmp_path) == ["checkpoint_0000.pth.tar", "checkpoint_last.pth.tar"]
    # through the entry point: exit status 1 and one line, no traceback; the folder is free again
    _poison(monkeypatch, at_call=2)
    capsys.readouterr()
    assert main(data_dir, tmp_path, "--epochs", "3", "--resume", str(last)) == 1
    err = capsys.readouterr().err  # the progress bar's output, then the one line
    assert err.splitlines()[-1].startswith("pretrain_cmd.py: error: epoch 1, step 1 of 2: non-finite loss")
    assert "Traceback" not in err
    assert {name: sha256(tmp_path / name) for name in before} == before


def test_bad_data_folders_fail_before_training(tmp_path, processed, capsys):
    out = tmp_path / "out"
    missing = str(tmp_path / "nowhere")
    # a folder that does not exist is a usage error now (it was exit status 1)
    with pytest.raises(SystemExit) as stop:
        main(missing, out, "--epochs", "1")
    assert stop.value.code == 2 and f"processed folder {missing}: no such folder" in capsys.readouterr().err
    broken = processed(tmp_path / "broken", n=(4, 4))
    np.save(os.path.join(broken, "train_data_joint.npy"), np.zeros((4, 3, 300, 25), dtype=np.float32))
    with pytest.raises(ProcessedDataError, match="broken.*train_data_joint.npy has shape"):
        run(broken, out, "--epochs", "1")
    assert main(broken, out, "--epochs", "1") == 1
    assert "pretrain_cmd.py: error: processed folder" in capsys.readouterr().err
    # fewer samples than one batch: a usage error (it was a SettingsError from the engine)
    small = processed(tmp_path / "small", n=(5, 4))
    with pytest.raises(SystemExit) as stop:
        run(small, out, "--epochs", "1")
    assert stop.value.code == 2 and "5 samples, fewer than one global batch of 8" in capsys.readouterr().err
    empty = processed(tmp_path / "empty_sample", n=(8, 4))
    counts = np.load(os.path.join(empty, "train_num_frame.npy"))
    counts[3] = 0
    np.save(os.path.join(empty, "train_num_frame.npy"), counts)
    with pytest.raises(ProcessedDataError, match="sample 3 .*has 0 frames"):
        run(empty, out, "--epochs", "1")
    assert not os.path.exists(out)


@pytest.mark.parametrize("augment_on", ["loader", "device"])
def test_view_settings_reach_the_views(data_dir, tmp_path, monkeypatch, augment_on):
    seen, steps = [], []
    original = feeder_pretraining.pretraining_views

    def spy(data, num_frames, generator=None, views=None):
        seen.append((views.view_frames, views.corrupted_joints, views.min_crop_frames))
        return original(data, num_frames, generator, views)

    step = engine.train_step

    def step_spy(model, optimizer, im_q, im_k, *args):
        steps.append((tuple(im_q.shape), tuple(im_k.shape)))
        return step(model, optimizer, im_q, im_k, *args)

    monkeypatch.setattr(feeder_pretraining, "pretraining_views", spy)
    monkeypatch.setattr(engine, "pretraining_views", spy)
    monkeypatch.setattr(engine, "train_step", step_spy)
    run(
        data_dir,
        tmp_path / "run",
        "--epochs",
        "1",
        "--augment-on",
        augment_on,
        "--view-frames",
        "24",
        "--corrupted-joints",
        "5",
        "--min-crop-frames",
        "20",
    )
    assert seen and set(seen) == {(24, 5, 20)}
    assert len(seen) == (2 if augment_on == "device" else 16)  # one call per batch, or per sample
    assert steps == [((8, 3, 24, 25, 2),) * 2] * 2
    settings = json.loads((tmp_path / "run" / "settings.json").read_text())
    assert settings["views"] == {"view_frames": 24, "min_crop_frames": 20, "corrupted_joints": 5}


class _Killed(BaseException):
    """Stands for a kill -9 at a chosen point: nothing in the run catches it."""


def _log_epochs(folder):
    return [json.loads(line)["epoch"] for line in (folder / "log.jsonl").read_text().splitlines()]


def test_an_epochs_two_checkpoints_are_written_both_or_neither(data_dir, tmp_path, monkeypatch):
    # A failure while checkpoint_last is written (a full disk, a kill) leaves the periodic file of the
    # same epoch unwritten too: a periodic checkpoint ahead of checkpoint_last would refuse the resume
    # from checkpoint_last that RESUME=1 gives.
    run(data_dir, tmp_path / "run", "--epochs", "1")
    before = {name: (tmp_path / "run" / name).read_bytes() for name in checkpoints(tmp_path / "run")}
    assert sorted(before) == ["checkpoint_0000.pth.tar", "checkpoint_last.pth.tar"]
    save, written = torch.save, []

    def full_at_last(obj, f):
        written.append(os.path.basename(f.name))
        if ".checkpoint_last.pth.tar." in f.name:
            raise OSError(errno.ENOSPC, "No space left on device")
        save(obj, f)

    monkeypatch.setattr(torch, "save", full_at_last)
    last = tmp_path / "run" / "checkpoint_last.pth.tar"
    with pytest.raises(NoSpaceError, match=f"no space left on {last}"):
        run(data_dir, tmp_path / "run", "--epochs", "2", "--checkpoint-every", "1", "--resume", str(last))
    monkeypatch.undo()
    assert [name.split(".")[1] for name in written] == ["checkpoint_0001", "checkpoint_last"]  # both begun
    assert {name: (tmp_path / "run" / name).read_bytes() for name in checkpoints(tmp_path / "run")} == before
    assert not [name for name in os.listdir(tmp_path / "run") if is_temporary(name)]


def test_periodic_checkpoints_follow_checkpoint_every(data_dir, tmp_path, sha256):
    out = tmp_path / "every2"
    run(data_dir, out, "--epochs", "3", "--checkpoint-every", "2")
    assert checkpoints(out) == ["checkpoint_0000.pth.tar", "checkpoint_0002.pth.tar", "checkpoint_last.pth.tar"]
    periodic, last = out / "checkpoint_0002.pth.tar", out / "checkpoint_last.pth.tar"
    assert read_checkpoint(str(periodic))["epoch"] == 3
    assert sha256(periodic) == sha256(last)

    # --rewind to a checkpoint already at --epochs: nothing to do, and nothing moved aside either; without
    # --rewind it is refused as any resume from behind the folder's newest state
    def files():
        return {n: sha256(out / n) for n in os.listdir(out) if not n.startswith(".") and n != "tensorboard"}

    before = files()
    run(data_dir, out, "--epochs", "1", "--resume", str(out / "checkpoint_0000.pth.tar"), "--rewind")
    assert files() == before
    with pytest.raises(RunFolderError, match=r"holds a newer state \(3 epochs, checkpoint_last.pth.tar\)"):
        run(data_dir, out, "--epochs", "1", "--resume", str(out / "checkpoint_0000.pth.tar"))
    assert files() == before


@pytest.mark.slow  # several pretrainings
def test_resume_leaves_one_log_line_per_epoch(data_dir, tmp_path, monkeypatch):
    # Resuming from an earlier periodic checkpoint (now only with --rewind): epochs 1 and 2 are trained
    # again, logged once.
    out = tmp_path / "rewound"
    run(data_dir, out, "--epochs", "3")
    run(data_dir, out, "--epochs", "3", "--resume", str(out / "checkpoint_0000.pth.tar"), "--rewind")
    assert _log_epochs(out) == [0, 1, 2]
    # A log from a run that appended before its checkpoint: epoch 1 twice, a fragment at the end.
    lines = (out / "log.jsonl").read_text().splitlines(keepends=True)
    (out / "log.jsonl").write_text("".join(lines[:2] + lines[1:2] + lines[2:]) + '{"epoch": 3, "lo')
    run(data_dir, out, "--epochs", "3", "--resume", str(out / "checkpoint_0000.pth.tar"), "--rewind")
    assert _log_epochs(out) == [0, 1, 2]
    # A kill after epoch 1's checkpoint but before its log line: the resume restores the line from
    # the checkpoint, and the record of epoch 1 is the one the straight run logged.
    killed = tmp_path / "killed"
    append = engine.append_lines

    def killed_at_epoch_1(path, records):
        if any(r["epoch"] == 1 for r in records):
            raise _Killed
        append(path, records)

    monkeypatch.setattr(engine, "append_lines", killed_at_epoch_1)
    with pytest.raises(_Killed):
        run(data_dir, killed, "--epochs", "3")
    monkeypatch.undo()
    assert _log_epochs(killed) == [0]
    run(data_dir, killed, "--epochs", "3", "--resume", str(killed / "checkpoint_last.pth.tar"))
    assert _log_epochs(killed) == [0, 1, 2]
    straight = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    restored = [json.loads(line) for line in (killed / "log.jsonl").read_text().splitlines()]
    assert restored == straight


def test_a_resume_that_finds_no_log_says_the_earlier_lines_are_lost(data_dir, tmp_path, caplog):
    out = tmp_path / "run"
    run(data_dir, out, "--epochs", "2")
    (out / "log.jsonl").unlink()
    with caplog.at_level("WARNING", logger="engine.pretrain"):
        run(data_dir, out, "--epochs", "3", "--resume", str(out / "checkpoint_last.pth.tar"))
    assert f"{out / 'log.jsonl'} is missing: it starts again with the checkpoint's copy of epoch 1; " in caplog.text
    assert _log_epochs(out) == [1, 2]
    # a checkpoint without its epoch's log line (released, older): the log starts at the next epoch
    last = read_checkpoint(str(out / "checkpoint_last.pth.tar"))
    torch.save({key: value for key, value in last.items() if key != "log"}, out / "no_log.pth.tar")
    (out / "log.jsonl").unlink()
    caplog.clear()
    with caplog.at_level("WARNING", logger="engine.pretrain"):
        run(data_dir, out, "--epochs", "4", "--resume", str(out / "no_log.pth.tar"), "--rewind")
    assert f"{out / 'log.jsonl'} is missing: it starts again at epoch 3; " in caplog.text
    assert _log_epochs(out) == [3]
    # a resume into another folder has no log there to lose: no warning
    caplog.clear()
    with caplog.at_level("WARNING", logger="engine.pretrain"):
        run(data_dir, tmp_path / "elsewhere", "--epochs", "5", "--resume", str(out / "checkpoint_last.pth.tar"))
    assert "is missing" not in caplog.text and _log_epochs(tmp_path / "elsewhere") == [3, 4]
    # after one epoch the checkpoint's copy is the whole log: nothing lost, nothing to say
    one = tmp_path / "one"
    run(data_dir, one, "--epochs", "1")
    (one / "log.jsonl").unlink()
    caplog.clear()
    with caplog.at_level("WARNING", logger="engine.pretrain"):
        run(data_dir, one, "--epochs", "2", "--resume", str(one / "checkpoint_last.pth.tar"))
    assert "is missing" not in caplog.text and _log_epochs(one) == [0, 1]


@pytest.mark.slow  # several pretrainings
def test_resume_refuses_another_run_and_says_when_nothing_is_left(data_dir, tmp_path, processed, caplog, sha256):
    out = tmp_path / "run"
    run(data_dir, out, "--epochs", "1")
    last = str(out / "checkpoint_last.pth.tar")
    for extra, message in (
        (["--topk", "8"], "--topk: 16 then, 8 now"),
        (["--cmd-weight", "2"], "--cmd-weight: 1.0 then, 2.0 now"),
        (["--seed", "7"], "--seed: 42 then, 7 now"),
        (["-b", "4", "--contrast-k", "32"], r"the global batch \(--batch-size x processes\): 8 then, 4 now"),
    ):
        with pytest.raises(
            CheckpointError, match=f"--resume {last} was made by a run with other settings or data: {message}"
        ):
            run(data_dir, out, "--epochs", "2", "--resume", last, *extra)
    # the message says how to go on with the run, not only how to change it (a forgotten --seed is the
    # usual cause: the default 42 against the run's own)
    with pytest.raises(CheckpointError) as refused:
        run(data_dir, out, "--epochs", "2", "--resume", last, "--seed", "7")
    assert str(refused.value) == (
        f"--resume {last} was made by a run with other settings or data: --seed: 42 then, 7 now. To continue "
        "that run, give it what it was given (each 'then' above: its flags, data folder, --pretrained checkpoint; "
        "its folder's settings.json records them); to change any of it, start a new run (another output folder, "
        "no --resume)"
    )
    # other data is told by its fingerprint (the folder's path may change: the same data, moved)
    other_data = processed(tmp_path / "other_data", seed=1)
    with pytest.raises(
        CheckpointError, match=r"the training data \(its fingerprint\): '[0-9a-f]+' then, '[0-9a-f]+' now"
    ):
        run(other_data, out, "--epochs", "2", "--resume", last)
    assert read_checkpoint(last)["epoch"] == 1  # nothing was trained or written
    moved = shutil.copytree(data_dir, tmp_path / "moved")
    # the published tools' folder, converted again by ours, gains a layout.json and with it a class count
    write_folder_record(moved, NTU25, 3, "ntu60", "cross_subject")
    # Settings listed as changeable may change: another learning rate, schedule, frequency, data path.
    lr = read_checkpoint(last)["settings"]["optim"]["lr"]
    with caplog.at_level("WARNING", logger="engine.pretrain"):
        run(str(moved), out, "--epochs", "2", "--resume", last, "--lr", "0.02", "--schedule", "1", "-p", "2")
    assert read_checkpoint(last)["settings"]["optim"]["lr"] == 0.02
    # ... and the learning rate's change is said (a resume that leaves its flags out takes the preset's)
    assert f"--resume {last}: the learning rate changes (--lr: {lr!r} then, 0.02 now" in caplog.text
    assert "--schedule" in caplog.text and "--print-freq" not in caplog.text
    # A checkpoint without 'settings' (the released ones) is not compared.
    released = tmp_path / "released.pth.tar"
    ckpt = read_checkpoint(last)
    torch.save({k: ckpt[k] for k in ("epoch", "state_dict", "optimizer")}, released)
    caplog.clear()
    with caplog.at_level("WARNING", logger="engine.pretrain"):
        run(data_dir, tmp_path / "from_released", "--epochs", "3", "--resume", str(released), "--topk", "8")
    assert read_checkpoint(str(tmp_path / "from_released" / "checkpoint_last.pth.tar"))["epoch"] == 3
    assert "optimizer state" not in caplog.text and "learning rate" not in caplog.text
    # One without an optimizer state (the published script saves one; a pruned copy may not) is told.
    torch.save({k: ckpt[k] for k in ("epoch", "state_dict")}, released)
    with caplog.at_level("WARNING", logger="engine.pretrain"):
        run(data_dir, tmp_path / "from_pruned", "--epochs", "2", "--resume", str(released))
    assert f"--resume {released} holds no optimizer state: SGD's momentum starts again from zero" in caplog.text
    # ... but inside a run's folder the folder's settings.json is compared: the two runs' files would mix
    inside = out / "released.pth.tar"
    shutil.copyfile(released, inside)
    before = {name: sha256(out / name) for name in ("checkpoint_last.pth.tar", "settings.json", "log.jsonl")}
    with pytest.raises(RunFolderError, match=rf"{out} holds another pretraining run than --resume {inside} \(--topk"):
        run(data_dir, out, "--epochs", "3", "--resume", str(inside), "--topk", "8")
    assert {name: sha256(out / name) for name in before} == before
    inside.unlink()
    # An evaluation's checkpoint (ours keep 'best', the published 'best_acc1') is said to be one.
    for key in ("best", "best_acc1"):
        evaluation = tmp_path / f"{key}.pth.tar"
        torch.save({**{k: ckpt[k] for k in ("epoch", "state_dict")}, key: {}}, evaluation)
        with pytest.raises(
            CheckpointError, match=rf"--resume {evaluation} is an evaluation's checkpoint \(it holds '{key}'\)"
        ):
            run(data_dir, tmp_path / "from_evaluation", "--epochs", "3", "--resume", str(evaluation))
    assert not os.path.exists(tmp_path / "from_evaluation")
    # --epochs not beyond the checkpoint's epoch: nothing is written, and the log says so.
    before = {name: sha256(out / name) for name in ("checkpoint_last.pth.tar", "settings.json", "log.jsonl")}
    with caplog.at_level("WARNING", logger="engine.pretrain"):
        assert main(data_dir, out, "--epochs", "2", "--resume", last) == 0
    assert f"nothing to do: checkpoint {last} is at epoch 2, --epochs 2" in caplog.text
    with caplog.at_level("WARNING", logger="engine.pretrain"):
        assert main(data_dir, out, "--steps", "1", "--resume", last) == 0
    assert f"nothing to do: checkpoint {last} is at epoch 2, --steps 1 (1 epochs)" in caplog.text  # the flag given
    assert {name: sha256(out / name) for name in before} == before
    # into a new folder: nothing is put there (no periodic checkpoint without the run's settings)
    assert main(data_dir, tmp_path / "new", "--epochs", "2", "--resume", last, "--checkpoint-every", "1") == 0
    assert not [n for n in os.listdir(tmp_path / "new") if not n.startswith(".")]
    main(data_dir, tmp_path / "new", "--epochs", "1")  # a fresh run may use it


def test_a_killed_writers_temporary_file_is_removed_by_the_resume(data_dir, tmp_path):
    out = tmp_path / "run"
    run(data_dir, out, "--epochs", "1")
    left = out / f".checkpoint_last.pth.tar.{os.getpid() + 100000}-0123abcd.tmp.tar"  # what a kill -9 leaves
    left.write_bytes(b"x" * 4096)
    kept = out / "notes.tmp"
    kept.write_text("mine")
    run(data_dir, out, "--epochs", "2", "--resume", str(out / "checkpoint_last.pth.tar"))
    assert not left.exists() and kept.read_text() == "mine"


def test_full_disk_during_a_checkpoint_says_so_and_keeps_the_last_one(data_dir, tmp_path, monkeypatch, capsys, sha256):
    out = tmp_path / "run"
    run(data_dir, out, "--epochs", "1")
    before = {name: sha256(out / name) for name in ("checkpoint_0000.pth.tar", "checkpoint_last.pth.tar", "log.jsonl")}

    class FullDisk(io.FileIO):
        """A file on a disk that fills up after 1000 bytes."""

        def write(self, data):
            if self.tell() + len(data) > 1000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    def writes(path, mode):  # a write fills the disk; a read (the checkpoint resumed from) is as usual
        return FullDisk(path, "w") if "w" in mode else io.open(path, mode)

    monkeypatch.setattr(checkpoint, "open", writes, raising=False)
    assert main(data_dir, out, "--epochs", "2", "--resume", str(out / "checkpoint_last.pth.tar")) == 1
    err = capsys.readouterr().err
    assert f"pretrain_cmd.py: error: no space left on {out / 'checkpoint_last.pth.tar'}" in err
    assert "enforce fail" not in err and "Traceback" not in err
    # the log keeps epoch 0 only (settings.json is rewritten: the resumed run starts at epoch 1)
    assert {name: sha256(out / name) for name in before} == before
    assert sorted(os.listdir(out)) == [
        ".claim",
        "checkpoint_0000.pth.tar",
        "checkpoint_last.pth.tar",
        "log.jsonl",
        "settings.json",
        "tensorboard",
    ]


class _PublishedBIGRU(torch.nn.Module):
    """The published encoder's module order (moco/GRU.py): the GRU, the head, then the input BatchNorm."""

    def __init__(self, input_size, hidden_size, num_layers, out_dim):
        super().__init__()
        self.encoder = torch.nn.Module()
        self.encoder.gru = torch.nn.GRU(input_size, hidden_size, num_layers, bidirectional=True, batch_first=True)
        self.fc = torch.nn.Linear(2 * hidden_size, out_dim)
        self.input_norm = torch.nn.BatchNorm1d(input_size)


def test_resume_from_an_optimizer_state_written_in_the_published_module_order(data_dir, tmp_path, caplog):
    # An SGD state dict lists momentum buffers by parameter position; the published code's positions follow
    # its module order (encoders q, k, q_motion, ... each GRU, head, BatchNorm), not ours.
    settings, _ = settings_of(data_dir, tmp_path / "run", "--epochs", "2")
    model = engine.build_model(settings)
    published = torch.nn.Module()
    for name in ("encoder_q", "encoder_k", "encoder_q_motion", "encoder_k_motion", "encoder_q_bone", "encoder_k_bone"):
        encoder = _PublishedBIGRU(150, 8, 1, 16)
        encoder.fc = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU(), encoder.fc)  # the MLP head
        setattr(published, name, encoder)
        for param in encoder.parameters():
            param.requires_grad = name.startswith("encoder_q")
    published.load_state_dict({k: v for k, v in model.state_dict().items() if "queue" not in k})
    optimizer = torch.optim.SGD(published.parameters(), 0.01, momentum=0.9, weight_decay=1e-4)
    torch.manual_seed(0)
    for param in published.parameters():
        if param.requires_grad:
            param.grad = torch.randn_like(param)
    optimizer.step()
    buffers = {
        name: optimizer.state[p]["momentum_buffer"] for name, p in published.named_parameters() if p.requires_grad
    }
    path = tmp_path / "checkpoint_0010.pth.tar"
    torch.save({"epoch": 1, "state_dict": model.state_dict(), "optimizer": optimizer.state_dict()}, path)

    ckpt, _ = engine.read_resume(str(path), model, settings)
    ours = engine.build_optimizer(model, settings.optim)
    ours.load_state_dict(ckpt["optimizer"])
    loaded = {name: ours.state[p]["momentum_buffer"] for name, p in model.named_parameters() if p in ours.state}
    assert loaded.keys() == buffers.keys() and all(torch.equal(loaded[k], buffers[k]) for k in buffers)
    run(data_dir, tmp_path / "run", "--epochs", "2", "--resume", str(path))  # trains on (it crashed at step 1)
    assert read_checkpoint(str(tmp_path / "run" / "checkpoint_last.pth.tar"))["epoch"] == 2
    # Our own order loads unchanged; a state that fits neither order is refused before any work.
    assert engine.read_resume(str(tmp_path / "run" / "checkpoint_last.pth.tar"), model, settings)
    bad = optimizer.state_dict()
    bad["state"] = {0: {"momentum_buffer": torch.zeros(3)}}
    torch.save({"epoch": 1, "state_dict": model.state_dict(), "optimizer": bad}, path)
    with pytest.raises(CheckpointError, match="optimizer state's momentum buffers do not fit"):
        engine.read_resume(str(path), model, settings)
    # Without an optimizer state: a warning, from the one process that warns (every rank reads the checkpoint).
    torch.save({"epoch": 1, "state_dict": model.state_dict()}, path)
    for warn in (False, True):
        caplog.clear()
        with caplog.at_level("WARNING", logger="engine.pretrain"):
            engine.read_resume(str(path), model, settings, warn=warn)
        assert ("holds no optimizer state" in caplog.text) == warn
    # The run's own checkpoint resumed with another learning rate: told by the process that warns.
    other_lr, _ = settings_of(data_dir, tmp_path / "run", "--epochs", "2", "--lr", "0.2")
    for warn in (False, True):
        caplog.clear()
        with caplog.at_level("WARNING", logger="engine.pretrain"):
            engine.read_resume(str(tmp_path / "run" / "checkpoint_last.pth.tar"), model, other_lr, warn=warn)
        assert ("the learning rate changes (--lr: " in caplog.text) == warn


def test_ctrl_c_is_one_line_and_leaves_the_folder_free(data_dir, tmp_path, monkeypatch, capsys):
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # in the second epoch, after checkpoint_last of the first
            raise KeyboardInterrupt
        return train_step(*args, **kwargs)

    train_step = engine.train_step
    monkeypatch.setattr(engine, "train_step", interrupted)
    out = tmp_path / "run"
    assert main(data_dir, out, "--epochs", "3") == 130
    err = capsys.readouterr().err
    assert "pretrain_cmd.py: interrupted; the files written so far are whole" in err and "Traceback" not in err
    assert f"this command with --resume {out / 'checkpoint_last.pth.tar'}\n" in err  # how to go on
    assert read_checkpoint(str(out / "checkpoint_last.pth.tar"))["epoch"] == 1
    monkeypatch.setattr(engine, "train_step", train_step)
    assert main(data_dir, out, "--epochs", "3", "--resume", str(out / "checkpoint_last.pth.tar")) == 0  # claim released


def test_ctrl_c_before_the_first_checkpoint_names_no_resume(data_dir, tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "train_step", interrupted)
    assert main(data_dir, tmp_path / "run", "--epochs", "3") == 130
    err = capsys.readouterr().err
    assert "pretrain_cmd.py: interrupted; the files written so far are whole" in err
    assert "--resume" not in err and not (tmp_path / "run" / "checkpoint_last.pth.tar").exists()


def test_the_progress_bar_ends_each_epoch_on_its_means(data_dir, tmp_path, capsys):
    # 2 steps an epoch, --print-freq 10: the bar showed the first step's loss all epoch long
    out = tmp_path / "run"
    assert (
        pretrain_cmd.main(["--data-dir", data_dir, "--checkpoint-path", str(out), *TINY_PRETRAIN, "--epochs", "2"]) == 0
    )
    printed = capsys.readouterr()
    err = printed.err.replace("\r", "\n")
    for line in (out / "log.jsonl").read_text().splitlines():
        epoch = json.loads(line)
        assert f"epoch mean loss={epoch['loss']:.4f}, top1={epoch['top1_joint']:.1f}]\n" in err
    # the last line names the checkpoint and how to probe it
    last = out / "checkpoint_last.pth.tar"
    assert printed.out.splitlines()[-1] == (
        f"pretrained through epoch 1 (counted from 0; the checkpoint records 2 epochs): {last}; a linear probe of it: "
        "python action_classification.py --data-dir "
        f"{os.path.abspath(data_dir)} --finetune-dataset ntu60 --protocol cross_subject --pretrained {last} --view all"
    )


def test_the_printed_probe_command_evaluates_the_dataset_pretrained_on(data_dir, tmp_path, capsys):
    # a published tools' folder (no layout.json) pretrained as NTU-120's: the probe the last line prints must
    # read it as NTU-120's too (120 classes), not as NTU-60's, the default of a folder without a record
    out = tmp_path / "run"
    argv = ["--data-dir", data_dir, "--checkpoint-path", str(out), *TINY_PRETRAIN, "--epochs", "1"]
    assert pretrain_cmd.main([*argv, "--pre-dataset", "ntu120", "--protocol", "cross_setup"]) == 0
    command = shlex.split(capsys.readouterr().out.splitlines()[-1].split("a linear probe of it: ")[1])
    assert command[:2] == ["python", "action_classification.py"]
    parser, args = parse_classification(command[2:])
    train, _ = open_data(parser, args)
    name, _ = choose_preset(parser, args, train)
    assert (name, train.num_class, args.protocol) == ("ntu120", 120, "cross_setup")
