"""The packages' order (ARCHITECTURE.md): each imports only the packages below it."""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY_POINTS = ("pretrain_cmd", "action_classification", "knn_eval")
# What each part of the project may import of the project (ARCHITECTURE.md, "Layers").
ALLOWED = {
    "dataset": set(),
    "moco": {"dataset"},
    "feeder": {"dataset"},
    "options": {"dataset", "moco"},
    "engine": {"dataset", "moco", "feeder", "options"},
    "data_gen": {"dataset"},
    "tools": {"dataset", "moco", "feeder", "options", "engine"},
    "scripts": {"dataset", "moco", "feeder", "options", "engine", "data_gen", "tools"},
    "entry points": {"options", "engine"},
}
OURS = set(ALLOWED) - {"entry points"} | set(ENTRY_POINTS)


def imported(path):
    """The top-level names of the modules a Python file imports (at any depth of its code)."""
    with open(path) as f:
        tree = ast.parse(f.read(), filename=path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def modules():
    """(part, path) of every Python file of the product."""
    for part in ALLOWED:
        if part == "entry points":
            for name in ENTRY_POINTS:
                yield part, os.path.join(ROOT, name + ".py")
            continue
        for name in sorted(os.listdir(os.path.join(ROOT, part))):
            if name.endswith(".py"):
                yield part, os.path.join(ROOT, part, name)


@pytest.mark.parametrize("part, path", list(modules()), ids=lambda v: os.path.relpath(v, ROOT) if "/" in str(v) else v)
def test_each_module_imports_only_the_layers_below(part, path):
    wrong = (imported(path) & OURS) - ALLOWED[part] - ({part} if part != "entry points" else set())
    assert not wrong, (
        f"{os.path.relpath(path, ROOT)} ({part}) imports {sorted(wrong)}; it may import {sorted(ALLOWED[part])}"
    )


def test_every_package_is_placed():
    packages = {name for name in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, name, "__init__.py"))}
    assert packages - {"tests"} == set(ALLOWED) - {"entry points"}


def test_the_check_catches_a_wrong_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from engine.pretrain import run_pretraining\n")
    assert "engine" in imported(str(bad))
