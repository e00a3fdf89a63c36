"""Import MSR-Action3D skeletons from their ``aAA_sSS_eEE_skeleton3D.txt`` files.

    python -m data_gen.msr_gendata --data-path DIR --out-folder OUT [--file-list LIST] [--workers N] [--skip-bad]

DIR holds one ``aAA_sSS_eEE_skeleton3D.txt`` per recording (action 1..20, subject 1..10, repetition), as
the ``msr_action3d_real3d`` release has them: plain text, one line per joint of 4 numbers (x y z, metres,
and a confidence, which is ignored), 20 lines a frame, frames one after another.  OUT becomes one
processed folder (``OUT/{train,val}_{data_joint.npy,num_frame.npy,label.pkl}``; ``OUT/layout.json``:
layout ``kinect20``, 20 classes, dataset ``msr_action3d``; ``OUT/settings.json``; ``OUT/skipped.txt``)
with the cross-subject split: subjects 1, 3, 5, 7 and 9 train, the even subjects validate.  The joints
are put in the ``kinect20`` order (``KINECT20_FROM_MSR``).  Samples are named by their file stems
(``aAA_sSS_eEE``) and ordered by name; labels are the action - 1; recordings longer than 300 frames are
cut to 300 with their true frame count kept; the published normalisation runs through the layout's
joints.  ``--file-list LIST`` keeps only the recordings LIST names (whitespace-separated stems or file names, as the
archive's ``msr_action3d_real3d_files_used_in_cvpr12_paper.txt``); a name without its file is an error.

Frames whose 20 joints are all at (0, 0, 0) hold no skeleton: the tracker lost the actor (most of
them end a recording, some start it, and some gaps interrupt one).  They are removed wherever they are,
with a warning naming the file, and the frame count is that of the frames left: kept, they would be
normalised like a pose at the origin and read as motion by the encoders, and the other importers'
samples have no such frames in them (an NTU frame without a body is empty padding after the last).

A file is bad (an error naming it; skipped with ``--skip-bad`` and listed in ``OUT/skipped.txt``) when
its name is outside the pattern, its action outside 1..20 or its subject outside 1..10, it cannot be read
(a folder or a broken link of a recording's name), it is empty or
not ASCII, a line is not 4 numbers, a coordinate is not finite or lies beyond ``MAX_COORDINATE`` (see
``data_gen.ntu_reader``), its line count is not a multiple of 20, or every frame is all zeros.
"""

import os
import re

import numpy as np
from tqdm import tqdm

from data_gen.ntu_reader import (
    COORDINATE_RULE,
    SkeletonFileError,
    first_bad_coordinate,
    number_block,
    read_raw_text,
    read_text,
)
from data_gen.writer import Sample, Task, conversion_parser, parse_conversion, parse_names, raw_files, run_conversion
from dataset.layouts import KINECT20
from dataset.processed import MAX_FRAME

NUM_CLASSES, NUM_SUBJECTS = 20, 10
SUFFIX = "_skeleton3D.txt"
NAME_PATTERN = re.compile(r"^a(\d{2})_s(\d{2})_e(\d{2})_skeleton3D\.txt\Z")
BENCHMARK = "xsub"
FIELDS = 4  # x y z confidence
# MSR-Action3D's 20 joints (1-based: 1/2 left/right shoulder, 3 shoulder centre, 4 spine, 5/6 left/right
# hip, 7 hip centre, 8/9 elbows, 10/11 wrists, 12/13 hands, 14/15 knees, 16/17 ankles, 18/19 feet, 20 head)
# are the Kinect v1 skeleton of NW-UCLA in another order.  They are put in the kinect20 order rather than
# given a layout of their own so that one layout serves both datasets: encoders trained on one transfer
# to the other, and the bones and the normalisation's joints are already defined.  The sides were checked
# against NW-UCLA: MSR joint 1 lies on the same side as NW-UCLA's left shoulder.
KINECT20_FROM_MSR = (6, 3, 2, 19, 0, 7, 9, 11, 1, 8, 10, 12, 4, 13, 15, 17, 5, 14, 16, 18)  # kinect20 joint -> MSR


def parse_name(name):
    """(action, subject) of an MSR-Action3D file name; ValueError outside the pattern or the ranges."""
    match = NAME_PATTERN.match(name)
    if match is None:
        raise ValueError(
            f"{name!r} is not an MSR-Action3D skeleton file name; expected aAA_sSS_eEE{SUFFIX} "
            f"(e.g. a01_s01_e01{SUFFIX})"
        )
    action, subject = int(match.group(1)), int(match.group(2))
    if not 1 <= action <= NUM_CLASSES:
        raise ValueError(f"{name!r}: action {action}; MSR-Action3D has actions 1..{NUM_CLASSES}")
    if not 1 <= subject <= NUM_SUBJECTS:
        raise ValueError(f"{name!r}: subject {subject}; MSR-Action3D has subjects 1..{NUM_SUBJECTS}")
    return action, subject


