"""dataset/processed.py: restricted label unpickler, split validation, folder resolution."""
import os
import pickle

import numpy as np
import pytest

from dataset.processed import ProcessedDataError, load_label_pkl, load_split, resolve_data_dir


def _write_part(folder, part, n, labels=None, n_frames=None, n_names=None, frame_dtype='int64'):
    os.makedirs(folder, exist_ok=True)
    np.save(os.path.join(folder, f'{part}_data_joint.npy'), np.zeros((n, 3, 300, 25, 2), np.float32))
    np.save(os.path.join(folder, f'{part}_num_frame.npy'),
            np.full(n if n_frames is None else n_frames, 50, dtype=frame_dtype))
    names = [f's{i}' for i in range(n if n_names is None else n_names)]
    with open(os.path.join(folder, f'{part}_label.pkl'), 'wb') as f:
        pickle.dump((names, list(range(len(names))) if labels is None else labels), f)


@pytest.mark.parametrize('protocol', [2, 3, 4, 5])
def test_float_labels_from_the_published_pku_tool_load_as_int(tmp_path, protocol):
    # the published PKU converter stored label[i][0] - 1 taken from np.loadtxt: numpy float64 scalars
    path = tmp_path / 'l.pkl'
    path.write_bytes(pickle.dumps((['a.txt_0', 'a.txt_1'], [np.float64(4.0), np.float64(0.0)]), protocol=protocol))
    assert load_label_pkl(path) == (['a.txt_0', 'a.txt_1'], [4, 0])
    path.write_bytes(pickle.dumps((['x'], np.array([7.0])), protocol=protocol))
    assert load_label_pkl(path) == (['x'], [7])


class _Evil:
    def __reduce__(self):
        return (os.system, ('touch /tmp/cmd_test_pwned',))


def test_malicious_pickle_is_rejected_without_running_code(tmp_path):
    marker = '/tmp/cmd_test_pwned'
    if os.path.exists(marker):
        os.remove(marker)
    path = tmp_path / 'l.pkl'
    path.write_bytes(pickle.dumps((['a'], [_Evil()])))
    with pytest.raises(ProcessedDataError, match='not allowed'):
        load_label_pkl(path)
    assert not os.path.exists(marker)
    path.write_bytes(pickle.dumps((['a'], np.array([None], dtype=object))))
    with pytest.raises(ProcessedDataError, match='not numeric'):
        load_label_pkl(path)


def test_non_integral_label_and_bad_structure(tmp_path):
    path = tmp_path / 'l.pkl'
    path.write_bytes(pickle.dumps((['a'], [1.5])))
    with pytest.raises(ProcessedDataError, match='integral'):
        load_label_pkl(path)
    path.write_bytes(pickle.dumps({'names': []}))
    with pytest.raises(ProcessedDataError, match='pair'):
        load_label_pkl(path)


def test_load_split_reads_a_valid_folder(tmp_path):
    folder = str(tmp_path / 'xsub')
    _write_part(folder, 'train', 3, frame_dtype='int32')
    split = load_split(folder, 'train')
    assert len(split) == 3 and split.data.shape == (3, 3, 300, 25, 2)
    assert isinstance(split.data, np.memmap)
    assert split.num_frame.dtype == np.int64 and split.labels.tolist() == [0, 1, 2]
    assert split.names == ['s0', 's1', 's2']


@pytest.mark.parametrize('kw', [dict(n_frames=4), dict(n_names=2)])
def test_mismatched_lengths_name_the_folder(tmp_path, kw):
    folder = str(tmp_path / 'xview')
    _write_part(folder, 'val', 3, **kw)
    with pytest.raises(ProcessedDataError, match='xview.*disagree'):
        load_split(folder, 'val')


def test_missing_files_name_the_folder(tmp_path):
    with pytest.raises(ProcessedDataError, match='missing train_data_joint.npy'):
        load_split(str(tmp_path), 'train')


def test_resolve_data_dir():
    assert resolve_data_dir('ntu60', 'cross_subject') == os.path.join('./data/NTU-RGB-D-60-AGCN', 'xsub')
    assert resolve_data_dir('ntu120', 'cross_setup') == os.path.join('./data/NTU-RGB-D-120-AGCN', 'xsetup')
    assert resolve_data_dir('pku_v2', 'cross_view_semi') == os.path.join('./data/PKU-MMD-v2-AGCN', 'xview')
    assert resolve_data_dir('ntu60', 'cross_view', data_dir='/x') == '/x'
    with pytest.raises(ValueError, match='ntu60, ntu120, pku_v2'):
        resolve_data_dir('kinetics', 'cross_subject')
    with pytest.raises(ValueError, match='cross_setup'):
        resolve_data_dir('ntu60', 'xsub')
