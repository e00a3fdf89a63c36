"""The one reader of processed folders (docs/published-behaviour.md §1.3).

A processed folder (e.g. ``data/NTU-RGB-D-60-AGCN/xsub``) holds, for part in {train, val}:
``<part>_data_joint.npy`` float32 N x C x T x V x M (T = 300; C channels, V joints and M bodies of
the folder's skeleton layout: 3 x 300 x 25 x 2 for ``ntu25``), ``<part>_num_frame.npy`` integer (N,)
and ``<part>_label.pkl``, a pickled tuple (list of sample names, list of labels); and ``layout.json``,
the folder's record of its layout, class count and dataset (``dataset.layouts``).  Folders written by
the published tools load unchanged: without ``layout.json`` a folder is ``ntu25`` with no recorded
class count, its labels may be numpy floats (PKU-MMD) and its frame counts any integer dtype.
``label.pkl`` is read by a restricted unpickler that builds only plain containers, strings and numbers
(numpy numeric and text scalars and arrays included), so a crafted file cannot run code.

``load_split`` checks a part when it is opened, so that bad data fails before any work with a
``ProcessedDataError`` naming the folder, the part and, for a bad sample, its index and name: the
layout record, the files and their shapes, an empty part, frame counts below 1, labels outside the
classes (negative ones always; beyond the class count given or recorded), and samples holding NaN or
infinite values or values beyond +-``MAX_COORDINATE`` (the data array is scanned once, in blocks of
``SCAN_ROWS`` samples, at memory speed when the file is cached).
"""

import hashlib
import io
import os
import pickle
from dataclasses import dataclass

import numpy as np

from dataset.files import file_fingerprint, folder_settings, is_temporary
from dataset.layouts import NTU25, Layout, LayoutError, read_folder_record

PARTS = ("train", "val")
CONVERTING = ".converting"  # in a processed folder while a converter replaces its files (data_gen.writer)
MAX_FRAME = 300
SCAN_ROWS = 256  # samples checked for non-finite or absurd values at a time (about 46 MB of NTU data)
# Kinect v2 camera-space coordinates are metres within about 8 m of the camera; beyond 10 km a value is
# garbage (a corrupted or mis-scaled file), even for data written in millimetres.  The converters refuse
# such raw coordinates (data_gen.ntu_reader imports this limit) and load_split such processed values.
MAX_COORDINATE = 1e4


class ProcessedDataError(ValueError):
    """A processed folder or one of its files is missing, malformed or inconsistent."""


class ForbiddenPickleError(pickle.UnpicklingError):
    """A pickle asked for something the restricted unpickler does not build (nothing of it was called)."""


PLAIN_KINDS = "biufUS"  # numpy dtypes built from raw bytes alone: booleans, integers, floats and text


def _plain_dtype(*args):
    """numpy.dtype, admitted only for booleans, integers, floats and text (no objects)."""
    dtype = np.dtype(*args)
    if dtype.kind not in PLAIN_KINDS:
        raise ForbiddenPickleError(f"numpy dtype {dtype} is not numeric or text")
    return dtype


def _plain_scalar(dtype, data=None):
    """A numpy numeric or text scalar rebuilt from its dtype and raw bytes."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in PLAIN_KINDS or not isinstance(data, bytes):
        raise ForbiddenPickleError("only numeric or text numpy scalars are allowed")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _plain_reconstruct(subtype, shape, dtype_code):
    """An empty numpy array (filled in by its pickled state), admitted only for plain ndarrays.

    numpy pickles declare shape (0,) here and the real shape with the data in the state, which numpy
    checks against the data; any other shape would be allocated here, before any data, so it is refused.
    """
    if subtype is not np.ndarray:
        raise ForbiddenPickleError("only plain numpy arrays are allowed")
    if not isinstance(shape, tuple) or 0 not in shape:
        raise pickle.UnpicklingError(
            f"a numpy array declares shape {shape!r} before its data; expected an "
            f"empty one (shape (0,)) that its state fills in"
        )
    return np.ndarray.__new__(np.ndarray, shape, dtype_code)


def _plain_frombuffer(buf, dtype, shape, order):
    """A numeric or text numpy array from raw bytes (how protocol-5 pickles store arrays)."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in PLAIN_KINDS:
        raise ForbiddenPickleError("only numeric or text numpy arrays are allowed")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order).copy()


