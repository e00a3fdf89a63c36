"""The whole-sequence encoder against the published per-frame loop (features and gradients)."""

import math

import pytest
import torch

from moco.encoder import BIGRU, SkeletonGRUEncoder


def tiny_encoder(num_class=7, hidden=5, layers=3):
    torch.manual_seed(0)
    return BIGRU(en_input_size=150, en_hidden_size=hidden, en_num_layers=layers, num_class=num_class).double()


def per_frame_reference(encoder, x):
    """The published computation written out: step nn.GRU one frame at a time, carrying the state."""
    seq = encoder.input_norm(x.transpose(1, 2)).transpose(1, 2)  # N x T x 150
    hidden = None
    for t in range(seq.shape[1]):
        out, hidden = encoder.encoder.gru(seq[:, t : t + 1], hidden)
    return out[:, 0]  # N x 2H


def loss(encoder, feature):
    """A scalar that depends on every parameter, features and head alike."""
    return (feature**2).sum() + (encoder.fc(feature) ** 3).sum()


def grads(encoder):
    return {name: p.grad.clone() for name, p in encoder.named_parameters()}


@pytest.mark.parametrize("layers,frames", [(1, 9), (3, 9), (3, 40)])  # 40: several 16-frame products
def test_features_and_gradients_match_loop(layers, frames):
    encoder = tiny_encoder(layers=layers)
    x = torch.randn(4, frames, 150, dtype=torch.float64)

    fast = encoder(x, knn_eval=True)
    assert fast.shape == (4, 10)
    loss(encoder, fast).backward()
    fast_grads = grads(encoder)
    encoder.zero_grad()

    ref = per_frame_reference(encoder, x)
    loss(encoder, ref).backward()
    ref_grads = grads(encoder)
    encoder.zero_grad()

    torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-12)
    assert set(fast_grads) == set(ref_grads)
    for name in ref_grads:
        assert ref_grads[name].abs().sum() > 0, name
        torch.testing.assert_close(fast_grads[name], ref_grads[name], rtol=1e-9, atol=1e-12, msg=name)


def test_head_output_and_forward_loop_match():
    encoder = tiny_encoder()
    x = torch.randn(3, 6, 150, dtype=torch.float64)
    out = encoder(x)
    assert out.shape == (3, 7)
    torch.testing.assert_close(out, encoder.fc(per_frame_reference(encoder, x)))
    torch.testing.assert_close(encoder.forward_loop(x), out)
    torch.testing.assert_close(encoder.forward_loop(x, knn_eval=True), encoder(x, knn_eval=True))


def test_eval_mode_matches_loop():
    encoder = tiny_encoder()
    encoder(torch.randn(3, 6, 150, dtype=torch.float64))  # move the BatchNorm statistics
    encoder.eval()
    x = torch.randn(2, 5, 150, dtype=torch.float64)
    torch.testing.assert_close(encoder(x, knn_eval=True), per_frame_reference(encoder, x))


def test_standard_bidirectional_pass_differs():
    """A plain bidirectional GRU pass is a different function: the published one runs both directions forward."""
    encoder = tiny_encoder()
    x = torch.randn(3, 8, 150, dtype=torch.float64)
    seq = encoder.input_norm(x.transpose(1, 2)).transpose(1, 2)
    standard, _ = encoder.encoder.gru(seq)  # N x T x 2H
    ours = encoder(x, knn_eval=True)
    hidden = encoder.hidden_size
    # The forward direction of the top layer differs too, because layer 2 saw different inputs.
    assert (standard[:, -1, :hidden] - ours[:, :hidden]).abs().max() > 1e-3
    assert (standard[:, -1, hidden:] - ours[:, hidden:]).abs().max() > 1e-3


