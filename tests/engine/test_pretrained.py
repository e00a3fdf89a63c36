"""Loading released-format and our checkpoints onto the downstream model, and each loading error."""

import dataclasses
import os
import re

import pytest
import torch

from dataset.files import file_fingerprint
from dataset.layouts import KINECT20, NTU25
from engine.checkpoint import CheckpointError
from engine.pretrained import (
    PUBLISHED_VIEWS,
    build_classifier,
    checkpoint_layout,
    downstream_model,
    encoder_sizes,
    encoder_state,
    load_pretrained,
)
from moco.builder import MoCo
from moco.modalities import MODALITIES, modality
from moco.model import CMD, ThreeStreamClassifier

HIDDEN, LAYERS = 8, 2


def _pretrain_model(mlp=True, hidden=HIDDEN, layers=LAYERS, layout=NTU25):
    torch.manual_seed(0)
    model = MoCo(
        "graph-based",
        {"en_input_size": layout.input_size, "en_hidden_size": hidden, "en_num_layers": layers, "num_class": 128},
        dim=16,
        K=32,
        topk=8,
        mlp=mlp,
        pretrain=True,
        layout=layout,
    )
    with torch.no_grad():  # BatchNorm statistics as after training, so that they matter
        for name in MODALITIES:
            norm = model.query_encoder(name).input_norm
            norm.running_mean.uniform_(-1, 1)
            norm.running_var.uniform_(0.5, 2)
            norm.num_batches_tracked.fill_(7)
    return model


def _save_released(tmp_path, state_dict, name="checkpoint_0450.pth.tar"):
    path = os.path.join(tmp_path, name)
    torch.save({"epoch": 451, "state_dict": state_dict, "optimizer": {"state": {}, "param_groups": []}}, path)
    return path


def _load(path, num_class=3, **sizes):
    return load_pretrained(path, num_class, NTU25, **sizes)


def test_released_checkpoint_gives_the_published_features(tmp_path):
    source = _pretrain_model(mlp=True).eval()
    path = _save_released(tmp_path, source.state_dict())
    model, info = _load(path, num_class=5)
    assert isinstance(model, ThreeStreamClassifier)
    assert (info["hidden_size"], info["num_layers"], info["input_size"], info["mlp"]) == (HIDDEN, LAYERS, 150, True)
    assert info["format"] == "released" and info["epoch"] == 451 and info["pretrain_dataset"] is None
    # a released checkpoint's views are the paper's: evaluation crops of 64 frames
    assert (info["view_frames"], info["min_crop_frames"]) == (64, 64) == tuple(PUBLISHED_VIEWS.values())
    model.eval()
    x = torch.randn(3, 3, 10, 25, 2)
    for view in MODALITIES:
        # the published per-frame computation with the source query encoder
        expected = source.query_encoder(view).forward_loop(modality(x, view, NTU25.parents), return_features=True)
        assert torch.allclose(model.features(x, view), expected, atol=1e-5)
        fc = model.query_encoder(view).fc
        assert fc.weight.shape == (5, 2 * HIDDEN)
        assert torch.equal(fc.bias, torch.zeros(5))
        assert 0.005 < fc.weight.std().item() < 0.015 and abs(fc.weight.mean().item()) < 0.005


