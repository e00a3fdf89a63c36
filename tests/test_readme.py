"""The README is a guide for a researcher arriving cold: at most 12,000 characters, and every file of this
repository it names in backticks exists."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("scripts", "docs", "data_gen", "dataset", "options", "engine", "tools", "moco", "feeder")


def _readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def test_the_readme_stays_within_12000_characters():
    assert len(_readme()) <= 12000


def test_every_file_the_readme_names_exists():
    named = re.findall(rf"`((?:{'|'.join(PACKAGES)})/[\w./-]+?)`", _readme())
    assert named  # the pattern finds the files it is meant to (docs/, scripts/, …)
    missing = [path for path in named if not os.path.exists(os.path.join(ROOT, path))]
    assert not missing, missing
