"""Augmentations against the published transforms (tests/feeder/reference_augmentations.py), F.interpolate and
hand-built maps: the same results for the same draws, and the same distributions of random views."""

import numpy as np
import pytest
import torch

from feeder import augmentations as aug
from tests.feeder import reference_augmentations as ref


def _sample(frames=300, seed=0, shape=(3, 25, 2)):
    c, v, m = shape
    return np.random.default_rng(seed).standard_normal((c, frames, v, m)).astype(np.float32)


def _batch(samples):
    return torch.from_numpy(np.stack(samples))


def _repeat(sample, n):
    """A batch of n copies of `sample` (a broadcast view, no copy)."""
    return torch.from_numpy(sample)[None].expand(n, *sample.shape)


@pytest.mark.parametrize("start,length,out", [(0, 300, 64), (17, 64, 64), (5, 40, 64), (3, 1, 64), (10, 131, 50)])
def test_crop_resize_of_one_sample_matches_interpolate(start, length, out):
    data = _sample()
    got = aug.crop_resize(_batch([data]), torch.tensor([start]), torch.tensor([length]), out)
    assert got.shape == (1, 3, out, 25, 2) and got.dtype == torch.float32
    np.testing.assert_allclose(got[0].numpy(), ref.crop_resize(data, start, length, out), rtol=0, atol=2e-6)


def test_crop_resize_of_a_batch_matches_interpolate_per_sample():
    data = [_sample(seed=s) for s in range(4)]
    starts, lengths = [0, 17, 5, 200], [300, 64, 40, 100]
    got = aug.crop_resize(_batch(data), torch.tensor(starts), torch.tensor(lengths), 64).numpy()
    for i, (s, n) in enumerate(zip(starts, lengths)):
        np.testing.assert_allclose(got[i], ref.crop_resize(data[i], s, n, 64), rtol=0, atol=2e-6)


def test_crop_length_rule():
    # min(max(floor(frames*scale), 64), frames), worked by hand
    frames = torch.tensor([300, 300, 50, 100])
    scale = torch.tensor([0.5, 0.1, 0.9, 0.999], dtype=torch.float64)
    assert aug.crop_length(frames, scale).tolist() == [150, 64, 50, 99]


def test_crop_length_rule_with_a_smaller_minimum():
    # min(max(floor(frames*scale), min_length), frames) for a 31-frame recording, worked by hand:
    # floor(31·scale) = 3, 15, 18, 30, 31
    frames = torch.full((5,), 31)
    scale = torch.tensor([0.1, 0.5, 0.6, 0.999, 1.0], dtype=torch.float64)
    assert aug.crop_length(frames, scale, min_length=16).tolist() == [16, 16, 18, 30, 31]
    assert aug.crop_length(frames, scale).tolist() == [31] * 5  # the published minimum 64: never cropped
    assert aug.crop_length(frames, scale, 64).tolist() == [31] * 5


def _crop_length_probabilities(frames, l_ratio, min_length):
    """P(length = l) under the rule length = min(max(floor(frames·s), min_length), frames), s ~ U(l_ratio),
    written out: floor(frames·s) = k on s in [k/frames, (k+1)/frames)."""
    a, b = l_ratio
    probabilities = {}
    for k in range(frames + 1):
        overlap = max(0.0, min(b, (k + 1) / frames) - max(a, k / frames))
        length = min(max(k, min_length), frames)
        probabilities[length] = probabilities.get(length, 0.0) + overlap / (b - a)
    return probabilities


@pytest.mark.parametrize("l_ratio", [aug.PRETRAIN_L_RATIO, aug.DOWNSTREAM_L_RATIO])
def test_a_smaller_min_crop_is_honoured(l_ratio):
    # a 31-frame recording with a minimum of 16 frames: crops of 16..31 frames, as often as the rule says
    n, frames = 4000, 31
    expected = _crop_length_probabilities(frames, l_ratio, 16)
    assert min(expected) == 16 and max(expected) == 31 and abs(sum(expected.values()) - 1) < 1e-12
    gen = torch.Generator().manual_seed(9)
    views = aug.random_crop_resize(_repeat(_ramp(), n), torch.full((n,), frames), l_ratio, gen, min_length=16)
    first, last = views[:, 0, 0, 0, 0].numpy(), views[:, 0, -1, 0, 0].numpy()
    # a crop of L < 64 ramp frames resized to 64: output frame 0 is its first frame, frame 63 its last
    assert np.array_equal(first, np.round(first)) and np.array_equal(last, np.round(last))
    length = (last - first).astype(int) + 1
    assert np.all(first >= 0) and np.all(first + length <= frames)
    assert length.min() == 16 and length.max() <= 31
    for value in range(16, 32):
        assert abs(np.mean(length == value) - expected[value]) < 0.025, value