def read_skeletons(path):
    """Every frame of one file, zero frames included, as T x 20 x 3 float64 in the kinect20 order;
    SkeletonFileError names the file and the line."""
    lines = read_raw_text(path).rstrip().splitlines()
    joints = KINECT20.num_joints
    if not lines:
        raise SkeletonFileError(f"{path}: empty file: expected frames of {joints} lines of {FIELDS} numbers")

    def bad_line(k, line):
        raise SkeletonFileError(
            f"{path}: line {k + 1}: expected a joint line of {FIELDS} numbers (x y z confidence), found {line[:80]!r}"
        )

    values = number_block(lines, FIELDS, bad_line)  # lines x 4
    bad = first_bad_coordinate(values[:, :3])
    if bad is not None:
        k, value = bad
        raise SkeletonFileError(
            f"{path}: line {k + 1}: expected {COORDINATE_RULE}, found {value:g} in {lines[k][:80]!r}"
        )
    if len(lines) % joints:
        start = len(lines) - len(lines) % joints + 1
        raise SkeletonFileError(
            f"{path}: {len(lines)} lines: expected a multiple of {joints} ({joints} joint "
            f"lines a frame); the last frame, from line {start}, has {len(lines) % joints}"
        )
    return values[:, :3].reshape(-1, joints, 3)[:, KINECT20_FROM_MSR]  # T x 20 x 3


def read_recording(path):
    """[(3 x min(T, 300) x 20 x 1 float32, T)] for one file, T counting the frames that are not all zeros."""
    coords = read_skeletons(path)  # T x 20 x 3
    empty = ~coords.any(axis=(1, 2))  # T
    if empty.all():
        raise SkeletonFileError(f"{path}: all {len(coords)} frames are all zeros (no skeleton tracked)")
    if empty.any():
        tqdm.write(f"warning: {path}: removed {empty.sum()} of {len(coords)} frames, all zeros (no skeleton tracked)")
        coords = coords[~empty]
    data = coords[:MAX_FRAME].transpose(2, 0, 1)[..., None]  # C x T' x V x 1
    return [(np.ascontiguousarray(data, dtype=np.float32), len(coords))]


def list_files(data_path, file_list, skip_bad):
    """(names with their (action, subject), skipped lines, files left out by ``file_list``), sorted; a
    name outside the pattern is an error (SystemExit) unless ``skip_bad``, a listed name without its file
    always is."""
    names = raw_files(data_path, f"MSR-Action3D *{SUFFIX}", SUFFIX)
    left_out = 0
    if file_list is not None:
        try:
            wanted = sorted({s.removesuffix(SUFFIX) for s in read_text(file_list).split()})  # stems or names
        except (OSError, SkeletonFileError) as exc:
            raise SystemExit(f"error: --file-list {file_list}: {getattr(exc, 'strerror', None) or exc}") from None
        missing = [s for s in wanted if s + SUFFIX not in names]
        if missing or not wanted:
            found = f"names {missing[0]}, but {data_path} has no {missing[0]}{SUFFIX}" if missing else "is empty"
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise SystemExit(f"error: --file-list {file_list} {found}{more}")
        left_out = len(names) - len(wanted)
        names = [s + SUFFIX for s in wanted]
    kept, skipped = parse_names(data_path, names, parse_name, skip_bad)
    return kept, skipped, left_out


def build_tasks(data_path, names):
    """One Task per (file name, action, subject): odd subjects train, even subjects validate."""
    tasks = []
    for name, action, subject in names:
        path = os.path.join(data_path, name)
        sample = Sample(name[: -len(SUFFIX)], action - 1, {BENCHMARK: "train" if subject % 2 else "val"})
        tasks.append(Task(source=path, reader=read_recording, args=(path,), samples=[sample]))
    return tasks


def main(argv=None):
    parser = conversion_parser(
        "MSR-Action3D skeleton files -> a processed folder (kinect20)",
        "--data-path",
        f"the folder of aAA_sSS_eEE{SUFFIX} files (msr_action3d_real3d)",
        "the processed folder to write, e.g. ./data/MSR-Action3D",
    )
    parser.add_argument(
        "--file-list",
        help="convert only the recordings this file names (whitespace-separated "
        "aAA_sSS_eEE, with or without its suffix), e.g. msr_action3d_real3d_files_used_in_cvpr12_paper.txt",
    )
    args = parse_conversion(parser, argv)
    names, skipped, left_out = list_files(args.data_path, args.file_list, args.skip_bad)
    settings = dict(
        dataset="msr_action3d",
        data_path=os.path.abspath(args.data_path),
        file_list=args.file_list and os.path.abspath(args.file_list),
        not_in_file_list=left_out,
        split="cross-subject: subjects 1, 3, 5, 7, 9 train; 2, 4, 6, 8, 10 val",
        files=len(names),
        name_format="file stem",
        label="action - 1",
        zero_frames="removed",
    )
    run_conversion(
        build_tasks(args.data_path, names),
        args.out_folder,
        [BENCHMARK],
        settings,
        args,
        num_class=NUM_CLASSES,
        dataset="msr_action3d",
        layout=KINECT20,
        already_skipped=skipped,
        subfolders=False,
    )


if __name__ == "__main__":
    main()
