"""dataset/processed.py: restricted label unpickler, split validation, folder resolution."""

import json
import os
import pickle
import re

import numpy as np
import pytest

from dataset.catalog import resolve_data_dir
from dataset.files import temp_path
from dataset.layouts import KINECT20, NTU25, Layout
from dataset.processed import (
    ProcessedDataError,
    fingerprint,
    import_warnings,
    load_label_pkl,
    load_split,
    load_splits,
    non_finite_samples,
    restricted_load,
)
from tests.helpers import write_folder_record


def _write_part(folder, part, n, labels=None, n_frames=None, n_names=None, frame_dtype="int64"):
    os.makedirs(folder, exist_ok=True)
    np.save(os.path.join(folder, f"{part}_data_joint.npy"), np.zeros((n, 3, 300, 25, 2), np.float32))
    np.save(
        os.path.join(folder, f"{part}_num_frame.npy"),
        np.full(n if n_frames is None else n_frames, 50, dtype=frame_dtype),
    )
    names = [f"s{i}" for i in range(n if n_names is None else n_names)]
    with open(os.path.join(folder, f"{part}_label.pkl"), "wb") as f:
        pickle.dump((names, list(range(len(names))) if labels is None else labels), f)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_float_labels_from_the_published_pku_tool_load_as_int(tmp_path, protocol):
    # the published PKU converter stored label[i][0] - 1 taken from np.loadtxt: numpy float64 scalars
    path = tmp_path / "l.pkl"
    path.write_bytes(pickle.dumps((["a.txt_0", "a.txt_1"], [np.float64(4.0), np.float64(0.0)]), protocol=protocol))
    assert load_label_pkl(path) == (["a.txt_0", "a.txt_1"], [4, 0])
    path.write_bytes(pickle.dumps((["x"], np.array([7.0])), protocol=protocol))
    assert load_label_pkl(path) == (["x"], [7])


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/cmd_test_pwned",))


def test_malicious_pickle_is_rejected_without_running_code(tmp_path):
    marker = "/tmp/cmd_test_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    path = tmp_path / "l.pkl"
    path.write_bytes(pickle.dumps((["a"], [_Evil()])))
    with pytest.raises(ProcessedDataError, match="not allowed"):
        load_label_pkl(path)
    assert not os.path.exists(marker)
    path.write_bytes(pickle.dumps((["a"], np.array([None], dtype=object))))
    with pytest.raises(ProcessedDataError, match="not numeric"):
        load_label_pkl(path)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_text_is_built_and_objects_are_not(tmp_path, protocol):
    path = tmp_path / "t.pkl"
    text = {"names": np.array(["a", "bb"]), "one": np.str_("c"), "raw": np.array([b"d"]), "n": np.int64(3)}
    path.write_bytes(pickle.dumps(text, protocol=protocol))
    with open(path, "rb") as f:
        got = restricted_load(f)
    assert got.keys() == text.keys() and all(type(got[k]) is type(text[k]) for k in text)
    assert got["names"].tolist() == ["a", "bb"] and got["one"] == "c"
    assert got["raw"].tolist() == [b"d"] and got["n"] == 3
    path.write_bytes(pickle.dumps({"names": np.array(["a", None])}, protocol=protocol))  # dtype object
    refused = "numpy dtype object is not numeric or text"
    with open(path, "rb") as f, pytest.raises(pickle.UnpicklingError, match=refused):
        restricted_load(f)


class _Reduced:
    def __init__(self, reduced):
        self.reduced = reduced

    def __reduce__(self):
        return self.reduced


def test_array_declared_larger_than_its_data_is_refused_before_allocating(tmp_path):
    reconstruct = np.zeros(1).__reduce__()[0]
    path = tmp_path / "l.pkl"
    path.write_bytes(pickle.dumps((["a"], _Reduced((reconstruct, (np.ndarray, (10**12, 10**6), b"b"))))))
    with pytest.raises(
        ProcessedDataError,
        match=rf"{path}: not a readable label file \(a numpy array declares shape "
        r"\(1000000000000, 1000000\) before its data",
    ):
        load_label_pkl(path)


