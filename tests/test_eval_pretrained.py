"""Loading released-format and our checkpoints onto the downstream model, and each loading error."""
import os

import pytest
import torch

from moco.builder import MoCo
from engine.checkpoint import CheckpointError
from moco.modalities import modality
from engine.pretrained import ENCODERS, downstream_model, load_pretrained

HIDDEN, LAYERS = 8, 2


def _pretrain_model(mlp=True, hidden=HIDDEN, layers=LAYERS):
    torch.manual_seed(0)
    model = MoCo("graph-based", {"en_input_size": 150, "en_hidden_size": hidden, "en_num_layers": layers,
                                 "num_class": 128}, dim=16, K=32, topk=8, mlp=mlp, pretrain=True)
    with torch.no_grad():  # BatchNorm statistics as after training, so that they matter
        for prefix in ENCODERS.values():
            norm = getattr(model, prefix).input_norm
            norm.running_mean.uniform_(-1, 1)
            norm.running_var.uniform_(0.5, 2)
            norm.num_batches_tracked.fill_(7)
    return model


def _save_released(tmp_path, state_dict, name="checkpoint_0450.pth.tar"):
    path = os.path.join(tmp_path, name)
    torch.save({"epoch": 451, "state_dict": state_dict, "optimizer": {"state": {}, "param_groups": []}}, path)
    return path


def test_released_checkpoint_gives_the_published_features(tmp_path):
    source = _pretrain_model(mlp=True).eval()
    path = _save_released(tmp_path, source.state_dict())
    model, info = load_pretrained(path, num_class=5)
    assert (info["hidden_size"], info["num_layers"], info["input_size"], info["mlp"]) == (HIDDEN, LAYERS, 150, True)
    assert info["format"] == "released" and info["epoch"] == 451
    model.eval()
    x = torch.randn(3, 3, 10, 25, 2)
    for view, prefix in ENCODERS.items():
        # the published per-frame computation with the source query encoder
        expected = getattr(source, prefix).forward_loop(modality(x, view), return_features=True)
        assert torch.allclose(model(x, view=view, knn_eval=True), expected, atol=1e-5)
        fc = getattr(model, prefix).fc
        assert fc.weight.shape == (5, 2 * HIDDEN)
        assert torch.equal(fc.bias, torch.zeros(5))
        assert 0.005 < fc.weight.std().item() < 0.015 and abs(fc.weight.mean().item()) < 0.005


def test_module_prefix_and_plain_head_and_our_format(tmp_path):
    source = _pretrain_model(mlp=False, hidden=6, layers=3)
    state = {"module." + k: v for k, v in source.state_dict().items()}
    model, info = load_pretrained(_save_released(tmp_path, state), num_class=4)
    assert (info["hidden_size"], info["num_layers"], info["mlp"], info["module_prefix"]) == (6, 3, False, True)
    expected = source.encoder_q_bone.encoder.gru.weight_hh_l2_reverse
    assert torch.equal(model.encoder_q_bone.encoder.gru.weight_hh_l2_reverse, expected)
    ours = os.path.join(tmp_path, "ours.pth.tar")
    torch.save({"epoch": 3, "state_dict": source.state_dict(), "optimizer": {}, "arch": source.arch,
                "options": {"pre_dataset": "ntu120"}}, ours)
    _, info = load_pretrained(ours, num_class=4)
    assert info["format"] == "ours" and info["pretrain_dataset"] == "ntu120"


def test_not_a_checkpoint(tmp_path):
    path = os.path.join(tmp_path, "notes.pth.tar")
    with open(path, "w") as f:
        f.write("this is text, not a checkpoint\n")
    with pytest.raises(CheckpointError, match="notes.pth.tar"):
        load_pretrained(path, num_class=3)
    plain = os.path.join(tmp_path, "plain.pth.tar")
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match=r"plain\.pth\.tar.*'state_dict'"):
        load_pretrained(plain, num_class=3)


def test_truncated_checkpoint(tmp_path):
    path = _save_released(tmp_path, _pretrain_model().state_dict())
    with open(path, "rb") as f:
        head = f.read(os.path.getsize(path) // 2)
    with open(path, "wb") as f:
        f.write(head)
    with pytest.raises(CheckpointError, match="checkpoint_0450.pth.tar"):
        load_pretrained(path, num_class=3)


def test_other_architecture(tmp_path):
    resnet = {"conv1.weight": torch.zeros(4, 3, 3, 3), "fc.weight": torch.zeros(10, 4)}
    path = _save_released(tmp_path, resnet, "resnet.pth.tar")
    with pytest.raises(CheckpointError, match=r"resnet\.pth\.tar.*another architecture.*conv1\.weight"):
        load_pretrained(path, num_class=3)
    # a unidirectional GRU encoder: the '_reverse' weights are missing
    state = {k: v for k, v in _pretrain_model().state_dict().items() if "_reverse" not in k}
    path = _save_released(tmp_path, state, "onedir.pth.tar")
    with pytest.raises(CheckpointError, match=r"onedir\.pth\.tar.*missing .*weight_hh_l0_reverse"):
        load_pretrained(path, num_class=3)


def test_unexpected_missing_and_misshapen_keys(tmp_path):
    state = _pretrain_model().state_dict()
    extra = dict(state, **{"encoder_q.extra.weight": torch.zeros(3)})
    with pytest.raises(CheckpointError, match=r"unexpected encoder_q\.extra\.weight"):
        load_pretrained(_save_released(tmp_path, extra, "extra.pth.tar"), num_class=3)
    fewer = {k: v for k, v in state.items() if k != "encoder_q_motion.input_norm.running_var"}
    with pytest.raises(CheckpointError, match=r"missing encoder_q_motion\.input_norm\.running_var"):
        load_pretrained(_save_released(tmp_path, fewer, "fewer.pth.tar"), num_class=3)
    bad = dict(state, **{"encoder_q.input_norm.weight": torch.ones(140)})
    with pytest.raises(CheckpointError, match=r"other shapes encoder_q\.input_norm\.weight \(140,\)"):
        load_pretrained(_save_released(tmp_path, bad, "bad.pth.tar"), num_class=3)
    mixed = dict(state)
    for key, value in _pretrain_model(hidden=4).state_dict().items():
        if key.startswith("encoder_q_bone."):
            mixed[key] = value
    with pytest.raises(CheckpointError, match="encoders differ"):
        load_pretrained(_save_released(tmp_path, mixed, "mixed.pth.tar"), num_class=3)


def test_requested_size_must_match(tmp_path):
    path = _save_released(tmp_path, _pretrain_model().state_dict())
    with pytest.raises(CheckpointError, match="hidden_size=8.*hidden_size=16"):
        load_pretrained(path, num_class=3, hidden_size=16)


def test_random_baseline_without_checkpoint():
    model, info = downstream_model(None, num_class=7, hidden_size=5, num_layers=1)
    assert info["format"] == "random" and model.encoder_q.encoder.gru.hidden_size == 5
    assert torch.equal(model.encoder_q_motion.fc.bias, torch.zeros(7))
