"""PKU-MMD II: label files (one action included), slicing, splits and pku_gendata end to end."""

import json
import os
import re
import shutil

import numpy as np
import pytest

from data_gen import pku_gendata
from data_gen.normalize import normalize_loop
from data_gen.ntu_reader import SkeletonFileError
from dataset.layouts import NTU25, read_folder_record
from dataset.processed import load_split


def _video(frames, seed):
    """F x 150 values; body 2 zero in the first half (absent)."""
    rng = np.random.default_rng(seed)
    v = np.round(rng.uniform(-1, 1, size=(frames, 150)), 4)
    v[: frames // 2, 75:] = 0
    return v


def _raw(folder, labels):
    """Write a PKU folder; labels = {video: label file text}; returns the skeleton arrays."""
    os.makedirs(os.path.join(folder, "skeleton"))
    os.makedirs(os.path.join(folder, "label"))
    arrays = {}
    for k, (video, text) in enumerate(sorted(labels.items())):
        arrays[video] = _video(30, k)
        np.savetxt(os.path.join(folder, "skeleton", video + ".txt"), arrays[video], fmt="%.4f")
        with open(os.path.join(folder, "label", video + ".txt"), "w") as f:
            f.write(text)
    with open(os.path.join(folder, "cross_subject_v2.txt"), "w") as f:
        f.write("Training videos: \nA01N01-L, A01N01-M\nValidataion videos: \nA02N01-L\n")
    with open(os.path.join(folder, "cross_view_v2.txt"), "w") as f:
        f.write("Training videos: \nA01N01-M, A02N01-L\nValidataion videos: \nA01N01-L\n")
    return arrays


LABELS = {"A01N01-L": "3,2,10,1\n51,12,30,2\n", "A01N01-M": "7,0,5,1", "A02N01-L": "1,5,25,1\n\n"}


def test_label_file_with_a_single_action(tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("7,0,5,1")
    assert [a[:3] for a in pku_gendata.read_labels(str(path))] == [(7, 0, 5)]


@pytest.mark.parametrize(
    "text, found",
    [
        ("3,2\n", 'line 1: expected "label,start,end'),
        ("3,2,10,1\n0,1,4,1\n", "line 2: expected a label in 1..51"),
        ("3,9,9,1\n", "start < end"),
        ("x,1,2,1\n", "line 1"),
        ("1.5,0,10,1\n", "line 1: expected .* with integer label, start and end"),
    ],
)
def test_bad_label_lines(tmp_path, text, found):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(SkeletonFileError, match=found):
        pku_gendata.read_labels(str(path))


def test_slicing_and_layout(tmp_path):
    arrays = _raw(str(tmp_path), LABELS)
    root = str(tmp_path)
    actions = pku_gendata.read_labels(os.path.join(root, "label", "A01N01-L.txt"))
    out = pku_gendata.read_video_samples(
        os.path.join(root, "skeleton", "A01N01-L.txt"), os.path.join(root, "label", "A01N01-L.txt"), actions
    )
    assert [n for _, n in out] == [8, 18]
    data, _ = out[1]  # frames [12, 30): C x T x V x M
    raw = arrays["A01N01-L"]
    for t, f in ((0, 12), (17, 29)):
        for m in range(2):
            for v in (0, 24):
                np.testing.assert_allclose(data[:, t, v, m], raw[f, m * 75 + v * 3 : m * 75 + v * 3 + 3], atol=1e-6)


def test_an_action_longer_than_300_frames_keeps_its_first_300_and_its_length(tmp_path):
    video = np.random.default_rng(0).normal(size=(360, 150))
    np.savetxt(tmp_path / "skeleton.txt", video, fmt="%.4f")
    (tmp_path / "label.txt").write_text("1,0,350,1\n")
    actions = pku_gendata.read_labels(str(tmp_path / "label.txt"))
    ((data, frames),) = pku_gendata.read_video_samples(
        str(tmp_path / "skeleton.txt"), str(tmp_path / "label.txt"), actions
    )
    assert data.shape == (3, 300, 25, 2) and frames == 350
    np.testing.assert_allclose(data[:, 299, 24, 1], video[299, 75 + 72 : 75 + 75], atol=1e-4)


def test_a_split_file_whose_second_line_is_empty_is_refused(tmp_path):
    # an empty list of training videos would put every video in the evaluation part
    (tmp_path / "split.txt").write_text("Training videos: \n\nValidation videos: \nA01N01-L\n")
    with pytest.raises(ValueError, match="split.txt: line 2: expected the training video names .* found an empty line"):
        pku_gendata.read_split(str(tmp_path / "split.txt"))


def test_action_past_the_end_of_the_video(tmp_path):
    _raw(str(tmp_path), {"A01N01-L": "3,20,31,1\n"})
    root = str(tmp_path)
    with pytest.raises(SkeletonFileError, match=r"A01N01-L.txt: line 1: expected end <= 30"):
        pku_gendata.read_video_samples(
            os.path.join(root, "skeleton", "A01N01-L.txt"),
            os.path.join(root, "label", "A01N01-L.txt"),
            pku_gendata.read_labels(os.path.join(root, "label", "A01N01-L.txt")),
        )


def test_gendata_end_to_end(tmp_path):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    arrays = _raw(raw, LABELS)
    pku_gendata.main(["--data-path", raw, "--out-folder", out, "--workers", "1", "--no-progress"])
    xsub_train = load_split(os.path.join(out, "xsub"), "train")
    assert xsub_train.names == ["A01N01-L.txt_0", "A01N01-L.txt_1", "A01N01-M.txt_0"]
    assert xsub_train.labels.tolist() == [2, 50, 6]
    assert xsub_train.num_frame.tolist() == [8, 18, 5]
    assert load_split(os.path.join(out, "xsub"), "val").names == ["A02N01-L.txt_0"]
    assert load_split(os.path.join(out, "xview"), "train").names == ["A01N01-M.txt_0", "A02N01-L.txt_0"]
    assert load_split(os.path.join(out, "xview"), "val").names == ["A01N01-L.txt_0", "A01N01-L.txt_1"]
    expected = np.zeros((1, 3, 300, 25, 2), dtype=np.float32)
    expected[0, :, :18] = arrays["A01N01-L"][12:30].reshape(18, 2, 25, 3).transpose(3, 0, 2, 1)
    np.testing.assert_allclose(xsub_train.data[1], normalize_loop(expected)[0], rtol=0, atol=2e-6)
    for bench in ("xsub", "xview"):
        protocol = {"xsub": "cross_subject", "xview": "cross_view"}[bench]
        assert read_folder_record(os.path.join(out, bench)) == (NTU25, 51, "pku_v2", protocol)


def test_bad_label_file_skipped_with_skip_bad(tmp_path):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    _raw(raw, dict(LABELS, **{"A01N01-M": "7,0,5\n7\n"}))
    with pytest.raises(SystemExit, match="A01N01-M.txt: line 2"):
        pku_gendata.main(["--data-path", raw, "--out-folder", out, "--workers", "1", "--no-progress"])
    pku_gendata.main(["--data-path", raw, "--out-folder", out, "--workers", "1", "--no-progress", "--skip-bad"])
    assert "A01N01-M.txt: line 2" in open(os.path.join(out, "skipped.txt")).read()
    assert load_split(os.path.join(out, "xsub"), "train").names == ["A01N01-L.txt_0", "A01N01-L.txt_1"]


def _main(raw, out, *extra):
    pku_gendata.main(["--data-path", raw, "--out-folder", out, "--workers", "1", "--no-progress", *extra])


def test_an_empty_skeleton_file_is_named_itself(tmp_path):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    _raw(raw, LABELS)
    path = os.path.join(raw, "skeleton", "A01N01-M.txt")
    open(path, "w").close()  # was: its label file's "expected end <= 0"
    with pytest.raises(SystemExit, match=rf"{re.escape(path)}: no frame \(an empty file\)"):
        _main(raw, out)


@pytest.mark.parametrize("value", ["nan", "-inf", "3e+38", "-10000.5"])
def test_non_finite_or_absurd_coordinate_names_file_and_line(tmp_path, value):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    _raw(raw, LABELS)
    path = os.path.join(raw, "skeleton", "A01N01-M.txt")
    lines = open(path).read().splitlines()
    lines[5] = " ".join(lines[5].split()[:77] + [value] + lines[5].split()[78:])  # frame 6, body 2 joint 1 z
    open(path, "w").write("\n".join(lines[:2] + [""] + lines[2:]) + "\n")  # a blank line 3
    with pytest.raises(SystemExit, match=r"A01N01-M.txt: line 7: expected x y z coordinates that are finite"):
        _main(raw, out)
    _main(raw, out, "--skip-bad")
    assert f"{path}: line 7" in open(os.path.join(out, "skipped.txt")).read()
    assert load_split(os.path.join(out, "xsub"), "train").names == ["A01N01-L.txt_0", "A01N01-L.txt_1"]


@pytest.mark.parametrize("folder", ["skeleton", "label"])
def test_file_that_is_not_utf8_names_file_and_line_and_is_skipped(tmp_path, folder):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    _raw(raw, LABELS)
    path = os.path.join(raw, folder, "A01N01-M.txt")
    text = open(path, "rb").read().split(b"\n")
    text[0] = b"\xe9" + text[0]  # latin-1 e-acute on line 1
    open(path, "wb").write(b"\n".join(text))
    with pytest.raises(SystemExit, match=r"A01N01-M.txt: line 1: expected UTF-8 text, found byte 0xe9"):
        _main(raw, out)
    _main(raw, out, "--skip-bad")
    assert f"{path}: line 1: expected UTF-8 text" in open(os.path.join(out, "skipped.txt")).read()
    assert load_split(os.path.join(out, "xsub"), "train").names == ["A01N01-L.txt_0", "A01N01-L.txt_1"]


@pytest.mark.parametrize("text, found", [("", "an empty file"), ("\n \n", "only blank lines")])
def test_label_file_without_an_action_is_a_bad_file(tmp_path, text, found, capsys):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    _raw(raw, dict(LABELS, **{"A01N01-M": text}))
    path = os.path.join(raw, "label", "A01N01-M.txt")
    message = f'{path}: expected at least one action line "label,start,end,confidence", found {found}'
    with pytest.raises(SystemExit) as info:
        _main(raw, out)
    assert info.value.code.startswith(f"error: {message}")  # a message: exit status 1
    assert not os.path.exists(out)
    _main(raw, out, "--skip-bad")
    assert f"skipping bad input: {message}" in capsys.readouterr().out  # said as a bad skeleton file is
    video = os.path.join(raw, "skeleton", "A01N01-M.txt")  # skipped.txt's 'source<TAB>reason', as for the others
    assert open(os.path.join(out, "skipped.txt")).read() == f"{video}\tbad label file: {message}\n"
    assert json.load(open(os.path.join(out, "settings.json")))["skipped"] == 1
    assert load_split(os.path.join(out, "xsub"), "train").names == ["A01N01-L.txt_0", "A01N01-L.txt_1"]


def test_frame_lines_with_too_few_and_too_many_values_are_a_bad_file(tmp_path):
    # 149 values on one line and 151 on the next: 150 a line on average, yet both lines are bad
    _raw(str(tmp_path), LABELS)
    path = os.path.join(str(tmp_path), "skeleton", "A01N01-M.txt")
    lines = open(path).read().splitlines()
    lines[3], lines[4] = " ".join(lines[3].split()[:-1]), lines[4] + " 0.5"
    assert [len(lines[k].split()) for k in (3, 4)] == [149, 151]
    open(path, "w").write("\n".join(lines) + "\n")
    with pytest.raises(SkeletonFileError, match=r"A01N01-M.txt: line 4: expected 150 numbers"):
        pku_gendata.read_skeleton(path)


def test_missing_label_file_is_named_and_skipped_with_skip_bad(tmp_path):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    _raw(raw, LABELS)
    os.remove(os.path.join(raw, "label", "A01N01-M.txt"))
    with pytest.raises(SystemExit, match=r"A01N01-M.txt: no label file .*label.A01N01-M.txt"):
        _main(raw, out)
    _main(raw, out, "--skip-bad")
    assert "A01N01-M.txt: no label file" in open(os.path.join(out, "skipped.txt")).read()
    assert load_split(os.path.join(out, "xsub"), "train").names == ["A01N01-L.txt_0", "A01N01-L.txt_1"]


def test_a_blank_label_line_does_not_count_in_the_sample_index(tmp_path):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    first, second = LABELS["A01N01-L"].splitlines()[:2]
    _raw(raw, dict(LABELS, **{"A01N01-L": f"{first}\n\n{second}\n"}))
    _main(raw, out)
    assert load_split(os.path.join(out, "xsub"), "train").names == [
        "A01N01-L.txt_0",
        "A01N01-L.txt_1",
        "A01N01-M.txt_0",
    ]


def test_a_folder_without_the_expected_entries_names_them(tmp_path):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    _raw(raw, LABELS)
    os.remove(os.path.join(raw, "cross_view_v2.txt"))
    shutil.rmtree(os.path.join(raw, "label"))
    with pytest.raises(SystemExit) as info:
        _main(raw, out)
    assert info.value.code == (
        f"error: {raw}: no label/, cross_view_v2.txt (a PKU-MMD phase II folder holds skeleton/, label/, "
        "cross_subject_v2.txt, cross_view_v2.txt)"
    )
    assert not os.path.exists(out)


def test_training_videos_without_a_skeleton_file_are_named(tmp_path, capsys):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    _raw(raw, LABELS)
    os.remove(os.path.join(raw, "skeleton", "A01N01-M.txt"))  # on both splits' training lines
    os.remove(os.path.join(raw, "label", "A01N01-M.txt"))
    _main(raw, out)
    printed = capsys.readouterr().out
    for split in ("cross_subject_v2.txt", "cross_view_v2.txt"):
        assert f"warning: 1 training video(s) of {split} have no skeleton file (the first: A01N01-M)" in printed
    assert load_split(os.path.join(out, "xsub"), "train").names == ["A01N01-L.txt_0", "A01N01-L.txt_1"]


def test_a_training_line_that_names_no_video_is_an_error(tmp_path):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    _raw(raw, LABELS)
    split = os.path.join(raw, "cross_subject_v2.txt")
    lines = open(split).read().splitlines()
    open(split, "w").write("\n".join([lines[0], lines[1].replace(", ", "; ")] + lines[2:]) + "\n")
    with pytest.raises(SystemExit) as info:  # it wrote xsub with no training sample, and exited 0
        _main(raw, out)
    assert str(info.value.code).startswith(f"error: {split}: line 2: none of its 1 training video name(s) has a")
    open(split, "w").write("\n".join([lines[0], ","] + lines[2:]) + "\n")  # no name at all
    with pytest.raises(SystemExit) as info:
        _main(raw, out)
    assert (
        info.value.code == f"error: {split}: line 2: expected the training video names separated by \", \", found ','"
    )
    # skeleton files a folder further down (an archive unpacked so): the folder is named, not the split file
    nested = os.path.join(raw, "skeleton", "PKU_Skeleton_Renew")
    os.mkdir(nested)
    for name in os.listdir(os.path.join(raw, "skeleton")):
        if name.endswith(".txt"):
            os.rename(os.path.join(raw, "skeleton", name), os.path.join(nested, name))
    open(split, "w").write("\n".join(lines) + "\n")
    with pytest.raises(SystemExit, match="no readable <video>.txt skeleton files"):
        _main(raw, out)
    assert not os.path.exists(out)


def test_a_data_path_that_is_no_folder_is_named(tmp_path):
    missing = str(tmp_path / "PKU-MMD-v2")
    with pytest.raises(SystemExit) as info:
        _main(missing, str(tmp_path / "out"))
    assert info.value.code == f"error: --data-path {missing} is not a folder (PKU-MMD phase II's raw folder)"


def test_a_folder_of_a_videos_name_is_a_bad_file_not_a_missing_one(tmp_path, capsys):
    # it was said to have no skeleton file and to be left out, then stopped the run as a bad file
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    _raw(raw, LABELS)
    path = os.path.join(raw, "skeleton", "A01N01-M.txt")
    os.remove(path)
    os.mkdir(path)
    with pytest.raises(SystemExit, match=rf"Is a directory: '{path}'"):
        _main(raw, out)
    assert "have no skeleton file" not in capsys.readouterr().out
    _main(raw, out, "--skip-bad")
    assert f"{path}\tbad: " in open(os.path.join(out, "skipped.txt")).read()
    assert load_split(os.path.join(out, "xsub"), "train").names == ["A01N01-L.txt_0", "A01N01-L.txt_1"]
