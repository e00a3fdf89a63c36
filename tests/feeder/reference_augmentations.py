"""Test-only reference: the published augmentations (CMD's feeder), transcribed per sample in NumPy.

Each random transform draws from an explicit NumPy generator `rng` (the published code uses the global
`random` / `np.random`), and the deterministic part of each is a function of its own, so tests can feed
both implementations the same draws. Samples are C x T x V x M arrays; the published code has C = 3,
and the transforms are written for the sample's own C and V. The time resize is the published one,
`F.interpolate(..., mode='bilinear', align_corners=False)` of a (1, C·V·M, length, 1) image.
"""

import numpy as np
import torch
import torch.nn.functional as F

MIN_CROP_LENGTH = 64


def crop_resize(data, start, length, output_size):
    """Frames [start, start + length) of `data` resized to `output_size` frames (published resize)."""
    c, _, v, m = data.shape
    crop = torch.tensor(np.ascontiguousarray(data[:, start : start + length]), dtype=torch.float)  # C x L x V x M
    image = crop.permute(0, 2, 3, 1).contiguous().view(c * v * m, length)[None, :, :, None]  # 1 x CVM x L x 1
    image = F.interpolate(image, size=(output_size, 1), mode="bilinear", align_corners=False)
    return image.squeeze(dim=3).squeeze(dim=0).contiguous().view(c, v, m, output_size).permute(0, 3, 1, 2).numpy()


def temporal_cropresize(data, num_frames, l_ratio, output_size, rng):
    """Published `temporal_cropresize`: a random crop of at least 64 frames, resized."""
    scale = rng.random() * (l_ratio[1] - l_ratio[0]) + l_ratio[0]
    length = min(max(int(np.floor(num_frames * scale)), MIN_CROP_LENGTH), num_frames)
    start = int(rng.integers(0, num_frames - length + 1))
    return crop_resize(data, start, length, output_size)


def centre_crop(data, num_frames, ratio, output_size):
    """Published `crop_subsequence` at evaluation: frames [s, num_frames − s) with
    s = int((1 − ratio)·num_frames/2), resized."""
    start = int((1 - ratio) * num_frames / 2)
    return crop_resize(data, start, num_frames - 2 * start, output_size)


def corrupt_joints(data, joints, zero, matrix):
    """Published joint corruption with given draws: `joints` set to 0, or their coordinates times `matrix`."""
    out = data.copy()
    if zero:
        out[:, :, joints, :] = 0
    else:
        temp = np.dot(out[:, :, joints, :].transpose([1, 2, 3, 0]), matrix)  # T x J x M x C
        out[:, :, joints, :] = temp.transpose(3, 0, 1, 2)
    return out


def shear_with(data, matrix):
    """Published shear with a given matrix S: new = S · old for every joint."""
    return np.dot(data.transpose([1, 2, 3, 0]), matrix.transpose()).transpose(3, 0, 1, 2)


def joint_corruption(data, rng, corrupted_joints=15):
    """Published `joint_courruption`: `corrupted_joints` random joints zeroed (½) or mapped by A, U(−1, 1)."""
    c, _, v, _ = data.shape
    zero = rng.random() < 0.5
    joints = rng.choice(v, corrupted_joints, replace=False)
    matrix = rng.uniform(-1, 1, size=(c, c))
    return corrupt_joints(data, joints, zero, matrix)


def shear(data, rng):
    """Published `pose_augmentation`: a shear with ones on the diagonal and U(−1, 1) elsewhere."""
    c = data.shape[0]
    matrix = rng.uniform(-1, 1, size=(c, c))
    np.fill_diagonal(matrix, 1.0)
    return shear_with(data, matrix)


def pretraining_view(data, num_frames, rng, l_ratio=(0.1, 1.0), output_size=64, corrupted_joints=15):
    """Published view: crop-resize, then joint corruption or shear with probability ½ each (float32)."""
    view = temporal_cropresize(data, num_frames, l_ratio, output_size, rng)
    if rng.random() < 0.5:
        return joint_corruption(view, rng, corrupted_joints).astype(np.float32)
    return shear(view, rng).astype(np.float32)