def test_non_integral_label_and_bad_structure(tmp_path):
    path = tmp_path / "l.pkl"
    path.write_bytes(pickle.dumps((["a"], [1.5])))
    with pytest.raises(ProcessedDataError, match="integral"):
        load_label_pkl(path)
    for huge in (2**70, 1e30, 2**63, -(2**63) - 1):  # integral, beyond the labels' int64 array (its edges too)
        path.write_bytes(pickle.dumps((["a", "b"], [0, huge])))
        message = f"{path}: label 1 is {huge!r}; expected a class number"
        with pytest.raises(ProcessedDataError, match=re.escape(message)):
            load_label_pkl(path)
    path.write_bytes(pickle.dumps({"names": []}))
    with pytest.raises(ProcessedDataError, match="pair"):
        load_label_pkl(path)


def test_load_split_reads_a_valid_folder(tmp_path):
    folder = str(tmp_path / "xsub")
    _write_part(folder, "train", 3, frame_dtype="int32")
    split = load_split(folder, "train")
    assert len(split) == 3 and split.data.shape == (3, 3, 300, 25, 2)
    assert isinstance(split.data, np.memmap)
    assert split.num_frame.dtype == np.int64 and split.labels.tolist() == [0, 1, 2]
    assert split.names == ["s0", "s1", "s2"]


@pytest.mark.parametrize("kw", [dict(n_frames=4), dict(n_names=2)])
def test_mismatched_lengths_name_the_folder(tmp_path, kw):
    folder = str(tmp_path / "xview")
    _write_part(folder, "val", 3, **kw)
    with pytest.raises(ProcessedDataError, match="xview.*disagree"):
        load_split(folder, "val")


@pytest.mark.parametrize(
    "name, content, found",
    [
        # a Git LFS pointer where the data should be: NumPy would advise allow_pickle
        ("train_data_joint.npy", b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 9\n", "not a plain"),
        ("train_num_frame.npy", None, "train_num_frame.npy is unreadable"),  # cut short by a failed copy
        (
            "train_data_joint.npy",
            None,
            "train_data_joint.npy is unreadable (",
        ),  # memory-mapped, cut short: NumPy's reason
    ],
)
def test_an_unreadable_array_is_named_and_never_advised_to_be_unpickled(tmp_path, name, content, found):
    folder = str(tmp_path / "xsub")
    _write_part(folder, "train", 3)
    path = os.path.join(folder, name)
    whole = open(path, "rb").read()
    open(path, "wb").write(whole[: len(whole) - 8] if content is None else content)
    with pytest.raises(ProcessedDataError) as caught:
        load_split(folder, "train")
    message = str(caught.value)
    assert f"{folder}: {name} is unreadable" in message and found in message
    assert "allow_pickle" not in message


def test_a_folder_where_a_file_should_be_is_named(tmp_path):
    folder = str(tmp_path / "xsub")
    _write_part(folder, "train", 3)
    os.remove(os.path.join(folder, "train_label.pkl"))
    os.mkdir(os.path.join(folder, "train_label.pkl"))  # was: "missing train_label.pkl"
    with pytest.raises(ProcessedDataError, match=f"processed folder {folder}: train_label.pkl is not a file$"):
        load_split(folder, "train")


def test_missing_files_name_the_folder(tmp_path):
    with pytest.raises(ProcessedDataError, match="missing train_data_joint.npy") as caught:
        load_split(str(tmp_path), "train")
    assert "temporary" not in str(caught.value)
    # a conversion stopped before its renames leaves only its writers' temporaries: the message says so
    stopped = temp_path(str(tmp_path / "train_data_joint.npy"))
    open(stopped, "w").close()
    open(tmp_path / "notes.txt", "w").close()  # not a temporary
    with pytest.raises(ProcessedDataError) as caught:
        load_split(str(tmp_path), "train")
    assert str(caught.value).endswith(
        f"; it holds 1 temporary file(s) of a write that was stopped ({os.path.basename(stopped)}, …): a conversion "
        "into it was interrupted, so convert again (that removes them)"
    )


def test_resolve_data_dir():
    assert resolve_data_dir("ntu60", "cross_subject") == os.path.join("./data/NTU-RGB-D-60-AGCN", "xsub")
    assert resolve_data_dir("ntu120", "cross_setup") == os.path.join("./data/NTU-RGB-D-120-AGCN", "xsetup")
    assert resolve_data_dir("pku_v2", "cross_view_semi") == os.path.join("./data/PKU-MMD-v2-AGCN", "xview")
    assert resolve_data_dir("ntu60", "cross_view", data_dir="/x") == "/x"
    with pytest.raises(ValueError, match="ntu60, ntu120, pku_v2"):
        resolve_data_dir("kinetics", "cross_subject")
    with pytest.raises(
        ValueError, match="protocol 'xsub' is not defined for ntu60; use one of cross_subject, cross_view"
    ):
        resolve_data_dir("ntu60", "xsub")
    with pytest.raises(ValueError, match="use one of cross_subject, cross_setup"):  # no xview in NTU-120
        resolve_data_dir("ntu120", "cross_view_semi")


def _edit(folder, part, data=None, frames=None, labels=None):
    """Overwrite one file of a written part."""
    if data is not None:
        np.save(os.path.join(folder, f"{part}_data_joint.npy"), data)
    if frames is not None:
        np.save(os.path.join(folder, f"{part}_num_frame.npy"), np.asarray(frames))
    if labels is not None:
        with open(os.path.join(folder, f"{part}_label.pkl"), "wb") as f:
            pickle.dump(([f"s{i}" for i in range(len(labels))], labels), f)


def test_non_finite_samples_name_part_index_and_name(tmp_path):
    folder = str(tmp_path / "xsub")
    _write_part(folder, "train", 5)
    data = np.zeros((5, 3, 300, 25, 2), np.float32)
    data[3, 1, 299, 24, 1] = np.nan
    data[4, 0, 0, 0, 0] = -np.inf
    _edit(folder, "train", data=data)
    with pytest.raises(
        ProcessedDataError,
        match=r"xsub: train sample 3 \(s3\) holds NaN or infinite values; "
        r"expected finite values within \+-10000 \(2 such samples\)",
    ):
        load_split(folder, "train")


def test_absurd_finite_values_name_part_index_and_name(tmp_path):
    folder = str(tmp_path / "xsub")
    _write_part(folder, "val", 5)
    data = np.zeros((5, 3, 300, 25, 2), np.float32)
    data[1, 2, 7, 3, 0] = 1e4  # the limit itself is kept
    data[2, 0, 10, 3, 0] = 1e30
    data[4, 1, 299, 24, 1] = -10000.5
    _edit(folder, "val", data=data)
    assert non_finite_samples(data, rows=2).tolist() == [2, 4]
    with pytest.raises(
        ProcessedDataError,
        match=rf"processed folder {folder}: val sample 2 \(s2\) holds 1e\+30; "
        r"expected finite values within \+-10000 \(2 such samples\)",
    ):
        load_split(folder, "val")


def test_non_finite_scan_across_blocks_matches_a_per_sample_check():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(11, 3, 4)).astype(np.float32)
    for i, value in ((2, np.nan), (3, np.inf), (8, -np.inf), (10, np.nan)):
        data[i, rng.integers(3), rng.integers(4)] = value
    expected = [i for i in range(len(data)) if not all(np.isfinite(v) for v in data[i].ravel())]
    for rows in (1, 3, 4, 256):
        assert non_finite_samples(data, rows=rows).tolist() == expected == [2, 3, 8, 10]


