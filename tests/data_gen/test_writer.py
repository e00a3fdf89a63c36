"""The shared converter (data_gen.writer.convert) holds any importer's reader to the processed format:
whatever a new reader returns or raises, a bad sample is an error naming its file (or skipped with
--skip-bad) before anything is written, never a folder that is refused when it is opened."""

import errno
import importlib
import json
import os

import numpy as np
import pytest

from data_gen.writer import ConversionError, Sample, Task, convert
from dataset.files import FolderInUseError, claim_folder
from dataset.layouts import KINECT20, read_folder_record
from dataset.processed import load_split
from tests.helpers import write_processed

GOOD = np.full((3, 10, 20, 1), 0.1, dtype=np.float32)  # C x T x V x M of kinect20, 10 frames


def good(label=None):
    return (GOOD + 0.01 * np.arange(20, dtype=np.float32)[:, None], 10) + (() if label is None else (label,))


def reader(kind):
    """A reader of a made-up format: a good recording, or one way of being bad."""
    results = {
        "good": [good()],
        "nan": [(np.where(GOOD > 0, np.nan, GOOD), 10)],
        "far": [(GOOD * 1e6, 10)],
        "joints": [(np.zeros((3, 10, 25, 1), np.float32) + 0.1, 10)],
        "frames": [(GOOD, 400)],
        "count": [good(), good()],
        "label": [good(label=8)],
        "not a tuple": [GOOD],
        "text array": [(np.full(GOOD.shape, "a"), 10)],
        "empty": [(GOOD[:, :0], 0)],
        "far once centred": [(np.concatenate([GOOD[:, :, :1] - 9000, GOOD[:, :, 1:] + 9000], axis=2), 10)],
    }
    if kind == "index":
        return [][1]
    if kind == "text":
        return float("abc")
    if kind == "read error":  # a read() that fails (a bad sector, a network file system): no file name in it
        raise OSError(errno.EIO, "Input/output error")
    return results[kind]


def tasks(bad, label=0):
    sample = Sample("bad", None if bad == "label" else label, {"xsub": "train"})
    return [
        Task("good.txt", reader, ("good",), [Sample("good1", 1, {"xsub": "train"})]),
        Task(f"{bad}.txt", reader, (bad,), [sample]),
        Task("good2.txt", reader, ("good",), [Sample("good2", 2, {"xsub": "val"})]),
    ]


def run(task_list, out, **options):
    """convert() of kinect20 samples of 6 classes into benchmark 'xsub' of `out`, quietly."""
    return convert(
        task_list, str(out), ["xsub"], {}, num_class=6, dataset="mine", layout=KINECT20, progress=False, **options
    )


@pytest.mark.parametrize(
    "bad, problem",
    [
        ("nan", "holds a coordinate nan: not finite"),
        ("far", "beyond"),
        ("joints", r"its array is float32 \(3, 10, 25, 1\), not numbers of 3 x frames x 20 x 1 \(kinect20\)"),
        ("text array", r"its array is <U1 \(3, 10, 20, 1\), not numbers"),
        ("frames", "holds 10 frames, its frame count says 400"),
        ("count", "1 samples expected, the reader gave 2"),
        ("label", r"its label 8 is not an integer in 0\.\.5"),
        ("not a tuple", "the reader returned ndarray"),
        ("index", "IndexError: list index out of range"),
        ("text", "could not convert string to float"),
        ("read error", r"\[Errno 5\] Input/output error"),
    ],
)
def test_a_bad_result_names_its_file_and_nothing_is_written(tmp_path, bad, problem):
    out = tmp_path / "out"
    with pytest.raises(ConversionError, match=rf"^{bad}\.txt: .*{problem}"):
        run(tasks(bad), out)
    leftovers = [name for _, _, files in os.walk(out) for name in files if name != ".claim"]
    assert leftovers == []  # nothing half-written, no processed folder to be refused later (.claim: the lock)

    # with --skip-bad the sample is listed in skipped.txt and the others converted
    run(tasks(bad), out, skip_bad=True)
    assert (out / "skipped.txt").read_text().startswith(f"{bad}.txt\tbad: ")
    train = load_split(str(out / "xsub"), "train")
    assert train.names == ["good1"] and list(train.labels) == [1]


def test_a_label_given_by_the_importer_is_checked_too(tmp_path):
    with pytest.raises(ConversionError, match=r"^bad: .*sample bad: its label 9 is not an integer in 0\.\.5"):
        run([Task("bad", reader, ("good",), [Sample("bad", 9, {"xsub": "train"})])], tmp_path / "out")
    with pytest.raises(ConversionError, match=r"sample bad: its label 6 is not an integer in 0\.\.5"):  # one past
        run([Task("bad", reader, ("good",), [Sample("bad", 6, {"xsub": "train"})])], tmp_path / "out")


