"""Checkpoint files: atomic writes, safe reads with errors naming the file, RNG state, state-dict checks."""

import errno
import io
import os
import pickle
import random
import stat
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from dataset.files import NoSpaceError, file_fingerprint, is_temporary
from engine import checkpoint
from engine.checkpoint import (
    CheckpointError,
    check_fits,
    optimizer_state_for,
    parse_rng_state,
    read_checkpoint,
    recorded_settings,
    rng_state,
    save_checkpoint,
    strip_module_prefix,
)
from engine.runfolder import open_run_folder

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_rng_state_roundtrip_through_a_checkpoint(tmp_path):
    path = tmp_path / "c.pth.tar"
    save_checkpoint({"rng": rng_state(), "epoch": 3}, str(path))
    expected = _draws()
    restore = parse_rng_state(read_checkpoint(str(path), need=("rng",))["rng"], str(path))
    assert _draws() != expected  # parsing restores nothing yet
    restore()
    assert _draws() == expected
    assert [p.name for p in tmp_path.iterdir()] == ["c.pth.tar"]  # no temp file left behind


@pytest.mark.parametrize(
    "spoil",
    [
        lambda s: s.pop("python"),
        lambda s: s.update(python="not a literal ("),
        lambda s: s["numpy"].update(keys=torch.zeros(3, dtype=torch.int64)),
        lambda s: s.update(torch=torch.zeros(3, dtype=torch.uint8)),
    ],
)
def test_a_malformed_rng_entry_is_refused_before_anything_is_restored(tmp_path, spoil):
    state = rng_state()
    spoil(state)
    before = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    with pytest.raises(CheckpointError, match=r"checkpoint c\.pth\.tar: its 'rng' entry is malformed"):
        parse_rng_state(state, "c.pth.tar")
    assert random.getstate() == before[0] and np.array_equal(np.random.get_state()[1], before[1])
    assert torch.equal(torch.get_rng_state(), before[2])


def test_read_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        read_checkpoint(str(tmp_path / "missing.pth.tar"))
    with pytest.raises(CheckpointError, match=rf"checkpoint {tmp_path} is a folder; give a checkpoint file in it \(it"):
        read_checkpoint(str(tmp_path))  # --pretrained given the run folder
    torch.save({}, tmp_path / "checkpoint_0450.pth.tar")
    with pytest.raises(CheckpointError, match=r"is a folder; give a checkpoint file in it \(checkpoint_0450.pth.tar\)"):
        read_checkpoint(str(tmp_path))
    good = tmp_path / "good.pth.tar"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, good)
    assert set(read_checkpoint(str(good))) == {"state_dict"}
    with pytest.raises(CheckpointError, match=r"good\.pth\.tar: no 'epoch' entry; its keys are state_dict"):
        read_checkpoint(str(good), need=("epoch", "state_dict"))
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(CheckpointError, match=r"truncated\.pth\.tar \(300 bytes\) could not be read"):
        read_checkpoint(str(truncated))
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="notes.txt"):
        read_checkpoint(str(text))
    arbitrary = tmp_path / "object.pth.tar"
    torch.save({"obj": object.__new__(_Arbitrary)}, arbitrary)  # loading it would run code: refused
    with pytest.raises(CheckpointError, match="object.pth.tar") as refused:
        read_checkpoint(str(arbitrary))
    # one line, naming the class refused; never torch's advice to load with weights_only=False
    assert "\n" not in str(refused.value) and "_Arbitrary" in str(refused.value)
    assert "weights_only" not in str(refused.value)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"state_dict": {}}, protocol=4))  # pickled without torch.save
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match=r"plain\.pkl \(\d+ bytes\) could not be read"):
            read_checkpoint(str(plain))
    assert not [w for w in warned if "pickle protocol" in str(w.message)]  # the error's line alone
    listed = tmp_path / "list.pth.tar"
    torch.save([1, 2], listed)
    with pytest.raises(CheckpointError, match=r"list\.pth\.tar: expected a dict, found list"):
        read_checkpoint(str(listed))


class _Arbitrary:
    """A class outside the weights-only allowlist."""


