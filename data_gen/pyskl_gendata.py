"""Import skeletons from a pyskl / MMAction2 annotation pickle, in any skeleton layout.

    python -m data_gen.pyskl_gendata --annotations FILE.pkl --layout NAME|FILE.json --train-split NAME
        --val-split NAME --out-folder DIR [--num-class N] [--dataset NAME] [--protocol P]
        [--missing-joints fill|zero] [--min-score S] [--keep-zeros] [--track] [--workers N] [--skip-bad]

FILE.pkl holds ``{"split": {name: [frame_dir, ...]}, "annotations": [{"frame_dir": str, "label": int,
"keypoint": M x T x V x C array, ...}]}``; ``keypoint_score`` (M x T x V) is read with --min-score (and
to suggest it), ``img_shape`` (height, width) with --scale image; other keys (``total_frames``, ...) are
ignored.  It is read by a restricted unpickler
that builds plain containers, strings, numbers and numeric or text numpy arrays only: a pickle that asks for
anything else is refused before any of it runs.  The layout (``ntu25``, ``kinect20``, ``coco17`` or the path
of a JSON layout file, see ``dataset.layouts``) fixes V, C (3, or 2 for a 2-D layout) and the bodies kept
per sample.

A 2-D layout's keypoints are divided by the larger side of each recording's ``img_shape`` (``--scale
image``, the default when the recordings have one), so that recordings of different resolutions share
one scale; ``--scale none`` keeps them as stored.  Keypoints normalised to the image already (all within
+-2 in images of 32 px or more) are refused before any work, since they would be divided once more;
so is a layout whose joints and channels no recording's keypoints have (a wrong --layout, which
--skip-bad would answer by skipping every recording).

Pose-estimator output (``--missing-joints fill``, the default; ``data_gen.missing``): a joint that is
NaN, 0 in every channel (unless --keep-zeros) or scored below --min-score is missing; frames with
nobody are dropped, the bodies ranked by energy over their present joints times the share of frames
they appear in, and each body's missing joints filled from its other frames.  The counts (the share of
missing joints, frames with nobody, recordings whose centre joint is never found, recordings in which
two people change places between frames) are printed and saved in settings.json.  Per-frame pose
estimators list each frame's people in an order of their own; ``--track`` first reorders them so that
each place follows one person (``data_gen.missing.track_people``), and a warning suggests it when most
recordings of several people have two of them change places (``change_places``).  For 3-D data it warns
when most recordings' z pair points down the data's y axis (OpenCV's camera frame, which 3-D lifters
write: negate x and y; or, where the bodies stand upright all the same, a joint order other than the
layout's) or a joint other than the centre lies at the origin throughout (root-relative
data, whose root must be the centre): ``frame_signs``.  ``--missing-joints zero`` is the
published converters' treatment: zeros are coordinates, the most energetic bodies kept as NTU's body
selection keeps them, NaN is bad input.

DIR becomes one processed folder (``DIR/{train,val}_{data_joint.npy,num_frame.npy,label.pkl}``,
``DIR/layout.json`` with the layout, the class count and the dataset name, ``DIR/settings.json``,
``DIR/skipped.txt``): the train part holds the samples of --train-split in its order, the val part
those of --val-split; both named by their ``frame_dir``, labels as stored (0-based), samples longer than
300 frames cut to 300 with their frame count kept (with filling, the frames kept), the published
normalisation run through the layout's joints.  The class count is --num-class (every label must lie
below it); without it, the largest label + 1, which must not exceed the number of samples in the two
splits (a larger label is an error naming it: pass --num-class), and the classes in 0..N-1 that no
sample has are counted in a warning.  The dataset recorded is --dataset, else the pickle's stem, which
may not be a published dataset's name (it would give the folder that dataset's settings).

A split that is missing, lists a frame_dir twice, or lists one that has no annotation or that the other
split lists too, an annotation without a frame_dir, a frame_dir annotated twice, and a label that is not
an integer in 0..N-1 are errors.  A sample is bad (an error naming it; skipped with ``--skip-bad``)
when its keypoint is missing, not a numeric M x T x V x C array of the layout's V and C, has no frame,
or holds a value that lies beyond ``MAX_COORDINATE`` or is not finite (NaN, with filling, is missing).
A sample with nobody in any frame is skipped with a warning and listed in ``skipped.txt`` in any case.
"""

import math
import numbers
import os
import pickle
import sys
import warnings

import numpy as np

