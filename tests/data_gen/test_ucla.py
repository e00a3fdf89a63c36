"""NW-UCLA all_sqe importer on tiny hand-made JSON files, and the synthetic NW-UCLA generator."""

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from data_gen import ucla_gendata
from data_gen.normalize import normalize_loop
from data_gen.synthetic import REST_POSE, UCLA_JOINTS, generate_ucla
from dataset.files import NoSpaceError
from dataset.layouts import KINECT20, read_folder_record
from dataset.processed import load_splits


def _frames(n, seed):
    """n x 20 x 3 coordinates (metres) around (0, 0, 3), distinct per joint and frame."""
    rng = np.random.default_rng(seed)
    return np.round(np.array([0, 0, 3]) + rng.uniform(-0.5, 0.5, size=(n, 20, 3)), 5)


def _write(folder, name, label, skeletons):
    os.makedirs(folder, exist_ok=True)
    record = {"file_name": name[:-5], "skeletons": np.asarray(skeletons).tolist(), "label": label}
    with open(os.path.join(folder, name), "w") as f:
        json.dump(record, f)


def _aligned(n):
    """n frames whose first frame is already normalised (spine at the origin, hip centre -> spine on +z,
    left -> right shoulder on +x), each frame moved by (0.1 t, 1, 2)."""
    base = np.zeros((20, 3))
    base[:, 0] = np.linspace(-0.3, 0.3, 20)
    base[:, 1] = np.linspace(0.2, -0.2, 20) ** 2
    base[0], base[1], base[4], base[8] = (0, 0, -0.3), (0, 0, 0), (-0.2, 0, 0.4), (0.2, 0, 0.4)
    return np.stack([base + [0.1 * t, 1, 2] for t in range(n)])  # n x 20 x 3


def _raw(folder):
    """Five recordings: views 1-3, one of 310 frames, one already aligned; returns {stem: (label, frames)}."""
    files = {
        "a01_s01_e00_v01": (1, _frames(12, 0)),
        "a01_s01_e00_v03": (1, _frames(7, 1)),
        "a12_s02_e01_v02": (10, _frames(310, 2)),
        "a05_s03_e00_v03": (5, _aligned(4)),
        "a04_s01_e02_v02": (4, _frames(1, 3)),
    }
    for stem, (label, frames) in files.items():
        _write(folder, stem + ".json", label, frames)
    return files


def _run(raw, out, *extra):
    ucla_gendata.main(["--data-path", raw, "--out-folder", out, "--workers", "1", "--no-progress", *extra])


def _expected(frames):
    """Literal expectation: the frames padded to 300 and normalised by the per-joint loop in kinect20."""
    data = np.zeros((1, 3, 300, 20, 1), dtype=np.float32)
    clip = frames[:300].transpose(2, 0, 1)  # C x T x V
    data[0, :, : clip.shape[1], :, 0] = clip
    return normalize_loop(data, KINECT20)[0]


def test_split_labels_names_frames_and_values(tmp_path):
    raw, out = str(tmp_path / "all_sqe"), str(tmp_path / "ucla")
    files = _raw(raw)
    _run(raw, out)
    train, val = load_splits(out)
    assert train.names == ["a01_s01_e00_v01", "a04_s01_e02_v02", "a12_s02_e01_v02"]  # views 1 and 2
    assert val.names == ["a01_s01_e00_v03", "a05_s03_e00_v03"]  # view 3
    assert train.labels.tolist() == [0, 3, 9] and val.labels.tolist() == [0, 4]
    assert train.num_frame.tolist() == [12, 1, 310] and val.num_frame.tolist() == [7, 4]
    assert train.layout == KINECT20 and train.num_class == 10 and train.data.shape == (3, 3, 300, 20, 1)
    assert read_folder_record(out) == (KINECT20, 10, "nw_ucla", "cross_view")
    for split in (train, val):
        for i, name in enumerate(split.names):
            np.testing.assert_allclose(split.data[i], _expected(files[name][1]), rtol=0, atol=2e-6)
    # Already aligned: each frame only loses its spine, (0.1 t, 1, 2); the empty tail repeats frames 0-3.
    aligned = _aligned(4) - _aligned(4)[:, 1:2]  # T x V x C
    got = val.data[1][:, :, :, 0].transpose(1, 2, 0)  # 300 x V x C
    np.testing.assert_allclose(got[:4], aligned, atol=1e-6)
    np.testing.assert_allclose(got[4:8], aligned, atol=1e-6)
    assert sorted(os.listdir(out)) == sorted(
        [".claim", "layout.json", "settings.json", "skipped.txt"]
        + [f"{p}_{k}" for p in ("train", "val") for k in ("data_joint.npy", "num_frame.npy", "label.pkl")]
    )
    settings = json.load(open(os.path.join(out, "settings.json")))
    assert settings["counts"] == {"train": 3, "val": 2} and settings["layout"] == "kinect20"


