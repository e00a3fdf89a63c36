"""Reading settings, shared by every stage: parse argv once, open the processed folder, pick the
preset, fill unset flags from it, check every rule on the resolved values. Anything wrong with the
command line is a usage error (exit status 2) before any work.

A flag whose default lives in the preset table is declared with `default=None` and a help text that
ends in "(preset)". Rules are data: `check_rules(parser, values, RULES)` names the flag, the accepted
range and the value found.
"""

import argparse
import hashlib
import json
import math
import os
import re
import zipfile

import numpy as np
import torch

from dataset.catalog import DATASETS, SEMI_PROTOCOLS, SEMI_SUFFIX, base_protocol, folder_protocol, resolve_data_dir
from dataset.files import file_in_the_way
from dataset.layouts import NTU25
from dataset.processed import MAX_FRAME, fingerprint, import_warnings
from options.presets import DEFAULT_DATASET, FolderFacts, choose_preset, preset
from options.settings import DataSettings, flag


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default in --help when it has one (preset-held flags say "(preset)" instead)."""

    def _get_help_string(self, action):
        if action.default in (None, "", argparse.SUPPRESS) or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def make_parser(description):
    return argparse.ArgumentParser(description=description, formatter_class=_HelpFormatter)


def add_run_folder_flags(parser, kind):
    """--fresh: start a new run in a folder that holds one (its files are kept aside)."""
    parser.add_argument(
        "--fresh",
        action="store_true",
        help=f"start a new {kind} in an output folder that holds one: its files are moved to "
        "a subfolder previous-<date-time>/, never deleted",
    )


# (test, wording of the accepted range); every number must also be finite, as a float32 too (the
# tensors every value ends in: a learning rate of 1e39 is finite in Python and inf in the model).
FLOAT32_MAX = float(np.finfo(np.float32).max)


def at_least(low):
    return (lambda v: v >= low), f"at least {low}"


def positive():
    return (lambda v: v > 0), "positive"


def between(low, high):
    return (lambda v: low <= v <= high), f"from {low} to {high}"


# A seed: every generator the runs seed (torch, SeedSequence, scikit-learn modulo 2**32) takes it.
SEED = between(0, 2**63 - 1)
# A view longer than the longest recording a processed folder holds only interpolates; 2: motion is a
# difference of consecutive frames.
VIEW_FRAMES = between(2, MAX_FRAME)


def in_unit(closed_top=True):
    if closed_top:
        return (lambda v: 0.0 <= v <= 1.0), "in [0, 1]"
    return (lambda v: 0.0 <= v < 1.0), "in [0, 1)"


def check_rules(parser, values, rules):
    """`parser.error` (exit 2) listing every value of the dict `values` outside its rule (or not finite)."""
    problems = []
    for name, (test, wording) in rules.items():
        value = values.get(name)
        if value is None:
            continue
        items = value if isinstance(value, (list, tuple)) else [value]
        if not all(math.isfinite(v) and abs(v) <= FLOAT32_MAX and test(v) for v in items):
            beyond = any(math.isfinite(v) and abs(v) > FLOAT32_MAX for v in items)  # finite, but not in float32
            problems.append(
                f"{flag(name)} must be {wording} and finite, found {value}" + (" (beyond float32)" if beyond else "")
            )
    if problems:
        parser.error("; ".join(problems))


def is_feature_export(path):
    """Whether the file `path` is a feature export of knn_eval.py --save-features (an .npz of features)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return "train_features.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def holds_results(path):
    """Whether the file at `path` is absent, empty, or begins with a result record (its first line holds
    a 'metric'): a pretraining's log.jsonl does not."""
    try:
        with open(path, "rb") as f:
            first = f.readline()
    except OSError:  # absent, or a folder: check_writable names it
        return True
    try:
        record = json.loads(first) if first.strip() else {"metric": None}
    except ValueError:
        return False
    return isinstance(record, dict) and "metric" in record


