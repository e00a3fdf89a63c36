"""pyskl / MMAction2 annotation-pickle importer: body selection, layouts, splits, labels, a booby-trapped pickle."""

import json
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from data_gen import pyskl_gendata
from data_gen.normalize import normalize_loop
from data_gen.synthetic import REST_POSE, UCLA_JOINTS
from dataset.layouts import KINECT20, LAYOUTS, NTU25, Layout, get_layout, read_folder_record
from dataset.processed import load_splits
from options import options_classification, options_pretraining
from scripts import coordinate_baseline


def _body(frames, joints, channels, spread, seed):
    """frames x joints x channels coordinates around (0, 0, 3) with the given spread."""
    rng = np.random.default_rng(seed)
    centre = np.array([0.0, 0.0, 3.0])[:channels]
    return (centre + spread * rng.uniform(-0.5, 0.5, size=(frames, joints, channels))).astype(np.float32)


def _annotation(name, label, bodies, **extra):
    keypoint = np.stack(bodies)  # M x T x V x C
    return dict(
        frame_dir=name,
        label=label,
        keypoint=keypoint,
        total_frames=keypoint.shape[1],
        keypoint_score=np.ones(keypoint.shape[:3], np.float32),
        img_shape=(1080, 1920),
        **extra,
    )


def _pickle(path, annotations, split, protocol=4):
    with open(path, "wb") as f:
        pickle.dump({"split": split, "annotations": annotations}, f, protocol=protocol)
    return str(path)


def _run(path, out, layout, *extra):
    pyskl_gendata.main(
        [
            "--annotations",
            path,
            "--layout",
            layout,
            "--train-split",
            "xsub_train",
            "--val-split",
            "xsub_val",
            "--out-folder",
            out,
            "--workers",
            "1",
            "--no-progress",
            *extra,
        ]
    )


def _refused(capsys, path, out, layout, *extra):
    """The importer's stderr for a command line it refuses as a usage error (exit status 2)."""
    with pytest.raises(SystemExit) as stop:
        _run(path, out, layout, *extra)
    assert stop.value.code == 2
    return capsys.readouterr().err


def _expected(bodies, layout, frames=300):
    """Literal expectation: the given bodies in the given order, zero-padded, per-joint-loop normalised."""
    data = np.zeros((1, layout.channels, frames, layout.num_joints, layout.bodies), dtype=np.float32)
    for m, body in enumerate(bodies):
        clip = body[:frames].transpose(2, 0, 1)  # C x T x V
        data[0, :, : clip.shape[1], :, m] = clip
    return normalize_loop(data, layout)[0]


def _ntu_set():
    """Three samples in ntu25: one with 3 bodies of known energies, one with 1 body, one of 310 frames."""
    quiet, busy, middle = (_body(6, 25, 3, s, seed) for s, seed in ((0.05, 1), (1.0, 2), (0.4, 3)))
    busy[4] = 0  # an empty frame does not count in the energy
    single = _body(5, 25, 3, 0.5, 4)
    long = _body(310, 25, 3, 0.3, 5)
    annotations = [
        _annotation("S001C001P001R001A001", 0, [quiet, busy, middle]),
        _annotation("S001C002P003R001A005", 2, [single]),
        _annotation("S002C001P002R001A003", np.int64(1), [long, long * 0]),
        _annotation("unused", 1, [single]),
    ]
    split = {"xsub_train": ["S002C001P002R001A003", "S001C001P001R001A001"], "xsub_val": ["S001C002P003R001A005"]}
    expected = {
        "S001C001P001R001A001": [busy, middle],
        "S001C002P003R001A005": [single],
        "S002C001P002R001A003": [long],
    }
    return annotations, split, expected


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_bodies_by_energy_split_order_labels_and_record(tmp_path, protocol):
    annotations, split, expected = _ntu_set()
    path = _pickle(tmp_path / "ntu60_3d.pkl", annotations, split, protocol)
    out = str(tmp_path / "out")
    _run(path, out, "ntu25", "--missing-joints", "zero")  # zeros as coordinates: the published treatment
    train, val = load_splits(out)
    assert train.names == ["S002C001P002R001A003", "S001C001P001R001A001"] and val.names == ["S001C002P003R001A005"]
    assert train.labels.tolist() == [1, 0] and val.labels.tolist() == [2]
    assert train.num_frame.tolist() == [310, 6] and val.num_frame.tolist() == [5]
    assert read_folder_record(out) == (NTU25, 3, "ntu60_3d", None)  # largest label + 1, the pickle's stem
    for split_ in (train, val):
        for i, name in enumerate(split_.names):
            np.testing.assert_allclose(split_.data[i], _expected(expected[name], NTU25), rtol=0, atol=2e-6)
    settings = json.load(open(os.path.join(out, "settings.json")))
    assert settings["unused_annotations"] == 1 and settings["counts"] == {"train": 2, "val": 1}


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_splits_written_as_numpy_arrays_of_names_read_as_lists(tmp_path, protocol):
    annotations, split, _ = _ntu_set()
    arrays = {name: np.array(members) for name, members in split.items()}  # dtype <U20, as np.array(names) gives
    out = str(tmp_path / "out")
    _run(_pickle(tmp_path / "a.pkl", annotations, arrays, protocol), out, "ntu25", "--missing-joints", "zero")
    train, val = load_splits(out)
    assert train.names == split["xsub_train"] and val.names == split["xsub_val"]
    assert all(type(name) is str for name in train.names + val.names)


TRIANGLE_2D = dict(name="tri2d", joints=["root", "mid", "tip"], parents=[0, 0, 1], centre=0, corrupted_joints=1)


def _gappy_sample():
    """An actor and a bystander of 5 frames in TRIANGLE_2D (x, y pixels; 0: not found): nobody in frames 0
    and 4, the actor's centre missing in frame 2, its mid joint NaN in frame 3, its tip never found; the
    bystander still, its tip (cut off by the image edge) never found."""
    actor = np.zeros((5, 3, 2))
    actor[1, :2] = [(10, 10), (10, 20)]
    actor[2, 1] = (14, 22)
    actor[3, 0], actor[3, 1] = (18, 14), (np.nan, np.nan)
    bystander = np.zeros((5, 3, 2))
    bystander[1:4, :2] = [(100, 100), (100, 105)]
    return actor, bystander


def test_paths_under_the_home_folder_may_be_given_with_a_tilde(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "tri2d.json").write_text(json.dumps(dict(TRIANGLE_2D, channels=2, bodies=1)))
    actor, _ = _gappy_sample()
    annotations = [dict(frame_dir=name, label=i, keypoint=np.stack([actor])) for i, name in enumerate("ab")]
    _pickle(tmp_path / "mine.pkl", annotations, {"xsub_train": ["a"], "xsub_val": ["b"]})
    _run("~/mine.pkl", "~/out", "~/tri2d.json")  # as bash passes --flag=~/x, unexpanded
    assert [len(part) for part in load_splits(str(tmp_path / "out"))] == [1, 1]


