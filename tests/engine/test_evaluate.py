"""The linear-evaluation guard (frozen encoders), the three-stream fusion and the classifier training loop."""

import dataclasses
import hashlib
import json
import os
import pickle

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import Dataset

import engine.evaluate as evaluate_module
from dataset.layouts import KINECT20, NTU25
from dataset.processed import ProcessedDataError
from engine.checkpoint import CheckpointError
from engine.evaluate import (
    CHECKPOINT,
    FUSION,
    FrozenEncoderError,
    check_unchanged,
    evaluate,
    frozen_snapshot,
    fuse_scores,
    make_loader,
    prepare_evaluation,
    read_probe_resume,
    run_classification,
    train_classifier,
    trainable_parameters,
)
from engine.pretrained import build_classifier
from engine.runtime import make_writer
from feeder.feeder_downstream import semi_subset
from options.options_classification import parse_classification, parse_knn
from options.settings import DataSettings, EncoderSettings, EvalRunSettings, EvalSettings, ProbeSettings, to_dict

CPU = torch.device("cpu")


class _Clips(Dataset):
    """Tiny labelled clips N x 3 x 8 x 25 x 2 whose class shifts the mean (learnable)."""

    def __init__(self, n=12, classes=3, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % classes
        self.clips = torch.randn(n, 3, 8, 25, 2, generator=g) + self.labels.view(-1, 1, 1, 1, 1).float()
        self.epochs = []

    def set_epoch(self, epoch):
        self.epochs.append(epoch)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.clips[i], int(self.labels[i]), i


def _model(seed=0):
    torch.manual_seed(seed)
    return build_classifier(num_class=3, hidden_size=6, num_layers=1, layout=NTU25)


def _settings(out, view="joint", data_dir="data/a", fingerprint="0123456789abcdef", resume="", **probe):
    """The EvalSettings of an SGD run on `_Clips` (probe fields as keywords)."""
    probe = dict(
        dict(
            probe="sgd",
            finetune=False,
            data_ratio=1.0,
            lr=0.1,
            momentum=0.9,
            weight_decay=0.0,
            batch_size=4,
            epochs=3,
            schedule=(2,),
            eval_freq=2,
        ),
        **probe,
    )
    return EvalSettings(
        preset="ntu60",
        stage="semi" if probe["finetune"] else "linear",
        data=DataSettings(
            dataset="ntu60",
            protocol="cross_subject",
            data_dir=data_dir,
            layout=NTU25,
            num_class=3,
            train_samples=12,
            median_frames=8,
            fingerprint=fingerprint,
        ),
        encoder=EncoderSettings(hidden_size=6, num_layers=1),
        view_frames=8,
        min_crop_frames=8,
        run=EvalRunSettings(
            seed=0,
            device="cpu",
            workers=0,
            checkpoint_path=str(out),
            results=str(out) + ".jsonl",
            resume=resume,
            fresh=False,
            view=view,
            pretrained="",
            pretrain_dataset=None,
        ),
        probe=ProbeSettings(**probe),
    )


def _loaders(data):
    return make_loader(data, 4, 0, True, CPU), make_loader(data, 4, 0, False, CPU)


def _train(model, data, settings, resumed=None):
    return train_classifier(
        model, *_loaders(data), settings, CPU, settings.run.checkpoint_path, make_writer(None), resumed
    )


def test_frozen_check_catches_a_batchnorm_update():
    model = _model()
    trainable_parameters(model, ["joint"], finetune=False)
    assert {name for name, p in model.named_parameters() if p.requires_grad} == model.classifier_keys
    snapshot = frozen_snapshot(model)
    x = torch.randn(4, 3, 8, 25, 2)
    model.eval()
    model(x, view="bone")
    check_unchanged(model, snapshot)  # eval mode moves nothing
    model.train()
    with torch.no_grad():
        model(x, view="motion")  # one batch in train mode: BatchNorm running statistics move
    with pytest.raises(FrozenEncoderError, match="encoder_q_motion.input_norm.running_mean"):
        check_unchanged(model, snapshot)


def test_frozen_check_catches_a_weight_change():
    model = _model()
    snapshot = frozen_snapshot(model)
    with torch.no_grad():
        model.encoder_q.encoder.gru.weight_ih_l0[0, 0] += 1e-6
    with pytest.raises(FrozenEncoderError, match=r"encoder_q\.encoder\.gru\.weight_ih_l0"):
        check_unchanged(model, snapshot)


def test_fusion_is_argmax_of_summed_softmaxes():
    # Hand-made scores, 2 samples x 3 classes. Sample 0: the joint stream is sure of class 0 (raw
    # score 10), motion and bone prefer class 1 (raw 3). Softmaxes: joint (e^10, 1, 1)/(e^10 + 2),
    # motion = bone = (1, e^3, 1)/(e^3 + 2), so class 0 sums to ~1.09 and class 1 to ~1.82, while
    # summed raw scores (10 vs 6) would pick class 0.
    joint = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    motion = torch.tensor([[0.0, 3.0, 0.0], [0.0, 2.0, 0.0]])
    bone = torch.tensor([[0.0, 3.0, 0.0], [0.0, 0.0, 0.0]])
    fused = fuse_scores([joint, motion, bone])
    e = np.e
    c0 = e**10 / (e**10 + 2) + 2 / (e**3 + 2)
    c1 = 1 / (e**10 + 2) + 2 * e**3 / (e**3 + 2)
    assert fused[0, 0].item() == pytest.approx(c0, rel=1e-6) and fused[0, 1].item() == pytest.approx(c1, rel=1e-6)
    # sample 1: class 1 gets 1/(e+2) + e^2/(e^2+2) + 1/3, class 2 gets e/(e+2) + 1/(e^2+2) + 1/3
    c1 = 1 / (e + 2) + e**2 / (e**2 + 2) + 1 / 3
    c2 = e / (e + 2) + 1 / (e**2 + 2) + 1 / 3
    assert fused[1, 1].item() == pytest.approx(c1, rel=1e-6) and fused[1, 2].item() == pytest.approx(c2, rel=1e-6)
    assert fused.argmax(dim=1).tolist() == [1, 1]
    assert (joint + motion + bone).argmax(dim=1).tolist() == [0, 1]
    assert torch.allclose(fused.sum(dim=1), torch.full((2,), 3.0))


def test_evaluate_reports_views_and_fusion():
    model = _model()
    data = _Clips()
    loader = make_loader(data, 5, 0, False, CPU)
    metrics = evaluate(model, loader, ["joint", "motion", "bone"], CPU)
    assert set(metrics) == {"joint", "motion", "bone", FUSION}
    with torch.no_grad():
        scores = [model(data.clips, view=v) for v in ("joint", "motion", "bone")]
    expected = (fuse_scores(scores).argmax(1) == data.labels).float().mean().item() * 100
    assert metrics[FUSION]["top1"] == pytest.approx(expected)
    per_view = [(s.argmax(1) == data.labels).float().mean().item() * 100 for s in scores]
    for view, top1 in zip(("joint", "motion", "bone"), per_view):
        assert metrics[view]["top1"] == pytest.approx(top1), view
        assert metrics[view]["top5"] is None  # 3 classes: every target is among the five highest
    assert len({*per_view, expected}) > 1  # the views' scores are their own, not the fusion's


@pytest.mark.parametrize("view, trained", [("bone", {"bone"}), ("all", {"joint", "motion", "bone"})])
def test_linear_training_changes_only_the_classifiers_of_its_views(tmp_path, view, trained):
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = _Clips()
    best = _train(model, data, _settings(tmp_path, view=view))
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    suffix = {"joint": "", "motion": "_motion", "bone": "_bone"}
    assert changed == {f"encoder_q{suffix[v]}.fc.{p}" for v in trained for p in ("weight", "bias")}
    assert changed <= model.classifier_keys
    assert set(best) == (trained | {FUSION} if view == "all" else trained)
    assert all(b["epoch"] in (1, 2) for b in best.values())  # validated after epochs 1 (eval_freq 2) and 2 (last)
    # beside each view's best, its last validation's top-1: the trained model's, evaluated again
    views = sorted(trained)
    last = evaluate(model, _loaders(data)[1], [v for v in ("joint", "motion", "bone") if v in views], CPU)
    assert {name: b["last_top1"] for name, b in best.items()} == {name: m["top1"] for name, m in last.items()}
    assert data.epochs == [0, 1, 2]
    saved = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert set(saved) == {"epoch", "state_dict", "optimizer", "best", "rng", "settings"}
    assert saved["epoch"] == 3 and saved["settings"] == to_dict(_settings(tmp_path, view=view))


def test_finetuning_trains_the_encoder_and_resume_continues(tmp_path):
    data = _Clips()

    def run(epochs, out, resume="", seed=0):
        settings = _settings(tmp_path / out, finetune=True, lr=0.01, epochs=epochs, eval_freq=1, resume=resume)
        resumed = read_probe_resume(resume, to_dict(settings)) if resume else None
        model = _model(seed)
        best = _train(model, data, settings, resumed)
        return model, best

    initial = _model()
    straight, best = run(2, "a")
    assert not torch.equal(straight.encoder_q.encoder.gru.weight_ih_l0, initial.encoder_q.encoder.gru.weight_ih_l0)
    assert not torch.equal(straight.encoder_q.input_norm.running_mean, initial.encoder_q.input_norm.running_mean)
    run(1, "b")
    # the resumed run starts from another initial model and trains epoch 1 alone: only the checkpoint's
    # state can make it end where the straight run did
    data = _Clips()
    resumed, best_resumed = run(2, "b", resume=str(tmp_path / "b" / CHECKPOINT), seed=1)
    assert data.epochs == [1]
    for key, value in straight.state_dict().items():
        assert torch.allclose(resumed.state_dict()[key], value, atol=1e-6), key
    assert best_resumed == best  # the best epoch so far comes from the checkpoint


def test_a_linear_resume_trains_only_the_remaining_epochs_from_the_saved_classifiers(tmp_path):
    data = _Clips()
    straight = _model()
    best = _train(straight, data, _settings(tmp_path / "a", epochs=3))
    _train(_model(), data, _settings(tmp_path / "b", epochs=2))
    resume = str(tmp_path / "b" / CHECKPOINT)
    later = _settings(tmp_path / "c", epochs=3, resume=resume)
    model = _model()
    model.reset_classifiers()  # other classifiers than the saved ones, the same frozen encoders
    data = _Clips()
    best_resumed = _train(model, data, later, read_probe_resume(resume, to_dict(later)))
    assert data.epochs == [2]
    for key, value in straight.state_dict().items():
        assert torch.allclose(model.state_dict()[key], value, atol=1e-6), key
    assert best_resumed == best


def test_the_epochs_mean_loss_weighs_each_batch_by_its_size():
    class Fixed(torch.nn.Module):  # logits that no step changes (lr 0): each batch's loss is known beforehand
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor([[2.0, 0.0, -1.0]]))

        def forward(self, clips, view):
            return clips[:, :3] * self.w

    clips, labels = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 3.0]]), torch.tensor([0, 2, 1])
    batches = [(clips[:2], labels[:2], None), (clips[2:], labels[2:], None)]  # of 2, then of 1
    model, logged = Fixed(), {}

    class Writer:
        def add_scalar(self, tag, value, step):
            logged[tag] = value

    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    mean = evaluate_module.train_one_epoch(model, batches, optimizer, ["joint"], CPU, False, 0, Writer())
    by_batch = [torch.nn.functional.cross_entropy(model(c, "joint"), y).item() for c, y, _ in batches]
    assert mean == pytest.approx((2 * by_batch[0] + by_batch[1]) / 3, rel=1e-6) and logged["train/loss"] == mean


