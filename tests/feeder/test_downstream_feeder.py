"""Downstream inputs (docs/published-behaviour.md §2.2) on hand-worked ramps, and the semi-supervised subset."""

import json
import pickle

import numpy as np
import pytest

from dataset.processed import Split, load_split
from engine.evaluate import save_subset
from feeder.feeder_downstream import DownstreamFeeder, semi_subset


def _ramp_split(frames):
    """Samples whose every coordinate at frame t equals t (t < frames), zeros after."""
    n = len(frames)
    data = np.zeros((n, 3, 300, 25, 2), dtype=np.float32)
    for i, f in enumerate(frames):
        data[i, :, :f] = np.arange(f, dtype=np.float32)[None, :, None, None]
    return Split(
        folder="ramp",
        part="train",
        data=data,
        num_frame=np.asarray(frames, dtype=np.int64),
        names=[f"s{i}" for i in range(n)],
        labels=np.arange(n, dtype=np.int64) % 4,
    )


@pytest.mark.parametrize(
    "n, ratio, size",
    [(1000, 0.01, 10), (37, 0.05, 1), (40091, 0.01, 400), (40091, 0.1, 4009), (203, 0.2, 40), (55, 1.0, 55)],
)
def test_subset_size_is_int_n_times_ratio(n, ratio, size):
    chosen = semi_subset(n, ratio, seed=3)
    assert len(chosen) == size
    assert len(set(chosen.tolist())) == size and chosen.min() >= 0 and chosen.max() < n
    assert np.all(np.diff(chosen) > 0)


def test_subset_is_reproduced_by_its_seed_and_changes_with_it():
    a, b, c = semi_subset(5000, 0.05, seed=1), semi_subset(5000, 0.05, seed=1), semi_subset(5000, 0.05, seed=2)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_subset_rejects_empty_or_bad_ratios():
    with pytest.raises(ValueError, match="selects no sample"):
        semi_subset(50, 0.01, seed=0)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        semi_subset(50, 1.5, seed=0)


def test_subset_record(tmp_path):
    split = _ramp_split([70] * 10)
    chosen = semi_subset(10, 0.3, seed=4)
    path = tmp_path / "train_subset.json"
    save_subset(str(path), chosen, split, 0.3, 4)
    record = json.loads(path.read_text())
    assert record["seed"] == 4 and record["size"] == 3 and record["folder"] == "ramp" and record["ratio"] == 0.3
    assert record["names"] == [f"s{i}" for i in chosen] and record["labels"] == [int(i % 4) for i in chosen]


def test_validation_is_the_centre_crop_resized_to_64():
    # 100 frames: start = int(0.05 * 100 / 2) = 2, frames [2, 98) (96 frames) resized to 64:
    # output frame j samples source position 1.5 j + 0.25 of the crop, i.e. value 2 + 1.5 j + 0.25.
    feeder = DownstreamFeeder(_ramp_split([100, 300]), train=False)
    clip, label, index = feeder[0]
    assert clip.shape == (3, 64, 25, 2) and label == 0 and index == 0
    expected = 2.25 + 1.5 * np.arange(64)
    assert np.allclose(clip[0, :, 0, 0].numpy(), expected, atol=1e-4)
    assert np.allclose(clip.numpy(), expected[None, :, None, None], atol=1e-4)
    # 300 frames: start = int(7.5) = 7, 286 frames: value 7 + (286/64)(j + 0.5) - 0.5
    clip, _, _ = feeder[1]
    assert np.allclose(clip[1, :, 3, 1].numpy(), 6.5 + 286 / 64 * (np.arange(64) + 0.5), atol=1e-3)


def test_training_crops_are_random_within_the_rule_and_seeded():
    frames = [40, 200, 300, 150]
    feeder = DownstreamFeeder(_ramp_split(frames), train=True, indices=[1, 2, 3], seed=5)
    assert len(feeder) == 3 and feeder.names == ["s1", "s2", "s3"]
    first = [feeder[i][0].numpy() for i in range(3)]
    again = [feeder[i][0].numpy() for i in range(3)]
    feeder.set_epoch(1)
    other = [feeder[i][0].numpy() for i in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    for epoch in range(6):
        feeder.set_epoch(epoch)
        for item, f in enumerate(frames[1:]):
            clip, label, index = feeder[item]
            ramp = clip[0, :, 0, 0].numpy().astype(np.float64)
            step = np.diff(ramp)
            # a linear resize of a ramp: constant step length / 64, length in [max(floor(f/2), 64), f]
            assert np.allclose(step, step[0], atol=1e-3)
            length = step[0] * 64
            assert max(f // 2, 64) - 1e-2 <= length <= f + 1e-2
            assert ramp[0] >= -1e-4 and ramp[-1] <= f - 1 + 1e-4
            assert index == item + 1 and label == (item + 1) % 4


def test_a_short_recording_is_cropped_only_below_the_published_minimum():
    # 31 frames, l_ratio [0.5, 1]: length = min(max(floor(31 s), minimum), 31), floor(31 s) in 15..31.
    # A crop of L < 64 ramp frames resized to 64 starts at its first frame and ends at its last.
    split = _ramp_split([31] * 200)
    published = DownstreamFeeder(split, train=True, seed=1)
    smaller = DownstreamFeeder(split, train=True, seed=1, min_crop_frames=16)
    lengths = []
    for item in range(len(split)):
        whole = published[item][0][0, :, 0, 0].numpy()
        assert whole[0] == 0 and whole[-1] == 30  # the published minimum 64: never cropped
        ramp = smaller[item][0][0, :, 0, 0].numpy()
        assert ramp[0] == int(ramp[0]) and ramp[0] >= 0 and ramp[-1] <= 30
        lengths.append(int(ramp[-1] - ramp[0]) + 1)
    assert min(lengths) == 16 and max(lengths) <= 31 and len(set(lengths)) > 5
    # P(length = 16) = P(floor(31 s) <= 16) = (17/31 - 0.5) / 0.5 = 0.097
    assert abs(lengths.count(16) / len(lengths) - (17 / 31 - 0.5) / 0.5) < 0.07


def test_view_frames_sets_the_clip_length():
    split = _ramp_split([100, 300])
    for train in (False, True):
        clip, _, _ = DownstreamFeeder(split, train=train, view_frames=32)[0]
        assert clip.shape == (3, 32, 25, 2)
    # validation: the centre crop [2, 98) of 100 frames resized to 32: value 2 + 3 (j + 0.5) - 0.5
    clip, _, _ = DownstreamFeeder(split, train=False, view_frames=32)[0]
    assert np.allclose(clip[0, :, 0, 0].numpy(), 3.0 + 3 * np.arange(32), atol=1e-4)


def test_memory_mapped_feeder_pickles_as_its_folder(tmp_path):
    split = _ramp_split([80, 120, 300])
    np.save(tmp_path / "val_data_joint.npy", split.data)
    np.save(tmp_path / "val_num_frame.npy", split.num_frame)
    with open(tmp_path / "val_label.pkl", "wb") as f:
        pickle.dump((split.names, split.labels.tolist()), f)
    feeder = DownstreamFeeder(load_split(str(tmp_path), "val"), train=False)
    blob = pickle.dumps(feeder)
    assert len(blob) < 10_000 < split.data.nbytes  # the 2.7 MB of data are not in the pickle
    copy = pickle.loads(blob)
    for i in range(3):
        assert np.array_equal(copy[i][0].numpy(), feeder[i][0].numpy())
