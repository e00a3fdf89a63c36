"""Settings: the published presets bit for bit, one parse and one resolution per stage, every rule a usage
error (exit status 2) before any work, and flags winning over the preset."""

import os
import subprocess
import sys

import pytest

import action_classification
import knn_eval
from dataset.catalog import DATASETS, base_protocol, resolve_data_dir
from engine import evaluate
from engine.pretrained import downstream_model
from options.options_classification import choose_preset, eval_settings, open_data, parse_classification, parse_knn
from options.options_pretraining import parse_args, resolve
from options.presets import PUBLISHED, SMALL, SMALL_PRESETS, STAGES, FolderFacts, preset
from options.settings import flatten, learning_rate_change, to_dict
from tests.helpers import TINY_PRETRAIN

# The published settings (docs/published-behaviour.md §4), written out by hand, not imported, so that a
# wrong preset table cannot hide behind itself.
PRETRAIN_NTU = {
    "lr": 0.01,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "batch_size": 64,
    "epochs": 451,
    "schedule": [351],
    "mlp": True,
    "cos": False,
    "contrast_dim": 128,
    "contrast_k": 16384,
    "contrast_t": 0.07,
    "contrast_m": 0.999,
    "teacher_t": 0.05,
    "student_t": 0.1,
    "topk": 8192,
    "cmd_weight": 1.0,
    "hidden_size": 1024,
    "num_layers": 3,
    "view_frames": 64,
    "min_crop_frames": 64,
    "corrupted_joints": None,
    "checkpoint_every": 10,  # checkpoint_0000, _0010, ... as the released checkpoint_0450
    "steps": None,
    "skeleton_representation": "graph-based",
}
PRETRAIN_PKU = dict(PRETRAIN_NTU, epochs=1001, schedule=[801])
LINEAR = {
    "probe": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 0.0,
    "batch_size": 64,
    "epochs": 80,
    "schedule": [50, 70],
    "eval_freq": 5,
    "finetune": False,
}
SEMI = dict(LINEAR, lr=0.01, finetune=True)
TRANSFER = dict(SEMI, data_ratio=1.0)
KNN = {"batch_size": 64, "knn_neighbours": 1}
PUBLISHED_BY_HAND = {
    ("pretrain", "ntu60"): PRETRAIN_NTU,
    ("pretrain", "ntu120"): PRETRAIN_NTU,
    ("pretrain", "pku_v2"): PRETRAIN_PKU,
    ("linear", "ntu60"): LINEAR,
    ("linear", "ntu120"): LINEAR,
    ("linear", "pku_v2"): LINEAR,
    ("semi", "ntu60"): SEMI,
    ("semi", "ntu120"): SEMI,
    ("semi", "pku_v2"): SEMI,
    ("transfer", "pku_v2"): TRANSFER,
    ("knn", "ntu60"): KNN,
    ("knn", "ntu120"): KNN,
    ("knn", "pku_v2"): KNN,
}
TINY = TINY_PRETRAIN


@pytest.fixture(scope="module")
def folder(tmp_path_factory, processed):
    """16 training and 4 validation recordings of ntu25 skeletons, 3 classes, no layout.json."""
    return processed(tmp_path_factory.mktemp("data") / "xsub")


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory, processed):
    """16 training recordings of a dataset without a published preset: the small-data preset."""
    return processed(tmp_path_factory.mktemp("small") / "mine", dataset="mine")


def usage_error(capsys, call, argv):
    """The stderr of a call that must stop with a usage error (exit status 2)."""
    with pytest.raises(SystemExit) as stop:
        call(argv)
    assert stop.value.code == 2
    return capsys.readouterr().err


def pretrain(folder, *argv):
    """The PretrainSettings of `pretrain_cmd.py --data-dir folder argv`."""
    parser, args = parse_args(["--data-dir", folder, "--device", "cpu", *argv])
    return resolve(parser, args)[0]


def bits(value):
    """A value compared bit for bit: floats by their exact binary representation, with every type."""
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [bits(v) for v in value])
    return (type(value).__name__, value)


@pytest.mark.parametrize("stage, name", sorted(PUBLISHED_BY_HAND))
def test_published_presets_are_bit_for_bit_the_published_values(stage, name):
    got = preset(stage, name)
    expected = PUBLISHED_BY_HAND[(stage, name)]
    assert got == expected
    assert {k: bits(v) for k, v in got.items()} == {k: bits(v) for k, v in expected.items()}


# The small-data preset of a folder of 200 training recordings of median length 31 on 20 joints
# (docs/small-data.md), by hand: batch 32 (<= 200 / 4), queue 96 (the largest multiple of 32 within 100),
# top-k 48, views of 16 frames (the power of two nearest 15.5) cropped to at least 8, 3 of 20 joints.
SMALL_BY_HAND = {
    "pretrain": dict(
        PRETRAIN_NTU,
        hidden_size=64,
        num_layers=2,
        lr=0.05,
        batch_size=32,
        steps=3000,
        epochs=None,
        schedule=[],
        cos=True,
        contrast_k=96,
        topk=48,
        contrast_m=0.99,
        view_frames=16,
        min_crop_frames=8,
        corrupted_joints=3,
        checkpoint_every=None,
    ),
    "linear": dict(LINEAR, probe="logistic"),
    "semi": SEMI,
    "transfer": TRANSFER,
    "knn": KNN,
}