def test_the_best_epoch_is_the_first_of_equal_results_and_each_epoch_has_its_batch_order(tmp_path, monkeypatch):
    flat = {"joint": {"top1": 50.0, "top5": None}}
    monkeypatch.setattr(evaluate_module, "evaluate", lambda *args: flat)
    orders = []
    train_one_epoch = evaluate_module.train_one_epoch

    def recorded(model, loader, *args):
        orders.append([int(i) for _, _, index in loader for i in index])
        return train_one_epoch(model, loader, *args)

    monkeypatch.setattr(evaluate_module, "train_one_epoch", recorded)
    best = _train(_model(), _Clips(), _settings(tmp_path / "a", epochs=4, eval_freq=1, schedule=()))
    assert best["joint"]["epoch"] == 0 and best["joint"]["last_top1"] == 50.0
    assert len({tuple(order) for order in orders}) == 4  # a batch order of its own each epoch
    first = orders[:]
    orders.clear()
    _train(_model(), _Clips(), _settings(tmp_path / "b", epochs=4, eval_freq=1, schedule=()))
    assert orders == first  # and the same again for the same seed


def test_linear_training_that_moves_an_encoder_is_refused_at_its_end(tmp_path, monkeypatch):
    train_one_epoch = evaluate_module.train_one_epoch

    def moving(model, *args, **kwargs):
        loss = train_one_epoch(model, *args, **kwargs)
        with torch.no_grad():
            model.encoder_q_bone.encoder.gru.weight_hh_l0[0, 0] += 1e-3  # a bug that trains a frozen encoder
        return loss

    monkeypatch.setattr(evaluate_module, "train_one_epoch", moving)
    with pytest.raises(FrozenEncoderError, match=r"encoder_q_bone\.encoder\.gru\.weight_hh_l0"):
        _train(_model(), _Clips(), _settings(tmp_path, view="all", epochs=1))


