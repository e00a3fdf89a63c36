"""Settings: one preset table, one parse per stage, every rule a usage error (exit 2) before work."""
import os
import pickle

import numpy as np
import pytest

import action_classification
import knn_eval
from options.options_classification import parse_classification, parse_knn
from options.options_pretraining import parse_args
from options.presets import PRESETS, base_protocol, preset


def usage_error(capsys, parse, argv):
    """The stderr of a parse that must stop with a usage error (exit status 2)."""
    with pytest.raises(SystemExit) as stop:
        parse(argv)
    assert stop.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("parse, argv, message", [
    (parse_args, ["-b", "0"], "--batch-size must be at least 1, found 0"),
    (parse_args, ["--lr", "-1"], "--lr must be positive, found -1.0"),
    (parse_args, ["--momentum", "-1"], "--momentum must be in [0, 1), found -1.0"),
    (parse_args, ["--contrast-m", "1.5"], "--contrast-m must be in [0, 1], found 1.5"),
    (parse_args, ["--contrast-t", "-1"], "--contrast-t must be positive, found -1.0"),
    (parse_args, ["--teacher-t", "0"], "--teacher-t must be positive, found 0.0"),
    (parse_args, ["--cmd-weight", "-0.5"], "--cmd-weight must be at least 0, found -0.5"),
    (parse_args, ["--epochs", "0"], "--epochs must be at least 1, found 0"),
    (parse_args, ["--schedule", "10", "-3"], "--schedule must be at least 0, found [10, -3]"),
    (parse_classification, ["--epochs", "0"], "--epochs must be at least 1, found 0"),
    (parse_classification, ["--eval-freq", "0"], "--eval-freq must be at least 1, found 0"),
    (parse_classification, ["-b", "0"], "--batch-size must be at least 1, found 0"),
    (parse_classification, ["--lr", "-1"], "--lr must be positive, found -1.0"),
    (parse_classification, ["--momentum", "1"], "--momentum must be in [0, 1), found 1.0"),
    (parse_classification, ["--wd=-1e-4"], "--weight-decay must be at least 0, found -0.0001"),
    (parse_classification, ["--protocol", "cross_view_semi"], "needs --data-ratio"),
    (parse_knn, ["--knn-neighbours", "0"], "--knn-neighbours must be at least 1, found 0"),
])
def test_flags_out_of_range_are_usage_errors(capsys, parse, argv, message):
    assert message in usage_error(capsys, parse, argv)


def test_global_batch_counts_the_processes(capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    err = usage_error(capsys, parse_args, ["--contrast-k", "96", "-b", "64"])
    assert "--contrast-k 96 is not divisible by the global batch size 128 (--batch-size 64 x 2 processes)" in err
    assert parse_args(["--contrast-k", "256", "-b", "64", "--topk", "8"]).contrast_k == 256
    monkeypatch.setenv("WORLD_SIZE", "two")
    assert "WORLD_SIZE='two'" in usage_error(capsys, parse_args, [])


def test_flags_win_over_presets_and_presets_fill_the_rest():
    args = parse_args(["--pre-dataset", "pku_v2", "--protocol", "cross_view", "--lr", "0.5", "--no-mlp"])
    assert (args.lr, args.mlp, args.epochs, args.schedule, args.contrast_k) == (0.5, False, 1001, [801], 16384)
    _, semi = parse_classification(["--protocol", "cross_subject_semi", "--data-ratio", "0.01", "--epochs", "3"])
    assert (semi.stage, semi.lr, semi.epochs, semi.finetune, semi.eval_freq) == ("semi", 0.01, 3, True, 5)
    _, knn = parse_knn([])
    assert (knn.knn_neighbours, knn.batch_size, knn.train_crop) == (1, 64, "centre")


def test_preset_table_has_no_unused_keys_and_one_semi_mapping():
    used = set(vars(parse_args([]))) | set(vars(parse_classification([])[1])) | set(vars(parse_knn([])[1]))
    for (stage, dataset), settings in PRESETS.items():
        unused = set(settings) - used
        assert not unused, f"preset {stage}/{dataset} holds keys no entry point reads: {sorted(unused)}"
    assert base_protocol("cross_view_semi") == "cross_view" and base_protocol("cross_setup") == "cross_setup"
    assert preset("semi", "ntu60", "cross_view_semi")["protocol"] == "cross_view_semi"


@pytest.fixture
def tiny_folder(tmp_path):
    folder = tmp_path / "xsub"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for part, n in (("train", 3), ("val", 2)):
        np.save(folder / f"{part}_data_joint.npy", rng.normal(size=(n, 3, 300, 25, 2)).astype(np.float32))
        np.save(folder / f"{part}_num_frame.npy", np.full(n, 80, dtype=np.int64))
        with open(folder / f"{part}_label.pkl", "wb") as f:
            pickle.dump(([f"{part}{i}" for i in range(n)], [i % 2 for i in range(n)]), f)
    return str(folder)


def test_knn_neighbours_beyond_the_training_set_is_a_usage_error_before_features(tiny_folder, tmp_path, capsys,
                                                                                  monkeypatch):
    def no_features(*args, **kwargs):
        raise AssertionError("features were extracted")

    monkeypatch.setattr(knn_eval, "extract_features", no_features)
    argv = ["--data-dir", tiny_folder, "--knn-neighbours", "4", "--hidden-size", "8", "--num-layers", "1",
            "-j", "0", "--out", str(tmp_path / "run"), "--results", str(tmp_path / "r.jsonl")]
    err = usage_error(capsys, knn_eval.main, argv)
    assert "--knn-neighbours 4 is larger than the training set" in err and "(3 samples)" in err
    assert not os.path.exists(tmp_path / "r.jsonl") and not os.path.exists(tmp_path / "run")


def test_classification_with_zero_epochs_is_refused_before_any_output(tiny_folder, tmp_path, capsys):
    argv = ["--data-dir", tiny_folder, "--epochs", "0", "--hidden-size", "8", "--num-layers", "1", "-j", "0",
            "--out", str(tmp_path / "run"), "--results", str(tmp_path / "r.jsonl")]
    assert "--epochs must be at least 1, found 0" in usage_error(capsys, action_classification.main, argv)
    assert not os.path.exists(tmp_path / "run") and not os.path.exists(tmp_path / "r.jsonl")
