"""Reading NTU RGB+D ``.skeleton`` files: names, splits, parsing and body selection.

The layout, split rules and body selection are those of docs/published-behaviour.md §1.1.  A file is
bad (a ``SkeletonFileError`` naming the file and the line) when it is not ASCII text, does not follow
the layout, declares more frames than it has lines, has a body with other than 25 joints, or has a
coordinate that is not finite or lies beyond ``MAX_COORDINATE``.
"""

import os
import re
import stat

import numpy as np

from dataset.processed import MAX_COORDINATE, MAX_FRAME

MAX_BODY_KINECT = 4
MAX_BODY = 2
NUM_JOINT = 25
BODY_FIELDS = 10
JOINT_FIELDS = 12
# MAX_COORDINATE (dataset.processed, shared with the processed-folder checks): beyond it a coordinate is garbage.
COORDINATE_RULE = f"x y z coordinates that are finite and within +-{MAX_COORDINATE:g} (metres)"

NAME_PATTERN = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})\.skeleton\Z")
NTU60_XSUB_TRAIN = frozenset([1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38])
NTU120_XSUB_TRAIN = NTU60_XSUB_TRAIN | frozenset(
    [
        45,
        46,
        47,
        49,
        50,
        52,
        53,
        54,
        55,
        56,
        57,
        58,
        59,
        70,
        74,
        78,
        80,
        81,
        82,
        83,
        84,
        85,
        86,
        89,
        91,
        92,
        93,
        94,
        95,
        97,
        98,
        100,
        103,
    ]
)
XVIEW_TRAIN_CAMERAS = frozenset([2, 3])


class SkeletonFileError(ValueError):
    """A raw skeleton file that cannot be read: names the file, the line and what was expected."""


def parse_name(name):
    """(setup, camera, subject, replication, action) of an NTU file name; ValueError outside the pattern."""
    match = NAME_PATTERN.match(name)
    if match is None:
        raise ValueError(
            f"{name!r} is not an NTU RGB+D sample file name; expected SsssCcccPpppRrrrAaaa.skeleton "
            f"(e.g. S001C002P003R002A013.skeleton); recordings of your own in this format go through a pyskl "
            f"pickle (docs/small-data.md, 'Kinect v2 recordings of your own')"
        )
    return tuple(int(g) for g in match.groups())


def is_training(name, dataset, benchmark):
    """Whether sample ``name`` is in the training part of ``benchmark`` (docs/published-behaviour.md §1.1)."""
    setup, camera, subject, _, _ = parse_name(name)
    if benchmark == "xsub":
        return subject in (NTU60_XSUB_TRAIN if dataset == "ntu60" else NTU120_XSUB_TRAIN)
    if benchmark == "xview":
        return camera in XVIEW_TRAIN_CAMERAS
    if benchmark == "xsetup":
        return setup % 2 == 0
    raise ValueError(f"unknown benchmark {benchmark!r}; valid: xsub, xview, xsetup")


class _Lines:
    """Line cursor over a file's text that reports 1-based line numbers in its errors."""

    def __init__(self, path, text):
        self.path, self.lines, self.pos = path, text.splitlines(), 0

    def fail(self, line_no, expected, found):
        raise SkeletonFileError(f"{self.path}: line {line_no}: expected {expected}, found {found}")

    def take(self, expected):
        if self.pos >= len(self.lines):
            self.fail(self.pos + 1, expected, "end of file (truncated file?)")
        self.pos += 1
        return self.lines[self.pos - 1]

    def count(self, expected):
        line = self.take(expected)
        try:
            value = int(line)
        except ValueError:
            value = -1
        if value < 0:
            self.fail(self.pos, expected, repr(line[:60]))
        return value

    def fields(self, n, expected):
        line = self.take(expected)
        parts = line.split()
        if len(parts) != n:
            self.fail(self.pos, expected, f"{len(parts)} fields: {line[:60]!r}")
        return parts

    def joints(self, n):
        """n joint lines as an n x 12 float array."""
        start = self.pos
        if start + n > len(self.lines):
            self.fail(
                len(self.lines) + 1, f"{n} joint lines of {JOINT_FIELDS} numbers", "end of file (truncated file?)"
            )
        block = self.lines[start : start + n]
        self.pos += n
        values = number_block(
            block,
            JOINT_FIELDS,
            lambda k, line: self.fail(start + k + 1, f"a joint line of {JOINT_FIELDS} numbers", repr(line[:80])),
        )
        bad = first_bad_coordinate(values[:, :3])
        if bad is not None:
            k, value = bad
            self.fail(start + k + 1, COORDINATE_RULE, f"{value:g} in {block[k][:80]!r}")
        return values


def first_bad_coordinate(coords):
    """(row, value) of the first value of `coords` (rows x k) beyond +-MAX_COORDINATE or not finite, or None."""
    bad = ~(np.abs(coords) <= MAX_COORDINATE)  # rows x k; NaN compares False
    rows = np.flatnonzero(bad.any(axis=1))
    if rows.size == 0:
        return None
    k = int(rows[0])
    return k, float(coords[k][bad[k]][0])