def test_linear_resume_refuses_a_run_of_other_encoders(tmp_path):
    data = _Clips()
    _train(_model(), data, _settings(tmp_path / "a", epochs=1))
    resume = str(tmp_path / "a" / CHECKPOINT)
    same = _settings(tmp_path / "b", epochs=2, resume=resume)
    _train(_model(), data, same, read_probe_resume(resume, to_dict(same)))
    other = _settings(tmp_path / "c", epochs=2, resume=resume)
    with pytest.raises(FrozenEncoderError, match="--resume .*not those of the pretrained"):
        _train(_model(seed=1), data, other, read_probe_resume(resume, to_dict(other)))


def test_resume_refuses_a_run_of_other_views_or_data(tmp_path):
    data = _Clips()
    first = _settings(tmp_path / "a", epochs=1)
    _train(_model(), data, first)
    resume = str(tmp_path / "a" / CHECKPOINT)
    later = _settings(tmp_path / "b", epochs=2, resume=resume)
    for change, message in (
        (dict(run=dataclasses.replace(later.run, view="bone")), "--view: 'joint' then, 'bone' now"),
        # other data is told by its fingerprint; the folder's path may change (RESUME_MAY_CHANGE)
        (
            dict(data=dataclasses.replace(later.data, fingerprint="fedcba9876543210")),
            r"the training data \(its fingerprint\): '0123456789abcdef' then, 'fedcba9876543210' now",
        ),
        (
            dict(run=dataclasses.replace(later.run, val_fingerprint="fedcba9876543210")),
            r"the evaluation data \(its fingerprint\): '' then, 'fedcba9876543210' now",
        ),
        (
            dict(run=dataclasses.replace(later.run, pretrained_fingerprint="fedcba9876543210")),
            r"the --pretrained checkpoint's content \(its fingerprint\): '' then, 'fedcba9876543210' now",
        ),
        (
            dict(run=dataclasses.replace(later.run, pretrain_cmd_weight=0.0)),  # no flag of this command sets it
            r"the --pretrained checkpoint's --cmd-weight: None then, 0.0 now",
        ),
        (dict(probe=dataclasses.replace(later.probe, finetune=True)), "--finetune: False then, True now"),
        (dict(probe=dataclasses.replace(later.probe, data_ratio=0.5)), "--data-ratio: 1.0 then, 0.5 now"),
    ):
        with pytest.raises(
            CheckpointError, match=f"--resume {resume} was made by a run with other settings or data: {message}"
        ):
            read_probe_resume(resume, to_dict(dataclasses.replace(later, **change)))
    assert not (tmp_path / "b").exists()
    # The same data in another folder, and a longer run at another learning rate, continue it.
    moved = _settings(tmp_path / "c", data_dir="elsewhere/a", epochs=2, lr=0.05, resume=resume)
    best = _train(_model(), data, moved, read_probe_resume(resume, to_dict(moved)))
    assert set(best) == {"joint"}