@pytest.mark.parametrize("module", [False, True])
def test_runs_as_a_script_and_as_a_module(tmp_path, module):
    raw, out = str(tmp_path / "all_sqe"), str(tmp_path / "ucla")
    _raw(raw)
    command = ["-m", "data_gen.ucla_gendata"] if module else [ucla_gendata.__file__]
    subprocess.run(
        [sys.executable, *command, "--data-path", raw, "--out-folder", out, "--workers", "2", "--no-progress"],
        check=True,
        capture_output=True,
        cwd=str(tmp_path),
    )
    assert [len(s) for s in load_splits(out)] == [3, 2]


@pytest.mark.parametrize(
    "content, found",
    [
        (b'{"label": 3, "skeletons": [[[0, 0, 1]', "not JSON: Expecting"),
        (b'{"label": 3, "skeletons": []}\n\xff', "line 2: expected UTF-8 text, found byte 0xff"),
        (
            b'{"file_name": "x", "skeletons": [[[0, 0, 1]]]}',
            "expected a JSON object with \"label\" and \"skeletons\", found keys \\['file_name', 'skeletons'\\]",
        ),
        (b"[1, 2]", 'expected a JSON object with "label" and "skeletons", found a JSON list'),
        (b'{"label": 11, "skeletons": []}', '"label": expected an action label, an integer in 1..10, found 11'),
        (b'{"label": 0, "skeletons": []}', "an integer in 1..10, found 0"),
        (b'{"label": "3", "skeletons": []}', 'an integer in 1..10, found "3"'),
        (b'{"label": true, "skeletons": []}', "an integer in 1..10, found true"),  # JSON true is no label 1
        (b'{"label": 3, "skeletons": []}', '"skeletons": expected a list of frames of 20 joints, found no frame'),
        ('{"label": 3, "skeletons": [F, F, G]}', '"skeletons": frame 3: expected 20 joints, found 19 joints'),
        ('{"label": 3, "skeletons": [F, H]}', r"frame 2, joint 20: expected 3 numbers \(x y z\), found \[0.5, 0.5\]"),
        (
            '{"label": 3, "skeletons": [F, N]}',
            r"frame 2, joint 20: expected 3 numbers \(x y z\), found \[0.5, null, 1\]",
        ),
        (
            '{"label": 3, "skeletons": [F, F, I]}',
            r"frame 3: expected x y z coordinates that are finite and within "
            r"\+-10000 \(metres\), found nan",
        ),
        ('{"label": 3, "skeletons": [F, A]}', "frame 2: expected x y z coordinates .* found 100000"),
        (
            '{"label": 3, "skeletons": [F, T]}',
            r"frame 2, joint 20: expected 3 numbers \(x y z\), found \[0.5, true, 1\]",
        ),
        (
            '{"label": 3, "skeletons": [X, F]}',
            r"frame 1, joint 20: expected 3 numbers \(x y z\), found \[false, 0.5, 1\]",
        ),
        pytest.param(
            b'{"label": 3, "skeletons": ' + b"[" * 100000 + b"]" * 100000 + b"}",
            "expected JSON nested 4 levels deep .*, found nesting too deep to read",
            id="nested 100000 deep",
        ),
    ],
)
def test_bad_file_names_the_file_and_is_skipped_with_skip_bad(tmp_path, content, found, tree):
    raw, out = str(tmp_path / "all_sqe"), str(tmp_path / "ucla")
    _raw(raw)
    _run(raw, out)
    before = tree(out)
    if isinstance(content, str):
        frame = json.dumps([[0.5, 0.5, 1]] * 20)
        content = (
            content.replace("F", frame)
            .replace("G", json.dumps([[0.5, 0.5, 1]] * 19))
            .replace("H", frame.replace("[0.5, 0.5, 1]]", "[0.5, 0.5]]"))
            .replace("N", frame.replace("[0.5, 0.5, 1]]", "[0.5, null, 1]]"))
            .replace("I", frame.replace("[0.5, 0.5, 1]]", "[NaN, 0.5, 1]]"))
            .replace("A", frame.replace("[0.5, 0.5, 1]]", "[0.5, 100000.0, 1]]"))
            .replace("T", frame.replace("[0.5, 0.5, 1]]", "[0.5, true, 1]]"))
            .replace("X", frame.replace("[0.5, 0.5, 1]]", "[false, 0.5, 1]]"))
            .encode()
        )
    bad = os.path.join(raw, "a03_s02_e00_v01.json")
    open(bad, "wb").write(content)
    with pytest.raises(SystemExit, match=rf"{bad}: .*{found}") as info:
        _run(raw, out)
    assert info.value.code.startswith(f"error: {bad}: ")  # a message: exit status 1
    assert tree(out) == before  # earlier outputs kept, no temporaries
    _run(raw, out, "--skip-bad")
    assert open(os.path.join(out, "skipped.txt")).read().startswith(f"{bad}\tbad: {bad}: ")
    train, val = load_splits(out)
    assert "a03_s02_e00_v01" not in train.names and len(train) == 3 and len(val) == 2


