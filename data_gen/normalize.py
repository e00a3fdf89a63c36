"""Skeleton normalisation (docs/published-behaviour.md §1.4), vectorised across samples.

``normalize(data, layout)`` takes a float32 array N x C x T x V x M and returns the normalised array,
in four steps whose joints the layout names (``dataset.layouts``; for ``ntu25``, the published ones):

1. null frames are padded (a person whose first frame is empty is front-aligned, and the frames after
   its last non-empty one repeat its frames from the start);
2. the first person's ``layout.centre`` joint (NTU: spine middle) of each frame is subtracted from
   every joint of every person in that frame, except joints whose coordinates sum to 0 (untracked
   ones, as published), which are set to 0;
3. the whole sample is turned so that the first person's ``x[b] - x[a]`` at frame 0, for
   ``(a, b) = layout.z_axis`` (NTU: spine base -> spine middle), points along +z;
4. then turned so that its ``x[b] - x[a]`` for ``(a, b) = layout.x_axis`` (NTU: left -> right
   shoulder) points along +x.

2-D layouts (``channels == 2``) get steps 1 and 2 only: the two rotations are 3-D.
``normalize_and_turn`` also says how far step 4 turned each sample, and ``upside_down`` which
normalised samples stand on their heads: the importers' signs of data a layout does not fit.  Every step works
on all samples of the chunk at once; rotation matrices are computed in float64 from the float32
coordinates and each step's result is stored as float32, as the published per-joint loop does.
"""

import math

import numpy as np

from dataset.layouts import NTU25


def pad_null_frames(s):
    """Step 1 on s (N x M x T x V x C): front-align persons whose first frame is empty, then loop the tail."""
    n, m, t = s.shape[:3]
    s = s.copy()
    frame_nonzero = (s.reshape(n, m, t, -1) != 0).any(axis=3)  # N x M x T
    person_nonzero = frame_nonzero.any(axis=2)  # N x M
    shift = np.nonzero(person_nonzero & ~frame_nonzero[:, :, 0])  # persons whose first frame is empty
    if len(shift[0]):
        order = np.argsort(~frame_nonzero[shift], axis=1, kind="stable")  # P x T, non-zero frames first
        keep = np.take_along_axis(frame_nonzero[shift], order, axis=1)  # P x T
        moved = s[shift[0][:, None], shift[1][:, None], order]  # P x T x V x C
        s[shift] = moved * keep[:, :, None, None]
        frame_nonzero[shift] = keep
    # Frames after the last non-empty one repeat frames 0 .. last cyclically.
    length = t - np.argmax(frame_nonzero[:, :, ::-1], axis=2)  # N x M
    loop = np.nonzero(person_nonzero & (length < t))
    if len(loop[0]):
        steps = np.arange(t)  # T
        source = steps[None, :] % length[loop][:, None]  # P x T
        s[loop] = s[loop[0][:, None], loop[1][:, None], source]  # P x T x V x C
    return s


def _rotation_to(v, target):
    """Matrices N x 3 x 3 (float64) turning each v (N x 3) towards the unit axis ``target`` (3,)."""
    target = np.asarray(target, dtype=np.float64)
    v64 = v.astype(np.float64)
    axis = np.cross(v64, target)  # N x 3
    norm = np.linalg.norm(v64, axis=1, keepdims=True)  # N x 1
    unit = v64 / np.where(norm > 0, norm, 1)
    theta = np.arccos(np.clip(unit @ target, -1.0, 1.0))  # N
    theta = np.where(np.abs(v64).sum(axis=1) < 1e-6, 0.0, theta)
    identity = (np.abs(axis).sum(axis=1) < 1e-6) | (np.abs(theta) < 1e-6)  # N
    axis_norm = np.linalg.norm(axis, axis=1, keepdims=True)
    u = axis / np.where(axis_norm > 0, axis_norm, 1)  # N x 3
    a = np.cos(theta / 2)
    b, c, d = (-u * np.sin(theta / 2)[:, None]).T
    aa, bb, cc, dd = a * a, b * b, c * c, d * d
    bc, ad, ac, ab, bd, cd = b * c, a * d, a * c, a * b, b * d, c * d
    rot = np.stack(
        [
            np.stack([aa + bb - cc - dd, 2 * (bc + ad), 2 * (bd - ac)], -1),
            np.stack([2 * (bc - ad), aa + cc - bb - dd, 2 * (cd + ab)], -1),
            np.stack([2 * (bd + ac), 2 * (cd - ab), aa + dd - bb - cc], -1),
        ],
        1,
    )  # N x 3 x 3
    rot[identity] = np.eye(3)
    return rot


def _rotate(s, rot):
    """x <- R x for every joint of every sample (s: N x M x T x V x C float32, rot: N x 3 x 3)."""
    flat = s.reshape(len(s), -1, 3).astype(np.float64)  # N x MTV x C
    return np.matmul(flat, rot.transpose(0, 2, 1)).astype(np.float32).reshape(s.shape)


def _check_shape(data, layout):
    """ValueError unless ``data`` is N x layout.channels x T x layout.num_joints x M."""
    if data.ndim != 5 or data.shape[1] != layout.channels or data.shape[3] != layout.num_joints:
        raise ValueError(
            f"layout {layout.name}: expected data of shape N x {layout.channels} x T x "
            f"{layout.num_joints} x M, found {data.shape}"
        )


def normalize(data, layout=NTU25):
    """The normalisation of N x C x T x V x M float32 data in ``layout``; returns a new float32 array."""
    return normalize_and_turn(data, layout)[0]