def _codecs_encode(text, encoding="utf-8"):
    """bytes from text, as protocol-2 pickles of bytes objects spell it."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ForbiddenPickleError("only latin1 byte strings are allowed")
    return text.encode("latin1")


_ALLOWED = {
    ("numpy", "dtype"): _plain_dtype,
    ("numpy.core.multiarray", "scalar"): _plain_scalar,
    ("numpy._core.multiarray", "scalar"): _plain_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _plain_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _plain_reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.numeric", "_frombuffer"): _plain_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _plain_frombuffer,
    ("_codecs", "encode"): _codecs_encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves no global except numeric or text numpy scalars/arrays and byte strings."""

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise ForbiddenPickleError(
                f"{module}.{name} is not allowed (only plain containers, strings, numbers and numeric or text "
                "numpy arrays are)"
            ) from None


def restricted_load(file):
    """The object pickled in the binary ``file``, built from plain containers, strings, numbers and
    numeric or text numpy scalars and arrays only: anything else is a ``ForbiddenPickleError`` (an
    ``UnpicklingError``) raised before it is called, so a crafted pickle cannot run code.  An array
    whose declared shape does not match its data, or a declared size too large for memory, is refused
    before it is allocated (a ``ValueError`` or an ``UnpicklingError``)."""
    try:
        return _RestrictedUnpickler(file).load()
    except MemoryError as exc:  # a size too large to allocate (numpy's for unaddressable array shapes)
        detail = f": {exc}" if str(exc) else ""
        raise pickle.UnpicklingError(
            f"an array shape or a byte count in it is too large for memory (MemoryError{detail})"
        ) from None


def _to_int_label(value, path, index):
    """An int from an int/float label that holds an integral value."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ProcessedDataError(f"{path}: label {index} is {value!r}; expected an integer class number")
    if not float(value).is_integer():
        raise ProcessedDataError(f"{path}: label {index} is {value!r}; expected an integral value")
    if not -(2**63) <= int(value) < 2**63:  # what the labels' int64 array holds
        raise ProcessedDataError(f"{path}: label {index} is {value!r}; expected a class number")
    return int(value)


def load_label_pkl(path):
    """(names, labels) from a ``<part>_label.pkl``: names as str, labels as int (float labels admitted)."""
    path = str(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ProcessedDataError(f"{path}: no such file") from None
    try:
        obj = restricted_load(io.BytesIO(raw))
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ProcessedDataError(f"{path}: not a readable label file ({exc})") from None
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        raise ProcessedDataError(f"{path}: expected a pickled (names, labels) pair, found {type(obj).__name__}")
    names, labels = obj
    if isinstance(names, np.ndarray) or isinstance(labels, np.ndarray):
        names = names.tolist() if isinstance(names, np.ndarray) else names
        labels = labels.tolist() if isinstance(labels, np.ndarray) else labels
    if not isinstance(names, (list, tuple)) or not isinstance(labels, (list, tuple)):
        raise ProcessedDataError(f"{path}: names and labels must be lists")
    if len(names) != len(labels):
        raise ProcessedDataError(f"{path}: {len(names)} names but {len(labels)} labels")
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise ProcessedDataError(f"{path}: name {i} is {name!r}; expected a string")
    return list(names), [_to_int_label(v, path, i) for i, v in enumerate(labels)]


@dataclass
class Split:
    """One part (train or val) of a processed folder, with the folder's layout, recorded class count and
    recorded dataset name."""

    folder: str
    part: str
    data: np.ndarray  # N x C x 300 x V x M float32
    num_frame: np.ndarray  # N int64
    names: list
    labels: np.ndarray  # N int64
    layout: Layout = NTU25
    num_class: object = None  # int from layout.json, None without one (evaluation: the published count)
    dataset: object = None  # str from layout.json, None without one
    protocol: object = None  # str from layout.json, None without one

    def __len__(self):
        return len(self.names)


def split_paths(folder, part):
    """The three file paths of one part of a processed folder: data, num_frame, label."""
    return (
        os.path.join(folder, f"{part}_data_joint.npy"),
        os.path.join(folder, f"{part}_num_frame.npy"),
        os.path.join(folder, f"{part}_label.pkl"),
    )


def data_arrays(folder):
    """The names of the parts' data arrays present in `folder` (train, val): what marks a processed folder,
    the published tools' included (they write no layout.json)."""
    paths = (split_paths(folder, part)[0] for part in ("train", "val"))
    return [os.path.basename(path) for path in paths if os.path.isfile(path)]


def non_finite_samples(data, rows=SCAN_ROWS, limit=MAX_COORDINATE):
    """Indices of the samples of ``data`` (N x ...) that hold a NaN, an infinity or a value beyond
    +-``limit``, in one pass reading ``rows`` samples at a time: a sample is sound when its max and min
    lie within +-``limit`` (a NaN makes both NaN, which compares False)."""
    bad = []
    for start in range(0, len(data), rows):
        block = np.asarray(data[start : start + rows])
        block = block.reshape(len(block), -1)  # rows x (C x T x V x M)
        sound = (block.max(axis=1) <= limit) & (block.min(axis=1) >= -limit)  # rows; NaN compares False
        bad.extend(start + np.flatnonzero(~sound))
    return np.asarray(bad, dtype=np.int64)


