"""Pretraining feeder and seeding: view shapes, reproducible streams, independence from workers."""

import os
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dataset.processed import ProcessedDataError, load_split
from feeder import augmentations as aug
from feeder.augmentations import ViewSettings
from feeder.feeder_pretraining import PretrainingFeeder
from feeder.seeding import epoch_generator, sample_generator, worker_init_fn


@pytest.fixture(scope="module")
def folder(tmp_path_factory, processed):
    return processed(tmp_path_factory.mktemp("feeder"), n=(6, 2), seed=1)


def train_part(folder):
    return load_split(folder, "train")


def test_views_are_the_views_of_the_sample_from_its_own_stream(folder):
    feeder = PretrainingFeeder(train_part(folder), seed=7)
    feeder.set_epoch(3)
    im_q, im_k = feeder[4]
    assert im_q.shape == im_k.shape == (3, 64, 25, 2) and im_q.dtype == torch.float32
    data = torch.from_numpy(np.load(f"{folder}/train_data_joint.npy")[4:5])  # 1 x 3 x 300 x 25 x 2
    frames = torch.from_numpy(np.load(f"{folder}/train_num_frame.npy")[4:5])  # 1
    # the stream of (seed, epoch, index): a torch generator seeded from SeedSequence([7, 3, 4])
    state = np.random.SeedSequence([7, 3, 4]).generate_state(1, dtype=np.uint64)[0]
    generator = torch.Generator().manual_seed(int(state) & (2**63 - 1))
    expected_q, expected_k = aug.pretraining_views(data, frames, generator)
    torch.testing.assert_close(im_q, expected_q[0], rtol=0, atol=0)
    torch.testing.assert_close(im_k, expected_k[0], rtol=0, atol=0)
    assert not torch.equal(im_q, im_k)


def test_view_settings_reach_the_views(folder):
    # view length, minimum crop and corrupted joints are those given, drawn from the sample's stream
    feeder = PretrainingFeeder(train_part(folder), seed=7, views=ViewSettings(32, 16, 5))
    feeder.set_epoch(1)
    im_q, im_k = feeder[3]
    assert im_q.shape == im_k.shape == (3, 32, 25, 2)
    data = torch.from_numpy(np.load(f"{folder}/train_data_joint.npy")[3:4])  # 1 x 3 x 300 x 25 x 2
    frames = torch.from_numpy(np.load(f"{folder}/train_num_frame.npy")[3:4])  # 1
    expected_q, expected_k = aug.pretraining_views(
        data, frames, sample_generator(7, 1, 3), ViewSettings(view_frames=32, min_crop_frames=16, corrupted_joints=5)
    )
    torch.testing.assert_close(im_q, expected_q[0], rtol=0, atol=0)
    torch.testing.assert_close(im_k, expected_k[0], rtol=0, atol=0)


def test_a_short_recording_is_cropped_only_below_the_published_minimum(tmp_path, processed):
    # 31 frames: with the published minimum of 64 both views hold the whole recording, so every view's
    # crop is (0, 31); with a minimum of 16 the crops are 16..31 frames (feeder.augmentations)
    folder = processed(tmp_path / "short", n=(4, 1), frames=31)
    for min_crop, allowed in ((64, {31}), (16, set(range(16, 32)))):
        feeder = PretrainingFeeder(train_part(folder), seed=2, views=ViewSettings(min_crop_frames=min_crop))
        lengths = set()
        for index in range(4):
            params = aug.draw_view_params(
                torch.tensor([31, 31]), sample_generator(2, 0, index), min_crop_frames=min_crop
            )
            lengths |= set(params["length"].tolist())
            data = torch.from_numpy(np.load(f"{folder}/train_data_joint.npy")[index : index + 1, :, :31])
            expected = aug.apply_view(torch.cat([data, data]), params)  # 2 x 3 x 64 x 25 x 2
            im_q, im_k = feeder[index]
            torch.testing.assert_close(torch.stack([im_q, im_k]), expected, rtol=0, atol=0)
        assert lengths <= allowed and (min_crop == 64 or min(lengths) < 31)  # 16: some views are cropped


def test_views_change_with_epoch_and_seed_and_repeat_otherwise(folder):
    feeder = PretrainingFeeder(train_part(folder), seed=7)
    first = feeder[2][0]
    assert torch.equal(first, feeder[2][0])
    feeder.set_epoch(1)
    assert not torch.equal(first, feeder[2][0])
    assert not torch.equal(first, PretrainingFeeder(train_part(folder), seed=8)[2][0])


def test_loader_batches_do_not_depend_on_workers(folder):
    feeder = PretrainingFeeder(train_part(folder), seed=5)
    feeder.set_epoch(2)
    batches = {}
    for workers in (0, 2):
        loader = DataLoader(feeder, batch_size=3, num_workers=workers, worker_init_fn=worker_init_fn)
        batches[workers] = torch.cat([q for q, _ in loader])
    assert torch.equal(batches[0], batches[2])
    # the two workers drew different views: no two samples share a view
    flat = batches[2].reshape(6, -1)
    assert len({tuple(row[:8].tolist()) for row in flat}) == 6


