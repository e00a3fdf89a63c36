"""The results file and the markdown report (published numbers beside ours, mean ± std over seeds)."""
import json

import pytest

from engine import results


def _write(path, records):
    for r in records:
        results.append_result(str(path), results.make_record(checkpoint="c.pth.tar", settings={}, **r))


def test_report_layout_and_aggregation(tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    _write(path, [
        dict(stage="linear", dataset="ntu60", protocol="cross_subject", view="joint", metric="top1", value=70.0, seed=1),
        dict(stage="linear", dataset="ntu60", protocol="cross_subject", view="joint", metric="top1", value=78.04, seed=1),
        dict(stage="linear", dataset="ntu120", protocol="cross_setup", view="fusion", metric="top1", value=75.0, seed=1),
        dict(stage="linear", dataset="ntu60", protocol="cross_subject", view="joint", metric="top5", value=99.0, seed=1),
        # semi: 1 % labels, three seeds 60, 62, 64 -> mean 62.0, sample std 2.0; a rerun of seed 3 replaces 70
        dict(stage="semi", dataset="ntu60", protocol="cross_view_semi", view="joint", metric="top1", value=70.0,
             seed=3, data_ratio=0.01),
        *[dict(stage="semi", dataset="ntu60", protocol="cross_view_semi", view="joint", metric="top1", value=v,
               seed=s, data_ratio=0.01) for s, v in ((1, 60.0), (2, 62.0), (3, 64.0))],
        dict(stage="knn", dataset="pku_v2", protocol="cross_subject", view="joint", metric="top1", value=40.0, seed=0, k=1),
        dict(stage="transfer", dataset="pku_v2", protocol="cross_subject", view="joint", metric="top1", value=55.5,
             seed=0, pretrain_dataset="ntu60"),
    ])
    results.append_result(str(path), results.make_record(  # a randomly initialised baseline, same cell
        "knn", "pku_v2", "cross_subject", "joint", "top1", 12.5, None, {}, seed=0, k=1))
    record = json.loads(path.read_text().splitlines()[0])
    assert {"dataset", "protocol", "view", "metric", "value", "checkpoint", "settings", "date"} <= set(record)
    assert results.main(["report", str(path)]) == 0
    table = capsys.readouterr().out
    assert "| CMD (joint) — paper | 79.8 | 86.9 | 70.3 | 71.5 | 43.0 |" in table
    assert "| CMD (joint) — ours | 78.0 |  |  |  |  |" in table  # the latest record of seed 1, top-1 only
    assert "| 3s-CMD — ours |  |  |  | 75.0 |  |" in table
    assert "| CMD (joint) — ours, 1 % labels | 62.0 ± 2.0 (n=3) |" in table
    assert "| NTU-60 x-view |" in table.split("Semi-supervised")[1].splitlines()[2]
    assert "| CMD (joint) — ours |  |  |  |  | 40.0 |" in table
    assert "| CMD (joint) — ours, random encoder |  |  |  |  | 12.5 |" in table
    assert "| CMD (joint) — ours | NTU-60 | 55.5 |" in table


def test_bad_results_file_names_the_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"stage": "knn"}\n')
    with pytest.raises(ValueError, match=r"r\.jsonl, line 1: record lacks dataset"):
        results.load_results([str(path)])
    path.write_text("not json\n")
    with pytest.raises(ValueError, match="line 1: not a JSON record"):
        results.load_results([str(path)])


def test_a_record_cut_short_is_skipped_with_a_warning(tmp_path, caplog, capsys):
    path = tmp_path / "r.jsonl"
    record = dict(stage="linear", dataset="ntu60", protocol="cross_subject", view="joint", metric="top1")
    _write(path, [dict(record, value=70.0, seed=1), dict(record, value=72.0, seed=2)])
    with open(path, "a") as f:  # an append stopped mid-line (a kill, or a full disk)
        f.write('{"checkpoint": "c.pth.tar", "dataset": "ntu')
    with caplog.at_level("WARNING", logger="engine.results"):
        assert [r["value"] for r in results.load_results([str(path)])] == [70.0, 72.0]
    assert f"{path}, line 3: skipped" in caplog.text
    caplog.clear()
    _write(path, [dict(record, value=74.0, seed=3)])  # the next append starts on a line of its own
    assert path.read_text().splitlines()[2] == '{"checkpoint": "c.pth.tar", "dataset": "ntu'
    with caplog.at_level("WARNING", logger="engine.results"):
        assert results.main(["report", str(path)]) == 0
    assert f"{path}, line 3: skipped" in caplog.text
    assert "| CMD (joint) — ours | 72.0 ± 2.0 (n=3) |" in capsys.readouterr().out  # 70, 72, 74