def _sample_error(folder, part, names, bad, found, expected):
    """The ProcessedDataError for the samples at indices ``bad``: the first, what it has, what was expected."""
    i = int(bad[0])
    return ProcessedDataError(
        f"processed folder {folder}: {part} sample {i} ({names[i]}) {found}; expected "
        f"{expected} ({len(bad)} such sample{'s' if len(bad) > 1 else ''})"
    )


def load_split(folder, part, mmap=True, num_class=None):
    """The ``part`` ('train' or 'val') of a processed folder, checked; data memory-mapped when ``mmap``.

    The data must have the shape of the layout in the folder's ``layout.json`` (``ntu25`` without one).
    Labels must lie in [0, num_class) for ``num_class`` given or else recorded in ``layout.json``
    (without either, negative labels only are refused); a ``num_class`` given that differs from the
    recorded one is an error.
    """
    folder = str(folder)
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    if os.path.exists(os.path.join(folder, CONVERTING)):
        raise ProcessedDataError(
            f"processed folder {folder}: a conversion was stopped while replacing its files ({CONVERTING} is "
            "there), so they may mix two conversions; convert again"
        )
    if num_class is not None and num_class < 1:
        raise ValueError(f"num_class must be a positive integer, got {num_class!r}")
    try:
        layout, recorded_class, dataset, protocol = read_folder_record(folder)
    except LayoutError as exc:
        raise ProcessedDataError(f"processed folder {folder}: {exc}") from None
    if num_class is not None and recorded_class is not None and num_class != recorded_class:
        raise ProcessedDataError(
            f"processed folder {folder}: {num_class} classes were asked for, but its "
            f"layout.json records {recorded_class} (dataset {dataset})"
        )
    if num_class is None:
        num_class = recorded_class
    data_path, frame_path, label_path = split_paths(folder, part)
    odd = [p for p in (data_path, frame_path, label_path) if os.path.exists(p) and not os.path.isfile(p)]
    if odd:  # a folder, or a link to a device: there, but no file to read
        raise ProcessedDataError(f"processed folder {folder}: {os.path.basename(odd[0])} is not a file")
    missing = [os.path.basename(p) for p in (data_path, frame_path, label_path) if not os.path.isfile(p)]
    if missing:
        stopped = sorted(name for name in os.listdir(folder) if is_temporary(name)) if os.path.isdir(folder) else []
        raise ProcessedDataError(
            f"processed folder {folder}: missing {', '.join(missing)} (make it with "
            f"python -m data_gen.ntu_gendata, pku_gendata, ucla_gendata, msr_gendata or pyskl_gendata)"
            + (
                f"; it holds {len(stopped)} temporary file(s) of a write that was stopped ({stopped[0]}, …): a "
                "conversion into it was interrupted, so convert again (that removes them)"
                if stopped
                else ""
            )
        )
    data = _load_array(folder, data_path, mmap_mode="r" if mmap else None)
    num_frame = _load_array(folder, frame_path)
    c, v, m = layout.channels, layout.num_joints, layout.bodies
    if data.ndim != 5 or data.shape[1] != c or data.shape[3:] != (v, m):
        raise ProcessedDataError(
            f"processed folder {folder}: {os.path.basename(data_path)} has shape "
            f"{data.shape}; expected N x {c} x {MAX_FRAME} x {v} x {m} (layout {layout.name})"
        )
    if data.shape[2] != MAX_FRAME:
        raise ProcessedDataError(
            f"processed folder {folder}: {os.path.basename(data_path)} has {data.shape[2]} "
            f"frames per sample (shape {data.shape}); expected {MAX_FRAME}, every sample "
            f"padded or cut to {MAX_FRAME} frames"
        )
    if data.dtype != np.float32:
        raise ProcessedDataError(
            f"processed folder {folder}: {os.path.basename(data_path)} is {data.dtype}; expected float32"
        )
    if num_frame.ndim != 1 or num_frame.dtype.kind not in "iu":
        raise ProcessedDataError(
            f"processed folder {folder}: {os.path.basename(frame_path)} is "
            f"{num_frame.dtype} of shape {num_frame.shape}; expected integers of shape (N,)"
        )
    try:
        names, labels = load_label_pkl(label_path)
    except ProcessedDataError as exc:
        raise ProcessedDataError(f"processed folder {folder}: {exc}") from None
    if not (len(data) == len(num_frame) == len(names)):
        raise ProcessedDataError(
            f"processed folder {folder}: {part} files disagree on the sample count: "
            f"{len(data)} arrays, {len(num_frame)} frame counts, {len(names)} labels"
        )
    if len(names) == 0:
        raise ProcessedDataError(f"processed folder {folder}: the {part} part holds no samples")
    num_frame = num_frame.astype(np.int64)  # N
    labels = np.asarray(labels, dtype=np.int64)  # N
    bad = np.flatnonzero(num_frame < 1)
    if bad.size:
        raise _sample_error(folder, part, names, bad, f"has {num_frame[bad[0]]} frames", "at least 1")
    out_of_range = labels < 0  # N
    if num_class is not None:
        out_of_range |= labels >= num_class
    bad = np.flatnonzero(out_of_range)
    if bad.size:
        expected = "a label >= 0" if num_class is None else f"a label in 0..{num_class - 1} ({num_class} classes)"
        raise _sample_error(folder, part, names, bad, f"has label {labels[bad[0]]}", expected)
    bad = non_finite_samples(data)
    if bad.size:
        first = np.asarray(data[bad[0]])  # C x T x V x M
        values = first[~(np.abs(first) <= MAX_COORDINATE)]  # its NaN, infinite or absurd values
        found = f"holds {values[0]:g}" if np.isfinite(values).all() else "holds NaN or infinite values"
        raise _sample_error(folder, part, names, bad, found, f"finite values within +-{MAX_COORDINATE:g}")
    return Split(
        folder=folder,
        part=part,
        data=data,
        num_frame=num_frame,
        names=names,
        labels=labels,
        layout=layout,
        num_class=recorded_class,
        dataset=dataset,
        protocol=protocol,
    )


