"""Augmentations of SPEC §2.1/§2.2 against independent computations (F.interpolate, hand-built maps)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from feeder import augmentations as aug


def _interpolate_reference(crop, output_size):
    """The published resize: bilinear interpolation of a (1, C·V·M, length, 1) image to (out, 1)."""
    c, length, v, m = crop.shape
    image = torch.from_numpy(np.ascontiguousarray(crop)).permute(0, 2, 3, 1).reshape(1, c * v * m, length, 1)
    out = F.interpolate(image, size=(output_size, 1), mode="bilinear", align_corners=False)
    return out[0, :, :, 0].reshape(c, v, m, output_size).permute(0, 3, 1, 2).numpy()


def _sample(frames=300, seed=0):
    return np.random.default_rng(seed).standard_normal((3, frames, 25, 2)).astype(np.float32)


@pytest.mark.parametrize("start,length,out", [(0, 300, 64), (17, 64, 64), (5, 40, 64), (3, 1, 64), (10, 131, 50)])
def test_crop_resize_matches_interpolate(start, length, out):
    data = _sample()
    expected = _interpolate_reference(data[:, start:start + length], out)
    got = aug.crop_resize(data, start, length, out)
    assert got.shape == (3, out, 25, 2) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6)


def test_crop_resize_batch_matches_interpolate():
    data = np.stack([_sample(seed=s) for s in range(4)])
    starts, lengths = [0, 17, 5, 200], [300, 64, 40, 100]
    got = aug.crop_resize_batch(torch.from_numpy(data), torch.tensor(starts), torch.tensor(lengths), 64).numpy()
    for i, (s, n) in enumerate(zip(starts, lengths)):
        np.testing.assert_allclose(got[i], _interpolate_reference(data[i][:, s:s + n], 64), rtol=0, atol=2e-6)


def test_crop_length_rule():
    # min(max(floor(frames*scale), 64), frames), worked by hand
    assert aug.crop_length(300, 0.5) == 150
    assert aug.crop_length(300, 0.1) == 64
    assert aug.crop_length(50, 0.9) == 50
    assert aug.crop_length(100, 0.999) == 99


def test_temporal_crop_resize_uses_only_valid_frames():
    data = _sample()
    data[:, 120:] = 1e6  # frames beyond num_frames must never be read
    rng = np.random.default_rng(1)
    for _ in range(50):
        view = aug.temporal_crop_resize(data, 120, aug.PRETRAIN_L_RATIO, rng=rng)
        assert view.shape == (3, 64, 25, 2) and np.abs(view).max() < 1e3


def test_temporal_crop_resize_rule():
    # a sample whose frame t holds the value t exposes the crop window: resize keeps end points inside it
    frames = 200
    data = np.broadcast_to(np.arange(300, dtype=np.float32)[None, :, None, None], (3, 300, 25, 2)).copy()
    rng = np.random.default_rng(2)
    lengths = []
    for _ in range(400):
        view = aug.temporal_crop_resize(data, frames, (0.5, 1.0), rng=rng)
        lo, hi = view[0, 0, 0, 0], view[0, -1, 0, 0]
        assert 0 <= lo and hi <= frames - 1
        lengths.append(hi - lo)
    # with scale ~ U(0.5, 1) the crop spans between 100 and 200 frames
    assert min(lengths) >= 100 - 3 and max(lengths) <= 200


def test_centre_crop_resize_rule():
    data = _sample()
    frames = 137
    start = int(0.05 * frames / 2)  # 3
    expected = _interpolate_reference(data[:, start:frames - start], 64)
    np.testing.assert_allclose(aug.centre_crop_resize(data, frames), expected, rtol=0, atol=2e-6)


def test_bad_num_frames_is_rejected():
    with pytest.raises(ValueError, match="num_frames"):
        aug.centre_crop_resize(_sample(), 0)


def test_joint_corruption_and_shear_by_hand():
    data = _sample(frames=5)
    a = np.arange(9, dtype=np.float32).reshape(3, 3) / 10 - 0.4
    joints = np.array([0, 3, 24])
    out = aug.joint_corruption(data, joints, zero=False, matrix=a)
    for v in range(25):
        for c2 in range(3):
            expected = sum(data[c, :, v] * a[c, c2] for c in range(3)) if v in joints else data[c2, :, v]
            np.testing.assert_allclose(out[c2, :, v], expected, rtol=0, atol=1e-6)
    zeroed = aug.joint_corruption(data, joints, zero=True)
    assert np.all(zeroed[:, :, joints] == 0)
    np.testing.assert_array_equal(np.delete(zeroed, joints, axis=2), np.delete(data, joints, axis=2))
    s = np.array([[1, 0.3, -0.2], [0.5, 1, 0.1], [-0.7, 0.9, 1]], dtype=np.float32)
    sheared = aug.shear(data, s)
    for c2 in range(3):
        expected = sum(s[c2, c] * data[c] for c in range(3))
        np.testing.assert_allclose(sheared[c2], expected, rtol=0, atol=1e-6)


def test_batched_views_equal_per_sample_views_for_the_same_draws():
    rng = np.random.default_rng(3)
    frames = [300, 150, 64, 40, 97, 211, 300, 80]
    data = np.stack([_sample(seed=s) for s in range(len(frames))])
    params = [aug.draw_view_params(f, rng) for f in frames]
    assert {p.corrupt for p in params} == {True, False}
    expected = np.stack([aug.apply_view(x, p) for x, p in zip(data, params)])
    got = aug.apply_view_batch(torch.from_numpy(data), aug.stack_view_params(params)).numpy()
    assert got.shape == (len(frames), 3, 64, 25, 2)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def _view_statistics(views):
    """Per-view summaries: zeroed joints, sign of the corner frame's first coordinate, overall scale."""
    zero_joints = (np.abs(views).sum(axis=(1, 2, 4)) == 0).sum(axis=1)  # N
    return {
        "zeroed15": np.mean(zero_joints == 15),
        "mean_abs": np.mean(np.abs(views)),
        "mean_sq": np.mean(views ** 2),
        "first_frame": np.mean(views[:, 0, 0, 0, 0]),
        "last_frame": np.mean(views[:, 0, -1, 0, 0]),
    }