def test_a_dead_conversions_temporaries_in_a_benchmark_folder_are_removed(tmp_path):
    dead = tmp_path / "out" / "xsub" / ".train_label.pkl.4194000-deadbeef.tmp.pkl"  # a process long gone
    dead.parent.mkdir(parents=True)
    dead.write_bytes(b"half a file")
    run(tasks("good"), tmp_path / "out")
    assert not dead.exists() and (tmp_path / "out" / "xsub" / "train_label.pkl").is_file()


def scaled(by):
    """A reader of one recording, scaled by 1 + `by` (0: the same recording as every other scaled(0))."""
    base = np.random.default_rng(0).uniform(-1, 1, GOOD.shape).astype(np.float32)
    return [(base * np.float32(1 + by), 10)]


def test_val_samples_identical_to_train_samples_are_counted_and_named(tmp_path, capsys):
    # NW-UCLA holds such copies: a val recording byte-identical to a train one, which 1-NN always finds
    parts = [("t0", "train", 0.0), ("t1", "train", 0.5), ("v0", "val", 0.0), ("v1", "val", 0.25), ("v2", "val", 0.5)]
    tasks = [Task(f"{name}.txt", scaled, (by,), [Sample(name, 1, {"xsub": part})]) for name, part, by in parts]
    out = tmp_path / "out"
    convert(tasks, str(out), ["xsub"], {}, num_class=2, dataset="mine", layout=KINECT20, progress=False)
    assert f"warning: {out / 'xsub'}: 2 of its 3 val samples are identical to a train sample (the first: v0 = t0)" in (
        capsys.readouterr().out
    )
    assert json.loads((out / "settings.json").read_text())["val_identical_to_train"] == {"xsub": 2}


def test_classes_left_without_a_train_sample_are_named(tmp_path, capsys):
    # the only train sample of label 3 is bad and skipped: its val samples can no longer be learnt
    parts = [("t0", "train", 1, "good"), ("t1", "train", 3, "nan"), ("v0", "val", 1, "good"), ("v1", "val", 3, "good")]
    tasks = [Task(f"{n}.txt", reader, (kind,), [Sample(n, label, {"xsub": part})]) for n, part, label, kind in parts]
    out = tmp_path / "out"
    run(tasks, out, skip_bad=True)
    assert (
        f"warning: {out / 'xsub'}: val samples of 1 class(es) that no train sample has (0-based labels 3)"
        in capsys.readouterr().out
    )


@pytest.mark.parametrize("converter", ["ntu_gendata", "pku_gendata", "ucla_gendata", "msr_gendata", "pyskl_gendata"])
def test_no_converter_writes_into_its_own_source(tmp_path, capsys, converter):
    module = importlib.import_module(f"data_gen.{converter}")
    source = tmp_path / "raw"
    source.mkdir()
    flag = "--annotations" if converter == "pyskl_gendata" else "--data-path"
    extra = ["--layout", "ntu25", "--train-split", "a", "--val-split", "b"] if converter == "pyskl_gendata" else []
    extra += ["--dataset", "ntu60"] if converter == "ntu_gendata" else []
    with pytest.raises(SystemExit) as stop:
        module.main([flag, str(source), "--out-folder", str(source), *extra])
    assert stop.value.code == 2 and f"--out-folder must not be the {flag} {source}" in capsys.readouterr().err
    assert os.listdir(source) == []


def test_a_recording_of_no_frame_is_skipped_as_having_no_body(tmp_path, capsys):
    run(tasks("empty"), tmp_path / "out")
    assert "warning: skipping bad: no body in any frame" in capsys.readouterr().out
    assert (tmp_path / "out" / "skipped.txt").read_text() == "bad\tno body in any frame\n"


def test_recordings_of_a_single_frame_are_counted_and_named(tmp_path, capsys):
    # one frame: a view repeats it, so its motion stream (frame differences) is all zeros
    results = {"one": [(GOOD[:, :1], 1)], "two": [(GOOD[:, :2], 2)]}
    parts = [("t0", "train", "one"), ("t1", "train", "two"), ("v0", "val", "one")]
    tasks = [Task(f"{n}.txt", results.get, (kind,), [Sample(n, 1, {"xsub": part})]) for n, part, kind in parts]
    run(tasks, tmp_path / "out")
    out = capsys.readouterr().out
    assert "warning: 2 recording(s) hold a single frame (the first: t0); their motion stream" in out
    assert json.loads((tmp_path / "out" / "settings.json").read_text())["single_frame"] == 2


