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