from data_gen.missing import fill_missing, fits, missing_summary, numeric_array, present_joints, track_people
from data_gen.ntu_reader import MAX_COORDINATE, SkeletonFileError, first_bad_coordinate, select_bodies
from data_gen.writer import Sample, Task, conversion_parser, parse_conversion, run_conversion
from dataset.catalog import DATASETS, PROTOCOL_FOLDERS
from dataset.layouts import LAYOUTS, LayoutError, dataset_name_problem, get_layout
from dataset.processed import MAX_FRAME, ForbiddenPickleError, restricted_load

BENCHMARK = "split"
LOW_SCORE, LOW_SCORE_PERCENT = 0.3, 5.0  # a note suggests --min-score when more joints found score below


def _people(annotation):
    """The people of an annotation: bodies of its M x T x V x C keypoint array with a joint somewhere not at
    0 or NaN (0 when it is not such an array; the conversion's checks name it)."""
    keypoint = annotation.get("keypoint")
    if not numeric_array(keypoint, 4):
        return 0
    return int(np.any(np.nan_to_num(keypoint.astype(np.float64)) != 0, axis=(1, 2, 3)).sum())


def image_sides(path, by_name, names):
    """{name: the larger side of its ``img_shape`` (height, width[, channels])} of the recordings `names`,
    or {} when none has one; AnnotationError naming the first recording whose img_shape is not two
    positive numbers (then three, a channel count), or that lacks one when others have it (their
    coordinates would differ in scale by a factor of hundreds)."""
    sides, lacking = {}, []
    for name in names:
        shape = by_name[name].get("img_shape")
        if shape is None:
            lacking.append(name)
            continue
        try:  # a ragged shape fails np.ndim, an integer beyond float64 math.isfinite
            ok = np.ndim(shape) == 1 and len(shape) in (2, 3)
            size = list(shape)[:2] if ok else []
            ok = ok and all(
                isinstance(s, numbers.Real) and not isinstance(s, bool) and math.isfinite(s) and s > 0 for s in size
            )
        except (ValueError, OverflowError):
            ok = False
        if not ok:
            raise AnnotationError(
                f'{path}: sample {name!r}: expected "img_shape" (height, width) of two positive numbers, found '
                f"{shape!r}; pass --scale none to keep the coordinates as stored"
            )
        sides[name] = float(max(size))
    if sides and lacking:
        raise AnnotationError(
            f'{path}: sample {lacking[0]!r} has no usable "img_shape" while {len(sides)} others have one; '
            f"--scale image divides each recording by its image's larger side: give every recording an "
            f"img_shape, or pass --scale none to keep pixels"
        )
    return sides


def _scores_hint(shape, layout):
    """Where the scores go, when a 2-D layout's keypoints of `shape` hold them as a third channel; else ''."""
    scored = layout.channels == 2 and tuple(shape[2:]) == (layout.num_joints, 3)
    return 'a third channel of scores goes in "keypoint_score" (M x T x V)' if scored else ""


def check_layout_fits(path, by_name, names, layout):
    """AnnotationError when no recording's keypoints have the layout's joints and channels: then the
    layout (or how the keypoints were packed) is wrong, not a sample, and --skip-bad would skip them all."""
    want = (layout.num_joints, layout.channels)
    found = [(n, by_name[n].get("keypoint").shape) for n in names if numeric_array(by_name[n].get("keypoint"), 4)]
    if not found or any(shape[2:] == want for _, shape in found):
        return
    name, shape = found[0]
    reason = _scores_hint(shape, layout) or (
        f"the layout is not your data's skeleton: name the right one with --layout ({', '.join(LAYOUTS)}) or "
        "write one in a JSON file (docs/small-data.md)"
    )
    raise AnnotationError(
        f"{path}: no recording's keypoints have the {want[0]} joints x {want[1]} channels of layout {layout.name} "
        f"(the first, sample {name!r}, is an array of shape {shape}); {reason}"
    )


NORMALISED = 2.0  # keypoints all within this (of 0) in images this many times larger are normalised already
SMALLEST_IMAGE = 32


