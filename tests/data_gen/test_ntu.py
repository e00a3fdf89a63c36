"""NTU RGB+D reading, body selection, split rules and the ntu_gendata command end to end."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from data_gen import ntu_gendata, writer
from data_gen.normalize import normalize_loop
from data_gen.ntu_reader import (
    SkeletonFileError,
    body_energy,
    is_training,
    parse_name,
    read_bodies,
    select_bodies,
)
from dataset.layouts import NTU25, read_folder_record
from dataset.processed import ProcessedDataError, load_split


def test_parse_file_with_two_bodies_and_an_empty_frame(tmp_path, ntu):
    a, b, c = ntu.body([0, 0, 3], seed=1), ntu.body([1, 0, 3], seed=2), ntu.body([0, 1, 3], seed=3)
    path = tmp_path / "S001C001P001R001A050.skeleton"
    path.write_text(ntu.skeleton_text([[a, b], [], [c]]), newline="")
    xyz, n_frame = read_bodies(str(path))
    assert n_frame == 3 and xyz.shape == (4, 3, 25, 3)
    np.testing.assert_array_equal(xyz[0, 0], a)
    np.testing.assert_array_equal(xyz[1, 0], b)
    np.testing.assert_array_equal(xyz[:, 1], 0)  # the empty frame
    np.testing.assert_array_equal(xyz[0, 2], c)
    np.testing.assert_array_equal(xyz[1:, 2], 0)
    np.testing.assert_array_equal(xyz[2:], 0)


def test_body_energy_uses_only_non_empty_frames():
    body = np.zeros((4, 25, 3))
    body[1, :, 0] = np.arange(25)  # x = 0..24, y = z = 1 in frame 1 only
    body[1, :, 1:] = 1
    assert body_energy(body) == pytest.approx(np.sqrt((25**2 - 1) / 12))
    assert body_energy(np.zeros((4, 25, 3))) == 0


def test_select_bodies_keeps_two_highest_energies_in_descending_order(ntu):
    xyz = np.zeros((4, 5, 25, 3))
    xyz[0] = ntu.body([0, 0, 3], spread=0.05)  # ghost: low energy, listed first
    xyz[1] = ntu.body([0, 0, 3], spread=1.0, seed=4)  # highest
    xyz[2, :3] = ntu.body([1, 0, 3], spread=0.5, seed=5)  # middle (present in 3 frames)
    out = select_bodies(xyz)  # C x T x V x M
    assert out.shape == (3, 5, 25, 2)
    np.testing.assert_array_equal(out[..., 0], xyz[1].transpose(2, 0, 1))
    np.testing.assert_array_equal(out[..., 1], xyz[2].transpose(2, 0, 1))
    # equal energies (a mirrored copy, the same to the bit): the body listed last comes first, as the
    # published argsort()[::-1] has it
    twins = np.stack([xyz[1], -xyz[1]])
    assert body_energy(twins[0]) == body_energy(twins[1])
    np.testing.assert_array_equal(select_bodies(twins)[..., 0], twins[1].transpose(2, 0, 1))


@pytest.mark.parametrize(
    "name, dataset, bench, train",
    [
        ("S001C001P001R001A001.skeleton", "ntu60", "xsub", True),
        ("S001C001P003R001A001.skeleton", "ntu60", "xsub", False),
        ("S001C001P038R001A001.skeleton", "ntu60", "xsub", True),
        ("S001C001P039R001A001.skeleton", "ntu60", "xsub", False),
        ("S001C001P045R001A001.skeleton", "ntu120", "xsub", True),
        ("S001C001P103R001A001.skeleton", "ntu120", "xsub", True),
        ("S001C001P104R001A001.skeleton", "ntu120", "xsub", False),
        ("S001C001P006R001A001.skeleton", "ntu120", "xsub", False),
        ("S005C001P001R001A001.skeleton", "ntu60", "xview", False),
        ("S005C002P001R001A001.skeleton", "ntu60", "xview", True),
        ("S005C003P001R001A001.skeleton", "ntu60", "xview", True),
        ("S001C002P001R001A001.skeleton", "ntu120", "xsetup", False),
        ("S002C001P003R001A001.skeleton", "ntu120", "xsetup", True),
        ("S032C001P003R001A001.skeleton", "ntu120", "xsetup", True),
        ("S031C001P003R001A001.skeleton", "ntu120", "xsetup", False),
    ],
)
def test_split_rules(name, dataset, bench, train):
    assert is_training(name, dataset, bench) is train


def _expected(path, max_frame=300):
    """Independent expectation: literal reading (published layout) + the per-joint loop normaliser."""
    xyz, n_frame = read_bodies(str(path))
    energy = [body_energy(b) for b in xyz]
    order = sorted(range(4), key=lambda k: -energy[k])[:2]
    data = np.zeros((1, 3, max_frame, 25, 2), dtype=np.float32)
    clip = xyz[order][:, :max_frame].transpose(3, 1, 2, 0)
    data[0, :, : clip.shape[1]] = clip
    return normalize_loop(data)[0], n_frame


def test_gendata_matches_independent_expectation(tmp_path, ntu):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    names = ntu.raw_set(raw)
    ntu_gendata.main(["--data-path", raw, "--out-folder", out, "--dataset", "ntu60", "--workers", "1", "--no-progress"])
    seen = {}
    for bench in ("xsub", "xview"):
        for part in ("train", "val"):
            split = load_split(os.path.join(out, bench), part)
            assert split.names == sorted(split.names)
            for i, name in enumerate(split.names):
                assert is_training(name, "ntu60", bench) is (part == "train")
                assert split.labels[i] == int(name[17:20]) - 1
                expected, n_frame = _expected(os.path.join(raw, name))
                assert split.num_frame[i] == n_frame
                np.testing.assert_allclose(split.data[i], expected, rtol=0, atol=2e-6)
                seen.setdefault(bench, set()).add(name)
    assert seen["xsub"] == seen["xview"] == set(names)
    assert load_split(os.path.join(out, "xsub"), "train").num_frame.tolist() == [310, 20, 12]
    with open(os.path.join(out, "xsub", "train_label.pkl"), "rb") as f:
        assert pickle.load(f)[0][0] == "S001C001P001R001A002.skeleton"  # name keeps its extension
    assert os.path.getsize(os.path.join(out, "skipped.txt")) == 0
    assert sorted(os.listdir(os.path.join(out, "xsub"))) == sorted(
        [".claim", "layout.json"]  # each benchmark folder is claimed for the conversion, as the output folder is
        + [f"{p}_{k}" for p in ("train", "val") for k in ("data_joint.npy", "num_frame.npy", "label.pkl")]
    )
    for bench in ("xsub", "xview"):
        protocol = {"xsub": "cross_subject", "xview": "cross_view"}[bench]
        assert read_folder_record(os.path.join(out, bench)) == (NTU25, 60, "ntu60", protocol)


def test_an_ignore_list_may_begin_with_a_byte_order_mark(tmp_path):
    ignore = tmp_path / "ignore.txt"
    ignore.write_bytes(b"\xef\xbb\xbfS001C002P001R001A003\r\nS001C002P001R001A004.skeleton\r\n")
    assert ntu_gendata.read_ignored(str(ignore)) == {"S001C002P001R001A003.skeleton", "S001C002P001R001A004.skeleton"}


def test_script_entry_point_with_workers_and_ignore_list(tmp_path, ntu):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    ntu.raw_set(raw)
    ignore = tmp_path / "ignore.txt"
    ignore.write_text("S001C002P001R001A003\n")
    subprocess.run(
        [
            sys.executable,
            ntu_gendata.__file__,
            "--data_path",  # the published converter's spellings
            raw,
            "--out_folder",
            out,
            "--dataset",
            "ntu120",
            "--workers",
            "2",
            "--ignored_sample_path",
            str(ignore),
            "--no-progress",
        ],
        check=True,
        capture_output=True,
        cwd=str(tmp_path),
    )
    xsetup = [load_split(os.path.join(out, "xsetup"), p).names for p in ("train", "val")]
    assert xsetup == [
        ["S002C003P002R001A051.skeleton"],
        ["S001C001P001R001A002.skeleton", "S001C001P003R002A001.skeleton"],
    ]
    assert os.path.isfile(os.path.join(out, "settings.json"))
    assert read_folder_record(os.path.join(out, "xsetup")) == (NTU25, 120, "ntu120", "cross_setup")


def test_truncated_and_garbled_files_name_file_and_line(tmp_path, ntu):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    ntu.raw_set(raw)
    path = os.path.join(raw, "S001C002P001R001A003.skeleton")
    lines = open(path, newline="").read().split("\r\n")
    open(path, "w", newline="").write("\r\n".join(lines[:40]))  # cut inside frame 2's joints
    with pytest.raises(SystemExit, match=r"S001C002P001R001A003.skeleton: line 41: expected 25 joint lines"):
        ntu.run(raw, out)
    open(path, "w", newline="").write("\r\n".join(lines + ["garbage"]))  # something after the last frame
    with pytest.raises(SkeletonFileError, match=rf"line {len(lines) + 1}: expected end of file after \d+ frames"):
        read_bodies(path)
    open(path, "w", newline="").write("1\r\n-1\r\n")  # a negative body count
    with pytest.raises(SkeletonFileError, match=r"line 2: expected the number of bodies of frame 1"):
        read_bodies(path)
    lines[5] = lines[5].replace("250.1", "abc")
    open(path, "w", newline="").write("\r\n".join(lines))
    with pytest.raises(SkeletonFileError, match=r"line 6: expected a joint line of 12 numbers"):
        read_bodies(path)
    assert os.listdir(os.path.join(out, "xsub")) == [".claim"]  # nothing written, no temporaries
    ntu.run(raw, out, "--skip-bad")
    skipped = open(os.path.join(out, "skipped.txt")).read()
    assert "S001C002P001R001A003.skeleton" in skipped and "line 6" in skipped
    names = load_split(os.path.join(out, "xview"), "train").names
    assert "S001C002P001R001A003.skeleton" not in names and len(names) == 1


def test_file_without_bodies_is_skipped_and_listed(tmp_path, capsys, ntu):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    ntu.raw_set(raw)
    ntu.write(raw, "S001C001P001R001A004.skeleton", [[], [], []])
    ntu.run(raw, out)
    assert "no body in any frame" in capsys.readouterr().out
    assert "S001C001P001R001A004.skeleton" in open(os.path.join(out, "skipped.txt")).read()
    assert "S001C001P001R001A004.skeleton" not in load_split(os.path.join(out, "xsub"), "train").names
    assert len(load_split(os.path.join(out, "xsub"), "train")) == 3  # header shrunk to the kept rows


def test_bad_file_name_is_a_clear_error(tmp_path, ntu):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    ntu.raw_set(raw)
    ntu.write(raw, "S001C001P001R001A01.skeleton", [[ntu.body([0, 0, 3])]])
    with pytest.raises(SystemExit, match=r"'S001C001P001R001A01.skeleton' is not an NTU RGB\+D sample file name"):
        ntu.run(raw, out)
    for name in ("S001C001P001R001A001.skeleton\n", "S001C001P001R001A001.skeleton\nx"):  # "$" matched before a "\n"
        with pytest.raises(ValueError, match="is not an NTU RGB"):
            parse_name(name)
    # --skip-bad skips it, as any bad file, and lists it
    ntu.run(raw, out, "--skip-bad")
    assert "S001C001P001R001A01.skeleton\tfile name: " in open(os.path.join(out, "skipped.txt")).read()
    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    (only_bad / "foo.skeleton").write_text("0\n")
    ignored = tmp_path / "ignored.txt"
    ignored.write_text("S001C001P001R001A001\n")
    with pytest.raises(SystemExit, match=r"no NTU .skeleton files in .*only_bad named as NTU's \(1 skipped\)"):
        ntu.run(str(only_bad), str(tmp_path / "o"), "--skip-bad", "--ignored-sample-path", str(ignored))
    good = [n for n in os.listdir(raw) if n != "S001C001P001R001A01.skeleton"]
    parts = [load_split(os.path.join(out, "xsub"), part).names for part in ("train", "val")]
    assert sorted(parts[0] + parts[1]) == sorted(good)  # every other file kept


@pytest.mark.parametrize(
    "action, found", [(0, "action 0; actions are numbered from 1"), (61, "action 61 exceeds the 60 classes of ntu60")]
)
def test_action_outside_the_classes_is_a_clear_error(tmp_path, action, found, ntu):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    ntu.raw_set(raw)
    ntu.write(raw, f"S001C001P001R001A{action:03d}.skeleton", [[ntu.body([0, 0, 3])]])
    with pytest.raises(SystemExit, match=rf"A{action:03d}.skeleton: {found}"):
        ntu.run(raw, out)


def test_interrupted_run_leaves_old_outputs_and_no_temporaries(tmp_path, monkeypatch, capsys, ntu, tree):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    ntu.raw_set(raw)
    ntu.run(raw, out)
    before = tree(out)
    ntu.write(raw, "S001C001P001R001A005.skeleton", [[ntu.body([0, 0, 3], seed=7)]] * 5)

    def interrupted(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer, "normalize_and_turn", interrupted)
    with pytest.raises(SystemExit) as stop:  # Ctrl-C: one line and status 130, no traceback
        ntu.run(raw, out, "--chunk", "2")
    assert stop.value.code == 130
    assert f"interrupted: {out} holds what it held before this conversion" in capsys.readouterr().err
    assert tree(out) == before  # old outputs intact, no temp files
    monkeypatch.undo()
    ntu.run(raw, out)  # a rerun replaces cleanly, and says so for each benchmark folder
    printed = capsys.readouterr().out
    for benchmark in ("xsub", "xview"):
        assert f"note: {os.path.join(out, benchmark)} held an earlier conversion, which this one replaced" in printed
    assert "S001C001P001R001A005.skeleton" in load_split(os.path.join(out, "xsub"), "train").names
    for folder in (out, os.path.join(out, "xsub")):
        assert [f for f in os.listdir(folder) if f.startswith(".")] == [".claim"]


def test_a_conversion_stopped_among_its_renames_leaves_a_folder_that_is_refused(tmp_path, monkeypatch, capsys, ntu):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    ntu.raw_set(raw)
    ntu.run(raw, out)
    renames, replace = [], os.replace

    def stopped(src, dst):
        renames.append(dst)
        if len(renames) == 2:  # one part's data renamed, its labels not
            raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(writer.os, "replace", stopped)
    with pytest.raises(SystemExit) as stop:
        ntu.run(raw, out)
    assert stop.value.code == 130 and "interrupted while replacing the files of" in capsys.readouterr().err
    monkeypatch.undo()
    with pytest.raises(ProcessedDataError, match="a conversion was stopped while replacing its files"):
        load_split(os.path.join(out, "xsub"), "train")
    # a later conversion (another process) stopped before its renames does not blame itself for the marker
    for benchmark in ("xsub", "xview"):
        with open(os.path.join(out, benchmark, ".converting"), "w") as f:
            f.write("pid 1 was replacing this folder's files\n")
    monkeypatch.setattr(writer, "normalize_and_turn", lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(SystemExit):
        ntu.run(raw, out)
    assert f"interrupted: {out} holds what it held before this conversion" in capsys.readouterr().err
    monkeypatch.undo()
    ntu.run(raw, out)  # converted again: whole, and loadable
    assert len(load_split(os.path.join(out, "xsub"), "train")) > 0


@pytest.mark.parametrize("value", ["nan", "inf", "-1e+30", "10000.5"])
def test_non_finite_or_absurd_coordinate_names_file_and_line(tmp_path, value, ntu):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    ntu.raw_set(raw)
    name = "S001C002P001R001A003.skeleton"
    path = os.path.join(raw, name)
    lines = open(path, newline="").read().split("\r\n")
    # line 1 frame count; frame 1: lines 2-29; frame 2: body count 30, body fields 31, joint count 32,
    # joints 33-57: the y of joint 4 of frame 2 is on line 36
    lines[35] = " ".join([lines[35].split()[0], value] + lines[35].split()[2:])
    open(path, "w", newline="").write("\r\n".join(lines))
    with pytest.raises(
        SystemExit,
        match=rf"{name}: line 36: expected x y z coordinates that are finite and "
        rf"within \+-10000",
    ):
        ntu.run(raw, out)
    ntu.run(raw, out, "--skip-bad")
    assert f"{name}\tbad: {path}: line 36" in open(os.path.join(out, "skipped.txt")).read()
    names = load_split(os.path.join(out, "xsub"), "train").names
    assert name not in names and len(names) == 2


def test_coordinates_up_to_the_limit_are_kept(tmp_path, ntu):
    path = tmp_path / "S001C001P001R001A001.skeleton"
    body = ntu.body([0, 0, 3])
    body[7] = [-10000, 9999.5, 10000]
    path.write_text(ntu.skeleton_text([[body]]), newline="")
    xyz, _ = read_bodies(str(path))
    np.testing.assert_array_equal(xyz[0, 0, 7], [-10000, 9999.5, 10000])


def test_joint_lines_with_too_few_and_too_many_fields_are_a_bad_file(tmp_path, ntu):
    # 11 numbers on one joint line and 13 on the next: the block holds 25 x 12 numbers, yet two lines are bad
    path = tmp_path / "S001C001P001R001A001.skeleton"
    lines = ntu.skeleton_text([[ntu.body([0, 0, 3])]]).split("\r\n")
    # line 1 frame count, 2 body count, 3 body fields, 4 joint count, joints on lines 5-29
    lines[6], lines[7] = lines[6].rsplit(" ", 1)[0], lines[7] + " 2"
    assert [len(lines[k].split()) for k in (6, 7)] == [11, 13]
    path.write_text("\r\n".join(lines), newline="")
    with pytest.raises(
        SkeletonFileError,
        match=rf"{path}: line 7: expected a joint line of 12 numbers, found "
        rf"'{lines[6]}'",
    ):
        read_bodies(str(path))


def test_frame_count_beyond_the_file_is_a_bad_file(tmp_path, ntu):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    ntu.raw_set(raw)
    name = "S001C002P001R001A003.skeleton"
    path = os.path.join(raw, name)
    lines = open(path, newline="").read().split("\r\n")
    n_lines = len(lines) - 1  # the text ends with CRLF
    lines[0] = "999999999"
    open(path, "w", newline="").write("\r\n".join(lines))
    with pytest.raises(
        SystemExit,
        match=rf"{name}: line 1: expected the number of frames \(at most "
        rf"{n_lines - 1}, the lines that follow\), found 999999999",
    ):
        ntu.run(raw, out)
    ntu.run(raw, out, "--skip-bad")  # no 2 TiB allocation
    assert name in open(os.path.join(out, "skipped.txt")).read()
    assert name not in load_split(os.path.join(out, "xview"), "train").names


@pytest.mark.parametrize("n_joint", [20, 30])
def test_body_with_other_than_25_joints_is_a_bad_file(tmp_path, n_joint, ntu):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    ntu.raw_set(raw)
    name = "S001C001P001R001A004.skeleton"
    good = ntu.body([0, 0, 3], seed=1)
    text = ntu.skeleton_text([[good], [good]]).split("\r\n")
    # frame 2: body count on line 30, body fields 31, joint count 32, then its joint lines
    odd = text[:31] + [str(n_joint)] + [ntu.joint_line(1, 2, 3)] * n_joint
    open(os.path.join(raw, name), "w", newline="").write("\r\n".join(odd) + "\r\n")
    with pytest.raises(
        SystemExit,
        match=rf"{name}: line 32: expected 25 joints in body 1 of frame 2, "
        rf"found {n_joint}",
    ):
        ntu.run(raw, out)
    ntu.run(raw, out, "--skip-bad")
    assert f"{name}\tbad" in open(os.path.join(out, "skipped.txt")).read()
    assert name not in load_split(os.path.join(out, "xsub"), "train").names


def test_part_left_empty_is_written_with_a_warning(tmp_path, capsys, ntu):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    os.makedirs(raw)
    ntu.write(raw, "S001C001P001R001A001.skeleton", [[ntu.body([0, 0, 3], seed=1)]] * 4)  # subject 1, camera 1
    ntu.write(raw, "S001C002P001R001A002.skeleton", [[ntu.body([0, 0, 3], seed=2)]] * 4)  # subject 1, camera 2
    ntu.run(raw, out)
    assert f"warning: {os.path.join(out, 'xsub')} has no val sample" in capsys.readouterr().out
    assert np.load(os.path.join(out, "xsub", "val_data_joint.npy")).shape == (0, 3, 300, 25, 2)
    assert load_split(os.path.join(out, "xsub"), "train").names == sorted(os.listdir(raw))
    assert [len(load_split(os.path.join(out, "xview"), p)) for p in ("train", "val")] == [1, 1]


def test_run_that_converts_nothing_is_refused_and_keeps_earlier_outputs(tmp_path, ntu, tree):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    ntu.raw_set(raw)
    ntu.run(raw, out)
    before = tree(out)
    for name in os.listdir(raw):
        open(os.path.join(raw, name), "w").write("3\r\n")  # truncated after the frame count
    with pytest.raises(SystemExit, match=r"no sample was converted: 4 skipped \(the first: .*A002.skeleton"):
        ntu.run(raw, out, "--skip-bad")
    assert tree(out) == before


@pytest.mark.parametrize("content", [None, b"S001C001P001R001A001\n\xff\xfe\n"])
def test_unreadable_ignore_list_is_a_usage_error(tmp_path, capsys, content, ntu):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    ntu.raw_set(raw)
    ignore = tmp_path / "ignore.txt"
    if content is not None:
        ignore.write_bytes(content)
    with pytest.raises(SystemExit) as info:
        ntu.run(raw, out, "--ignored-sample-path", str(ignore))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and f"--ignored-sample-path {ignore}" in err
    assert ("No such file" if content is None else "line 2: expected UTF-8 text, found byte 0xff") in err
    assert not os.path.exists(out)  # before any work


def test_a_benchmark_left_from_an_earlier_conversion_is_named(tmp_path, capsys, ntu):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    ntu.raw_set(raw)
    ntu.run(raw, out)  # xsub and xview
    capsys.readouterr()
    ntu.run(raw, out, "--benchmark", "xsub")
    printed = capsys.readouterr().out
    assert f"warning: {os.path.join(out, 'xview')} holds a processed folder of an earlier conversion" in printed
    assert "xsub holds" not in printed


@pytest.mark.parametrize(
    "benchmarks, message",
    [
        (["xsub", "xsub"], "--benchmark xsub xsub names a benchmark twice"),
        (["xsub", "xsetup"], "--benchmark xsetup is not a benchmark of ntu60 (its benchmarks: xsub xview)"),
    ],
)
def test_a_repeated_or_unpublished_benchmark_is_a_usage_error(tmp_path, capsys, ntu, benchmarks, message):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    ntu.raw_set(raw)
    with pytest.raises(SystemExit) as info:
        ntu.run(raw, out, "--benchmark", *benchmarks)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(out)  # before any work


def test_an_ntu_conversion_refuses_a_benchmark_folder_holding_a_run(tmp_path, ntu):
    raw, out = str(tmp_path / "raw"), tmp_path / "ntu60"
    ntu.raw_set(raw)
    (out / "xview").mkdir(parents=True)  # a run's folder where the conversion would write xview's arrays
    (out / "xview" / "log.jsonl").write_text("")
    with pytest.raises(SystemExit) as info:
        ntu.run(raw, str(out))
    assert info.value.code == (
        f"error: {out / 'xview'} holds the files of a training or evaluation run (log.jsonl); "
        "convert into a folder of its own"
    )
    assert sorted(os.listdir(out / "xview")) == ["log.jsonl"] and not (out / "xsub").exists()
    # an unreadable settings.json, a conversion's or a run's: said so, not taken for a run's
    (out / "xview" / "log.jsonl").unlink()
    (out / "xview" / "settings.json").write_text('{"counts": {"tr')
    with pytest.raises(SystemExit) as info:
        ntu.run(raw, str(out))
    assert info.value.code == (
        f"error: {out / 'xview' / 'settings.json'} is unreadable, so whether a conversion or a training or "
        "evaluation run wrote it cannot be told: remove it if a conversion did"
    )


def test_raw_files_in_a_benchmark_folder_of_the_out_folder_are_refused(tmp_path, ntu):
    # --data-path P/xsub --out-folder P: the arrays would land among the .skeleton files
    raw = tmp_path / "P" / "xsub"
    ntu.raw_set(str(raw))
    before = sorted(os.listdir(raw))
    with pytest.raises(SystemExit) as info:
        ntu.run(str(raw), str(tmp_path / "P"))
    assert info.value.code == (
        f"error: the raw files' folder {raw} is the processed folder {raw} this conversion writes: choose an "
        "--out-folder whose benchmark folders are not the raw files' folder"
    )
    assert sorted(os.listdir(raw)) == before and sorted(os.listdir(tmp_path / "P")) == ["xsub"]
    (tmp_path / "link").symlink_to(tmp_path / "P")  # the same folder by another path
    with pytest.raises(SystemExit) as info:
        ntu.run(str(tmp_path / "link" / "xsub"), str(tmp_path / "P"))
    assert str(info.value.code).startswith(f"error: the raw files' folder {tmp_path / 'link' / 'xsub'} is the")
    assert sorted(os.listdir(raw)) == before and sorted(os.listdir(tmp_path / "P")) == ["xsub"]


def test_out_folder_naming_a_benchmark_folder_is_refused(tmp_path, ntu, monkeypatch):
    raw, out = str(tmp_path / "raw"), tmp_path / "ntu60"
    ntu.raw_set(raw)
    ntu.run(raw, str(out))
    before = sorted(os.listdir(out / "xsub"))
    with pytest.raises(SystemExit) as info:
        ntu.run(raw, str(out / "xsub"))  # would nest xsub/xsub and put settings.json among the arrays
    assert info.value.code == (
        f"error: {out / 'xsub'} is itself a processed folder (train_data_joint.npy): --out-folder names the "
        f"folder above the benchmark folders (xsub, xview), e.g. {out}"
    )
    assert sorted(os.listdir(out / "xsub")) == before
    monkeypatch.chdir(out / "xsub")  # a relative --out-folder: the folder above is still named
    with pytest.raises(SystemExit) as info:
        ntu.run(raw, ".")
    assert info.value.code.endswith(f"(xsub, xview), e.g. {out}")
