"""A processed folder of another skeleton layout (kinect20: 20 joints, 1 body) through pretraining,
kNN and linear evaluation with nothing but --data-dir; checkpoints refuse folders of another layout."""

import json
import os
import re

import pytest

import action_classification
import knn_eval
from dataset.layouts import KINECT20
from engine import pretrain as engine
from engine.checkpoint import CheckpointError, read_checkpoint
from options.options_pretraining import parse_args, resolve
from tests.helpers import TINY_PRETRAIN

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]
TINY = [*TINY_PRETRAIN, "--print-freq", "1"]


def pretrain(*argv):
    return engine.run_pretraining(*resolve(*parse_args(list(argv) + TINY)))


@pytest.fixture(scope="module")
def kinect(tmp_path_factory, processed):
    """A kinect20 folder whose layout.json names a dataset of its own (so: the small-data preset), 4 classes,
    pretrained for one epoch at TINY sizes."""
    root = tmp_path_factory.mktemp("kinect")
    folder = processed(root / "data", n=(16, 6), layout=KINECT20, num_class=4, dataset="tiny_kinect")
    out = root / "pretrain"
    pretrain("--data-dir", folder, "--checkpoint-path", str(out), "--epochs", "1")
    return {"root": root, "folder": folder, "checkpoint": str(out / "checkpoint_0000.pth.tar"), "out": out}


def test_pretraining_follows_the_folder_layout(kinect):
    ckpt = read_checkpoint(kinect["checkpoint"])
    assert ckpt["settings"]["data"]["layout"]["name"] == "kinect20"
    # 20 joints x 3 channels x 1 body = 60 features per frame
    assert tuple(ckpt["state_dict"]["encoder_q_bone.encoder.gru.weight_ih_l0"].shape) == (3 * 8, 60)
    settings = json.loads((kinect["out"] / "settings.json").read_text())
    assert settings["data"]["layout"]["name"] == "kinect20" and settings["data"]["num_class"] == 4
    assert settings["data"]["dataset"] == "tiny_kinect"  # the folder's record, not the --pre-dataset default
    # a dataset without a published preset gets the small-data rules: 15 % of the 20 joints are corrupted
    # (the published presets use the layout's own count, 12 for kinect20)
    assert settings["preset"] == "small" and settings["views"]["corrupted_joints"] == 3
    # --epochs given: the small-data preset's step count does not apply
    assert (settings["optim"]["epochs"], settings["optim"]["steps"]) == (1, None)


def test_evaluations_take_layout_and_classes_from_the_folder(kinect, tmp_path):
    common = ["--data-dir", kinect["folder"], "--pretrained", kinect["checkpoint"], "-j", "0", "--device", "cpu"]
    assert knn_eval.main(common + ["--out", str(tmp_path / "knn"), "--results", str(tmp_path / "knn.jsonl")]) == 0
    # the SGD probe, to see its classifiers (the small-data preset's default is the logistic probe)
    assert (
        action_classification.main(
            common
            + [
                "--view",
                "all",
                "--epochs",
                "2",
                "--batch-size",
                "4",
                "--probe",
                "sgd",
                "--out",
                str(tmp_path / "lin"),
                "--results",
                str(tmp_path / "l.jsonl"),
            ]
        )
        == 0
    )
    records = [json.loads(line) for line in (tmp_path / "l.jsonl").read_text().splitlines()]
    assert [r["view"] for r in records] == ["joint", "motion", "bone", "fusion"]
    assert {r["dataset"] for r in records} == {"tiny_kinect"} and {r["preset"] for r in records} == {"small"}
    (knn,) = [json.loads(line) for line in (tmp_path / "knn.jsonl").read_text().splitlines()]
    assert knn["dataset"] == "tiny_kinect" and 0.0 <= knn["value"] <= 100.0
    classifier = read_checkpoint(str(tmp_path / "lin" / "checkpoint.pth.tar"))
    assert tuple(classifier["state_dict"]["encoder_q.fc.weight"].shape) == (4, 16)  # 4 classes, from the record
    # the evaluation crops have the pretraining views' length, recorded in the checkpoint
    views = read_checkpoint(kinect["checkpoint"])["settings"]["views"]
    settings = json.loads((tmp_path / "lin" / "settings.json").read_text())
    assert (settings["view_frames"], settings["min_crop_frames"]) == (views["view_frames"], views["min_crop_frames"])


