"""The synthetic raw-data generator: real file formats, determinism, bodies, lengths, PKU folders,
pose-estimator pickles."""

import json
import os
import pickle

import numpy as np
import pytest

from data_gen import ntu_gendata, pku_gendata, pyskl_gendata, synthetic
from data_gen.ntu_reader import body_energy, parse_name, read_bodies, select_bodies
from data_gen.synthetic import (
    REST_POSE,
    coco17_points,
    generate_msr,
    generate_ntu,
    generate_pku,
    generate_pose2d,
    generate_ucla,
    main,
    simulate,
)
from dataset.layouts import COCO17
from dataset.processed import load_splits

QUIET = dict(p_missing=0.0, p_third=0.0)


def _files(folder):
    return {n: open(os.path.join(folder, n), "rb").read() for n in sorted(os.listdir(folder))}


def test_deterministic_per_seed(tmp_path):
    kw = dict(classes=2, subjects=2, cameras=1, setups=1)
    generate_ntu(str(tmp_path / "a"), seed=3, **kw)
    generate_ntu(str(tmp_path / "b"), seed=3, **kw)
    generate_ntu(str(tmp_path / "c"), seed=4, **kw)
    a, b, c = (_files(str(tmp_path / k)) for k in "abc")
    assert a == b and list(a) == list(c) and a != c


def test_ntu_files_have_every_field_and_crlf(tmp_path):
    names = generate_ntu(str(tmp_path), classes=3, subjects=1, cameras=2, setups=1, seed=0)
    assert len(names) == 6 and all(parse_name(n) for n in names)
    text = open(tmp_path / names[0], "rb").read().decode()
    lines = text.split("\r\n")
    assert lines[-1] == "" and "\n" not in "".join(lines)
    n_frame, n_body = int(lines[0]), int(lines[1])
    assert n_body >= 1 and len(lines[2].split()) == 10 and lines[3] == "25"
    assert all(len(line.split()) == 12 for line in lines[4:29])
    xyz, frames = read_bodies(str(tmp_path / names[0]))
    assert frames == n_frame and 40 <= frames <= 300


def _present_bodies(path):
    xyz, _ = read_bodies(path)
    return (xyz != 0).any(axis=(2, 3)).sum(axis=0)  # T: bodies present per frame


def test_two_person_actions_have_two_bodies(tmp_path):
    names = generate_ntu(str(tmp_path), action_ids=[1, 50, 120], subjects=1, cameras=1, setups=1, **QUIET)
    counts = {parse_name(n)[4]: _present_bodies(str(tmp_path / n)) for n in names}
    assert (counts[1] == 1).all() and (counts[50] == 2).all() and (counts[120] == 2).all()


def test_lengths_missing_frames_and_ghost_bodies(tmp_path):
    names = generate_ntu(str(tmp_path), classes=60, subjects=1, cameras=1, setups=1, p_missing=1.0, p_third=1.0)
    lengths = []
    for n in names:
        xyz, frames = read_bodies(str(tmp_path / n))
        lengths.append(frames)
        present = (xyz != 0).any(axis=(2, 3))  # 4 x T
        assert not present[:, 0].any() or not present[:, -1].any()  # first or last frames missing
        energy = sorted(body_energy(b) for b in xyz)
        assert present.any(axis=1).sum() == (3 if parse_name(n)[4] >= 50 else 2)
        kept = select_bodies(xyz)
        ghost = min(range(4), key=lambda k: body_energy(xyz[k]) if present[k].any() else np.inf)
        if parse_name(n)[4] >= 50:  # the ghost loses to both actors
            assert energy[-2] > body_energy(xyz[ghost])
            assert not any(np.array_equal(kept[..., m], xyz[ghost].transpose(2, 0, 1)) for m in range(2))
    assert min(lengths) >= 40 and max(lengths) <= 300 and len(set(lengths)) > 20