def normalize_and_turn(data, layout=NTU25):
    """(the normalised array, the angles in degrees (N) from each sample's x-axis pair to +x before step 4,
    the angle step 4 turns it through; NaN for a 2-D layout, an all-zero sample or a pair of one point).
    Step 4 turns nothing where the pair lies within 1e-6 of the x axis, either way, so a pair exactly
    opposite +x reads 180 and stays opposite. Over 90 degrees, the pair pointed away from +x once the
    z-axis pair stood on +z: a mirror image of the sensor's right-handed space, or people facing away
    from it, which the published turn leaves at tilts set by small differences (docs/published-behaviour.md
    §1.4)."""
    _check_shape(data, layout)
    n = len(data)
    turn = np.full(n, np.nan)
    s = np.ascontiguousarray(np.transpose(data, (0, 4, 2, 3, 1)), dtype=np.float32)  # N x M x T x V x C
    active = (s.reshape(n, -1) != 0).any(axis=1)  # N; all-zero samples are left as they are
    if not active.all():
        out = np.array(data, dtype=np.float32)
        if active.any():
            out[active], turn[active] = normalize_and_turn(out[active], layout)
        return out, turn
    s = pad_null_frames(s)
    centre = s[:, 0:1, :, layout.centre : layout.centre + 1, :]  # N x 1 x T x 1 x C
    total = s[..., 0]
    for k in range(1, layout.channels):
        total = total + s[..., k]  # N x M x T x V, x + y (+ z) in float32
    s = np.where(total[..., None] != 0, s - centre, np.float32(0))
    if layout.channels == 2:
        return np.transpose(s, (0, 4, 2, 3, 1)), turn  # N x C x T x V x M
    for (a, b), target in ((layout.z_axis, (0.0, 0.0, 1.0)), (layout.x_axis, (1.0, 0.0, 0.0))):
        v = s[:, 0, 0, b] - s[:, 0, 0, a]  # N x C
        s = _rotate(s, _rotation_to(v, target))
    length = np.linalg.norm(v.astype(np.float64), axis=1)  # v: step 4's x-axis pair, before its turn
    with np.errstate(invalid="ignore", divide="ignore"):
        turn = np.degrees(np.arccos(np.clip(v[:, 0] / length, -1.0, 1.0)))
    return np.transpose(s, (0, 4, 2, 3, 1)), np.where(length > 0, turn, np.nan)  # N x C x T x V x M


def upside_down(data, layout):
    """Which of the normalised N x C x T x V x M samples stand upside down for `layout`: the first body's
    joints on the lower side of `layout.trunk_sides()` higher on average (z, over the frames) than those
    on the upper side. A sign that the data's joint order is not the layout's (a head-first Kinect v1
    order imported as kinect20 turns over nearly every sample; the right order almost none). None for a
    layout without such sides."""
    sides = layout.trunk_sides()
    if sides is None:
        return None
    lower, upper = (list(side) for side in sides)
    z = data[:, 2, :, :, 0]  # N x T x V; a frame without the body adds 0 to both sides
    return z[:, :, lower].mean(axis=(1, 2)) > z[:, :, upper].mean(axis=(1, 2))


def normalize_loop(data, layout=NTU25):
    """The normalisation written literally, one sample, person, frame and joint at a time (reference)."""
    _check_shape(data, layout)
    n, c, t, v, m = data.shape
    s = np.array(np.transpose(data, (0, 4, 2, 3, 1)), dtype=np.float32)  # N x M x T x V x C
    for i in range(n):
        if not s[i].any():
            continue
        for p in range(m):
            person = s[i, p]
            if not person.any():
                continue
            if not person[0].any():
                frames = [person[f].copy() for f in range(t) if person[f].any()]
                person[:] = 0
                for f, frame in enumerate(frames):
                    person[f] = frame
            for f in range(t):
                if not person[f].any() and not person[f:].any():
                    for g in range(f, t):
                        person[g] = person[g % f]
                    break
        centre = s[i, 0, :, layout.centre].copy()  # T x C
        for p in range(m):
            for f in range(t):
                for j in range(v):
                    if s[i, p, f, j].sum() != 0:
                        s[i, p, f, j] = s[i, p, f, j] - centre[f]
                    else:
                        s[i, p, f, j] = 0
        if c == 2:
            continue  # 2-D: padding and centring only
        for (bottom, top), target in ((layout.z_axis, (0, 0, 1)), (layout.x_axis, (1, 0, 0))):
            rot = _rotation_literal(s[i, 0, 0, top] - s[i, 0, 0, bottom], np.array(target, dtype=np.float64))
            for p in range(m):
                if not s[i, p].any():
                    continue
                for f in range(t):
                    for j in range(v):
                        s[i, p, f, j] = rot @ s[i, p, f, j]
    return np.transpose(s, (0, 4, 2, 3, 1))


def _rotation_literal(vec, target):
    """The rotation of normalisation step 3 for one vector, scalar arithmetic only."""
    vec = vec.astype(np.float64)
    if np.abs(vec).sum() < 1e-6 or np.abs(target).sum() < 1e-6:
        theta = 0.0
    else:
        unit = vec / math.sqrt(float(vec @ vec))
        theta = math.acos(min(1.0, max(-1.0, float(unit @ (target / math.sqrt(float(target @ target)))))))
    axis = np.cross(vec, target)
    if np.abs(axis).sum() < 1e-6 or abs(theta) < 1e-6:
        return np.eye(3)
    axis = axis / math.sqrt(float(axis @ axis))
    a = math.cos(theta / 2)
    b, c, d = -axis * math.sin(theta / 2)
    return np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c + a * d), 2 * (b * d - a * c)],
            [2 * (b * c - a * d), a * a + c * c - b * b - d * d, 2 * (c * d + a * b)],
            [2 * (b * d + a * c), 2 * (c * d - a * b), a * a + d * d - b * b - c * c],
        ]
    )