def test_a_name_ending_in_a_newline_is_outside_the_pattern():  # "$" matched before a final "\n"
    with pytest.raises(ValueError, match="is not an NW-UCLA all_sqe file name"):
        ucla_gendata.view_of("a01_s01_e00_v01.json\n")
    assert ucla_gendata.view_of("a01_s01_e00_v01.json") == 1


@pytest.mark.parametrize(
    "name, found",
    [
        ("a01_s01_v01.json", "'a01_s01_v01.json' is not an NW-UCLA all_sqe file name; expected aAA_sSS_eEE_vVV.json"),
        ("README.txt", "'README.txt' is not an NW-UCLA all_sqe file name"),
        ("a01_s01_e00_v04.json", "'a01_s01_e00_v04.json': view 4; NW-UCLA has views 1, 2 and 3"),
    ],
)
def test_name_outside_the_pattern_is_an_error_or_skipped(tmp_path, name, found):
    raw, out = str(tmp_path / "all_sqe"), str(tmp_path / "ucla")
    _raw(raw)
    _write(raw, name, 2, _frames(5, 9))
    with pytest.raises(SystemExit, match=f"error: {raw}: {found}"):
        _run(raw, out)
    assert not os.path.exists(out)  # before any work
    _run(raw, out, "--skip-bad")
    skipped = open(os.path.join(out, "skipped.txt")).read().splitlines()
    assert len(skipped) == 1 and skipped[0].startswith(f"{os.path.join(raw, name)}\tfile name: {found}")
    assert [len(s) for s in load_splits(out)] == [3, 2]


def test_stale_temporaries_are_removed_and_a_rerun_replaces_outputs(tmp_path, capsys):
    raw, out = str(tmp_path / "all_sqe"), str(tmp_path / "ucla")
    _raw(raw)
    os.makedirs(out)
    stale = os.path.join(out, ".train_data_joint.npy.999999-0123abcd.tmp.npy")  # a killed run's temp_path
    open(stale, "wb").write(b"left by a killed run")
    _run(raw, out)
    assert not os.path.exists(stale)
    assert [n for n in os.listdir(out) if n.startswith(".")] == [".claim"]
    assert "earlier conversion" not in capsys.readouterr().out
    os.remove(os.path.join(raw, "a01_s01_e00_v01.json"))
    _run(raw, out)
    assert load_splits(out)[0].names == ["a04_s01_e02_v02", "a12_s02_e01_v02"]
    assert f"note: {out} held an earlier conversion, which this one replaced" in capsys.readouterr().out