def test_module_prefix_plain_head_and_both_of_our_formats(tmp_path):
    source = _pretrain_model(mlp=False, hidden=6, layers=3)
    state = {"module." + k: v for k, v in source.state_dict().items()}
    model, info = _load(_save_released(tmp_path, state), num_class=4)
    assert (info["hidden_size"], info["num_layers"], info["mlp"], info["module_prefix"]) == (6, 3, False, True)
    expected = source.encoder_q_bone.encoder.gru.weight_hh_l2_reverse
    assert torch.equal(model.encoder_q_bone.encoder.gru.weight_hh_l2_reverse, expected)
    # checkpoints of earlier versions of this code: flat 'options' and 'arch'
    older = os.path.join(tmp_path, "older.pth.tar")
    arch = {
        "args_bi_gru": {"en_input_size": 150, "en_hidden_size": 6, "en_num_layers": 3, "num_class": 16},
        "layout": NTU25.to_dict(),
    }
    torch.save(
        {
            "epoch": 3,
            "state_dict": source.state_dict(),
            "optimizer": {},
            "arch": arch,
            "options": {"pre_dataset": "ntu120", "hidden_size": 6, "num_layers": 3},
        },
        older,
    )
    _, info = _load(older, num_class=4)
    assert info["format"] == "ours" and info["pretrain_dataset"] == "ntu120" and info["cmd_weight"] is None
    assert (info["view_frames"], info["min_crop_frames"]) == (64, 64)
    # ours: the settings record; the views' length comes from it
    ours = os.path.join(tmp_path, "ours.pth.tar")
    record = {
        "preset": "small",
        "data": {"dataset": "my_set", "layout": NTU25.to_dict()},
        "encoder": {"hidden_size": 6, "num_layers": 3},
        "views": {"view_frames": 32, "min_crop_frames": 16, "corrupted_joints": 4},
        "contrast": {"cmd_weight": 0.0},
    }
    torch.save({"epoch": 3, "state_dict": source.state_dict(), "optimizer": {}, "settings": record}, ours)
    _, info = _load(ours, num_class=4)
    assert info["cmd_weight"] == 0.0  # the results say which method made the encoder
    assert (info["format"], info["pretrain_dataset"], info["view_frames"], info["min_crop_frames"]) == (
        "ours",
        "my_set",
        32,
        16,
    )
    # sizes recorded otherwise than the weights say: refused
    bad = os.path.join(tmp_path, "bad_record.pth.tar")
    for encoder, said in (
        ({"hidden_size": 7}, "hidden_size=6, but hidden_size=7"),
        ({"num_layers": 2}, "num_layers=3, but num_layers=2"),
    ):
        torch.save({"epoch": 3, "state_dict": source.state_dict(), "settings": dict(record, encoder=encoder)}, bad)
        with pytest.raises(CheckpointError, match=f"{said} was requested or recorded"):
            _load(bad, num_class=4)
    with pytest.raises(CheckpointError, match="num_layers=3, but num_layers=1 was requested or recorded"):
        _load(ours, num_class=4, num_layers=1)
    # a record no pretraining writes (edited by hand): named, not a traceback or 5,000-frame crops later
    for part, value, said in (
        (
            "encoder",
            {"hidden_size": "abc", "num_layers": 3},
            "hidden_size='abc'; a pretraining records an integer from 1",
        ),
        ("encoder", {"hidden_size": 6, "num_layers": 0}, "num_layers=0; a pretraining records an integer from 1"),
        ("views", {"view_frames": 1, "min_crop_frames": 16}, "view_frames=1; a pretraining records an integer from 2"),
        ("views", {"view_frames": 0, "min_crop_frames": 16}, "view_frames=0; a pretraining records"),
        ("views", {"view_frames": 32, "min_crop_frames": 1.5}, "min_crop_frames=1.5; a pretraining records"),
        ("views", {"view_frames": True, "min_crop_frames": 16}, "view_frames=True; a pretraining records"),
    ):
        torch.save({"epoch": 3, "state_dict": source.state_dict(), "settings": dict(record, **{part: value})}, bad)
        with pytest.raises(CheckpointError, match=f"bad_record.pth.tar: its settings record holds {re.escape(said)}"):
            _load(bad, num_class=4)
    long_views = {"view_frames": 500, "min_crop_frames": 16}  # older versions let a pretraining take them
    torch.save({"epoch": 3, "state_dict": source.state_dict(), "settings": dict(record, views=long_views)}, bad)
    assert _load(bad, num_class=4)[1]["view_frames"] == 500
    # the training part it learnt from, as evaluations compare it with the folder's
    learnt = os.path.join(tmp_path, "learnt.pth.tar")
    data = dict(record["data"], fingerprint="abc")
    torch.save({"epoch": 3, "state_dict": source.state_dict(), "settings": dict(record, data=data)}, learnt)
    assert _load(learnt, num_class=4)[1]["pretrain_fingerprint"] == "abc"