def test_with_the_published_minimum_a_short_recording_is_never_cropped():
    frames, n = 31, 50
    data = _sample(frames=frames)
    expected = ref.crop_resize(data, 0, frames, 64)  # the whole recording, resized
    for min_length in ({}, {"min_length": 64}):
        gen = torch.Generator().manual_seed(10)
        views = aug.random_crop_resize(
            _repeat(data, n), torch.full((n,), frames), aug.PRETRAIN_L_RATIO, gen, **min_length
        ).numpy()
        for view in views:
            np.testing.assert_allclose(view, expected, rtol=0, atol=2e-6)


@pytest.mark.parametrize("min_crop", [16, 64])
def test_pretraining_views_honour_the_min_crop(min_crop):
    frames, n = 31, 300
    data = _sample(frames=frames, seed=11)
    im_q, im_k = aug.pretraining_views(
        _repeat(data, n),
        torch.full((n,), frames),
        torch.Generator().manual_seed(12),
        aug.ViewSettings(min_crop_frames=min_crop),
    )
    params = aug.draw_view_params(
        torch.full((2 * n,), frames), torch.Generator().manual_seed(12), min_crop_frames=min_crop
    )
    length, start = params["length"], params["start"]
    if min_crop == 64:
        assert torch.all(length == frames) and torch.all(start == 0)  # never cropped
    else:
        assert length.min() == 16 and length.max() <= frames and torch.all(start + length <= frames)
        expected16 = _crop_length_probabilities(frames, aug.PRETRAIN_L_RATIO, 16)[16]  # 0.498
        assert abs((length == 16).double().mean().item() - expected16) < 0.07
    views = torch.cat([im_q, im_k]).numpy()
    for i in list(range(10)) + list(range(n, n + 10)):
        np.testing.assert_allclose(views[i], _published_view(data, params, i, 64), rtol=0, atol=1e-5)


def test_random_crop_resize_uses_only_valid_frames():
    data = _sample()
    data[:, 120:] = 1e6  # frames beyond num_frames must never be read
    gen = torch.Generator().manual_seed(1)
    views = aug.random_crop_resize(_repeat(data, 50), torch.full((50,), 120), aug.PRETRAIN_L_RATIO, gen)
    assert views.shape == (50, 3, 64, 25, 2) and views.abs().max() < 1e3


def _ramp(frames=300):
    """A sample whose every coordinate at frame t holds t: a view shows the window it was cut from."""
    return np.broadcast_to(np.arange(frames, dtype=np.float32)[None, :, None, None], (3, frames, 25, 2)).copy()


def test_random_crop_resize_rule():
    frames, n = 200, 400
    gen = torch.Generator().manual_seed(2)
    views = aug.random_crop_resize(_repeat(_ramp(), n), torch.full((n,), frames), (0.5, 1.0), gen).numpy()
    lo, hi = views[:, 0, 0, 0, 0], views[:, 0, -1, 0, 0]
    assert np.all(lo >= 0) and np.all(hi <= frames - 1)
    # with scale ~ U(0.5, 1) the crop spans between 100 and 200 frames
    assert (hi - lo).min() >= 100 - 3 and (hi - lo).max() <= 200


def test_centre_crop_resize_rule():
    data = [_sample(seed=s) for s in range(3)]
    frames = [137, 300, 64]
    got = aug.centre_crop_resize(_batch(data), torch.tensor(frames)).numpy()
    for i, f in enumerate(frames):
        start = int(0.05 * f / 2)  # 3, 7, 1
        np.testing.assert_allclose(got[i], ref.crop_resize(data[i], start, f - 2 * start, 64), rtol=0, atol=2e-6)
        np.testing.assert_allclose(got[i], ref.centre_crop(data[i], f, 0.95, 64), rtol=0, atol=2e-6)