def test_a_checkpoint_refuses_a_folder_of_another_layout(kinect, tmp_path, processed, capsys):
    ntu = processed(tmp_path / "ntu")  # no record: the published ntu25
    # an anticipated error now: exit status 1 (it was a usage error, 2)
    assert (
        knn_eval.main(
            [
                "--data-dir",
                ntu,
                "--pretrained",
                kinect["checkpoint"],
                "-j",
                "0",
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "k"),
                "--results",
                str(tmp_path / "r.jsonl"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert err.startswith("knn_eval.py: error: ")
    assert "pretrained on skeletons of layout 'kinect20'" in err
    assert f"but the data folder {ntu} holds layout 'ntu25'" in err  # names the folder as well as the checkpoint
    assert not os.path.exists(tmp_path / "r.jsonl") and not os.path.exists(tmp_path / "k")


def test_resume_on_a_folder_of_another_layout_is_refused(kinect, tmp_path, processed):
    other = processed(tmp_path / "ntu")
    with pytest.raises(
        CheckpointError,
        match=f"layout 'kinect20', the data folder {re.escape(str(other))} holds layout 'ntu25'",
    ):
        pretrain(
            "--data-dir",
            other,
            "--checkpoint-path",
            str(tmp_path / "p"),
            "--epochs",
            "2",
            "--resume",
            kinect["checkpoint"],
        )
    assert not os.path.exists(tmp_path / "p")


def test_random_encoder_baseline_on_a_kinect_folder(kinect, tmp_path):
    assert (
        knn_eval.main(
            [
                "--data-dir",
                kinect["folder"],
                "--hidden-size",
                "8",
                "--num-layers",
                "1",
                "-j",
                "0",
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "r"),
                "--results",
                str(tmp_path / "r.jsonl"),
            ]
        )
        == 0
    )
    settings = json.loads((tmp_path / "r" / "settings.json").read_text())
    data = settings["data"]
    assert (data["layout"]["name"], data["num_class"], settings["encoder"]["hidden_size"]) == ("kinect20", 4, 8)
    # a random encoder sees the views a pretraining on this folder would use (its preset's), not the published 64
    parser, args = parse_args(["--data-dir", kinect["folder"], "--device", "cpu"])
    views = resolve(parser, args)[0].views
    assert settings["run"]["pretrained"] == "" and views.view_frames in (16, 32)
    assert (settings["view_frames"], settings["min_crop_frames"]) == (views.view_frames, views.min_crop_frames)
    (record,) = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert "checkpoint" not in record and 0.0 <= record["value"] <= 100.0


def test_synthetic_kinect_recordings_through_importer_pretraining_and_evaluation(tmp_path):
    # NW-UCLA-format JSON files -> data_gen/ucla_gendata.py -> pretrain_cmd.py and both evaluations,
    # each given the processed folder (the preset follows from its record: the small-data one).
    from data_gen import ucla_gendata
    from data_gen.synthetic import generate_ucla

    raw = tmp_path / "all_sqe"
    generate_ucla(str(raw), classes=4, subjects=3, cameras=3, replications=1, seed=0, max_len=80)
    data = tmp_path / "ucla"
    ucla_gendata.main(["--data-path", str(raw), "--out-folder", str(data), "--workers", "1", "--no-progress"])
    assert json.loads((data / "layout.json").read_text())["layout"]["name"] == "kinect20"
    out = tmp_path / "pretrain"
    pretrain("--data-dir", str(data), "--checkpoint-path", str(out), "--epochs", "2")
    checkpoint = str(out / "checkpoint_last.pth.tar")
    assert read_checkpoint(checkpoint)["settings"]["data"]["layout"]["name"] == "kinect20"
    common = ["--data-dir", str(data), "--pretrained", checkpoint, "-j", "0", "--device", "cpu"]
    assert knn_eval.main(common + ["--out", str(tmp_path / "knn"), "--results", str(tmp_path / "r.jsonl")]) == 0
    # the SGD probe for one epoch: the small-data preset's logistic probe is tested in tests/engine/test_probe.py
    # and takes seconds more here
    assert (
        action_classification.main(
            common
            + [
                "--view",
                "all",
                "--probe",
                "sgd",
                "--epochs",
                "1",
                "--out",
                str(tmp_path / "lin"),
                "--results",
                str(tmp_path / "r.jsonl"),
            ]
        )
        == 0
    )
    records = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert len(records) == 5 and {r["dataset"] for r in records} == {"nw_ucla"}
    assert [r["view"] for r in records[1:]] == ["joint", "motion", "bone", "fusion"]
    assert {r.get("probe") for r in records[1:]} == {"sgd"} and {r["preset"] for r in records} == {"small"}
    assert all(0.0 <= r["value"] <= 100.0 for r in records)


def test_two_dimensional_pose_estimator_keypoints_through_importer_pretraining_and_evaluation(tmp_path):
    # 2-D keypoints of 17 joints (a pose estimator's) in a pyskl pickle, with a layout of the user's own
    # as a JSON file -> data_gen/pyskl_gendata.py -> pretrain_cmd.py -> the logistic probe and kNN.
    import pickle

    import numpy as np

    from data_gen import pyskl_gendata
    from dataset.layouts import Layout

    layout = Layout(
        name="pose17",
        joints=tuple(f"joint {i}" for i in range(17)),
        parents=(0, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
        centre=0,
        z_axis=(11, 5),
        x_axis=(5, 6),
        corrupted_joints=3,
        channels=2,
        bodies=1,
    )
    (tmp_path / "pose17.json").write_text(layout.to_json())
    rng = np.random.default_rng(0)
    annotations, split = [], {"train": [], "val": []}
    for i in range(24):
        frames = int(rng.integers(20, 40))
        keypoint = (500 + 50 * rng.normal(size=(1, frames, 17, 2))).astype(np.float32)  # M x T x V x C
        annotations.append(dict(frame_dir=f"clip{i}", label=i % 3, keypoint=keypoint, total_frames=frames))
        split["train" if i < 18 else "val"].append(f"clip{i}")
    with open(tmp_path / "poses.pkl", "wb") as f:
        pickle.dump({"split": split, "annotations": annotations}, f)
    data = tmp_path / "data"
    pyskl_gendata.main(
        [
            *("--annotations", str(tmp_path / "poses.pkl"), "--layout", str(tmp_path / "pose17.json")),
            *("--train-split", "train", "--val-split", "val", "--dataset", "my_poses"),
            *("--out-folder", str(data), "--workers", "1", "--no-progress"),
        ]
    )
    out = tmp_path / "pretrain"
    pretrain("--data-dir", str(data), "--checkpoint-path", str(out), "--epochs", "2")
    checkpoint = read_checkpoint(str(out / "checkpoint_last.pth.tar"))
    assert checkpoint["settings"]["preset"] == "small"
    assert checkpoint["settings"]["data"]["layout"]["channels"] == 2
    assert checkpoint["state_dict"]["encoder_q.encoder.gru.weight_ih_l0"].shape[1] == 17 * 2  # joints x channels
    common = ["--data-dir", str(data), "--pretrained", str(out / "checkpoint_last.pth.tar"), "-j", "0"]
    common += ["--device", "cpu", "--view", "all", "--results", str(tmp_path / "r.jsonl")]
    assert action_classification.main(common + ["--out", str(tmp_path / "lin")]) == 0
    assert knn_eval.main(common + ["--out", str(tmp_path / "knn")]) == 0
    records = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r["view"] for r in records] == ["joint", "motion", "bone", "concat", "fusion", "all"]
    assert {r.get("probe") for r in records[:5]} == {"logistic"} and {r["dataset"] for r in records} == {"my_poses"}
    assert all(0.0 <= r["value"] <= 100.0 for r in records)