def test_classes_are_motions_not_poses():
    """Classes 1 and 2 visit the same poses in opposite time order; classes 1 and 3 move other joints."""
    kw = dict(noise=0.0, p_missing=0.0, p_third=0.0, p_partial=0.0)
    one, _ = simulate(1, False, np.random.default_rng(5), **kw)  # B x T x 25 x 3
    two, _ = simulate(2, False, np.random.default_rng(5), **kw)
    three, _ = simulate(3, False, np.random.default_rng(5), **kw)
    np.testing.assert_allclose(two, one[:, ::-1], atol=1e-9)  # same poses, reversed order
    assert np.abs(one - one[:, ::-1]).max() > 0.05  # yet a different motion
    speed = lambda b: np.abs(np.diff(b[0], axis=0)).mean(axis=(0, 2))  # noqa: E731  per-joint speed
    assert np.abs(speed(one) - speed(three)).max() > 0.002


def test_three_d_formats_hold_kinects_camera_space(tmp_path):
    # Kinect's camera space is right-handed with x growing to the sensor's left, so a person facing the
    # sensor has the right shoulder at the larger x (every real NTU, NW-UCLA and MSR-Action3D recording does).
    def right_of_left(left, right):  # ... x 3 each
        return bool((right[..., 0] > left[..., 0]).all())

    for name in generate_ntu(str(tmp_path / "ntu"), classes=3, subjects=2, cameras=3, setups=1, **QUIET):
        if parse_name(name)[1] == 2:  # camera 2 faces the actor (yaw 0 +- 10 degrees)
            xyz, _ = read_bodies(str(tmp_path / "ntu" / name))
            assert right_of_left(xyz[0, :, 4], xyz[0, :, 8]), name  # NTU: 5 left, 9 right shoulder
    for name in generate_ucla(str(tmp_path / "ucla"), classes=3, subjects=1, cameras=3):
        if name.endswith("_v02.json"):
            with open(tmp_path / "ucla" / name) as f:
                skeletons = np.array(json.load(f)["skeletons"])  # T x 20 x 3, kinect20
            assert right_of_left(skeletons[:, 4], skeletons[:, 8]), name
    for name in generate_msr(str(tmp_path / "msr"), classes=3, subjects=1, p_missing=0.0):
        frames = np.loadtxt(tmp_path / "msr" / name).reshape(-1, 20, 4)  # MSR: 1 left, 2 right shoulder
        assert right_of_left(frames[:, 0, :3], frames[:, 1, :3]), name
    generate_pku(str(tmp_path / "pku"), classes=3, subjects=1, cameras=2, actions_per_video=2)
    frames = pku_gendata.read_skeleton(str(tmp_path / "pku" / "skeleton" / "A01N01-M.txt"))  # view M: frontal
    body = np.asarray(frames)[:, :75].reshape(-1, 25, 3)
    assert right_of_left(body[:, 4], body[:, 8])
    # So no converted skeleton stands on its head: in the mirror image the normalisation turned the
    # shoulders of all 18 more than 90 degrees, and stood 2 upside down.
    out = str(tmp_path / "out")
    ntu_gendata.main(["--data-path", str(tmp_path / "ntu"), "--out-folder", out, "--dataset", "ntu60", "--no-progress"])
    with open(os.path.join(out, "settings.json")) as f:
        settings = json.load(f)
    assert settings["upside_down"] == 0 and settings["x_axis_turned_over_90"] == 0


def test_action_ids_out_of_range(tmp_path):
    with pytest.raises(ValueError, match="1..120"):
        generate_ntu(str(tmp_path), classes=121)
    with pytest.raises(ValueError, match="1..51"):
        generate_pku(str(tmp_path), classes=52)


def test_pku_folder(tmp_path):
    main(
        [
            "--format",
            "pku",
            "--out",
            str(tmp_path),
            "--classes",
            "6",
            "--subjects",
            "3",
            "--cameras",
            "2",
            "--actions-per-video",
            "3",
        ]
    )
    videos = sorted(n[:-4] for n in os.listdir(tmp_path / "skeleton"))
    assert videos == ["A01N01-L", "A01N01-M", "A02N01-L", "A02N01-M", "A03N01-L", "A03N01-M"]
    assert pku_gendata.read_split(str(tmp_path / "cross_subject_v2.txt")) == {
        "A01N01-L",
        "A01N01-M",
        "A02N01-L",
        "A02N01-M",
    }
    assert pku_gendata.read_split(str(tmp_path / "cross_view_v2.txt")) == {"A01N01-M", "A02N01-M", "A03N01-M"}
    labels = set()
    for v in videos:
        frames = pku_gendata.read_skeleton(str(tmp_path / "skeleton" / f"{v}.txt"))
        actions = pku_gendata.read_labels(str(tmp_path / "label" / f"{v}.txt"))
        assert len(actions) == 3 and all(0 <= s < e <= len(frames) for _, s, e, _ in actions)
        labels.update(a[0] for a in actions)
    assert labels == set(range(1, 7))