def test_a_coordinate_beyond_the_bound_once_normalised_is_bad_input(tmp_path):
    # within +-10000 as read; the centre joint's -9000 subtracted from +9000 makes 18000, which the
    # folder would be refused for when opened
    with pytest.raises(ConversionError, match=r"^far once centred\.txt: sample bad: normalised, a coordinate reaches"):
        run(tasks("far once centred"), tmp_path / "out")
    out = tmp_path / "skip"
    run(tasks("far once centred"), out, skip_bad=True)
    assert (
        (out / "skipped.txt")
        .read_text()
        .startswith("far once centred.txt\tbad: far once centred.txt: sample bad: normalised")
    )
    assert load_split(str(out / "xsub"), "train").names == ["good1"]


def _standing(mirrored=False, far=False):
    """A kinect20 recording (3 x 10 x 20 x 1) 3 m from a Kinect, facing it (the right shoulder at the larger x;
    `mirrored`: x negated); `far`: the hip centre 18,000 below the spine, beyond the bound once centred."""
    joints = np.tile([0.0, 0.0, 3.0], (20, 1))
    joints[0] = (0.0, -0.3, 3.0)  # hip centre below the spine (joint 1)
    joints[4], joints[8] = (-0.2, 0.25, 3.05), (0.2, 0.25, 3.0)  # left, right shoulder
    joints[[2, 3]] = (0.0, 0.25, 3.0), (0.0, 0.45, 3.0)
    if far:
        joints[:, 1] += 9000.0
        joints[0, 1] = -9000.0
    if mirrored:
        joints[:, 0] *= -1
    return (np.broadcast_to(joints.T[:, None, :, None], (3, 10, 20, 1)).astype(np.float32).copy(), 10)


def test_the_shoulder_turn_is_counted_for_the_samples_written(tmp_path, capsys):
    # The first recording is rejected (beyond the bound once centred): neither it nor its turn counts.
    kinds = [("rejected", True, True), ("m1", True, False), ("m2", True, False), ("f", False, False)]
    task_list = [
        Task(f"{name}.txt", lambda m, f: [_standing(m, f)], (m, f), [Sample(name, 0, {"xsub": "train"})])
        for name, m, f in kinds
    ]
    run(task_list, tmp_path / "out", skip_bad=True)
    printed = capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "settings.json").read_text())["x_axis_turned_over_90"] == 2
    assert "warning: 2 of the 3 samples had their left shoulder -> right shoulder vector turned more than 90" in printed
    assert "(the first: m1)" in printed


def test_another_data_sets_processed_data_is_not_replaced(tmp_path, tree):
    out = tmp_path / "out"
    run(tasks("good"), out)  # dataset "mine", benchmark subfolder xsub
    before = tree(out)
    good_tasks = [Task("good.txt", reader, ("good",), [Sample("g", 1, {"xsub": "train"})])]

    def again(folder, dataset, **options):
        convert(
            good_tasks,
            str(folder),
            ["xsub"],
            {},
            num_class=6,
            dataset=dataset,
            layout=KINECT20,
            progress=False,
            **options,
        )

    with pytest.raises(ConversionError, match=rf"{out / 'xsub'} holds the processed data of mine \(its layout.json\)"):
        again(out, "other")
    # one folder written straight into the first conversion's root would sit beside its subfolders
    with pytest.raises(ConversionError, match=r"holds the processed folders of an earlier conversion \(xsub\)"):
        again(out, "mine", subfolders=False)
    # converting with subfolders into a folder that is itself another data set's processed data
    single = tmp_path / "single"
    again(single, "mine", subfolders=False)
    kept = tree(single)
    with pytest.raises(ConversionError, match=rf"{single} is itself a processed folder \(train_data_joint.npy\)"):
        again(single, "other")
    assert tree(single) == kept
    assert tree(out) == before
    # without its layout.json (as a published tool's folder), the conversion's settings.json still names mine
    record = (out / "xsub" / "layout.json").read_bytes()
    (out / "xsub" / "layout.json").unlink()
    with pytest.raises(ConversionError, match=rf"{out} holds the processed data of mine \(its settings.json\)"):
        again(out, "other")
    # ... and a folder with neither, of samples of another skeleton than this conversion's (NTU's 25 joints)
    published = write_processed(tmp_path / "published" / "xsub", layout="ntu25")
    kept = tree(published)
    with pytest.raises(
        ConversionError, match=rf"{published} holds processed data of samples 3 x 300 x 25 x 2, not kinect20's"
    ):
        again(tmp_path / "published", "mine")
    assert tree(published) == kept
    (out / "xsub" / "layout.json").write_bytes(record)
    assert tree(out) == before
    (out / "xsub" / "layout.json").write_bytes(b"\xff\xfe not a record")  # unreadable: replaced, no traceback
    run(tasks("good"), out)  # the same data set again: converted afresh
    assert read_folder_record(str(out / "xsub"))[2] == "mine"  # the unreadable record rewritten