def check_output_path(parser, name, path):
    """A usage error when an output path cannot be named on this file system (e.g. undecodable bytes), or
    would replace or extend a file of another kind: results go to a `.jsonl` file, a feature export
    replaces only an earlier one."""
    if not path:  # a shell variable left unset
        parser.error(f"{flag(name)} is empty; name a path")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        parser.error(f"{flag(name)} {path!r}: the path holds bytes that are not UTF-8; choose another")
    if name == "results" and not path.lower().endswith(".jsonl"):
        parser.error(f"{flag(name)} {path}: results are appended to a JSON-lines file; name one ending in .jsonl")
    if name == "results" and not holds_results(path):
        parser.error(f"{flag(name)} {path} holds JSON lines that are not results (a run's log?); choose another path")
    if name == "save_features" and os.path.lexists(path) and not is_feature_export(path):
        parser.error(
            f"{flag(name)} {path} exists and is not a feature export (which it would replace); choose another path"
        )
    if name != "checkpoint_path":
        return
    if os.path.isfile(path):
        parser.error(f"{flag(name)} {path} is a file; expected a folder")
    if os.path.islink(path) and not os.path.exists(path):
        parser.error(f"{flag(name)} {path} is a symbolic link to {os.readlink(path)}, which does not exist")
    blocking = file_in_the_way(os.path.dirname(os.path.abspath(path)))
    if blocking:
        parser.error(f"{flag(name)} {path}: {blocking} is a file, not a folder")


def check_device(parser, name):
    """The torch device `name` ('cpu', 'cuda' or 'cuda:N'; '' or 'auto': CUDA when available, else CPU);
    usage error for any other, or for CUDA on a machine without it."""
    if name in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not re.fullmatch(r"cpu|cuda(:\d+)?", name):
        parser.error(f"--device {name}: this code runs on cpu, cuda or cuda:N")
    if name.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    return name


def world_size_from_env(parser):
    """The number of processes torchrun starts (WORLD_SIZE), 1 when it is not set."""
    value = os.environ.get("WORLD_SIZE", "")
    if not value:
        return 1
    if not value.isdigit() or int(value) < 1:
        parser.error(f"environment variable WORLD_SIZE={value!r}: expected a positive integer")
    return int(value)


def fill(args, settings):
    """Set every attribute of `args` that is None and that `settings` holds."""
    for key, value in settings.items():
        if key in vars(args) and getattr(args, key) is None:
            setattr(args, key, value)


def data_folder(parser, dataset, protocol, data_dir):
    """The processed folder a run reads: --data-dir, else the folder of `dataset` under `protocol`; a
    usage error when it is not a folder."""
    try:
        folder = resolve_data_dir(dataset or DEFAULT_DATASET, protocol or DEFAULT_PROTOCOL, data_dir)
    except ValueError as exc:
        parser.error(str(exc))
    if not os.path.isdir(folder):
        parser.error(
            f"processed folder {folder or repr(folder)}: no such folder (pass --data-dir, or make it with data_gen/)"
        )
    return folder


def folder_facts(split):
    """The small-data preset's inputs from a training `Split`."""
    return FolderFacts(
        train_samples=len(split),
        median_frames=float(np.median(np.minimum(split.num_frame, MAX_FRAME))),
        num_joints=split.layout.num_joints,
    )


def resolve_preset(parser, args, stage, split, dataset_flag, dataset_option, world_size=1):
    """Choose the preset for the folder of `split` and fill `args` from it; returns the preset's name.
    The small-data rules' values follow the flags given of their inputs (batch, queue, view length) and
    `world_size`.

    Usage errors: an unknown preset for the stage, or a dataset flag that contradicts the folder's record."""
    given = {key: getattr(args, key, None) for key in ("batch_size", "contrast_k", "view_frames")}
    given["world_size"] = world_size
    try:
        name = choose_preset(split.dataset, dataset_flag, args.preset, dataset_option)
        fill(args, preset(stage, name, folder_facts(split), given))
    except ValueError as exc:
        parser.error(str(exc))
    published = DATASETS.get(split.dataset)  # a record naming a published data set chose its published settings
    if published and args.preset is None and split.layout.name != NTU25.name:
        say(
            f"warning: {split.folder}: its layout.json names {split.dataset}, so every run on it takes "
            f"{split.dataset}'s published settings, made for the {NTU25.name} skeleton; it holds "
            f"{split.layout.name} skeletons. --preset small gives the small-data settings (docs/small-data.md)"
        )
    return name


