"""Import NW-UCLA (Northwestern-UCLA Multiview Action3D) skeletons from their ``all_sqe`` JSON files.

    python -m data_gen.ucla_gendata --data-path ALL_SQE_DIR --out-folder DIR [--workers N] [--skip-bad]

ALL_SQE_DIR holds one ``aAA_sSS_eEE_vVV.json`` per recording (action, subject, repetition, view), as
CTR-GCN distributes them: ``{"file_name": ..., "label": 1..10, "skeletons": [T][20][3]}``, the 20
Kinect v1 joints in the order of the ``kinect20`` layout, in metres.  DIR becomes one processed folder
(``DIR/{train,val}_{data_joint.npy,num_frame.npy,label.pkl}``; ``DIR/layout.json``: layout
``kinect20``, 10 classes, dataset ``nw_ucla``; ``DIR/settings.json``; ``DIR/skipped.txt``) with the
standard cross-view split: views 1 and 2 train, view 3 validates (1,020 and 464 recordings of the full
set).  Samples are named by their file stems and ordered by name; labels are the JSON label - 1;
recordings longer than 300 frames are cut to 300 with their true frame count kept; the published
normalisation runs through the layout's joints.

A file is bad (an error naming it; skipped with ``--skip-bad`` and listed in ``DIR/skipped.txt``) when
its name is outside the pattern or its view outside 1..3, it cannot be read (a folder or a broken link of
a recording's name), it is not UTF-8 JSON (or is nested too deep to
parse), "label" or "skeletons" is missing, the label is not an integer in 1..10, it has no frame, a
frame is not 20 joints of 3 numbers (``true`` and ``false`` are not numbers), or a coordinate is not
finite or lies beyond ``MAX_COORDINATE`` (see ``data_gen.ntu_reader``).
"""

import json
import os
import re

import numpy as np

from data_gen.ntu_reader import COORDINATE_RULE, SkeletonFileError, first_bad_coordinate, read_raw_text
from data_gen.writer import Sample, Task, conversion_parser, parse_conversion, parse_names, raw_files, run_conversion
from dataset.layouts import KINECT20
from dataset.processed import MAX_FRAME

NUM_CLASSES = 10
NAME_PATTERN = re.compile(r"^a(\d{2})_s(\d{2})_e(\d{2})_v(\d{2})\.json\Z")
TRAIN_VIEWS, VAL_VIEWS = (1, 2), (3,)
BENCHMARK = "xview"


def view_of(name):
    """The view (1..3) of an ``all_sqe`` file name; ValueError outside the pattern."""
    match = NAME_PATTERN.match(name)
    if match is None:
        raise ValueError(
            f"{name!r} is not an NW-UCLA all_sqe file name; expected aAA_sSS_eEE_vVV.json (e.g. a01_s01_e00_v01.json)"
        )
    view = int(match.group(4))
    if view not in TRAIN_VIEWS + VAL_VIEWS:
        raise ValueError(f"{name!r}: view {view}; NW-UCLA has views 1, 2 and 3")
    return view


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def skeleton_array(path, frames):
    """The "skeletons" list of a file as a T x 20 x 3 float64 array; SkeletonFileError names the file,
    the frame and the joint (1-based) that is not 20 joints of 3 numbers."""
    joints = KINECT20.num_joints
    if not isinstance(frames, list) or not frames:
        found = "no frame" if frames == [] else f"a {type(frames).__name__}"
        raise SkeletonFileError(f'{path}: "skeletons": expected a list of frames of {joints} joints, found {found}')
    try:
        coords = np.array(frames)
    except ValueError:  # ragged lists
        coords = None
    if (
        coords is not None
        and coords.dtype.kind in "iuf"
        and coords.shape[1:] == (joints, 3)
        and not any(type(x) is bool for frame in frames for joint in frame for x in joint)
    ):  # true -> 1.0
        return coords.astype(np.float64)  # T x 20 x 3
    for t, frame in enumerate(frames, start=1):
        if not isinstance(frame, list) or len(frame) != joints:
            found = f"{len(frame)} joints" if isinstance(frame, list) else json.dumps(frame)[:60]
            raise SkeletonFileError(f'{path}: "skeletons": frame {t}: expected {joints} joints, found {found}')
        for j, joint in enumerate(frame, start=1):
            if not isinstance(joint, list) or len(joint) != 3 or not all(_is_number(x) for x in joint):
                raise SkeletonFileError(
                    f'{path}: "skeletons": frame {t}, joint {j}: expected 3 numbers (x y z), '
                    f"found {json.dumps(joint)[:60]}"
                )
    raise SkeletonFileError(f'{path}: "skeletons": expected frames of {joints} joints of 3 numbers')


