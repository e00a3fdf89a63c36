"""Skeleton augmentations of SPEC §2.1 (pretraining views) and §2.2 (downstream crops).

Two forms compute the same transforms:
- per sample, on NumPy arrays C x T x V x M (DataLoader workers): `temporal_crop_resize`,
  `centre_crop_resize`, `joint_corruption`, `shear`, `pretraining_view`;
- batched, on torch tensors N x C x T x V x M on the training device: `draw_view_params_batch`,
  `apply_view_batch`, `pretraining_views_batch`.
Drawing the random parameters is kept apart from applying them (`draw_view_params` /
`apply_view` and their batched twins), so both forms can be fed the same draws.

Conventions (the published code's): time crops keep at least `MIN_CROP_FRAMES` frames (or all of a
shorter sample) and are resized by linear interpolation with align_corners=False; joint corruption
maps new[c'] = Σ_c old[c]·A[c, c'], shear maps new[c'] = Σ_c S[c', c]·old[c].
"""
from dataclasses import dataclass

import numpy as np
import torch

PRETRAIN_L_RATIO = (0.1, 1.0)
DOWNSTREAM_L_RATIO = (0.5, 1.0)
CENTRE_CROP_RATIO = 0.95
MIN_CROP_FRAMES = 64
OUTPUT_FRAMES = 64
NUM_JOINTS = 25
NUM_CORRUPTED_JOINTS = 15


# ---------------------------------------------------------------- per sample (NumPy)

def _check_sample(data, num_frames):
    if data.ndim != 4:
        raise ValueError(f"expected a skeleton sample C x T x V x M, found shape {data.shape}")
    frames = int(num_frames)
    if not 1 <= frames <= data.shape[1]:
        raise ValueError(f"num_frames must be in [1, {data.shape[1]}] for a sample of shape {data.shape}, "
                         f"found {num_frames}")
    return frames


def crop_length(frames, scale, min_length=MIN_CROP_FRAMES):
    """min(max(floor(frames·scale), min_length), frames): the published crop length."""
    return min(max(int(np.floor(frames * scale)), min_length), frames)


def resize_weights(length, output_size):
    """Source frames and weights of a linear resize of `length` frames to `output_size`.

    Returns (idx0, idx1, lam) with output[j] = (1 − lam[j])·x[idx0[j]] + lam[j]·x[idx1[j]], computed
    as torch's bilinear interpolation with align_corners=False computes it: a float32 scale, and
    the source index scale·(j + ½) − ½ rounded once to float32 (a fused multiply-add).
    """
    scale = np.float64(np.float32(length) / np.float32(output_size))
    src = (scale * (np.arange(output_size) + 0.5) - 0.5).astype(np.float32)  # output_size
    src = np.maximum(src, np.float32(0.0))  # output_size
    idx0 = src.astype(np.int64)  # output_size (src >= 0, so truncation is floor)
    lam = src - idx0.astype(np.float32)  # output_size
    idx1 = np.minimum(idx0 + 1, length - 1)  # output_size
    return idx0, idx1, lam


def crop_resize(data, start, length, output_size=OUTPUT_FRAMES):
    """Frames [start, start + length) of `data` (C x T x V x M) resized linearly to `output_size`."""
    crop = np.asarray(data[:, start:start + length], dtype=np.float32)  # C x length x V x M
    idx0, idx1, lam = resize_weights(length, output_size)
    lam = lam[None, :, None, None]  # 1 x out x 1 x 1
    return ((np.float32(1.0) - lam) * crop[:, idx0] + lam * crop[:, idx1]).astype(np.float32)  # C x out x V x M


def _uniform_int(rng, high):
    """A uniform integer in [0, high] from one uniform draw of `rng`."""
    return min(int(rng.random() * (high + 1)), high)


def draw_crop(num_frames, l_ratio, rng=None):
    """Random (start, length) of the SPEC §2.1 step 1 crop: scale ~ U(l_ratio), start uniform."""
    rng = np.random if rng is None else rng
    scale = l_ratio[0] + (l_ratio[1] - l_ratio[0]) * rng.random()
    length = crop_length(num_frames, scale)
    return _uniform_int(rng, num_frames - length), length


def temporal_crop_resize(data, num_frames, l_ratio, output_size=OUTPUT_FRAMES, rng=None):
    """A random crop of frames [0, num_frames) of `data` (C x T x V x M), resized to `output_size`.

    Crop length min(max(floor(num_frames·scale), 64), num_frames) with scale ~ U(l_ratio); start
    uniform. `rng`: a numpy Generator or RandomState (default: NumPy's global one).
    """
    frames = _check_sample(data, num_frames)
    start, length = draw_crop(frames, l_ratio, rng)
    return crop_resize(data, start, length, output_size)