def test_labels_out_of_range_name_part_index_name_and_label(tmp_path):
    folder = str(tmp_path / "xview")
    _write_part(folder, "val", 4, labels=[0, 59, 70, 3])
    assert load_split(folder, "val").labels.tolist() == [0, 59, 70, 3]  # no class count given
    with pytest.raises(
        ProcessedDataError,
        match=r"xview: val sample 2 \(s2\) has label 70; "
        r"expected a label in 0..59 \(60 classes\)",
    ):
        load_split(folder, "val", num_class=60)
    _edit(folder, "val", labels=[0.0, -1.0, 5.0, 3.0])  # float labels, as PKU
    with pytest.raises(ProcessedDataError, match=r"val sample 1 \(s1\) has label -1; expected a label >= 0"):
        load_split(folder, "val")


def test_load_splits_checks_both_parts(tmp_path):
    folder = str(tmp_path / "xsub")
    _write_part(folder, "train", 3, labels=[0, 1, 2])
    _write_part(folder, "val", 2, labels=[1, 3])
    train, val = load_splits(folder, num_class=4)
    assert (train.part, len(train), val.part, len(val)) == ("train", 3, "val", 2)
    with pytest.raises(ProcessedDataError, match=r"val sample 1 \(s1\) has label 3; expected a label in 0..2"):
        load_splits(folder, num_class=3)