def read_recording(path):
    """[(3 x min(T, 300) x 20 x 1 float32, T, label - 1)] for one ``all_sqe`` JSON file."""
    try:
        record = json.loads(read_raw_text(path, "utf-8"))
    except json.JSONDecodeError as exc:
        raise SkeletonFileError(f"{path}: not JSON: {exc}") from None
    except RecursionError:
        raise SkeletonFileError(
            f"{path}: expected JSON nested 4 levels deep (an object of frames of joints of "
            f"numbers), found nesting too deep to read"
        ) from None
    missing = [k for k in ("label", "skeletons") if not isinstance(record, dict) or k not in record]
    if missing:
        found = f"keys {sorted(record)}" if isinstance(record, dict) else f"a JSON {type(record).__name__}"
        raise SkeletonFileError(f'{path}: expected a JSON object with "label" and "skeletons", found {found}')
    label = record["label"]
    if not isinstance(label, int) or isinstance(label, bool) or not 1 <= label <= NUM_CLASSES:
        raise SkeletonFileError(
            f'{path}: "label": expected an action label, an integer in 1..{NUM_CLASSES}, found {json.dumps(label)[:60]}'
        )
    coords = skeleton_array(path, record["skeletons"])  # T x 20 x 3
    bad = first_bad_coordinate(coords.reshape(len(coords), -1))
    if bad is not None:
        t, value = bad
        raise SkeletonFileError(f'{path}: "skeletons": frame {t + 1}: expected {COORDINATE_RULE}, found {value:g}')
    data = coords[:MAX_FRAME].transpose(2, 0, 1)[..., None]  # C x T' x V x 1
    return [(np.ascontiguousarray(data, dtype=np.float32), len(coords), label - 1)]


def list_files(data_path, skip_bad):
    """(names with their views, skipped lines) of the files in ``data_path``, sorted; a name outside the
    pattern is an error (SystemExit) unless ``skip_bad``."""
    names = raw_files(data_path, "NW-UCLA .json", ".json", "all_sqe")
    kept, skipped = parse_names(data_path, names, lambda name: (view_of(name),), skip_bad)
    return kept, skipped


def build_tasks(data_path, names):
    """One Task per (file name, view), its label read with the file."""
    tasks = []
    for name, view in names:
        path = os.path.join(data_path, name)
        part = "train" if view in TRAIN_VIEWS else "val"
        sample = Sample(name[: -len(".json")], None, {BENCHMARK: part})
        tasks.append(Task(source=path, reader=read_recording, args=(path,), samples=[sample]))
    return tasks


def main(argv=None):
    parser = conversion_parser(
        "NW-UCLA all_sqe JSON files -> a processed folder (kinect20)",
        "--data-path",
        "the all_sqe folder of aAA_sSS_eEE_vVV.json files",
        "the processed folder to write, e.g. ./data/NW-UCLA",
    )
    args = parse_conversion(parser, argv)
    names, skipped = list_files(args.data_path, args.skip_bad)
    settings = dict(
        dataset="nw_ucla",
        data_path=os.path.abspath(args.data_path),
        split="cross-view: views 1, 2 train; view 3 val",
        files=len(names),
        name_format="file stem",
        label="JSON label - 1",
    )
    run_conversion(
        build_tasks(args.data_path, names),
        args.out_folder,
        [BENCHMARK],
        settings,
        args,
        num_class=NUM_CLASSES,
        dataset="nw_ucla",
        layout=KINECT20,
        already_skipped=skipped,
        subfolders=False,
    )


if __name__ == "__main__":
    main()