def test_a_conversion_into_a_folder_whose_benchmark_folder_is_held_is_refused(tmp_path, tree):
    # another conversion writing straight into out/xsub holds it: one into out (benchmark xsub) must not run
    # beside it, or the last to finish replaces the other's arrays
    run(tasks("good"), tmp_path / "out")
    before = tree(tmp_path / "out")
    held = claim_folder(str(tmp_path / "out" / "xsub"), "conversion")
    try:
        with pytest.raises(FolderInUseError, match=rf"{tmp_path / 'out' / 'xsub'} is in use by pid {os.getpid()}"):
            run(tasks("good"), tmp_path / "out")
    finally:
        held.release()
    assert tree(tmp_path / "out") == before
    run(tasks("good"), tmp_path / "out")  # the claims of the refused run were released with it


def test_the_chunk_size_changes_nothing_written_or_said(tmp_path, capsys):
    # chunks of 1, 2 and 3 samples split what 128 converts at once: a copy and its first train twin (t0,
    # not the later t2) in different chunks, a bad file and one beyond the bound once centred skipped,
    # a file holding two samples
    def task(name, part, by, kind=None):
        read, args = (reader, (kind,)) if kind else (scaled, (by,))
        names = [f"{name}.0", f"{name}.1"] if kind == "count" else [name]
        samples = [Sample(n, 1, {"xsub": part}) for n in names]
        return Task(f"{name}.txt", read, args, samples)

    parts = [("t0", "train", 0.0), ("t1", "train", 0.5), ("nan", "train", 0, "nan"), ("t2", "train", 0.0)]
    parts += [("two", "train", 0, "count"), ("far", "val", 0, "far once centred"), ("v0", "val", 0.0)]
    parts += [("v1", "val", 0.25), ("v2", "val", 0.5)]
    outputs = []
    for chunk in (1, 2, 3, 128):
        out = tmp_path / str(chunk)
        convert([task(*p) for p in parts], str(out), ["xsub"], {}, num_class=2, dataset="mine", layout=KINECT20,
                progress=False, skip_bad=True, chunk=chunk)  # fmt: skip
        said = capsys.readouterr().out.replace(str(out), "OUT")
        files = {f: (out / "xsub" / f).read_bytes() for f in sorted(os.listdir(out / "xsub")) if f != "settings.json"}
        outputs.append((said, files, (out / "skipped.txt").read_text()))
    assert "OUT/xsub: 2 of its 3 val samples are identical to a train sample (the first: v0 = t0)" in outputs[0][0]
    assert len(load_split(str(tmp_path / "1" / "xsub"), "train").names) == 5  # t0, t1, t2, two.0, two.1
    assert [line.split("\t")[0] for line in outputs[0][2].splitlines()] == ["nan.txt", "far.txt"]
    assert all(output == outputs[-1] for output in outputs[:-1])


def test_a_folder_or_file_in_the_way_of_the_outputs_is_refused_before_any_work(tmp_path, tree):
    out = tmp_path / "out"
    run(tasks("good"), out)
    (out / "xsub" / "val_label.pkl").unlink()
    (out / "xsub" / "val_label.pkl").mkdir()  # the renames stopped there, the train part already replaced
    before = tree(str(out))
    read = []

    def counted(kind):
        read.append(kind)
        return reader(kind)

    again = [
        Task(f"{n}.txt", counted, ("good",), [Sample(n, 3, {"xsub": p})]) for n, p in (("a", "train"), ("b", "val"))
    ]
    with pytest.raises(ConversionError, match=r"xsub/val_label\.pkl is a folder, where this conversion writes a file"):
        run(again, out)
    assert tree(str(out)) == before and not read  # nothing read, nothing replaced
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    (elsewhere / "xsub").write_text("notes")
    with pytest.raises(ConversionError, match=r"other/xsub is not a folder, where this conversion writes a folder"):
        run(tasks("good"), elsewhere)
    assert (elsewhere / "xsub").read_text() == "notes"
    (elsewhere / "xsub").unlink()
    (elsewhere / "settings.json").mkdir()  # was called an unreadable settings.json, of a conversion or a run
    with pytest.raises(ConversionError, match=r"other/settings\.json is a folder, where this conversion writes a file"):
        run(tasks("good"), elsewhere)
