"""The conversion pipeline shared by the converters and importers: parse, normalise, write atomically.

``convert`` reads tasks (one raw file each, yielding one or more samples) across worker processes in
order, gathers them into fixed-size chunks, normalises each chunk at once through the skeleton layout's
joints (docs/published-behaviour.md §1.4) and writes it into every benchmark's train/val arrays on
disk, so peak memory depends on the chunk size, not on the number of samples.  A sample is
C x 300 x V x M float32 for the layout's channels C, joints V and bodies M (3 x 300 x 25 x 2 for
``ntu25``), and every processed folder gets the layout record (``layout.json``: the layout, the class
count and the dataset name; see ``dataset.layouts``).  Everything is written under temporary names in
the destination folders and renamed only when the whole run has succeeded; a run that fails (a bad
file, a full disk, Ctrl-C) removes its temporary files and leaves earlier outputs as they were. A run
killed (SIGTERM from kill, timeout or a batch scheduler; SIGKILL) leaves earlier outputs as they were too,
and its hidden temporary files until the next conversion into the folder removes them: a handler that
cleaned up after SIGTERM could hang in the worker pool's shutdown when the signal reached the workers.
The data files are allocated on disk when they are created, so a disk too small for them fails at the
start, and a disk or quota that fills up later is a ``NoSpaceError`` naming the file being written.
The output folder and its benchmark folders are claimed for the run (``dataset.files.claim_folder``): a
second converter into any of them is refused, naming the first; a converter removes only the temporary
files it made (and, holding the claims, those that killed processes left there).
"""

import argparse
import hashlib
import json
import multiprocessing
import os
import pickle
import re
import sys
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from data_gen.normalize import normalize_and_turn, upside_down
from data_gen.ntu_reader import SkeletonFileError, first_bad_coordinate
from dataset.catalog import DATASETS, SMALL_MIN_SAMPLES, folder_protocol
from dataset.files import (
    FolderInUseError,
    claim_folder,
    folder_settings,
    no_space_error,
    out_of_space,
    run_files,
    temp_path,
)
from dataset.layouts import LAYOUT_FILE, NTU25, LayoutError, folder_record_text, read_folder_record
from dataset.processed import CONVERTING, MAX_COORDINATE, MAX_FRAME, non_finite_samples, split_paths


def sample_shape(layout):
    """The shape of one processed sample in ``layout``: C x 300 x V x M."""
    return (layout.channels, MAX_FRAME, layout.num_joints, layout.bodies)


@dataclass
class Sample:
    """One output sample: its name, 0-based label (None: the reader reads it) and part ('train'/'val')
    in each benchmark."""

    name: str
    label: object
    parts: dict


@dataclass
class Task:
    """One raw file to read: ``reader(*args)`` returns, per sample, (C x T' x V x M array, T) with
    T' = min(T, 300) in the layout's shape, or (array, T, label) for a Sample whose label is None.
    ``reader`` runs in worker processes, so it must be picklable (a module-level function)."""

    source: str
    reader: object
    args: tuple
    samples: list = field(default_factory=list)


class ConversionError(RuntimeError):
    """A raw file could not be read (and --skip-bad was not given), or the outputs could not be written."""


def write_temporary(path, payload, made):
    """Write ``payload`` under a temporary name beside ``path`` (appended to the list ``made``); returns it."""
    tmp = temp_path(path)
    made.append(tmp)
    with no_space_error(path), open(tmp, "wb") as f:
        f.write(payload)
    return tmp


def reserve(f, nbytes):
    """Extend the open file ``f`` by ``nbytes`` allocated on disk, so that a disk too small fails now.

    Where the file system cannot allocate ahead the extension stays sparse, and a full disk is reported
    by the writes that fill it.
    """
    start = f.seek(0, os.SEEK_END)
    f.truncate(start + nbytes)
    if nbytes and hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(f.fileno(), start, nbytes)
        except OSError as exc:
            if out_of_space(exc):
                raise


def write_rows(path, offset, rows):
    """Write the C-contiguous array ``rows`` into the file at ``path`` from byte ``offset``."""
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(rows)