def test_missing_joints_are_filled_and_empty_ends_cut(tmp_path):
    layout = tmp_path / "tri2d.json"
    layout.write_text(json.dumps(dict(TRIANGLE_2D, channels=2, bodies=1)))
    actor, bystander = _gappy_sample()
    annotations = [dict(frame_dir="a", label=0, keypoint=np.stack([bystander, actor]))]  # the actor second
    annotations.append(dict(frame_dir="b", label=1, keypoint=np.stack([actor])))
    path = _pickle(tmp_path / "mine.pkl", annotations, {"xsub_train": ["a"], "xsub_val": ["b"]})
    out = str(tmp_path / "out")
    _run(path, out, str(layout))
    train, val = load_splits(out)
    # Worked by hand: frames 1-3 kept; the centre of frame 2 halfway between (10, 10) and (18, 14); the mid
    # joint of frame 3 held at its last position (14, 22); the tip on the mid joint (a zero bone)
    filled = np.array(
        [
            [(10, 10), (10, 20), (10, 20)],
            [(14, 12), (14, 22), (14, 22)],
            [(18, 14), (14, 22), (14, 22)],
        ],
        dtype=np.float32,
    )
    tri = get_layout(dict(TRIANGLE_2D, channels=2, bodies=1))
    assert train.num_frame.tolist() == val.num_frame.tolist() == [3]
    for part in (train, val):  # the actor is kept over the bystander: its present joints move more
        np.testing.assert_allclose(part.data[0], _expected([filled], tri), rtol=0, atol=1e-5)
    assert json.load(open(os.path.join(out, "settings.json")))["missing_joints"] == "fill"

    # the published treatment instead: the bystander's zeros make it the more energetic body, NaN is bad
    with pytest.raises(SystemExit, match=r"sample 'a': \"keypoint\": expected values that are finite"):
        _run(path, str(tmp_path / "zero"), str(layout), "--missing-joints", "zero")


def test_a_low_score_makes_a_joint_missing(tmp_path, capsys):
    layout = tmp_path / "tri2d.json"
    layout.write_text(json.dumps(dict(TRIANGLE_2D, channels=2, bodies=1)))
    body = np.array([[(10, 10), (10, 20), (10, 30)], [(12, 10), (12, 20), (50, 50)], [(14, 10), (14, 20), (14, 30)]])
    scores = np.ones((1, 3, 3))
    scores[0, 1, 2] = 0.1  # the tip of frame 1, a wild guess
    annotations = [dict(frame_dir=n, label=0, keypoint=body[None], keypoint_score=scores) for n in ("a", "b")]
    path = _pickle(tmp_path / "mine.pkl", annotations, {"xsub_train": ["a"], "xsub_val": ["b"]})
    _run(path, str(tmp_path / "out"), str(layout), "--min-score", "0.3")
    tri = get_layout(dict(TRIANGLE_2D, channels=2, bodies=1))
    filled = body.astype(np.float32).copy()
    filled[1, 2] = (12, 30)  # halfway between (10, 30) and (14, 30)
    np.testing.assert_allclose(load_splits(str(tmp_path / "out"))[0].data[0], _expected([filled], tri), atol=1e-5)
    err = _refused(capsys, path, str(tmp_path / "zero"), str(layout), "--min-score", "0.3", "--missing-joints", "zero")
    assert "--min-score goes with --missing-joints fill (zero keeps the published converters' treatment)" in err
    err = _refused(capsys, path, str(tmp_path / "zero"), str(layout), "--track", "--missing-joints", "zero")
    assert "--track goes with --missing-joints fill" in err
    annotations[1]["keypoint_score"] = scores[:, :2]
    path = _pickle(tmp_path / "short.pkl", annotations, {"xsub_train": ["a"], "xsub_val": ["b"]})
    with pytest.raises(SystemExit, match=r"sample 'b': --min-score needs a numeric \"keypoint_score\" of shape"):
        _run(path, str(tmp_path / "short"), str(layout), "--min-score", "0.3")
    for bad in ("1.5", "-0.1", "nan"):  # every joint, or none, would be missing
        assert "--min-score must be a score in [0, 1]" in _refused(
            capsys, path, str(tmp_path / "x"), str(layout), "--min-score", bad
        )
    assert not os.path.exists(tmp_path / "x")


def test_people_are_counted_by_their_joints_not_the_array_slots(tmp_path, capsys):
    layout = tmp_path / "tri2d.json"
    layout.write_text(json.dumps(dict(TRIANGLE_2D, channels=2, bodies=1)))
    body = np.array([[(10, 10), (10, 20), (10, 30)], [(12, 10), (12, 20), (12, 30)]], dtype=np.float32)  # T x V x C
    nobody = np.zeros_like(body)  # a slot the estimator left empty
    someone = np.full_like(body, np.nan)
    someone[1, 0] = (40, 40)  # found in one frame only: a person
    keypoints = {"a": [body, nobody], "b": [nobody, body, np.full_like(body, np.nan)], "c": [body, someone]}
    annotations = [dict(frame_dir=n, label=0, keypoint=np.stack(k)) for n, k in keypoints.items()]
    path = _pickle(tmp_path / "mine.pkl", annotations, {"xsub_train": ["a", "b"], "xsub_val": ["c"]})
    _run(path, str(tmp_path / "out"), str(layout))
    assert "warning: 1 recording(s) hold more people than the layout's 1 (the first: c, 2)" in capsys.readouterr().out
    assert json.load(open(tmp_path / "out" / "settings.json"))["more_people_than_layout_bodies"] == 1


def test_a_pickle_named_as_a_published_dataset_needs_dataset(tmp_path, capsys):
    annotations, split, _ = _ntu_set()
    path = _pickle(tmp_path / "ntu60.pkl", annotations, split)
    assert "would record the dataset as 'ntu60'" in _refused(capsys, path, str(tmp_path / "out"), "ntu25")
    assert not os.path.exists(tmp_path / "out")
    _run(path, str(tmp_path / "out"), "ntu25", "--dataset", "ntu60")
    assert read_folder_record(str(tmp_path / "out"))[2] == "ntu60"


@pytest.mark.parametrize(
    "stem, flags, found",
    [
        ("my data", [], "the pickle name 'my data'"),
        ("a", ["--dataset", "../x"], "--dataset '../x'"),
        ("a", ["--dataset", ""], "--dataset ''"),  # not the pickle's name in its place
    ],
)
def test_a_dataset_name_that_cannot_name_a_run_folder_is_refused(tmp_path, capsys, stem, flags, found):
    annotations, split, _ = _ntu_set()
    path = _pickle(tmp_path / f"{stem}.pkl", annotations, split)
    err = _refused(capsys, path, str(tmp_path / "out"), "ntu25", *flags)
    assert f"{found}: a dataset name is letters, digits" in err
    assert not os.path.exists(tmp_path / "out")


def test_class_count_and_dataset_from_flags(tmp_path, capsys):
    annotations, split, _ = _ntu_set()
    path = _pickle(tmp_path / "a.pkl", annotations, split)
    out = str(tmp_path / "out")
    _run(path, out, "ntu25", "--num-class", "60", "--dataset", "ntu60")
    assert read_folder_record(out) == (NTU25, 60, "ntu60", None)
    assert "published settings" not in capsys.readouterr().out
    _run(path, str(tmp_path / "n10"), "ntu25", "--num-class", "10", "--dataset", "ntu60")  # not NTU-60's classes
    assert "ntu60's published settings, made for its 60 classes of the ntu25 skeleton; this folder has 10" in (
        capsys.readouterr().out
    )
    _run(path, str(tmp_path / "xview"), "ntu25", "--protocol", "cross_view")  # recorded: runs say cross_view
    assert read_folder_record(str(tmp_path / "xview"))[3] == "cross_view"
    assert load_splits(str(tmp_path / "xview"))[0].names == load_splits(out)[0].names
    with pytest.raises(
        SystemExit,
        match=r"sample 'S001C002P003R001A005': expected \"label\" an integer in 0..1, "
        r"found 2",
    ):
        _run(path, out, "ntu25", "--num-class", "2")
    capsys.readouterr()
    with pytest.raises(SystemExit):  # a label of 2**63 would pass, and the folder's int64 labels then refuse it
        _run(path, out, "ntu25", "--num-class", str(2**63 + 1))
    assert f"--num-class must be at least 1 and below 2**63, got {2**63 + 1}" in capsys.readouterr().err