def test_the_layout_of_a_checkpoint(tmp_path):
    assert checkpoint_layout({"state_dict": {}}, "x") == NTU25  # released: the published layout
    assert checkpoint_layout({"settings": {"data": {"layout": KINECT20.to_dict()}}}, "x") == KINECT20
    assert checkpoint_layout({"arch": {"layout": KINECT20.to_dict()}}, "x") == KINECT20
    with pytest.raises(CheckpointError, match="checkpoint x: unreadable layout record"):
        checkpoint_layout({"settings": {"data": {"layout": {"name": "broken"}}}}, "x")
    path = _save_released(tmp_path, _pretrain_model().state_dict())
    with pytest.raises(
        CheckpointError,
        match=r"records no layout and is read as a released checkpoint, of layout 'ntu25' \(25 joints, 2 bodies\), "
        r"but the data folder holds layout 'kinect20' \(20 joints, 1 bodies\); they differ in [^;]*$",
    ):
        load_pretrained(path, 3, KINECT20)
    # a checkpoint of ours without its settings, of 20 joints x 3 channels: not taken for NTU's without a word
    bare = os.path.join(tmp_path, "bare.pth.tar")
    torch.save({"epoch": 1, "state_dict": _pretrain_model(layout=KINECT20).state_dict()}, bare)
    for data in (KINECT20, NTU25):  # whichever layout the data has
        with pytest.raises(
            CheckpointError,
            match=r"read as a released checkpoint, of layout 'ntu25' \(25 joints, 2 bodies\), but its encoders take 60 "
            r"inputs a frame, not 150: give the checkpoint its pretraining wrote",
        ):
            load_pretrained(bare, 3, data)
    recorded = os.path.join(tmp_path, "recorded.pth.tar")
    torch.save(
        {"state_dict": _pretrain_model().state_dict(), "settings": {"data": {"layout": NTU25.to_dict()}}}, recorded
    )
    with pytest.raises(CheckpointError, match=r"^checkpoint \S+ was pretrained on skeletons of layout 'ntu25'"):
        load_pretrained(recorded, 3, KINECT20)
    # the same name and size, another skeleton: the message says what differs
    moved = dataclasses.replace(NTU25, centre=3, parents=(0,) * 25)
    with pytest.raises(
        CheckpointError,
        match=r"holds layout 'ntu25' \(25 joints, 2 bodies\); they differ in parents, centre 1 against 3$",
    ):
        load_pretrained(path, 3, moved)
    # the name and the corrupted joints are not the skeleton: an evaluation does not need them to agree
    renamed = dataclasses.replace(NTU25, name="my_ntu", corrupted_joints=4)
    info = load_pretrained(path, 3, renamed)[1]
    assert info["hidden_size"] > 0 and info["checkpoint_fingerprint"] == file_fingerprint(path)  # what results record


def test_not_a_checkpoint(tmp_path):
    path = os.path.join(tmp_path, "notes.pth.tar")
    with open(path, "w") as f:
        f.write("this is text, not a checkpoint\n")
    with pytest.raises(CheckpointError, match="notes.pth.tar"):
        _load(path)
    plain = os.path.join(tmp_path, "plain.pth.tar")
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match=r"plain\.pth\.tar.*'state_dict'"):
        _load(plain)


