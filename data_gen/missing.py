"""Missing joints of pose-estimator output, filled before the published normalisation.

A pose estimator leaves a joint it did not find at 0 (or NaN), and a frame in which it found nobody
all zeros. The published normalisation (``data_gen.normalize``) takes such zeros for coordinates: a
frame whose centre joint is missing is not centred at all (its joints stay where the image put
them), a missing joint sits on the centre, a missing axis joint at frame 0 turns the whole
recording, and a person who enters late is moved to the start of the recording (its empty frames
are taken for padding). Kinect recordings (NTU, PKU-MMD, NW-UCLA, MSR-Action3D) have every joint of
every tracked body, so their converters keep the published treatment; the pyskl importer fills by
default (``--missing-joints fill``).

What is missing: a joint that is NaN, or 0 in every channel (unless zeros are coordinates, as in
root-relative data whose root is the origin: ``zeros_missing=False``), or scored below a threshold.

Filling:

- frames in which nobody was found are dropped (the frame count says how many are kept), so a
  recording does not glide through a stretch without anyone;
- bodies are ranked by the published energy over their present joints, times the share of the kept
  frames they are present in, so that a passer-by or a one-frame false detection does not displace
  the actor;
- in each body, a joint present in some frames is interpolated linearly in time between them and
  held at its first or last position before and after them (a person who enters late stands where
  it enters until then, so the bodies stay in step);
- a joint present in no frame takes the filled position of the nearest present joint along the
  bones, its parent's when that was found (its bone is then zero): a root never found (a COCO nose on
  a person facing away, the layout's centre) takes a child's, so that every frame is centred; a branch
  of its own never found (a layout of several roots) takes the mean of the found joints.
"""

import numpy as np

from data_gen.ntu_reader import body_energy


def present_joints(bodies, scores=None, min_score=None, zeros_missing=True):
    """B x T x V bool: the joints of `bodies` (B x T x V x C) that were found: finite, not 0 in every
    channel (unless not `zeros_missing`: then only a body all 0 in a frame is absent from it), and (with
    `scores`, B x T x V, and `min_score`) scored at least `min_score`."""
    present = np.isfinite(bodies).all(axis=-1)
    nonzero = (np.nan_to_num(bodies) != 0).any(axis=-1)  # B x T x V
    # zeros as coordinates still leave a body whose every joint is 0 in a frame absent from that frame
    present &= nonzero if zeros_missing else nonzero.any(axis=-1, keepdims=True)
    if scores is not None and min_score is not None:
        present &= np.asarray(scores) >= min_score
    return present


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


def fill_body(body, present, parents):
    """`body` (T x V x C) with its missing joints filled (see the module docstring); `present` T x V.
    A body present in no frame stays zero (absent)."""
    filled = np.zeros(body.shape)
    seen = present.any(axis=0)  # V
    if not seen.any():
        return filled
    steps = np.arange(body.shape[0])
    for j in np.flatnonzero(seen):
        at = steps[present[:, j]]
        for c in range(body.shape[-1]):
            filled[:, j, c] = np.interp(steps, at, body[at, j, c])  # held beyond its first and last frame
    for j in np.flatnonzero(~seen):
        k = nearest_found(j, seen, parents)
        # a branch of its own (a layout of several roots) never found: the mean of the found joints
        filled[:, j] = filled[:, seen].mean(axis=1) if k is None else filled[:, k]
    return filled


def rank_bodies(bodies, present, count):
    """The indices of the `count` bodies (of B x T x V x C) to keep, best first: the published energy
    over their present joints (`present` B x T x V) times the share of frames they are present in.
    Ties keep the published order (a stable ascending sort reversed)."""
    share = present.any(axis=2).mean(axis=1)  # B
    score = np.array([body_energy(b, p) for b, p in zip(bodies, present)]) * share
    score[share == 0] = -1.0  # a body found in no frame comes after every body found somewhere
    return np.argsort(score, kind="stable")[::-1][:count]


