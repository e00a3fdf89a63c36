"""Shared run-time helpers: atomic checkpoint I/O, RNG capture, settings, presets."""
import json
import random

import numpy as np
import pytest
import torch

from engine.checkpoint import CheckpointError, read_checkpoint, rng_state, save_checkpoint_atomic, set_rng_state
from engine.runtime import append_jsonl, save_settings
from options.presets import preset


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


def test_presets_follow_spec_table():
    p = preset("pretrain", "ntu60", "cross_subject")
    assert (p["lr"], p["epochs"], p["schedule"], p["contrast_k"], p["topk"], p["mlp"]) == (0.01, 451, [351], 16384, 8192, True)
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
