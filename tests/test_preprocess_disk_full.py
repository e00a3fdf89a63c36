"""A full disk or quota during conversion: a clear error naming the path, no temporaries, old outputs kept."""
import errno
import os

import numpy as np
import pytest

from data_gen import writer
from tests.test_preprocess_ntu import _body, _raw_set, _run, _tree, _write


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


@pytest.mark.parametrize('point', ['reserve', 'rows', 'finish'])
def test_full_disk_names_the_path_and_keeps_earlier_outputs(tmp_path, monkeypatch, point):
    raw, out = str(tmp_path / 'raw'), str(tmp_path / 'out')
    _raw_set(raw)
    _run(raw, out)
    before = _tree(out)
    _write(raw, 'S001C001P001R001A005.skeleton', [[_body([0, 0, 3], seed=7)]] * 5)
    calls = []
    if point == 'reserve':       # the data files are allocated when created: a small disk fails at once
        monkeypatch.setattr(os, 'posix_fallocate', _failing_reservation)
        path, reason = os.path.join(out, 'xsub', 'train_data_joint.npy'), 'No space left on device'
    elif point == 'rows':        # the quota runs out after two chunks were written
        monkeypatch.setattr(writer, 'write_rows', _failing_third_write(calls))
        path, reason = None, 'Disk quota exceeded'
    else:                        # every row written, the frame counts cannot be
        monkeypatch.setattr(writer.np, 'save', _failing_save)
        path, reason = os.path.join(out, 'xsub', 'train_num_frame.npy'), 'No space left on device'
    with pytest.raises(SystemExit) as info:
        _run(raw, out, '--chunk', '2')
    if point == 'rows':
        folder, name = os.path.split(calls[2])
        path = os.path.join(folder, name.split('-', 2)[2])                  # .tmp-<pid>-<name> -> <name>
        assert name.endswith('_data_joint.npy')
    assert str(info.value) == (f'error: no space left on {path} ({reason}): the conversion stopped, removed its '
                               f'partial files and left earlier outputs as they were')
    assert _tree(out) == before                                             # byte-identical, no temporaries


def test_rows_are_written_by_file_writes_at_their_offsets(tmp_path, monkeypatch):
    # a memory-mapped write into a full disk dies of SIGBUS; rows must go through write calls
    monkeypatch.setattr(np, 'memmap', None)
    part = writer.PartWriter(str(tmp_path), 'train', capacity=3)
    rows = np.arange(3 * 3 * 300 * 25 * 2, dtype=np.float32).reshape(3, 3, 300, 25, 2)
    part.add(rows[:2], np.array([5, 6]), [writer.Sample('a', 0, {}), writer.Sample('b', 1, {})])
    part.add(rows[2:], np.array([7]), [writer.Sample('c', 2, {})])
    part.finish()
    part.commit()
    monkeypatch.undo()
    np.testing.assert_array_equal(np.load(tmp_path / 'train_data_joint.npy'), rows)
    np.testing.assert_array_equal(np.load(tmp_path / 'train_num_frame.npy'), [5, 6, 7])


def test_file_system_that_cannot_allocate_ahead_still_converts(tmp_path, monkeypatch):
    raw = str(tmp_path / 'raw')
    _raw_set(raw)
    _run(raw, str(tmp_path / 'allocated'))

    def unsupported(fd, offset, length):
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))
    monkeypatch.setattr(os, 'posix_fallocate', unsupported)
    _run(raw, str(tmp_path / 'sparse'))
    allocated, sparse = _tree(str(tmp_path / 'allocated')), _tree(str(tmp_path / 'sparse'))
    assert allocated.keys() == sparse.keys()
    assert all(allocated[k] == sparse[k] for k in allocated if k != 'settings.json')   # settings name the folder
