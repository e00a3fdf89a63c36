"""Shared run-time helpers: atomic checkpoint I/O, RNG capture, settings, presets, faults."""
import errno
import json
import os
import random
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from engine import runtime
from engine.checkpoint import CheckpointError, read_checkpoint, rng_state, save_checkpoint_atomic, set_rng_state
from engine.runtime import NoSpaceError, append_jsonl, atomic_output, save_settings
from options.presets import preset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_rng_state_roundtrip_through_a_checkpoint(tmp_path):
    path = tmp_path / "c.pth.tar"
    save_checkpoint_atomic({"rng": rng_state(), "epoch": 3}, str(path))
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    set_rng_state(read_checkpoint(str(path))["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
    assert [p.name for p in tmp_path.iterdir()] == ["c.pth.tar"]  # no temp file left behind


def test_read_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        read_checkpoint(str(tmp_path / "missing.pth.tar"))
    good = tmp_path / "good.pth.tar"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, good)
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="truncated.pth.tar"):
        read_checkpoint(str(truncated))
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="notes.txt"):
        read_checkpoint(str(text))
    arbitrary = tmp_path / "object.pth.tar"
    torch.save({"obj": object.__new__(argparse_namespace())}, arbitrary)
    with pytest.raises(CheckpointError, match="object.pth.tar"):
        read_checkpoint(str(arbitrary))


def argparse_namespace():
    import argparse

    return argparse.Namespace


def test_settings_and_jsonl(tmp_path, capsys):
    saved = save_settings({"lr": 0.1, "schedule": (50, 70), "device": torch.device("cpu")}, str(tmp_path))
    assert saved == {"lr": 0.1, "schedule": [50, 70], "device": "cpu"}
    assert json.loads((tmp_path / "settings.json").read_text()) == saved
    assert '"lr": 0.1' in capsys.readouterr().out
    append_jsonl(str(tmp_path / "r" / "results.jsonl"), {"a": 1})
    append_jsonl(str(tmp_path / "r" / "results.jsonl"), {"a": 2})
    lines = (tmp_path / "r" / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["a"] for line in lines] == [1, 2]


def test_presets_follow_the_published_table():
    p = preset("pretrain", "ntu60", "cross_subject")
    assert (p["lr"], p["epochs"], p["schedule"], p["contrast_k"], p["topk"], p["mlp"]) == (
        0.01, 451, [351], 16384, 8192, True)
    assert preset("pretrain", "pku_v2", "cross_view")["schedule"] == [801]
    lin = preset("linear", "ntu120", "cross_setup")
    assert (lin["lr"], lin["weight_decay"], lin["schedule"], lin["num_class"]) == (0.1, 0.0, [50, 70], 120)
    assert preset("semi", "ntu60", "cross_view_semi")["lr"] == 0.01
    assert preset("transfer", "pku_v2")["num_class"] == 51
    with pytest.raises(ValueError, match="cross_setup"):
        preset("linear", "ntu60", "cross_setup")


def test_step_and_cosine_learning_rate():
    from engine.runtime import adjust_learning_rate

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    got = [adjust_learning_rate(opt, e, 0.1, [50, 70]) for e in (0, 49, 50, 69, 70, 79)]
    assert got == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001)
    assert adjust_learning_rate(opt, 5, 0.2, cos=True, epochs=10) == pytest.approx(0.1)


def test_topk_correct_by_hand():
    from engine.runtime import topk_correct

    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.1, 0.4], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    target = torch.tensor([1, 2, 0, 2])
    # row 0 top-1 hit; row 1 target 2 is second; row 2 target 0 is last; row 3 target 2 is last
    assert topk_correct(scores, target, (1, 2)) == pytest.approx([25.0, 50.0])


def test_stale_temporary_files_of_killed_writes_are_removed(tmp_path):
    # A writer killed inside its write (as a kill -9 inside torch.save) leaves its temporary file.
    target = tmp_path / "checkpoint_last.pth.tar"
    killed = subprocess.Popen([sys.executable, "-c", "import os, sys\nfrom engine.runtime import atomic_output\n"
                               "tmp = atomic_output(sys.argv[1]).__enter__()\n"
                               "open(tmp, 'wb').write(b'x' * 4096)\nos._exit(9)", str(target)], cwd=ROOT)
    assert killed.wait() == 9
    (left,) = os.listdir(tmp_path)
    assert left.startswith(".checkpoint_last.pth.tar.") and left.endswith(".tmp.tar")
    dead = f".{killed.pid}-"
    assert dead in left
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        kept = [left.replace(dead, f".{sleeper.pid}-"),  # a writer still running on this host
                left.replace(dead, f".{os.getpid()}-"),  # this process
                ".checkpoint_last.pth.tar.123-otherhost-abcdefgh.tmp.tar",  # another host, written just now
                ".checkpoint_last.pth.tar.abcd_123.tmp.tar",  # the earlier mkstemp naming, written just now
                left.replace(".tmp.tar", ".tmp.npz"),  # not our naming: the extension is not the name's
                "checkpoint_last.pth.tar.tmp", ".notes.txt", "results.tmp.tar"]
        old = [".checkpoint_0000.pth.tar.123-otherhost-abcdefgh.tmp.tar", ".settings.json.x1y2z3w4.tmp.json"]
        for name in kept + old:
            (tmp_path / name).write_bytes(b"y")
        (tmp_path / left.replace("last", "0010")).mkdir()  # a folder, even one named like ours, stays
        kept.append(left.replace("last", "0010"))
        two_hours_ago = time.time() - 7200
        for name in old:
            os.utime(tmp_path / name, (two_hours_ago, two_hours_ago))
        save_checkpoint_atomic({"epoch": 1}, str(target))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sorted(os.listdir(tmp_path)) == sorted(kept + ["checkpoint_last.pth.tar"])


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        save_checkpoint_atomic({"epoch": 1}, str(tmp_path / "c.pth.tar"))
        save_settings({"lr": 0.1}, str(tmp_path), announce=False)
        append_jsonl(str(tmp_path / "log.jsonl"), {"epoch": 0})
    finally:
        os.umask(previous)
    for name in ("c.pth.tar", "settings.json", "log.jsonl"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o666 & ~umask, name


def test_full_disk_in_an_atomic_write_keeps_the_earlier_file(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("earlier\n")
    with pytest.raises(NoSpaceError, match=f"no space left on {path}"):
        with atomic_output(str(path)) as tmp, open(tmp, "w") as f:
            f.write("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert os.listdir(tmp_path) == ["settings.json"] and path.read_text() == "earlier\n"


def test_appends_start_on_a_new_line_and_a_full_disk_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "results.jsonl"
    append_jsonl(str(path), {"value": 1})
    before = path.read_bytes()
    write = os.write
    calls = []

    def disk_full_after_20_bytes(fd, data):
        if b'"value": 2' not in data:
            return write(fd, data)
        if calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        calls.append(fd)
        return write(fd, data[:20])

    monkeypatch.setattr(runtime.os, "write", disk_full_after_20_bytes)
    with pytest.raises(NoSpaceError, match=f"no space left on {path}: the record was not appended"):
        append_jsonl(str(path), {"value": 2, "settings": "s" * 100})
    monkeypatch.undo()
    assert calls and path.read_bytes() == before
    with open(path, "ab") as f:  # an append killed mid-line
        f.write(b'{"value": 3, "se')
    append_jsonl(str(path), {"value": 4})
    assert path.read_bytes() == before + b'{"value": 3, "se\n{"value": 4}\n'
