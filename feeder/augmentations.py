"""Skeleton augmentations: the pretraining views and the downstream crops (docs/published-behaviour.md
§2.1 and §2.2).

Every function takes a batch of skeletons N x C x T x V x M (coordinates, frames, joints, persons)
as a torch tensor on any device, with the frames each sample uses, `num_frames` (N): a DataLoader
worker passes one sample as a batch of one, the training loop a whole batch on its device. Drawing
the random parameters (`draw_crop`, `draw_view_params`, from a torch.Generator) is kept apart from
applying them (`crop_resize`, `apply_view`).

Conventions (the published code's): time crops keep at least `MIN_CROP_FRAMES` frames (or all of a
shorter sample) and are resized by linear interpolation with align_corners=False; joint corruption
maps new[c'] = Σ_c old[c]·A[c, c'], shear maps new[c'] = Σ_c S[c', c]·old[c].
"""

from dataclasses import dataclass

import torch

from dataset.layouts import NTU25

PRETRAIN_L_RATIO = (0.1, 1.0)
DOWNSTREAM_L_RATIO = (0.5, 1.0)
CENTRE_CROP_RATIO = 0.95
MIN_CROP_FRAMES = 64
OUTPUT_FRAMES = 64
NUM_CORRUPTED_JOINTS = NTU25.corrupted_joints  # the paper's 15 of 25


@dataclass(frozen=True)
class ViewSettings:
    """How the pretraining views (and the evaluations' crops) are made (docs/published-behaviour.md §2);
    the defaults are the published ones. A run's settings record holds one (options.settings)."""

    view_frames: int = OUTPUT_FRAMES  # frames of every view and crop
    min_crop_frames: int = MIN_CROP_FRAMES  # a random crop keeps at least this many (or all of a shorter recording)
    corrupted_joints: int = NUM_CORRUPTED_JOINTS  # joints a joint corruption picks


PUBLISHED_VIEWS = ViewSettings()


def _check_batch(data, num_frames):
    """Raise ValueError unless data is N x C x T x V x M and num_frames holds N counts in [1, T]."""
    if data.dim() != 5 or num_frames.dim() != 1 or data.shape[0] != num_frames.shape[0]:
        raise ValueError(
            f"expected a skeleton batch N x C x T x V x M and N frame counts, found shapes "
            f"{tuple(data.shape)} and {tuple(num_frames.shape)}"
        )
    bad = (num_frames < 1) | (num_frames > data.shape[2])  # N
    if bad.any():
        i = int(torch.nonzero(bad)[0])
        raise ValueError(
            f"num_frames must be in [1, {data.shape[2]}] for a batch of shape {tuple(data.shape)}, "
            f"found {int(num_frames[i])} for sample {i} of the batch"
        )


def _uniform(generator, device, *shape, dtype=torch.float32):
    """U[0, 1) draws of `shape` from `generator` on `device`."""
    return torch.rand(*shape, generator=generator, device=device, dtype=dtype)


def crop_length(num_frames, scale, min_length=MIN_CROP_FRAMES):
    """min(max(floor(num_frames·scale), min_length), num_frames), the published crop length (N long)."""
    return torch.minimum(torch.clamp_min(torch.floor(num_frames * scale).long(), min_length), num_frames)


def draw_crop(num_frames, l_ratio, generator=None, min_length=MIN_CROP_FRAMES):
    """Random crops (start, length), each N long, of samples of `num_frames` (N) frames.

    scale ~ U(l_ratio), length = crop_length(num_frames, scale, min_length), start uniform in
    [0, num_frames − length].
    """
    frames = num_frames.long()  # N
    u = _uniform(generator, frames.device, 2, frames.shape[0], dtype=torch.float64)  # 2 x N
    length = crop_length(frames, l_ratio[0] + (l_ratio[1] - l_ratio[0]) * u[0], min_length)  # N
    room = frames - length + 1  # N
    return torch.minimum((u[1] * room).long(), room - 1), length


def crop_resize(data, start, length, output_size=OUTPUT_FRAMES):
    """Per-sample frames [start, start + length) of `data` (N x C x T x V x M) resized to `output_size`.

    start, length: N long tensors. The resize is the published one, bilinear interpolation of the
    crop seen as a (1, C·V·M, length, 1) image to (output_size, 1) with align_corners=False (equal to
    F.interpolate up to float32 rounding): output frame j is (1 − λ)·x[i] + λ·x[min(i + 1, length − 1)]
    where i + λ is the source position scale·(j + ½) − ½ (scale = length / output_size in float32,
    the position rounded once to float32 and clamped at 0). Returns N x C x output_size x V x M.
    """
    n = data.shape[0]
    steps = torch.arange(0.5, output_size, device=data.device, dtype=torch.float64)  # out: j + ½
    scale = (length.to(torch.float32) / output_size).double()  # N
    src = torch.clamp_min((scale[:, None] * steps - 0.5).float(), 0.0)  # N x out
    idx0 = src.long()  # N x out
    idx1 = torch.minimum(idx0 + 1, length[:, None] - 1)  # N x out
    lam = (src - idx0).to(data.dtype).view(n, output_size, 1, 1, 1)  # N x out x 1 x 1 x 1
    sample = torch.arange(n, device=data.device)[:, None]  # N x 1
    frames = data[sample, :, start[:, None] + torch.cat([idx0, idx1], dim=1)]  # N x 2out x C x V x M
    resized = torch.lerp(frames[:, :output_size], frames[:, output_size:], lam)  # N x out x C x V x M
    return resized.transpose(1, 2)  # N x C x out x V x M


