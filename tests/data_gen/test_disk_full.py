"""A full disk or quota during conversion: a NoSpaceError naming the path, no temporaries, old outputs kept."""

import errno
import os
import re

import numpy as np
import pytest

from data_gen import writer
from dataset.files import NoSpaceError, is_temporary


def _failing_reservation(fd, offset, length):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _failing_third_write(calls):
    """A writer.write_rows whose third call meets an exhausted quota; records the files it was given."""
    original = writer.write_rows

    def write_rows(path, offset, rows):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
        original(path, offset, rows)

    return write_rows


def _failing_save(f, array):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _final_name(temporary):
    """The file a temporary name stands for: '.<name>.<pid>-<8 hex>.tmp<ext>' -> '<name>'."""
    folder, name = os.path.split(temporary)
    assert is_temporary(name), name
    return os.path.join(folder, re.fullmatch(r"\.(.+)\.\d+-[0-9a-f]{8}\.tmp(\.[^.]*)?", name).group(1))


@pytest.mark.parametrize("point", ["reserve", "rows", "finish"])
def test_full_disk_names_the_path_and_keeps_earlier_outputs(tmp_path, monkeypatch, point, ntu, tree):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "out")
    ntu.raw_set(raw)
    ntu.run(raw, out)
    before = tree(out)
    ntu.write(raw, "S001C001P001R001A005.skeleton", [[ntu.body([0, 0, 3], seed=7)]] * 5)
    calls = []
    if point == "reserve":  # the data files are allocated when created: a small disk fails at once
        monkeypatch.setattr(os, "posix_fallocate", _failing_reservation)
        path, reason = os.path.join(out, "xsub", "train_data_joint.npy"), errno.ENOSPC
    elif point == "rows":  # the quota runs out after two chunks were written
        monkeypatch.setattr(writer, "write_rows", _failing_third_write(calls))
        path, reason = None, errno.EDQUOT
    else:  # every row written, the frame counts cannot be
        monkeypatch.setattr(writer.np, "save", _failing_save)
        path, reason = os.path.join(out, "xsub", "train_num_frame.npy"), errno.ENOSPC
    with pytest.raises(SystemExit) as info:
        ntu.run(raw, out, "--chunk", "2")
    if point == "rows":
        path = _final_name(calls[2])  # the rows went to a temporary
        assert path.endswith("_data_joint.npy")
    # A message (exit status 1) from a NoSpaceError, the one disk-full error, naming the file being written.
    message = str(info.value)
    assert message.startswith(f"error: no space left on {path}: {os.strerror(reason)}; ")  # the OS's reason
    assert message.endswith("; the partial file was removed and files written earlier are unchanged")
    error = info.value.__context__
    assert isinstance(error, NoSpaceError) and isinstance(error, OSError) and error.errno == reason
    assert not isinstance(error, writer.ConversionError)
    assert isinstance(error.__cause__, OSError) and error.__cause__.errno == reason  # the error met
    assert tree(out) == before  # byte-identical, no temporaries


def test_rows_are_written_by_file_writes_at_their_offsets(tmp_path, monkeypatch):
    # a memory-mapped write into a full disk dies of SIGBUS; rows must go through write calls
    monkeypatch.setattr(np, "memmap", None)
    made = []
    part = writer.PartWriter(str(tmp_path), "train", 3, made)
    rows = np.arange(3 * 3 * 300 * 25 * 2, dtype=np.float32).reshape(3, 3, 300, 25, 2)
    part.add(rows[:2], np.array([5, 6]), [writer.Sample("a", 0, {}), writer.Sample("b", 1, {})])
    part.add(rows[2:], np.array([7]), [writer.Sample("c", 2, {})])
    part.finish()
    part.commit()
    monkeypatch.undo()
    np.testing.assert_array_equal(np.load(tmp_path / "train_data_joint.npy"), rows)
    np.testing.assert_array_equal(np.load(tmp_path / "train_num_frame.npy"), [5, 6, 7])
    assert len(made) == 3 and not any(os.path.exists(t) for t in made)  # its temporaries, all renamed
    assert sorted(os.listdir(tmp_path)) == ["train_data_joint.npy", "train_label.pkl", "train_num_frame.npy"]


def test_file_system_that_cannot_allocate_ahead_still_converts(tmp_path, monkeypatch, ntu, tree):
    raw = str(tmp_path / "raw")
    ntu.raw_set(raw)
    ntu.run(raw, str(tmp_path / "allocated"))

    def unsupported(fd, offset, length):
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    ntu.run(raw, str(tmp_path / "sparse"))
    allocated, sparse = tree(str(tmp_path / "allocated")), tree(str(tmp_path / "sparse"))
    assert allocated.keys() == sparse.keys()
    assert all(allocated[k] == sparse[k] for k in allocated if k != "settings.json")  # settings name the folder