def check_pixels(path, by_name, sides):
    """AnnotationError when the 2-D keypoints of every recording with an img_shape lie within +-NORMALISED
    (not all at 0) while their images are SMALLEST_IMAGE px or more: keypoints normalised to the image
    already, which --scale image would divide by its side once more."""
    largest = 0.0
    for name in sides:
        keypoint = by_name[name].get("keypoint")
        if numeric_array(keypoint, 4) and keypoint.size:
            finite = np.abs(keypoint[np.isfinite(keypoint)])
            largest = max(largest, float(finite.max()) if finite.size else 0.0)
            if largest > NORMALISED:
                return
    if 0 < largest and min(sides.values()) >= SMALLEST_IMAGE:
        raise AnnotationError(
            f"{path}: every keypoint lies within +-{largest:.3g} while the images (img_shape) are "
            f"{min(sides.values()):g} px or more: the keypoints look normalised to the image already, and "
            "--scale image would divide them by the image's side once more; store pixels, or pass --scale none "
            "to keep them as stored"
        )


class AnnotationError(ValueError):
    """The annotation pickle cannot be read or its splits, names or labels are inconsistent."""


def load_annotations(path):
    """(split dict, annotations list) of a pyskl pickle, read by the restricted unpickler."""
    try:
        with open(path, "rb") as f:
            content = restricted_load(f)
    except OSError as exc:
        raise AnnotationError(f"--annotations {path}: {exc.strerror}") from None
    except ForbiddenPickleError as exc:
        ragged = "; numpy makes one of a list of arrays of different shapes (people or frames of a keypoint): pad "
        ragged += "them to one M x T x V x C array of numbers, and write a split as a list of names"
        hint = ragged if "dtype object" in str(exc) else ""
        raise AnnotationError(f"{path}: refused: {exc}; nothing in it was run{hint}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise AnnotationError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from None
    if (
        not isinstance(content, dict)
        or not isinstance(content.get("split"), dict)
        or not isinstance(content.get("annotations"), list)
    ):
        found = f"keys {sorted(map(str, content))}" if isinstance(content, dict) else f"a {type(content).__name__}"
        raise AnnotationError(
            f'{path}: expected a dict with "split" (a dict of lists of frame_dir) and '
            f'"annotations" (a list of dicts), found {found}'
        )
    return content["split"], content["annotations"]


def index_annotations(path, annotations):
    """{frame_dir: annotation}; an annotation without a string frame_dir, or a frame_dir twice, is an error."""
    by_name = {}
    for i, item in enumerate(annotations):
        name = item.get("frame_dir") if isinstance(item, dict) else None
        if not isinstance(name, str):
            found = f"frame_dir {name!r}" if isinstance(item, dict) else f"a {type(item).__name__}"
            raise AnnotationError(f'{path}: annotation {i}: expected a dict with a string "frame_dir", found {found}')
        if name in by_name:
            raise AnnotationError(f"{path}: frame_dir {name!r} is annotated twice (annotation {i} and an earlier one)")
        by_name[name] = item
    return by_name


def split_members(path, split, train_split, val_split, by_name):
    """{'train': [frame_dir, ...], 'val': [...]} of the two named splits, checked against each other and
    against the annotations."""
    if train_split == val_split:
        raise AnnotationError(f"{path}: --train-split and --val-split are both {train_split!r}")
    parts = {}
    for part, name in (("train", train_split), ("val", val_split)):
        if name not in split:
            raise AnnotationError(f"{path}: no split {name!r}; its splits: {', '.join(map(repr, split))}")
        members = split[name]
        if isinstance(members, np.ndarray) and members.ndim == 1 and members.dtype.kind == "U":
            members = members.tolist()  # a numpy array of names, as np.array(names) writes it
        if not isinstance(members, (list, tuple)) or not all(isinstance(m, str) for m in members):
            raise AnnotationError(f"{path}: split {name!r}: expected a list of frame_dir strings")
        seen = set()
        for member in members:
            if member in seen:
                raise AnnotationError(f"{path}: split {name!r} lists {member!r} twice")
            seen.add(member)
        missing = [m for m in members if m not in by_name]
        if missing:
            raise AnnotationError(
                f"{path}: split {name!r} lists {len(missing)} frame_dir without an annotation "
                f"(the first: {missing[0]!r})"
            )
        parts[part] = list(members)
    if not parts["train"] and not parts["val"]:
        raise AnnotationError(f"{path}: the splits {train_split!r} and {val_split!r} list no sample")
    both = [m for m in parts["val"] if m in set(parts["train"])]
    if both:
        raise AnnotationError(
            f"{path}: {len(both)} frame_dir are in both {train_split!r} and {val_split!r} (the first: {both[0]!r})"
        )
    return parts


def sample_labels(path, names, by_name, num_class=None):
    """{frame_dir: label} of the named samples; a label that is not an integer >= 0 (and below
    ``num_class`` when given) is an error naming the sample."""
    labels = {}
    for name in names:
        label = by_name[name].get("label")
        if (
            isinstance(label, (bool, np.bool_))
            or not isinstance(label, numbers.Integral)
            or label < 0
            or (num_class is not None and label >= num_class)
        ):
            expected = "an integer >= 0" if num_class is None else f"an integer in 0..{num_class - 1}"
            raise AnnotationError(f'{path}: sample {name!r}: expected "label" {expected}, found {label!r}')
        labels[name] = int(label)
    return labels


def derived_class_count(path, labels):
    """The class count without --num-class: the largest label + 1, at most the number of samples (an
    error naming the largest label otherwise); the classes no sample has are counted in a warning."""
    largest = max(labels, key=labels.get)
    num_class = labels[largest] + 1
    if num_class > len(labels):
        raise AnnotationError(
            f"{path}: sample {largest!r} has label {labels[largest]}, which makes {num_class} "
            f"classes for {len(labels)} samples; expected at most one class per sample without "
            f"--num-class: pass --num-class (the class count) if the labels are right"
        )
    empty = num_class - len(set(labels.values()))
    if empty:
        if empty == 1 and 0 not in labels.values():
            hint = (
                "; label 0 has none: labels here count from 0, are yours from 1? (subtract 1 before writing the pickle)"
            )
        else:  # ids with gaps, or classes the evaluation part was meant to have
            hint = (
                "; labels here count the classes from 0 without gaps: ids such as 3, 7, 22 become "
                "np.unique(ids, return_inverse=True)[1] before the pickle is written"
            )
        print(f"warning: {empty} of the {num_class} classes (labels 0..{num_class - 1}) have no sample{hint}")
    return num_class


def keypoint_problem(source, name, keypoint, layout):
    """What is wrong with the shape of one annotation's ``keypoint`` for `layout` (not a numeric
    M x T x V x C array of its V and C, or no frame), naming the sample; None when nothing is."""
    where = f'{source}: sample {name!r}: "keypoint"'
    v, c = layout.num_joints, layout.channels
    if not numeric_array(keypoint, 4) or keypoint.shape[2:] != (v, c):
        if isinstance(keypoint, np.ndarray):
            found = f"{keypoint.dtype} array of shape {keypoint.shape}"
        else:
            found = "no keypoint" if keypoint is None else f"a {type(keypoint).__name__}"
        hint = _scores_hint(keypoint.shape, layout) if isinstance(keypoint, np.ndarray) else ""
        hint = f"; {hint}" if hint else ""
        return f"{where}: expected a numeric M x T x {v} x {c} array (layout {layout.name}), found {found}{hint}"
    if keypoint.shape[1] == 0:
        return f"{where}: expected at least one frame, found shape {keypoint.shape}"
    return None


def read_keypoint(
    source,
    name,
    keypoint,
    layout,
    missing="fill",
    scores=None,
    min_score=None,
    zeros_missing=True,
    scale=1.0,
    track=False,
):
    """[(C x min(T, 300) x V x M float32, T)] of one annotation's ``keypoint`` (M' x T x V x C), divided
    by ``scale`` (``--scale image``: the larger side of its image), each frame's people first reordered to
    follow one person per place with ``track`` (``data_gen.missing.track_people``; filling only).

    With ``missing='fill'`` a joint that is NaN, or 0 in every channel (unless not ``zeros_missing``),
    or (with ``scores`` M' x T x V and ``min_score``) scored below it, is missing: the frames with nobody
    are dropped (T counts those kept), the layout's M bodies ranked and their missing joints filled
    (``data_gen.missing``). With ``missing='zero'`` the layout's M bodies of highest energy are kept as
    the published converters keep them, zeros are coordinates and NaN is bad input."""
    where = f'{source}: sample {name!r}: "keypoint"'
    v, c = layout.num_joints, layout.channels
    problem = keypoint_problem(source, name, keypoint, layout)
    if problem:
        raise SkeletonFileError(problem)
    bodies = keypoint.astype(np.float64) / scale  # M' x T x V x C; a joint at 0 stays at 0
    if missing == "fill":
        scores = checked_scores(source, name, scores, keypoint.shape[:3]) if min_score is not None else None
        present = present_joints(bodies, scores, min_score, zeros_missing)  # M' x T x V
        bodies = np.where(np.isnan(bodies), 0.0, bodies)  # NaN: a missing joint; inf is still bad input
        if track:
            bodies, present = track_people(bodies, present)
    bad = first_bad_coordinate(bodies.reshape(-1, v * c))
    if bad is not None:
        millimetres = c == 3 and np.isfinite(bad[1])  # most often the unit: millimetres beyond 10 m
        hint = "; 3-D coordinates go in metres (millimetres: divide by 1000)" if millimetres else ""
        raise SkeletonFileError(
            f"{where}: expected values that are finite and within +-{MAX_COORDINATE:g}, found {bad[1]:g}{hint}"
        )
    if missing != "fill":
        data = select_bodies(bodies, layout.bodies)[:, :MAX_FRAME]  # C x T' x V x M
        return [(np.ascontiguousarray(data, dtype=np.float32), keypoint.shape[1])]
    filled, frames = fill_missing(bodies, present, layout.parents, layout.bodies)  # M x T' x V x C
    if frames == 0:  # nobody in any frame: the converter skips it, naming it
        return [(np.zeros((c, 0, v, layout.bodies), np.float32), 0)]
    data = filled[:, :MAX_FRAME].transpose(3, 1, 2, 0)  # C x T' x V x M
    return [(np.ascontiguousarray(data, dtype=np.float32), frames)]


def frame_signs(names, by_name, layout, settings):
    """For a 3-D layout, warn of two signs, each in most recordings, of data in a frame the normalisation
    does not expect, and record the first's count in `settings`: the layout's z pair (up the body)
    pointing down the data's y axis (a camera frame with y down, OpenCV's: negate x and y, a half turn
    about the camera's axis; the normalisation expects Kinect's, x to the sensor's left, y up, z away;
    but where the joints below the pair, `Layout.trunk_sides`, lie lower than the rest, the body stands
    upright and the sign is of a joint order other than the layout's, as a head-first Kinect v1 order),
    and one joint other than the centre at the origin in every frame, amid the others (root-relative
    data: the published normalisation moves any joint at exactly 0 onto the centre, so that joint must
    be the centre). NaN joints (missing) count as neither."""
    if layout.channels != 3 or not layout.z_axis:
        return
    keypoints = [
        k for k in (by_name[n].get("keypoint") for n in names) if fits(k, layout) and k.shape[0] and k.shape[1]
    ]
    a, b = layout.z_axis
    sides = layout.trunk_sides()  # to tell a y-down frame (the whole body upside down) from a wrong order
    down = upright = measured = 0  # measured: recordings where the z pair has a direction (not all zeros)
    at_origin = np.zeros(layout.num_joints, dtype=np.int64)  # recordings whose root is each joint
    with np.errstate(invalid="ignore", over="ignore"), warnings.catch_warnings():  # inf: the reader names it
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        for k in keypoints:
            k = k.astype(np.float64)
            v = (k[:, :, b] - k[:, :, a]).reshape(-1, 3)  # (M x T) x 3; either joint may be a root at 0
            v = v[np.isfinite(v).all(axis=1) & (np.linalg.norm(v, axis=1) > 0)]
            pair_down = bool(len(v)) and np.median(v[:, 1] / np.linalg.norm(v, axis=1)) < -0.5
            measured += bool(len(v))
            down += pair_down
            if pair_down and sides is not None:  # ... while the joints below the pair lie lower: upright
                y = np.where((k == 0).all(axis=3), np.nan, k[..., 1])  # M x T x V; a joint at 0: not found
                upright += np.nanmean(y[..., list(sides[0])]) < np.nanmean(y[..., list(sides[1])])
            zero = (k[0] == 0).all(axis=(0, 2))  # V: the first body's joint at 0 throughout (NaN is not 0)
            others = k[0][:, ~zero]  # T x V' x C
            # a root: the one joint at 0, amid the others (a joint never found lies at a camera's origin, away)
            amid = (np.nanmin(others, axis=1) <= 0) & (np.nanmax(others, axis=1) >= 0) if others.size else None
            if zero.sum() == 1 and amid is not None and amid.all(axis=1).mean() > 0.5:
                at_origin += zero
    settings["z_axis_along_minus_y"] = int(down)
    if 2 * down > measured:
        pointing = (
            f"warning: in {down} of the {measured} recordings the layout's z pair ({layout.joints[a]} -> "
            f"{layout.joints[b]}), which points up the body, points down the data's y axis"
        )
        if 2 * upright > down:  # the bodies stand upright all the same: the order, not the frame
            print(
                f"{pointing}, but the joints on its {layout.joints[a]} side lie below the rest of the "
                f"{layout.name} skeleton in {upright} of them: those bodies stand upright, so it is the data's "
                f"joint order that is not {layout.name}'s, not the camera's frame. Check the order against the "
                "layout's joints (docs/small-data.md, 'The joint order must be the layout's') rather than "
                "negating any axis"
            )
        else:
            print(
                f"{pointing}: a camera frame with y down (OpenCV's, which 3-D pose lifters write). The "
                "normalisation expects Kinect's (x to the sensor's left, y up, z away): negate x and y before "
                "the import (a half turn about the camera's axis; negating x alone would mirror the people)"
            )
    lonely = np.flatnonzero(2 * at_origin > len(keypoints))
    if len(lonely) == 1 and lonely[0] != layout.centre:
        root = layout.joints[lonely[0]]
        print(
            f"warning: {root} lies at the origin in every frame of {at_origin[lonely[0]]} of the {len(keypoints)} "
            f"recordings, as in root-relative data; the published normalisation moves a joint at exactly 0 onto "
            f"the centre ({layout.joints[layout.centre]}), so make {root} the layout's centre (and pass --keep-zeros)"
        )


def checked_scores(source, name, scores, shape):
    """The annotation's ``keypoint_score`` as an M x T x V array matching its keypoints (an error
    naming the sample otherwise)."""
    if not numeric_array(scores, 3) or scores.shape != shape:
        if isinstance(scores, np.ndarray):
            found = f"{scores.dtype} of shape {scores.shape}"
        else:
            found = "none" if scores is None else type(scores).__name__
        raise SkeletonFileError(
            f'{source}: sample {name!r}: --min-score needs a numeric "keypoint_score" of shape {shape}, found {found}'
        )
    return scores


def build_tasks(
    path,
    parts,
    by_name,
    labels,
    layout,
    benchmark=BENCHMARK,
    missing="fill",
    min_score=None,
    zeros=True,
    scales=None,
    track=False,
):
    """One Task per sample: the train part's in its split's order, then the val part's; `scales` (name:
    divisor) scales their keypoints; `track` reorders each frame's people (`read_keypoint`)."""

    def scores(name):  # passed to the workers only when used
        return by_name[name].get("keypoint_score") if min_score is not None else None

    tasks = []
    for part in ("train", "val"):
        for name in parts[part]:
            source = f"{path}: {name}"
            tasks.append(
                Task(
                    source=source,
                    reader=read_keypoint,
                    args=(
                        path,
                        name,
                        by_name[name].get("keypoint"),
                        layout,
                        missing,
                        scores(name),
                        min_score,
                        zeros,
                        (scales or {}).get(name, 1.0),
                        track,
                    ),
                    samples=[Sample(name, labels[name], {benchmark: part})],
                )
            )
    return tasks


def main(argv=None):
    parser = conversion_parser(
        "pyskl / MMAction2 annotation pickle -> a processed folder",
        "--annotations",
        "the annotation pickle (FILE.pkl)",
        "the processed folder to write",
    )
    parser.add_argument(
        "--layout",
        required=True,
        type=os.path.expanduser,
        help=f"a layout name ({', '.join(LAYOUTS)}) or a JSON layout file",
    )
    for part, role in (("train", "train the model"), ("val", "are evaluated")):
        parser.add_argument(f"--{part}-split", required=True, help=f"the split whose samples {role}")
    parser.add_argument(
        "--num-class", type=int, help="class count (default: the largest label + 1, at most the number of samples)"
    )
    parser.add_argument("--dataset", help="the dataset name recorded in layout.json (default: the pickle's stem)")
    parser.add_argument(
        "--protocol",
        choices=sorted(PROTOCOL_FOLDERS),
        help="the benchmark the two splits follow, recorded in layout.json: runs on the folder are labelled "
        "with it (default: none recorded; runs say cross_subject)",
    )
    parser.add_argument(
        "--missing-joints",
        choices=("fill", "zero"),
        default="fill",
        help="fill: a joint at 0 or NaN is missing, filled from its own frames (data_gen/missing.py; the "
        "default, for pose-estimator output); zero: zeros are coordinates, as the published converters take them",
    )
    parser.add_argument(
        "--min-score",
        type=float,
        help='with --missing-joints fill, a joint whose "keypoint_score" is below this is missing too (default: '
        "scores are not read)",
    )
    parser.add_argument(
        "--keep-zeros",
        action="store_true",
        help="with --missing-joints fill, a joint at 0 is a coordinate, not missing (data whose origin is a "
        "joint, as root-relative 3-D lifts); NaN and --min-score still mark joints missing",
    )
    parser.add_argument(
        "--scale",
        choices=("image", "none"),
        default=None,
        help="image: divide each recording's 2-D keypoints by the larger side of its img_shape, so that "
        "recordings of different resolutions share one scale; none: keep the coordinates as stored "
        "(default: image for a 2-D layout when the recordings have an img_shape, else none)",
    )
    parser.add_argument(
        "--track",
        action="store_true",
        help="with --missing-joints fill, reorder each frame's people so that each place follows one person, "
        "nearest to where it was last seen (for per-frame pose estimators, such as OpenPose, that list each "
        "frame's people in an order of their own)",
    )
    args = parse_conversion(parser, argv)
    if args.min_score is not None and not 0 <= args.min_score <= 1:
        parser.error(f"--min-score must be a score in [0, 1], found {args.min_score}")
    for flag, given in (
        ("--min-score", args.min_score is not None),
        ("--keep-zeros", args.keep_zeros),
        ("--track", args.track),
    ):
        if given and args.missing_joints != "fill":
            parser.error(f"{flag} goes with --missing-joints fill (zero keeps the published converters' treatment)")
    benchmark = PROTOCOL_FOLDERS[args.protocol] if args.protocol else BENCHMARK
    try:
        layout = get_layout(args.layout)
    except LayoutError as exc:
        parser.error(f"--layout: {exc}")
    if args.scale == "image" and layout.channels != 2:
        parser.error(f"--scale image divides 2-D image coordinates; layout {layout.name} is 3-D")
    if args.num_class is not None and not 1 <= args.num_class < 2**63:  # labels are stored as int64
        parser.error(f"--num-class must be at least 1 and below 2**63, got {args.num_class}")
    path = args.annotations
    given = args.dataset is not None
    dataset = args.dataset if given else os.path.splitext(os.path.basename(path))[0]
    if dataset_name_problem(dataset):
        parser.error(
            f"{'--dataset' if given else 'the pickle name'} {dataset!r}: {dataset_name_problem(dataset)}"
            f"{'' if given else '; pass --dataset NAME'}"
        )
    if not given and dataset in DATASETS:
        parser.error(
            f"the pickle's name would record the dataset as {dataset!r}, whose published settings every run on the "
            f"folder would then take: pass --dataset (--dataset {dataset} if it is that dataset)"
        )
    try:
        split, annotations = load_annotations(path)
        by_name = index_annotations(path, annotations)
        parts = split_members(path, split, args.train_split, args.val_split, by_name)
        names = parts["train"] + parts["val"]
        labels = sample_labels(path, names, by_name, args.num_class)
        num_class = args.num_class or derived_class_count(path, labels)
        check_layout_fits(path, by_name, names, layout)
        if not args.skip_bad:  # a bad keypoint's shape stops the import before the work, not at its sample
            bad = (keypoint_problem(path, n, by_name[n].get("keypoint"), layout) for n in names)
            first = next((problem for problem in bad if problem), None)
            if first:
                raise AnnotationError(f"{first}\n(rerun with --skip-bad to skip bad files and samples)")
        sides = image_sides(path, by_name, names) if layout.channels == 2 and args.scale != "none" else {}
        check_pixels(path, by_name, sides)
    except AnnotationError as exc:
        raise SystemExit(f"error: {exc}") from None
    except KeyboardInterrupt:
        print(f"interrupted while reading {path}: nothing was written", file=sys.stderr)
        raise SystemExit(130) from None
    if dataset in DATASETS and (layout.name, num_class) != ("ntu25", DATASETS[dataset].num_class):
        print(
            f"warning: --dataset {dataset} gives every run on the folder {dataset}'s published settings, made for "
            f"its {DATASETS[dataset].num_class} classes of the ntu25 skeleton; this folder has {num_class} classes "
            f"of {layout.name}",
            flush=True,
        )
    settings = dict(
        dataset=dataset,
        annotations=os.path.abspath(path),
        train_split=args.train_split,
        val_split=args.val_split,
        protocol=args.protocol,
        samples=len(labels),
        unused_annotations=len(by_name) - len(labels),
        name_format="frame_dir",
        label="label as stored",
        missing_joints=args.missing_joints,
        min_score=args.min_score,
        keep_zeros=args.keep_zeros,
        track=args.track,
        scale="image" if sides else "none",
    )
    if args.scale == "image" and not sides:
        parser.error(f"--scale image: no recording of {path} has an img_shape to divide its keypoints by")
    if layout.channels == 2 and args.scale is None and not sides:
        print(
            "warning: no recording has an img_shape: the keypoints are kept as stored, so recordings of different "
            "resolutions keep different scales (--scale none says this is meant)"
        )
    shapes = {n: by_name[n]["keypoint"].shape for n in names if numeric_array(by_name[n].get("keypoint"), 4)}
    # more people than frames, and than the layout keeps (a short clip of a group the layout keeps is neither)
    frames_first = [n for n, shape in shapes.items() if shape[0] > max(shape[1], layout.bodies)]
    if 2 * len(frames_first) > len(names):
        first = frames_first[0]
        print(
            f"warning: {len(frames_first)} of the {len(names)} recordings have more people than frames (the first: "
            f"{first}, keypoint of shape {shapes[first]}); keypoint is M x T x V x C, people "
            "first: were they written frames first (np.swapaxes(keypoint, 0, 1) puts them right)?"
        )
    roots = [layout.joints[j] for j, parent in enumerate(layout.parents) if j == parent]
    if len(roots) > 1:
        print(
            f"note: layout {layout.name} has {len(roots)} roots, joints that are their own parent "
            f"({', '.join(roots[:5])}{', …' if len(roots) > 5 else ''}); the built-in layouts have one. Parents "
            "are 0-based joint indices: written 1-based, several joints become roots and every bone is wrong"
        )
    frame_signs(names, by_name, layout, settings)
    people = {n: _people(by_name[n]) for n in names}
    crowded = [(n, m) for n, m in people.items() if m > layout.bodies]
    settings["more_people_than_layout_bodies"] = len(crowded)
    if crowded:
        print(
            f"warning: {len(crowded)} recording(s) hold more people than the layout's {layout.bodies} "
            f"(the first: {crowded[0][0]}, {crowded[0][1]}); the most active are kept (a bystander, or a Kinect's "
            f"noise body, moves less than the actor). For actions of more people, use a layout with more bodies "
            f"(a JSON copy of {layout.name} with its 'bodies' raised)"
        )
    if args.missing_joints == "fill":
        settings["missing"] = summary = missing_summary(
            [by_name[n].get("keypoint") for n in names],
            layout,
            [by_name[n].get("keypoint_score") for n in names],
            args.min_score,
            not args.keep_zeros,
            LOW_SCORE if args.min_score is None else None,  # a hint: scored guesses of unseen joints
        )
        low = summary.pop("found_scored_below_percent", None)  # a hint, not a record of the folder
        swapping, several = summary["people_change_places"], summary["recordings_with_several_people"]
        if 2 * swapping > several and not args.track:
            print(
                f"warning: in {swapping} of the {several} recordings with several people, two of them change "
                "places between consecutive frames, as when each frame lists its people in its own order "
                "(per-frame pose estimators such as OpenPose do); the bodies kept would then mix people: "
                "--track reorders each frame's people to follow each person"
            )
        if low is not None and low > LOW_SCORE_PERCENT:
            print(
                f"note: {low:.0f} % of the joints found score below {LOW_SCORE} in keypoint_score; an estimator "
                f"that writes a guess for a joint it did not find (top-down models such as HRNet do) needs "
                f"--min-score (e.g. {LOW_SCORE}) for those joints to count as missing"
            )
        joint, never = layout.joints[layout.centre], summary["joints_never_found"]
        root_relative = joint in never and (never == [joint] or layout.channels == 3)  # 3-D lifts put a root at 0
        if root_relative and not args.keep_zeros:
            lacking = "" if never == [joint] else " and write the joints your data lacks as NaN, not 0"
            print(
                f"warning: the centre joint ({joint}) is missing in every frame of every recording; if it is the "
                f"origin of root-relative data, pass --keep-zeros (a joint at 0 is then a coordinate){lacking}"
            )
        elif never:  # as 2-D upper-body footage gives: data without those joints, not root-relative data
            print(
                f"note: {len(never)} joint(s) are found in no frame of any recording ({', '.join(never)}); each "
                "is filled from its nearest found joint along the bones (or the mean of the found joints)"
                + (f", the centre ({joint}) too, so every frame is still centred" if joint in never else "")
            )
    run_conversion(
        build_tasks(
            path,
            parts,
            by_name,
            labels,
            layout,
            benchmark,
            args.missing_joints,
            args.min_score,
            not args.keep_zeros,
            sides,
            args.track,
        ),
        args.out_folder,
        [benchmark],
        settings,
        args,
        num_class=num_class,
        dataset=dataset,
        layout=layout,
        subfolders=False,
    )


if __name__ == "__main__":
    main()