def test_data_path_that_is_not_the_all_sqe_folder(tmp_path):
    raw = str(tmp_path / "all_sqe")
    _raw(raw)
    with pytest.raises(
        SystemExit,
        match=rf"no NW-UCLA .json files in {tmp_path}; it holds the folders all_sqe: "
        r"point --data-path at all_sqe",
    ):
        _run(str(tmp_path), str(tmp_path / "out"))
    with pytest.raises(SystemExit, match=r"is not a folder \(extract the archive first\)"):
        _run(str(tmp_path / "nw_ucla_all_sqe.tar.gz"), str(tmp_path / "out"))
    with pytest.raises(SystemExit) as info:
        _run(raw, raw)
    assert info.value.code == 2  # usage error: would write into the raw folder


def test_an_empty_out_folder_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:  # was "error: : cannot write there"
        _run(str(tmp_path / "all_sqe"), "")
    assert caught.value.code == 2 and "error: --out-folder is empty" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--workers", "--chunk"])
@pytest.mark.parametrize("value", ["0", "-2", "-5", "two"])
def test_workers_and_chunk_below_one_are_usage_errors(tmp_path, capsys, flag, value):
    # add_conversion_options: the parser every converter shares
    raw, out = str(tmp_path / "all_sqe"), str(tmp_path / "ucla")
    _raw(raw)
    with pytest.raises(SystemExit) as info:
        ucla_gendata.main(["--data-path", raw, "--out-folder", out, "--no-progress", flag, value])
    assert info.value.code == 2  # usage error, before any work
    assert f"argument {flag}: expected an integer >= 1, found '{value}'" in capsys.readouterr().err
    assert not os.path.exists(out)


def test_synthetic_ucla_files(tmp_path, tree):
    names = generate_ucla(str(tmp_path / "a"), classes=3, subjects=2, cameras=3, seed=5)
    generate_ucla(str(tmp_path / "b"), classes=3, subjects=2, cameras=3, seed=5)
    assert len(names) == 3 * 2 * 3 and names[0] == "a01_s01_e00_v01.json" and "a03_s02_e00_v03.json" in names
    assert tree(str(tmp_path / "a")) == tree(str(tmp_path / "b"))  # deterministic
    record = json.load(open(tmp_path / "a" / "a02_s01_e00_v02.json"))
    assert set(record) == {"file_name", "label", "skeletons"} and record["file_name"] == "a02_s01_e00_v02"
    assert record["label"] == 2
    skeletons = np.array(record["skeletons"])  # T x 20 x 3
    assert skeletons.shape[1:] == (20, 3) and 40 <= len(skeletons) <= 300
    # The NTU rest pose (y up, +x the body's left) through UCLA_JOINTS reads as the kinect20 joints.
    rest = dict(zip(KINECT20.joints, REST_POSE[UCLA_JOINTS]))
    heights = [rest[j][1] for j in ("hip centre", "spine", "shoulder centre", "head")]
    assert heights == sorted(heights) and len(set(heights)) == 4
    for side, sign in (("left", 1), ("right", -1)):
        for limb in ("shoulder", "elbow", "wrist", "hand", "hip", "knee", "ankle", "foot"):
            assert sign * rest[f"{side} {limb}"][0] > 0
    assert rest["left hand"][1] < rest["left wrist"][1] < rest["left elbow"][1] < rest["left shoulder"][1]
    assert rest["right foot"][1] < rest["right knee"][1] < rest["right hip"][1]
    out = str(tmp_path / "ucla")
    _run(str(tmp_path / "a"), out)
    train, val = load_splits(out)
    assert (len(train), len(val)) == (12, 6) and sorted(set(val.labels.tolist())) == [0, 1, 2]
    with pytest.raises(ValueError, match="NW-UCLA has 10 classes; got classes=11"):
        generate_ucla(str(tmp_path / "c"), classes=11)


def test_full_disk_names_the_file_and_keeps_earlier_outputs(tmp_path, monkeypatch, tree):
    raw, out = str(tmp_path / "all_sqe"), str(tmp_path / "ucla")
    _raw(raw)
    _run(raw, out)
    before = tree(out)

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(
        SystemExit,
        match=rf"error: no space left on {out}/train_data_joint.npy: .*the partial file "
        r"was removed and files written earlier are unchanged",
    ) as info:
        _run(raw, out)
    assert isinstance(info.value.__context__, NoSpaceError)
    assert tree(out) == before
