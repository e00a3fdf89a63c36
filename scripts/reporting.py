"""What the experiment scripts' report steps share: mean ± std over seeds, reading a run's settings,
and publishing a summary as OUT.json and OUT.md."""

import json
import statistics
import sys

from dataset.files import check_writable, write_text
from options.settings import flatten


def stats(values):
    """Mean, sample standard deviation (None for one value: unknown) and the values themselves."""
    values = [float(v) for v in values]
    return {
        "mean": statistics.mean(values),
        "std": statistics.stdev(values) if len(values) > 1 else None,
        "per_seed": values,
    }


def over_seeds(seeds, spread="std"):
    """'mean ± SPREAD over seeds 0, 1, 2', or 'seed 0 (one run: no spread)' for a table's header."""
    if len(seeds) == 1:
        return f"seed {seeds[0]} (one run: no spread)"
    return f"mean ± {spread} over seeds {', '.join(map(str, seeds))}"


def cell(s, sign=""):
    """'mean ± std' of `stats` ('mean' alone for one seed, whose spread is unknown); `sign` '+' signs the mean."""
    mean = f"{s['mean']:{sign}.1f}"
    return mean if len(s["per_seed"]) == 1 else f"{mean} ± {s['std']:.1f}"


def run_settings(path):
    """The flat settings of a run's settings.json (the record's parts merged); ValueError naming the file
    when it is not a JSON object."""
    with open(path) as f:
        try:
            record = json.load(f)
        except ValueError as exc:
            raise ValueError(f"{path}: not JSON ({exc})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path}: expected a run's settings record, found {type(record).__name__}")
    return flatten(record)


def publish_summary(out, build, render, prog):
    """`build()` the summary, write it as OUT.json and `render(summary)` as OUT.md (atomically), print the
    markdown. Returns the exit status: 1, with the error, when the runs' files cannot make the summary."""
    try:
        summary = build()
        text = render(summary)
        for path in (out + ".json", out + ".md"):  # both or neither: a pair half updated would disagree
            check_writable(path, "--out")
    except (OSError, ValueError, KeyError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    write_text(out + ".json", json.dumps(summary, indent=2) + "\n")
    write_text(out + ".md", text + "\n")
    print(text)
    print(f"written to {out}.json and {out}.md")
    return 0