def fill_missing(bodies, present, parents, count):
    """(M x T' x V x C filled bodies, T') of `bodies` (B x T x V x C) whose joints `present` (B x T x V)
    says were found: the frames with nobody dropped, the `count` best bodies kept (`rank_bodies`; zero
    bodies fill the places when fewer), each filled (`fill_body`). T' is 0 when nobody was found."""
    frames = present.any(axis=(0, 2))  # T: someone was found
    bodies, present = bodies[:, frames], present[:, frames]
    kept = np.zeros((count,) + bodies.shape[1:])
    if not frames.any():
        return kept, 0
    for m, b in enumerate(rank_bodies(bodies, present, count)):
        kept[m] = fill_body(bodies[b], present[b], parents)
    return kept, int(frames.sum())


# How far one person may move between two frames in which it is seen, in its own sizes (the mean distance
# of its joints from their mean): farther, a detection is taken for someone else. A walker at 30 frames a
# second covers about a tenth of its size a frame; people listed in the wrong place are usually several
# sizes away.
REACH = 2.0


def centres(bodies, present):
    """(B x T x C, B x T): each body's mean present joint in each frame, and its size there, the mean
    distance of its present joints from that mean (NaN where it is absent)."""
    count = present.sum(axis=2)  # B x T
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        centre = np.where(present[..., None], np.nan_to_num(bodies), 0.0).sum(axis=2) / count[..., None]
        spread = np.linalg.norm(np.nan_to_num(bodies) - centre[:, :, None], axis=-1)  # B x T x V
        size = np.where(present, spread, 0.0).sum(axis=2) / count
    return np.where(count[..., None] > 0, centre, np.nan), np.where(count > 0, size, np.nan)


def change_places(bodies, present):
    """Whether two of the bodies (B x T x V x C, `present` B x T x V) change places between two consecutive
    frames in which both are present: each beyond reach of its own previous position (REACH times the
    larger of the two bodies' sizes) and within reach of the other's. Per-frame detections listed in each
    frame's own order do this; people who stay in their places, and noise near one of them, do not."""
    c, size = centres(bodies, present)  # B x T x C, B x T
    with np.errstate(invalid="ignore", over="ignore"):
        for a in range(len(c)):
            for b in range(a + 1, len(c)):
                reach = REACH * np.fmax.reduce([size[a, 1:], size[a, :-1], size[b, 1:], size[b, :-1]])  # T - 1
                crossed = (_step(c[a], c[b]) <= reach) & (_step(c[b], c[a]) <= reach)
                if (crossed & (_step(c[a], c[a]) > reach) & (_step(c[b], c[b]) > reach)).any():
                    return True
    return False


def _step(x, y):
    """T - 1: the distance from y's position in each frame to x's in the next (x, y: T x C)."""
    return np.linalg.norm(x[1:] - y[:-1], axis=-1)


def track_people(bodies, present):
    """(bodies, present) with each frame's people reordered so that each place follows one person. Frame
    by frame, the pairs of a place and a person present in the frame are taken nearest first (from where
    the place's person was last seen to the person's mean present joint), each within reach (REACH times
    the larger of the two sizes); a person left over takes a place never used before, else the nearest
    free place. Per-frame pose estimators list each frame's people in an order of their own; the body
    ranking and filling that follow need one person per place."""
    count, frames = present.shape[:2]
    c, size = centres(bodies, present)  # B x T x C, B x T
    last = np.full(c.shape[::2], np.nan)  # B x C: where each place's person was last seen
    last_size = np.full(count, np.nan)
    order = np.empty((count, frames), dtype=np.int64)  # the body each place takes in each frame
    for t in range(frames):
        here = [b for b in range(count) if present[b, t].any()]
        used = [p for p in range(count) if np.isfinite(last[p]).all()]
        distance = {(p, b): float(np.linalg.norm(c[b, t] - last[p])) for p in used for b in here}
        pairs = sorted((d, p, b) for (p, b), d in distance.items() if d <= REACH * np.fmax(size[b, t], last_size[p]))
        row, taken = {}, set()
        for _, p, b in pairs:
            if p not in row and b not in taken:
                row[p] = b
                taken.add(b)
        for b in [b for b in here if b not in taken]:
            free = [p for p in range(count) if p not in row]
            new = [p for p in free if p not in used]
            row[new[0] if new else min(free, key=lambda p: distance[(p, b)])] = b
        row.update(zip([p for p in range(count) if p not in row], [b for b in range(count) if b not in here]))
        for p, b in row.items():
            order[p, t] = b
            if b in here:
                last[p], last_size[p] = c[b, t], size[b, t]
    frame = np.arange(frames)
    return bodies[order, frame], present[order, frame]