def test_state_dict_checks_and_recorded_settings():
    state = {"module.a": torch.zeros(2), "module.b": torch.zeros(3)}
    assert strip_module_prefix(state) == {"a": state["module.a"], "b": state["module.b"]}
    mixed = {"module.a": torch.zeros(2), "b": torch.zeros(3)}
    assert strip_module_prefix(mixed) is mixed  # only a prefix on every key is DDP's
    expected = {"a": torch.zeros(2), "b": torch.zeros(3), "fc": torch.zeros(1)}
    check_fits("p", {"a": torch.ones(2), "b": torch.ones(3)}, expected, may_miss={"fc"})
    with pytest.raises(
        CheckpointError,
        match=r"checkpoint p does not fit the model: missing fc; unexpected c; "
        r"other shapes a \(4,\) \(expected \(2,\)\)",
    ):
        check_fits("p", {"a": torch.ones(4), "b": torch.ones(3), "c": torch.ones(1)}, expected)
    # a weight that is NaN or inf is named (integer buffers such as BatchNorm's batch count are not checked)
    broken = {"a": torch.tensor([1.0, float("nan")]), "b": torch.tensor([float("-inf"), 0, 0]), "n": torch.tensor(7)}
    with pytest.raises(CheckpointError, match=r"^checkpoint p holds NaN or inf in a, b$"):
        check_fits("p", broken, dict(expected, n=torch.tensor(0)), may_miss={"fc"})
    assert recorded_settings({"settings": {"preset": "ntu60"}, "options": {"lr": 1}}) == {"preset": "ntu60"}
    assert recorded_settings({"options": {"lr": 1}}) == {"lr": 1}  # checkpoints of earlier versions
    assert recorded_settings({"epoch": 1, "state_dict": {}}) is None  # released checkpoints
    assert recorded_settings({"run": {"lr": 0.1}}) == {"lr": 0.1}  # an older linear evaluation's


def test_an_optimizer_state_without_momentum_buffers_or_of_two_groups():
    params = list(torch.nn.Linear(2, 3).named_parameters())
    # SGD with --momentum 0 keeps None for each parameter's buffer: loaded as it is
    none = {"state": {0: {"momentum_buffer": None}, 1: {"momentum_buffer": None}}, "param_groups": [{"params": [0, 1]}]}
    assert optimizer_state_for("c.pth.tar", none, params) is none
    two = {"state": {}, "param_groups": [{"params": [0]}, {"params": [1]}]}
    with pytest.raises(CheckpointError, match="c.pth.tar: its 'optimizer' entry is not the state of one SGD"):
        optimizer_state_for("c.pth.tar", two, params)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_checkpoints_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        save_checkpoint({"epoch": 1}, str(tmp_path / "c.pth.tar"))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "c.pth.tar").st_mode) == 0o666 & ~umask


def test_one_object_to_several_checkpoints_renames_them_in_order_once_all_are_whole(tmp_path, monkeypatch):
    first, second = str(tmp_path / "checkpoint_0004.pth.tar"), str(tmp_path / "checkpoint_last.pth.tar")
    renamed = []
    replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (renamed.append(os.path.basename(dst)), replace(src, dst)))
    save_checkpoint({"epoch": 5, "w": torch.arange(3.0)}, first, second)
    monkeypatch.undo()
    assert renamed == ["checkpoint_0004.pth.tar", "checkpoint_last.pth.tar"]
    for path in (first, second):
        assert read_checkpoint(path, need=("epoch",))["w"].tolist() == [0.0, 1.0, 2.0]
    # the second write fails on a full disk: it is named, and neither file changes
    earlier = {path: open(path, "rb").read() for path in (first, second)}
    save = torch.save

    def full_at_second(obj, f):
        if ".checkpoint_last.pth.tar." in f.name:
            raise OSError(errno.ENOSPC, "No space left on device")
        save(obj, f)

    monkeypatch.setattr(torch, "save", full_at_second)
    with pytest.raises(NoSpaceError, match=f"no space left on {second}: "):
        save_checkpoint({"epoch": 6}, first, second)
    monkeypatch.undo()
    assert {path: open(path, "rb").read() for path in (first, second)} == earlier
    assert sorted(os.listdir(tmp_path)) == ["checkpoint_0004.pth.tar", "checkpoint_last.pth.tar"]