def shrink_npy_rows(path, n_rows):
    """Cut a .npy file on disk to its first ``n_rows`` rows, rewriting the header in place."""
    with open(path, "r+b") as f:
        major, minor = np.lib.format.read_magic(f)
        if (major, minor) == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        offset = f.tell()
        header = repr(
            {
                "descr": np.lib.format.dtype_to_descr(dtype),
                "fortran_order": fortran,
                "shape": (n_rows,) + tuple(shape[1:]),
            }
        )
        start = 10 if major == 1 else 12
        room = offset - start - 1
        if len(header) > room:
            raise ValueError(f"{path}: no room to rewrite the .npy header")
        f.seek(start)
        f.write((header + " " * (room - len(header)) + "\n").encode("latin1"))
        f.truncate(offset + n_rows * int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize)


class PartWriter:
    """Writes one part (train/val) of one processed folder under temporary names; ``commit`` renames."""

    def __init__(self, folder, part, capacity, made, layout=NTU25):
        self.folder, self.part, self.capacity, self.count = folder, part, capacity, 0
        self.shape = sample_shape(layout)
        self.row_bytes = 4 * int(np.prod(self.shape))
        self.final = {
            kind: os.path.join(folder, f"{part}_{kind}") for kind in ("data_joint.npy", "num_frame.npy", "label.pkl")
        }
        self.tmp = {kind: temp_path(p) for kind, p in self.final.items()}
        made.extend(self.tmp.values())
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
            "fortran_order": False,
            "shape": (capacity,) + self.shape,
        }  # N x C x 300 x V x M
        with no_space_error(self.final["data_joint.npy"]), open(self.tmp["data_joint.npy"], "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            self.offset = f.tell()
            reserve(f, capacity * self.row_bytes)
        self.num_frame = np.zeros(capacity, dtype=np.int64)
        self.names, self.labels, self.digests = [], [], []

    def add(self, data, num_frame, samples):
        """Append normalised samples (n x C x 300 x V x M), their frame counts and Sample records."""
        n = len(samples)
        with no_space_error(self.final["data_joint.npy"]):
            write_rows(
                self.tmp["data_joint.npy"],
                self.offset + self.count * self.row_bytes,
                np.ascontiguousarray(data, dtype=np.float32),
            )  # n x C x 300 x V x M
        self.num_frame[self.count : self.count + n] = num_frame
        self.digests.extend(
            hashlib.blake2b(np.ascontiguousarray(x[:, : min(int(t), MAX_FRAME)]).tobytes(), digest_size=16).digest()
            for x, t in zip(data, num_frame)
        )
        self.names.extend(s.name for s in samples)
        self.labels.extend(int(s.label) for s in samples)
        self.count += n

    def finish(self):
        """Complete the temporary files (still under temporary names)."""
        if self.count < self.capacity:
            shrink_npy_rows(self.tmp["data_joint.npy"], self.count)
        with no_space_error(self.final["num_frame.npy"]), open(self.tmp["num_frame.npy"], "wb") as f:
            np.save(f, self.num_frame[: self.count])
        with no_space_error(self.final["label.pkl"]), open(self.tmp["label.pkl"], "wb") as f:
            pickle.dump((self.names, self.labels), f)

    def commit(self):
        for kind, tmp in self.tmp.items():
            os.replace(tmp, self.final[kind])


def repeated_samples(train, val):
    """(val name, train name) of each val sample of PartWriter `val` whose normalised frames are
    byte for byte those of a sample of `train` (the same recording in both parts of a benchmark)."""
    first = {}
    for name, digest in zip(train.names, train.digests):
        first.setdefault(digest, name)
    return [(name, first[digest]) for name, digest in zip(val.names, val.digests) if digest in first]


def _run_task(task):
    """Worker: ('ok', [(array, T), ...]) or ('bad', message naming the task's source) for one task.
    Any exception of the reader is the file's fault (a reader of a new format meeting a line it did
    not expect raises what it raises): a SkeletonFileError, or an OSError with a file name (open's),
    names its file already; any other (a read's, which has none) is prefixed with the task's source and,
    unless a ValueError or an OSError, its type."""
    try:
        return "ok", task.reader(*task.args)
    except SkeletonFileError as exc:
        return "bad", str(exc)
    except OSError as exc:
        return "bad", str(exc) if exc.filename else f"{task.source}: {exc}"
    except Exception as exc:
        message = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        return "bad", f"{task.source}: {message}"


def result_problem(result, sample, layout, num_class):
    """What is wrong with a reader's `result` for `sample` (see Task), or None.

    The checks every processed folder is opened with (dataset.processed), on the reader's output: the
    layout's numeric shape, 0..300 frames (a recording of none is skipped as having no body), finite
    coordinates within MAX_COORDINATE, an integer label below the class count. `convert` checks the
    coordinates again once normalised (centring can move one beyond the bound)."""
    expected = 2 if sample.label is not None else 3
    if not isinstance(result, tuple) or len(result) != expected:
        return f"the reader returned {type(result).__name__} {result!r:.60}, not a tuple of {expected}"
    array, n_frame, label = result[0], result[1], result[2] if expected == 3 else sample.label
    c, v, m = layout.channels, layout.num_joints, layout.bodies
    if (
        not isinstance(array, np.ndarray)
        or array.dtype.kind not in "iuf"
        or array.ndim != 4
        or (array.shape[0], *array.shape[2:]) != (c, v, m)
    ):
        found = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
        return f"its array is {found}, not numbers of {c} x frames x {v} x {m} ({layout.name})"
    if isinstance(n_frame, bool) or not isinstance(n_frame, (int, np.integer)) or n_frame < 0:
        return f"its frame count {n_frame!r} is not a count of frames"
    if array.shape[1] != min(int(n_frame), MAX_FRAME):
        return f"its array holds {array.shape[1]} frames, its frame count says {n_frame} (at most {MAX_FRAME} kept)"
    bad = first_bad_coordinate(array.reshape(1, -1))
    if bad is not None:
        return f"it holds a coordinate {float(bad[1]):g}: not finite or beyond +-{MAX_COORDINATE:g}"
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < num_class:
        return f"its label {label!r} is not an integer in 0..{num_class - 1}"
    return None


def task_problem(task, payload, layout, num_class):
    """What is wrong with what `task`'s reader returned (`payload`: one result per sample), naming the
    task's source and sample (`result_problem`), or None."""
    if not isinstance(payload, (list, tuple)) or len(payload) != len(task.samples):
        found = len(payload) if isinstance(payload, (list, tuple)) else type(payload).__name__
        return f"{task.source}: {len(task.samples)} samples expected, the reader gave {found}"
    problems = [
        f"{task.source}: sample {sample.name}: {problem}"
        for sample, result in zip(task.samples, payload)
        for problem in [result_problem(result, sample, layout, num_class)]
        if problem
    ]
    return "; ".join(problems) or None


def _batches(tasks, chunk):
    """Consecutive task lists holding about ``chunk`` samples each."""
    batch, size = [], 0
    for task in tasks:
        batch.append(task)
        size += len(task.samples)
        if size >= chunk:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def convert(
    tasks,
    out_folder,
    benchmarks,
    settings,
    *,
    num_class,
    dataset,
    layout=NTU25,
    workers=1,
    skip_bad=False,
    chunk=128,
    progress=True,
    already_skipped=(),
    subfolders=True,
):
    """Read, normalise and write ``tasks`` (in order) into ``out_folder/<benchmark>/``; returns a summary.

    With ``subfolders=False`` the one benchmark's processed folder is ``out_folder`` itself.  Every
    processed folder gets the record of ``layout``, ``num_class``, ``dataset`` and the protocol its
    benchmark name stands for (``xsub`` -> ``cross_subject``; none for other names).  Files that fail to
    parse stop the run with their error unless ``skip_bad``; samples with no body in any frame are
    always skipped with a warning.  Skipped files (with ``already_skipped``, lines found unreadable
    before the run) are listed in ``out_folder/skipped.txt``.  A part that ends up with no sample is
    written empty with a warning; a run that converts no sample at all is a ConversionError.
    """
    if not subfolders and len(benchmarks) != 1:
        raise ValueError(f"one benchmark goes straight into out_folder, got {benchmarks}")
    records = {b: folder_record_text(layout, num_class, dataset, folder_protocol(b)) for b in benchmarks}
    folder_of = {b: os.path.join(out_folder, b) if subfolders else out_folder for b in benchmarks}
    if subfolders and os.path.isfile(split_paths(out_folder, "train")[0]):
        above = os.path.dirname(os.path.abspath(out_folder))
        raise ConversionError(
            f"{out_folder} is itself a processed folder (train_data_joint.npy): --out-folder names the "
            f"folder above the benchmark folders ({', '.join(benchmarks)}), e.g. {above}"
        )
    source = settings.get("data_path")
    inside = [f for f in folder_of.values() if source and os.path.realpath(f) == os.path.realpath(source)]
    if inside:  # the arrays would land among the raw files, and the next conversion would trip on them
        raise ConversionError(
            f"the raw files' folder {source} is the processed folder {os.path.abspath(inside[0])} this conversion "
            "writes: choose an --out-folder whose benchmark folders are not the raw files' folder"
        )
    claims = [claim_folder(out_folder, "conversion")]  # also removes what killed conversions left there

    def release():
        for held in claims:
            held.release()

    targets = sorted({out_folder, *folder_of.values()})  # the folders this conversion writes into
    # a folder at a name this conversion renames a file onto (or anything but a folder where it writes one)
    # would stop the renames halfway, after all the work, with the earlier conversion's files half replaced
    finals = [os.path.join(out_folder, name) for name in ("skipped.txt", "settings.json")]
    for folder in folder_of.values():
        finals += [os.path.join(folder, LAYOUT_FILE), *split_paths(folder, "train"), *split_paths(folder, "val")]
    blocked = [(f, "a folder") for f in finals if os.path.isdir(f) and not os.path.islink(f)]
    blocked += [(f, "not a folder") for f in folder_of.values() if os.path.lexists(f) and not os.path.isdir(f)]
    if blocked:
        release()
        path, kind = blocked[0]
        wanted = "a file" if kind == "a folder" else "a folder"
        raise ConversionError(f"{path} is {kind}, where this conversion writes {wanted}: move it away first")
    for folder in targets:  # a run's files there would be rewritten
        held = [
            name
            for name in run_files(folder)
            if not (name == "settings.json" and "counts" in (folder_settings(folder) or {}))
        ]
        if held:
            release()
            if held == ["settings.json"] and folder_settings(folder) is None:  # a conversion's, damaged?
                raise ConversionError(
                    f"{os.path.join(folder, 'settings.json')} is unreadable, so whether a conversion or a training "
                    "or evaluation run wrote it cannot be told: remove it if a conversion did"
                )
            raise ConversionError(
                f"{folder} holds the files of a training or evaluation run ({', '.join(held)}); "
                "convert into a folder of its own"
            )
    problem = _other_data(out_folder, targets, dataset, layout, subfolders)
    if problem:
        release()
        raise ConversionError(
            f"{problem}, which this conversion of {dataset} would replace: choose another "
            "--out-folder, or remove that one first"
        )
    # the benchmark folders are claimed too (which creates them and removes what killed conversions left
    # there): a conversion into out_folder and another straight into one of its benchmark folders would
    # otherwise both run, the last to finish replacing the other's files
    try:
        for folder in sorted(set(folder_of.values()) - {out_folder}):
            claims.append(claim_folder(folder, "conversion"))
    except BaseException:
        release()
        raise
    earlier = sorted(f for f in set(folder_of.values()) if os.path.isfile(split_paths(f, "train")[0]))
    capacity = {(b, p): 0 for b in benchmarks for p in ("train", "val")}
    for task in tasks:
        for s in task.samples:
            for b in benchmarks:
                capacity[(b, s.parts[b])] += 1
    skipped, made = list(already_skipped), []
    pool = multiprocessing.Pool(workers) if workers > 1 else None
    try:
        writers = {(b, p): PartWriter(folder_of[b], p, cap, made, layout) for (b, p), cap in capacity.items()}
        bar = tqdm(total=sum(len(t.samples) for t in tasks), unit="sample", disable=not progress, file=sys.stdout)

        def submit(batch):
            return pool.imap(_run_task, batch, chunksize=4) if pool else map(_run_task, batch)

        def reject(source, message):  # bad input: an error, or with --skip-bad skipped and listed
            if not skip_bad:
                raise ConversionError(message + "\n(rerun with --skip-bad to skip bad files and samples)")
            tqdm.write(f"skipping bad input: {message}")
            skipped.append(f"{source}\tbad: {message}")

        cut = []  # samples longer than MAX_FRAME: their first MAX_FRAME frames are kept, as published
        converted = 0  # samples written (once each, whatever the number of benchmarks)
        turned = []  # samples standing upside down once normalised (normalize.upside_down)
        away = []  # samples whose x-axis pair step 4 of the normalisation turned over 90 degrees
        single = []  # samples of one frame: a motion stream of zeros
        batches = _batches(tasks, chunk)
        current = next(batches, None)
        pending = submit(current) if current else None
        while current:
            results = list(pending)
            following = next(batches, None)
            pending = submit(following) if following else None
            arrays, frames, kept, sources = [], [], [], []
            for task, (status, payload) in zip(current, results):
                problem = payload if status == "bad" else task_problem(task, payload, layout, num_class)
                if problem:
                    reject(task.source, problem)
                    continue
                for sample, result in zip(task.samples, payload):
                    array, n_frame = result[:2]
                    if sample.label is None:
                        sample = Sample(sample.name, result[2], sample.parts)
                    if not array.any():
                        tqdm.write(f"warning: skipping {sample.name}: no body in any frame")
                        skipped.append(f"{sample.name}\tno body in any frame")
                        continue
                    arrays.append(array)
                    frames.append(n_frame)
                    kept.append(sample)
                    sources.append(task.source)
            bar.update(sum(len(t.samples) for t in current))
            if kept:
                block = np.zeros((len(kept),) + sample_shape(layout), dtype=np.float32)  # n x C x 300 x V x M
                for i, array in enumerate(arrays):
                    block[i, :, : array.shape[1]] = array
                block, turn = normalize_and_turn(block, layout)
                beyond = np.zeros(len(kept), dtype=bool)  # centring can carry a coordinate beyond the bound
                beyond[non_finite_samples(block)] = True
                for i in np.flatnonzero(beyond):
                    reject(
                        sources[i],
                        f"{sources[i]}: sample {kept[i].name}: normalised, a coordinate reaches "
                        f"{float(np.abs(block[i]).max()):g}, beyond +-{MAX_COORDINATE:g}",
                    )
                frames = np.asarray(frames, dtype=np.int64)
                if beyond.any():
                    block, frames, turn = block[~beyond], frames[~beyond], turn[~beyond]
                    kept = [s for s, b in zip(kept, beyond) if not b]
                cut += [f"{s.name} ({int(t)} frames)" for s, t in zip(kept, frames) if t > MAX_FRAME]
                converted += len(kept)
                away += [s.name for s, degrees in zip(kept, turn) if degrees > 90]
                flags = upside_down(block, layout)
                turned += [] if flags is None else [s.name for s, up in zip(kept, flags) if up]
                single += [s.name for s, t in zip(kept, frames) if t < 2]
                for b in benchmarks:
                    for p in ("train", "val"):
                        idx = [i for i, s in enumerate(kept) if s.parts[b] == p]
                        if idx:
                            writers[(b, p)].add(block[idx], frames[idx], [kept[i] for i in idx])
            current = following
        bar.close()
        if not any(w.count for w in writers.values()):
            first = f" (the first: {skipped[0].replace(chr(9), ' ')})" if skipped else ""
            raise ConversionError(f"no sample was converted: {len(skipped)} skipped{first}; nothing was written")
        if cut:
            tqdm.write(
                f"warning: {len(cut)} recording(s) are longer than {MAX_FRAME} frames; only their first {MAX_FRAME} "
                f"are kept, as the published preprocessing keeps them (the first: {cut[0]})"
            )
        if single:
            tqdm.write(
                f"warning: {len(single)} recording(s) hold a single frame (the first: {single[0]}); their motion "
                f"stream, the differences of consecutive frames, is all zeros"
            )
        if 2 * len(turned) > converted:
            a, b = (layout.joints[j] for j in layout.z_axis)
            tqdm.write(
                f"warning: {len(turned)} of the {converted} samples stand upside down once normalised (the first: "
                f"{turned[0]}): the joints on the {a} side of the {a} -> {b} bone, which the normalisation turns "
                f"up, lie above the rest of the {layout.name} skeleton. Is the data's joint order {layout.name}'s? "
                f"(docs/small-data.md, 'The joint order must be the layout's')"
            )
        if 2 * len(away) > converted:
            a, b = (layout.joints[j] for j in layout.x_axis)
            tqdm.write(
                f"warning: {len(away)} of the {converted} samples had their {a} -> {b} vector turned more than 90 "
                f"degrees onto +x by the normalisation (the first: {away[0]}): their coordinates are a mirror image "
                f"of a sensor's (a left-handed frame: negate x before the import), the data's y axis points down "
                f"(a camera frame as OpenCV's, which 3-D pose lifters write: negate x and y), the people face away "
                f"from the sensor, or the layout's x_axis pair runs from right to left; any of these leaves many of "
                f"them tilted or upside down "
                f"(docs/small-data.md, '3-D coordinates: the frame the normalisation expects')"
            )
        repeated = {b: repeated_samples(writers[(b, "train")], writers[(b, "val")]) for b in benchmarks}
        for b, pairs in repeated.items():
            if pairs:
                val, train = pairs[0]
                tqdm.write(
                    f"warning: {folder_of[b]}: {len(pairs)} of its {writers[(b, 'val')].count} val samples are "
                    f"identical to a train sample (the first: {val} = {train}); a nearest-neighbour evaluation "
                    f"finds each of them in the training part"
                )
        for b in benchmarks:
            unseen = sorted(set(writers[(b, "val")].labels) - set(writers[(b, "train")].labels))
            if unseen and writers[(b, "train")].count:
                tqdm.write(
                    f"warning: {folder_of[b]}: val samples of {len(unseen)} class(es) that no train sample has "
                    f"(0-based labels {', '.join(map(str, unseen[:10]))}{', …' if len(unseen) > 10 else ''}); "
                    f"no classifier trained on this folder can predict them"
                )
        for b in benchmarks:
            few = writers[(b, "train")].count
            if dataset not in DATASETS and 0 < few < SMALL_MIN_SAMPLES:
                tqdm.write(
                    f"warning: {folder_of[b]} has {few} train sample(s); pretraining on a folder of {dataset} "
                    f"(the small-data preset) needs {SMALL_MIN_SAMPLES} or more, so pretrain_cmd.py will refuse "
                    f"it (a checkpoint trained elsewhere can still be evaluated on it)"
                )
        for (b, p), w in writers.items():
            if w.count == 0:
                tqdm.write(
                    f"warning: {folder_of[b]} has no {p} sample; its {p} files are written "
                    f"empty, and loading that part will fail"
                )
            w.finish()
        summary = dict(
            settings,
            dataset=dataset,
            layout=layout.name,
            num_class=num_class,
            counts={f"{b}/{p}" if subfolders else p: w.count for (b, p), w in writers.items()},
            skipped=len(skipped),
            longer_than_max_frame=len(cut),
            single_frame=len(single),
            upside_down=None if layout.trunk_sides() is None else len(turned),
            x_axis_turned_over_90=None if layout.channels == 2 else len(away),
            val_identical_to_train={b: len(pairs) for b, pairs in repeated.items()},
        )
        payloads = [(os.path.join(folder, LAYOUT_FILE), records[b].encode()) for b, folder in folder_of.items()]
        payloads += [
            (os.path.join(out_folder, "skipped.txt"), "".join(line + "\n" for line in skipped).encode()),
            (os.path.join(out_folder, "settings.json"), (json.dumps(summary, indent=2) + "\n").encode()),
        ]
        extras = {final: write_temporary(final, payload, made) for final, payload in payloads}
        for folder in folder_of.values():  # a kill among the renames below leaves it: the folder is refused
            with open(os.path.join(folder, CONVERTING), "w") as f:
                f.write(f"pid {os.getpid()} was replacing this folder's files\n")
        for w in writers.values():
            w.commit()
        for final, tmp in extras.items():
            os.replace(tmp, final)
        for folder in folder_of.values():
            os.unlink(os.path.join(folder, CONVERTING))
    except BaseException:
        for tmp in made:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        raise
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        release()
    for folder in earlier:  # as the published converters do, but said
        print(f"note: {folder} held an earlier conversion, which this one replaced")
    return summary


def _other_data(out_folder, folders, dataset, layout, subfolders):
    """What another data set's processed data in the folders a conversion writes into is (None without
    any): a layout.json or a conversion's settings.json recording another dataset; without a record (as
    the published tools write their folders), samples of another shape than `layout`'s; or (converting
    into `out_folder` itself) the benchmark subfolders of an earlier conversion."""
    records = {}
    for folder in folders:
        try:
            records[folder] = read_folder_record(folder)[2]
        except LayoutError:
            continue  # a broken record is replaced
        if records[folder] not in (None, dataset):
            return f"{folder} holds the processed data of {records[folder]} (its {LAYOUT_FILE})"
    for folder in folders:
        summary = folder_settings(folder) or {}
        if "counts" in summary and summary.get("dataset") not in (None, dataset):
            return f"{folder} holds the processed data of {summary['dataset']} (its settings.json)"
    for folder in folders:
        train = split_paths(folder, "train")[0]
        if folder in records and records[folder] is None and os.path.isfile(train):
            try:
                shape = np.load(train, mmap_mode="r").shape
            except (OSError, ValueError):
                continue  # a broken array is replaced
            if tuple(shape[1:]) != sample_shape(layout):
                return (
                    f"{folder} holds processed data of samples {' x '.join(map(str, shape[1:]))}, not "
                    f"{layout.name}'s, and no dataset's name (a published tool's folder, without {LAYOUT_FILE}?)"
                )
    nested = [] if subfolders else stale_benchmarks(out_folder, ())
    if nested:
        return f"{out_folder} holds the processed folders of an earlier conversion ({', '.join(nested)})"
    return None


def _marked_by_us(folder):
    """Whether the .converting marker in `folder` is this process's (not an earlier stopped run's)."""
    try:
        with open(os.path.join(folder, CONVERTING)) as f:
            return f.read().startswith(f"pid {os.getpid()} ")
    except OSError:
        return False


def conversion_parser(description, source_flag, source_help, out_help):
    """A converter's parser with its source flag (required), --out-folder and `add_conversion_options`;
    read it with `parse_conversion`."""
    parser = argparse.ArgumentParser(description=description)
    # the published converters' spellings (--data_path, --out_folder) are accepted too
    spellings = dict.fromkeys([source_flag, "--" + source_flag[2:].replace("-", "_")])
    parser.add_argument(*spellings, required=True, type=os.path.expanduser, help=source_help)
    parser.add_argument("--out-folder", "--out_folder", required=True, type=os.path.expanduser, help=out_help)
    add_conversion_options(parser)
    parser.source_flag = source_flag
    return parser


def parse_conversion(parser, argv=None):
    """The arguments of a `conversion_parser`; an --out-folder that is the source itself is a usage error."""
    args = parser.parse_args(argv)
    if not args.out_folder:
        parser.error("--out-folder is empty")
    source = getattr(args, parser.source_flag[2:].replace("-", "_"))
    if os.path.realpath(args.out_folder) == os.path.realpath(source):
        parser.error(f"--out-folder must not be the {parser.source_flag} {source}")
    return args


def raw_files(data_path, what, suffix, hint_folder="the one holding them"):
    """The sorted names of the files of `data_path` (not hidden); SystemExit naming it when it is not a
    folder (an archive: extract it first) or holds no file ending in `suffix` (`what`: the files' kind)."""
    if not os.path.isdir(data_path):
        hint = " (extract the archive first)" if re.search(r"\.(tar|tgz|tar\.gz|zip|rar|7z)$", data_path) else ""
        raise SystemExit(f"error: --data-path {data_path} is not a folder{hint}")
    entries = sorted(n for n in os.listdir(data_path) if not n.startswith("."))
    # an entry named as a recording that is no file (a folder, a broken link) is kept: its reader names it
    names = [n for n in entries if n.endswith(suffix) or os.path.isfile(os.path.join(data_path, n))]
    if not any(n.endswith(suffix) for n in names):
        folders = [n for n in entries if n not in names]
        hint = f"; it holds the folders {', '.join(folders[:3])}: point --data-path at {hint_folder}" if folders else ""
        raise SystemExit(f"error: no {what} files in {data_path}{hint}")
    return names


def parse_names(data_path, names, parse, skip_bad):
    """([(name, *parse(name))], skipped lines) of file `names`: a name `parse` refuses (ValueError) is an
    error (SystemExit) unless ``skip_bad``, then listed for skipped.txt."""
    kept, skipped = [], []
    for name in names:
        try:
            kept.append((name, *parse(name)))
        except ValueError as exc:
            if not skip_bad:
                raise SystemExit(f"error: {data_path}: {exc}\n(rerun with --skip-bad to skip it)") from None
            print(f"skipping: {exc}")  # names the file by repr(), which escapes bytes that are not UTF-8
            path = os.path.join(data_path, name).encode("utf-8", "surrogateescape")  # os.listdir's surrogates
            skipped.append(f"{path.decode('utf-8', 'backslashreplace')}\tfile name: {exc}")
    return kept, skipped


def at_least_one(text):
    """argparse type of a count flag: an integer >= 1 (otherwise a usage error naming the flag and the value)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, found {text!r}")
    return value


def add_conversion_options(parser):
    """The converters' shared flags: --workers, --skip-bad, --chunk, --no-progress (see `run_conversion`);
    --workers and --chunk below 1 are usage errors (exit status 2) before any work."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1  # a job's own
    parser.add_argument("--workers", type=at_least_one, default=min(8, cpus), help="parsing processes")
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip bad files: unreadable, malformed, or with non-finite or absurd values (listed in OUT/skipped.txt)",
    )
    parser.add_argument("--chunk", type=at_least_one, default=128, help="samples normalised and written at a time")
    parser.add_argument("--no-progress", action="store_true")


