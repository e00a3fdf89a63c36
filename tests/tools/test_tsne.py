"""Pictures of exported features: `python -m tools.tsne` on a knn_eval.py --save-features file."""

import os

import numpy as np
import pytest

from engine.evaluate import save_features
from tools import tsne


@pytest.fixture
def export(tmp_path):
    """A feature export as knn_eval.py --save-features writes it: 12 train, 6 val samples of 3 classes."""
    rng = np.random.default_rng(0)

    def part(n, prefix):
        labels = np.arange(n) % 3
        features = (rng.normal(size=(n, 16)) + 3 * labels[:, None]).astype(np.float32)
        return features, labels.astype(np.int64), [f"{prefix}{i:03d}" for i in range(n)]

    path = tmp_path / "features.npz"
    save_features(str(path), "joint", "c.pth.tar", part(12, "train"), part(6, "val"))
    return path


@pytest.mark.slow  # t-SNE and a TensorBoard export through the entry point
def test_tsne_picture_and_projector_export(export, tmp_path, capsys):
    pictures = tmp_path / "pictures"
    assert tsne.main(["--features", str(export), "--out", str(pictures), "--part", "train"]) == 0
    assert (pictures / "tsne_train.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {pictures / 'tsne_train.png'} and {pictures / 'projector' / 'train'}" in capsys.readouterr().out
    # the other part beside it: each part's projector export is a run of its own (it replaced the first)
    assert tsne.main(["--features", str(export), "--out", str(pictures), "--part", "val"]) == 0
    for part, count in (("train", 12), ("val", 6)):
        found = {
            name: os.path.join(d, name) for d, _, files in os.walk(pictures / "projector" / part) for name in files
        }
        assert {"tensors.tsv", "metadata.tsv", "projector_config.pbtxt"} <= set(found)
        assert len(open(found["tensors.tsv"]).read().splitlines()) == count
    features, labels, names = tsne.load_features(str(export), "val")
    assert features.shape == (6, 16) and list(labels) == [0, 1, 2, 0, 1, 2] and names[0] == "val000"


def test_subsample_and_a_file_that_is_not_an_export(export, tmp_path, capsys):
    assert list(tsne.subsample(5, 10, seed=0)) == [0, 1, 2, 3, 4]
    chosen = tsne.subsample(100, 7, seed=1)
    assert len(chosen) == 7 and list(chosen) == sorted(set(chosen)) and list(chosen) == list(tsne.subsample(100, 7, 1))
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    assert tsne.main(["--features", str(other), "--out", str(tmp_path / "out")]) == 1  # bad data, one line
    err = capsys.readouterr().err
    assert err.startswith(
        f"python -m tools.tsne: error: {other}: not a feature export with val_features/_labels/_names"
    )
    assert "usage:" not in err and len(err.splitlines()) == 1
    assert tsne.main(["--features", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "out")]) == 1
    assert "missing.npz: not a feature export" in capsys.readouterr().err
    (tmp_path / "cut.npz").write_bytes(export.read_bytes()[:300])  # a copy cut short: no zip directory
    assert tsne.main(["--features", str(tmp_path / "cut.npz"), "--out", str(tmp_path / "out")]) == 1
    assert "cut.npz: not a feature export" in capsys.readouterr().err
    (tmp_path / "empty.npz").write_bytes(b"")  # what a write stopped at once leaves
    assert tsne.main(["--features", str(tmp_path / "empty.npz"), "--out", str(tmp_path / "out")]) == 1
    assert "empty.npz: not a feature export" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SystemExit) as stop:
        tsne.main(["--features", str(other), "--out", str(tmp_path / "afile" / "x")])
    assert stop.value.code == 2 and f"{tmp_path}/afile is a file, not a folder" in capsys.readouterr().err