def random_crop_resize(
    data, num_frames, l_ratio=DOWNSTREAM_L_RATIO, generator=None, output_size=OUTPUT_FRAMES, min_length=MIN_CROP_FRAMES
):
    """A random crop (`draw_crop`) of frames [0, num_frames) of each sample, resized to `output_size`.

    data: N x C x T x V x M; num_frames: N. Returns N x C x output_size x V x M.
    """
    _check_batch(data, num_frames)
    start, length = draw_crop(num_frames.to(data.device), l_ratio, generator, min_length)
    return crop_resize(data, start, length, output_size)


def centre_crop_resize(data, num_frames, ratio=CENTRE_CROP_RATIO, output_size=OUTPUT_FRAMES):
    """Frames [s, num_frames − s) of each sample with s = int((1 − ratio)·num_frames/2), resized.

    data: N x C x T x V x M; num_frames: N. Returns N x C x output_size x V x M.
    """
    _check_batch(data, num_frames)
    frames = num_frames.to(data.device).long()  # N
    start = ((1 - ratio) * frames.double() / 2).long()  # N
    return crop_resize(data, start, frames - 2 * start, output_size)


def draw_view_params(
    num_frames,
    generator=None,
    l_ratio=PRETRAIN_L_RATIO,
    num_joints=25,
    channels=3,
    corrupted_joints=NUM_CORRUPTED_JOINTS,
    min_crop_frames=MIN_CROP_FRAMES,
):
    """Draw the parameters of one pretraining view of each sample, on `num_frames`' device.

    num_frames: N. Returns {'start': N, 'length': N (the crop), 'corrupt': N bool (joint corruption,
    else shear), 'joints': N x V bool (the `corrupted_joints` joints a corruption picks), 'zero': N bool
    (a corruption sets its joints to 0, else maps them by `matrix`), 'matrix': N x C x C (A of the
    corruption, entries U(−1, 1), or S of the shear, ones on the diagonal and U(−1, 1) elsewhere)}.
    """
    if not 1 <= corrupted_joints <= num_joints:
        raise ValueError(f"corrupted_joints must be between 1 and the {num_joints} joints, found {corrupted_joints}")
    frames = num_frames.long()  # N
    n, device = frames.shape[0], frames.device
    start, length = draw_crop(frames, l_ratio, generator, min_crop_frames)
    u = _uniform(generator, device, n, 2 + num_joints + channels * channels)  # N x (2 + V + C·C)
    chosen = u[:, 2 : 2 + num_joints].argsort(dim=1)[:, :corrupted_joints]  # N x corrupted, without replacement
    joints = torch.zeros(n, num_joints, dtype=torch.bool, device=device).scatter_(1, chosen, True)  # N x V
    corrupt = u[:, 0] < 0.5  # N
    entries = u[:, 2 + num_joints :].reshape(n, channels, channels) * 2.0 - 1.0  # N x C x C, U(-1, 1)
    diagonal = torch.eye(channels, dtype=torch.bool, device=device)  # C x C
    matrix = torch.where(diagonal & ~corrupt.view(n, 1, 1), 1.0, entries)  # N x C x C
    return {
        "start": start,
        "length": length,
        "corrupt": corrupt,
        "joints": joints,
        "zero": u[:, 1] < 0.5,
        "matrix": matrix,
    }


def joint_maps(params):
    """The per-joint linear maps W (N x V x C x C) of views `params`: new[c'] = Σ_c old[c]·W[n, v, c, c']."""
    joints, matrix = params["joints"], params["matrix"]
    n, v = joints.shape
    eye = torch.eye(matrix.shape[1], device=matrix.device, dtype=matrix.dtype)  # C x C
    corruption = torch.where(params["zero"].view(n, 1, 1), 0.0, matrix)  # N x C x C
    corrupted = torch.where(joints.view(n, v, 1, 1), corruption.unsqueeze(1), eye)  # N x V x C x C
    sheared = matrix.transpose(1, 2).unsqueeze(1)  # N x 1 x C x C, the same map for every joint
    return torch.where(params["corrupt"].view(n, 1, 1, 1), corrupted, sheared)  # N x V x C x C


def apply_view(data, params, output_size=OUTPUT_FRAMES):
    """The views of `data` (N x C x T x V x M) that `params` describe: crop-resize, then corruption or
    shear. N x C x output_size x V x M."""
    view = crop_resize(data, params["start"], params["length"], output_size)  # N x C x out x V x M
    return torch.einsum("nctvm,nvcd->ndtvm", view, joint_maps(params).to(view.dtype))  # N x C x out x V x M


def pretraining_views(data, num_frames, generator=None, views=PUBLISHED_VIEWS):
    """Two independent pretraining views of every sample of `data` (N x C x T x V x M), on its device,
    made as `views` (a ViewSettings) say.

    num_frames: N (frames used: [0, num_frames)). Returns (im_q, im_k), each N x C x view_frames x V x M.
    Both views of all samples are drawn in one call of `draw_view_params`: im_q from its first N rows,
    im_k from the last N.
    """
    _check_batch(data, num_frames)
    n, channels, _, num_joints, _ = data.shape
    frames = num_frames.to(data.device).long().repeat(2)  # 2N
    params = draw_view_params(
        frames,
        generator,
        num_joints=num_joints,
        channels=channels,
        corrupted_joints=views.corrupted_joints,
        min_crop_frames=views.min_crop_frames,
    )
    both = apply_view(torch.cat([data, data]), params, views.view_frames)  # 2N x C x out x V x M
    return both[:n], both[n:]