@pytest.mark.parametrize(
    "edit, found",
    [
        (
            dict(data=np.zeros((0, 3, 300, 25, 2), np.float32), frames=np.zeros(0, np.int64), labels=[]),
            r"xsub: the train part holds no samples",
        ),
        (
            dict(data=np.zeros((3, 3, 120, 25, 2), np.float32)),
            r"train_data_joint.npy has 120 frames per sample \(shape \(3, 3, 120, 25, 2\)\); expected 300",
        ),
        (
            dict(frames=np.array([50, -4, -1], np.int32)),
            r"train sample 1 \(s1\) has -4 frames; expected at least 1 \(2 such samples\)",
        ),
    ],
)
def test_empty_part_short_time_axis_and_negative_frame_counts_fail_at_open(tmp_path, edit, found):
    folder = str(tmp_path / "xsub")
    _write_part(folder, "train", 3)
    _edit(folder, "train", **edit)
    with pytest.raises(ProcessedDataError, match=found):
        load_split(folder, "train")


def test_folder_without_layout_record_is_ntu25_with_no_class_count(tmp_path):
    folder = str(tmp_path / "xsub")
    _write_part(folder, "train", 2)
    split = load_split(folder, "train")
    assert split.layout == NTU25 and split.num_class is None


def _write_kinect20(folder, labels, num_class=10, dataset="nw_ucla", shape=(3, 300, 20, 1)):
    """A 'train' part in the kinect20 layout, with its layout record."""
    os.makedirs(folder, exist_ok=True)
    np.save(os.path.join(folder, "train_data_joint.npy"), np.zeros((len(labels),) + shape, np.float32))
    np.save(os.path.join(folder, "train_num_frame.npy"), np.full(len(labels), 30))
    with open(os.path.join(folder, "train_label.pkl"), "wb") as f:
        pickle.dump(([f"s{i}" for i in range(len(labels))], labels), f)
    write_folder_record(folder, "kinect20", num_class, dataset)


def test_layout_record_gives_the_shape_and_the_class_count(tmp_path):
    folder = str(tmp_path / "ucla")
    _write_kinect20(folder, [0, 9, 4])
    split = load_split(folder, "train")
    assert split.layout == KINECT20 and split.num_class == 10
    assert split.data.shape == (3, 3, 300, 20, 1)
    _write_kinect20(folder, [0, 10, 4])
    with pytest.raises(
        ProcessedDataError,
        match=r"ucla: train sample 1 \(s1\) has label 10; "
        r"expected a label in 0..9 \(10 classes\)",
    ):
        load_split(folder, "train")  # no class count given
    _write_kinect20(folder, [0, 1], shape=(3, 300, 25, 2))
    with pytest.raises(
        ProcessedDataError,
        match=r"ucla: train_data_joint.npy has shape \(2, 3, 300, 25, 2\); "
        r"expected N x 3 x 300 x 20 x 1 \(layout kinect20\)",
    ):
        load_split(folder, "train")


def test_class_count_that_disagrees_with_the_record_names_both(tmp_path):
    folder = str(tmp_path / "ucla")
    _write_kinect20(folder, [0, 1])
    np.save(os.path.join(folder, "val_data_joint.npy"), np.zeros((1, 3, 300, 20, 1), np.float32))
    np.save(os.path.join(folder, "val_num_frame.npy"), np.full(1, 30))
    with open(os.path.join(folder, "val_label.pkl"), "wb") as f:
        pickle.dump((["v0"], [9]), f)
    assert [s.num_class for s in load_splits(folder, num_class=10)] == [10, 10]
    with pytest.raises(
        ProcessedDataError,
        match=r"ucla: 60 classes were asked for, but its layout.json records "
        r"10 \(dataset nw_ucla\)",
    ):
        load_splits(folder, num_class=60)
    with pytest.raises(ProcessedDataError, match=r"val sample 0 \(v0\) has label 9; expected a label in 0..4"):
        _write_kinect20(folder, [0, 1], num_class=5)
        load_splits(folder)


def test_two_dimensional_layout_from_the_record(tmp_path):
    folder = str(tmp_path / "coco")
    flat = Layout(
        name="tri2d",
        joints=("a", "b", "c"),
        parents=(0, 0, 1),
        centre=0,
        z_axis=(0, 1),
        x_axis=(1, 2),
        corrupted_joints=1,
        channels=2,
        bodies=2,
    )
    _write_part(folder, "train", 2)
    np.save(os.path.join(folder, "train_data_joint.npy"), np.zeros((2, 2, 300, 3, 2), np.float32))
    write_folder_record(folder, flat.to_dict(), 4, None)
    split = load_split(folder, "train")
    assert split.layout == flat and split.num_class == 4 and split.data.shape == (2, 2, 300, 3, 2)