def test_a_checkpoint_renamed_over_while_it_is_read_gives_the_fingerprint_of_what_was_loaded(tmp_path, monkeypatch):
    # an evaluation of a running pretraining's checkpoint_last: the file is replaced (renamed over) meanwhile
    path, newer = str(tmp_path / "checkpoint_last.pth.tar"), str(tmp_path / "newer.pth.tar")
    save_checkpoint({"epoch": 1, "w": torch.zeros(5000)}, path)
    save_checkpoint({"epoch": 2, "w": torch.ones(6000)}, newer)  # another size: read from the open file, not the path
    loaded_bytes = open(path, "rb").read()
    load = torch.load

    def load_then_replaced(f, **kwargs):
        obj = load(f, **kwargs)
        os.replace(newer, path)  # the pretraining's next save lands right after the load
        return obj

    monkeypatch.setattr(torch, "load", load_then_replaced)
    obj, identity = read_checkpoint(path, need=("epoch",), fingerprint=True)
    monkeypatch.undo()
    (tmp_path / "loaded.pth.tar").write_bytes(loaded_bytes)
    assert obj["epoch"] == 1 and identity == file_fingerprint(str(tmp_path / "loaded.pth.tar"))
    assert identity != file_fingerprint(path)  # what the path holds now (epoch 2)


def test_full_disk_in_a_checkpoint_keeps_the_earlier_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint_last.pth.tar"
    save_checkpoint({"epoch": 1}, str(path))
    earlier = path.read_bytes()

    class FullDisk(io.FileIO):
        """A file on a disk that fills up after 100 bytes."""

        def write(self, data):
            if self.tell() + len(data) > 100:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    def writes(path, mode):  # a write fills the disk; a read is as usual
        return FullDisk(path, "w") if "w" in mode else io.open(path, mode)

    monkeypatch.setattr(checkpoint, "open", writes, raising=False)
    with pytest.raises(NoSpaceError, match=f"no space left on {path}"):
        save_checkpoint({"epoch": 2, "w": torch.zeros(1000)}, str(path))
    assert os.listdir(tmp_path) == ["checkpoint_last.pth.tar"] and path.read_bytes() == earlier


@pytest.mark.slow  # a Python process that imports torch
def test_a_killed_writers_temporary_file_is_removed_when_the_folder_is_next_claimed(tmp_path):
    # A writer killed inside save_checkpoint (as by a kill -9 inside torch.save) leaves its temporary file.
    target = tmp_path / "checkpoint_last.pth.tar"
    code = (
        "import os, sys, torch\nfrom engine.checkpoint import save_checkpoint\n"
        "def killed(obj, f):\n    f.write(b'x' * 4096)\n    f.flush()\n    os._exit(9)\n"
        "torch.save = killed\nsave_checkpoint({'epoch': 1}, sys.argv[1])\n"
    )
    killed = subprocess.Popen([sys.executable, "-c", code, str(target)], cwd=ROOT)
    assert killed.wait(timeout=120) == 9
    (left,) = os.listdir(tmp_path)
    assert left.startswith(f".checkpoint_last.pth.tar.{killed.pid}-") and left.endswith(".tmp.tar")
    assert is_temporary(left) and (tmp_path / left).stat().st_size == 4096
    kept = ["checkpoint_last.pth.tar.tmp", ".notes.txt", "results.tmp.tar", "settings.json"]
    for name in kept:
        (tmp_path / name).write_bytes(b"y")
    (tmp_path / left.replace("last", "0010")).mkdir()  # a folder, even one named like a temporary file, stays
    kept.append(left.replace("last", "0010"))
    # Writers no longer sweep their folder: a new write leaves the dead file ...
    save_checkpoint({"epoch": 1}, str(tmp_path / "checkpoint_0000.pth.tar"))
    assert left in os.listdir(tmp_path)
    # ... the next run that claims the folder (a --resume, say) removes it.
    claim = open_run_folder(str(tmp_path), "pretraining", {}, (), resume=str(target))
    try:
        assert sorted(os.listdir(tmp_path)) == sorted(kept + [".claim", "checkpoint_0000.pth.tar"])
    finally:
        claim.release()