def test_too_few_points_for_t_sne_are_errors(export, tmp_path, capsys):
    for flags, message in [
        (["--max-points", "2"], "--max-points must be at least 3, found 2"),
        (["--max-points", "0"], "--max-points must be at least 3, found 0"),
    ]:
        with pytest.raises(SystemExit) as stop:
            tsne.main(["--features", str(export), "--out", str(tmp_path / "out"), *flags])
        assert stop.value.code == 2 and message in capsys.readouterr().err
    for seed in (-1, 2**32):  # scikit-learn's t-SNE takes 32-bit seeds
        with pytest.raises(SystemExit) as stop:
            tsne.main(["--features", str(export), "--out", str(tmp_path / "out"), "--seed", str(seed)])
        assert stop.value.code == 2 and f"--seed must be from 0 to 4294967295, found {seed}" in capsys.readouterr().err
    # the largest seed let through is one scikit-learn takes
    points = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    tsne.tsne_plot(points, np.arange(8) % 2, str(tmp_path / "largest_seed.png"), seed=2**32 - 1)
    assert (tmp_path / "largest_seed.png").stat().st_size > 0
    broken = tmp_path / "nan.npz"  # features of an encoder with NaN weights: named, not embedded
    features = np.ones((4, 4), np.float32)
    features[2, 1] = np.nan
    save_features(str(broken), "joint", "c.pth.tar", *[(features, np.arange(4), ["a", "b", "c", "d"])] * 2)
    assert tsne.main(["--features", str(broken), "--out", str(tmp_path / "out")]) == 1
    assert (
        capsys.readouterr().err
        == f"python -m tools.tsne: error: {broken}: val_features hold NaN or inf in 1 of 4 rows, the first 'c'\n"
    )
    two = tmp_path / "two.npz"
    part = (np.zeros((2, 4), np.float32), np.array([0, 1]), ["a", "b"])
    save_features(str(two), "joint", "c.pth.tar", part, part)
    assert tsne.main(["--features", str(two), "--out", str(tmp_path / "out")]) == 1  # the file's fault
    assert "t-SNE needs 3 samples or more; its val part has 2" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_output_that_cannot_be_written_is_found_before_the_t_sne(export, tmp_path, capsys, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("t-SNE computed for a picture with no place to go")

    monkeypatch.setattr(tsne, "tsne_plot", no_work)
    out = "/proc/cmd-tsne-test"  # no folder can be made there, not even by root
    assert tsne.main(["--features", str(export), "--out", out, "--part", "train"]) == 1
    assert f"--out {out}/tsne_train.png: cannot write there" in capsys.readouterr().err


def test_malformed_exports_are_named_before_the_t_sne(tmp_path, capsys):
    rng = np.random.default_rng(0)
    good = dict(
        val_features=rng.normal(size=(8, 4)), val_labels=np.arange(8) % 2, val_names=[f"v{i}" for i in range(8)]
    )
    for change, found in [
        (dict(val_features=np.zeros(8)), "val_features: expected N x D real values, found float64 of shape (8,)"),
        (
            dict(val_features=np.zeros((8, 0))),
            "val_features: expected N x D real values, found float64 of shape (8, 0)",
        ),
        (dict(val_features=np.zeros((8, 4), complex)), "expected N x D real values, found complex128"),
        (dict(val_features=np.zeros((3, 4))), "val_labels: expected 3 integer values, found int64 of shape (8,)"),
        (dict(val_labels=np.arange(8) / 2), "val_labels: expected 8 integer values, found float64 of shape (8,)"),
        (dict(val_labels=np.zeros((8, 1), int)), "val_labels: expected 8 integer values, found int64 of shape (8, 1)"),
        (dict(val_names=["a", "b"]), "val_names: expected 8 values, found <U1 of shape (2,)"),
        # every row the same (a collapsed encoder): scikit-learn's t-SNE ended in a segmentation fault
        (dict(val_features=np.zeros((8, 4))), "the 8 val features drawn are one and the same vector"),
        (dict(val_features=np.tile(rng.normal(size=(1, 4)), (8, 1))), "are one and the same vector"),
    ]:
        path = tmp_path / "f.npz"
        np.savez(path, **{**good, **change})
        assert tsne.main(["--features", str(path), "--out", str(tmp_path / "out")]) == 1
        err = capsys.readouterr().err
        assert found in err and len(err.splitlines()) == 1, err
    np.save(tmp_path / "f.npy", good["val_features"])  # an array, not an export
    assert tsne.main(["--features", str(tmp_path / "f.npy"), "--out", str(tmp_path / "out")]) == 1
    assert "f.npy: not a feature export" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
