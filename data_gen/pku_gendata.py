"""Convert raw PKU-MMD phase II skeletons to the processed layout (benchmarks xsub, xview).

    python -m data_gen.pku_gendata --data-path RAW --out-folder OUT [--workers N] [--skip-bad]

RAW holds ``skeleton/<video>.txt``, ``label/<video>.txt``, ``cross_subject_v2.txt`` and
``cross_view_v2.txt`` (docs/published-behaviour.md §1.2); OUT gets ``xsub/`` and ``xview/`` (each
with ``layout.json``: layout ``ntu25``, 51 classes), ``settings.json`` and ``skipped.txt``.  Every
action instance of a video is a sample named ``<video>.txt_<index>`` (index = its 0-based place among
the label file's action lines; blank lines do not count); samples are ordered by video name, then
index.  A video is in a benchmark's training part when its name is on line 2 of the split file.  A
skeleton or label file is bad (an error naming the file and the line; skipped with ``--skip-bad``)
when it is not UTF-8 text, a line is not of the expected numbers, a label file is missing or has no
action line (empty or blank), or a coordinate is not finite or lies beyond ``MAX_COORDINATE`` (see
``data_gen.ntu_reader``).
"""

import os

import numpy as np

from data_gen.ntu_reader import (
    COORDINATE_RULE,
    SkeletonFileError,
    first_bad_coordinate,
    number_block,
    read_raw_text,
    read_text,
)
from data_gen.writer import Sample, Task, conversion_parser, parse_conversion, run_conversion
from dataset.catalog import DATASETS
from dataset.processed import MAX_FRAME

NUM_CLASSES = DATASETS["pku_v2"].num_class
VALUES_PER_FRAME = 150  # 2 bodies x 25 joints x xyz
SPLIT_FILES = {"xsub": "cross_subject_v2.txt", "xview": "cross_view_v2.txt"}


def read_split(path):
    """The training video names listed on line 2 of a PKU-MMD split file."""
    lines = read_text(path, "utf-8").splitlines()
    if len(lines) < 2 or not lines[1].strip():
        raise ValueError(
            f'{path}: line 2: expected the training video names separated by ", ", '
            f"found {'end of file' if len(lines) < 2 else 'an empty line'}"
        )
    names = {name.strip() for name in lines[1].split(",") if name.strip()}
    if not names:
        raise ValueError(f'{path}: line 2: expected the training video names separated by ", ", found {lines[1]!r}')
    return names


def read_labels(path):
    """(label 1-based, start, end) per action of a PKU label file; one-line files included, a file without
    an action line refused."""
    actions = []
    text = read_raw_text(path, "utf-8")
    for no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        try:
            values = [float(p) for p in parts[:3]]
        except ValueError:
            values = None
        if len(parts) < 3 or values is None or not all(v.is_integer() for v in values):
            raise SkeletonFileError(
                f'{path}: line {no}: expected "label,start,end,confidence" with integer '
                f"label, start and end, found {line[:60]!r}"
            )
        label, start, end = (int(v) for v in values)
        if not 1 <= label <= NUM_CLASSES or not 0 <= start < end:
            raise SkeletonFileError(
                f"{path}: line {no}: expected a label in 1..{NUM_CLASSES} and 0 <= start < end, "
                f"found label {label}, start {start}, end {end}"
            )
        actions.append((label, start, end, no))
    if not actions:
        raise SkeletonFileError(
            f'{path}: expected at least one action line "label,start,end,confidence", '
            f"found {'an empty file' if not text else 'only blank lines'}"
        )
    return actions


def read_skeleton(path):
    """Frames x 150 float64 array of a PKU skeleton file (blank lines ignored)."""
    numbered = [
        (no, line) for no, line in enumerate(read_raw_text(path, "utf-8").splitlines(), start=1) if line.strip()
    ]
    lines = [line for _, line in numbered]

    def bad_line(k, line):
        raise SkeletonFileError(
            f"{path}: line {numbered[k][0]}: expected {VALUES_PER_FRAME} numbers "
            f"(2 bodies x 25 joints x xyz), found {line[:60]!r}"
        )

    frames = number_block(lines, VALUES_PER_FRAME, bad_line)  # F x 150
    bad = first_bad_coordinate(frames)
    if bad is not None:
        k, value = bad
        raise SkeletonFileError(f"{path}: line {numbered[k][0]}: expected {COORDINATE_RULE}, found {value:g}")
    return frames


