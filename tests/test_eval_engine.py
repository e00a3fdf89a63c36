"""The linear-evaluation guard (frozen encoders), the three-stream fusion and the training loop."""
import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from engine.checkpoint import CheckpointError
from engine.evaluate import (FUSION, FrozenEncoderError, check_unchanged, evaluate, freeze_encoders,
                              frozen_snapshot, fuse_scores, make_loader, train_classifier)
from engine.pretrained import CLASSIFIER_KEYS, build_model
from engine.runtime import make_writer


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


def _settings(**kw):
    return dict(dict(finetune=False, lr=0.1, momentum=0.9, weight_decay=0.0, epochs=3, schedule=[2],
                     eval_freq=2, seed=0, resume=""), **kw)


def test_frozen_check_catches_a_batchnorm_update():
    torch.manual_seed(0)
    model = build_model(num_class=3, hidden_size=6, num_layers=1)
    freeze_encoders(model)
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
    model = build_model(num_class=3, hidden_size=6, num_layers=1)
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
    c0 = e ** 10 / (e ** 10 + 2) + 2 / (e ** 3 + 2)
    c1 = 1 / (e ** 10 + 2) + 2 * e ** 3 / (e ** 3 + 2)
    assert fused[0, 0].item() == pytest.approx(c0, rel=1e-6) and fused[0, 1].item() == pytest.approx(c1, rel=1e-6)
    # sample 1: class 1 gets 1/(e+2) + e^2/(e^2+2) + 1/3, class 2 gets e/(e+2) + 1/(e^2+2) + 1/3
    c1 = 1 / (e + 2) + e ** 2 / (e ** 2 + 2) + 1 / 3
    c2 = e / (e + 2) + 1 / (e ** 2 + 2) + 1 / 3
    assert fused[1, 1].item() == pytest.approx(c1, rel=1e-6) and fused[1, 2].item() == pytest.approx(c2, rel=1e-6)
    assert fused.argmax(dim=1).tolist() == [1, 1]
    assert (joint + motion + bone).argmax(dim=1).tolist() == [0, 1]
    assert torch.allclose(fused.sum(dim=1), torch.full((2,), 3.0))


def test_evaluate_reports_views_and_fusion():
    torch.manual_seed(0)
    model = build_model(num_class=3, hidden_size=6, num_layers=1)
    data = _Clips()
    loader = make_loader(data, 5, 0, False, 0, torch.device("cpu"))
    metrics = evaluate(model, loader, ["joint", "motion", "bone"], torch.device("cpu"))
    assert set(metrics) == {"joint", "motion", "bone", FUSION}
    with torch.no_grad():
        scores = [model(data.clips, view=v) for v in ("joint", "motion", "bone")]
    expected = (fuse_scores(scores).argmax(1) == data.labels).float().mean().item() * 100
    assert metrics[FUSION]["top1"] == pytest.approx(expected)
    assert metrics["joint"]["top5"] == 100.0  # 3 classes


def test_linear_training_changes_only_the_classifiers(tmp_path):
    torch.manual_seed(0)
    model = build_model(num_class=3, hidden_size=6, num_layers=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = _Clips()
    cpu = torch.device("cpu")
    best = train_classifier(model, make_loader(data, 4, 0, True, 0, cpu), make_loader(data, 4, 0, False, 0, cpu),
                            ["joint", "bone"], _settings(), cpu, str(tmp_path), make_writer(None))
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"encoder_q.fc.weight", "encoder_q.fc.bias", "encoder_q_bone.fc.weight", "encoder_q_bone.fc.bias"}
    assert changed <= CLASSIFIER_KEYS
    assert set(best) == {"joint", "bone"} and all(b["epoch"] in (1, 2) for b in best.values())
    assert data.epochs == [0, 1, 2]
    assert (tmp_path / "checkpoint.pth.tar").is_file()


