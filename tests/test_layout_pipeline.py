"""A processed folder of another skeleton layout (kinect20: 20 joints, 1 body) through pretraining,
kNN and linear evaluation with nothing but --data-dir; checkpoints refuse folders of another layout."""
import json
import os
import pickle

import numpy as np
import pytest

import action_classification
import knn_eval
from dataset.layouts import KINECT20, write_folder_record
from engine import pretrain as engine
from engine.checkpoint import CheckpointError, read_checkpoint
from options.options_pretraining import parse_args

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = ["--hidden-size", "8", "--num-layers", "1", "--contrast-k", "32", "--topk", "16", "-b", "8", "-j", "0",
        "--device", "cpu", "--contrast-dim", "16", "--print-freq", "1"]


def write_folder(folder, joints, bodies, num_class, record=None, n=(16, 6), seed=0):
    """A processed folder of random skeletons with `joints` x `bodies`, labels i % num_class."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for part, count in zip(("train", "val"), n):
        np.save(os.path.join(folder, f"{part}_data_joint.npy"),
                rng.normal(size=(count, 3, 300, joints, bodies)).astype(np.float32))
        np.save(os.path.join(folder, f"{part}_num_frame.npy"), rng.integers(40, 300, count).astype(np.int64))
        with open(os.path.join(folder, f"{part}_label.pkl"), "wb") as f:
            pickle.dump(([f"{part}{i}" for i in range(count)], [i % num_class for i in range(count)]), f)
    if record is not None:
        write_folder_record(folder, record, num_class, dataset="tiny_kinect")
    return str(folder)


@pytest.fixture(scope="module")
def kinect(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinect")
    folder = write_folder(root / "data", 20, 1, 4, record=KINECT20)
    out = root / "pretrain"
    args = parse_args(["--data-dir", folder, "--checkpoint-path", str(out), "--epochs", "1"] + TINY)
    engine.run_pretraining(args)
    return {"root": root, "folder": folder, "checkpoint": str(out / "checkpoint_0000.pth.tar"), "out": out}


def test_pretraining_follows_the_folder_layout(kinect):
    ckpt = read_checkpoint(kinect["checkpoint"])
    assert ckpt["arch"]["layout"]["name"] == "kinect20"
    assert ckpt["arch"]["args_bi_gru"]["en_input_size"] == 60  # 20 joints x 3 channels x 1 body
    assert tuple(ckpt["state_dict"]["encoder_q_bone.encoder.gru.weight_ih_l0"].shape) == (3 * 8, 60)
    settings = json.loads((kinect["out"] / "settings.json").read_text())
    assert settings["corrupted_joints"] == 12 and settings["layout"] == "kinect20"
    assert settings["dataset_name"] == "tiny_kinect"  # the folder's record, not the --pre-dataset preset


def test_evaluations_take_layout_and_classes_from_the_folder(kinect, tmp_path):
    common = ["--data-dir", kinect["folder"], "--pretrained", kinect["checkpoint"], "-j", "0", "--device", "cpu"]
    top1 = knn_eval.main(common + ["--out", str(tmp_path / "knn"), "--results", str(tmp_path / "knn.jsonl")])
    assert 0.0 <= top1 <= 100.0
    best = action_classification.main(common + ["--view", "all", "--epochs", "2", "--batch-size", "4",
                                                "--out", str(tmp_path / "lin"), "--results", str(tmp_path / "l.jsonl")])
    assert set(best) == {"joint", "motion", "bone", "fusion"}
    records = [json.loads(line) for line in (tmp_path / "l.jsonl").read_text().splitlines()]
    assert {r["dataset"] for r in records} == {"tiny_kinect"}
    assert json.loads((tmp_path / "knn.jsonl").read_text())["dataset"] == "tiny_kinect"
    classifier = read_checkpoint(str(tmp_path / "lin" / "checkpoint.pth.tar"))
    assert tuple(classifier["state_dict"]["encoder_q.fc.weight"].shape) == (4, 16)  # 4 classes, from the record


def test_a_checkpoint_refuses_a_folder_of_another_layout(kinect, tmp_path, capsys):
    ntu = write_folder(tmp_path / "ntu", 25, 2, 3)  # no record: the published ntu25
    with pytest.raises(SystemExit) as stop:
        knn_eval.main(["--data-dir", ntu, "--pretrained", kinect["checkpoint"], "-j", "0",
                       "--out", str(tmp_path / "k"), "--results", str(tmp_path / "r.jsonl")])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert "pretrained on skeletons of layout 'kinect20'" in err and "holds layout 'ntu25'" in err
    assert not os.path.exists(tmp_path / "r.jsonl")


def test_resume_on_a_folder_of_another_layout_is_refused(kinect, tmp_path):
    other = write_folder(tmp_path / "ntu", 25, 2, 3)
    args = parse_args(["--data-dir", other, "--checkpoint-path", str(tmp_path / "p"), "--epochs", "2",
                       "--resume", kinect["checkpoint"]] + TINY)
    with pytest.raises(CheckpointError, match="trained on skeletons of layout 'kinect20', the data folder holds "
                                              "layout 'ntu25'"):
        engine.run_pretraining(args)


def test_random_encoder_baseline_on_a_kinect_folder(kinect, tmp_path):
    top1 = knn_eval.main(["--data-dir", kinect["folder"], "--hidden-size", "8", "--num-layers", "1", "-j", "0",
                          "--out", str(tmp_path / "r"), "--results", str(tmp_path / "r.jsonl")])
    assert 0.0 <= top1 <= 100.0
    settings = json.loads((tmp_path / "r" / "settings.json").read_text())
    assert (settings["layout"], settings["num_class"], settings["hidden_size"]) == ("kinect20", 4, 8)


def test_synthetic_kinect_recordings_through_importer_pretraining_and_evaluation(tmp_path):
    # NW-UCLA-format JSON files -> data_gen/ucla_gendata.py -> pretrain_cmd.py and both evaluations,
    # each given only the processed folder.
    from data_gen import ucla_gendata
    from data_gen.synthetic import generate_ucla

    raw = tmp_path / "all_sqe"
    generate_ucla(str(raw), classes=4, subjects=3, cameras=3, replications=1, seed=0, max_len=80)
    data = tmp_path / "ucla"
    ucla_gendata.main(["--data-path", str(raw), "--out-folder", str(data), "--workers", "1", "--no-progress"])
    assert json.loads((data / "layout.json").read_text())["layout"]["name"] == "kinect20"
    out = tmp_path / "pretrain"
    engine.run_pretraining(parse_args(["--data-dir", str(data), "--checkpoint-path", str(out), "--epochs", "2"]
                                      + TINY))
    checkpoint = str(out / "checkpoint_last.pth.tar")
    assert read_checkpoint(checkpoint)["arch"]["layout"]["name"] == "kinect20"
    common = ["--data-dir", str(data), "--pretrained", checkpoint, "-j", "0", "--device", "cpu"]
    knn_eval.main(common + ["--out", str(tmp_path / "knn"), "--results", str(tmp_path / "r.jsonl")])
    best = action_classification.main(common + ["--view", "all", "--epochs", "1", "--out", str(tmp_path / "lin"),
                                                "--results", str(tmp_path / "r.jsonl")])
    assert set(best) == {"joint", "motion", "bone", "fusion"}
    records = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert len(records) == 5 and {r["dataset"] for r in records} == {"nw_ucla"}
    assert all(0.0 <= r["value"] <= 100.0 for r in records)