def centre_crop_resize(data, num_frames, ratio=CENTRE_CROP_RATIO, output_size=OUTPUT_FRAMES):
    """Frames [s, num_frames − s) with s = int((1 − ratio)·num_frames/2), resized to `output_size`."""
    frames = _check_sample(data, num_frames)
    start = int((1 - ratio) * frames / 2)
    return crop_resize(data, start, frames - 2 * start, output_size)


def joint_corruption(data, joints, zero, matrix=None):
    """Joints `joints` of `data` (C x T x V x M) set to 0 (`zero`), else new[c'] = Σ_c old[c]·matrix[c, c']."""
    out = np.array(data, dtype=np.float32, copy=True)  # C x T x V x M
    if zero:
        out[:, :, joints] = 0.0
    else:
        out[:, :, joints] = np.einsum("ctjm,cd->dtjm", out[:, :, joints], np.asarray(matrix, dtype=np.float32))
    return out


def shear(data, matrix):
    """new[c'] = Σ_c matrix[c', c]·old[c] for every joint of `data` (C x T x V x M)."""
    return np.einsum("dc,ctvm->dtvm", np.asarray(matrix, dtype=np.float32), data).astype(np.float32)


@dataclass
class ViewParams:
    """The random draws of one pretraining view (SPEC §2.1)."""

    start: int  # first frame of the crop
    length: int  # crop length in frames
    corrupt: bool  # joint corruption (True) or shear (False)
    joints: np.ndarray  # the 15 corrupted joints (used when corrupt)
    zero: bool  # corrupted joints set to 0 (True) or multiplied by `matrix` (False)
    matrix: np.ndarray  # 3 x 3: A of the corruption, or S of the shear


def draw_view_params(num_frames, rng=None, l_ratio=PRETRAIN_L_RATIO, corrupted_joints=NUM_CORRUPTED_JOINTS):
    """Draw the parameters of one pretraining view of a sample with `num_frames` frames.

    `corrupted_joints` (15 in the paper) is how many joints a joint corruption picks.
    """
    rng = np.random if rng is None else rng
    start, length = draw_crop(int(num_frames), l_ratio, rng)
    corrupt = rng.random() < 0.5
    joints = np.sort(rng.permutation(NUM_JOINTS)[:corrupted_joints])
    zero = rng.random() < 0.5
    entries = rng.random(9) * 2.0 - 1.0  # 9 draws of U(-1, 1)
    if corrupt:
        matrix = entries.reshape(3, 3)
    else:
        matrix = np.eye(3)
        matrix[~np.eye(3, dtype=bool)] = entries[:6]
    return ViewParams(start, length, bool(corrupt), joints, bool(zero), matrix.astype(np.float32))


def apply_view(data, params, output_size=OUTPUT_FRAMES):
    """The view of `data` (C x T x V x M) that `params` describe: crop-resize, then corruption or shear."""
    view = crop_resize(data, params.start, params.length, output_size)  # C x out x V x M
    if params.corrupt:
        return joint_corruption(view, params.joints, params.zero, params.matrix)
    return shear(view, params.matrix)


def pretraining_view(data, num_frames, rng=None, output_size=OUTPUT_FRAMES, corrupted_joints=NUM_CORRUPTED_JOINTS):
    """One random pretraining view (3 x output_size x 25 x 2 float32) of frames [0, num_frames) of `data`."""
    frames = _check_sample(data, num_frames)
    return apply_view(data, draw_view_params(frames, rng, corrupted_joints=corrupted_joints), output_size)


# ---------------------------------------------------------------- batched (torch)

def joint_matrices(params, num_joints=NUM_JOINTS):
    """The per-joint maps of one view's `params` as a V x 3 x 3 array W: new[c'] = Σ_c old[c]·W[v, c, c']."""
    eye = np.eye(3, dtype=np.float32)
    w = np.repeat(eye[None], num_joints, axis=0)  # V x 3 x 3
    if not params.corrupt:
        w[:] = params.matrix.T
    else:
        w[params.joints] = 0.0 if params.zero else params.matrix
    return w


def stack_view_params(params_list, device=None):
    """Batched parameters (as `draw_view_params_batch` returns) from a list of per-sample ViewParams."""
    return {
        "start": torch.tensor([p.start for p in params_list], dtype=torch.long, device=device),  # N
        "length": torch.tensor([p.length for p in params_list], dtype=torch.long, device=device),  # N
        "matrices": torch.from_numpy(np.stack([joint_matrices(p) for p in params_list])).to(device),  # N x V x 3 x 3
    }