def read_video_samples(skeleton_path, label_path, actions):
    """[(C x min(F, 300) x 25 x 2 float32, F)] for each (label, start, end, line) action of a video."""
    frames = read_skeleton(skeleton_path)  # F x 150
    if not len(frames):  # else its label file's first action would be blamed for ending beyond frame 0
        raise SkeletonFileError(f"{skeleton_path}: no frame (an empty file)")
    samples = []
    for _, start, end, no in actions:
        if end > len(frames):
            raise SkeletonFileError(
                f"{label_path}: line {no}: expected end <= {len(frames)} (the frames in "
                f"{skeleton_path}), found end {end}"
            )
        part = frames[start:end].reshape(end - start, 2, 25, 3).transpose(3, 0, 2, 1)  # C x F x V x M
        samples.append((np.ascontiguousarray(part[:, :MAX_FRAME], dtype=np.float32), end - start))
    return samples


def build_tasks(data_path, skip_bad):
    """One Task per video in name order, and the skipped.txt lines of the videos whose label file is bad."""
    if not os.path.isdir(data_path):
        raise ValueError(f"--data-path {data_path} is not a folder (PKU-MMD phase II's raw folder)")
    expected = ("skeleton/", "label/", *SPLIT_FILES.values())
    missing = [n for n in expected if not os.path.exists(os.path.join(data_path, n))]
    if missing:
        holds = ", ".join(expected)
        raise ValueError(f"{data_path}: no {', '.join(missing)} (a PKU-MMD phase II folder holds {holds})")
    splits = {b: read_split(os.path.join(data_path, f)) for b, f in SPLIT_FILES.items()}
    skeleton_dir, label_dir = os.path.join(data_path, "skeleton"), os.path.join(data_path, "label")
    filenames = sorted(n for n in os.listdir(skeleton_dir) if n.endswith(".txt"))  # none: said below
    for b, names in splits.items():
        # a folder or a FIFO of a video's name is not absent: it is a bad file, which its reading names
        absent = sorted(n for n in names if not os.path.lexists(os.path.join(skeleton_dir, n + ".txt")))
        if filenames and len(absent) == len(names):  # a line not split as expected: every video would be evaluated
            raise ValueError(
                f"{os.path.join(data_path, SPLIT_FILES[b])}: line 2: none of its {len(names)} training video "
                f"name(s) has a skeleton file in {skeleton_dir} (the first: {absent[0]!r}); expected names "
                f'such as A01N01-L separated by ", "'
            )
        if absent:
            print(
                f"warning: {len(absent)} training video(s) of {SPLIT_FILES[b]} have no skeleton file "
                f"(the first: {absent[0]}); they are left out",
                flush=True,
            )
    tasks, skipped = [], []
    for filename in filenames:
        video = filename[:-4]
        label_path = os.path.join(label_dir, filename)
        try:
            if not os.path.isfile(label_path):
                raise SkeletonFileError(f"{os.path.join(skeleton_dir, filename)}: no label file {label_path}")
            actions = read_labels(label_path)
        except SkeletonFileError as exc:
            if not skip_bad:
                raise
            print(f"skipping bad input: {exc}", flush=True)  # as the conversion says of a bad skeleton file
            skipped.append(f"{os.path.join(skeleton_dir, filename)}\tbad label file: {exc}")
            continue
        parts = {b: "train" if video in names else "val" for b, names in splits.items()}
        samples = [Sample(f"{filename}_{i}", label - 1, parts) for i, (label, _, _, _) in enumerate(actions)]
        skeleton_path = os.path.join(skeleton_dir, filename)
        tasks.append(
            Task(
                source=skeleton_path,
                reader=read_video_samples,
                args=(skeleton_path, label_path, actions),
                samples=samples,
            )
        )
    if not tasks:
        raise ValueError(f"{skeleton_dir}: no readable <video>.txt skeleton files")
    return tasks, skipped


def main(argv=None):
    parser = conversion_parser(
        "PKU-MMD II raw files -> processed arrays",
        "--data-path",
        "folder with skeleton/, label/ and the split files",
        "e.g. ./data/PKU-MMD-v2-AGCN",
    )
    args = parse_conversion(parser, argv)
    benchmarks = list(SPLIT_FILES)
    try:
        tasks, skipped_labels = build_tasks(args.data_path, args.skip_bad)
    except (ValueError, OSError) as exc:
        raise SystemExit(f"error: {exc}") from None
    settings = dict(
        dataset="pku_v2",
        data_path=os.path.abspath(args.data_path),
        benchmarks=benchmarks,
        videos=len(tasks),
        samples=sum(len(t.samples) for t in tasks),
        name_format="<video>.txt_<index>",
        label="label - 1",
    )
    run_conversion(
        tasks,
        args.out_folder,
        benchmarks,
        settings,
        args,
        num_class=NUM_CLASSES,
        dataset="pku_v2",
        already_skipped=skipped_labels,
    )


if __name__ == "__main__":
    main()