def test_bad_frame_counts_are_rejected():
    with pytest.raises(ValueError, match=r"num_frames must be in \[1, 300\].*found 0 for sample 1"):
        aug.centre_crop_resize(_batch([_sample(), _sample()]), torch.tensor([10, 0]))
    with pytest.raises(ValueError, match=r"found 301 for sample 0"):
        aug.pretraining_views(_batch([_sample()]), torch.tensor([301]))
    with pytest.raises(ValueError, match="N x C x T x V x M"):
        aug.random_crop_resize(torch.from_numpy(_sample()), torch.tensor([10]))


def _params(start, length, corrupt, joints, zero, matrix, num_joints=25):
    """One view's parameters, in the form `draw_view_params` returns, from hand-chosen values."""
    selected = torch.zeros(1, num_joints, dtype=torch.bool)
    selected[0, joints] = True
    return {
        "start": torch.tensor([start]),
        "length": torch.tensor([length]),
        "corrupt": torch.tensor([corrupt]),
        "joints": selected,
        "zero": torch.tensor([zero]),
        "matrix": torch.tensor(matrix)[None],
    }


def test_joint_corruption_and_shear_by_hand():
    data = _sample(frames=5)
    batch = _batch([data])
    a = np.arange(9, dtype=np.float32).reshape(3, 3) / 10 - 0.4
    joints = [0, 3, 24]
    # a crop of all 5 frames resized to 5 frames leaves them as they are
    out = aug.apply_view(batch, _params(0, 5, True, joints, False, a), 5)[0].numpy()
    for v in range(25):
        for c2 in range(3):
            expected = sum(data[c, :, v] * a[c, c2] for c in range(3)) if v in joints else data[c2, :, v]
            np.testing.assert_allclose(out[c2, :, v], expected, rtol=0, atol=1e-6)
    zeroed = aug.apply_view(batch, _params(0, 5, True, joints, True, a), 5)[0].numpy()
    assert np.all(zeroed[:, :, joints] == 0)
    np.testing.assert_array_equal(np.delete(zeroed, joints, axis=2), np.delete(data, joints, axis=2))
    s = np.array([[1, 0.3, -0.2], [0.5, 1, 0.1], [-0.7, 0.9, 1]], dtype=np.float32)
    sheared = aug.apply_view(batch, _params(0, 5, False, joints, False, s), 5)[0].numpy()
    for c2 in range(3):
        expected = sum(s[c2, c] * data[c] for c in range(3))
        np.testing.assert_allclose(sheared[c2], expected, rtol=0, atol=1e-6)


def _published_view(data, params, i, output_size):
    """The published transforms applied to sample i with the draws of `params`."""
    view = ref.crop_resize(data, int(params["start"][i]), int(params["length"][i]), output_size)
    matrix = params["matrix"][i].double().numpy()
    if params["corrupt"][i]:
        joints = torch.nonzero(params["joints"][i]).flatten().numpy()
        return ref.corrupt_joints(view, joints, bool(params["zero"][i]), matrix)
    return ref.shear_with(view, matrix)


@pytest.mark.parametrize("shape,corrupted", [((3, 25, 2), 15), ((2, 17, 1), 6)])
def test_views_equal_the_published_transforms_for_the_same_draws(shape, corrupted):
    frames = [300, 150, 64, 40, 97, 211, 300, 80, 120, 33, 250, 70]
    data = [_sample(seed=s, shape=shape) for s in range(len(frames))]
    c, v, _ = shape
    gen = torch.Generator().manual_seed(3)
    params = aug.draw_view_params(torch.tensor(frames), gen, num_joints=v, channels=c, corrupted_joints=corrupted)
    kinds = {(bool(k), bool(z)) for k, z in zip(params["corrupt"], params["zero"])}
    assert {(True, True), (True, False)} <= kinds and any(not k for k, _ in kinds)
    assert torch.all(params["joints"].sum(dim=1) == corrupted)
    got = aug.apply_view(_batch(data), params).numpy()
    assert got.shape == (len(frames), c, 64, v, shape[2])
    for i in range(len(frames)):
        np.testing.assert_allclose(got[i], _published_view(data[i], params, i, 64), rtol=0, atol=1e-5)