def test_a_folder_too_small_to_pretrain_is_announced_at_import(tmp_path, capsys):
    def folder(train, name, *flags):
        annotations = [_annotation(f"r{i}", i % 2, [_body(6, 25, 3, 0.5, i)]) for i in range(train + 1)]
        split = {"xsub_train": [f"r{i}" for i in range(train)], "xsub_val": [f"r{train}"]}
        out = str(tmp_path / name)
        _run(_pickle(tmp_path / f"{name}.pkl", annotations, split), out, "ntu25", *flags)
        return out, capsys.readouterr().out

    out, printed = folder(7, "mine")  # the small-data preset's pretraining refuses 7 (options_pretraining)
    assert f"warning: {out} has 7 train sample(s); pretraining on a folder of mine (the small-data preset) " in printed
    assert "needs 8 or more, so pretrain_cmd.py will refuse it" in printed
    assert "train sample(s); pretraining" not in folder(8, "eight")[1]
    assert "train sample(s); pretraining" not in folder(7, "ntu", "--num-class", "60", "--dataset", "ntu60")[1]


def test_a_joint_order_that_stands_the_skeletons_on_their_heads_is_announced(tmp_path, capsys, monkeypatch):
    standing = REST_POSE[UCLA_JOINTS] * [-1, 1, 1]  # kinect20 facing a Kinect (right shoulder at the larger x)
    head_first = [3, 2, 1, 0] + list(range(4, 20))  # Kinect v1 data that starts with the head

    def folder(name, wrong):  # the first `wrong` of 10 recordings head first, imported as kinect20
        rng = np.random.default_rng(0)
        bodies = [standing + [0, 0, 3] + rng.normal(0, 0.02, (8, 20, 3)) for _ in range(10)]
        orders = [head_first] * wrong + [list(range(20))] * (10 - wrong)
        annotations = [
            _annotation(f"r{i}", i % 2, [b[:, o].astype(np.float32)]) for i, (b, o) in enumerate(zip(bodies, orders))
        ]
        split = {"xsub_train": [f"r{i}" for i in range(8)], "xsub_val": ["r8", "r9"]}
        out = str(tmp_path / name)
        _run(_pickle(tmp_path / f"{name}.pkl", annotations, split), out, "kinect20")
        with open(os.path.join(out, "settings.json")) as f:
            return json.load(f)["upside_down"], capsys.readouterr().out

    for wrong in (0, 4, 5):  # counted; not a warning until more than half
        turned, printed = folder(f"w{wrong}", wrong)
        assert turned == wrong and "upside down" not in printed
    turned, printed = folder("w6", 6)
    assert turned == 6 and "warning: 6 of the 10 samples stand upside down once normalised (the first: r0)" in printed
    turned, printed = folder("w10", 10)
    assert turned == 10
    assert "warning: 10 of the 10 samples stand upside down once normalised (the first: r0): the joints on the " in (
        printed
    )
    assert "hip centre side of the hip centre -> spine bone" in printed and "joint order kinect20's?" in printed
    # Head first, the z pair (hip centre -> spine) points down the data's y axis as in a y-down camera frame,
    # but the bodies stand upright (their legs low): the joint order is named, not a negation of axes.
    assert (
        "warning: in 10 of the 10 recordings the layout's z pair (hip centre -> spine), which points up the body, "
        "points down the data's y axis, but the joints on its hip centre side lie below the rest of the kinect20 "
        "skeleton in 10 of them: those bodies stand upright, so it is the data's joint order that is not "
        "kinect20's, not the camera's frame." in printed
    )
    assert "negate x and y" not in printed
    # A pretraining or an evaluation on the folder says it again (the import's lines may have scrolled by).
    for name, count in (("w5", 0), ("w6", 6), ("w10", 10)):
        out = str(tmp_path / name)
        argv = ["--data-dir", out, "--checkpoint-path", out + "ck"]
        options_pretraining.resolve(*options_pretraining.parse_args(argv))
        parser, args = options_classification.parse_knn(["--data-dir", out])
        options_classification.open_data(parser, args)
        monkeypatch.setattr(
            coordinate_baseline, "baselines", lambda train, val: {"logistic": 0.0, "C": 1.0, "1nn": 0.0}
        )
        coordinate_baseline.main(["--data-dir", out, "--results", str(tmp_path / f"{name}.jsonl")])
        printed = capsys.readouterr().out
        warning = f"warning: {out}: {count} of its 10 recordings stood upside down once normalised when it was imported"
        assert printed.count(warning) == (3 if count else 0) and ("upside down" in printed) == bool(count)


def test_a_mirror_image_is_announced_by_the_turn_of_the_shoulders(tmp_path, capsys):
    facing = REST_POSE[UCLA_JOINTS] * [-1, 1, 1]  # kinect20 facing a Kinect (right shoulder at the larger x)

    def folder(name, mirrored):  # the first `mirrored` of 10 recordings with x negated
        rng = np.random.default_rng(1)
        bodies = [facing + [0, 0, 3] + rng.normal(0, 0.02, (8, 20, 3)) for _ in range(10)]
        signs = [[-1, 1, 1]] * mirrored + [[1, 1, 1]] * (10 - mirrored)
        annotations = [
            _annotation(f"r{i}", i % 2, [(b * sign).astype(np.float32)])
            for i, (b, sign) in enumerate(zip(bodies, signs))
        ]
        split = {"xsub_train": [f"r{i}" for i in range(8)], "xsub_val": ["r8", "r9"]}
        out = str(tmp_path / name)
        _run(_pickle(tmp_path / f"{name}.pkl", annotations, split), out, "kinect20")
        with open(os.path.join(out, "settings.json")) as f:
            return json.load(f)["x_axis_turned_over_90"], capsys.readouterr().out

    for mirrored in (0, 5):  # counted; not a warning until more than half
        count, printed = folder(f"m{mirrored}", mirrored)
        assert count == mirrored and "turned more than 90" not in printed
    count, printed = folder("m6", 6)
    assert count == 6
    assert (
        "warning: 6 of the 10 samples had their left shoulder -> right shoulder vector turned more than 90 degrees "
        "onto +x by the normalisation (the first: r0): their coordinates are a mirror image" in printed
    )
    assert "negate x before the import" in printed
    for name, count in (("m5", 0), ("m6", 6)):  # said again where a run meets the folder
        out = str(tmp_path / name)
        options_classification.open_data(*options_classification.parse_knn(["--data-dir", out]))
        printed = capsys.readouterr().out
        assert (f"warning: {out}: 6 of its 10 recordings had their x-axis pair turned over 90 degrees" in printed) == (
            count == 6
        )
        assert ("turned over 90 degrees" in printed) == (count == 6)


