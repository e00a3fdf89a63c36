"""The results file: the records an evaluation appends, and reading them back with errors naming file and line."""

import dataclasses
import json
import os
import re

import pytest

from dataset.layouts import NTU25
from engine.results import append_results, load_results, make_record, new_record
from options.settings import DataSettings, EncoderSettings, EvalRunSettings, EvalSettings, KnnSettings, to_dict

BASE = dict(stage="linear", dataset="ntu60", protocol="cross_subject", view="joint", metric="top1")


def _knn_settings(pretrained="c.pth.tar", pretrain_dataset="ntu120"):
    return EvalSettings(
        preset="ntu60",
        stage="knn",
        data=DataSettings(
            dataset="ntu60",
            protocol="cross_view",
            data_dir="d",
            layout=NTU25,
            num_class=60,
            train_samples=8,
            median_frames=100,
            fingerprint="f",
        ),
        encoder=EncoderSettings(hidden_size=8, num_layers=1),
        view_frames=64,
        min_crop_frames=64,
        run=EvalRunSettings(
            seed=4,
            device="cpu",
            workers=0,
            checkpoint_path="runs/knn",
            results="r.jsonl",
            resume="",
            fresh=False,
            view="motion",
            pretrained=pretrained,
            pretrain_dataset=pretrain_dataset,
        ),
        knn=KnnSettings(knn_neighbours=1, train_crop="centre", chunk_size=1024, batch_size=64, save_features=None),
    )


def test_an_evaluations_record_names_its_run_and_settings():
    settings = _knn_settings()
    record = make_record(settings, "motion", 61.5, k=1, top5=None)
    assert {k: record[k] for k in ("stage", "dataset", "protocol", "view", "metric", "value")} == dict(
        stage="knn", dataset="ntu60", protocol="cross_view", view="motion", metric="top1", value=61.5
    )
    # paths as absolute ones: one checkpoint has one name, whichever folder the evaluation ran from
    assert (record["checkpoint"], record["preset"], record["seed"], record["pretrain_dataset"]) == (
        os.path.join(os.getcwd(), "c.pth.tar"),
        "ntu60",
        4,
        "ntu120",
    )
    assert record["run"] == os.path.join(os.getcwd(), "runs/knn") and record["k"] == 1
    assert "pretrain_cmd_weight" not in record  # a released checkpoint records none
    twin = dataclasses.replace(settings, run=dataclasses.replace(settings.run, pretrain_cmd_weight=0.0))
    assert make_record(twin, "motion", 61.5)["pretrain_cmd_weight"] == 0.0
    assert "top5" not in record  # None values left out
    assert record["settings"] == to_dict(settings) and record["date"].endswith("+00:00")
    random_encoder = make_record(_knn_settings(pretrained="", pretrain_dataset=None), "joint", 10.0)
    assert "checkpoint" not in random_encoder and "pretrain_dataset" not in random_encoder  # reported apart
    assert json.loads(json.dumps(record)) == record  # plain JSON


def test_a_checkpoint_reached_through_a_link_is_recorded_by_its_real_path(tmp_path, monkeypatch):
    # tools.report counts the runs of a cell by checkpoint: a link and its target are one checkpoint
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint_0099.pth.tar").write_bytes(b"")
    os.symlink("run", tmp_path / "latest")
    via_link = make_record(_knn_settings(pretrained="latest/checkpoint_0099.pth.tar"), "joint", 1.0)
    direct = make_record(_knn_settings(pretrained=str(tmp_path / "run" / "checkpoint_0099.pth.tar")), "joint", 1.0)
    assert via_link["checkpoint"] == direct["checkpoint"] == os.path.realpath(tmp_path / "run/checkpoint_0099.pth.tar")


