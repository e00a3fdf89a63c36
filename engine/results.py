"""Evaluation results: one JSON line per result in a results file (`--results`, default
results/results.jsonl), read back by the report (tools/report.py) and the benchmark scripts.

A record holds stage ('linear', 'semi', 'transfer', 'knn', or 'baseline' for the scripts' no-learning
baselines), dataset, protocol, view ('joint', 'motion', 'bone', 'all', or 'fusion' for the
three-stream score), metric ('top1'), value (percent), checkpoint (None for a random encoder), preset,
settings (the run's record) and date, plus seed, probe, data_ratio, top5 (not over 5 classes or fewer,
where it is 100 by definition), epoch, C, k and pretrain_dataset where they apply. An SGD probe's
value is the best of its validations (as published), chosen for each view and the fusion on its own;
`epoch` says which, `last_top1` the last validation's.
"""

import datetime
import json
import logging
import math
import numbers
import os

from dataset.files import append_lines, json_line, write_text
from options.settings import to_dict

log = logging.getLogger(__name__)

RESULT = "result.jsonl"  # an evaluation's records (a results file of its own), in its run folder once it finished
TEXT_FIELDS = ("stage", "dataset", "protocol", "view", "metric")


def new_record(stage, dataset, protocol, view, value, **extra):
    """A top-1 record dated now (UTC); None values of `extra` are left out."""
    record = dict(
        stage=stage,
        dataset=dataset,
        protocol=protocol,
        view=view,
        metric="top1",
        value=float(value),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat("T", "seconds"),
    )
    record.update({k: v for k, v in extra.items() if v is not None})
    return record


def make_record(settings, view, value, **extra):
    """The record of one result of an evaluation run with EvalSettings `settings`."""
    run = settings.run
    return new_record(
        settings.stage,
        settings.data.dataset,
        settings.data.protocol,
        view,
        value,
        checkpoint=os.path.realpath(run.pretrained) if run.pretrained else None,  # one name whatever the cwd or links
        preset=settings.preset,
        seed=run.seed,
        pretrain_dataset=run.pretrain_dataset,
        pretrain_cmd_weight=run.pretrain_cmd_weight,
        run=os.path.abspath(run.checkpoint_path),
        settings=to_dict(settings),
        **extra,
    )


def append_results(path, records, again=False):
    """Append `records` (one evaluation's) to the results file `path`, all in one write or none
    (dataset.files.append_lines), then write them to `result.jsonl` in their run folder, in the same
    format: a run folder holding one is a finished evaluation (the scripts' RESUME=1 skips it).

    `again`: the records of a run stopped after its last epoch, recorded on its resume; if it was stopped
    between the two writes, the results file holds them already (`_held`) and they are not appended twice.
    Returns whether they were appended.
    """
    appended = not (again and _held(path, records))
    if appended:
        append_lines(path, records)
    if records and records[0].get("run"):  # an evaluation's (a baseline's records have no run folder)
        write_text(os.path.join(records[0]["run"], RESULT), "".join(json_line(r) for r in records))
    return appended


def _held(path, records):
    """Whether the results file `path` holds every one of `records`: the same run folder, view, value,
    epoch and seed (not the date); lines that are no record are passed over."""

    def key(record):
        return tuple(record.get(k) for k in ("run", "view", "value", "epoch", "seed"))

    held = set()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    held.add(key(json.loads(line)))
                except (ValueError, AttributeError, TypeError):  # a fragment, JSON that is no object, a list
                    continue
    except FileNotFoundError:
        return False
    return all(key(record) in held for record in records)


def _check(record, where):
    """Raise ValueError naming `where` unless `record` has what the report reads, of the right types."""
    missing = {*TEXT_FIELDS, "value"} - set(record)
    if missing:
        raise ValueError(f"{where}: record lacks {', '.join(sorted(missing))}")
    wrong = [k for k in TEXT_FIELDS if not isinstance(record[k], str)]
    if wrong:
        raise ValueError(f"{where}: {', '.join(wrong)} must be text, found {[record[k] for k in wrong]}")
    for key in ("value", "data_ratio", "pretrain_cmd_weight"):
        value = record.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
        ):
            raise ValueError(f"{where}: {key} must be a finite number, found {value!r}")
    for key in ("seed", "k"):
        value = record.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
            raise ValueError(f"{where}: {key} must be an integer, found {value!r}")
    for key in ("checkpoint", "probe", "pretrain_dataset"):
        if not isinstance(record.get(key, ""), (str, type(None))):
            raise ValueError(f"{where}: {key} must be text, found {record[key]!r}")
    if record["stage"] == "semi" and record.get("data_ratio") is None:
        raise ValueError(f"{where}: a semi-supervised record needs its data_ratio")


def load_results(paths):
    """All records of the JSON-lines files `paths`, in file order.

    A line cut short by an interrupted append (the last line without its newline, or a line that begins a
    record but does not parse) is skipped with a warning naming the file and line; any other line that
    is not a record of the expected fields and types is a ValueError naming them.
    """
    records = []
    for path in paths:
        try:
            records += _read_records(path)
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: not a text file of JSON lines (byte {exc.start} is not UTF-8)") from None
    return records


def _read_records(path):
    """The records of one JSON-lines file (see `load_results`)."""
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                if not line.endswith("\n") or line.startswith("{"):
                    log.warning(
                        "%s, line %d: skipped, a record cut short by an interrupted append (%s)", path, number, exc
                    )
                    continue
                raise ValueError(f"{path}, line {number}: not a JSON record ({exc})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}, line {number}: not a JSON object")
            _check(record, f"{path}, line {number}")
            records.append(record)
    return records