def test_class_count_without_num_class_is_at_most_the_sample_count(tmp_path, capsys):
    annotations, split, _ = _ntu_set()
    annotations[1]["label"] = 10**9  # S001C002P003R001A005, of 3 samples
    path = _pickle(tmp_path / "a.pkl", annotations, split)
    out = str(tmp_path / "out")
    with pytest.raises(SystemExit) as info:
        _run(path, out, "ntu25")
    assert info.value.code == (
        f"error: {path}: sample 'S001C002P003R001A005' has label 1000000000, which makes "
        f"1000000001 classes for 3 samples; expected at most one class per sample without "
        f"--num-class: pass --num-class (the class count) if the labels are right"
    )
    assert not os.path.exists(out)  # a message: exit status 1, before any work
    annotations[1]["label"] = 2
    annotations[2]["label"] = 2  # labels 0, 2, 2: class 1 has no sample
    _run(_pickle(tmp_path / "a.pkl", annotations, split), out, "ntu25")
    out_text = capsys.readouterr().out
    assert "warning: 1 of the 3 classes (labels 0..2) have no sample" in out_text and "from 1?" not in out_text
    assert "ids such as 3, 7, 22 become np.unique(ids, return_inverse=True)[1]" in out_text  # a gap
    assert read_folder_record(out) == (NTU25, 3, "a", None)
    for a, label in zip(annotations, (1, 2, 2)):  # labels counted from 1: class 0 is empty
        a["label"] = label
    _run(_pickle(tmp_path / "b.pkl", annotations, split), str(tmp_path / "b"), "ntu25")
    out_text = capsys.readouterr().out
    assert "label 0 has none: labels here count from 0, are yours from 1?" in out_text and "np.unique" not in out_text


def test_two_dimensional_layout_from_a_json_file(tmp_path):
    flat = Layout(
        name="tri2d",
        joints=("hip", "neck", "head"),
        parents=(1, 1, 1),
        centre=1,
        z_axis=(0, 1),
        x_axis=(1, 2),
        corrupted_joints=1,
        channels=2,
        bodies=1,
    )
    layout_file = tmp_path / "tri2d.json"
    layout_file.write_text(flat.to_json())
    first = np.array([[[0, 0], [0, 0], [0, 0]], [[3, 9], [4, 7], [5, 2]], [[1, 1], [2, 2], [3, 1]]], np.float32)
    second = np.full((3, 3, 2), 0.5, np.float32)  # std 0: the less energetic body
    annotations = [_annotation("clip0", 1, [second, first]), _annotation("clip1", 0, [first[1:]])]
    path = _pickle(tmp_path / "coco.pkl", annotations, {"xsub_train": ["clip0"], "xsub_val": ["clip1"]})
    out = str(tmp_path / "out")
    # the published treatment of the empty frame; pixels kept as they are
    _run(path, out, str(layout_file), "--missing-joints", "zero", "--scale", "none")
    train, val = load_splits(out)
    assert train.layout == flat and train.num_class == 2 and train.data.shape == (1, 2, 300, 3, 1)
    got = train.data[0, :, :, :, 0].transpose(1, 2, 0)  # 300 x V x C
    # clip0 keeps `first`: frame 0 empty, so frames 1, 2 come first, centred on the neck, then repeat.
    np.testing.assert_array_equal(got[0], [[-1, 2], [0, 0], [1, -5]])
    np.testing.assert_array_equal(got[1], [[-1, -1], [0, 0], [1, -1]])
    np.testing.assert_array_equal(got[2], got[0])
    np.testing.assert_array_equal(got[299], got[1])
    assert val.data[0, :, 0, :, 0].T.tolist() == [[-1, 2], [0, 0], [1, -5]]


def test_keypoints_normalised_already_are_not_divided_by_the_image_again(tmp_path):
    layout_file = tmp_path / "tri2d.json"
    layout_file.write_text(json.dumps(dict(TRIANGLE_2D, channels=2, bodies=1)))
    pixels = np.array([[[[960, 540], [960, 400], [990, 300]]] * 4], np.float32)  # 1 x 4 x 3 x 2, in a 1920 x 1080 image
    annotations = [_annotation(n, 0, [pixels[0] + i]) for i, n in enumerate("ab")]
    split = {"xsub_train": ["a"], "xsub_val": ["b"]}
    out = tmp_path / "out"
    for annotation in annotations:
        annotation["keypoint"] = annotation["keypoint"] / 1920.0  # within [0, 1]: normalised by the estimator
    path = _pickle(tmp_path / "n.pkl", annotations, split)
    with pytest.raises(
        SystemExit,
        match=r"n.pkl: every keypoint lies within \+-0.516 while the images \(img_shape\) are 1920 px or more: the "
        r"keypoints look normalised to the image already, .* or pass --scale none",
    ):
        _run(path, str(out), str(layout_file))
    assert not out.exists()  # said before any work
    _run(path, str(out), str(layout_file), "--scale", "none")  # kept as stored, as asked
    centred = np.array([[0, 0], [0, -140], [30, -240]]) / 1920  # on the root joint
    np.testing.assert_allclose(load_splits(str(out))[0].data[0, :, 0, :, 0].T, centred, atol=1e-6)
    annotations[1]["keypoint"] = annotations[1]["keypoint"] * 1920.0  # one recording in pixels: no longer all within 2
    _run(_pickle(tmp_path / "n.pkl", annotations, split), str(out), str(layout_file))
    for annotation in annotations:
        annotation["keypoint"] = np.zeros_like(annotation["keypoint"])  # nobody found anywhere: not this error
    with pytest.raises(SystemExit) as stop:
        _run(_pickle(tmp_path / "n.pkl", annotations, split), str(out), str(layout_file))
    assert "normalised" not in str(stop.value)