def test_batched_sampler_agrees_in_distribution_with_per_sample_sampler():
    # a sample whose coordinates encode the frame index and the joint, so crops and maps both show
    n, frames = 2000, 180
    t = np.arange(300, dtype=np.float32)[None, :, None, None] / 100.0
    base = np.broadcast_to(t + 1.0, (3, 300, 25, 2)).copy()
    base[1] += np.arange(25, dtype=np.float32)[None, :, None] / 25.0
    rng = np.random.default_rng(4)
    per_sample = np.stack([aug.pretraining_view(base, frames, rng) for _ in range(n)])
    gen = torch.Generator().manual_seed(4)
    batch = torch.from_numpy(base)[None].expand(n, -1, -1, -1, -1).contiguous()
    batched, _ = aug.pretraining_views_batch(batch, torch.full((n,), frames), gen)
    a, b = _view_statistics(per_sample), _view_statistics(batched.numpy())
    assert abs(a["zeroed15"] - 0.25) < 0.03 and abs(b["zeroed15"] - 0.25) < 0.03
    for key in ("mean_abs", "mean_sq", "first_frame", "last_frame"):
        assert abs(a[key] - b[key]) < 0.06 * max(abs(a[key]), 1.0), (key, a[key], b[key])


def test_batched_crop_parameters_follow_the_rule():
    gen = torch.Generator().manual_seed(5)
    frames = torch.tensor([300, 100, 64, 30] * 500)
    p = aug.draw_view_params_batch(frames, gen)
    length, start = p["length"], p["start"]
    assert torch.all(length <= frames) and torch.all(length >= torch.clamp(frames, max=64))
    assert torch.all(start >= 0) and torch.all(start + length <= frames)
    # frames 300: floor(300·U(0.1, 1)) is uniform on 30..299, so length = max(·, 64) has mean
    # (64·35 + Σ_{65≤l≤299} l) / 270 ≈ 166.7
    mean300 = length[frames == 300].double().mean().item()
    assert abs(mean300 - (64 * 35 + sum(range(65, 300))) / 270) < 5
    assert torch.all(length[frames == 30] == 30) and torch.all(start[frames == 30] == 0)
    # each sample's matrices are identity on the joints it leaves alone: 10 or 0 untouched for corruption
    eye = torch.eye(3)
    untouched = (p["matrices"] == eye).all(dim=(2, 3)).sum(dim=1)
    assert set(untouched.tolist()) <= {0, 10, 25}


def test_view_length_and_corrupted_joint_count_are_settable():
    # a constant-ones sample: a zeroing corruption shows as exactly `corrupted_joints` all-zero joints
    ones = np.ones((3, 300, 25, 2), dtype=np.float32)
    rng = np.random.default_rng(6)
    per_sample = np.stack([aug.pretraining_view(ones, 120, rng, output_size=32, corrupted_joints=5)
                           for _ in range(400)])
    gen = torch.Generator().manual_seed(6)
    batch = torch.from_numpy(ones)[None].expand(400, -1, -1, -1, -1).contiguous()
    batched, _ = aug.pretraining_views_batch(batch, torch.full((400,), 120), gen, output_size=32,
                                             corrupted_joints=5)
    for views in (per_sample, batched.numpy()):
        assert views.shape == (400, 3, 32, 25, 2)
        zeroed = (np.abs(views).sum(axis=(1, 2, 4)) == 0).sum(axis=1)  # N
        assert set(np.unique(zeroed)) == {0, 5}
        assert abs(np.mean(zeroed == 5) - 0.25) < 0.07  # corruption (½) × zeroing (½)