@pytest.mark.parametrize(
    "text, found",
    [
        ('{"layout": ', "not a readable layout record"),
        ('{"layout": {"name": "x"}}', "missing fields"),
        (json.dumps({"layout": KINECT20.to_dict(), "num_class": 0}), "num_class must be a positive integer, found 0"),
        (
            json.dumps({"layout": KINECT20.to_dict(), "num_class": True}),
            "num_class must be a positive integer, found True",
        ),
        ("[" * 100_000, "not a readable layout record .maximum recursion depth"),  # nested too deep to parse
        (None, "not a readable layout record .*Is a directory"),  # a folder of the name is no missing record
    ],
)
def test_unreadable_layout_record_names_the_folder(tmp_path, text, found):
    folder = str(tmp_path / "xsub")
    _write_part(folder, "train", 2)
    if text is None:
        (tmp_path / "xsub" / "layout.json").mkdir()
    else:
        (tmp_path / "xsub" / "layout.json").write_text(text)
    with pytest.raises(ProcessedDataError, match=rf"processed folder {folder}: .*layout.json.*{found}"):
        load_split(folder, "train")


def test_fingerprint_follows_the_content_of_a_part(tmp_path, processed):
    a = processed(tmp_path / "a", n=(6, 2), seed=1)
    b = processed(tmp_path / "b", n=(6, 2), seed=1)  # the same content elsewhere
    assert fingerprint(a, "train") == fingerprint(b, "train") != fingerprint(a, "val")
    assert len(fingerprint(a)) == 16 and fingerprint(a) == fingerprint(a, "train")
    before = fingerprint(b)
    data = np.load(os.path.join(b, "train_data_joint.npy"))
    data[0, 0, 0, 0, 0] += 1  # the first block of the data
    np.save(os.path.join(b, "train_data_joint.npy"), data)
    assert fingerprint(b) != before
    np.save(os.path.join(b, "train_data_joint.npy"), np.load(os.path.join(a, "train_data_joint.npy")))
    assert fingerprint(b) == before
    np.save(os.path.join(b, "train_num_frame.npy"), np.full(6, 50))  # other frame counts
    assert fingerprint(b) != before
    processed(tmp_path / "b", n=(6, 2), seed=1)
    with open(os.path.join(b, "train_label.pkl"), "wb") as f:  # other labels
        pickle.dump(([f"train{i:03d}" for i in range(6)], [0] * 6), f)
    assert fingerprint(b) != before


def test_import_warnings_read_an_importers_summary_and_nothing_else(tmp_path):
    def warnings(record):
        (tmp_path / "settings.json").write_text(json.dumps(record))
        return import_warnings(str(tmp_path))

    summary = {"counts": {"train": 6, "val": 4}, "upside_down": 6, "x_axis_turned_over_90": 5}
    (only,) = warnings(summary)  # 6 of 10 is more than half, 5 is not
    assert only.startswith(f"{tmp_path}: 6 of its 10 recordings stood upside down once normalised when it was imported")
    assert warnings(dict(summary, x_axis_turned_over_90=6))[1].startswith(
        f"{tmp_path}: 6 of its 10 recordings had their x-axis pair turned over 90 degrees"
    )
    assert warnings(dict(summary, upside_down=5)) == []
    assert warnings(dict(summary, upside_down=None)) == []  # a 2-D layout's summary
    # a run's record (no counts), damaged or hand-edited counts: nothing, and no error
    assert warnings({"optim": {"lr": 0.05}, "upside_down": 6}) == []
    assert warnings(dict(summary, counts={"train": None, "val": "4"})) == []
    assert warnings(dict(summary, counts={"xsub/train": 6}, upside_down=6)) == []
    assert warnings(dict(summary, upside_down=True)) == []
    one = {"counts": {"train": 1, "val": 0}, "x_axis_turned_over_90": 0}
    assert warnings(dict(one, upside_down=1)) != [] and warnings(dict(one, upside_down=True)) == []  # True: no count
    assert warnings(dict(summary, counts=[6, 4])) == []
    (tmp_path / "settings.json").write_text("{not json")
    assert import_warnings(str(tmp_path)) == [] and import_warnings(str(tmp_path / "missing")) == []
