"""End to end on a tiny processed folder with a released-format checkpoint: action_classification.py,
knn_eval.py, the results report and the pictures; and the option resolution of both scripts."""
import json
import os
import pickle

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

import action_classification
import knn_eval
from engine import results, visualize
from moco.builder import MoCo
from options.options_classification import (classification_parser, knn_parser, resolve_classification,
                                            resolve_knn)

HIDDEN = 16


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A processed folder (8 train, 4 val samples, 3 classes) and a released-format checkpoint."""
    root = tmp_path_factory.mktemp("tiny")
    folder = root / "xsub"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for part, n in (("train", 8), ("val", 4)):
        labels = [i % 3 for i in range(n)]
        data = rng.normal(size=(n, 3, 300, 25, 2)).astype(np.float32)
        np.save(folder / f"{part}_data_joint.npy", data)
        np.save(folder / f"{part}_num_frame.npy", rng.integers(50, 300, n).astype(np.int64))
        with open(folder / f"{part}_label.pkl", "wb") as f:
            pickle.dump(([f"{part}_{i:02d}" for i in range(n)], labels), f)
    torch.manual_seed(0)
    model = MoCo("graph-based", {"en_input_size": 150, "en_hidden_size": HIDDEN, "en_num_layers": 1,
                                 "num_class": 128}, dim=16, K=16, topk=4, mlp=True, pretrain=True)
    checkpoint = root / "checkpoint_0450.pth.tar"
    torch.save({"epoch": 451, "state_dict": model.state_dict(), "optimizer": {}}, checkpoint)
    return {"root": root, "folder": str(folder), "checkpoint": str(checkpoint), "state": model.state_dict()}


def _common(tiny, out, results_file):
    return ["--data-dir", tiny["folder"], "--pretrained", tiny["checkpoint"], "-j", "0", "--device", "cpu",
            "--out", str(out), "--results", str(results_file)]


def test_linear_all_views_end_to_end(tiny, tmp_path):
    results_file = tmp_path / "results.jsonl"
    out = tmp_path / "linear"
    best = action_classification.main(_common(tiny, out, results_file) + [
        "--view", "all", "--epochs", "2", "--batch-size", "4"])
    assert set(best) == {"joint", "motion", "bone", "fusion"}
    records = [json.loads(line) for line in results_file.read_text().splitlines()]
    assert [r["view"] for r in records] == ["joint", "motion", "bone", "fusion"]
    for record in records:
        assert record["stage"] == "linear" and record["metric"] == "top1" and record["dataset"] == "ntu60"
        assert record["value"] in (0.0, 25.0, 50.0, 75.0, 100.0)  # 4 validation samples
        assert record["checkpoint"] == tiny["checkpoint"] and record["date"]
        assert record["settings"]["lr"] == 0.1 and record["settings"]["schedule"] == [50, 70]
        assert record["settings"]["hidden_size"] == HIDDEN and record["settings"]["num_layers"] == 1
    settings = json.loads((out / "settings.json").read_text())
    assert settings["stage"] == "linear" and settings["finetune"] is False and settings["eval_freq"] == 5
    # the saved run's encoders are exactly the released query encoders
    saved = torch.load(out / "checkpoint.pth.tar", weights_only=True)["state_dict"]
    for key, value in tiny["state"].items():
        if key.startswith("encoder_q") and ".fc" not in key:
            assert torch.equal(saved[key], value), key
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(out))
    table = results.report(results.load_results([str(results_file)]))
    assert "| 3s-CMD — paper | 84.1 | 90.9 | 74.7 | 76.1 | 52.6 |" in table
    assert f"| 3s-CMD — ours | {records[3]['value']:.1f} |" in table


def test_semi_supervised_records_its_subset(tiny, tmp_path):
    results_file = tmp_path / "semi.jsonl"
    out = tmp_path / "semi"
    action_classification.main(_common(tiny, out, results_file) + [
        "--protocol", "cross_subject_semi", "--data-ratio", "0.5", "--epochs", "1", "--batch-size", "4",
        "--seed", "3"])
    subset = json.loads((out / "train_subset.json").read_text())
    assert subset["size"] == 4 and subset["seed"] == 3 and len(set(subset["names"])) == 4
    assert all(name.startswith("train_") for name in subset["names"])
    record = json.loads(results_file.read_text())
    assert record["stage"] == "semi" and record["data_ratio"] == 0.5 and record["seed"] == 3
    assert record["settings"]["lr"] == 0.01 and record["settings"]["finetune"] is True


def test_knn_end_to_end_with_feature_export_and_pictures(tiny, tmp_path):
    results_file = tmp_path / "knn.jsonl"
    npz = tmp_path / "features.npz"
    top1 = knn_eval.main(_common(tiny, tmp_path / "knn", results_file) + [
        "--save-features", str(npz), "--train-crop", "centre"])
    with np.load(npz) as data:
        train_x, train_y, val_x, val_y = (data["train_features"], data["train_labels"], data["val_features"],
                                          data["val_labels"])
        assert train_x.shape == (8, 2 * HIDDEN) and val_x.shape == (4, 2 * HIDDEN)
        assert list(data["val_names"]) == [f"val_{i:02d}" for i in range(4)]
        assert list(data["train_labels"]) == [i % 3 for i in range(8)]
    expected = (KNeighborsClassifier(n_neighbors=1, metric="cosine").fit(train_x, train_y).predict(val_x)
                == val_y).mean() * 100
    assert top1 == pytest.approx(expected)
    record = json.loads(results_file.read_text())
    assert record["stage"] == "knn" and record["view"] == "joint" and record["value"] == pytest.approx(expected)

    pictures = tmp_path / "pictures"
    assert visualize.main(["--features", str(npz), "--out", str(pictures), "--part", "train"]) == 0
    assert (pictures / "tsne_train.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    found = {name for _, _, files in os.walk(pictures / "projector") for name in files}
    assert {"tensors.tsv", "metadata.tsv", "projector_config.pbtxt"} <= found


def test_stage_resolution_and_presets():
    def resolve(*argv):
        return resolve_classification(classification_parser().parse_args(list(argv)))

    linear = resolve("--finetune-dataset", "ntu120", "--protocol", "cross_setup")
    assert (linear.stage, linear.lr, linear.finetune, linear.num_class) == ("linear", 0.1, False, 120)
    semi = resolve("--protocol", "cross_view_semi", "--data-ratio", "0.1", "--lr", "0.02")
    assert (semi.stage, semi.lr, semi.finetune, semi.schedule) == ("semi", 0.02, True, [50, 70])
    transfer = resolve("--finetune-dataset", "pku_v2", "--finetune")
    assert (transfer.stage, transfer.num_class, transfer.data_ratio, transfer.lr) == ("transfer", 51, 1.0, 0.01)
    assert resolve("--finetune-dataset", "pku_v2", "--transfer").stage == "transfer"
    assert resolve("--finetune-dataset", "pku_v2").stage == "linear"
    with pytest.raises(ValueError, match="needs --data-ratio"):
        resolve("--protocol", "cross_subject_semi")
    with pytest.raises(ValueError, match="--transfer"):
        resolve("--transfer")
    knn = resolve_knn(knn_parser().parse_args(["--finetune-dataset", "pku_v2"]))
    assert (knn.knn_neighbours, knn.batch_size, knn.num_class) == (1, 64, 51)


def test_bad_checkpoint_or_folder_stops_with_a_clear_message(tiny, tmp_path, capsys):
    bogus = tmp_path / "bogus.pth.tar"
    bogus.write_text("not a checkpoint")
    argv = ["--data-dir", tiny["folder"], "--pretrained", str(bogus), "-j", "0", "--out", str(tmp_path / "x"),
            "--results", str(tmp_path / "r.jsonl")]
    for main in (action_classification.main, knn_eval.main):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2 and "bogus.pth.tar" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        knn_eval.main(["--data-dir", str(tmp_path / "missing"), "-j", "0", "--out", str(tmp_path / "y")])
    assert "missing train_data_joint.npy" in capsys.readouterr().err
    assert not (tmp_path / "r.jsonl").exists() and not (tmp_path / "x").exists()


def test_knn_training_features_come_from_the_centre_crop_by_default(tiny, tmp_path):
    # As the published kNN: both sides from the 0.95 centre crop resized to 64 frames. The expected
    # features are computed here from the NumPy reference crop and the loaded encoder.
    from engine.pretrained import load_pretrained
    from reference_augmentations import centre_crop

    npz = tmp_path / "features.npz"
    knn_eval.main(_common(tiny, tmp_path / "knn", tmp_path / "r.jsonl") + ["--save-features", str(npz)])
    model, _ = load_pretrained(tiny["checkpoint"], num_class=3)
    model.eval()
    folder = tiny["folder"]
    data = np.load(os.path.join(folder, "train_data_joint.npy"))
    frames = np.load(os.path.join(folder, "train_num_frame.npy"))
    clips = np.stack([centre_crop(d, int(f), 0.95, 64) for d, f in zip(data, frames)]).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(clips), view="joint", knn_eval=True).numpy()
    with np.load(npz) as saved:
        np.testing.assert_allclose(saved["train_features"], expected, rtol=1e-4, atol=1e-5)