TINY = ["--classes", "1", "--subjects", "1", "--cameras", "1", "--setups", "1"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--format", "ntu", "--classes", "121"], "action ids must lie in 1..120, found 121"),
        (["--format", "msr", "--action-ids", "3", "3"], "action ids must differ, found [3] repeated"),
        (["--format", "pku", "--cameras", "4"], "PKU-MMD has 3 views"),
        (["--format", "ntu", "--noise", "-1"], "--noise must be at least 0"),
        # small in every other count: were the check to fail, 1,000 files, not 240,000
        (["--format", "ntu", "--replications", "1000", *TINY], "--replications must be at most 999"),
        (["--format", "ntu", "--subjects", "0"], "--subjects must be at least 1, found 0"),
        (["--format", "pku", "--actions-per-video", "0"], "--actions-per-video must be at least 1"),
        (["--format", "ntu", "--p-partial", "2"], "--p-partial must be in [0, 1], found 2.0"),
        (["--format", "pose2d", "--p-joint-missing", "-0.1"], "--p-joint-missing must be in [0, 1], found -0.1"),
        (["--format", "pose2d", "--bystanders", "-1"], "--bystanders must be at least 0, found -1"),
        (["--format", "msr", "--bystanders", "1"], "--bystanders: only --format pose2d has them"),
    ],
)
def test_impossible_requests_are_usage_errors_and_write_nothing(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as stop:
        main([*flags, "--out", str(tmp_path / "raw")])
    assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "raw").exists()


def test_an_out_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "raw").write_text("x")
    with pytest.raises(SystemExit) as stop:
        main(["--format", "msr", "--out", str(tmp_path / "raw")])
    assert stop.value.code == 2 and "is a file; expected a folder" in capsys.readouterr().err
    assert (tmp_path / "raw").read_text() == "x"
    with pytest.raises(SystemExit) as stop:  # an unset shell variable: was a FileNotFoundError traceback
        main(["--format", "msr", "--out", ""])
    assert stop.value.code == 2 and "--out is empty; name a folder" in capsys.readouterr().err


def test_an_out_that_holds_files_is_a_usage_error(tmp_path, capsys):
    raw = tmp_path / "raw"  # a real recording with a name the generator would write
    raw.mkdir()
    (raw / "S001C001P001R001A001.skeleton").write_text("real")
    with pytest.raises(SystemExit) as stop:
        main(["--format", "ntu", "--out", str(raw), "--classes", "1", "--subjects", "1"])
    assert stop.value.code == 2 and f"--out {raw} is not empty" in capsys.readouterr().err
    assert os.listdir(raw) == ["S001C001P001R001A001.skeleton"]
    assert (raw / "S001C001P001R001A001.skeleton").read_text() == "real"


