"""The preset a run gets from its processed folder, the small-data rules, and flags winning over both."""

import hashlib
import os
import re

import numpy as np
import pytest
import torch

from dataset.layouts import KINECT20, NTU25
from moco.loss import cmd_loss
from options import presets
from options.options_classification import choose_preset, open_data, parse_classification, parse_knn
from options.options_pretraining import parse_args, resolve
from options.presets import FolderFacts
from options.presets import choose_preset as choose


def pretrain_settings(folder, *flags):
    parser, args = parse_args(["--data-dir", str(folder), "--device", "cpu", *flags])
    return resolve(parser, args)[0]


@pytest.mark.parametrize(
    "recorded, flag, preset_flag, expected",
    [
        (None, None, None, "ntu60"),  # a folder as the published tools write it: NTU-60's, as published
        (None, "pku_v2", None, "pku_v2"),
        ("ntu120", None, None, "ntu120"),  # our converters record the dataset
        ("ntu120", "ntu120", None, "ntu120"),
        ("nw_ucla", None, None, "small"),  # any data set without a published preset
        ("my_kinect", None, None, "small"),
        ("my_kinect", None, "ntu60", "ntu60"),  # an explicit --preset wins
        ("ntu60", None, "small", "small"),
    ],
)
def test_preset_follows_the_folders_record(recorded, flag, preset_flag, expected):
    assert choose(recorded, flag, preset_flag, "--pre-dataset") == expected


def test_a_dataset_flag_never_silently_applies_another_datasets_settings():
    with pytest.raises(ValueError, match="records dataset 'nw_ucla'.*--pre-dataset ntu60.*--preset ntu60"):
        choose("nw_ucla", "ntu60", None, "--pre-dataset")
    with pytest.raises(ValueError, match="records dataset 'ntu120'"):
        choose("ntu120", "ntu60", None, "--finetune-dataset")


def test_pretraining_on_a_published_folder_gets_the_published_preset(tmp_path, processed):
    folder = processed(tmp_path / "ntu", n=(64, 4), dataset="ntu60", num_class=60)
    s = pretrain_settings(folder, "--checkpoint-path", str(tmp_path / "out"))
    assert s.preset == "ntu60"
    assert (s.encoder.hidden_size, s.encoder.num_layers) == (1024, 3)
    assert (s.optim.epochs, s.optim.schedule, s.optim.lr, s.optim.batch_size, s.optim.steps) == (
        451,
        (351,),
        0.01,
        64,
        None,
    )
    assert (s.contrast.contrast_k, s.contrast.topk, s.contrast.contrast_m) == (16384, 8192, 0.999)
    assert (s.views.view_frames, s.views.min_crop_frames, s.views.corrupted_joints) == (64, 64, 15)
    assert s.run.checkpoint_every == 10