def test_state_dict_names():
    encoder = tiny_encoder()
    expected = {
        f"encoder.gru.{kind}_l{layer}{suffix}"
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        for layer in range(3)
        for suffix in ("", "_reverse")
    }
    expected |= {"fc.weight", "fc.bias"}
    expected |= {f"input_norm.{k}" for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    assert set(encoder.state_dict()) == expected


def test_initialisation():
    torch.manual_seed(0)
    hidden = 5
    encoder = BIGRU(150, hidden, 3, num_class=10)
    gru = encoder.encoder.gru
    # Xavier-uniform bound sqrt(6 / (fan_in + fan_out)); PyTorch's GRU default is 1/sqrt(hidden) = 0.447.
    bound_ih0 = math.sqrt(6 / (150 + 3 * hidden))  # 0.191
    assert gru.weight_ih_l0.abs().max() <= bound_ih0
    assert gru.weight_ih_l0.abs().max() > 0.9 * bound_ih0
    bound_hh = math.sqrt(6 / (hidden + 3 * hidden))  # 0.548
    assert gru.weight_hh_l2_reverse.abs().max() <= bound_hh
    assert gru.weight_hh_l2_reverse.abs().max() > 1 / math.sqrt(hidden)
    assert gru.bias_ih_l0.abs().max() <= 1 / math.sqrt(hidden)
    bound_fc = math.sqrt(6 / (2 * hidden + 10))  # 0.548; default would be 1/sqrt(10) = 0.316
    assert 1 / math.sqrt(2 * hidden) < encoder.fc.weight.abs().max() <= bound_fc


def test_mlp_head_keeps_the_xavier_initialised_fc_as_its_last_layer():
    """Published: fc = Sequential(Linear(2H, 2H) default init, ReLU, <the original Xavier fc>)."""
    torch.manual_seed(0)
    hidden, dim = 1024, 128
    encoder = BIGRU(150, hidden, 1, num_class=dim)
    original = encoder.fc
    rng_after_constructor = torch.get_rng_state()
    encoder.use_mlp_head()
    first, relu, last = encoder.fc
    assert last is original and isinstance(relu, torch.nn.ReLU)
    assert first.weight.shape == (2 * hidden, 2 * hidden) and last.weight.shape == (dim, 2 * hidden)
    # the new first layer is drawn after the constructor's Xavier pass, as in the published builder
    torch.set_rng_state(rng_after_constructor)
    torch.testing.assert_close(first.weight, torch.nn.Linear(2 * hidden, 2 * hidden).weight, rtol=0, atol=0)
    # Xavier-uniform: U(-b, b), b = sqrt(6 / (fan_in + fan_out)), std b / sqrt(3) = 0.0303 for 2048 -> 128;
    # PyTorch's default (kaiming-uniform, a = sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)), std 0.0128.
    xavier_std = math.sqrt(6 / (2 * hidden + dim)) / math.sqrt(3)
    default_std = 1 / math.sqrt(3 * 2 * hidden)
    assert abs(xavier_std - 0.0303) < 1e-4 and abs(default_std - 0.0128) < 1e-4
    # 262,144 and 4,194,304 uniform draws: the standard error of the sample std is under 0.1 %
    assert last.weight.std().item() == pytest.approx(xavier_std, rel=0.01)
    assert last.weight.abs().max().item() == pytest.approx(math.sqrt(6 / (2 * hidden + dim)), rel=0.01)
    assert first.weight.std().item() == pytest.approx(default_std, rel=0.01)


def test_bad_input_shape():
    encoder = tiny_encoder()
    with pytest.raises(ValueError, match=r"N x T x 150.*\(2, 6, 75\)"):
        encoder(torch.zeros(2, 6, 75, dtype=torch.float64))


def test_published_name_and_arguments_build_the_same_encoder():
    torch.manual_seed(3)
    published = BIGRU(en_input_size=150, en_hidden_size=4, en_num_layers=2, num_class=6).double()
    torch.manual_seed(3)
    encoder = SkeletonGRUEncoder(input_size=150, hidden_size=4, num_layers=2, out_dim=6).double()
    assert isinstance(published, SkeletonGRUEncoder)
    assert published.state_dict().keys() == encoder.state_dict().keys()
    for key, value in encoder.state_dict().items():
        assert torch.equal(published.state_dict()[key], value), key
    x = torch.randn(3, 5, 150, dtype=torch.float64)
    assert encoder(x).shape == (3, 6) and encoder(x, return_features=True).shape == (3, 8)
    torch.testing.assert_close(published(x), encoder(x), rtol=0, atol=0)
    torch.testing.assert_close(published(x, knn_eval=True), encoder(x, return_features=True), rtol=0, atol=0)
    torch.testing.assert_close(
        published.forward_loop(x, knn_eval=True), encoder.forward_loop(x, return_features=True), rtol=0, atol=0
    )


def test_published_bigru_defaults():
    # The published signature: BIGRU(en_input_size, en_hidden_size, en_num_layers=3, num_class=60).
    encoder = BIGRU(150, 4)
    assert (encoder.num_layers, encoder.fc.out_features, encoder.fc.in_features) == (3, 60, 8)
