"""Shared run-time helpers: seeding, the settings file, the learning-rate schedule, top-k accuracy."""

import errno
import json
import os
import random
import stat

import numpy as np
import pytest
import torch

from dataset.files import NoSpaceError
from dataset.layouts import NTU25
from engine.runtime import adjust_learning_rate, make_writer, save_settings, seed_everything, topk_correct
from options.settings import EncoderSettings, describe, to_dict


def test_settings_are_printed_and_saved_as_json(tmp_path, capsys):
    record = {
        "preset": "ntu60",
        "optim": {"lr": 0.1, "schedule": [50, 70]},
        "data": {"layout": NTU25.to_dict()},
        "encoder": to_dict(EncoderSettings(hidden_size=8, num_layers=1)),
    }
    assert save_settings(record, str(tmp_path / "run")) is None
    path = tmp_path / "run" / "settings.json"
    assert json.loads(path.read_text()) == record
    text = path.read_text()
    assert text == json.dumps(record, indent=2, sort_keys=True) + "\n"
    out = capsys.readouterr().out
    assert f"Resolved settings (saved to {path}):" in out
    assert "optim: lr=0.1, schedule=[50, 70]" in out and "data: layout=ntu25" in out  # the layout by its name
    assert "encoder: hidden_size=8, num_layers=1" in out and "preset: ntu60" in out
    assert describe(record) in out
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["settings.json"]  # no temporary file left


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_the_settings_file_follows_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        save_settings({"lr": 0.1}, str(tmp_path))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "settings.json").st_mode) == 0o666 & ~umask


def test_seed_everything_seeds_python_numpy_and_torch():
    seed_everything(5)
    first = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    seed_everything(5)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == first
    seed_everything(2**40 + 7)  # seeds beyond NumPy's 32 bits are reduced modulo 2**32 for NumPy, not refused
    big = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    random.seed(2**40 + 7)
    np.random.seed(7)
    torch.manual_seed(2**40 + 7)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == big
    seed_everything(6)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) != first


def test_step_and_cosine_learning_rate():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    got = [adjust_learning_rate(opt, e, 0.1, [50, 70]) for e in (0, 49, 50, 69, 70, 79)]
    assert got == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001)
    assert adjust_learning_rate(opt, 5, 0.2, cos=True, epochs=10) == pytest.approx(0.1)
    assert adjust_learning_rate(opt, 0, 0.2, cos=True, epochs=10) == pytest.approx(0.2)
    assert adjust_learning_rate(opt, 3, 0.2, (), cos=False) == pytest.approx(0.2)  # no milestones: constant


def test_topk_correct_by_hand():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.1, 0.4], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    target = torch.tensor([1, 2, 0, 2])
    # row 0 top-1 hit; row 1 target 2 is second; row 2 target 0 is last; row 3 target 2 is last
    assert topk_correct(scores, target, (1, 2)) == pytest.approx([25.0, 50.0])
    assert topk_correct(scores, target, (1, 5)) == pytest.approx([25.0, 100.0])  # k beyond the classes: all of them


def test_a_full_disk_met_by_tensorboard_names_its_folder(tmp_path, monkeypatch):
    from torch.utils.tensorboard.writer import FileWriter

    writer = make_writer(str(tmp_path / "tb"))
    writer.add_scalar("x", 1.0, 0)
    writer.flush()
    assert os.listdir(tmp_path / "tb")  # the event file

    def full(self):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FileWriter, "flush", full)
    for method in (writer.flush, writer.close):
        with pytest.raises(NoSpaceError) as info:
            method()
        assert str(info.value) == (
            f"no space left on {tmp_path / 'tb'}: No space left on device; the files written so far are unchanged"
        )


def test_a_disabled_writer_writes_nothing(tmp_path):
    writer = make_writer(str(tmp_path / "tb"), enabled=False)
    writer.add_scalar("x", 1.0, 0)
    writer.flush()
    writer.close()
    assert not (tmp_path / "tb").exists()
    make_writer("").add_scalar("x", 1.0, 0)  # no folder: no writer either