def _load_array(folder, path, mmap_mode=None):
    """The .npy file `path` of a processed folder, or ProcessedDataError naming it. NumPy's own advice
    for a file that is not a plain array (allow_pickle) is wrong here, so it is replaced."""
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        reason = str(exc)
        if "allow_pickle" in reason:
            reason = "not a plain NumPy array (a Git LFS pointer, a web page, a pickled object?)"
        raise ProcessedDataError(
            f"processed folder {folder}: {os.path.basename(path)} is unreadable ({reason})"
        ) from None


def load_splits(folder, num_class=None, mmap=True):
    """(train, val) parts of a processed folder, each checked by ``load_split`` (labels against
    ``num_class``, or else the class count of the folder's ``layout.json``)."""
    return tuple(load_split(folder, part, mmap=mmap, num_class=num_class) for part in PARTS)


# What an importer counted that, in most of a folder's recordings, means a wrong joint order or a mirrored
# frame (data_gen.writer warns of it at the import; docs/small-data.md, "Your own skeleton: the layout").
IMPORT_SIGNS = {
    "upside_down": ("stood upside down once normalised", "is the data's joint order the layout's?"),
    "x_axis_turned_over_90": (
        "had their x-axis pair turned over 90 degrees",
        "a mirror image, y pointing down, or people facing away?",
    ),
}


def import_warnings(folder):
    """The import's warnings that still hold for the processed folder `folder`, from the summary its
    importer wrote beside it (settings.json): a sign of IMPORT_SIGNS counted in more than half of its
    recordings. [] for folders without such a summary (the NTU and PKU-MMD converters write theirs a
    folder above, and their layouts are the published ones)."""
    record = folder_settings(folder) or {}
    counts = record.get("counts")
    if not isinstance(counts, dict):
        return []
    total = sum(_count(counts.get(part)) for part in PARTS)
    return [
        f"{folder}: {record[key]} of its {total} recordings {what} when it was imported ({key} in its "
        f"settings.json): {question} (docs/small-data.md, 'Your own skeleton: the layout')"
        for key, (what, question) in IMPORT_SIGNS.items()
        if 2 * _count(record.get(key)) > total > 0
    ]


def _count(value):
    """A count of an importer's summary as written (an int), else 0 (a hand-edited or damaged file)."""
    return value if type(value) is int else 0


def fingerprint(folder, part="train", blocks=64, block_bytes=4096):
    """A cheap identity of a part's files: SHA-256 of its names, labels and frame counts, the data file's
    size and `blocks` evenly spaced blocks of its bytes. Re-converted data with other names, labels or
    lengths, or with a change that reaches most samples (another normalisation, filling), gets another;
    a change confined to a few recordings' coordinates may fall between the blocks and go unseen (the
    whole file would take a pass over gigabytes at every run's start)."""
    digest = hashlib.sha256()
    data_path, frame_path, label_path = split_paths(folder, part)
    for path in (label_path, frame_path):
        with open(path, "rb") as f:
            digest.update(f.read())
    return file_fingerprint(data_path, blocks, block_bytes, digest)
