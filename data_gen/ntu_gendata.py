"""Convert raw NTU RGB+D 60/120 skeleton files to the processed layout (docs/published-behaviour.md §1.3).

    python -m data_gen.ntu_gendata --data-path RAW --out-folder OUT --dataset ntu60|ntu120
        [--benchmark xsub xview xsetup] [--ignored-sample-path LIST] [--workers N] [--skip-bad]

writes ``OUT/<benchmark>/{train,val}_{data_joint.npy,num_frame.npy,label.pkl}`` with samples in name
order and ``OUT/<benchmark>/layout.json`` (layout ``ntu25``, 60 or 120 classes), plus
``OUT/settings.json`` and ``OUT/skipped.txt``.  Sample names are the file names with their
``.skeleton`` extension, as the published converter stored them; labels are the action number - 1.
"""

import os

from data_gen.ntu_reader import SkeletonFileError, is_training, parse_name, read_samples, read_text
from data_gen.writer import Sample, Task, conversion_parser, parse_conversion, parse_names, raw_files, run_conversion
from dataset.catalog import DATASETS, PROTOCOL_FOLDERS

NTU = ("ntu60", "ntu120")


def benchmarks_of(dataset):
    """The processed folders of a dataset's benchmarks: ('xsub', 'xview') for ntu60, ('xsub', 'xsetup') for ntu120."""
    return [PROTOCOL_FOLDERS[p] for p in DATASETS[dataset].protocols]


def read_ignored(path):
    """Sample names (with .skeleton) listed in an ignore file, one per line, extension optional."""
    text = read_text(path, "utf-8").removeprefix("\ufeff")  # a byte-order mark some Windows editors write
    names = [line.strip() for line in text.splitlines() if line.strip()]
    return {n if n.endswith(".skeleton") else n + ".skeleton" for n in names}


def _action(name):
    """(action,) of an NTU file name; ValueError outside the pattern or for action 0."""
    action = parse_name(name)[4]
    if action < 1:
        raise ValueError(f"{name}: action {action}; actions are numbered from 1")
    return (action,)


def list_samples(data_path, dataset, ignored=frozenset(), skip_bad=False):
    """(sorted NTU file names in ``data_path`` minus ``ignored``, skipped lines): a name outside the pattern
    is an error unless ``skip_bad``; an action beyond the dataset's classes is always one."""
    names = raw_files(data_path, "NTU .skeleton", ".skeleton")
    kept, skipped = parse_names(data_path, names, _action, skip_bad)
    for name, action in kept:
        if action > DATASETS[dataset].num_class:
            raise SystemExit(
                f"error: {os.path.join(data_path, name)}: action {action} exceeds the "
                f"{DATASETS[dataset].num_class} classes of {dataset} (use --dataset ntu120, or point --data-path "
                f"at a folder holding only the NTU-60 files S001-S017)"
            )
    samples = [name for name, _ in kept if name not in ignored]
    if not samples:
        why = "outside --ignored-sample-path" if kept else f"named as NTU's ({len(skipped)} skipped)"
        own = "" if kept else "; recordings of your own go through a pyskl pickle (docs/small-data.md)"
        raise SystemExit(f"error: no NTU .skeleton files in {data_path} {why}{own}")
    return samples, skipped


def build_tasks(data_path, names, dataset, benchmarks):
    """One Task per file, with its label and its part in each benchmark."""
    tasks = []
    for name in names:
        label = parse_name(name)[4] - 1
        parts = {b: "train" if is_training(name, dataset, b) else "val" for b in benchmarks}
        path = os.path.join(data_path, name)
        tasks.append(Task(source=path, reader=read_samples, args=(path,), samples=[Sample(name, label, parts)]))
    return tasks


def main(argv=None):
    parser = conversion_parser(
        "NTU RGB+D raw .skeleton files -> processed arrays",
        "--data-path",
        "folder of .skeleton files",
        "e.g. ./data/NTU-RGB-D-60-AGCN",
    )
    parser.add_argument("--dataset", choices=NTU, required=True)
    parser.add_argument(
        "--benchmark",
        nargs="+",
        choices=("xsub", "xview", "xsetup"),
        help="the dataset's benchmarks to write (default and choices: xsub xview for ntu60, xsub xsetup for ntu120)",
    )
    parser.add_argument(
        "--ignored-sample-path",
        "--ignored_sample_path",
        type=os.path.expanduser,
        help="list of samples to exclude (the official missing-skeleton list)",
    )
    args = parse_conversion(parser, argv)
    published = benchmarks_of(args.dataset)
    benchmarks = args.benchmark or published
    if len(set(benchmarks)) < len(benchmarks):
        parser.error(f"--benchmark {' '.join(benchmarks)} names a benchmark twice (each would be written twice)")
    unknown = [b for b in benchmarks if b not in published]
    if unknown:
        parser.error(
            f"--benchmark {' '.join(unknown)} is not a benchmark of {args.dataset} "
            f"(its benchmarks: {' '.join(published)})"
        )
    ignored = set()
    if args.ignored_sample_path:
        try:
            ignored = read_ignored(args.ignored_sample_path)
        except OSError as exc:
            parser.error(f"--ignored-sample-path {args.ignored_sample_path}: {exc.strerror}")
        except SkeletonFileError as exc:
            parser.error(f"--ignored-sample-path {exc}")
    names, skipped = list_samples(args.data_path, args.dataset, ignored, args.skip_bad)
    settings = dict(
        dataset=args.dataset,
        data_path=os.path.abspath(args.data_path),
        benchmarks=benchmarks,
        ignored_sample_path=args.ignored_sample_path,
        ignored=len(ignored),
        samples=len(names),
        name_format="file name with .skeleton",
        label="action number - 1",
    )
    tasks = build_tasks(args.data_path, names, args.dataset, benchmarks)
    run_conversion(
        tasks,
        args.out_folder,
        benchmarks,
        settings,
        args,
        num_class=DATASETS[args.dataset].num_class,
        dataset=args.dataset,
        already_skipped=skipped,
    )


if __name__ == "__main__":
    main()