@pytest.mark.parametrize("stage", STAGES)
def test_the_small_data_preset_of_a_folder_is_the_hand_worked_table(stage):
    got = preset(stage, SMALL, FolderFacts(train_samples=200, median_frames=31, num_joints=20))
    assert {k: bits(v) for k, v in got.items()} == {k: bits(v) for k, v in SMALL_BY_HAND[stage].items()}


def test_the_published_table_holds_exactly_the_published_stages():
    assert set(PUBLISHED) == set(PUBLISHED_BY_HAND)
    assert set(DATASETS) == {"ntu60", "ntu120", "pku_v2"}
    for dataset, num_class in (("ntu60", 60), ("ntu120", 120), ("pku_v2", 51)):
        assert DATASETS[dataset].num_class == num_class
    with pytest.raises(ValueError, match="no preset for stage 'transfer' of 'ntu60'; known: .*'small'"):
        preset("transfer", "ntu60")
    # each call gives a fresh copy: a caller changing it changes no later run
    preset("pretrain", "ntu60")["schedule"].append(5)
    assert preset("pretrain", "ntu60")["schedule"] == [351]


def test_preset_tables_and_the_flags_they_fill_match_both_ways():
    parsers = {"pretrain": parse_args([])[0], "knn": parse_knn([])[0]}
    for stage in ("linear", "semi", "transfer"):
        parsers[stage] = parse_classification([])[0]
    reads = {stage: {action.dest for action in parser._actions} for stage, parser in parsers.items()}
    # a flag whose help says it comes from the preset ("(preset)", "(preset: …", "(preset; …")
    filled = {
        stage: {action.dest for action in parser._actions if "(preset" in (action.help or "")}
        for stage, parser in parsers.items()
    }
    assert "batch_size" in filled["pretrain"] and "knn_neighbours" in filled["knn"] and "probe" in filled["linear"]
    facts = FolderFacts(train_samples=100, median_frames=40, num_joints=25)
    tables = {key: PUBLISHED[key] for key in PUBLISHED}
    tables.update({(stage, SMALL): SMALL_PRESETS[stage](facts) for stage in STAGES})
    for (stage, name), settings in tables.items():
        unused = set(settings) - reads[stage]
        assert not unused, f"preset {stage}/{name} holds keys no entry point reads: {sorted(unused)}"
        # a new (preset) flag needs a value in every preset, or its runs would record None
        missing = filled[stage] - set(settings)
        assert not missing, f"preset {stage}/{name} gives no value for the (preset) flags {sorted(missing)}"
    # the semi-supervised protocols run on the folder of their benchmark
    assert base_protocol("cross_view_semi") == "cross_view" and base_protocol("cross_setup") == "cross_setup"
    assert resolve_data_dir("ntu60", "cross_view_semi") == resolve_data_dir("ntu60", "cross_view")
    with pytest.raises(ValueError, match="cross_setup"):
        resolve_data_dir("ntu60", "cross_setup")


PRETRAIN_RULES = [
    (["-b", "0"], "--batch-size must be at least 1 and finite, found 0"),
    (["--lr", "-1"], "--lr must be positive and finite, found -1.0"),
    (["--lr", "nan"], "--lr must be positive and finite, found nan"),
    (["--momentum", "-1"], "--momentum must be in [0, 1) and finite, found -1.0"),
    (["--contrast-m", "1.5"], "--contrast-m must be in [0, 1] and finite, found 1.5"),
    (["--contrast-t", "-1"], "--contrast-t must be positive and finite, found -1.0"),
    (["--teacher-t", "0"], "--teacher-t must be positive and finite, found 0.0"),
    (["--cmd-weight", "-0.5"], "--cmd-weight must be at least 0 and finite, found -0.5"),
    (["--epochs", "0"], "--epochs must be at least 1 and finite, found 0"),
    (["--steps", "0"], "--steps must be at least 1 and finite, found 0"),
    (["--schedule", "10", "-3"], "--schedule must be at least 0 and finite, found [10, -3]"),
    (["--min-crop-frames", "0"], "--min-crop-frames must be at least 1 and finite, found 0"),
    (["--view-frames", "1"], "--view-frames must be from 2 to 300 and finite, found 1"),  # motion would be 0
    (["--view-frames", "301"], "--view-frames must be from 2 to 300 and finite, found 301"),  # beyond any recording
    # finite in Python, infinite in the float32 tensors it ends in
    (["--lr", "1e39"], "--lr must be positive and finite, found 1e+39 (beyond float32)"),
    (["--seed", "-5"], "--seed must be from 0 to 9223372036854775807 and finite, found -5"),
    (["--seed", str(2**63)], f"--seed must be from 0 to 9223372036854775807 and finite, found {2**63}"),
]