def test_resume_refuses_what_is_not_an_evaluation_checkpoint(tmp_path):
    pretraining = tmp_path / "checkpoint_0000.pth.tar"
    torch.save({"epoch": 1, "state_dict": {"queue_bone": torch.zeros(2)}, "optimizer": {}}, pretraining)
    with pytest.raises(
        CheckpointError,
        match="not an action_classification.py checkpoint .no 'best' entry.; it is a pretraining checkpoint, "
        "which goes to --pretrained",
    ):
        read_probe_resume(str(pretraining), to_dict(_settings(tmp_path / "x")))
    # the published linear evaluation's checkpoint: it has an optimizer, and one view's best_acc1
    published = tmp_path / "graph-based_checkpoint.pth.tar"
    torch.save({"epoch": 3, "state_dict": {}, "best_acc1": 50.0, "optimizer": {}}, published)
    with pytest.raises(
        CheckpointError, match="is a checkpoint of the published linear evaluation, which this code cannot continue"
    ):
        read_probe_resume(str(published), to_dict(_settings(tmp_path / "x")))
    with pytest.raises(CheckpointError, match="no such file"):
        read_probe_resume(str(tmp_path / "missing.pth.tar"), to_dict(_settings(tmp_path / "x")))


@pytest.mark.parametrize("parse", [parse_classification, parse_knn])
def test_a_random_encoder_sees_the_views_its_folder_would_be_pretrained_on(tmp_path, processed, parse):
    # Recordings of 34 frames: the small-data preset pretrains on 16-frame views (the power of two nearest
    # 34 / 2) cropped to at least 8; an NTU-60 folder keeps the published 64 and 64.
    small = processed(tmp_path / "mine", n=(40, 10), layout=KINECT20, dataset="mine", frames=34)
    ntu = processed(tmp_path / "ntu", n=(40, 10), dataset="ntu60", num_class=60)
    for folder, frames, shortest in ((small, 16, 8), (ntu, 64, 64)):
        settings = prepare_evaluation(*parse(["--data-dir", folder, "--device", "cpu"]))[0]
        assert settings.run.pretrained in ("", None)
        assert (settings.view_frames, settings.min_crop_frames) == (frames, shortest)
    # --view-frames, as the pretraining run was given it: the shortest crop follows as it did there (half the
    # view under the small-data preset; the published 64 under NTU's)
    for folder, shortest in ((small, 16), (ntu, 64)):
        settings = prepare_evaluation(*parse(["--data-dir", folder, "--device", "cpu", "--view-frames", "32"]))[0]
        assert (settings.view_frames, settings.min_crop_frames) == (32, shortest)


