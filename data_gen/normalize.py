"""Skeleton normalisation of SPEC §1.4, vectorised across samples.

``normalize(data)`` takes a float32 array N x C x T x V x M and returns the normalised array: null
frames padded, the first person's spine middle moved to the origin, the first person's spine turned
to +z and its shoulders to +x.  Every step works on all samples of the chunk at once; rotation
matrices are computed in float64 from the float32 coordinates and each step's result is stored as
float32, as the published per-joint loop does.
"""
import math

import numpy as np

SPINE_BASE, SPINE_MID, LEFT_SHOULDER, RIGHT_SHOULDER = 0, 1, 4, 8


def pad_null_frames(s):
    """Step 1 on s (N x M x T x V x C): front-align persons whose first frame is empty, then loop the tail."""
    n, m, t = s.shape[:3]
    frame_nonzero = (s != 0).any(axis=(3, 4))  # N x M x T
    person_nonzero = frame_nonzero.any(axis=2)  # N x M
    shift = person_nonzero & ~frame_nonzero[:, :, 0]  # N x M
    if shift.any():
        order = np.argsort(~frame_nonzero, axis=2, kind='stable')  # N x M x T, non-zero frames first
        moved = np.take_along_axis(s, order[:, :, :, None, None], axis=2)
        keep = np.take_along_axis(frame_nonzero, order, axis=2)  # N x M x T
        moved = moved * keep[:, :, :, None, None]
        s = np.where(shift[:, :, None, None, None], moved, s)
        frame_nonzero = np.where(shift[:, :, None], keep, frame_nonzero)
    # Length of the prefix that ends at the last non-empty frame; frames after it repeat it cyclically.
    last = t - np.argmax(frame_nonzero[:, :, ::-1], axis=2)  # N x M (t when no frame is empty at the end)
    last = np.where(person_nonzero, last, t)
    steps = np.arange(t)  # T
    source = np.where(steps[None, None, :] < last[:, :, None], steps, steps % last[:, :, None])  # N x M x T
    return np.take_along_axis(s, source[:, :, :, None, None], axis=2)


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
    rot = np.stack([
        np.stack([aa + bb - cc - dd, 2 * (bc + ad), 2 * (bd - ac)], -1),
        np.stack([2 * (bc - ad), aa + cc - bb - dd, 2 * (cd + ab)], -1),
        np.stack([2 * (bd + ac), 2 * (cd - ab), aa + dd - bb - cc], -1)], 1)  # N x 3 x 3
    rot[identity] = np.eye(3)
    return rot


def _rotate(s, rot):
    """x <- R x for every joint of every sample (s: N x M x T x V x C float32, rot: N x 3 x 3)."""
    out = np.einsum('nij,nmtvj->nmtvi', rot, s.astype(np.float64))
    return out.astype(np.float32)


def normalize(data):
    """The SPEC §1.4 normalisation of N x C x T x V x M float32 data; returns a new float32 array."""
    s = np.ascontiguousarray(np.transpose(data, (0, 4, 2, 3, 1)), dtype=np.float32)  # N x M x T x V x C
    active = (s != 0).any(axis=(1, 2, 3, 4))  # N; all-zero samples are left as they are
    if not active.any():
        return np.array(data, dtype=np.float32)
    s = s[active]
    s = pad_null_frames(s)
    centre = s[:, 0:1, :, SPINE_MID:SPINE_MID + 1, :]  # N x 1 x T x 1 x C
    mask = (s.sum(axis=-1, dtype=np.float32) != 0)[..., None]  # N x M x T x V x 1
    s = (s - centre) * mask
    v = s[:, 0, 0, SPINE_MID] - s[:, 0, 0, SPINE_BASE]  # N x C
    s = _rotate(s, _rotation_to(v, (0.0, 0.0, 1.0)))
    v = s[:, 0, 0, RIGHT_SHOULDER] - s[:, 0, 0, LEFT_SHOULDER]  # N x C
    s = _rotate(s, _rotation_to(v, (1.0, 0.0, 0.0)))
    out = np.array(data, dtype=np.float32)
    out[active] = np.transpose(s, (0, 4, 2, 3, 1))
    return out


def normalize_loop(data):
    """SPEC §1.4 written literally, one sample, person, frame and joint at a time (reference and baseline)."""
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
        centre = s[i, 0, :, SPINE_MID].copy()  # T x C
        for p in range(m):
            for f in range(t):
                for j in range(v):
                    if s[i, p, f, j].sum() != 0:
                        s[i, p, f, j] = s[i, p, f, j] - centre[f]
                    else:
                        s[i, p, f, j] = 0
        for (bottom, top), target in (((SPINE_BASE, SPINE_MID), (0, 0, 1)),
                                      ((LEFT_SHOULDER, RIGHT_SHOULDER), (1, 0, 0))):
            rot = _rotation_literal(s[i, 0, 0, top] - s[i, 0, 0, bottom], np.array(target, dtype=np.float64))
            for p in range(m):
                if not s[i, p].any():
                    continue
                for f in range(t):
                    for j in range(v):
                        s[i, p, f, j] = rot @ s[i, p, f, j]
    return np.transpose(s, (0, 4, 2, 3, 1))


def _rotation_literal(vec, target):
    """The rotation of SPEC §1.4 step 3 for one vector, scalar arithmetic only."""
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
    return np.array([[a * a + b * b - c * c - d * d, 2 * (b * c + a * d), 2 * (b * d - a * c)],
                     [2 * (b * c - a * d), a * a + c * c - b * b - d * d, 2 * (c * d + a * b)],
                     [2 * (b * d + a * c), 2 * (c * d - a * b), a * a + d * d - b * b - c * c]])
