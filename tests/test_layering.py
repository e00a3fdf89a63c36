"""The packages' order (ARCHITECTURE.md, "Layers"): each imports only the packages listed above it there;
and every library the product imports is declared in requirements.txt and pyproject.toml."""

import ast
import importlib.metadata
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY_POINTS = ("pretrain_cmd", "action_classification", "knn_eval")
# What each part of the project may import of the project (ARCHITECTURE.md, "Layers").
ALLOWED = {
    "dataset": set(),
    "moco": {"dataset"},
    "feeder": {"dataset"},
    "options": {"dataset", "moco", "feeder"},
    "engine": {"dataset", "moco", "feeder", "options"},
    "data_gen": {"dataset"},
    "tools": {"dataset", "moco", "feeder", "options", "engine"},
    "scripts": {"dataset", "moco", "feeder", "options", "engine", "data_gen", "tools"},
    "entry points": {"options", "engine"},
}
OURS = set(ALLOWED) - {"entry points"} | set(ENTRY_POINTS)


# The one file of moco that may import dataset (the published skeleton as the published builder's default).
MOCO_READS_DATASET = os.path.join("moco", "builder.py")


def imported(path):
    """The top-level names of the modules a Python file imports (at any depth of its code), also through
    importlib.import_module("...") or __import__("...") of a literal name."""
    with open(path) as f:
        tree = ast.parse(f.read(), filename=path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names.add(node.args[0].value.split(".")[0])
    return names


def modules(root=ROOT):
    """(part, path) of every Python file of the product, in subpackages too."""
    for part in ALLOWED:
        if part == "entry points":
            for name in ENTRY_POINTS:
                yield part, os.path.join(root, name + ".py")
            continue
        for folder, subfolders, files in sorted(os.walk(os.path.join(root, part))):
            subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    yield part, os.path.join(folder, name)


def allowed(part, path):
    """What the file `path` of `part` may import of the project."""
    if part == "moco" and os.path.relpath(path, ROOT) != MOCO_READS_DATASET:
        return set()
    return ALLOWED[part]


@pytest.mark.parametrize("part, path", list(modules()), ids=lambda v: os.path.relpath(v, ROOT) if "/" in str(v) else v)
def test_each_module_imports_only_the_layers_below(part, path):
    wrong = (imported(path) & OURS) - allowed(part, path) - ({part} if part != "entry points" else set())
    assert not wrong, (
        f"{os.path.relpath(path, ROOT)} ({part}) imports {sorted(wrong)}; it may import {sorted(allowed(part, path))}"
    )


def test_every_package_is_placed():
    packages = {name for name in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, name, "__init__.py"))}
    assert packages - {"tests"} == set(ALLOWED) - {"entry points"}


def test_every_top_level_python_file_is_an_entry_point():
    # a new top-level script would otherwise be checked by nothing
    scripts = {name[:-3] for name in os.listdir(ROOT) if name.endswith(".py")}
    assert scripts == set(ENTRY_POINTS)


@pytest.mark.parametrize(
    "code",
    [
        "def f():\n    from engine.pretrain import run_pretraining\n",
        "import importlib\nloop = importlib.import_module('engine.pretrain')\n",
        "loop = __import__('engine.pretrain')\n",
    ],
)
def test_the_check_catches_a_wrong_import(tmp_path, code):
    bad = tmp_path / "m.py"
    bad.write_text(code)
    assert "engine" in imported(str(bad))


def test_subpackages_and_narrower_files_are_checked(tmp_path):
    assert allowed("moco", os.path.join(ROOT, "moco", "model.py")) == set()
    assert allowed("moco", os.path.join(ROOT, "moco", "builder.py")) == {"dataset"}
    # a file in a subfolder of a package is found by the walk, and belongs to the package
    (tmp_path / "moco" / "extra").mkdir(parents=True)
    (tmp_path / "moco" / "extra" / "hook.py").write_text("import engine\n")
    found = [(part, os.path.relpath(path, tmp_path)) for part, path in modules(str(tmp_path)) if part == "moco"]
    assert found == [("moco", os.path.join("moco", "extra", "hook.py"))]


def declared(text):
    """The distribution names (lower case) of requirement lines such as 'scikit-learn>=1.2  # why'."""
    names = set()
    for line in text.splitlines():
        match = re.match(r'\s*"?([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:[<>=!~;\[]|"|$)', line.split("#")[0])
        if match:
            names.add(match.group(1).lower())
    return names


def test_declared_reads_requirement_lines():
    text = 'torch>=2.3\n# a comment\n\nscikit-learn>=1.2  # why\n    "tqdm>=4.64",  # why\nnumpy\n'
    assert declared(text) == {"torch", "scikit-learn", "tqdm", "numpy"}


def test_every_library_the_product_imports_is_declared():
    # a library installed only as another's dependency would vanish with a version of that other
    third_party = set()
    for _, path in modules():
        third_party |= imported(path) - OURS - set(sys.stdlib_module_names) - {"__future__"}
    distributions = importlib.metadata.packages_distributions()
    needed = {name: {d.lower() for d in distributions.get(name, [name])} for name in third_party}
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        in_requirements = declared(f.read())
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        dependencies = re.search(r"^dependencies = \[(.*?)^\]", f.read(), re.S | re.M)
    in_pyproject = declared(dependencies.group(1))
    for where, names in (("requirements.txt", in_requirements), ("pyproject.toml's dependencies", in_pyproject)):
        missing = sorted(module for module, dists in needed.items() if not dists & names)
        assert not missing, f"the product imports {missing}, which {where} does not list"
    assert in_requirements == in_pyproject