def test_pretraining_on_another_folder_gets_the_small_data_rules(tmp_path, processed):
    # 200 recordings of 31 frames, 20 joints: batch 32 (<= 200 / 4), 6 steps an epoch, K the largest
    # multiple of 32 within half the set (96), views of 16 frames (about half a recording) cropped to at least 8,
    # 3 of 20 joints corrupted.
    folder = processed(tmp_path / "mine", n=(200, 10), layout=KINECT20, num_class=5, dataset="mine", frames=31)
    s = pretrain_settings(folder)
    assert s.preset == "small" and s.data.dataset == "mine" and s.data.median_frames == 31
    assert (s.encoder.hidden_size, s.encoder.num_layers) == (64, 2)
    assert s.optim.batch_size == 32 and s.optim.steps == presets.SMALL_STEPS
    assert s.optim.epochs == -(-presets.SMALL_STEPS // 6) and s.optim.cos is True
    assert s.optim.epochs == 500 and s.run.checkpoint_every == 50  # ten periodic checkpoints, not 50
    assert (s.contrast.contrast_k, s.contrast.topk) == (96, 48)
    assert s.contrast.contrast_m == pytest.approx(1 - 1 / 100)
    assert (s.views.view_frames, s.views.min_crop_frames, s.views.corrupted_joints) == (16, 8, 3)
    tag = hashlib.sha1(os.path.realpath(folder).encode()).hexdigest()[:6]  # a name not published: its folder's tag
    assert s.run.checkpoint_path == f"./checkpoints/mine-{tag}_cross_subject_pretrain"


def test_the_small_data_corruption_rule_says_when_it_departs_from_the_layout(tmp_path, processed, capsys):
    folder = processed(tmp_path / "mine", n=(40, 10), layout=KINECT20, num_class=5, dataset="mine", frames=31)
    assert pretrain_settings(folder).views.corrupted_joints == 3
    assert "corrupts 3 of the 20 joints (15 %), not the 12 of layout 'kinect20'" in capsys.readouterr().out
    assert pretrain_settings(folder, "--corrupted-joints", "12").views.corrupted_joints == 12
    assert "note:" not in capsys.readouterr().out
    assert pretrain_settings(folder, "--corrupted-joints", "7").views.corrupted_joints == 7  # the user's own
    assert "note:" not in capsys.readouterr().out


@pytest.mark.parametrize("joints, corrupted", [(3, 1), (10, 2), (16, 2), (17, 3), (20, 3), (25, 4), (30, 4)])
def test_the_corruption_rule_rounds_15_percent_and_keeps_one(joints, corrupted):
    # 15 % of the joints, Python's round (halves to even: 1.5 -> 2, 4.5 -> 4; 2.4 -> 2), at least 1
    p = presets.small_pretrain(FolderFacts(train_samples=100, median_frames=40, num_joints=joints))
    assert p["corrupted_joints"] == corrupted


def test_the_small_data_evaluation_presets_need_no_facts():
    assert presets.preset("linear", "small")["probe"] == "logistic"
    assert presets.preset("knn", "small") == presets.preset("knn", "small", FolderFacts(100, 40, 20))


def test_every_small_data_value_is_overridden_by_its_flag(tmp_path, processed):
    folder = processed(tmp_path / "mine", n=(200, 10), layout=KINECT20, num_class=5, dataset="mine", frames=31)
    s = pretrain_settings(
        folder,
        "--hidden-size",
        "16",
        "--num-layers",
        "1",
        "--batch-size",
        "8",
        "--steps",
        "100",
        "--contrast-k",
        "64",
        "--topk",
        "8",
        "--contrast-m",
        "0.9",
        "--view-frames",
        "20",
        "--min-crop-frames",
        "10",
        "--corrupted-joints",
        "7",
        "--lr",
        "0.2",
        "--no-cos",
        "--checkpoint-every",
        "3",
    )
    assert (s.encoder.hidden_size, s.encoder.num_layers, s.optim.batch_size) == (16, 1, 8)
    assert (s.optim.steps, s.optim.epochs) == (100, 4)  # 25 steps an epoch
    assert (s.contrast.contrast_k, s.contrast.topk, s.contrast.contrast_m) == (64, 8, 0.9)
    assert (s.views.view_frames, s.views.min_crop_frames, s.views.corrupted_joints) == (20, 10, 7)
    assert (s.optim.lr, s.optim.cos, s.run.checkpoint_every) == (0.2, False, 3)
    given_epochs = pretrain_settings(folder, "--epochs", "3")
    assert (given_epochs.optim.epochs, given_epochs.optim.steps, given_epochs.run.checkpoint_every) == (3, None, 1)
    assert pretrain_settings(folder, "--epochs", "25").run.checkpoint_every == 3  # a tenth, rounded up


def test_epochs_and_steps_together_are_a_usage_error(tmp_path, processed, capsys):
    folder = processed(tmp_path / "mine", n=(200, 10), layout=KINECT20, dataset="mine")
    with pytest.raises(SystemExit) as exit_:
        pretrain_settings(folder, "--epochs", "3", "--steps", "10")
    assert exit_.value.code == 2 and "--epochs or --steps" in capsys.readouterr().err


def test_pre_dataset_against_the_folders_record_is_a_usage_error(tmp_path, processed, capsys):
    folder = processed(tmp_path / "mine", n=(200, 10), layout=KINECT20, dataset="mine")
    with pytest.raises(SystemExit) as exit_:
        pretrain_settings(folder, "--pre-dataset", "ntu60")
    assert exit_.value.code == 2 and "records dataset 'mine'" in capsys.readouterr().err
    assert (
        pretrain_settings(folder, "--preset", "ntu60", "--batch-size", "8", "--contrast-k", "32", "--topk", "8").preset
        == "ntu60"
    )


@pytest.mark.parametrize("parse", [parse_classification, parse_knn])
def test_evaluations_choose_the_preset_from_the_folder_too(tmp_path, processed, parse):
    mine = processed(tmp_path / "mine", n=(40, 10), layout=KINECT20, dataset="mine")
    ntu = processed(tmp_path / "ntu", n=(40, 10), dataset="ntu60", num_class=60)
    for folder, name, hidden in ((mine, "small", 64), (ntu, "ntu60", 1024)):
        parser, args = parse(["--data-dir", folder, "--device", "cpu"])
        train, _ = open_data(parser, args)
        assert choose_preset(parser, args, train)[0] == name
        assert args.hidden_size == hidden  # a random encoder's size comes from the preset
    parser, args = parse(["--data-dir", mine, "--device", "cpu"])
    if parse is parse_classification:
        choose_preset(parser, args, open_data(parser, args)[0])
        assert args.probe == "logistic"
        parser, args = parse(["--data-dir", ntu, "--device", "cpu"])
        choose_preset(parser, args, open_data(parser, args)[0])
        assert args.probe == "sgd"


@pytest.mark.parametrize("median, expected", [(1, 16), (20, 16), (45, 16), (46, 32), (90, 32), (91, 32), (300, 32)])
def test_view_length_rule(median, expected):
    # the power of two nearest half the median length on a log scale (16·√2 = 22.6 rounds down), in [16, 32]
    assert presets.view_frames(median) == expected


@pytest.mark.parametrize(
    "samples, batch, queue", [(2000, 32, 992), (1020, 32, 480), (291, 32, 128), (100, 16, 48), (20, 4, 8)]
)
def test_batch_and_queue_rules(samples, batch, queue):
    p = presets.small_pretrain(FolderFacts(train_samples=samples, median_frames=40, num_joints=25))
    assert (p["batch_size"], p["contrast_k"], p["topk"]) == (batch, queue, queue // 2)
    assert p["corrupted_joints"] == 4  # 15 % of 25 joints, rounded


def test_a_batch_of_one_gives_a_queue_of_half_the_set():
    # -b 1 in one process: the largest multiple of 1 within 10 / 2
    p = presets.small_pretrain(FolderFacts(train_samples=10, median_frames=40, num_joints=25), {"batch_size": 1})
    assert (p["batch_size"], p["contrast_k"], p["topk"]) == (1, 5, 2)


def test_layouts_keep_their_corrupted_joints_under_published_presets():
    assert presets.preset("pretrain", "ntu60")["corrupted_joints"] is None  # filled from the layout
    assert (NTU25.corrupted_joints, KINECT20.corrupted_joints) == (15, 12)


@pytest.mark.parametrize("parse", [parse_classification, parse_knn])
def test_the_protocol_comes_from_the_folders_record(tmp_path, processed, parse, capsys):
    ucla = processed(tmp_path / "ucla", n=(200, 10), layout=KINECT20, dataset="nw_ucla", protocol="cross_view")
    unrecorded = processed(tmp_path / "old", n=(200, 10), layout=KINECT20, dataset="mine")
    settings = pretrain_settings(ucla)
    assert settings.data.protocol == "cross_view"
    assert re.fullmatch(r"\./checkpoints/nw_ucla-[0-9a-f]{6}_cross_view_pretrain", settings.run.checkpoint_path)
    assert pretrain_settings(ucla, "--protocol", "cross_view").data.protocol == "cross_view"
    assert pretrain_settings(unrecorded).data.protocol == "cross_subject"  # a record from before protocols
    assert pretrain_settings(unrecorded, "--protocol", "cross_view").data.protocol == "cross_view"
    published = processed(tmp_path / "NTU-RGB-D-60-AGCN" / "xview", n=(64, 10), num_class=60)  # no record
    assert pretrain_settings(published).data.protocol == "cross_view"  # its name says which benchmark
    linked = tmp_path / "my_ntu_folder"
    linked.symlink_to(published)
    assert pretrain_settings(str(linked)).data.protocol == "cross_view"  # the name of the folder itself
    (tmp_path / "links").mkdir()
    stored = processed(tmp_path / "ntu60_cv_v2", n=(64, 10), num_class=60)  # no record, a name of no benchmark
    (tmp_path / "links" / "xview").symlink_to(stored)
    assert pretrain_settings(str(tmp_path / "links" / "xview")).data.protocol == "cross_view"  # the name given
    assert pretrain_settings(published, "--protocol", "cross_subject").data.protocol == "cross_subject"  # no record
    parser, args = parse(["--data-dir", published, "--device", "cpu"])
    open_data(parser, args)
    assert args.protocol == "cross_view"
    parser, args = parse(["--data-dir", ucla, "--device", "cpu"])
    open_data(parser, args)
    assert args.protocol == "cross_view"
    if parse is parse_classification:  # a semi-supervised protocol runs on its base benchmark's folder
        parser, args = parse(
            ["--data-dir", ucla, "--device", "cpu", "--protocol", "cross_view_semi", "--data-ratio", "0.1"]
        )
        open_data(parser, args)
        assert args.protocol == "cross_view_semi"
    capsys.readouterr()
    for wrong in (
        lambda: pretrain_settings(ucla, "--protocol", "cross_subject"),
        lambda: open_data(*parse(["--data-dir", ucla, "--device", "cpu", "--protocol", "cross_subject"])),
    ):
        with pytest.raises(SystemExit) as exit_:
            wrong()
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and f"processed folder {ucla} holds the cross_view benchmark" in err
        assert err.rstrip().endswith("leave the flag out or pass --protocol cross_view")


def test_a_semi_supervised_protocol_of_another_benchmark_is_pointed_to_the_folders(tmp_path, processed, capsys):
    # leaving the flag out, as the plain protocol's advice says, would probe on the subset instead of fine-tuning
    ucla = processed(tmp_path / "ucla", n=(40, 10), layout=KINECT20, dataset="nw_ucla", protocol="cross_view")
    setup = processed(tmp_path / "setup", n=(40, 10), layout=KINECT20, dataset="mine", protocol="cross_setup")
    for folder, flags in (
        (ucla, "--protocol cross_view_semi"),
        (setup, "--protocol cross_setup --finetune"),  # there is no cross_setup_semi
    ):
        parser, args = parse_classification(
            ["--data-dir", folder, "--device", "cpu", "--protocol", "cross_subject_semi", "--data-ratio", "0.5"]
        )
        with pytest.raises(SystemExit) as exit_:
            open_data(parser, args)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and f"{folder} holds the" in err and f"; pass {flags} to fine-tune" in err
        parser, args = parse_classification(
            ["--data-dir", folder, "--device", "cpu", *flags.split(), "--data-ratio", "0.5"]
        )
        open_data(parser, args)  # the advice taken is accepted, and fine-tunes
        assert args.stage == "semi"


@pytest.mark.parametrize(
    "samples, flags, world_size, expected",
    [
        # -b 4 on 12 recordings: the queue is the largest multiple of 4 within 6 (it was 6, refused as not
        # divisible by the batch)
        (12, ["-b", "4"], 1, dict(batch_size=4, contrast_k=4, topk=2, view_frames=16, min_crop_frames=8)),
        # 4 processes of 16 on 1,020 recordings: multiples of the global batch 64 within 510 -> 448
        (1020, ["-b", "16"], 4, dict(batch_size=16, contrast_k=448, topk=224, view_frames=16, min_crop_frames=8)),
        # --view-frames 64: the shortest crop is half of it, 32 (it stayed at half the rule's 16)
        (200, ["--view-frames", "64"], 1, dict(contrast_k=96, topk=48, view_frames=64, min_crop_frames=32)),
        # a flag given for a derived value wins over its rule; the top-k is half the queue given
        (200, ["--contrast-k", "64", "--min-crop-frames", "4"], 1, dict(contrast_k=64, topk=32, min_crop_frames=4)),
    ],
)
def test_derived_small_data_values_follow_the_flags_they_derive_from(
    tmp_path, processed, monkeypatch, samples, flags, world_size, expected
):
    monkeypatch.setenv("WORLD_SIZE", str(world_size))
    folder = processed(tmp_path / "mine", n=(samples, 4), layout=KINECT20, dataset="mine", frames=31)
    s = pretrain_settings(folder, *flags)
    found = dict(
        batch_size=s.optim.batch_size,
        contrast_k=s.contrast.contrast_k,
        topk=s.contrast.topk,
        view_frames=s.views.view_frames,
        min_crop_frames=s.views.min_crop_frames,
    )
    assert {key: found[key] for key in expected} == expected


def test_the_median_length_is_not_truncated(tmp_path, processed):
    # recordings of 45 and 46 frames alternately: median 45.5, half of it 22.75 is nearer 32 than 16 on a
    # log scale (the boundary is 16·√2 = 22.63), so 32-frame views; a truncated median of 45 gave 16
    folder = processed(tmp_path / "mine", n=(40, 4), layout=KINECT20, dataset="mine", frames=45)
    np.save(os.path.join(folder, "train_num_frame.npy"), np.tile([45, 46], 20).astype(np.int64))
    s = pretrain_settings(folder)
    assert s.data.median_frames == 45.5 and (s.views.view_frames, s.views.min_crop_frames) == (32, 16)


def test_a_folder_too_small_for_the_small_data_preset_is_a_usage_error(tmp_path, processed, capsys):
    seven = processed(tmp_path / "seven", n=(7, 4), layout=KINECT20, dataset="mine", frames=31)
    with pytest.raises(SystemExit) as exit_:
        pretrain_settings(seven)
    assert exit_.value.code == 2
    assert f"the training part of {seven} holds 7 recordings; the small-data preset needs 8" in capsys.readouterr().err
    eight = processed(tmp_path / "eight", n=(8, 4), layout=KINECT20, dataset="mine", frames=31)
    s = pretrain_settings(eight)
    assert (s.optim.batch_size, s.contrast.contrast_k, s.contrast.topk) == (2, 4, 2)


def test_a_top_k_under_two_is_refused_unless_the_distillation_is_off(tmp_path, processed, capsys):
    # over one queue entry the teacher's and the student's distributions are both 1: the CMD loss is 0 whatever
    # the weights, so such a run is MoCo while its record says CMD (checked on the loss itself below)
    sims = {m: torch.randn(4, 1) for m in ("joint", "motion", "bone")}
    assert cmd_loss(sims, {m: torch.randn(4, 1) for m in sims}, topk=1, teacher_T=0.05, student_T=0.1).item() == 0
    folder = processed(tmp_path / "mine", n=(40, 4), layout=KINECT20, dataset="mine", frames=31)
    for flags, said in (
        (["--contrast-k", "1"], "--topk 0 (half the queue, --contrast-k 1) leaves the CMD loss nothing to distil"),
        (["--contrast-k", "3"], "--topk 1 (half the queue, --contrast-k 3) leaves the CMD loss nothing to distil"),
        (["--contrast-k", "1", "--topk", "1"], "--topk 1 leaves the CMD loss nothing to distil"),
    ):
        with pytest.raises(SystemExit) as exit_:
            pretrain_settings(folder, *flags, "-b", "1")
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert said in err and "or --cmd-weight 0 for MoCo without distillation" in err
    assert pretrain_settings(folder, "--contrast-k", "4", "-b", "1").contrast.topk == 2  # half of 4
    s = pretrain_settings(folder, "--contrast-k", "1", "-b", "1", "--cmd-weight", "0")  # no distillation: fine
    assert (s.contrast.contrast_k, s.contrast.topk, s.contrast.cmd_weight) == (1, 1, 0.0)
    with pytest.raises(SystemExit):  # a queue of 0: the flag's own rule, not advice on the top-k
        pretrain_settings(folder, "--contrast-k", "0", "-b", "1")
    err = capsys.readouterr().err
    assert "--contrast-k must be at least 1" in err and "nothing to distil" not in err


def test_milestones_under_the_cosine_schedule_are_said_to_be_unused(tmp_path, processed, capsys):
    mine = processed(tmp_path / "mine", n=(200, 10), layout="kinect20", dataset="mine")  # small preset: cosine
    assert pretrain_settings(mine, "--schedule", "1").optim.cos
    assert "warning: --schedule 1 is not used: the learning rate follows the cosine schedule (the small preset)" in (
        capsys.readouterr().out
    )
    stepped = pretrain_settings(mine, "--schedule", "1", "--no-cos")  # the milestones apply, without a warning
    assert (stepped.optim.cos, tuple(stepped.optim.schedule)) == (False, (1,))
    assert "--schedule" not in capsys.readouterr().out
    published = processed(tmp_path / "ntu", n=(64, 10), num_class=60, dataset="ntu60")
    pretrain_settings(published, "--schedule", "5")
    assert "--schedule" not in capsys.readouterr().out
    pretrain_settings(published, "--schedule", "5", "--cos")
    assert "cosine schedule (--cos)" in capsys.readouterr().out


def test_a_record_naming_a_published_data_set_of_another_skeleton_is_warned_of_at_every_run(
    tmp_path, processed, capsys
):
    # a layout.json written by hand, or a pyskl import given --dataset ntu60, of 2 classes of Kinect v1
    # skeletons: the run took NTU-60's published settings (64-frame views, 0.999 momentum, …) in silence
    odd = processed(tmp_path / "odd", n=(12, 4), layout=KINECT20, num_class=2, dataset="ntu60", frames=40)
    s = pretrain_settings(odd, "-b", "4", "--contrast-k", "8", "--topk", "4")
    assert (s.preset, s.views.view_frames) == ("ntu60", 64)
    assert (
        f"warning: {odd}: its layout.json names ntu60, so every run on it takes ntu60's published settings, made "
        "for the ntu25 skeleton; it holds kinect20 skeletons. --preset small"
    ) in capsys.readouterr().out
    assert pretrain_settings(odd, "--preset", "small").preset == "small"  # a preset chosen by hand: no warning
    assert "published settings" not in capsys.readouterr().out
    # NTU-60's skeletons (here 4 of its classes, as a subset would hold): nothing to say
    ntu = processed(tmp_path / "ntu", n=(12, 4), layout=NTU25, num_class=4, dataset="ntu60", frames=40)
    pretrain_settings(ntu, "-b", "4", "--contrast-k", "8", "--topk", "4")
    assert "published settings" not in capsys.readouterr().out