@pytest.mark.slow  # workers started by spawn (macOS's and Windows' start method; Linux's forkserver is alike)
def test_loader_batches_are_the_same_from_spawned_workers(folder):
    feeder = PretrainingFeeder(train_part(folder), seed=5)
    feeder.set_epoch(2)
    alone = torch.cat([q for q, _ in DataLoader(feeder, batch_size=3)])
    loader = DataLoader(
        feeder, batch_size=3, num_workers=2, worker_init_fn=worker_init_fn, multiprocessing_context="spawn"
    )
    assert torch.equal(torch.cat([q for q, _ in loader]), alone)


def test_raw_mode_returns_the_sample_and_its_frame_count(folder):
    feeder = PretrainingFeeder(train_part(folder), mode="raw")
    data, frames = feeder[1]
    np.testing.assert_array_equal(data.numpy(), np.load(f"{folder}/train_data_joint.npy")[1])
    assert frames == int(np.load(f"{folder}/train_num_frame.npy")[1])


def test_frame_counts_above_the_array_length_are_capped(tmp_path, processed):
    folder = processed(tmp_path / "long", n=(2, 4), frames=412)
    assert PretrainingFeeder(train_part(folder), mode="raw")[0][1] == 300
    assert PretrainingFeeder(train_part(folder))[0][0].shape == (3, 64, 25, 2)


def test_streams_are_distinct_and_reproducible():
    assert torch.equal(
        torch.rand(4, generator=sample_generator(1, 2, 3)), torch.rand(4, generator=sample_generator(1, 2, 3))
    )
    draws = {torch.rand(1, generator=sample_generator(1, e, i)).item() for e in range(3) for i in range(3)}
    assert len(draws) == 9
    assert torch.rand(1, generator=sample_generator(1, 0, 0)).item() not in {
        torch.rand(1, generator=epoch_generator(1, 0, r)).item() for r in range(3)
    }
    a = torch.rand(4, generator=epoch_generator(1, 0, 0))
    assert torch.equal(a, torch.rand(4, generator=epoch_generator(1, 0, 0)))
    assert not torch.equal(a, torch.rand(4, generator=epoch_generator(1, 1, 0)))
    assert not torch.equal(a, torch.rand(4, generator=epoch_generator(1, 0, 1)))
    # a negative value is its 64-bit two's complement, not its magnitude: -1 is 2**64 - 1, and not 1
    minus_one = torch.rand(4, generator=sample_generator(-1, 0, 0))
    assert torch.equal(minus_one, torch.rand(4, generator=sample_generator(2**64 - 1, 0, 0)))
    assert not torch.equal(minus_one, torch.rand(4, generator=sample_generator(1, 0, 0)))


def test_pickled_feeder_maps_its_data_file_instead_of_copying_the_data(folder):
    feeder = PretrainingFeeder(train_part(folder), seed=3)
    feeder.set_epoch(4)
    blob = pickle.dumps(feeder)
    assert len(blob) < 20_000  # the data array alone is 6 x 180,000 bytes
    copy = pickle.loads(blob)
    assert copy.epoch == 4 and torch.equal(copy[5][1], feeder[5][1])


def test_a_pickled_feeder_keeps_its_split_as_loaded_and_maps_its_data_file_again(tmp_path, processed):
    folder = processed(tmp_path / "data", n=(6, 2), seed=1)
    split = replace(train_part(folder), num_class=60)  # as an evaluation sets a folder's published count
    blob = pickle.dumps(PretrainingFeeder(split, seed=3))
    os.remove(f"{folder}/train_label.pkl")  # the split is not read again from its folder
    copy = pickle.loads(blob)
    assert isinstance(copy.split.data, np.memmap) and copy.split.num_class == 60
    assert copy.split.names == split.names and np.array_equal(copy.split.labels, split.labels)
    np.save(f"{folder}/train_data_joint.npy", np.zeros((5, 3, 300, 25, 2), np.float32))  # another conversion's
    with pytest.raises(ProcessedDataError, match=r"train_data_joint\.npy was replaced .*\(5, 3, 300, 25, 2\)"):
        pickle.loads(blob)
    np.save(f"{folder}/train_data_joint.npy", np.zeros((6, 3, 300, 25, 2), np.float64))
    with pytest.raises(ProcessedDataError, match=r"was replaced .*'<f8'"):
        pickle.loads(blob)


def test_a_feeder_over_part_of_a_mapped_file_pickles_that_part(tmp_path, processed):
    folder = processed(tmp_path / "data", n=(6, 2), seed=1)
    split = train_part(folder)
    part = replace(split, data=split.data[2:4], names=split.names[2:4], labels=split.labels[2:4])
    copy = pickle.loads(pickle.dumps(PretrainingFeeder(part, seed=3)))
    np.testing.assert_array_equal(copy.split.data, np.load(f"{folder}/train_data_joint.npy")[2:4])


def test_unknown_mode_is_rejected(folder):
    with pytest.raises(ValueError, match="unknown feeder mode"):
        PretrainingFeeder(train_part(folder), mode="both")