def draw_view_params_batch(num_frames, generator=None, l_ratio=PRETRAIN_L_RATIO, num_joints=NUM_JOINTS,
                           corrupted_joints=NUM_CORRUPTED_JOINTS):
    """Draw one pretraining view's parameters for each sample, on `num_frames`' device.

    num_frames: N int tensor. Returns {'start': N, 'length': N, 'matrices': N x V x 3 x 3} with the
    same distribution as `draw_view_params` (matrices as `joint_matrices` builds them).
    """
    device = num_frames.device
    n = num_frames.shape[0]
    frames = num_frames.long()  # N

    def uniform(*shape, dtype=torch.float32):
        return torch.rand(*shape, generator=generator, device=device, dtype=dtype)

    scale = l_ratio[0] + (l_ratio[1] - l_ratio[0]) * uniform(n, dtype=torch.float64)  # N
    length = torch.minimum(torch.clamp_min(torch.floor(frames * scale).long(), MIN_CROP_FRAMES), frames)  # N
    room = frames - length + 1  # N
    start = torch.minimum((uniform(n, dtype=torch.float64) * room).long(), room - 1)  # N
    corrupt = uniform(n) < 0.5  # N
    chosen = uniform(n, num_joints).argsort(dim=1)[:, :corrupted_joints]  # N x corrupted_joints
    selected = torch.zeros(n, num_joints, dtype=torch.bool, device=device).scatter_(1, chosen, True)  # N x V
    zero = uniform(n) < 0.5  # N
    entries = uniform(n, 9) * 2.0 - 1.0  # N x 9
    eye = torch.eye(3, device=device)  # 3 x 3
    corruption = entries.view(n, 3, 3) * (~zero).float().view(n, 1, 1)  # N x 3 x 3 (0 when zeroing)
    off_diagonal = ~torch.eye(3, dtype=torch.bool, device=device)  # 3 x 3
    shear_matrix = eye.repeat(n, 1, 1)  # N x 3 x 3
    shear_matrix[:, off_diagonal] = entries[:, :6]
    mapped = torch.where(corrupt.view(n, 1, 1, 1),
                         torch.where(selected.view(n, num_joints, 1, 1), corruption.unsqueeze(1), eye),
                         shear_matrix.transpose(1, 2).unsqueeze(1))  # N x V x 3 x 3
    return {"start": start, "length": length, "matrices": mapped}


def crop_resize_batch(data, start, length, output_size=OUTPUT_FRAMES):
    """Per-sample frames [start, start + length) of `data` (N x C x T x V x M) resized to `output_size`.

    start, length: N long tensors. The same linear resize as `crop_resize` (float32 source indices,
    align_corners=False), done with one gather. Returns N x C x output_size x V x M.
    """
    n, c, _, v, m = data.shape
    steps = torch.arange(output_size, device=data.device, dtype=torch.float64) + 0.5  # out
    scale = (length.to(torch.float32) / float(output_size)).double()  # N
    src = torch.clamp_min((scale[:, None] * steps - 0.5).float(), 0.0)  # N x out
    idx0 = src.long()  # N x out
    lam = (src - idx0.to(torch.float32)).to(data.dtype)  # N x out
    idx1 = torch.minimum(idx0 + 1, (length - 1)[:, None])  # N x out

    def frames_at(idx):
        index = (start[:, None] + idx).view(n, 1, output_size, 1, 1).expand(n, c, output_size, v, m)
        return torch.gather(data, 2, index)  # N x C x out x V x M

    lam = lam.view(n, 1, output_size, 1, 1)  # N x 1 x out x 1 x 1
    return (1.0 - lam) * frames_at(idx0) + lam * frames_at(idx1)  # N x C x out x V x M


def apply_view_batch(data, params, output_size=OUTPUT_FRAMES):
    """The views of `data` (N x C x T x V x M) described by batched `params`. N x C x out x V x M."""
    view = crop_resize_batch(data, params["start"], params["length"], output_size)  # N x C x out x V x M
    return torch.einsum("nctvm,nvcd->ndtvm", view, params["matrices"].to(view.dtype))  # N x C x out x V x M


def pretraining_views_batch(data, num_frames, generator=None, output_size=OUTPUT_FRAMES,
                            corrupted_joints=NUM_CORRUPTED_JOINTS):
    """Two independent pretraining views of every sample of a raw batch, on its device.

    data: N x 3 x T x 25 x 2 float; num_frames: N (frames used: [0, num_frames)).
    Returns (im_q, im_k), each N x 3 x output_size x 25 x 2.
    """
    if data.dim() != 5 or data.shape[0] != num_frames.shape[0]:
        raise ValueError(f"expected data N x C x T x V x M and num_frames N, found {tuple(data.shape)} "
                         f"and {tuple(num_frames.shape)}")
    frames = num_frames.to(data.device).long().clamp(max=data.shape[2])  # N
    views = [apply_view_batch(data, draw_view_params_batch(frames, generator, num_joints=data.shape[3],
                                                           corrupted_joints=corrupted_joints), output_size)
             for _ in range(2)]
    return views[0], views[1]
