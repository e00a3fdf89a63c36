"""MSR-Action3D importer on tiny hand-written text files, and the synthetic MSR-Action3D generator."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from data_gen import msr_gendata
from data_gen.normalize import normalize_loop
from data_gen.synthetic import MSR_JOINTS, UCLA_JOINTS, generate_msr
from data_gen.synthetic import main as synthetic_main
from dataset.layouts import KINECT20, read_folder_record
from dataset.processed import load_split, load_splits

# MSR-Action3D's joints, 1-based file order, by their kinect20 names.
MSR_NAMES = (
    "left shoulder",
    "right shoulder",
    "shoulder centre",
    "spine",
    "left hip",
    "right hip",
    "hip centre",
    "left elbow",
    "right elbow",
    "left wrist",
    "right wrist",
    "left hand",
    "right hand",
    "left knee",
    "right knee",
    "left ankle",
    "right ankle",
    "left foot",
    "right foot",
    "head",
)
ZERO_LINE = "0.000000 0.000000 0.000000 0.000000"


def _frames(n, seed):
    """n x 20 x 3 coordinates (metres, MSR joint order) around (0, 0, 3), distinct per joint and frame."""
    rng = np.random.default_rng(seed)
    return np.round(np.array([0, 0, 3]) + rng.uniform(-0.5, 0.5, size=(n, 20, 3)), 6)


def _write(folder, stem, frames):
    """An MSR file of ``frames`` (T x 20 x 3, MSR order; None: an all-zero frame), confidences varying."""
    os.makedirs(folder, exist_ok=True)
    confidence = ("1.000000", "0", "0.459135")
    lines = [
        ZERO_LINE if frame is None else "%f %f %f %s" % (*frame[k], confidence[k % 3])
        for frame in frames
        for k in range(20)
    ]
    path = os.path.join(folder, stem + "_skeleton3D.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _raw(folder):
    """Six recordings of subjects 1-4, 9 and 10, one of 310 frames; returns {stem: frames}."""
    files = {
        "a01_s01_e01": _frames(12, 0),
        "a01_s02_e01": _frames(7, 1),
        "a20_s10_e03": _frames(3, 2),
        "a05_s03_e02": _frames(310, 3),
        "a12_s04_e01": _frames(1, 4),
        "a03_s09_e01": _frames(5, 5),
    }
    for stem, frames in files.items():
        _write(folder, stem, frames)
    return files


def _run(raw, out, *extra):
    msr_gendata.main(["--data-path", raw, "--out-folder", out, "--workers", "1", "--no-progress", *extra])


def _expected(frames_msr):
    """Literal expectation: MSR frames in kinect20 order (by the joint names), padded to 300 and normalised
    by the per-joint loop."""
    order = [MSR_NAMES.index(name) for name in KINECT20.joints]
    data = np.zeros((1, 3, 300, 20, 1), dtype=np.float32)
    clip = frames_msr[:300][:, order].transpose(2, 0, 1)  # C x T x V
    data[0, :, : clip.shape[1], :, 0] = clip
    return normalize_loop(data, KINECT20)[0]


def test_joints_are_put_in_the_kinect20_order(tmp_path):
    # Joint k (1-based, MSR order) of frame t lies at x = k / 10, z = 3 + t / 100.
    frames = _frames(4, 7)
    frames[:, :, 0] = np.arange(1, 21) / 10
    frames[:, :, 2] = 3 + np.arange(4)[:, None] / 100
    path = _write(str(tmp_path / "raw"), "a02_s01_e01", frames)
    coords = msr_gendata.read_skeletons(path)  # T x 20 x 3, not normalised
    by_hand = {
        "hip centre": 7,
        "spine": 4,
        "shoulder centre": 3,
        "head": 20,
        "left shoulder": 1,
        "left elbow": 8,
        "left wrist": 10,
        "left hand": 12,
        "right shoulder": 2,
        "right elbow": 9,
        "right wrist": 11,
        "right hand": 13,
        "left hip": 5,
        "left knee": 14,
        "left ankle": 16,
        "left foot": 18,
        "right hip": 6,
        "right knee": 15,
        "right ankle": 17,
        "right foot": 19,
    }
    assert coords.shape == (4, 20, 3)
    np.testing.assert_allclose(coords[:, :, 0], np.tile([by_hand[j] / 10 for j in KINECT20.joints], (4, 1)))
    np.testing.assert_allclose(coords[:, :, 2], np.broadcast_to(3 + np.arange(4)[:, None] / 100, (4, 20)))
    assert all(MSR_NAMES[by_hand[j] - 1] == j for j in KINECT20.joints)
    out = str(tmp_path / "msr")
    _run(str(tmp_path / "raw"), out)
    np.testing.assert_allclose(load_split(out, "train").data[0], _expected(frames), rtol=0, atol=2e-6)


def test_split_labels_names_frames_and_values(tmp_path, capsys):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "msr")
    files = _raw(raw)
    _run(raw, out)
    # a05_s03_e02 has 310 frames: the published 300 are kept, and the conversion says so
    captured = capsys.readouterr()
    assert "1 recording(s) are longer than 300 frames; only their first 300 are kept" in captured.out + captured.err
    assert json.loads(open(os.path.join(out, "settings.json")).read())["longer_than_max_frame"] == 1
    train, val = load_splits(out)
    assert train.names == ["a01_s01_e01", "a03_s09_e01", "a05_s03_e02"]  # odd subjects
    assert val.names == ["a01_s02_e01", "a12_s04_e01", "a20_s10_e03"]  # even subjects
    assert train.labels.tolist() == [0, 2, 4] and val.labels.tolist() == [0, 11, 19]
    assert train.num_frame.tolist() == [12, 5, 310] and val.num_frame.tolist() == [7, 1, 3]
    assert train.layout == KINECT20 and train.num_class == 20 and train.data.shape == (3, 3, 300, 20, 1)
    assert read_folder_record(out) == (KINECT20, 20, "msr_action3d", "cross_subject")
    for split in (train, val):
        for i, name in enumerate(split.names):
            np.testing.assert_allclose(split.data[i], _expected(files[name]), rtol=0, atol=2e-6)
    settings = json.load(open(os.path.join(out, "settings.json")))
    assert settings["counts"] == {"train": 3, "val": 3} and settings["layout"] == "kinect20"
    assert open(os.path.join(out, "skipped.txt")).read() == ""


def test_zero_frames_are_removed_and_an_all_zero_file_is_bad(tmp_path, capsys, tree):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "msr")
    _raw(raw)
    frames = _frames(6, 8)
    frames[2, 5] = 0  # one joint at 0 leaves the frame in
    path = _write(raw, "a07_s05_e01", [None, None, *frames[:3], None, *frames[3:], None, None, None])
    _run(raw, out)
    assert f"warning: {path}: removed 6 of 12 frames, all zeros" in capsys.readouterr().out
    train, _ = load_splits(out)
    i = train.names.index("a07_s05_e01")
    assert train.num_frame[i] == 6
    np.testing.assert_allclose(train.data[i], _expected(frames), rtol=0, atol=2e-6)
    before = tree(out)
    empty = _write(raw, "a08_s06_e01", [None] * 3)
    with pytest.raises(SystemExit, match=rf"{empty}: all 3 frames are all zeros"):
        _run(raw, out)
    assert tree(out) == before
    _run(raw, out, "--skip-bad")
    assert open(os.path.join(out, "skipped.txt")).read().startswith(f"{empty}\tbad: {empty}: all 3 frames")
    assert "a08_s06_e01" not in load_splits(out)[1].names


@pytest.mark.parametrize(
    "lines, found",
    [
        ({3: "0.1 0.2 0.3"}, r"line 4: expected a joint line of 4 numbers \(x y z confidence\), found '0.1 0.2 0.3'"),
        ({22: "0.1 abc 0.3 1"}, "line 23: expected a joint line of 4 numbers .*found '0.1 abc 0.3 1'"),
        ({39: "0.1 0.2 0.3 1 5"}, "line 40: expected a joint line of 4 numbers"),
        ({19: ""}, "line 20: expected a joint line of 4 numbers .*found ''"),
        ({7: "0.1 0.2 0.3", 8: "0.1 0.2 0.3 1 5"}, "line 8: expected a joint line of 4 numbers .*found '0.1 0.2 0.3'"),
        (
            {0: "0.1 nan 0.3 1"},
            r"line 1: expected x y z coordinates that are finite and within \+-10000 \(metres\), "
            "found nan in '0.1 nan 0.3 1'",
        ),
        ({21: "0.1 0.2 -1e5 1"}, "line 22: expected x y z coordinates .*found -100000"),
        (
            {40: "0.1 0.2 0.3 1"},
            r"41 lines: expected a multiple of 20 \(20 joint lines a frame\); the last frame, "
            "from line 41, has 1",
        ),
        ({}, "empty file: expected frames of 20 lines of 4 numbers"),
        ({5: b"0.1 0.2 0.3 \xb5"}, r"line 6: expected ASCII text, found byte 0xb5"),
    ],
)
def test_bad_line_names_the_file_and_line_and_is_skipped_with_skip_bad(tmp_path, lines, found, tree):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "msr")
    _raw(raw)
    _run(raw, out)
    before = tree(out)
    bad = _write(raw, "a03_s01_e02", _frames(2, 9))
    text = open(bad, "rb").read().splitlines()
    for k, line in lines.items():
        text[k : k + 1] = [line if isinstance(line, bytes) else line.encode()]
    open(bad, "wb").write(b"\n".join(text) + b"\n" if lines else b"")
    with pytest.raises(SystemExit, match=rf"{bad}: {found}"):
        _run(raw, out)
    assert tree(out) == before  # earlier outputs kept, no temporaries
    _run(raw, out, "--skip-bad")
    assert open(os.path.join(out, "skipped.txt")).read().startswith(f"{bad}\tbad: {bad}: ")
    assert [len(s) for s in load_splits(out)] == [3, 3]


@pytest.mark.parametrize(
    "name, found",
    [
        (
            "a01_s01_skeleton3D.txt",
            "'a01_s01_skeleton3D.txt' is not an MSR-Action3D skeleton file name; expected aAA_sSS_eEE_skeleton3D.txt",
        ),
        ("README.txt", "'README.txt' is not an MSR-Action3D skeleton file name"),
        ("a21_s01_e01_skeleton3D.txt", "'a21_s01_e01_skeleton3D.txt': action 21; MSR-Action3D has actions 1..20"),
        ("a00_s01_e01_skeleton3D.txt", "'a00_s01_e01_skeleton3D.txt': action 0; MSR-Action3D has actions 1..20"),
        ("a01_s11_e01_skeleton3D.txt", "'a01_s11_e01_skeleton3D.txt': subject 11; MSR-Action3D has subjects 1..10"),
        ("a01_s00_e01_skeleton3D.txt", "'a01_s00_e01_skeleton3D.txt': subject 0; MSR-Action3D has subjects 1..10"),
    ],
)
def test_name_outside_the_pattern_is_an_error_or_skipped(tmp_path, name, found):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "msr")
    _raw(raw)
    os.rename(_write(raw, "x", _frames(2, 9)), os.path.join(raw, name))
    with pytest.raises(SystemExit, match=f"error: {raw}: {found}"):
        _run(raw, out)
    assert not os.path.exists(out)  # before any work
    _run(raw, out, "--skip-bad")
    skipped = open(os.path.join(out, "skipped.txt")).read().splitlines()
    assert len(skipped) == 1 and skipped[0].startswith(f"{os.path.join(raw, name)}\tfile name: {found}")
    assert [len(s) for s in load_splits(out)] == [3, 3]


def test_what_only_looks_like_a_recording_is_named(tmp_path, capsys):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "msr")
    _raw(raw)
    # a name ending in a newline: a pattern ending in "$" took it, as the sample 'a02_s01_e01_'
    odd = os.path.join(raw, "a02_s01_e01_skeleton3D.txt\n")
    os.rename(_write(raw, "x", _frames(2, 9)), odd)
    with pytest.raises(SystemExit) as caught:
        _run(raw, out)
    assert "'a02_s01_e01_skeleton3D.txt\\n' is not an MSR-Action3D skeleton file name" in str(caught.value)
    # a name whose bytes are not UTF-8: skipped and listed as \xNN (writing skipped.txt failed at the end)
    os.rename(odd, os.path.join(raw, os.fsdecode(b"README\xff.txt")))
    _run(raw, out, "--skip-bad")
    assert "skipping: 'README\\udcff.txt' is not an MSR-Action3D" in capsys.readouterr().out
    listed = open(os.path.join(out, "skipped.txt"), encoding="utf-8").read()
    assert listed.startswith(f"{raw}/README\\xff.txt\tfile name: 'README\\udcff.txt' is not")
    # a folder named as a recording was passed over in silence: now a bad file, named
    os.remove(os.path.join(raw, os.fsdecode(b"README\xff.txt")))
    os.mkdir(os.path.join(raw, "a02_s02_e01_skeleton3D.txt"))
    with pytest.raises(SystemExit, match=r"Is a directory: '.*/raw/a02_s02_e01_skeleton3D\.txt'"):
        _run(raw, out + "2")
    # a FIFO of a recording's name: its opening waited for a writer forever, --skip-bad or not
    os.rmdir(os.path.join(raw, "a02_s02_e01_skeleton3D.txt"))
    os.mkfifo(os.path.join(raw, "a02_s02_e01_skeleton3D.txt"))

    def hung(*args):
        raise TimeoutError("the conversion waited on the FIFO")

    before = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        with pytest.raises(SystemExit, match=r"a02_s02_e01_skeleton3D\.txt: not a regular file \(a FIFO"):
            _run(raw, out + "2")
        _run(raw, out + "2", "--skip-bad")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)
    assert "a02_s02_e01_skeleton3D.txt: not a regular file" in open(os.path.join(out + "2", "skipped.txt")).read()


def test_file_list_restricts_and_a_listed_name_needs_its_file(tmp_path, capsys):
    raw, out, listing = str(tmp_path / "raw"), str(tmp_path / "msr"), str(tmp_path / "files_used.txt")
    _raw(raw)
    open(os.path.join(raw, "README.txt"), "w").write("not a recording\n")  # not listed: left out
    open(listing, "w").write("a01_s01_e01\na20_s10_e03  a05_s03_e02_skeleton3D.txt\n\ta12_s04_e01\n")  # stems or names
    _run(raw, out, "--file-list", listing)
    train, val = load_splits(out)
    assert train.names == ["a01_s01_e01", "a05_s03_e02"] and val.names == ["a12_s04_e01", "a20_s10_e03"]
    assert "not_in_file_list: 3" in capsys.readouterr().out
    # a list piped in (--file-list <(ls raw | head)) is read as a file is: only recordings must be files
    read_end, write_end = os.pipe()
    os.write(write_end, b"a01_s01_e01 a12_s04_e01\n")
    os.close(write_end)
    try:
        _run(raw, str(tmp_path / "piped"), "--file-list", f"/dev/fd/{read_end}")
    finally:
        os.close(read_end)
    assert [s.names for s in load_splits(str(tmp_path / "piped"))] == [["a01_s01_e01"], ["a12_s04_e01"]]
    assert json.load(open(os.path.join(out, "settings.json")))["files"] == 4
    open(listing, "a").write("a02_s02_e02 a09_s01_e01\n")
    with pytest.raises(
        SystemExit,
        match=rf"error: --file-list {listing} names a02_s02_e02, but {raw} has no "
        r"a02_s02_e02_skeleton3D.txt \(and 1 more\)",
    ):
        _run(raw, out, "--file-list", listing, "--skip-bad")
    with pytest.raises(SystemExit, match=f"error: --file-list {tmp_path}/none.txt: No such file"):
        _run(raw, out, "--file-list", str(tmp_path / "none.txt"))
    open(listing, "w").write(" \n\t\n")  # a list of nothing would import nothing
    with pytest.raises(SystemExit, match=f"error: --file-list {listing} is empty"):
        _run(raw, str(tmp_path / "empty"), "--file-list", listing)
    assert not os.path.exists(tmp_path / "empty")


def test_data_path_that_is_not_the_skeleton_folder(tmp_path):
    raw = str(tmp_path / "msr_action3d_real3d")
    _raw(raw)
    with pytest.raises(
        SystemExit,
        match=rf"no MSR-Action3D \*_skeleton3D.txt files in {tmp_path}; it holds the "
        "folders msr_action3d_real3d",
    ):
        _run(str(tmp_path), str(tmp_path / "out"))
    with pytest.raises(SystemExit, match=r"is not a folder \(extract the archive first\)"):
        _run(str(tmp_path / "MSRAction3DSkeletonReal3D.rar"), str(tmp_path / "out"))
    with pytest.raises(SystemExit) as info:
        _run(raw, raw)
    assert info.value.code == 2  # usage error: would write into the raw folder


@pytest.mark.parametrize("module", [False, True])
def test_synthetic_msr_files_import_end_to_end_as_a_script_and_as_a_module(tmp_path, module, tree):
    # The generator's joints, through the NW-UCLA generator's kinect20 joints, carry the MSR names.
    assert [KINECT20.joints[UCLA_JOINTS.index(j)] for j in MSR_JOINTS] == list(MSR_NAMES)
    raw = str(tmp_path / "raw")
    names = generate_msr(raw, classes=3, subjects=4, seed=5, p_missing=0.5)
    assert len(names) == 12 and names[0] == "a01_s01_e01_skeleton3D.txt" and "a03_s04_e01_skeleton3D.txt" in names
    synthetic_main(
        [
            "--format",
            "msr",
            "--out",
            str(tmp_path / "again"),
            "--classes",
            "3",
            "--subjects",
            "4",
            "--seed",
            "5",
            "--p-missing",
            "0.5",
        ]
    )
    assert tree(raw) == tree(str(tmp_path / "again"))  # deterministic
    frames = [msr_gendata.read_skeletons(os.path.join(raw, n)) for n in names]
    assert any(not f[0].any() or not f[-1].any() for f in frames)  # some missing frames, written as zeros
    out = str(tmp_path / "msr")
    command = ["-m", "data_gen.msr_gendata"] if module else [msr_gendata.__file__]
    run = subprocess.run(
        [sys.executable, *command, "--data-path", raw, "--out-folder", out, "--workers", "2", "--no-progress"],
        check=True,
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
    )
    assert "warning: " in run.stdout and "frames, all zeros" in run.stdout
    train, val = load_splits(out)
    assert (len(train), len(val)) == (6, 6) and sorted(set(val.labels.tolist())) == [0, 1, 2]
    assert train.num_frame.tolist() == [
        int(f.any(axis=(1, 2)).sum()) for f, n in zip(frames, names) if "_s01_" in n or "_s03_" in n
    ]