def numeric_array(value, ndim):
    """Whether `value` is a NumPy array of integers or floats with `ndim` dimensions (pyskl's keypoints: 4,
    their scores: 3)."""
    return isinstance(value, np.ndarray) and value.dtype.kind in "iuf" and value.ndim == ndim


def fits(keypoint, layout):
    """Whether `keypoint` is a numeric M x T x V x C array of the layout's joints and channels (the reader
    names any other)."""
    return numeric_array(keypoint, 4) and keypoint.shape[2:] == (layout.num_joints, layout.channels)


def missing_summary(keypoints, layout, scores=None, min_score=None, zeros_missing=True, low_score=None):
    """What filling will do to `keypoints` (a list of B x T x V x C arrays; `scores` a list of B x T x V or
    None, used to find joints with `min_score`): {'recordings_with_anyone', 'joints_missing_percent': of
    the joints of the bodies in the frames they appear in, 'frames_without_anyone', 'centre_never_found':
    recordings whose layout centre is never found, 'joints_never_found': the names of the joints found in no
    frame of any recording, 'recordings_with_several_people': those in which two bodies are present in a
    frame, 'people_change_places': those of them in which two bodies change places (`change_places`)},
    and with `low_score` 'found_scored_below_percent': of
    the joints found in recordings with scores, those scored below it (None without any); recordings the
    reader will refuse are left out."""
    missing = total = empty = centreless = anyone = found = low = several = swapping = 0
    ever = np.zeros(layout.num_joints, dtype=bool)  # V: found in some frame of some recording
    for i, keypoint in enumerate(keypoints):
        if not fits(keypoint, layout):
            continue  # the reader names it
        score = None if scores is None else scores[i]
        scored = numeric_array(score, 3) and score.shape == keypoint.shape[:3]
        if score is not None and min_score is not None and not scored:
            continue  # the reader names it
        bodies = keypoint.astype(np.float64)
        present = present_joints(bodies, score, min_score, zeros_missing)
        if low_score is not None and scored:
            found += int(present.sum())
            low += int((present & (score < low_score)).sum())
        appears = present.any(axis=2)  # B x T: the body is there
        total += int(appears.sum()) * present.shape[2]
        missing += int((~present & appears[..., None]).sum())
        empty += int((~appears.any(axis=0)).sum())
        anyone += bool(appears.any())
        centreless += bool(appears.any()) and not present[..., layout.centre].any()
        ever |= present.any(axis=(0, 1))
        if (appears.sum(axis=0) > 1).any():
            several += 1
            swapping += change_places(bodies, present)
    summary = {
        "recordings_with_anyone": anyone,
        "joints_missing_percent": round(100.0 * missing / total, 2) if total else 0.0,
        "frames_without_anyone": empty,
        "centre_never_found": centreless,
        "joints_never_found": [name for name, seen in zip(layout.joints, ever) if anyone and not seen],
        "recordings_with_several_people": several,
        "people_change_places": swapping,
    }
    if low_score is not None:
        summary["found_scored_below_percent"] = round(100.0 * low / found, 2) if found else None
    return summary