@pytest.mark.parametrize("argv, message", PRETRAIN_RULES)
def test_pretraining_flags_out_of_range_are_usage_errors(folder, small_folder, capsys, argv, message):
    assert message in usage_error(capsys, lambda a: pretrain(folder, *a), argv)
    # the same under the small-data preset, whose rules derive values from some of these flags
    assert message in usage_error(capsys, lambda a: pretrain(small_folder, *a), argv)


def test_the_ranges_include_their_ends(small_folder):
    for ends in (["--seed", str(2**63 - 1), "--view-frames", "300"], ["--seed", "0", "--view-frames", "2"]):
        settings = pretrain(small_folder, *ends, "--min-crop-frames", "1")
        assert [settings.run.seed, settings.views.view_frames] == [int(ends[1]), int(ends[3])]
        for parse in (parse_classification, parse_knn):
            args = parse(ends)[1]
            assert [args.seed, args.view_frames] == [int(ends[1]), int(ends[3])]


def test_an_output_folder_that_cannot_be_one_is_a_usage_error(folder, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    for path, message in (
        (
            tmp_path / "afile" / "sub",
            f"--checkpoint-path {tmp_path}/afile/sub: {tmp_path}/afile is a file, not a folder",
        ),
        (tmp_path / "dangling", f"--checkpoint-path {tmp_path}/dangling is a symbolic link to {tmp_path}/gone, which"),
    ):
        argv = ["--checkpoint-path", str(path), *TINY]
        assert message in usage_error(capsys, lambda a: pretrain(folder, *a), argv)


def test_a_batch_larger_than_the_training_set_is_a_usage_error(small_folder, capsys):
    message = usage_error(capsys, lambda a: pretrain(small_folder, *a), ["-b", "64"])
    assert "has 16 samples, fewer than one global batch of 64" in message


@pytest.mark.parametrize(
    "parse, argv, message",
    [
        (parse_classification, ["--epochs", "0"], "--epochs must be at least 1 and finite, found 0"),
        (parse_classification, ["--eval-freq", "0"], "--eval-freq must be at least 1 and finite, found 0"),
        (parse_classification, ["-b", "0"], "--batch-size must be at least 1 and finite, found 0"),
        (parse_classification, ["--lr", "-1"], "--lr must be positive and finite, found -1.0"),
        (parse_classification, ["--momentum", "1"], "--momentum must be in [0, 1) and finite, found 1.0"),
        (parse_classification, ["--wd=-1e-4"], "--weight-decay must be at least 0 and finite, found -0.0001"),
        (parse_classification, ["--protocol", "cross_view_semi"], "--protocol cross_view_semi needs --data-ratio"),
        (parse_classification, ["--data-ratio", "0"], "--data-ratio must be in (0, 1], found 0.0"),
        (
            parse_classification,
            ["--transfer", "--finetune-dataset", "ntu60"],
            "--transfer fine-tunes on --finetune-dataset pku_v2",
        ),
        (parse_knn, ["--view-frames", "1"], "--view-frames must be from 2 to 300 and finite, found 1"),
        (parse_classification, ["--lr", "1e39"], "--lr must be positive and finite, found 1e+39 (beyond float32)"),
        (parse_classification, ["--seed", "-1"], "--seed must be from 0 to 9223372036854775807 and finite, found -1"),
        (parse_knn, ["--seed", str(2**64)], f"--seed must be from 0 to 9223372036854775807 and finite, found {2**64}"),
        (parse_knn, ["--knn-neighbours", "0"], "--knn-neighbours must be at least 1 and finite, found 0"),
        (parse_knn, ["--protocol", "cross_subject_semi"], "kNN evaluation uses the full training set"),
    ],
)
def test_evaluation_flags_out_of_range_are_usage_errors(capsys, parse, argv, message):
    assert message in usage_error(capsys, parse, argv)


def test_pretraining_rules_on_the_resolved_values_fail_before_any_output(folder, tmp_path, capsys):
    out = str(tmp_path / "out")
    base = ["--checkpoint-path", out, "--epochs", "1"] + TINY

    def check(*extra):
        return usage_error(capsys, lambda a: pretrain(folder, *a), base + list(extra))

    assert "--contrast-k 36 is not divisible by the global batch size 8" in check("--contrast-k", "36")
    assert "--topk 64 is larger than the queue length --contrast-k 32" in check("--topk", "64")
    assert "the training set of " + folder + " has 16 samples, fewer than one global batch of 32" in check("-b", "32")
    assert "--corrupted-joints 26 is more than the 25 joints of the folder's layout 'ntu25'" in check(
        "--corrupted-joints", "26"
    )
    assert "--start-epoch 1 must be in [0, --epochs 1)" in check("--start-epoch", "1")
    assert "give --epochs or --steps, not both" in check("--steps", "10")
    err = usage_error(capsys, parse_args, ["--checkpoint-path", out, "--fresh", "--rewind", "--bogus"])
    assert "unrecognized arguments: --bogus" in err
    assert "cross_setup" in usage_error(
        capsys,
        lambda a: resolve(*parse_args(a)),
        ["--pre-dataset", "ntu60", "--protocol", "cross_setup", "--device", "cpu"],
    )
    assert "no such folder" in usage_error(
        capsys, lambda a: resolve(*parse_args(a)), ["--data-dir", str(tmp_path / "nowhere"), "--device", "cpu"]
    )
    # an empty --data-dir (a shell variable left unset) names no folder; it is not the default NTU-60 one
    for parse, run in ((parse_args, resolve), (parse_classification, open_data), (parse_knn, open_data)):
        message = usage_error(capsys, lambda a, p=parse, r=run: r(*p(a)), ["--data-dir", "", "--device", "cpu"])
        assert "processed folder '': no such folder" in message
    for name in ("--checkpoint-path", "--results", "--save-features"):
        message = usage_error(capsys, parse_knn, ["--data-dir", out, name, ""])  # an output path as empty
        assert f"{name} is empty; name a path" in message
    message = usage_error(capsys, lambda a: pretrain(folder, *a), [*TINY, "--checkpoint-path", ""])
    assert "--checkpoint-path is empty; name a path" in message
    # an empty --pretrained evaluated a random encoder as if on purpose; left out, it still does
    for parse in (parse_classification, parse_knn):
        message = usage_error(capsys, parse, ["--data-dir", out, "--pretrained", ""])
        assert "--pretrained is empty; name a checkpoint, or leave the flag out for a random encoder" in message
        assert parse(["--data-dir", out])[1].pretrained == ""
    assert not os.path.exists(out)


def test_global_batch_counts_the_processes(folder, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    err = usage_error(capsys, lambda a: pretrain(folder, *a), ["--contrast-k", "24", "-b", "8", "--topk", "8"])
    assert "--contrast-k 24 is not divisible by the global batch size 16 (--batch-size 8 x 2 processes)" in err
    settings = pretrain(folder, "--contrast-k", "32", "-b", "8", "--topk", "8")
    assert (settings.contrast.contrast_k, settings.optim.batch_size, settings.run.world_size) == (32, 8, 2)
    monkeypatch.setenv("WORLD_SIZE", "two")
    assert "WORLD_SIZE='two'" in usage_error(capsys, lambda a: pretrain(folder, *a), [])


def test_pretraining_parses_every_published_flag():
    _, published = parse_args(
        [
            "-j",
            "3",
            "--epochs",
            "20",
            "--start-epoch",
            "2",
            "-b",
            "16",
            "--lr",
            "0.5",
            "--schedule",
            "5",
            "9",
            "--momentum",
            "0.8",
            "--wd",
            "0.5",
            "-p",
            "7",
            "--resume",
            "r.pth.tar",
            "--local_rank",
            "1",
            "--seed",
            "3",
            "--checkpoint-path",
            "c",
            "--skeleton-representation",
            "graph-based",
            "--pre-dataset",
            "ntu120",
            "--protocol",
            "cross_setup",
            "--contrast-dim",
            "64",
            "--contrast-k",
            "128",
            "--contrast-m",
            "0.99",
            "--contrast-t",
            "0.2",
            "--teacher-t",
            "0.3",
            "--student-t",
            "0.4",
            "--cmd-weight",
            "2",
            "--topk",
            "100",
            "--mlp",
            "--cos",
        ]
    )
    assert (published.workers, published.epochs, published.start_epoch, published.batch_size) == (3, 20, 2, 16)
    assert (published.lr, published.schedule, published.momentum, published.weight_decay) == (0.5, [5, 9], 0.8, 0.5)
    assert (published.print_freq, published.resume, published.local_rank, published.seed) == (7, "r.pth.tar", 1, 3)
    assert (published.pre_dataset, published.protocol, published.contrast_dim) == ("ntu120", "cross_setup", 64)
    assert (published.contrast_k, published.contrast_m, published.contrast_t) == (128, 0.99, 0.2)
    assert (published.teacher_t, published.student_t, published.cmd_weight, published.topk) == (0.3, 0.4, 2.0, 100)
    assert published.mlp and published.cos and published.checkpoint_path == "c"
    assert parse_args(["--local-rank", "2", "--no-mlp", "--weight-decay", "0"])[1].local_rank == 2
    assert parse_args(["--no-mlp"])[1].mlp is False
    _, ours = parse_args(["--steps", "100", "--fresh", "--rewind", "--preset", "small", "--min-crop-frames", "16"])
    assert (ours.steps, ours.fresh, ours.rewind, ours.preset, ours.min_crop_frames) == (100, True, True, "small", 16)
    # preset-held flags stay unset until the folder is known
    _, plain = parse_args([])
    assert plain.lr is None and plain.epochs is None and plain.mlp is None and plain.hidden_size is None


def test_pretraining_flags_win_and_the_preset_fills_the_rest(folder):
    # a folder without layout.json takes the published preset of --pre-dataset (default ntu60)
    settings = pretrain(folder, "-b", "8")
    flat = flatten(to_dict(settings))
    expected = dict(preset("pretrain", "ntu60"), batch_size=8, corrupted_joints=15)
    assert {k: flat[k] for k in expected} == expected
    assert settings.preset == "ntu60" and settings.data.dataset == "ntu60"
    assert settings.run.checkpoint_path == "./checkpoints/ntu60_cross_subject_pretrain"
    pku = pretrain(folder, "--pre-dataset", "pku_v2", "--protocol", "cross_view", "--lr", "0.5", "--no-mlp", "-b", "8")
    assert (pku.optim.lr, pku.contrast.mlp, pku.optim.epochs, pku.optim.schedule) == (0.5, False, 1001, (801,))
    assert pku.contrast.contrast_k == 16384 and pku.preset == "pku_v2"
    # --steps sets the length in steps: 16 samples, batch 8 -> 2 steps an epoch
    steps = pretrain(folder, "-b", "8", "--steps", "5")
    assert (steps.optim.steps, steps.optim.epochs) == (5, 3)


def _classification(folder, *argv, parse=parse_classification):
    """The EvalSettings of an evaluation of `folder` with a small random encoder."""
    parser, args = parse(["--data-dir", folder, "--device", "cpu", "--hidden-size", "8", "--num-layers", "1", *argv])
    train, _ = open_data(parser, args)
    name, views = choose_preset(parser, args, train)
    _, info = downstream_model(
        args.pretrained, train.num_class or 60, train.layout, args.hidden_size, args.num_layers, views
    )
    return eval_settings(parser, args, name, train, info)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A released-format pretraining checkpoint of the sizes _classification passes (GRU 8 x 1)."""
    import torch

    from moco.builder import MoCo

    path = tmp_path_factory.mktemp("released") / "checkpoint_0450.pth.tar"
    args = {"en_input_size": 150, "en_hidden_size": 8, "en_num_layers": 1, "num_class": 16}
    torch.save({"epoch": 451, "state_dict": MoCo("graph-based", args, dim=16, K=16, topk=4).state_dict()}, path)
    return str(path)


def test_stage_resolution_and_presets(folder, released, capsys):
    linear = _classification(folder, "--finetune-dataset", "ntu120", "--protocol", "cross_setup")
    assert (linear.stage, linear.preset, linear.data.num_class) == ("linear", "ntu120", 120)
    assert (linear.probe.probe, linear.probe.lr, linear.probe.finetune, linear.probe.schedule) == (
        "sgd",
        0.1,
        False,
        (50, 70),
    )
    semi = _classification(folder, "--protocol", "cross_view_semi", "--data-ratio", "0.1", "--lr", "0.02")
    assert (semi.stage, semi.probe.lr, semi.probe.finetune, semi.probe.schedule) == ("semi", 0.02, True, (50, 70))
    assert (semi.probe.data_ratio, semi.probe.eval_freq, semi.probe.epochs) == (0.1, 5, 80)
    transfer = _classification(folder, "--finetune-dataset", "pku_v2", "--finetune", "--pretrained", released)
    assert (transfer.stage, transfer.data.num_class, transfer.probe.data_ratio, transfer.probe.lr) == (
        "transfer",
        51,
        1.0,
        0.01,
    )
    assert _classification(folder, "--finetune-dataset", "pku_v2", "--transfer", "--pretrained", released).stage == (
        "transfer"
    )
    only_flag = _classification(folder, "--transfer", "--pretrained", released)  # --transfer names its dataset
    assert (only_flag.stage, only_flag.data.dataset, only_flag.data.num_class) == ("transfer", "pku_v2", 51)
    # The published transfer script is the semi-supervised one on pku_v2 with all labels.
    published = _classification(
        folder,
        "--finetune-dataset",
        "pku_v2",
        "--protocol",
        "cross_subject_semi",
        "--data-ratio",
        "1",
        "--pretrained",
        released,
    )
    assert (published.stage, published.probe.finetune, published.probe.data_ratio) == ("transfer", True, 1.0)
    # a random encoder trained on all labels is no transfer (it was pretrained nowhere)
    assert _classification(folder, "--finetune-dataset", "pku_v2", "--finetune").stage == "semi"
    message = usage_error(capsys, lambda a: _classification(folder, *a), ["--transfer"])
    assert "--transfer fine-tunes an encoder pretrained on NTU: pass --pretrained" in message
    # ... unless the encoder was pretrained on PKU-MMD II itself: then it is fine-tuning, no transfer
    own = ["--finetune-dataset", "pku_v2", "--protocol", "cross_subject_semi", "--data-ratio", "1"]
    assert _classification(folder, *own, "--pretrain-dataset", "pku_v2").stage == "semi"
    argv = ["--transfer", "--pretrain-dataset", "pku_v2", "--pretrained", released]
    assert "this one was pretrained on PKU-MMD II itself" in usage_error(
        capsys, lambda a: _classification(folder, *a), argv
    )
    assert (
        _classification(
            folder, "--finetune-dataset", "ntu60", "--protocol", "cross_subject_semi", "--data-ratio", "1"
        ).stage
        == "semi"
    )
    assert _classification(folder, "--finetune-dataset", "pku_v2").stage == "linear"
    knn = _classification(folder, "--finetune-dataset", "pku_v2", parse=parse_knn)
    assert (knn.stage, knn.knn.knn_neighbours, knn.knn.batch_size, knn.data.num_class) == ("knn", 1, 64, 51)
    # a random encoder's crops have the published views' length
    assert (knn.view_frames, knn.min_crop_frames, knn.run.pretrained) == (64, 64, "")
    assert "needs --data-ratio" in usage_error(capsys, parse_classification, ["--protocol", "cross_subject_semi"])
    # the published transfer command (the semi-supervised protocol with all labels) may also say --transfer
    # (a test that fails with a refusal of any semi-supervised protocol under --transfer)
    with_flag = _classification(folder, "--transfer", *own[2:], "--pretrained", released)
    assert (with_flag.stage, with_flag.probe.data_ratio, with_flag.data.dataset) == ("transfer", 1.0, "pku_v2")
    part = ["--transfer", "--protocol", "cross_subject_semi", "--data-ratio", "0.1", "--pretrained", released]
    message = usage_error(capsys, lambda a: _classification(folder, *a), part)
    assert "this is cross_subject with --data-ratio 0.1: to fine-tune on it, pass --finetune instead" in message
    message = usage_error(capsys, lambda a: _classification(folder, *a), part[:3] + part[5:])
    assert "--protocol cross_subject_semi needs --data-ratio (1.0: a transfer trains on all labels)" in message
    assert "pku_v2; found ntu60" in usage_error(
        capsys, parse_classification, ["--transfer", "--finetune-dataset", "ntu60"]
    )


def test_the_stage_follows_the_folder_a_fine_tuning_trains_on(tmp_path, processed, released, capsys):
    # a folder recorded as PKU-MMD II's cross-subject benchmark: --finetune alone is the paper's transfer, as
    # with --finetune-dataset pku_v2 (the flag the folder makes redundant)
    pku = processed(tmp_path / "pku", dataset="pku_v2", num_class=51, protocol="cross_subject")
    for extra in ([], ["--finetune-dataset", "pku_v2"]):
        settings = _classification(pku, "--finetune", "--pretrained", released, *extra)
        assert (settings.stage, settings.probe.data_ratio) == ("transfer", 1.0)
    # with part of the labels it is a semi-supervised fine-tuning, and --transfer refuses it
    part = _classification(pku, "--finetune", "--data-ratio", "0.5", "--pretrained", released)
    assert (part.stage, part.probe.data_ratio) == ("semi", 0.5)
    message = usage_error(
        capsys, lambda a: _classification(pku, *a), ["--transfer", "--data-ratio", "0.5", "--pretrained", released]
    )
    assert "the paper's transfer protocol; this is cross_subject with --data-ratio 0.5: to fine-tune on it" in message
    # another benchmark of PKU-MMD II (a folder without a record, named xview): no transfer either
    xview = processed(tmp_path / "pku_views" / "xview", num_class=51)
    message = usage_error(capsys, lambda a: _classification(xview, *a), ["--transfer", "--pretrained", released])
    assert "this is cross_view: to fine-tune on it, pass --finetune instead" in message
    assert _classification(xview, "--finetune-dataset", "pku_v2", "--finetune", "--pretrained", released).stage == (
        "semi"
    )


def test_knn_neighbours_beyond_the_training_set_is_a_usage_error_before_features(
    tmp_path, processed, capsys, monkeypatch
):
    tiny = processed(tmp_path / "xsub", n=(3, 2), num_class=2, frames=80)

    def no_features(*args, **kwargs):
        raise AssertionError("features were extracted")

    monkeypatch.setattr(evaluate, "extract_features", no_features)
    argv = [
        "--data-dir",
        tiny,
        "--knn-neighbours",
        "4",
        "--hidden-size",
        "8",
        "--num-layers",
        "1",
        "-j",
        "0",
        "--out",
        str(tmp_path / "run"),
        "--results",
        str(tmp_path / "r.jsonl"),
    ]
    err = usage_error(capsys, knn_eval.main, argv)
    assert f"--knn-neighbours 4 is larger than the training set of {tiny} (3 samples)" in err
    assert not os.path.exists(tmp_path / "r.jsonl") and not os.path.exists(tmp_path / "run")


def test_classification_with_zero_epochs_is_refused_before_any_output(tmp_path, processed, capsys):
    tiny = processed(tmp_path / "xsub", n=(3, 2), num_class=2, frames=80)
    argv = [
        "--data-dir",
        tiny,
        "--epochs",
        "0",
        "--hidden-size",
        "8",
        "--num-layers",
        "1",
        "-j",
        "0",
        "--out",
        str(tmp_path / "run"),
        "--results",
        str(tmp_path / "r.jsonl"),
    ]
    assert "--epochs must be at least 1 and finite, found 0" in usage_error(capsys, action_classification.main, argv)
    assert not os.path.exists(tmp_path / "run") and not os.path.exists(tmp_path / "r.jsonl")


def test_transfer_into_a_folder_of_another_dataset_says_what_to_do(small_folder, capsys):
    message = usage_error(capsys, lambda a: _classification(small_folder, *a), ["--transfer"])
    assert "--transfer fine-tunes on PKU-MMD II (pku_v2)" in message and "holds 'mine'" in message
    assert "pass --finetune instead" in message


def test_the_logistic_probe_refuses_and_does_not_record_the_sgd_settings(small_folder, capsys):
    logistic = _classification(small_folder)
    assert (logistic.preset, logistic.probe.probe) == ("small", "logistic")
    sgd_fields = ("lr", "momentum", "weight_decay", "epochs", "schedule", "eval_freq")
    assert [getattr(logistic.probe, name) for name in sgd_fields] == [None] * 6
    for flag, value in (("--lr", "5"), ("--epochs", "3"), ("--schedule", "1"), ("--wd", "0.1")):
        message = usage_error(capsys, lambda a: _classification(small_folder, *a), [flag, value])
        assert f"{flag} set the SGD probe's training" in message and "--probe sgd" in message
    sgd = _classification(small_folder, "--probe", "sgd", "--lr", "5")
    assert (sgd.probe.probe, sgd.probe.lr, sgd.probe.epochs) == ("sgd", 5.0, 80)


@pytest.mark.parametrize("parse", [parse_args, parse_classification, parse_knn])
def test_data_loading_workers_default_to_the_published_8_or_the_cpus(parse):
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()  # macOS: no affinity
    assert parse([])[1].workers == min(8, cpus)  # no more than the CPUs this process may use
    assert parse(["-j", "3"])[1].workers == 3


def test_a_leading_tilde_in_a_path_flag_is_the_home_folder(monkeypatch):
    """bash leaves `--flag=~/x` alone: unexpanded, runs wrote into a folder named '~' in the working one."""
    from data_gen.writer import conversion_parser

    monkeypatch.setenv("HOME", "/home/someone")
    pretraining = parse_args(["--data-dir=~/d", "--checkpoint-path=~/c", "--resume=~/c/last.pth.tar"])[1]
    assert (pretraining.data_dir, pretraining.checkpoint_path, pretraining.resume) == (
        "/home/someone/d",
        "/home/someone/c",
        "/home/someone/c/last.pth.tar",
    )
    flags = ["--data-dir=~/d", "--pretrained=~/p.tar", "--out=~/o", "--results=~/r.jsonl"]
    linear = parse_classification([*flags, "--resume=~/o/checkpoint.pth.tar"])[1]
    knn = parse_knn([*flags, "--save-features=~/f.npz"])[1]
    assert [linear.data_dir, linear.pretrained, linear.checkpoint_path, linear.results, linear.resume] == [
        "/home/someone/d",
        "/home/someone/p.tar",
        "/home/someone/o",
        "/home/someone/r.jsonl",
        "/home/someone/o/checkpoint.pth.tar",
    ]
    assert knn.save_features == "/home/someone/f.npz"
    converter = conversion_parser("x", "--data-path", "raw", "out")
    converter = converter.parse_args(["--data-path=~/raw", "--out-folder=~/o"])
    assert (converter.data_path, converter.out_folder) == ("/home/someone/raw", "/home/someone/o")


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this system (macOS)")
def test_a_job_given_one_cpu_of_the_node_gets_one_loading_or_parsing_worker():
    """A batch scheduler binds a job to some of the node's CPUs; os.cpu_count() counts them all."""
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from options.parsing import DEFAULT_WORKERS; from data_gen.writer import conversion_parser; "
        "parser = conversion_parser('x', '--data-path', 'raw', 'out'); "
        "print(DEFAULT_WORKERS, parser.parse_args(['--data-path', 'r', '--out-folder', 'o']).workers)"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1", "1"]


def test_a_resume_is_told_when_its_learning_rate_changes_and_not_of_what_does_not_set_it():
    step = {"optim": {"lr": 0.05, "cos": False, "schedule": [120, 160], "epochs": 200}, "run": {"print_freq": 10}}
    cosine = {"optim": {"lr": 0.05, "cos": True, "schedule": [], "epochs": 97}, "run": {"print_freq": 10}}

    def change(record, **optim):
        return learning_rate_change(record, {**record, "optim": {**record["optim"], **optim}, "run": {"print_freq": 1}})

    assert change(step) is None and change(cosine) is None  # other settings (print_freq) do not count
    assert change(step, lr=0.01) == (
        "the learning rate changes (--lr: 0.05 then, 0.01 now): a resume takes it from this command's flags "
        "and preset; give the run's own to keep it"
    )
    assert "--schedule: [120, 160] then, [150] now" in change(step, schedule=[150])
    assert "--cos: False then, True now" in change(step, cos=True)
    assert "--schedule: [] then, [150] now" in change(cosine, cos=False, schedule=[150])  # a step schedule now
    assert change(cosine, schedule=[1]) is None  # the cosine schedule has no milestones
    assert "--epochs: 97 then, 200 now" in change(cosine, epochs=200)  # a longer run stretches it
    assert change({**cosine, "optim": {**cosine["optim"], "steps": 3000}}, steps=3010) is None  # the same epochs
    # a run given --steps 300 resumed without it: the preset's 3,000 steps stretch it, said in both flags
    told = change({**cosine, "optim": {**cosine["optim"], "epochs": 34, "steps": 300}}, epochs=334, steps=3000)
    assert "(--epochs: 34 then, 334 now; --steps: 300 then, 3000 now)" in told
    assert change(step, epochs=300) is None  # the milestones alone set a step schedule
    # records of older versions were flat
    assert "--lr: 0.05 then, 0.1 now" in learning_rate_change({"lr": 0.05, "cos": True}, {"lr": 0.1, "cos": True})


def test_the_resolution_notes_are_printed_by_one_process_of_a_torchrun(small_folder, capsys, monkeypatch):
    # ntu25's own count is 15 of 25 joints; the small-data preset corrupts 4: a note says so, with --amp's
    # RANK as engine.distributed reads it; a bad one fails there, and prints here as rank 0
    for rank, printed in (("0", True), ("1", False), ("", True), ("00", True), ("abc", True)):
        monkeypatch.setenv("RANK", rank)
        pretrain(small_folder, "--amp")
        out = capsys.readouterr().out
        assert ("note: the small-data preset corrupts 4 of the 25 joints" in out) == printed
        assert ("warning: --amp applies to CUDA only" in out) == printed


def test_an_encoder_pretrained_with_the_other_kind_of_preset_is_noted(folder, released, tmp_path, capsys):
    import torch

    ckpt = torch.load(released, weights_only=False)
    for trained, argv, said in (
        ("small", [], True),  # NTU's folder: the published probe, where the pretraining took the small-data preset
        ("small", ["--preset", "small"], False),
        ("ntu60", [], False),
        ("ntu60", ["--preset", "small"], "the one --preset names, small"),  # the other way round, by the flag
        (None, [], False),  # a released checkpoint records no preset
        ("ntu120", [], False),  # another published preset: the published probe either way
    ):
        path = tmp_path / f"{trained}.pth.tar"
        torch.save(dict(ckpt, settings={"preset": trained}) if trained else ckpt, path)
        _classification(folder, "--pretrained", str(path), *argv)
        out = capsys.readouterr().out
        if isinstance(said, str):
            assert f"note: {path} was pretrained with the ntu60 preset; this evaluation takes {said} " in out
            assert "--preset ntu60 evaluates it as that preset does" in out
            continue
        note = f"note: {path} was pretrained with the small preset; this evaluation takes its folder's, ntu60"
        assert (note in out) == said and ("--preset small evaluates it as that preset does" in out) == said
        assert said or "was pretrained with the" not in out


def test_a_feature_export_may_not_be_a_file_the_run_writes_itself(folder, tmp_path, capsys):
    run, results = tmp_path / "run", str(tmp_path / "r.jsonl")
    knn = ["--out", str(run), "--results", results, "--save-features"]
    for features in (
        results,
        *(str(run / name) for name in ("result.jsonl", "settings.json", "tensorboard", ".claim")),
    ):
        message = usage_error(capsys, lambda a: _classification(folder, *a, parse=parse_knn), [*knn, features])
        assert f"--save-features {features} names a file this run writes itself; choose another path" in message
    settings = _classification(folder, *knn, str(run / "features.npz"), parse=parse_knn)  # beside them: fine
    assert settings.knn.save_features == str(run / "features.npz")
    # nor a file of another run's folder (one holding a claim, or a run's settings.json), which that run would
    # replace; --results too, also through a link
    other, evaluation = tmp_path / "other", tmp_path / "evaluation"
    other.mkdir()
    (other / ".claim").write_text("")
    evaluation.mkdir()
    (evaluation / "settings.json").write_text('{"stage": "linear"}')
    (tmp_path / "link.jsonl").symlink_to(evaluation / "result.jsonl")
    for name, path in (
        ("--save-features", str(other / "checkpoint_0007.pth.tar")),
        ("--results", str(other / "result.jsonl")),
        ("--results", str(evaluation / "result.jsonl")),
        ("--results", str(tmp_path / "link.jsonl")),
        ("--results", str(run / "result.jsonl")),
    ):
        argv = ["--out", str(run), "--results", results, "--save-features", str(tmp_path / "f.npz"), name, path]
        message = usage_error(capsys, lambda a: _classification(folder, *a, parse=parse_knn), argv)
        whose = (
            "this run writes itself"
            if path.startswith(str(run))
            else "of a folder holding another run or processed data"
        )
        assert f"{name} {path} names a file {whose}; choose another path" in message
    # a folder of the user's own, holding no run (a settings.json of theirs included): a run-file name is fine
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "settings.json").write_text("{}")
    argv = ["--out", str(run), "--results", str(mine / "result.jsonl")]
    assert _classification(folder, *argv, parse=parse_knn).run.results == str(mine / "result.jsonl")
