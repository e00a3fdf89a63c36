"""End to end on a tiny processed folder (as the published tools write it: no layout.json) with a
released-format checkpoint: action_classification.py and knn_eval.py, their results, run folders and
errors. The option resolution of both is in tests/options/test_options.py."""

import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import action_classification
import knn_eval
from dataset.layouts import NTU25
from engine import evaluate
from engine.pretrained import load_pretrained
from engine.results import load_results
from moco.builder import MoCo
from tests.feeder.reference_augmentations import centre_crop
from tools.report import report

HIDDEN = 16

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, processed):
    """A processed folder (8 train, 4 val samples, 3 classes, no layout.json) and a released-format checkpoint."""
    root = tmp_path_factory.mktemp("tiny")
    folder = processed(root / "xsub", n=(8, 4))
    torch.manual_seed(0)
    model = MoCo(
        "graph-based",
        {"en_input_size": 150, "en_hidden_size": HIDDEN, "en_num_layers": 1, "num_class": 128},
        dim=16,
        K=16,
        topk=4,
        mlp=True,
        pretrain=True,
    )
    checkpoint = root / "checkpoint_0450.pth.tar"
    torch.save({"epoch": 451, "state_dict": model.state_dict(), "optimizer": {}}, checkpoint)
    return {"root": root, "folder": folder, "checkpoint": str(checkpoint), "state": model.state_dict()}


def _common(tiny, out, results_file):
    return [
        "--data-dir",
        tiny["folder"],
        "--pretrained",
        tiny["checkpoint"],
        "-j",
        "0",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--results",
        str(results_file),
    ]


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow  # three streams trained and validated through the entry point
def test_linear_all_views_end_to_end(tiny, tmp_path):
    results_file = tmp_path / "results.jsonl"
    out = tmp_path / "linear"
    assert (
        action_classification.main(
            _common(tiny, out, results_file) + ["--view", "all", "--epochs", "2", "--batch-size", "4"]
        )
        == 0
    )
    records = _records(results_file)
    assert [r["view"] for r in records] == ["joint", "motion", "bone", "fusion"]
    for record in records:
        assert record["stage"] == "linear" and record["metric"] == "top1" and record["dataset"] == "ntu60"
        assert record["value"] in (0.0, 25.0, 50.0, 75.0, 100.0)  # 4 validation samples
        assert record["checkpoint"] == tiny["checkpoint"] and record["date"]
        assert record["preset"] == "ntu60" and record["probe"] == "sgd" and record["run"] == str(out)
        settings = record["settings"]
        assert settings["probe"]["lr"] == 0.1 and settings["probe"]["schedule"] == [50, 70]
        assert settings["encoder"] == {"hidden_size": HIDDEN, "num_layers": 1}
    settings = json.loads((out / "settings.json").read_text())
    assert settings == records[0]["settings"]
    assert settings["stage"] == "linear" and settings["probe"]["finetune"] is False
    assert settings["probe"]["eval_freq"] == 5 and settings["probe"]["epochs"] == 2
    assert (settings["view_frames"], settings["min_crop_frames"]) == (64, 64)  # a released checkpoint's views
    assert settings["data"]["num_class"] == 60  # a folder without a record: the published dataset's classes
    # the saved run's encoders are exactly the released query encoders
    saved = torch.load(out / "checkpoint.pth.tar", weights_only=True)["state_dict"]
    for key, value in tiny["state"].items():
        if key.startswith("encoder_q") and ".fc" not in key:
            assert torch.equal(saved[key], value), key
    assert tuple(saved["encoder_q.fc.weight"].shape) == (60, 2 * HIDDEN)
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(out / "tensorboard"))
    table = report(load_results([str(results_file)]))
    assert "| 3s-CMD — paper | 84.1 | 90.9 | 74.7 | 76.1 | 52.6 |" in table
    assert f"| 3s-CMD — ours | {records[3]['value']:.1f} |" in table


