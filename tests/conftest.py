"""Shared test set-up: torch on few threads (2-core CI), and the fixtures several packages' tests use.

Tests are arranged by the package they check (tests/<package>/); the slowest end-to-end
runs (the demo, several pretrainings or processes) are marked `slow` (`python -m pytest -m "not slow" tests`
leaves them out).
"""

import hashlib
import os
import re

import pytest
import torch

from tests.helpers import write_processed

torch.set_num_threads(min(2, torch.get_num_threads()))

# The scripts' variables in the caller's shell (RESUME=1 after a sweep, DEVICE, BENCH_*, …) would change
# what the script tests run, which set the ones they need themselves.
SCRIPT_VARIABLES = re.compile(
    r"(BENCH|DEMO)_\w+|RESUME|FRESH|DEVICE|WORKERS|NPROC|DRY_RUN|MAX_JOBS|SEEDS|VIEWS|RATIOS|WORK_DIR|"
    r"RESULTS_DIR|PYTHON|GENDATA_WORKERS|NTU60_RAW|NTU60_MISSING|NTU120_RAW|NTU120_MISSING|PKU_RAW"
)
for name in [n for n in os.environ if SCRIPT_VARIABLES.fullmatch(n)]:
    del os.environ[name]


@pytest.fixture(autouse=True)
def leaves_the_default_results_file_alone():
    """A test that runs an evaluation without --results would append to the checkout's
    results/results.jsonl, which `python -m tools.report` reads by default: fail it."""
    path = os.path.join("results", "results.jsonl")

    def state():
        return os.stat(path).st_size if os.path.exists(path) else None

    before = state()
    yield
    assert state() == before, f"the test wrote to {os.path.abspath(path)}; give its evaluations --results"


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest, and steadiest on a shared 2-core machine, on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def processed():
    """`write_processed`, for tests that need a processed folder."""
    return write_processed


@pytest.fixture
def trained_epochs(monkeypatch):
    """`watch(state)`: from then on, a list of (epoch, whether the model held `state` as it began) of every
    epoch engine.pretrain trains, so that a test can tell a resume from a restart with the same seed."""
    from engine import pretrain
    from engine.distributed import unwrap

    def watch(state):
        seen, train_one_epoch = [], pretrain.train_one_epoch

        def spy(model, loader, optimizer, epoch, *args, **kwargs):
            held = unwrap(model).state_dict()
            seen.append((epoch, all(torch.equal(held[k], v) for k, v in state.items())))
            return train_one_epoch(model, loader, optimizer, epoch, *args, **kwargs)

        monkeypatch.setattr(pretrain, "train_one_epoch", spy)
        return seen

    return watch


@pytest.fixture(scope="session")
def sha256():
    """The SHA-256 hex digest of a file's bytes."""

    def digest(path):
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    return digest