def read_raw_text(path, encoding="ascii"):
    """`read_text` of a recording's file, found in a folder of them: one that is neither a file nor a
    folder (a FIFO, whose opening would wait for a writer forever; a socket, a device) is a
    SkeletonFileError. Files the user names (a file list) go to `read_text`, which also reads a pipe."""
    kind = os.stat(path).st_mode  # a missing path: the FileNotFoundError open would raise
    if not (stat.S_ISREG(kind) or stat.S_ISDIR(kind)):  # a folder: open's IsADirectoryError names it
        raise SkeletonFileError(f"{path}: not a regular file (a FIFO, a socket or a device)")
    return read_text(path, encoding)


def read_text(path, encoding="ascii"):
    """The text of the file at `path`; a SkeletonFileError names the line of the first byte that is not
    `encoding` ('ascii' or 'utf-8')."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line_no = raw[: exc.start].count(b"\n") + 1
        raise SkeletonFileError(
            f"{path}: line {line_no}: expected {encoding.upper()} text, found byte {raw[exc.start]:#04x}"
        ) from None


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def number_block(lines, fields, on_bad_line):
    """The text `lines` as a len(lines) x `fields` float64 array.

    `on_bad_line(k, line)` is called for the first line that is not exactly `fields` numbers and
    must raise (it names the file and the line number in the caller's terms).
    """
    rows = [line.split() for line in lines]
    try:
        if all(len(row) == fields for row in rows):
            return np.array(rows, dtype=np.float64).reshape(len(lines), fields)
    except ValueError:  # a field that is not a number
        pass
    for k, (line, row) in enumerate(zip(lines, rows)):
        if len(row) != fields or not all(_is_number(p) for p in row):
            on_bad_line(k, line)
    raise AssertionError("on_bad_line must raise")


def read_bodies(path):
    """All bodies of an NTU file as (4 x T x 25 x 3 float64 xyz, T): its first 4 bodies."""
    lines = _Lines(path, read_raw_text(path))
    n_frame = lines.count("the number of frames (a non-negative integer)")
    room = len(lines.lines) - lines.pos  # every frame takes at least its body-count line
    if n_frame > room:
        lines.fail(lines.pos, f"the number of frames (at most {room}, the lines that follow)", n_frame)
    xyz = np.zeros((MAX_BODY_KINECT, n_frame, NUM_JOINT, 3))  # 4 x T x 25 x 3
    for t in range(n_frame):
        n_body = lines.count(f"the number of bodies of frame {t + 1} (a non-negative integer)")
        for m in range(n_body):
            lines.fields(BODY_FIELDS, f"the {BODY_FIELDS} body fields of body {m + 1} in frame {t + 1}")
            n_joint = lines.count(f"the number of joints of body {m + 1} in frame {t + 1}")
            if n_joint != NUM_JOINT:
                lines.fail(lines.pos, f"{NUM_JOINT} joints in body {m + 1} of frame {t + 1}", n_joint)
            joints = lines.joints(n_joint)  # 25 x 12
            if m < MAX_BODY_KINECT:
                xyz[m, t] = joints[:, :3]
    for k in range(lines.pos, len(lines.lines)):
        if lines.lines[k].strip():
            lines.fail(k + 1, f"end of file after {n_frame} frames", repr(lines.lines[k][:60]))
    return xyz, n_frame


def body_energy(body, present=None):
    """Energy of one body T x V x C: the sum over channels (std x + std y [+ std z]) of the standard
    deviations over its frames that are not all zero (published); with `present` (T x V), over its
    present joints only, so that joints a pose estimator left at 0 do not count as coordinates."""
    valid = body[(body != 0).any(axis=(1, 2))] if present is None else body[present]  # T' x V x C, or P x C
    if len(valid) == 0:
        return 0.0
    return float(sum(valid[..., c].std() for c in range(body.shape[-1])))


def select_bodies(xyz, bodies=MAX_BODY):
    """The ``bodies`` highest-energy bodies of B x T x V x C data in descending energy, as C x T x V x M
    (M = ``bodies``; zero bodies fill the places when B is smaller).

    Ties keep the published order: a stable ascending sort reversed, so of equal energies the later body
    comes first.
    """
    energy = np.array([body_energy(b) for b in xyz])
    order = np.argsort(energy, kind="stable")[::-1][:bodies]
    kept = np.zeros((bodies,) + xyz.shape[1:], dtype=xyz.dtype)  # M x T x V x C
    kept[: len(order)] = xyz[order]
    return kept.transpose(3, 1, 2, 0)  # C x T x V x M


def read_sample(path, max_frame=MAX_FRAME):
    """(C x min(T, max_frame) x 25 x 2 float32, T) for one NTU file; T is the file's frame count."""
    xyz, n_frame = read_bodies(path)
    data = select_bodies(xyz)[:, :max_frame]
    return np.ascontiguousarray(data, dtype=np.float32), n_frame


def read_samples(path):
    """The samples of one NTU file, as the conversion pipeline expects them: [(data, T)]."""
    return [read_sample(path)]