def test_default_run_folders_name_what_sets_an_evaluation_apart_from_its_preset(tmp_path, processed):
    small = processed(tmp_path / "mine", n=(40, 10), layout=KINECT20, dataset="mine", frames=34)
    ntu = processed(tmp_path / "ntu", n=(40, 10), dataset="ntu60", num_class=60)

    def folder(parse, data, *flags):
        argv = ["--data-dir", data, "--device", "cpu", "--seed", "3", *flags]
        return os.path.basename(prepare_evaluation(*parse(argv))[0].run.checkpoint_path)

    # a dataset name not published is tagged by its folder's path: two folders may record one name
    mine = "mine-" + hashlib.sha1(os.path.realpath(small).encode()).hexdigest()[:6]
    assert folder(parse_classification, small) == f"{mine}_cross_subject_joint_random_seed3"  # the preset's probe
    assert folder(parse_classification, small, "--probe", "logistic") == f"{mine}_cross_subject_joint_random_seed3"
    assert folder(parse_classification, small, "--probe", "sgd") == f"{mine}_cross_subject_joint_random_sgd_seed3"
    assert folder(parse_classification, ntu) == "ntu60_cross_subject_joint_random_seed3"  # the published SGD probe
    assert folder(parse_classification, ntu, "--probe", "logistic") == "ntu60_cross_subject_joint_random_logistic_seed3"
    assert folder(parse_knn, small) == f"{mine}_cross_subject_joint_random_seed3"
    assert folder(parse_knn, small, "--knn-neighbours", "5") == f"{mine}_cross_subject_joint_random_k5_seed3"
    crop = folder(parse_knn, small, "--knn-neighbours", "5", "--train-crop", "random")
    assert crop == f"{mine}_cross_subject_joint_random_k5_randomcrop_seed3"
    other = processed(tmp_path / "other", n=(40, 10), layout=KINECT20, dataset="mine", frames=34)
    assert folder(parse_knn, other).startswith("mine-") and folder(parse_knn, other) != folder(parse_knn, small)
    (tmp_path / "link").symlink_to(small)  # the same folder through a link: the same runs
    assert folder(parse_knn, str(tmp_path / "link")) == folder(parse_knn, small)


@pytest.mark.parametrize("parse", [parse_classification, parse_knn])
def test_view_frames_with_a_checkpoint_is_a_usage_error(tmp_path, processed, parse, capsys):
    folder = processed(tmp_path / "mine", n=(40, 10), layout=KINECT20, dataset="mine", frames=34)
    ckpt = tmp_path / "c.pth.tar"
    ckpt.write_bytes(b"")  # never read: the flag is refused first
    with pytest.raises(SystemExit) as stop:
        prepare_evaluation(*parse(["--data-dir", folder, "--pretrained", str(ckpt), "--view-frames", "32"]))
    assert stop.value.code == 2 and "--view-frames is for a random encoder" in capsys.readouterr().err