def test_ctrl_c_is_one_line(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setitem(synthetic.FORMATS, "msr", (interrupted, (), "MSR-Action3D skeleton files"))
    with pytest.raises(SystemExit) as stop:
        synthetic.main(["--format", "msr", "--out", str(tmp_path / "raw"), "--classes", "1", "--subjects", "1"])
    assert stop.value.code == 130
    assert capsys.readouterr().err.startswith(f"interrupted: {tmp_path / 'raw'} holds the raw files written so far")


def test_coco17_points_of_the_rest_pose_by_hand():
    # Body frame: y up, +x the body's left, the body faces -z; the head at (0, 0.72, 0), the neck below it.
    points = coco17_points(REST_POSE[None])[0]  # 17 x 3
    head = REST_POSE[3]
    expected_face = head + np.array(
        [[0, 0, -0.08], [0.03, 0.03, -0.06], [-0.03, 0.03, -0.06], [0.075, 0, 0], [-0.075, 0, 0]]
    )
    np.testing.assert_allclose(points[:5], expected_face, atol=1e-12)
    for coco, ntu in ((5, 4), (6, 8), (9, 6), (10, 10), (11, 12), (12, 16), (15, 14), (16, 18)):
        np.testing.assert_array_equal(points[coco], REST_POSE[ntu])  # wrists, hips, ankles, left before right
    assert COCO17.joints[5] == "left shoulder" and COCO17.joints[16] == "right ankle"


def _pose_set(tmp_path, **kw):
    kw = dict(dict(classes=3, subjects=4, replications=2, seed=0), **kw)
    names = generate_pose2d(str(tmp_path / "raw"), **kw)
    with open(tmp_path / "raw" / "pose2d.pkl", "rb") as f:
        return names, pickle.load(f)


def test_pose2d_pickle_splits_labels_and_missing_joints(tmp_path):
    names, data = _pose_set(tmp_path, p_joint_missing=0.2, p_frame_empty=0.0, p_missing=0.0)
    assert len(names) == 3 * 4 * 2 and names[0] == "a01_s01_e01"
    assert data["split"]["xsub_train"] == [n for n in names if int(n[5:7]) % 2]  # odd subjects train
    assert data["split"]["xsub_val"] == [n for n in names if int(n[5:7]) % 2 == 0]
    missed = []
    for a in data["annotations"]:
        m, t = a["keypoint"].shape[:2]
        assert a["keypoint"].shape == (m, t, 17, 2) and a["keypoint_score"].shape == (m, t, 17) and m == 1
        assert a["label"] == int(a["frame_dir"][1:3]) - 1 and a["total_frames"] == t
        zero = (a["keypoint"] == 0).all(-1)
        assert np.array_equal(zero, a["keypoint_score"] == 0)  # a missed joint: 0 with score 0
        assert a["keypoint_score"][~zero].min() >= 0.5
        missed.append(zero.ravel())
    share = np.concatenate(missed).mean()
    assert 0.18 < share < 0.22  # of about 100,000 joints


def test_pose2d_with_bystanders_imports_to_the_actor(tmp_path):
    # Nothing missing, 0-2 people standing by: the coco17 import keeps the actor, centred on its left hip,
    # in units of the image's larger side (1920 pixels).
    names, data = _pose_set(tmp_path, p_joint_missing=0.0, p_frame_empty=0.0, p_missing=0.0, bystanders=2)
    assert max(a["keypoint"].shape[0] for a in data["annotations"]) == 3
    actors = {}
    for a in data["annotations"]:
        energy = a["keypoint"].std(axis=1).sum(axis=(1, 2))  # per person: still people barely vary
        actors[a["frame_dir"]] = a["keypoint"][int(np.argmax(energy))]
        assert len(energy) == 1 or np.sort(energy)[-1] > 5 * np.sort(energy)[-2]
    out = str(tmp_path / "out")
    pyskl_gendata.main(
        ["--annotations", str(tmp_path / "raw" / "pose2d.pkl"), "--layout", "coco17", "--train-split", "xsub_train"]
        + ["--val-split", "xsub_val", "--out-folder", out, "--workers", "1"]
    )
    train, val = load_splits(out)
    assert train.layout == COCO17 and train.data.shape[1:] == (2, 300, 17, 1)
    with open(os.path.join(out, "settings.json")) as f:
        settings = json.load(f)
    assert settings["upside_down"] is None and settings["x_axis_turned_over_90"] is None  # 2-D: not turned
    for part in (train, val):
        for i, name in enumerate(part.names):
            actor = actors[name]  # T x 17 x 2
            t = len(actor)
            expected = (actor - actor[:, 11:12]) / 1920  # each frame centred on the left hip
            got = np.asarray(part.data[i, :, :t, :, 0]).transpose(1, 2, 0)
            np.testing.assert_allclose(got, expected, atol=1e-6)


def test_the_import_says_when_people_are_dropped_and_when_scores_suggest_min_score(tmp_path, capsys):
    names, data = _pose_set(tmp_path, bystanders=2)
    crowded = sum(a["keypoint"].shape[0] > 1 for a in data["annotations"])
    rng = np.random.default_rng(0)
    for a in data["annotations"]:  # a top-down estimator's guesses: a coordinate, scored low
        guessed = (a["keypoint_score"] > 0) & (rng.random(a["keypoint_score"].shape) < 0.2)
        a["keypoint_score"][guessed] = 0.1
    path = tmp_path / "guesses.pkl"
    with open(path, "wb") as f:
        pickle.dump(data, f)
    common = ["--annotations", str(path), "--layout", "coco17", "--train-split", "xsub_train", "--workers", "1"]
    pyskl_gendata.main(common + ["--val-split", "xsub_val", "--out-folder", str(tmp_path / "a")])
    out = capsys.readouterr().out
    assert f"warning: {crowded} recording(s) hold more people than the layout's 1" in out and crowded > 0
    assert "of the joints found score below 0.3 in keypoint_score" in out and "--min-score" in out
    settings = json.load(open(tmp_path / "a" / "settings.json"))
    assert settings["more_people_than_layout_bodies"] == crowded
    pyskl_gendata.main(common + ["--val-split", "xsub_val", "--out-folder", str(tmp_path / "b"), "--min-score", "0.3"])
    assert "score below" not in capsys.readouterr().out


def test_recordings_of_different_resolutions_share_one_scale(tmp_path, capsys):
    names, data = _pose_set(tmp_path, classes=1, subjects=2, replications=1, p_joint_missing=0.0, p_frame_empty=0.0)
    first, second = data["annotations"]
    second["keypoint"] = first["keypoint"] / 3  # the same take filmed at a third of the resolution
    second["img_shape"], second["keypoint_score"] = (360, 640), first["keypoint_score"]
    path = tmp_path / "two.pkl"

    def run(out, *flags, annotations=(first, second)):
        with open(path, "wb") as f:
            pickle.dump(dict(data, annotations=list(annotations)), f)
        argv = ["--annotations", str(path), "--layout", "coco17", "--train-split", "xsub_train"]
        pyskl_gendata.main(argv + ["--val-split", "xsub_val", "--out-folder", str(tmp_path / out), *flags])
        train, val = load_splits(str(tmp_path / out))
        return np.asarray(train.data[0]), np.asarray(val.data[0])

    train, val = run("image")  # the default for a 2-D layout
    np.testing.assert_allclose(val, train, atol=1e-6)
    assert np.abs(train).max() < 1  # in units of the image's larger side
    train, val = run("pixels", "--scale", "none")
    np.testing.assert_allclose(val * 3, train, atol=1e-3)
    del second["img_shape"]  # one recording without: its scale is unknown
    with pytest.raises(SystemExit, match="sample 'a01_s02_e01' has no usable \"img_shape\""):
        run("mixed")
    del first["img_shape"]  # none has one: the coordinates stay as stored
    run("stored")
    assert "no recording has an img_shape: the keypoints are kept as stored" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # asked for, it cannot be done
        run("asked", "--scale", "image")
    assert "--scale image: no recording of" in capsys.readouterr().err
    # ragged, and an integer beyond float64: named as the others, not a NumPy traceback
    for bad in ("1080x1920", (True, True), (1080, -1), np.array(5), (1080, [1920]), (10**400, 1920)):
        first["img_shape"] = second["img_shape"] = bad
        with pytest.raises(SystemExit, match=r"sample 'a01_s01_e01': expected \"img_shape\" \(height, width\)"):
            run("bad")
    first["img_shape"], second["img_shape"] = (1080, 1920, 3), (360, 640, 3)  # height, width, channels
    train, val = run("channels")
    np.testing.assert_allclose(val, train, atol=1e-6)
    with pytest.raises(SystemExit):
        pyskl_gendata.main(
            ["--annotations", str(path), "--layout", "kinect20", "--scale", "image"]
            + ["--train-split", "a", "--val-split", "b", "--out-folder", str(tmp_path / "3d")]
        )
    assert "--scale image divides 2-D image coordinates; layout kinect20 is 3-D" in capsys.readouterr().err