def test_records_are_appended_and_read_back_in_order(tmp_path):
    path = tmp_path / "results" / "r.jsonl"  # the folder is made
    append_results(
        str(path),
        [
            new_record("linear", "ntu60", "cross_subject", v, 70.0 + i, seed=1)
            for i, v in enumerate(("joint", "motion", "bone", "fusion"))
        ],
    )
    append_results(str(path), [new_record("knn", "ntu60", "cross_subject", "joint", 50.0, k=1)])
    records = load_results([str(path), str(path)])
    assert [r["view"] for r in records] == ["joint", "motion", "bone", "fusion", "joint"] * 2
    assert [r["value"] for r in records[:5]] == [70.0, 71.0, 72.0, 73.0, 50.0]


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"stage": "knn"}', "record lacks dataset, metric, protocol, value, view"),
        ("not json", "not a JSON record"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps(dict(BASE, value=float("nan"))), "value must be a finite number, found nan"),
        (json.dumps(dict(BASE, value=float("inf"))), "value must be a finite number, found inf"),
        (json.dumps(dict(BASE, value="71.2")), "value must be a finite number, found '71.2'"),
        (json.dumps(dict(BASE, value=1.0, pretrain_cmd_weight="abc")), "pretrain_cmd_weight must be a finite number"),
        (json.dumps(dict(BASE, value=True)), "value must be a finite number, found True"),
        (json.dumps(dict(BASE, value=70.0, dataset=60)), "dataset must be text, found [60]"),
        (json.dumps(dict(BASE, value=70.0, stage=None)), "stage must be text, found [None]"),
        (json.dumps(dict(BASE, value=70.0, data_ratio="1%")), "data_ratio must be a finite number, found '1%'"),
        (json.dumps(dict(BASE, value=70.0, seed=True)), "seed must be an integer, found True"),
        (json.dumps(dict(BASE, value=70.0, pretrain_dataset=5)), "pretrain_dataset must be text, found 5"),
    ],
)
def test_a_bad_record_is_an_error_naming_file_and_line(tmp_path, line, message):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(dict(BASE, value=70.0)) + "\n" + line + "\n")
    with pytest.raises(ValueError, match=r"r\.jsonl, line 2: " + re.escape(message)):
        load_results([str(path)])


def test_a_last_line_without_its_newline_is_skipped_whatever_it_begins_with(tmp_path, caplog):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(dict(BASE, value=70.0)) + "\nnot js")  # an append cut short mid-write
    with caplog.at_level("WARNING", logger="engine.results"):
        assert [r["value"] for r in load_results([str(path)])] == [70.0]
    assert f"{path}, line 2: skipped" in caplog.text


def test_a_record_cut_short_is_skipped_with_a_warning(tmp_path, caplog):
    path = tmp_path / "r.jsonl"
    append_results(str(path), [dict(BASE, value=70.0, seed=1), dict(BASE, value=72.0, seed=2)])
    with open(path, "a") as f:  # an append stopped mid-line (a kill, or a full disk)
        f.write('{"checkpoint": "c.pth.tar", "dataset": "ntu')
    with caplog.at_level("WARNING", logger="engine.results"):
        assert [r["value"] for r in load_results([str(path)])] == [70.0, 72.0]
    assert f"{path}, line 3: skipped" in caplog.text
    caplog.clear()
    append_results(str(path), [dict(BASE, value=74.0, seed=3)])  # the next append starts on a line of its own
    assert path.read_text().splitlines()[2] == '{"checkpoint": "c.pth.tar", "dataset": "ntu'
    with caplog.at_level("WARNING", logger="engine.results"):
        assert [r["value"] for r in load_results([str(path)])] == [70.0, 72.0, 74.0]
    assert f"{path}, line 3: skipped" in caplog.text


def test_records_appended_again_are_left_out_only_when_the_file_holds_each(tmp_path):
    run = str(tmp_path / "run")
    records = [dict(BASE, view=v, value=x, epoch=3, seed=1, run=run) for v, x in (("joint", 60.0), ("fusion", 70.25))]
    path = tmp_path / "r.jsonl"
    path.write_text('{"stage": "lin\n[1, 2]\n{"view": ["a"]}\n')  # a fragment, JSON of no record: passed over
    append_results(str(path), records)
    held = path.read_text()
    assert not append_results(str(path), [dict(r, date="later") for r in records], again=True)  # held already
    assert path.read_text() == held and (tmp_path / "run" / "result.jsonl").is_file()
    append_results(str(path), [dict(records[0], value=61.0), records[1]], again=True)  # one of them not held
    assert len(path.read_text().splitlines()) == len(held.splitlines()) + 2
    append_results(str(path), records)  # without `again`, every record is appended (a new run's)
    assert len(path.read_text().splitlines()) == len(held.splitlines()) + 4
    assert append_results(str(path), [dict(r, seed=2) for r in records], again=True)  # another seed's: not held
    fresh = tmp_path / "sub" / "new.jsonl"  # no results file yet (stopped before the first write): appended
    assert append_results(str(fresh), records, again=True)
    assert [json.loads(line)["value"] for line in fresh.read_text().splitlines()] == [60.0, 70.25]