def test_a_linear_probe_continues_with_resume(tiny, tmp_path, monkeypatch, caplog):
    # refusing a second run into the folder, and --fresh: tests/engine/test_runfolder.py
    results_file = tmp_path / "results.jsonl"
    out = tmp_path / "linear"
    argv = _common(tiny, out, results_file) + ["--batch-size", "4", "--eval-freq", "1"]
    assert action_classification.main(argv + ["--epochs", "1"]) == 0
    epochs, train_one_epoch = [], evaluate.train_one_epoch

    def spy(*args):  # (model, loader, optimizer, views, device, finetune, epoch, writer)
        epochs.append(args[6])
        return train_one_epoch(*args)

    monkeypatch.setattr(evaluate, "train_one_epoch", spy)
    resume = ["--epochs", "2", "--resume", str(out / "checkpoint.pth.tar"), "--lr", "0.5"]
    with caplog.at_level("WARNING", logger="engine.evaluate"):
        assert action_classification.main(argv + resume) == 0
    assert epochs == [1]  # the resumed run trains the epoch left, not both
    # its new learning rate is allowed, and said (the published preset's is 0.1)
    assert f"--resume {out / 'checkpoint.pth.tar'}: the learning rate changes (--lr: 0.1 then, 0.5 now)" in caplog.text
    saved = torch.load(out / "checkpoint.pth.tar", weights_only=True)
    assert saved["epoch"] == 2 and set(saved["best"]) == {"joint"}
    first, second = _records(results_file)
    assert (first["epoch"], first["settings"]["probe"]["epochs"], second["settings"]["probe"]["epochs"]) == (0, 1, 2)
    assert second["settings"]["run"]["resume"] == str(out / "checkpoint.pth.tar")