def run_conversion(tasks, out_folder, benchmarks, settings, args, **options):
    """The converters' command-line run: print the settings, `convert`, print the counts.

    ``args`` holds the flags of `add_conversion_options`; ``options`` are `convert`'s other keywords
    (num_class, dataset, layout, already_skipped, subfolders).  A bad file (without --skip-bad), an output
    folder in use, an unwritable or full disk, or a run that converts nothing ends the program with its
    error (exit status 1). The settings printed and recorded are `settings` followed by the run's own:
    the output folder, the flags of `add_conversion_options` and the frame cap.
    """
    settings = dict(
        settings,
        out_folder=os.path.abspath(out_folder),
        workers=args.workers,
        skip_bad=args.skip_bad,
        chunk=args.chunk,
        max_frame=MAX_FRAME,
    )
    for key, value in settings.items():
        print(f"{key}: {value}")
    try:
        summary = convert(
            tasks,
            out_folder,
            benchmarks,
            settings,
            workers=args.workers,
            skip_bad=args.skip_bad,
            chunk=args.chunk,
            progress=not args.no_progress,
            **options,
        )
    except (ConversionError, FolderInUseError, OSError) as exc:  # bad input, a folder in use, a full disk
        raise SystemExit(f"error: {exc}") from None
    except KeyboardInterrupt:
        mixed = [root for root, _, names in os.walk(out_folder) if CONVERTING in names and _marked_by_us(root)]
        if mixed:
            print(f"interrupted while replacing the files of {', '.join(mixed)}: convert again", file=sys.stderr)
        else:
            print(f"interrupted: {out_folder} holds what it held before this conversion", file=sys.stderr)
        raise SystemExit(130) from None
    for key, count in summary["counts"].items():
        print(f"{key}: {count} samples")
    print(f"skipped: {summary['skipped']} (see {os.path.join(out_folder, 'skipped.txt')})")
    if options.get("subfolders", True):
        for name in stale_benchmarks(out_folder, benchmarks):
            print(
                f"warning: {os.path.join(out_folder, name)} holds a processed folder of an earlier conversion, "
                f"not rewritten by this one (settings.json lists {', '.join(benchmarks)})"
            )
    return summary


def stale_benchmarks(out_folder, benchmarks):
    """The subfolders of `out_folder`, other than `benchmarks`, that hold a processed folder (sorted)."""
    return sorted(
        name
        for name in os.listdir(out_folder)
        if name not in benchmarks and os.path.isfile(split_paths(os.path.join(out_folder, name), "train")[0])
    )