def test_finetuning_trains_the_encoder_and_resume_continues(tmp_path):
    cpu = torch.device("cpu")
    data = _Clips()

    def run(epochs, resume="", out="a"):
        torch.manual_seed(0)
        model = build_model(num_class=3, hidden_size=6, num_layers=1)
        train_classifier(model, make_loader(data, 4, 0, True, 0, cpu), make_loader(data, 4, 0, False, 0, cpu),
                         ["joint"], _settings(finetune=True, lr=0.01, epochs=epochs, eval_freq=1, resume=resume),
                         cpu, str(tmp_path / out), make_writer(None))
        return model

    initial = build_model(num_class=3, hidden_size=6, num_layers=1)
    straight = run(2)
    assert not torch.equal(straight.encoder_q.encoder.gru.weight_ih_l0, initial.encoder_q.encoder.gru.weight_ih_l0)
    assert not torch.equal(straight.encoder_q.input_norm.running_mean, initial.encoder_q.input_norm.running_mean)
    run(1, out="b")
    resumed = run(2, resume=str(tmp_path / "b" / "checkpoint.pth.tar"), out="b")
    for key, value in straight.state_dict().items():
        assert torch.allclose(resumed.state_dict()[key], value, atol=1e-6), key


def test_linear_resume_refuses_a_run_of_other_encoders(tmp_path):
    cpu = torch.device("cpu")
    data = _Clips()
    loaders = (make_loader(data, 4, 0, True, 0, cpu), make_loader(data, 4, 0, False, 0, cpu))
    torch.manual_seed(0)
    train_classifier(build_model(num_class=3, hidden_size=6, num_layers=1), *loaders, ["joint"],
                     _settings(epochs=1), cpu, str(tmp_path), make_writer(None))
    resume = str(tmp_path / "checkpoint.pth.tar")
    torch.manual_seed(0)
    same = build_model(num_class=3, hidden_size=6, num_layers=1)
    train_classifier(same, *loaders, ["joint"], _settings(epochs=2, resume=resume), cpu, str(tmp_path / "b"),
                     make_writer(None))
    torch.manual_seed(1)
    other = build_model(num_class=3, hidden_size=6, num_layers=1)
    with pytest.raises(FrozenEncoderError, match="--resume .*not those of the pretrained"):
        train_classifier(other, *loaders, ["joint"], _settings(epochs=2, resume=resume), cpu, str(tmp_path / "c"),
                         make_writer(None))


def test_resume_refuses_a_run_of_other_views_or_data(tmp_path):
    cpu = torch.device("cpu")
    data = _Clips()
    loaders = (make_loader(data, 4, 0, True, 0, cpu), make_loader(data, 4, 0, False, 0, cpu))
    first = _settings(epochs=1, data_dir="data/a", pretrained="", num_class=3, data_ratio=1.0)
    torch.manual_seed(0)
    train_classifier(build_model(num_class=3, hidden_size=6, num_layers=1), *loaders, ["joint"], first, cpu,
                     str(tmp_path / "a"), make_writer(None))
    resume = str(tmp_path / "a" / "checkpoint.pth.tar")
    for views, change, message in (
            (["bone"], {}, r"evaluated views: \['joint'\] in the checkpoint, \['bone'\] now"),
            (["joint"], {"data_dir": "data/b"}, "--data-dir: 'data/a' in the checkpoint, 'data/b' now"),
            (["joint"], {"finetune": True}, "--finetune: False in the checkpoint, True now"),
            (["joint"], {"data_ratio": 0.5}, "--data-ratio: 1.0 in the checkpoint, 0.5 now")):
        torch.manual_seed(0)
        with pytest.raises(CheckpointError, match=f"--resume {resume} belongs to another run: {message}"):
            train_classifier(build_model(num_class=3, hidden_size=6, num_layers=1), *loaders, views,
                             dict(first, epochs=2, resume=resume, **change), cpu, str(tmp_path / "b"),
                             make_writer(None))
    assert not (tmp_path / "b").exists()
    # The same folder by another spelling, and a longer run at another learning rate, continue it.
    torch.manual_seed(0)
    best = train_classifier(build_model(num_class=3, hidden_size=6, num_layers=1), *loaders, ["joint"],
                            dict(first, epochs=2, lr=0.05, data_dir="./data/a", resume=resume), cpu,
                            str(tmp_path / "c"), make_writer(None))
    assert set(best) == {"joint"}
