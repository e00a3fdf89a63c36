"""Missing joints of pose-estimator output, filled before the published normalisation.

A pose estimator leaves a joint it did not find at 0 (or NaN), and a frame in which it found nobody
all zeros. The published normalisation (``data_gen.normalize``) takes such zeros for coordinates: a
frame whose centre joint is missing is not centred at all (its joints stay where the image put
them), a missing joint sits on the centre, and a missing axis joint at frame 0 turns the whole
recording. Kinect recordings (NTU, PKU-MMD, NW-UCLA, MSR-Action3D) have every joint of every tracked
body, so their converters keep the published treatment; the pyskl importer fills by default
(``--missing-joints fill``).

Filling, per body, over the frames from its first to its last present joint (before and after them
the body is absent and stays zero, as the published format has it):

- a joint present in some of those frames is interpolated linearly in time between the frames it is
  present in, and held at its first or last position before or after them;
- a joint present in none of them takes the filled position of the nearest present joint along the
  bones, its parent's when that was found (its bone is then zero): a root never found (a COCO nose on
  a person facing away, the layout's centre) takes a child's, so that every frame is centred.

Frames in which no body is present at the start or the end of a recording are cut off (the frame
count says so); in between, each body's frames are filled as above.
"""

import numpy as np


def present_joints(bodies, scores=None, min_score=None):
    """B x T x V bool: the joints of `bodies` (B x T x V x C) that were found: finite, not all zero, and
    (with `scores`, B x T x V, and `min_score`) scored at least `min_score`."""
    present = np.isfinite(bodies).all(axis=-1) & (np.nan_to_num(bodies) != 0).any(axis=-1)
    if scores is not None and min_score is not None:
        present &= np.asarray(scores) >= min_score
    return present


def fill_body(body, present, parents):
    """`body` (T x V x C) with its missing joints filled (see the module docstring); `present` T x V."""
    frames = np.flatnonzero(present.any(axis=1))
    filled = np.zeros_like(body)
    if frames.size == 0:
        return filled  # absent throughout
    span = np.arange(frames[0], frames[-1] + 1)
    seen = present[span].any(axis=0)  # V
    for j in np.flatnonzero(seen):
        at = span[present[span, j]]
        for c in range(body.shape[-1]):
            filled[span, j, c] = np.interp(span, at, body[at, j, c])
    for j in np.flatnonzero(~seen):
        k = nearest_found(j, seen, parents)
        if k is not None:
            filled[span, j] = filled[span, k]
    return filled


def nearest_found(joint, seen, parents):
    """The found joint (`seen`: V bool) nearest to `joint` along the bones, its ancestors first at an equal
    distance (so its parent when that was found), or None when no joint was found."""
    children = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p != j:
            children[p].append(j)
    visited, frontier = {joint}, [joint]
    while frontier:
        ring = []
        for j in frontier:
            for k in ([parents[j]] if parents[j] != j else []) + children[j]:
                if k not in visited:
                    visited.add(k)
                    ring.append(k)
        found = [k for k in ring if seen[k]]
        if found:
            return found[0]
        frontier = ring
    return None


def fill_missing(bodies, present, parents):
    """(filled bodies, first frame, end frame) of `bodies` (B x T x V x C) whose joints `present`
    (B x T x V) says were found: each body filled (`fill_body`), and the frames [first, end) that hold
    a present joint of some body (the frames before and after them are to be cut off)."""
    any_body = np.flatnonzero(present.any(axis=(0, 2)))  # frames in which someone was found
    if any_body.size == 0:
        return np.zeros_like(bodies), 0, 0
    filled = np.stack([fill_body(b, p, parents) for b, p in zip(bodies, present)])
    return filled, int(any_body[0]), int(any_body[-1]) + 1