class _Payload:
    """Pickles as a call of os.system that would create ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_booby_trapped_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    annotations, split, _ = _ntu_set()
    annotations[1]["label"] = _Payload(marker)
    path = _pickle(tmp_path / "trap.pkl", annotations, split)
    out = str(tmp_path / "out")
    refusal = (
        rf"error: {path}: refused: {os.system.__module__}.system is not allowed \(only plain containers, "
        r"strings, numbers and numeric or text numpy arrays are\); nothing in it was run"
    )
    with pytest.raises(SystemExit, match=refusal):
        _run(path, out, "ntu25")
    assert not marker.exists() and not os.path.exists(out)
    with open(path, "rb") as f:  # the pickle does run when loaded plainly
        pickle.load(f)
    assert marker.exists()


class _Reduced:
    """Pickles as the given reduce tuple: arrays declared as numpy never writes them."""

    def __init__(self, reduced):
        self.reduced = reduced

    def __reduce__(self):
        return self.reduced


_RECONSTRUCT, _FROMBUFFER = np.zeros(1).__reduce__()[0], np.zeros(1).__reduce_ex__(5)[0]
_F4 = np.dtype(np.float32)


@pytest.mark.parametrize(
    "reduced, found",
    [
        (
            (_RECONSTRUCT, (np.ndarray, (10**12, 10**6), b"b"), (1, (2,), _F4, False, bytes(8))),
            r"UnpicklingError: a numpy array declares shape \(1000000000000, 1000000\) before its data",
        ),
        (
            (_RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (10**10, 10**10), _F4, False, bytes(8))),
            r"UnpicklingError: an array shape or a byte count in it is too large for memory",
        ),
        (
            (_RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (10**12, 10**6), _F4, False, bytes(8))),
            r"ValueError: buffer size does not match array size",
        ),
        ((_FROMBUFFER, (bytes(8), _F4, (10**12, 10**6), "C")), r"ValueError: cannot reshape array of size 2"),
    ],
)
def test_array_declared_larger_than_its_data_is_not_a_readable_pickle(tmp_path, reduced, found):
    annotations, split, _ = _ntu_set()
    annotations[0]["keypoint"] = _Reduced(reduced)
    path = _pickle(tmp_path / "a.pkl", annotations, split)
    with pytest.raises(SystemExit) as info:
        _run(path, str(tmp_path / "out"), "ntu25", "--skip-bad")
    assert info.value.code.startswith(f"error: {path}: not a readable pickle (")  # a message: exit status 1
    assert re.search(found, info.value.code) and not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize(
    "edit, found",
    [
        (lambda a, s: s.pop("xsub_val"), "no split 'xsub_val'; its splits: 'xsub_train'"),
        (
            lambda a, s: s["xsub_val"].append("S009C001P001R001A001"),
            "split 'xsub_val' lists 1 frame_dir without an annotation \\(the first: 'S009C001P001R001A001'\\)",
        ),
        (
            lambda a, s: s["xsub_val"].append("S001C001P001R001A001"),
            "1 frame_dir are in both 'xsub_train' and 'xsub_val' \\(the first: 'S001C001P001R001A001'\\)",
        ),
        (
            lambda a, s: s["xsub_train"].append("S001C001P001R001A001"),
            "split 'xsub_train' lists 'S001C001P001R001A001' twice",
        ),
        (lambda a, s: a.append(dict(a[0])), "frame_dir 'S001C001P001R001A001' is annotated twice"),
        (
            lambda a, s: a[1].pop("frame_dir"),
            'annotation 1: expected a dict with a string "frame_dir", found frame_dir None',
        ),
        (
            lambda a, s: a[0].update(label=-1),
            "sample 'S001C001P001R001A001': expected \"label\" an integer >= 0, found -1",
        ),
        (
            lambda a, s: a[0].update(label=2.5),
            "sample 'S001C001P001R001A001': expected \"label\" an integer >= 0, found 2.5",
        ),
    ],
)
def test_inconsistent_annotations_are_errors(tmp_path, edit, found):
    annotations, split, _ = _ntu_set()
    edit(annotations, split)
    path = _pickle(tmp_path / "a.pkl", annotations, split)
    with pytest.raises(SystemExit, match=f"error: {path}: {found}"):
        _run(path, str(tmp_path / "out"), "ntu25", "--skip-bad")
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize(
    "keypoint, found",
    [
        (
            np.zeros((1, 5, 20, 3), np.float32),
            "expected a numeric M x T x 25 x 3 array \\(layout ntu25\\), found float32 "
            "array of shape \\(1, 5, 20, 3\\)",
        ),
        (np.zeros((1, 5, 25, 2), np.float32), "M x T x 25 x 3 array .* shape \\(1, 5, 25, 2\\)"),
        (np.zeros((5, 25, 3), np.float32), "M x T x 25 x 3 array .* shape \\(5, 25, 3\\)"),
        (None, "found no keypoint"),
        (np.zeros((1, 0, 25, 3), np.float32), "expected at least one frame"),
        (np.full((1, 2, 25, 3), np.inf, np.float32), "expected values that are finite and within \\+-10000, found inf"),
        (
            np.full((1, 2, 25, 3), 12317.5, np.float32),  # millimetres, 12 m away
            "within \\+-10000, found 12317.5; 3-D coordinates go in metres \\(millimetres: divide by 1000\\)",
        ),
    ],
)
def test_bad_keypoint_names_the_sample_and_is_skipped_with_skip_bad(tmp_path, keypoint, found):
    annotations, split, _ = _ntu_set()
    annotations[0]["keypoint"] = keypoint
    path = _pickle(tmp_path / "a.pkl", annotations, split)
    out = str(tmp_path / "out")
    with pytest.raises(SystemExit, match=f"error: {path}: sample 'S001C001P001R001A001': \"keypoint\": .*{found}"):
        _run(path, out, "ntu25")
    assert not os.path.exists(os.path.join(out, "train_data_joint.npy"))
    # a shape is checked before the conversion starts (its folder made, any sample read); values as read
    assert os.path.exists(out) == ("within" in found)
    _run(path, out, "ntu25", "--skip-bad")
    assert (
        open(os.path.join(out, "skipped.txt"))
        .read()
        .startswith(f"{path}: S001C001P001R001A001\tbad: {path}: sample 'S001C001P001R001A001'")
    )
    train, val = load_splits(out)
    assert train.names == ["S002C001P002R001A003"] and val.names == ["S001C002P003R001A005"]


def test_2d_keypoints_with_their_scores_as_a_third_channel_are_refused_with_the_way_to_split_them(tmp_path):
    layout = tmp_path / "tri2d.json"
    layout.write_text(json.dumps(dict(TRIANGLE_2D, channels=2, bodies=1)))
    triples = np.ones((1, 4, 3, 3), np.float32)  # x, y, score of 3 joints
    annotations = [dict(frame_dir=n, label=0, keypoint=triples) for n in ("a", "b")]
    path = _pickle(tmp_path / "scored.pkl", annotations, {"xsub_train": ["a"], "xsub_val": ["b"]})
    # every recording packed so: said once for the file, before the output folder exists
    with pytest.raises(
        SystemExit,
        match=r"scored.pkl: no recording's keypoints have the 3 joints x 2 channels of layout tri2d \(the first, "
        r"sample 'a', is an array of shape \(1, 4, 3, 3\)\); a third channel of scores goes in \"keypoint_score\"",
    ):
        _run(path, str(tmp_path / "out"), str(layout))
    assert not (tmp_path / "out").exists()
    annotations[1]["keypoint"] = triples[..., :2]  # one recording packed so: that sample is named
    path = _pickle(tmp_path / "scored.pkl", annotations, {"xsub_train": ["a"], "xsub_val": ["b"]})
    with pytest.raises(
        SystemExit, match=r"sample 'a'.* M x T x 3 x 2 array .* shape \(1, 4, 3, 3\); a third channel of scores goes "
    ):
        _run(path, str(tmp_path / "out"), str(layout))
    assert not (tmp_path / "out" / "train_data_joint.npy").exists()


def test_layout_and_annotation_file_problems_are_clear(tmp_path, capsys):
    annotations, split, _ = _ntu_set()
    path = _pickle(tmp_path / "a.pkl", annotations, split)
    assert "--layout: unknown layout 'h36m17'" in _refused(capsys, path, str(tmp_path / "out"), "h36m17")
    with pytest.raises(
        SystemExit,
        match=r"a.pkl: no recording's keypoints have the 20 joints x 3 channels of layout kinect20 \(the first, "
        r"sample 'S002C001P002R001A003', is an array of shape \(2, 310, 25, 3\)\); the layout is not your data's "
        r"skeleton: name the right one with --layout " + re.escape(f"({', '.join(LAYOUTS)})"),
    ):
        _run(path, str(tmp_path / "out"), KINECT20.name)
    assert not (tmp_path / "out").exists()
    (tmp_path / "b.pkl").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(SystemExit, match=r'b.pkl: expected a dict with "split" .* found a list'):
        _run(str(tmp_path / "b.pkl"), str(tmp_path / "out"), "ntu25")
    (tmp_path / "c.pkl").write_bytes(pickle.dumps({"split": {}, "annotations": []})[:-3])
    with pytest.raises(SystemExit, match=r"c.pkl: not a readable pickle"):
        _run(str(tmp_path / "c.pkl"), str(tmp_path / "out"), "ntu25")
    with pytest.raises(SystemExit, match=r"--annotations .*missing.pkl: No such file"):
        _run(str(tmp_path / "missing.pkl"), str(tmp_path / "out"), "ntu25")


@pytest.mark.parametrize(
    "change, found",
    [
        (dict(channels=3.0), "channels must be an integer, found 3.0"),
        (dict(centre=1.5), "centre must be an integer, found 1.5"),
        (dict(parents=list(NTU25.parents[:20]) + [1] + list(NTU25.parents[21:])), "found the cycle 0 -> 1 -> 20 -> 1"),
    ],
)  # no root
def test_layout_file_with_a_float_or_a_parent_cycle_is_a_usage_error(tmp_path, capsys, change, found):
    annotations, split, _ = _ntu_set()
    path = _pickle(tmp_path / "a.pkl", annotations, split)
    layout_file = tmp_path / "mine.json"
    layout_file.write_text(json.dumps(dict(NTU25.to_dict(), name="mine", **change)))
    err = _refused(capsys, path, str(tmp_path / "out"), str(layout_file))
    assert f"--layout: layout file {layout_file}: layout 'mine': " in err and found in err
    assert not os.path.exists(tmp_path / "out")


def test_runs_as_a_script(tmp_path):
    annotations, split, _ = _ntu_set()
    path = _pickle(tmp_path / "a.pkl", annotations, split)
    out = str(tmp_path / "out")
    subprocess.run(
        [
            sys.executable,
            pyskl_gendata.__file__,
            "--annotations",
            path,
            "--layout",
            "ntu25",
            "--train-split",
            "xsub_train",
            "--val-split",
            "xsub_val",
            "--out-folder",
            out,
            "--workers",
            "2",
            "--no-progress",
        ],
        check=True,
        capture_output=True,
        cwd=str(tmp_path),
    )
    assert [s.names for s in load_splits(out)] == [
        ["S002C001P002R001A003", "S001C001P001R001A001"],
        ["S001C002P003R001A005"],
    ]


def test_ctrl_c_while_the_pickle_is_read_is_one_line(tmp_path, monkeypatch, capsys):
    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(pyskl_gendata, "load_annotations", interrupted)
    with pytest.raises(SystemExit) as stop:
        _run(str(tmp_path / "big.pkl"), str(tmp_path / "out"), "ntu25")
    assert (
        stop.value.code == 130
        and capsys.readouterr().err == f"interrupted while reading {tmp_path / 'big.pkl'}: nothing was written\n"
    )
    assert not os.path.exists(tmp_path / "out")


def test_root_relative_data_is_named_and_kept_with_keep_zeros(tmp_path, capsys):
    layout = tmp_path / "tri2d.json"
    layout.write_text(json.dumps(dict(TRIANGLE_2D, channels=2, bodies=1)))
    tri = get_layout(dict(TRIANGLE_2D, channels=2, bodies=1))
    body = np.array([[(0, 0), (1, 2), (1, 4)], [(0, 0), (2, 2), (2, 5)]], dtype=np.float32)  # the root is the origin
    annotations = [dict(frame_dir=n, label=0, keypoint=body[None]) for n in ("a", "b")]
    path = _pickle(tmp_path / "lifted.pkl", annotations, {"xsub_train": ["a"], "xsub_val": ["b"]})
    _run(path, str(tmp_path / "filled"), str(layout))
    out = capsys.readouterr().out
    assert "warning: the centre joint (root) is missing in every frame of every recording" in out
    assert "pass --keep-zeros" in out
    summary = json.load(open(tmp_path / "filled" / "settings.json"))["missing"]
    assert summary == {
        "recordings_with_anyone": 2,
        "joints_missing_percent": 33.33,
        "frames_without_anyone": 0,
        "centre_never_found": 2,
        "joints_never_found": ["root"],
        "recordings_with_several_people": 0,
        "people_change_places": 0,
    }
    _run(path, str(tmp_path / "kept"), str(layout), "--keep-zeros")
    assert "warning: the centre joint" not in capsys.readouterr().out
    np.testing.assert_allclose(load_splits(str(tmp_path / "kept"))[0].data[0], _expected([body], tri), atol=1e-6)


def test_a_centre_never_found_beside_other_joints_is_filled_not_taken_for_root_relative_data(tmp_path, capsys):
    """Upper-body footage: the centre (a hip) and another joint never found. --keep-zeros would make their
    zeros coordinates, so it is not suggested; a note says they are filled, and the frames are centred."""
    layout = tmp_path / "tri2d.json"
    layout.write_text(json.dumps(dict(TRIANGLE_2D, channels=2, bodies=1)))
    tri = get_layout(dict(TRIANGLE_2D, channels=2, bodies=1))
    body = np.array([[(0, 0), (30, 40), (0, 0)], [(0, 0), (32, 41), (0, 0)]], dtype=np.float32)  # mid only
    annotations = [dict(frame_dir=n, label=0, keypoint=body[None]) for n in ("a", "b")]
    path = _pickle(tmp_path / "upper.pkl", annotations, {"xsub_train": ["a"], "xsub_val": ["b"]})
    _run(path, str(tmp_path / "out"), str(layout))
    out = capsys.readouterr().out
    assert "--keep-zeros" not in out
    assert "note: 2 joint(s) are found in no frame of any recording (root, tip); each is filled from its " in out
    assert "the centre (root) too, so every frame is still centred" in out
    assert json.load(open(tmp_path / "out" / "settings.json"))["missing"]["joints_never_found"] == ["root", "tip"]
    # root and tip take mid's position in each frame: after centring, every joint of every frame is at 0
    data = load_splits(str(tmp_path / "out"))[0].data[0]  # C x T x V x M
    assert tri.num_joints == 3 and np.abs(data).max() == 0


def test_a_3d_lift_without_its_root_and_some_joints_still_gets_the_keep_zeros_advice(tmp_path, capsys):
    """A root-relative 3-D lift in ntu25 without hand tips and thumbs: the root at 0 beside joints never found.
    It may be root-relative, so the advice stays, with the missing joints to be written as NaN."""
    annotations, split, _ = _ntu_set()
    for a in annotations:
        a["keypoint"] = a["keypoint"].copy()
        a["keypoint"][:, :, [1, 21, 22, 23, 24]] = 0.0  # spine middle (the centre), hand tips, thumbs
    path = _pickle(tmp_path / "lift.pkl", annotations, split)
    _run(path, str(tmp_path / "out"), "ntu25")
    out = capsys.readouterr().out
    assert "warning: the centre joint (spine middle) is missing in every frame of every recording" in out
    assert "pass --keep-zeros (a joint at 0 is then a coordinate) and write the joints your data lacks as NaN" in out
    assert "note:" not in out


def test_a_person_who_enters_late_stays_in_step(tmp_path):
    # the published padding would move a body whose first frames are empty to the start of the recording
    layout = tmp_path / "tri2d.json"
    layout.write_text(json.dumps(dict(TRIANGLE_2D, channels=2, bodies=2)))
    tri = get_layout(dict(TRIANGLE_2D, channels=2, bodies=2))
    actor = np.array([[(10 + t, 10), (10 + t, 20), (10 + t, 30)] for t in range(4)], dtype=np.float32)
    late = np.zeros_like(actor)
    late[2:] = [[(50, 10), (50, 15), (50, 18)], [(52, 10), (52, 15), (52, 18)]]
    annotations = [dict(frame_dir=n, label=0, keypoint=np.stack([actor, late])) for n in ("a", "b")]
    path = _pickle(tmp_path / "two.pkl", annotations, {"xsub_train": ["a"], "xsub_val": ["b"]})
    _run(path, str(tmp_path / "out"), str(layout))
    held = late.copy()
    held[:2] = late[2]  # where it entered, until it entered
    np.testing.assert_allclose(load_splits(str(tmp_path / "out"))[0].data[0], _expected([actor, held], tri), atol=1e-5)


def test_people_listed_in_each_frames_own_order_are_announced_and_tracked(tmp_path, capsys):
    # A per-frame estimator's output: an actor waving about (600, 500) px and a still bystander at
    # (1400, 500), each frame listing them in an order of its own; coco17 keeps one body.
    rng = np.random.default_rng(0)
    pose = rng.uniform(-60, 60, (17, 2))
    annotations, straight = [], []
    for i in range(10):
        t = np.arange(20)[:, None, None]
        actor = [600, 500] + pose + 40 * np.sin(t / 3 + i) * rng.uniform(0.5, 1, (17, 2))  # T x V x C
        bystander = [1400, 500] + pose + rng.normal(0, 1, (20, 17, 2))
        people = np.stack([actor, bystander]).astype(np.float32)
        listed = people.copy()
        swapped = rng.random(20) < 0.4
        listed[:, swapped] = people[::-1][:, swapped]
        straight.append(_annotation(f"r{i}", i % 2, list(people)))
        annotations.append(_annotation(f"r{i}", i % 2, list(listed)))
    split = {"xsub_train": [f"r{i}" for i in range(8)], "xsub_val": ["r8", "r9"]}
    _run(_pickle(tmp_path / "straight.pkl", straight, split), str(tmp_path / "straight"), "coco17")
    assert "change places" not in capsys.readouterr().out
    _run(_pickle(tmp_path / "listed.pkl", annotations, split), str(tmp_path / "listed"), "coco17")
    assert "warning: in 10 of the 10 recordings with several people, two of them change places" in (
        capsys.readouterr().out
    )
    _run(_pickle(tmp_path / "listed.pkl", annotations, split), str(tmp_path / "tracked"), "coco17", "--track")
    assert "change places" not in capsys.readouterr().out  # --track given: nothing to advise
    # one recording of ten listed in each frame's order: counted, but no warning (a majority is)
    _run(_pickle(tmp_path / "one.pkl", annotations[:1] + straight[1:], split), str(tmp_path / "one"), "coco17")
    assert "change places" not in capsys.readouterr().out
    with open(tmp_path / "one" / "settings.json") as f:
        missing = json.load(f)["missing"]
    assert (missing["people_change_places"], missing["recordings_with_several_people"]) == (1, 10)
    expected = load_splits(str(tmp_path / "straight"))
    for name, different in (("tracked", False), ("listed", True)):
        for got, want in zip(load_splits(str(tmp_path / name)), expected):
            assert (not np.array_equal(got.data, want.data)) == different
    with open(tmp_path / "tracked" / "settings.json") as f:
        record = json.load(f)
    assert record["track"] is True and record["missing"]["people_change_places"] == 10


def test_ragged_people_frames_first_and_a_one_based_layout_are_named(tmp_path, capsys):
    annotations, split, _ = _ntu_set()
    # ragged: two people of different lengths made into one numpy array (an object array)
    ragged = np.empty(2, dtype=object)
    ragged[:] = [np.ones((4, 25, 3), np.float32), np.ones((3, 25, 3), np.float32)]
    annotations[0]["keypoint"] = ragged
    path = _pickle(tmp_path / "ragged.pkl", annotations, split)
    with pytest.raises(
        SystemExit,
        match="dtype object is not numeric or text; nothing in it was run; numpy makes one of a list of "
        "arrays of different shapes .people or frames of a keypoint.: pad them to one M x T x V x C array",
    ):
        _run(path, str(tmp_path / "ragged"), "ntu25")
    # frames first: T x M x V x C passed as M x T x V x C
    annotations, split, _ = _ntu_set()
    _run(_pickle(tmp_path / "right.pkl", annotations, split), str(tmp_path / "right"), "ntu25")
    assert "more people than frames" not in capsys.readouterr().out
    for a in annotations:
        a["keypoint"] = np.ascontiguousarray(np.swapaxes(a["keypoint"], 0, 1))
        a["keypoint_score"] = np.ascontiguousarray(np.swapaxes(a["keypoint_score"], 0, 1))
    _run(_pickle(tmp_path / "swapped.pkl", annotations, split), str(tmp_path / "swapped"), "ntu25")
    printed = capsys.readouterr().out
    n = len(split["xsub_train"]) + len(split["xsub_val"])  # the recordings the splits name
    assert f"warning: {n} of the {n} recordings have more people than frames (the first: " in printed
    assert "np.swapaxes(keypoint, 0, 1)" in printed
    annotations, split, _ = _ntu_set()
    for key in ("keypoint", "keypoint_score"):  # one recording of them frames first: not a majority
        annotations[0][key] = np.ascontiguousarray(np.swapaxes(annotations[0][key], 0, 1))
    _run(_pickle(tmp_path / "one.pkl", annotations, split), str(tmp_path / "one"), "ntu25")
    assert "more people than frames" not in capsys.readouterr().out
    annotations, split, _ = _ntu_set()
    for a in annotations:  # single frames of two people (posture data) are not taken for it
        first = a["keypoint"][0, :1]  # 1 x V x C
        a["keypoint"] = np.stack([first, first + [1, 0, 0]]).astype(np.float32)
        a["keypoint_score"] = np.ones((2, 1, 25), np.float32)
    _run(_pickle(tmp_path / "posture.pkl", annotations, split), str(tmp_path / "posture"), "ntu25")
    assert "more people than frames" not in capsys.readouterr().out
    # a layout of several roots, as 1-based parents make
    annotations, split, _ = _ntu_set()
    one_based = tmp_path / "one_based.json"
    record = json.loads(NTU25.to_json())
    chain = [0] + list(range(24))  # joint j hangs from joint j - 1; written 1-based: [1, 1, 2, ..., 24]
    record.update(name="ntu25_1", parents=[p + 1 for p in chain])
    one_based.write_text(json.dumps(record))
    _run(_pickle(tmp_path / "plain.pkl", annotations, split), str(tmp_path / "plain"), str(one_based))
    printed = capsys.readouterr().out
    roots = [j for j, p in enumerate(record["parents"]) if j == p]
    assert (
        len(roots) > 1 and f"note: layout ntu25_1 has {len(roots)} roots, joints that are their own parent" in printed
    )
    _run(_pickle(tmp_path / "plain.pkl", annotations, split), str(tmp_path / "ntu"), "ntu25")
    assert "roots" not in capsys.readouterr().out


def test_a_camera_frame_with_y_down_and_a_root_away_from_the_centre_are_named(tmp_path, capsys):
    facing = REST_POSE[UCLA_JOINTS] * [-1, 1, 1]  # kinect20 facing a Kinect (x to its left, y up, z away)
    rng = np.random.default_rng(2)
    kinect = [facing + [0, 0, 3] + rng.normal(0, 0.02, (8, 20, 3)) for _ in range(10)]
    split = {"xsub_train": [f"r{i}" for i in range(8)], "xsub_val": ["r8", "r9"]}

    def folder(name, bodies, *flags):
        annotations = [_annotation(f"r{i}", i % 2, [b.astype(np.float32)]) for i, b in enumerate(bodies)]
        out = str(tmp_path / name)
        _run(_pickle(tmp_path / f"{name}.pkl", annotations, split), out, "kinect20", *flags)
        with open(os.path.join(out, "settings.json")) as f:
            return out, json.load(f), capsys.readouterr().out

    _, record, printed = folder("kinect", kinect)
    assert record["z_axis_along_minus_y"] == 0 and "points down the data's y axis" not in printed
    opencv = [b * [-1, -1, 1] for b in kinect]  # x right, y down, z away: a half turn about z, not a mirror
    _, record, printed = folder("opencv", opencv)
    assert record["z_axis_along_minus_y"] == 10 and record["x_axis_turned_over_90"] == 10
    assert (
        "warning: in 10 of the 10 recordings the layout's z pair (hip centre -> spine), which points up the body, "
        "points down the data's y axis" in printed
    )
    assert "negate x and y before the import" in printed and "the data's y axis points down" in printed
    assert "joint order that is not" not in printed  # upside down as a whole: the frame, not the order
    _, record, printed = folder("some", opencv[:3] + kinect[3:])  # 3 of 10 y-down: counted, not a majority
    assert record["z_axis_along_minus_y"] == 3 and "points down the data's y axis" not in printed
    lying = [b[..., [0, 2, 1]] * [1, -1, 1] for b in kinect]  # turned about x: the trunk along z, level in y
    _, record, printed = folder("lying", lying)
    assert record["z_axis_along_minus_y"] == 0 and "points down the data's y axis" not in printed
    # the upright test leaves out joints at 0 (not found): y-down bodies below the camera's axis (y > 0
    # throughout) whose legs were never found are still upside down as a whole, not a wrong order
    legless = [b + [0, 0.8, 0] for b in opencv]
    for b in legless:
        b[:, 12:20] = 0
    _, record, printed = folder("legless", legless)
    assert record["z_axis_along_minus_y"] == 10 and "negate x and y before the import" in printed
    assert "joint order that is not" not in printed
    # a wrong order seen in a second body, the first never found (zeros): named as the order
    head_first = [3, 2, 1, 0] + list(range(4, 20))
    annotations = [_annotation(f"r{i}", i % 2, [np.zeros_like(b), b[:, head_first]]) for i, b in enumerate(kinect)]
    _run(_pickle(tmp_path / "second.pkl", annotations, split), str(tmp_path / "second"), "kinect20")
    printed = capsys.readouterr().out
    assert "so it is the data's joint order that is not kinect20's" in printed and "negate x and y" not in printed
    # a recording of zeros (MSR-Action3D's release has one) has no direction to count: 9 of 9, not 9 of 10
    blank = [b if i != 3 else np.zeros_like(b) for i, b in enumerate(opencv)]
    _, record, printed = folder("blank", blank, "--skip-bad")
    assert record["z_axis_along_minus_y"] == 9 and "warning: in 9 of the 9 recordings the layout's z pair" in printed
    out, record, printed = folder("turned_back", [b * [-1, -1, 1] for b in opencv])
    for got, want in zip(load_splits(out), load_splits(str(tmp_path / "kinect"))):
        np.testing.assert_array_equal(got.data, want.data)
    # root-relative at the hip centre, while kinect20 centres the spine
    _, _, printed = folder("root", [b - b[:, :1] for b in kinect], "--keep-zeros")
    assert (
        "warning: hip centre lies at the origin in every frame of 10 of the 10 recordings, as in root-relative "
        "data; the published normalisation moves a joint at exactly 0 onto the centre (spine), so make hip "
        "centre the layout's centre" in printed
    )
    assert "lies at the origin" not in folder("plain", kinect)[2]


def test_a_joint_never_found_in_camera_coordinates_is_not_taken_for_a_root(tmp_path, capsys):
    facing = REST_POSE[UCLA_JOINTS] * [-1, 1, 1] + [0, 0, 3]  # 3 m in front of the camera
    bodies = [facing + np.random.default_rng(i).normal(0, 0.02, (8, 20, 3)) for i in range(10)]
    for b in bodies:
        b[:, 7] = 0  # the left hand never found
    annotations = [_annotation(f"r{i}", i % 2, [b.astype(np.float32)]) for i, b in enumerate(bodies)]
    split = {"xsub_train": [f"r{i}" for i in range(8)], "xsub_val": ["r8", "r9"]}
    _run(_pickle(tmp_path / "hand.pkl", annotations, split), str(tmp_path / "hand"), "kinect20")
    assert "lies at the origin" not in capsys.readouterr().out


def test_the_frame_checks_meet_empty_recordings_nan_joints_other_roots_and_2d(tmp_path, capsys):
    facing = REST_POSE[UCLA_JOINTS] * [-1, 1, 1]  # kinect20 facing a Kinect
    kinect = [facing + [0, 0, 3] + np.random.default_rng(i).normal(0, 0.02, (8, 20, 3)) for i in range(10)]
    split = {"xsub_train": [f"r{i}" for i in range(8)], "xsub_val": ["r8", "r9"]}

    def folder(name, bodies, layout="kinect20", *flags):
        annotations = [_annotation(f"r{i}", i % 2, list(b[None].astype(np.float32))) for i, b in enumerate(bodies)]
        annotations[0]["keypoint"] = np.zeros((0,) + bodies[0].shape, np.float32)  # nobody found in r0
        annotations[0]["keypoint_score"] = np.zeros((0,) + bodies[0].shape[:2], np.float32)
        out = str(tmp_path / name)
        _run(_pickle(tmp_path / f"{name}.pkl", annotations, split), out, layout, *flags)
        with open(os.path.join(out, "settings.json")) as f:
            return json.load(f), capsys.readouterr().out

    # root-relative at the spine (the top of kinect20's z pair) in OpenCV's frame, two joints NaN
    lifted = [(b - b[:, 1:2]) * [-1, -1, 1] for b in kinect]
    for b in lifted:
        b[:, [7, 11]] = np.nan
    record, printed = folder("spine", lifted, "kinect20", "--keep-zeros")
    assert record["skipped"] == 1 and record["z_axis_along_minus_y"] == 9  # r0 held nobody
    assert "points down the data's y axis" in printed and "lies at the origin" not in printed  # spine: the centre
    # root-relative at the hip centre, two joints NaN: still the hip centre's warning
    record, printed = folder("hips", [(b - b[:, :1]) for b in lifted], "kinect20", "--keep-zeros")
    assert "warning: hip centre lies at the origin in every frame of 9 of the 9 recordings" in printed
    # 2-D: neither check (a joint never found at 0 is no root, and 2-D has no z pair)
    flat = [b[..., :2] * 300 for b in kinect]
    for b in flat:
        b[:, 7] = 0
    layout = tmp_path / "kinect20_2d.json"
    record2d = dict(json.loads(KINECT20.to_json()), name="kinect20_2d", channels=2, z_axis=[], x_axis=[])
    layout.write_text(json.dumps(record2d))
    record, printed = folder("flat", flat, str(layout), "--scale", "none")
    assert "z_axis_along_minus_y" not in record and "lies at the origin" not in printed
