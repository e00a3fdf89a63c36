"""The results report (`python -m tools.report`): the published numbers beside ours, mean ± std over seeds."""

import json

import pytest

from engine.results import append_results, load_results, new_record
from tools.report import main, report


def _write(path, records):
    """Append result records (a 'metric' given replaces the default 'top1')."""
    append_results(str(path), [new_record(checkpoint="c.pth.tar", settings={}, **r) for r in records])


def test_report_layout_and_aggregation(tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    _write(
        path,
        [
            dict(stage="linear", dataset="ntu60", protocol="cross_subject", view="joint", value=70.0, seed=1),
            dict(stage="linear", dataset="ntu60", protocol="cross_subject", view="joint", value=78.04, seed=1),
            dict(stage="linear", dataset="ntu120", protocol="cross_setup", view="fusion", value=75.0, seed=1),
            dict(
                stage="linear",
                dataset="ntu60",
                protocol="cross_subject",
                view="joint",
                metric="top5",
                value=99.0,
                seed=1,
            ),
            # semi: 1 % labels, three seeds 60, 62, 64 -> mean 62.0, sample std 2.0; a rerun of seed 3 replaces 70
            dict(
                stage="semi",
                dataset="ntu60",
                protocol="cross_view_semi",
                view="joint",
                value=70.0,
                seed=3,
                data_ratio=0.01,
            ),
            *[
                dict(
                    stage="semi",
                    dataset="ntu60",
                    protocol="cross_view_semi",
                    view="joint",
                    value=v,
                    seed=s,
                    data_ratio=0.01,
                )
                for s, v in ((1, 60.0), (2, 62.0), (3, 64.0))
            ],
            dict(stage="knn", dataset="pku_v2", protocol="cross_subject", view="joint", value=40.0, seed=0, k=1),
            dict(
                stage="transfer",
                dataset="pku_v2",
                protocol="cross_subject",
                view="joint",
                value=55.5,
                seed=0,
                pretrain_dataset="ntu60",
            ),
        ],
    )
    # a randomly initialised baseline (no checkpoint), same cell; a --pretrain-dataset flag given without a
    # checkpoint names no pretraining
    baseline = new_record("knn", "pku_v2", "cross_subject", "joint", 12.5, settings={}, seed=0, k=1)
    append_results(str(path), [dict(baseline, pretrain_dataset="ntu60")])
    record = json.loads(path.read_text().splitlines()[0])
    assert {"stage", "dataset", "protocol", "view", "metric", "value", "checkpoint", "settings", "date"} <= set(record)
    assert main([str(path)]) == 0
    table = capsys.readouterr().out
    assert "| CMD (joint) — paper | 79.8 | 86.9 | 70.3 | 71.5 | 43.0 |" in table
    assert "| CMD (joint) — ours | 78.0 |  |  |  |  |" in table  # the latest record of seed 1, top-1 only
    assert "| 3s-CMD — ours |  |  |  | 75.0 |  |" in table
    assert "| CMD (joint) — ours, 1 % labels | 62.0 ± 2.0 (n=3) |" in table
    assert "| NTU-60 x-view |" in table.split("Semi-supervised")[1].splitlines()[2]
    assert "| CMD (joint) — ours |  |  |  |  | 40.0 |" in table
    assert "| CMD (joint) — ours, random encoder |  |  |  |  | 12.5 |" in table
    assert "| CMD (joint) — ours | NTU-60 | 55.5 |" in table
    assert report([]) == "no results"


def test_the_logistic_probe_gets_rows_of_its_own(tmp_path):
    record = dict(stage="linear", dataset="nw_ucla", protocol="cross_view", view="fusion", metric="top1")
    text = report(
        [dict(record, value=80.0, checkpoint="a", probe="logistic"), dict(record, value=70.0, checkpoint="a")]
    )
    assert "| 3s-CMD — ours, logistic probe |" in text and "| 3s-CMD — ours |" in text
    assert [line.split("|")[-2].strip() for line in text.splitlines() if "— ours" in line] == ["70.0", "80.0"]


def test_a_probe_on_a_subset_of_the_labels_gets_rows_of_its_own(tmp_path):
    # the same checkpoint and seed probed on all labels, then on --data-ratio 0.1 (stage linear): the
    # later subset record does not replace the full one, and says what it saw
    record = dict(stage="linear", dataset="nw_ucla", protocol="cross_view", view="fusion", metric="top1")
    record.update(checkpoint="a", seed=1)
    text = report(
        [
            dict(record, value=80.0, probe="logistic", data_ratio=1.0),
            dict(record, value=30.0, probe="logistic", data_ratio=0.1),
            dict(record, value=70.0),  # an SGD record written without data_ratio: all labels
        ]
    )
    rows = {line.split("|")[1].strip(): line.split("|")[-2].strip() for line in text.splitlines() if "— ours" in line}
    assert rows == {
        "3s-CMD — ours": "70.0",
        "3s-CMD — ours, logistic probe": "80.0",
        "3s-CMD — ours, logistic probe, 10 % labels": "30.0",
    }


def test_datasets_beyond_the_published_benchmarks_get_columns_of_their_own(tmp_path):
    path = tmp_path / "r.jsonl"
    _write(
        path,
        [
            dict(stage="linear", dataset="nw_ucla", protocol="cross_view", view="joint", value=51.25, seed=0),
            dict(stage="knn", dataset="nw_ucla", protocol="cross_view", view="joint", value=40.0, seed=0, k=3),
        ],
    )
    table = report(load_results([str(path)]))
    header = (
        "| method | NTU-60 x-sub | NTU-60 x-view | NTU-120 x-sub | NTU-120 x-set | PKU-MMD II x-sub | nw_ucla x-view |"
    )
    assert header in table
    assert "| CMD (joint) — ours |  |  |  |  |  | 51.2 |" in table
    assert "| CMD (joint) — ours, k=3 |  |  |  |  |  | 40.0 |" in table


def test_a_record_cut_short_is_skipped_and_a_bad_one_named(tmp_path, caplog, capsys):
    path = tmp_path / "r.jsonl"
    record = dict(stage="linear", dataset="ntu60", protocol="cross_subject", view="joint")
    _write(path, [dict(record, value=70.0, seed=1), dict(record, value=72.0, seed=2)])
    with open(path, "a") as f:  # an append stopped mid-line (a kill, or a full disk)
        f.write('{"checkpoint": "c.pth.tar", "dataset": "ntu')
    _write(path, [dict(record, value=74.0, seed=3)])  # the next append starts on a line of its own
    assert path.read_text().splitlines()[2] == '{"checkpoint": "c.pth.tar", "dataset": "ntu'
    with caplog.at_level("WARNING", logger="engine.results"):
        assert main([str(path)]) == 0
    assert f"{path}, line 3: skipped" in caplog.text
    assert "| CMD (joint) — ours | 72.0 ± 2.0 (n=3) |" in capsys.readouterr().out  # 70, 72, 74
    with open(path, "a") as f:
        f.write(json.dumps(dict(record, metric="top1", value=float("nan"))) + "\n")
    assert main([str(path)]) == 1
    err = capsys.readouterr().err
    assert err == f"error: {path}, line 5: value must be a finite number, found nan\n"
    assert main([str(tmp_path / "missing.jsonl")]) == 1
    assert "missing.jsonl" in capsys.readouterr().err
    binary = tmp_path / "features.pkl"
    binary.write_bytes(b"\x80\x04K\x01.")
    assert main([str(binary)]) == 1
    assert capsys.readouterr().err == f"error: {binary}: not a text file of JSON lines (byte 0 is not UTF-8)\n"


def test_records_of_no_evaluation_say_so():
    baseline = dict(stage="baseline", dataset="d", protocol="", view="coordinates_1nn", metric="top1", value=50.0)
    text = report([baseline, dict(baseline, view="coordinates_logistic")])
    assert text.startswith("no evaluation results among the 2 records (stages: baseline)")
    assert "scripts/real_data_report.py" in text


def _rows(text, marker):
    """{row label: its last cell} of the table rows whose label holds `marker`."""
    cells = [line.strip("|").split("|") for line in text.splitlines() if marker in line]
    return {row[0].strip(): row[-1].strip() for row in cells}


def test_evaluations_set_up_differently_get_rows_of_their_own_and_knn_on_centre_crops_has_no_seeds():
    knn = dict(stage="knn", dataset="d", protocol="cross_subject", view="joint", metric="top1", checkpoint="a")

    def run(value, seed, crop):
        return dict(knn, value=value, seed=seed, settings={"knn": {"train_crop": crop, "batch_size": 64}})

    # centre crops of one checkpoint: seeds 1 and 2 are one run (the latest kept); random crops: two draws
    text = report([run(73.0, 1, "centre"), run(73.6, 2, "centre"), run(68.0, 1, "random"), run(66.0, 3, "random")])
    assert _rows(text, "— ours") == {
        "CMD (joint) — ours, train_crop centre": "73.6",
        "CMD (joint) — ours, train_crop random": "67.0 ± 1.4 (n=2)",
    }
    assert _rows(report([run(73.6, 1, "centre"), run(73.6, 2, "centre")]), "— ours") == {"CMD (joint) — ours": "73.6"}
    random = [dict(run(v, seed, "centre"), checkpoint=None) for v, seed in ((40.0, 1), (44.0, 2))]  # seeds differ
    assert _rows(report(random), "random encoder") == {"CMD (joint) — ours, random encoder": "42.0 ± 2.8 (n=2)"}

    linear = dict(knn, stage="linear", probe="sgd")
    sgd = [
        dict(linear, value=v, seed=1, settings={"probe": {"epochs": e, "lr": 0.1}}) for v, e in ((60.0, 4), (64.0, 6))
    ]
    assert _rows(report(sgd), "— ours") == {
        "CMD (joint) — ours, epochs 4": "60.0",
        "CMD (joint) — ours, epochs 6": "64.0",
    }


def test_setups_split_rows_only_where_one_benchmark_holds_several():
    linear = dict(stage="linear", protocol="cross_subject", view="joint", metric="top1", probe="sgd", checkpoint="a")

    def run(dataset, value, seed, settings):
        return dict(linear, dataset=dataset, value=value, seed=seed, settings=settings)

    nested = {"probe": {"epochs": 80, "lr": 0.1}, "view_frames": 16}
    flat = {"epochs": 80, "lr": 0.1, "view_frames": 16, "data_dir": "x"}  # as older versions recorded it
    records = [run("d", 60.0, 1, nested), run("d", 62.0, 2, flat), run("d", 64.0, 3, {})]  # {}: nothing known
    assert _rows(report(records), "— ours") == {"CMD (joint) — ours": "62.0 ± 2.0 (n=3)"}
    # each data set's own views (the small-data preset's rule): one row, a column each
    other = run("e", 50.0, 1, dict(nested, view_frames=32))
    assert [row for row in report([*records, other]).splitlines() if "— ours" in row] == [
        "| CMD (joint) — ours |  |  |  |  |  | 62.0 ± 2.0 (n=3) | 50.0 |"
    ]
    rows = _rows(report([*records, run("d", 40.0, 1, dict(nested, view_frames=32))]), "— ours")
    assert rows == {
        "CMD (joint) — ours, view_frames 16": "61.0 ± 1.4 (n=2)",
        "CMD (joint) — ours, view_frames 32": "40.0",
        "CMD (joint) — ours": "64.0",  # the record that says nothing of its views: unlabelled
    }


def test_one_data_sets_name_on_two_folders_of_other_content_gets_rows_of_its_own():
    linear = dict(stage="linear", dataset="msr", protocol="cross_subject", view="joint", metric="top1", probe="sgd")

    def run(value, seed, fingerprint, checkpoint="a"):
        data = {"dataset": "msr", "fingerprint": fingerprint, "train_samples": 291}
        return dict(linear, value=value, seed=seed, checkpoint=checkpoint, settings={"data": data})

    # one checkpoint evaluated on the folder it was pretrained on and on a second import (another file list)
    rows = _rows(report([run(70.0, 1, "aa"), run(72.0, 2, "aa"), run(50.0, 1, "bb")]), "— ours")
    assert rows == {"CMD (joint) — ours, data aa": "71.0 ± 1.4 (n=2)", "CMD (joint) — ours, data bb": "50.0"}
    # one folder: nothing to tell apart, so no label
    assert _rows(report([run(70.0, 1, "aa"), run(74.0, 1, "aa", "b")]), "— ours") == {
        "CMD (joint) — ours": "72.0 ± 2.8 (n=2, 2 checkpoints)"
    }


def test_baselines_mixed_with_evaluations_are_said_to_be_left_out():
    baseline = dict(stage="baseline", dataset="d", protocol="", view="coordinates_1nn", metric="top1", value=50.0)
    probe = dict(stage="linear", dataset="d", protocol="", view="fusion", metric="top1", value=70.0, checkpoint="a")
    text = report([baseline, dict(baseline, view="coordinates_logistic"), probe])
    assert "| 3s-CMD — ours |" in text and "50.0" not in text
    said = "(2 coordinate-baseline records ('baseline') left out: scripts/real_data_report.py tables them)"
    assert text.endswith(said)
    assert "left out" not in report([probe])


@pytest.mark.parametrize("argv", [["--help"]])
def test_the_report_command_line(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 0 and "python -m tools.report" in capsys.readouterr().out


def test_a_cell_pooling_several_checkpoints_says_so_and_keeps_each(tmp_path):
    record = dict(stage="knn", dataset="ntu60", protocol="cross_subject", view="joint", metric="top1", k=1)
    text = report(
        [
            dict(record, value=40.0, checkpoint="run/checkpoint_0000.pth.tar", seed=42),
            dict(record, value=60.0, checkpoint="run/checkpoint_last.pth.tar", seed=42),  # same seed, other model
        ]
    )
    assert "| CMD (joint) — ours | 50.0 ± 14.1 (n=2, 2 checkpoints) |" in text
    one = report([dict(record, value=v, checkpoint="c", seed=s) for s, v in ((0, 40.0), (1, 60.0))])
    assert "| CMD (joint) — ours | 50.0 ± 14.1 (n=2) |" in one  # seeds of one checkpoint


@pytest.mark.parametrize(
    "edit, found",
    [
        (dict(k="abc"), "k must be an integer, found 'abc'"),
        (dict(seed=[1, 2]), "seed must be an integer, found [1, 2]"),
        (dict(seed={"a": 1}), "seed must be an integer"),
        (dict(checkpoint=3), "checkpoint must be text, found 3"),
        (dict(stage="semi", data_ratio=None), "a semi-supervised record needs its data_ratio"),
    ],
)
def test_records_of_the_wrong_types_are_named_not_tracebacks(tmp_path, capsys, edit, found):
    path = tmp_path / "r.jsonl"
    record = dict(stage="knn", dataset="ntu60", protocol="cross_subject", view="joint", metric="top1", value=1.0)
    path.write_text(json.dumps({**record, "seed": 0, "k": 1, **edit}) + "\n")
    assert main([str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}, line 1: {found}") and err.count("\n") == 1


def test_another_distillation_weight_or_pretraining_set_gets_rows_of_its_own():
    common = dict(stage="knn", protocol="cross_subject", view="all", metric="top1", k=1, checkpoint="c.pth.tar")
    records = [
        dict(common, dataset="mine", value=80.0, seed=0, pretrain_dataset="mine", pretrain_cmd_weight=1.0),
        dict(common, dataset="mine", value=70.0, seed=0, pretrain_dataset="mine", pretrain_cmd_weight=0.0),
        dict(common, dataset="mine", value=60.0, seed=0, pretrain_dataset="other", pretrain_cmd_weight=1.0),
        dict(common, dataset="mine", value=90.0, seed=1, pretrain_dataset="mine"),  # released: no weight recorded
    ]
    rows = {line.split(" | ")[0]: line for line in report(records).splitlines() if "— ours" in line}
    name = "| CMD (mean of the 3 encoders' features) — ours"
    assert rows[name].endswith("| 85.0 ± 7.1 (n=2) |")  # weight 1 and a released checkpoint: the method
    assert rows[f"{name}, --cmd-weight 0"].endswith("| 70.0 |")
    assert rows[f"{name}, pretrained on other"].endswith("| 60.0 |")


def test_transfer_rows_keep_the_distillation_weights_apart():
    common = dict(stage="transfer", dataset="pku_v2", protocol="cross_subject", view="joint", metric="top1")
    records = [
        dict(common, value=50.0, seed=0, checkpoint="a", pretrain_dataset="ntu60", pretrain_cmd_weight=1.0),
        dict(common, value=30.0, seed=0, checkpoint="b", pretrain_dataset="ntu60", pretrain_cmd_weight=0.0),
    ]
    text = report(records)
    assert "| CMD (joint) — ours | NTU-60 | 50.0 |" in text
    assert "| CMD (joint) — ours, --cmd-weight 0 | NTU-60 | 30.0 |" in text


def test_a_checkpoint_named_through_a_link_and_by_its_real_path_is_one_run(tmp_path):
    # records written before checkpoints were recorded by their real path name one through the link the
    # command was given: a rerun recorded by the real path replaces it rather than pooling "2 checkpoints"
    (tmp_path / "scratch").mkdir()
    (tmp_path / "scratch" / "checkpoint_0450.pth.tar").write_bytes(b"")
    (tmp_path / "checkpoints").symlink_to(tmp_path / "scratch")
    linear = dict(stage="linear", dataset="d", protocol="cross_subject", view="joint", metric="top1", seed=42)
    older = dict(linear, value=80.0, checkpoint=str(tmp_path / "checkpoints" / "checkpoint_0450.pth.tar"))
    rerun = dict(linear, value=82.0, checkpoint=str(tmp_path / "scratch" / "checkpoint_0450.pth.tar"))
    assert _rows(report([older, rerun]), "— ours") == {"CMD (joint) — ours": "82.0"}
    other = dict(linear, value=78.0, checkpoint=str(tmp_path / "scratch" / "checkpoint_0300.pth.tar"))
    assert _rows(report([older, other]), "— ours") == {"CMD (joint) — ours": "79.0 ± 1.4 (n=2, 2 checkpoints)"}


def test_encoders_of_other_sizes_or_pretrained_on_other_data_of_the_name_get_rows_of_their_own():
    linear = dict(stage="linear", dataset="mine", protocol="cross_subject", view="fusion", metric="top1")

    def run(value, checkpoint, hidden=64, learnt="aa", seed=0):
        settings = {
            "data": {"dataset": "mine", "fingerprint": "aa"},
            "encoder": {"hidden_size": hidden, "num_layers": 2},
            "run": {"pretrain_fingerprint": learnt},
        }
        return dict(linear, value=value, seed=seed, checkpoint=checkpoint, pretrain_dataset="mine", settings=settings)

    # two pretraining seeds of one size pool; another size is another method, not a third seed
    rows = _rows(report([run(80.0, "a"), run(84.0, "b"), run(60.0, "c", hidden=8)]), "— ours")
    assert rows == {
        "3s-CMD — ours, hidden_size 64": "82.0 ± 2.8 (n=2, 2 checkpoints)",
        "3s-CMD — ours, hidden_size 8": "60.0",
    }
    # an encoder pretrained on another folder named 'mine' (another training part) is not this folder's
    rows = _rows(report([run(80.0, "a"), run(84.0, "b"), run(30.0, "c", learnt="bbbbbbbbbbbb")]), "— ours")
    assert rows == {
        "3s-CMD — ours": "82.0 ± 2.8 (n=2, 2 checkpoints)",
        "3s-CMD — ours, pretrained on other mine data (bbbbbbbb)": "30.0",
    }
    # records that say nothing of the pretraining data (released checkpoints, older records) stay in the row
    older = dict(run(76.0, "d"), settings={"data": {"dataset": "mine", "fingerprint": "aa"}})
    assert _rows(report([run(80.0, "a"), older]), "— ours") == {"3s-CMD — ours": "78.0 ± 2.8 (n=2, 2 checkpoints)"}


def test_transfer_rows_keep_encoders_of_other_sizes_apart():
    common = dict(stage="transfer", dataset="pku_v2", protocol="cross_subject", view="joint", metric="top1")

    def run(value, checkpoint, hidden):
        settings = {"encoder": {"hidden_size": hidden, "num_layers": 3}}
        return dict(common, value=value, seed=0, checkpoint=checkpoint, pretrain_dataset="ntu60", settings=settings)

    text = report([run(80.0, "a", 1024), run(40.0, "b", 64), run(42.0, "c", 64)])
    assert "| CMD (joint) — ours, hidden_size 1024, num_layers 3 | NTU-60 | 80.0 |" in text
    assert "| CMD (joint) — ours, hidden_size 64, num_layers 3 | NTU-60 | 41.0 ± 1.4 (n=2, 2 checkpoints) |" in text
    assert "| CMD (joint) — ours | NTU-60 | 41.0 ± 1.4 (n=2, 2 checkpoints) |" in report(
        [run(40.0, "b", 64), run(42.0, "c", 64)]
    )


def test_results_on_another_evaluation_part_or_validated_less_often_are_not_seeds_of_one_method():
    knn = dict(stage="knn", dataset="msr", protocol="cross_subject", view="joint", metric="top1", checkpoint="a")

    def on(value, val):
        data = {"dataset": "msr", "fingerprint": "aa"}
        return dict(knn, value=value, seed=0, settings={"data": data, "run": {"val_fingerprint": val}})

    # one checkpoint on all 32 evaluation recordings and on half of them: one replaced the other
    half, whole = "5e0f" * 16, "a1b2" * 16  # fingerprints: 64 hexadecimal digits, named by the first 8
    assert _rows(report([on(75.0, half), on(78.1, whole)]), "— ours") == {
        "CMD (joint) — ours, evaluation data a1b2a1b2": "78.1",
        "CMD (joint) — ours, evaluation data 5e0f5e0f": "75.0",
    }
    sgd = dict(knn, stage="linear", probe="sgd")

    def validated(value, seed, every):
        return dict(sgd, value=value, seed=seed, settings={"probe": {"epochs": 6, "eval_freq": every}})

    # the best of six validations and a single final one: two measurements, not two seeds of one
    assert _rows(report([validated(68.8, 1, 1), validated(75.0, 2, 6)]), "— ours") == {
        "CMD (joint) — ours, eval_freq 1": "68.8",
        "CMD (joint) — ours, eval_freq 6": "75.0",
    }


def test_two_pretrainings_saved_at_one_path_are_two_checkpoints_and_the_latest_record_wins_by_date():
    knn = dict(stage="knn", dataset="msr", protocol="cross_subject", view="joint", metric="top1", seed=0)

    def run(value, weights, date):
        settings = {"run": {"pretrained_fingerprint": weights}}
        return dict(knn, value=value, checkpoint="ck/checkpoint_last.pth.tar", date=date, settings=settings)

    # --fresh moved the first run aside and a second pretraining wrote the same path: two encoders
    first, second = run(40.0, "c358", "2026-12-08T03:00:00+00:00"), run(60.0, "d22d", "2026-12-08T04:00:00+00:00")
    assert _rows(report([first, second]), "— ours") == {"CMD (joint) — ours": "50.0 ± 14.1 (n=2, 2 checkpoints)"}
    # a rerun of one encoder replaces the earlier record by date, whichever file is read last
    again = run(44.0, "c358", "2026-12-08T05:00:00+00:00")
    for records in ([first, again], [again, first]):
        assert _rows(report(records), "— ours") == {"CMD (joint) — ours": "44.0"}