def _coded_sample():
    """Coordinates that encode the frame index (all) and the joint (the second coordinate)."""
    base = _ramp() / 100.0 + 1.0
    base[1] += np.arange(25, dtype=np.float32)[None, :, None] / 25.0
    return base


def _view_statistics(views):
    """Per-view summaries: zeroed joints, the corner frame's first coordinate, overall scale."""
    zero_joints = (np.abs(views).sum(axis=(1, 2, 4)) == 0).sum(axis=1)  # N
    return {
        "zeroed15": np.mean(zero_joints == 15),
        "mean_abs": np.mean(np.abs(views)),
        "mean_sq": np.mean(views**2),
        "first_frame": np.mean(views[:, 0, 0, 0, 0]),
        "last_frame": np.mean(views[:, 0, -1, 0, 0]),
        "second_coordinate": np.mean(views[:, 1, 10, 12, 0]),
    }


def test_views_agree_in_distribution_with_the_published_views():
    n, frames = 2000, 180
    base = _coded_sample()
    rng = np.random.default_rng(4)
    published = np.stack([ref.pretraining_view(base, frames, rng) for _ in range(n)])
    gen = torch.Generator().manual_seed(4)
    ours, _ = aug.pretraining_views(_repeat(base, n), torch.full((n,), frames), gen)
    a, b = _view_statistics(published), _view_statistics(ours.numpy())
    # a view is a zeroing corruption with probability ½ x ½
    assert abs(a["zeroed15"] - 0.25) < 0.03 and abs(b["zeroed15"] - 0.25) < 0.03
    for key in ("mean_abs", "mean_sq", "first_frame", "last_frame", "second_coordinate"):
        assert abs(a[key] - b[key]) < 0.06 * max(abs(a[key]), 1.0), (key, a[key], b[key])


def test_downstream_crops_agree_in_distribution_with_the_published_crops():
    n, frames = 3000, 250
    ramp = np.arange(300, dtype=np.float32).reshape(1, 300, 1, 1)  # one coordinate, joint and person
    rng = np.random.default_rng(5)
    published = np.stack(
        [ref.temporal_cropresize(ramp, frames, (0.5, 1.0), 64, rng)[0, [0, -1], 0, 0] for _ in range(n)]
    )  # n x 2: first and last frame of each crop
    gen = torch.Generator().manual_seed(5)
    ours = aug.random_crop_resize(_repeat(ramp, n), torch.full((n,), frames), (0.5, 1.0), gen)[:, 0, [0, -1], 0, 0]
    ours = ours.numpy()
    # crop length ~ floor(250·U(0.5, 1)) in 125..249; start uniform over the rest: mean first frame ≈ 31
    for got in (published, ours):
        assert abs(got[:, 0].mean() - 31.0) < 2.0
    for column in range(2):
        for q in (0.1, 0.5, 0.9):
            assert abs(np.quantile(published[:, column], q) - np.quantile(ours[:, column], q)) < 5.0


def test_crop_parameters_follow_the_rule():
    gen = torch.Generator().manual_seed(5)
    frames = torch.tensor([300, 100, 64, 30] * 500)
    p = aug.draw_view_params(frames, gen)
    length, start = p["length"], p["start"]
    assert torch.all(length <= frames) and torch.all(length >= torch.clamp(frames, max=64))
    assert torch.all(start >= 0) and torch.all(start + length <= frames)
    # frames 300: floor(300·U(0.1, 1)) is uniform on 30..299, so length = max(·, 64) has mean
    # (64·35 + Σ_{65≤l≤299} l) / 270 ≈ 166.7
    mean300 = length[frames == 300].double().mean().item()
    assert abs(mean300 - (64 * 35 + sum(range(65, 300))) / 270) < 5
    assert torch.all(length[frames == 30] == 30) and torch.all(start[frames == 30] == 0)
    # each sample's maps are identity on the joints it leaves alone: 10 untouched for a corruption
    untouched = (aug.joint_maps(p) == torch.eye(3)).all(dim=(2, 3)).sum(dim=1)
    assert set(untouched[p["corrupt"]].tolist()) == {10}
    # a shear has ones on its diagonal and off-diagonal entries in (-1, 1)
    shear = p["matrix"][~p["corrupt"]]
    assert torch.all(torch.diagonal(shear, dim1=1, dim2=2) == 1) and torch.all(shear.abs() <= 1)