def data_name(split, dataset):
    """The data in a default run folder's name: the published `dataset` for a folder without a record, a
    published dataset's name, else the folder's own name and a tag of its real path ('mine-1a2b3c'), since two
    folders may record one name (two pickles called mine.pkl) and their runs must not meet in one folder."""
    if split.dataset is None or split.dataset in DATASETS:
        return split.dataset or dataset
    return f"{split.dataset}-{hashlib.sha1(os.path.realpath(split.folder).encode()).hexdigest()[:6]}"


def given_flags(args):
    """The names of the flags the command line set: those not None, before a preset fills the rest."""
    return {name for name, value in vars(args).items() if value is not None}


DEFAULT_PROTOCOL = "cross_subject"
# -j: 8 data-loading workers, or the CPUs this process may use when fewer (a batch job's, not the whole
# node's; the published 32 only contend for them)
USABLE_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
DEFAULT_WORKERS = min(8, USABLE_CPUS)
WORKERS_HELP = "data-loading workers: 8, or the CPUs this process may use when fewer (published: 32)"
PROTOCOL_HELP = (
    "benchmark (default: the one the folder's layout.json records, else the one its name xsub, xview or "
    "xsetup stands for, else cross_subject)"
)


def folder_benchmark(split):
    """The benchmark the folder of `split` holds: the one its layout.json records, else the one its name
    stands for (the published tools' `xview`: cross_view; the name given, else that of the folder a link
    names), else None."""
    names = (os.path.basename(os.path.abspath(split.folder)), os.path.basename(os.path.realpath(split.folder)))
    return split.protocol or folder_protocol(names[0]) or folder_protocol(names[1])  # as given, else linked


def say(message):
    """Print a note or warning of the settings' resolution once per run: every process of a torchrun
    resolves the same settings, so only rank 0 prints."""
    try:
        rank = int(os.environ.get("RANK") or 0)  # as engine.distributed reads it (a bad value fails there)
    except ValueError:
        rank = 0
    if rank == 0:
        print(message, flush=True)


def print_import_warnings(split):
    """Print the warnings of the import of `split`'s folder that still hold (`import_warnings`): a run
    that trains or evaluates on it repeats them, as an importer's may have scrolled by unread."""
    for warning in import_warnings(split.folder):
        say(f"warning: {warning}")


def resolve_protocol(parser, protocol, split):
    """The run's protocol: `protocol` (the flag) when given, else the one the folder of `split` records,
    else the one its name stands for (`folder_benchmark`), else cross_subject.
    A flag naming another benchmark than the folder's record is a usage error."""
    if protocol is None:
        return folder_benchmark(split) or DEFAULT_PROTOCOL
    if split.protocol and base_protocol(protocol) != split.protocol:
        advice = f"leave the flag out or pass --protocol {split.protocol}"
        if protocol in SEMI_PROTOCOLS:  # semi-supervised fine-tuning, which a plain protocol would not do
            semi = split.protocol + SEMI_SUFFIX
            advice = (
                f"pass --protocol {semi}" if semi in SEMI_PROTOCOLS else f"pass --protocol {split.protocol} --finetune"
            )
            advice += " to fine-tune on that benchmark's labels (with your --data-ratio)"
        parser.error(
            f"--protocol {protocol}: the processed folder {split.folder} holds the {split.protocol} benchmark "
            f"(its layout.json says so); {advice}"
        )
    return protocol


def data_settings(split, dataset, protocol, num_class):
    """The DataSettings of a run over the processed folder of training part `split`."""
    return DataSettings(
        dataset=split.dataset or dataset,
        protocol=protocol,
        data_dir=os.path.abspath(split.folder),  # one name whatever the working folder (a later run compares it)
        layout=split.layout,
        num_class=num_class,
        train_samples=len(split),
        median_frames=folder_facts(split).median_frames,
        fingerprint=fingerprint(split.folder, split.part),
    )