def test_the_logistic_probe_fits_only_the_data_ratio_subset(tmp_path, processed, monkeypatch, one_thread):
    # --data-ratio 0.5: the probe sees the 20 training samples recorded in train_subset.json, no others
    folder = processed(tmp_path / "mine", n=(40, 12), layout=KINECT20, dataset="mine", frames=20)
    seen, real_probe = {}, evaluate_module.logistic_probe

    def recording_probe(train, val, seed=0):
        seen["train_labels"], seen["rows"] = train[1], {v: x.shape[0] for v, x in train[0].items()}
        return real_probe(train, val, seed)

    monkeypatch.setattr(evaluate_module, "logistic_probe", recording_probe)
    out = tmp_path / "run"
    argv = ["--data-dir", folder, "--device", "cpu", "-j", "0", "--view", "joint", "--data-ratio", "0.5"]
    argv += ["--checkpoint-path", str(out), "--results", str(tmp_path / "r.jsonl")]
    settings, model, train, val = prepare_evaluation(*parse_classification(argv))
    assert settings.probe.probe == "logistic" and settings.probe.data_ratio == 0.5
    best = run_classification(settings, model, train, val)
    subset = json.loads((out / "train_subset.json").read_text())
    assert subset["size"] == 20 and seen["rows"] == {"joint": 20}
    # fitted in one go, it writes its results as TensorBoard scalars too (step 0)
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [e.value for e in events.Scalars("val/top1_joint")] == [pytest.approx(best["joint"]["top1"])]
    assert seen["train_labels"].tolist() == subset["labels"] == [i % 3 for i in subset["indices"]]


def test_a_classifier_refuses_a_training_part_of_one_class_and_an_empty_subset(tmp_path, processed):
    # before any work: nothing is written into the run folder
    one_class = processed(tmp_path / "one", n=(12, 6), layout=KINECT20, dataset="mine", frames=20, num_class=1)
    out = tmp_path / "run"
    argv = ["--device", "cpu", "--checkpoint-path", str(out)]
    with pytest.raises(ProcessedDataError, match=r"one.*training part holds one class \(label 0\)"):
        prepare_evaluation(*parse_classification(["--data-dir", one_class, *argv]))
    assert prepare_evaluation(*parse_knn(["--data-dir", one_class, *argv]))[0].stage == "knn"  # kNN needs no two
    two = processed(tmp_path / "two", n=(40, 6), layout=KINECT20, dataset="mine", frames=20, num_class=2)
    with pytest.raises(SystemExit) as exit_:
        prepare_evaluation(*parse_classification(["--data-dir", two, "--data-ratio", "0.01", *argv]))
    assert exit_.value.code == 2  # int(40 x 0.01) = 0 samples: a usage error
    # 2 of 40 samples, labels i % 2: seed 0 draws two odd indices, one class, and the subset is named
    assert set(semi_subset(40, 0.05, 0) % 2) == {1}
    with pytest.raises(ProcessedDataError, match=r"--data-ratio 0.05 subset .* holds one class \(label 1\)"):
        prepare_evaluation(*parse_classification(["--data-dir", two, "--data-ratio", "0.05", "--seed", "0", *argv]))
    assert not out.exists()


def test_classes_only_in_the_evaluation_part_are_named_before_work(tmp_path, processed, capsys):
    folder = processed(tmp_path / "mine", n=(12, 8), layout=KINECT20, dataset="mine", frames=20, num_class=4)
    with open(os.path.join(folder, "train_label.pkl"), "wb") as f:  # training recordings of classes 0-2 only
        pickle.dump(([f"train{i:03d}" for i in range(12)], [i % 3 for i in range(12)]), f)
    for parse in (parse_classification, parse_knn):
        prepare_evaluation(*parse(["--data-dir", folder, "--device", "cpu", "--checkpoint-path", str(tmp_path / "r")]))
        out = capsys.readouterr().out
        assert (
            f"warning: 2 of 8 evaluation recordings of {folder} belong to classes with no training recording (3)" in out
        )
        assert "top-1 is at most 75.0 %" in out
    # a --data-ratio subset: the classes it holds (seed 0 draws 2 of 12 recordings)
    argv = ["--data-dir", folder, "--device", "cpu", "--checkpoint-path", str(tmp_path / "s"), "--seed", "0"]
    prepare_evaluation(*parse_classification([*argv, "--protocol", "cross_subject_semi", "--data-ratio", "0.2"]))
    subset = np.asarray([i % 3 for i in range(12)])[semi_subset(12, 0.2, 0)]
    unseen = sorted(set(range(4)) - set(subset.tolist()))
    assert f"belong to classes with no training recording ({', '.join(map(str, unseen))})" in capsys.readouterr().out
