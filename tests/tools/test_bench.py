"""tools.bench (`python -m tools.bench`): the ratios it prints (hand-worked) and a tiny configuration run end to end."""

import re

import pytest
import torch

from tools import bench


def test_report_prints_the_three_ratios(capsys):
    results = {"sequence": ([1.0, 2.0, 4.0], None), "loop": ([1.5, 2.0, 10.0], None)}
    bench.report("title", results, {"sequence": "", "loop": ""})
    out = capsys.readouterr().out
    # medians 2.0 / 2.0 = 1.00; minima 1.5 / 1.0 = 1.50; neighbouring ratios 1.5, 1.0, 2.5 -> median 1.50
    assert "1.00x of the medians, 1.50x of the minima, 1.50x median of neighbouring calls" in out


def test_tiny_configuration_times_both_variants(monkeypatch, capsys, one_thread):
    monkeypatch.setitem(bench.CONFIGS, "tiny", dict(hidden=8, layers=2, batch=4, K=16, topk=8, frames=6, mlp=False))
    bench.bench_config("tiny", torch.device("cpu"), False, steps=2, warmup=0, kinds=("encoder", "inference"))
    out = capsys.readouterr().out
    assert out.count("loop / whole-sequence time") == 2
    assert "one encoder, forward + backward" in out and "one encoder, forward without gradients" in out
    assert "training step" not in out
    # each kind timed both variants: a positive median and minimum per line, in the order printed
    times = re.findall(r"(sequence|loop) +median +([\d.]+) ms +min +([\d.]+) ms", out)
    assert [name for name, *_ in times] == ["sequence", "loop", "sequence", "loop"]
    assert all(0 < float(low) <= float(median) for _, median, low in times)


def test_unknown_kind_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--device", "cpu", "--kinds", "encoder,speed"])
    assert "--kinds encoder,speed: choose from train, encoder, inference" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--device", "foo"], "--device foo: this code runs on cpu, cuda or cuda:N"),
        (["--device", "cpu", "--steps", "0"], "--steps must be at least 1"),  # 0 ran one step
        (["--device", "cpu", "--threads", "-1"], "--threads must be at least 1, found -1"),  # a traceback
        (["--device", "cpu", "--threads", "0"], "--threads must be at least 1, found 0"),  # silently torch's
    ],
)
def test_bad_device_and_steps_are_usage_errors(capsys, flags, message):
    with pytest.raises(SystemExit) as stop:
        bench.main(flags)
    assert stop.value.code == 2 and message in capsys.readouterr().err