def test_truncated_checkpoint(tmp_path):
    path = _save_released(tmp_path, _pretrain_model().state_dict())
    with open(path, "rb") as f:
        head = f.read(os.path.getsize(path) // 2)
    with open(path, "wb") as f:
        f.write(head)
    with pytest.raises(CheckpointError, match="checkpoint_0450.pth.tar"):
        _load(path)


def test_other_architecture(tmp_path):
    resnet = {"conv1.weight": torch.zeros(4, 3, 3, 3), "fc.weight": torch.zeros(10, 4)}
    path = _save_released(tmp_path, resnet, "resnet.pth.tar")
    with pytest.raises(CheckpointError, match=r"resnet\.pth\.tar.*another architecture.*conv1\.weight"):
        _load(path)
    # a unidirectional GRU encoder: the '_reverse' weights are missing
    state = {k: v for k, v in _pretrain_model().state_dict().items() if "_reverse" not in k}
    path = _save_released(tmp_path, state, "onedir.pth.tar")
    with pytest.raises(CheckpointError, match=r"onedir\.pth\.tar.*missing .*weight_hh_l0_reverse"):
        _load(path)
    # an LSTM's (4H, H) recurrent weights where a GRU has (3H, H): refused before a model is built
    state = dict(_pretrain_model().state_dict())
    for prefix in ("encoder_q", "encoder_q_motion", "encoder_q_bone"):
        key = f"{prefix}.encoder.gru.weight_hh_l0"
        state[key] = torch.zeros(4 * HIDDEN, HIDDEN)
    path = _save_released(tmp_path, state, "lstm.pth.tar")
    lstm_shape = rf"another architecture: .*weight_hh_l0 has shape \({4 * HIDDEN}, {HIDDEN}\), expected \(3H, H\)"
    with pytest.raises(CheckpointError, match=r"lstm\.pth\.tar.*" + lstm_shape):
        _load(path)


@pytest.mark.parametrize("key", ["best", "best_acc1"])
def test_an_evaluations_checkpoint_is_no_pretrained_encoder(tmp_path, key):
    # a fine-tuned (or probed) model's encoders: trained with labels, not a self-supervised encoder
    classifier = ThreeStreamClassifier(NTU25.input_size, HIDDEN, LAYERS, 3, NTU25.parents)
    path = str(tmp_path / "checkpoint.pth.tar")
    torch.save({"epoch": 3, "state_dict": classifier.state_dict(), key: {}}, path)
    with pytest.raises(CheckpointError, match=rf"checkpoint {path} is an evaluation's \(it holds '{key}'\)"):
        _load(path)


def test_unexpected_missing_and_misshapen_keys(tmp_path):
    state = _pretrain_model().state_dict()
    extra = dict(state, **{"encoder_q.extra.weight": torch.zeros(3)})
    with pytest.raises(CheckpointError, match=r"unexpected encoder_q\.extra\.weight"):
        _load(_save_released(tmp_path, extra, "extra.pth.tar"))
    fewer = {k: v for k, v in state.items() if k != "encoder_q_motion.input_norm.running_var"}
    with pytest.raises(CheckpointError, match=r"missing encoder_q_motion\.input_norm\.running_var"):
        _load(_save_released(tmp_path, fewer, "fewer.pth.tar"))
    bad = dict(state, **{"encoder_q.input_norm.weight": torch.ones(140)})
    with pytest.raises(CheckpointError, match=r"other shapes encoder_q\.input_norm\.weight \(140,\)"):
        _load(_save_released(tmp_path, bad, "bad.pth.tar"))
    mixed = dict(state)
    for key, value in _pretrain_model(hidden=4).state_dict().items():
        if key.startswith("encoder_q_bone."):
            mixed[key] = value
    with pytest.raises(CheckpointError, match="encoders differ"):
        _load(_save_released(tmp_path, mixed, "mixed.pth.tar"))


def test_encoder_state_and_sizes_read_the_published_names():
    state = encoder_state({"state_dict": {"module." + k: v for k, v in _pretrain_model().state_dict().items()}}, "x")
    assert all(k.startswith("encoder_q") and ".fc" not in k for k in state)
    assert not any(k.startswith("encoder_k") or k.startswith("queue") for k in state)
    assert encoder_sizes(state, "x") == {"input_size": 150, "hidden_size": HIDDEN, "num_layers": LAYERS}


def test_requested_size_must_match(tmp_path):
    path = _save_released(tmp_path, _pretrain_model().state_dict())
    with pytest.raises(CheckpointError, match="hidden_size=8.*hidden_size=16"):
        _load(path, hidden_size=16)


def test_random_baseline_without_checkpoint():
    model, info = downstream_model("", num_class=7, layout=NTU25, hidden_size=5, num_layers=1)
    assert info["format"] == "random" and model.encoder_q.encoder.gru.hidden_size == 5
    assert (info["view_frames"], info["min_crop_frames"], info["path"]) == (64, 64, None)
    assert torch.equal(model.encoder_q_motion.fc.bias, torch.zeros(7))
    kinect, info = downstream_model(None, num_class=4, layout=KINECT20, hidden_size=5, num_layers=1)
    assert info["input_size"] == 60 and kinect.encoder_q.encoder.gru.input_size == 60
    assert build_classifier(4, 5, 1, KINECT20).state_dict().keys() == kinect.state_dict().keys()
    views = {"view_frames": 16, "min_crop_frames": 8}  # a small-data pretraining's, say
    _, info = downstream_model("", num_class=4, layout=KINECT20, hidden_size=5, num_layers=1, views=views)
    assert (info["view_frames"], info["min_crop_frames"]) == (16, 8)


def test_a_2d_layout_meets_its_checkpoint_whatever_its_unused_axis_pairs(tmp_path):
    # 2-D skeletons are centred, not rotated: a folder whose layout leaves the axis pairs out (or gives
    # others) holds the same data, so an evaluation does not need them to agree
    flat = dataclasses.replace(NTU25, name="flat", channels=2)
    torch.manual_seed(0)
    model = CMD(flat.input_size, HIDDEN, LAYERS, flat.parents, contrast_dim=16, contrast_k=32, topk=8)
    path = os.path.join(tmp_path, "flat.pth.tar")
    torch.save({"epoch": 3, "state_dict": model.state_dict(), "settings": {"data": {"layout": flat.to_dict()}}}, path)
    assert load_pretrained(path, 3, dataclasses.replace(flat, z_axis=(), x_axis=()))[1]["hidden_size"] == HIDDEN
    with pytest.raises(CheckpointError, match=r"they differ in centre 1 against 0$"):
        load_pretrained(path, 3, dataclasses.replace(flat, centre=0, z_axis=()))