def test_semi_supervised_records_its_subset_and_validates_on_all_samples(tiny, tmp_path, processed, monkeypatch):
    results_file = tmp_path / "semi.jsonl"
    out = tmp_path / "semi"
    folder = processed(tmp_path / "xsub", n=(8, 6))
    validated = []
    validate = evaluate.evaluate

    def spy(model, loader, views, device):
        validated.append(len(loader.dataset))
        return validate(model, loader, views, device)

    monkeypatch.setattr(evaluate, "evaluate", spy)
    assert (
        action_classification.main(
            _common(tiny, out, results_file)
            + [
                "--data-dir",
                folder,
                "--protocol",
                "cross_subject_semi",
                "--data-ratio",
                "0.5",
                "--epochs",
                "1",
                "--batch-size",
                "4",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    assert validated == [6]  # the whole validation part, not the labelled subset of the training part
    subset = json.loads((out / "train_subset.json").read_text())
    assert subset["size"] == 4 and subset["seed"] == 3 and len(set(subset["names"])) == 4
    assert all(name.startswith("train") for name in subset["names"])
    (record,) = _records(results_file)
    assert record["stage"] == "semi" and record["data_ratio"] == 0.5 and record["seed"] == 3
    assert round(record["value"] * 6 / 100, 6) in range(7)  # a share of the 6 validation samples
    assert record["settings"]["probe"]["lr"] == 0.01 and record["settings"]["probe"]["finetune"] is True


def test_knn_end_to_end_with_feature_export(tiny, tmp_path):
    results_file = tmp_path / "knn.jsonl"
    npz = tmp_path / "features.npz"
    assert (
        knn_eval.main(
            _common(tiny, tmp_path / "knn", results_file) + ["--save-features", str(npz), "--train-crop", "centre"]
        )
        == 0
    )
    with np.load(npz) as data:
        train_x, train_y, val_x, val_y = (
            data["train_features"],
            data["train_labels"],
            data["val_features"],
            data["val_labels"],
        )
        assert train_x.shape == (8, 2 * HIDDEN) and val_x.shape == (4, 2 * HIDDEN)
        assert list(data["val_names"]) == [f"val{i:03d}" for i in range(4)]
        assert list(data["train_labels"]) == [i % 3 for i in range(8)]
        assert str(data["checkpoint"]) == tiny["checkpoint"] and str(data["view"]) == "joint"
    expected = (
        KNeighborsClassifier(n_neighbors=1, metric="cosine").fit(train_x, train_y).predict(val_x) == val_y
    ).mean() * 100
    (record,) = _records(results_file)
    assert record["stage"] == "knn" and record["view"] == "joint" and record["k"] == 1
    assert record["value"] == pytest.approx(expected)
    settings = json.loads((tmp_path / "knn" / "settings.json").read_text())
    assert settings["knn"]["knn_neighbours"] == 1 and settings["knn"]["save_features"] == str(npz)
    events = EventAccumulator(str(tmp_path / "knn" / "tensorboard"))
    events.Reload()
    assert [e.value for e in events.Scalars("knn/top1_joint")] == [pytest.approx(record["value"])]
    # A name without .npz gets the features (np.savez adds the extension to a path, not to a file)
    plain = tmp_path / "exported" / "features"
    assert knn_eval.main(_common(tiny, tmp_path / "knn2", results_file) + ["--save-features", str(plain)]) == 0
    with np.load(plain) as data:
        assert np.array_equal(data["train_features"], train_x)
    assert os.listdir(plain.parent) == ["features"]


def test_bad_checkpoint_or_folder_stops_with_a_clear_message(tiny, tmp_path, capsys):
    bogus = tmp_path / "bogus.pth.tar"
    bogus.write_text("not a checkpoint")
    argv = [
        "--data-dir",
        tiny["folder"],
        "--pretrained",
        str(bogus),
        "-j",
        "0",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "x"),
        "--results",
        str(tmp_path / "r.jsonl"),
    ]
    # a bad checkpoint is an anticipated error now: exit status 1 (it was a usage error, 2)
    for main, prog in ((action_classification.main, "action_classification.py"), (knn_eval.main, "knn_eval.py")):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"{prog}: error: checkpoint {bogus}") and "Traceback" not in err
    # a checkpoint with a NaN weight is refused at loading, naming it, before any feature is computed
    state = dict(tiny["state"])
    state["encoder_q_bone.encoder.gru.weight_hh_l0"] = state["encoder_q_bone.encoder.gru.weight_hh_l0"].clone()
    state["encoder_q_bone.encoder.gru.weight_hh_l0"][0, 0] = float("nan")
    nan = tmp_path / "nan.pth.tar"
    torch.save({"epoch": 451, "state_dict": state}, nan)
    argv[argv.index(str(bogus))] = str(nan)
    for main, prog in ((action_classification.main, "action_classification.py"), (knn_eval.main, "knn_eval.py")):
        assert main([*argv, "--save-features", str(tmp_path / "f.npz")] if main is knn_eval.main else argv) == 1
        err = capsys.readouterr().err
        assert err == f"{prog}: error: checkpoint {nan} holds NaN or inf in encoder_q_bone.encoder.gru.weight_hh_l0\n"
    assert not (tmp_path / "f.npz").exists()
    # a folder that is not there is a usage error; one without the files is bad data (exit status 1)
    with pytest.raises(SystemExit) as stop:
        knn_eval.main(["--data-dir", str(tmp_path / "missing"), "-j", "0", "--out", str(tmp_path / "y")])
    assert stop.value.code == 2 and "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert knn_eval.main(["--data-dir", str(tmp_path / "empty"), "-j", "0", "--out", str(tmp_path / "y")]) == 1
    assert "missing train_data_joint.npy" in capsys.readouterr().err
    assert not (tmp_path / "r.jsonl").exists() and not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_knn_training_features_come_from_the_centre_crop_by_default(tiny, tmp_path):
    # As the published kNN: both sides from the 0.95 centre crop resized to 64 frames (a released
    # checkpoint's views). The expected features are computed here from the NumPy reference crop and
    # the loaded encoder.
    npz = tmp_path / "features.npz"
    assert knn_eval.main(_common(tiny, tmp_path / "knn", tmp_path / "r.jsonl") + ["--save-features", str(npz)]) == 0
    model, _ = load_pretrained(tiny["checkpoint"], 60, NTU25)
    model.eval()
    folder = tiny["folder"]
    data = np.load(os.path.join(folder, "train_data_joint.npy"))
    frames = np.load(os.path.join(folder, "train_num_frame.npy"))
    clips = np.stack([centre_crop(d, int(f), 0.95, 64) for d, f in zip(data, frames)]).astype(np.float32)
    with torch.no_grad():
        expected = model.features(torch.from_numpy(clips), "joint").numpy()
    with np.load(npz) as saved:
        np.testing.assert_allclose(saved["train_features"], expected, rtol=1e-4, atol=1e-5)


def test_the_published_scripts_command_lines_run_unchanged(tiny, tmp_path, monkeypatch, capsys):
    # The published scripts' own lines (paths aside): the semi-supervised script repeats one command five
    # times without --seed, each drawing its own subset; the transfer script is that script on pku_v2 with
    # all labels; the kNN script passes --lr.
    monkeypatch.chdir(tmp_path)
    semi = ["--lr", "0.01", "--batch-size", "4", "--pretrained", tiny["checkpoint"], "--data-dir", tiny["folder"]]
    semi += ["--protocol", "cross_subject_semi", "--finetune-skeleton-representation", "graph-based", "-j", "0"]
    results = tmp_path / "semi.jsonl"
    for _ in range(2):
        line = semi + ["--finetune-dataset", "ntu60", "--data-ratio", "0.5", "--epochs", "1", "--results", str(results)]
        assert action_classification.main(line) == 0
    first, second = _records(results)
    assert first["stage"] == second["stage"] == "semi" and first["seed"] != second["seed"]
    assert first["finetune"] is True and first["probe"] == "sgd"
    out = capsys.readouterr().out
    assert "no --seed: drew seed" in out and "semi ntu60 cross_subject_semi joint (fine-tuned with SGD): top-1" in out
    folders = sorted(os.listdir(tmp_path / "runs" / "semi"))
    encoder = (
        _encoder(tiny["checkpoint"])  # the checkpoint's folder, file and a tag of its path
    )
    assert folders == sorted(
        f"ntu60_cross_subject_semi_joint_ratio0.5_{encoder}_seed{r['seed']}" for r in (first, second)
    )
    subsets = [json.loads((tmp_path / "runs" / "semi" / f / "train_subset.json").read_text()) for f in folders]
    assert all(len(s["indices"]) == 4 for s in subsets)
    transfer = semi + ["--finetune-dataset", "pku_v2", "--data-ratio", "1.0", "--epochs", "1", "--seed", "3"]
    assert action_classification.main(transfer + ["--results", str(tmp_path / "transfer.jsonl")]) == 0
    assert _records(tmp_path / "transfer.jsonl")[0]["stage"] == "transfer"
    knn = ["--lr", "0.1", "--batch-size", "4", "--knn-neighbours", "1", "--pretrained", tiny["checkpoint"]]
    knn += ["--finetune-dataset", "ntu60", "--protocol", "cross_subject", "--data-dir", tiny["folder"], "-j", "0"]
    assert knn_eval.main(knn + ["--epochs", "5", "--resume", "x", "--results", str(tmp_path / "knn.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "warning: --lr, --epochs, --resume ignored here" in out
    settings = json.loads(
        (tmp_path / "runs" / "knn" / f"ntu60_cross_subject_joint_{encoder}_seed42" / "settings.json").read_text()
    )
    assert "lr" not in json.dumps(settings) and settings["run"]["resume"] == ""  # ignored flags are no settings
    extra = ["--start-epoch", "3", "-p", "10", "--pretrain-skeleton-representation", "seq-based", "--epochs", "1"]
    linear = ["--batch-size", "4", "--pretrained", tiny["checkpoint"], "--data-dir", tiny["folder"], "-j", "0"]
    assert action_classification.main(linear + extra + ["--results", str(tmp_path / "linear.jsonl")]) == 0
    assert "warning: --start-epoch, --print-freq ignored here" in capsys.readouterr().out


def _encoder(path):
    """An encoder's part of a default run folder's name, worked out here: folder-stem-sha1(path)[:6]."""
    path = os.path.abspath(path)
    stem = os.path.basename(path).removesuffix(".pth.tar")
    return f"{os.path.basename(os.path.dirname(path))}-{stem}-{hashlib.sha1(path.encode()).hexdigest()[:6]}"


def test_evaluations_of_several_checkpoints_get_default_folders_of_their_own(tiny, tmp_path, monkeypatch):
    # kNN keeps seed 42: its default run folder named only dataset, protocol, view and seed, so the second
    # checkpoint's evaluation was refused as a resume of the first's; names with dots, and one file name in
    # two folders of one name, are told apart too
    monkeypatch.chdir(tmp_path)
    copies = [
        "ck/cmd.ep4.pth.tar",
        "ck/cmd.ep2.pth.tar",
        "A/seed1/checkpoint_last.pth.tar",
        "B/seed1/checkpoint_last.pth.tar",
    ]
    for copy in copies:
        os.makedirs(os.path.dirname(copy), exist_ok=True)
        shutil.copy(tiny["checkpoint"], copy)
    common = ["--data-dir", tiny["folder"], "-j", "0", "--device", "cpu", "--results", str(tmp_path / "r.jsonl")]
    for checkpoint in (tiny["checkpoint"], *copies):
        assert knn_eval.main(common + ["--pretrained", checkpoint]) == 0
    assert knn_eval.main(common) == 0  # a random encoder
    names = [_encoder(c) for c in (tiny["checkpoint"], *copies)] + ["random"]
    assert sorted(os.listdir(tmp_path / "runs" / "knn")) == sorted(
        f"ntu60_cross_subject_joint_{n}_seed42" for n in names
    )
    assert _encoder("ck/cmd.ep4.pth.tar").startswith("ck-cmd.ep4-")