def test_view_length_and_corrupted_joint_count_are_settable():
    # a constant-ones sample: a zeroing corruption shows as exactly `corrupted_joints` all-zero joints
    ones = np.ones((3, 300, 25, 2), dtype=np.float32)
    gen = torch.Generator().manual_seed(6)
    views, _ = aug.pretraining_views(
        _repeat(ones, 400), torch.full((400,), 120), gen, aug.ViewSettings(view_frames=32, corrupted_joints=5)
    )
    assert views.shape == (400, 3, 32, 25, 2)
    zeroed = (views.abs().sum(dim=(1, 2, 4)) == 0).sum(dim=1)  # N
    assert set(zeroed.tolist()) == {0, 5}
    assert abs((zeroed == 5).double().mean().item() - 0.25) < 0.07  # corruption (½) × zeroing (½)
    with pytest.raises(ValueError, match="corrupted_joints must be between 1 and the 25 joints, found 26"):
        aug.pretraining_views(_batch([ones]), torch.tensor([120]), views=aug.ViewSettings(corrupted_joints=26))


def test_the_smallest_legal_values_are_accepted_a_single_frame_and_one_corrupted_joint():
    """A recording of one frame (NW-UCLA holds two) gives views that repeat it; a layout of few joints gets
    one corrupted joint from the small-data rule, and a zeroing corruption then clears exactly one."""
    ones = np.ones((3, 300, 25, 2), dtype=np.float32)
    gen = torch.Generator().manual_seed(7)
    views, _ = aug.pretraining_views(
        _repeat(ones, 200), torch.full((200,), 1), gen, aug.ViewSettings(view_frames=16, corrupted_joints=1)
    )
    assert views.shape == (200, 3, 16, 25, 2)
    assert torch.equal(views, views[:, :, :1].expand_as(views))  # every frame the same
    zeroed = (views.abs().sum(dim=(1, 2, 4)) == 0).sum(dim=1)  # N
    assert set(zeroed.tolist()) == {0, 1}
    every, _ = aug.pretraining_views(
        _repeat(ones, 40), torch.full((40,), 9), gen, aug.ViewSettings(corrupted_joints=25)
    )
    assert set((every.abs().sum(dim=(1, 2, 4)) == 0).sum(dim=1).tolist()) == {0, 25}  # the largest count
    clip = aug.centre_crop_resize(_batch([_sample(seed=3)]), torch.tensor([1]))  # N x C x 64 x V x M
    assert torch.equal(clip, torch.from_numpy(_sample(seed=3)[None, :, :1]).expand_as(clip))


def test_other_layouts_use_their_own_joints_and_coordinates():
    # 17 joints, 2 coordinates, 1 person: corruption picks 6 of the 17 joints, maps are 2 x 2
    ones = np.ones((2, 90, 17, 1), dtype=np.float32)
    gen = torch.Generator().manual_seed(7)
    views, _ = aug.pretraining_views(
        _repeat(ones, 400), torch.full((400,), 90), gen, aug.ViewSettings(corrupted_joints=6)
    )
    assert views.shape == (400, 2, 64, 17, 1)
    zeroed = (views.abs().sum(dim=(1, 2, 4)) == 0).sum(dim=1)  # N
    assert set(zeroed.tolist()) == {0, 6}
    p = aug.draw_view_params(torch.full((400,), 90), gen, num_joints=17, channels=2, corrupted_joints=6)
    assert p["matrix"].shape == (400, 2, 2) and aug.joint_maps(p).shape == (400, 17, 2, 2)


def test_a_sample_as_a_batch_of_one_gets_the_views_of_its_generator():
    # the DataLoader path: one sample, its own generator; both views' parameters come from one draw
    frames = 150
    data = _sample()
    im_q, im_k = aug.pretraining_views(_batch([data]), torch.tensor([frames]), torch.Generator().manual_seed(8))
    params = aug.draw_view_params(torch.tensor([frames, frames]), torch.Generator().manual_seed(8))
    np.testing.assert_allclose(im_q[0].numpy(), _published_view(data, params, 0, 64), rtol=0, atol=1e-5)
    np.testing.assert_allclose(im_k[0].numpy(), _published_view(data, params, 1, 64), rtol=0, atol=1e-5)
    assert not torch.equal(im_q, im_k)
