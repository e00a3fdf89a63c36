"""moco.sequence_gru: the whole-sequence GRU with a batched recurrent-weight gradient on CPU, against
plain autograd through torch.gru (the obviously-correct version)."""
import pytest
import torch

import moco.sequence_gru as sequence_gru
from moco.sequence_gru import gru_direction

HIDDEN, INPUTS, BATCH = 5, 4, 3


def make_inputs(frames, h0_grad=False, seed=0):
    generator = torch.Generator().manual_seed(seed)
    shapes = ((frames, BATCH, INPUTS), (1, BATCH, HIDDEN), (3 * HIDDEN, INPUTS), (3 * HIDDEN, HIDDEN),
              (3 * HIDDEN,), (3 * HIDDEN,))
    tensors = [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in shapes]
    for i, t in enumerate(tensors):
        t.requires_grad_(i != 1 or h0_grad)
    return tensors  # seq, h0, w_ih, w_hh, b_ih, b_hh


def loss_of(out, h_n, use):
    weight = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
    terms = {'out': (out * weight).sum(), 'h_n': h_n.pow(3).sum()}
    return sum(terms[name] for name in use)


def gradients(fast, tensors, use):
    seq, h0, *weights = tensors
    if fast:
        out, h_n = gru_direction(seq, h0, weights, True)
        assert type(out.grad_fn).__name__ == '_BatchedWeightGradGRUBackward'
    else:
        out, h_n = torch.gru(seq, h0, weights, True, 1, 0.0, True, False, False)
    wanted = [t for t in tensors if t.requires_grad]
    return (out, h_n), torch.autograd.grad(loss_of(out, h_n, use), wanted)


# 1 and 2 frames are the edges; 16, 17 and 40 frames end on, just past and inside a chunk of
# FRAMES_PER_PRODUCT (16) frames summed by one product.
@pytest.mark.parametrize('frames', [1, 2, 16, 17, 40])
@pytest.mark.parametrize('use', [('out', 'h_n'), ('h_n',), ('out',)])
@pytest.mark.parametrize('h0_grad', [False, True])
def test_gradients_equal_plain_autograd(frames, use, h0_grad):
    assert sequence_gru.FRAMES_PER_PRODUCT == 16
    tensors = make_inputs(frames, h0_grad)
    (out, h_n), fast = gradients(True, tensors, use)
    (ref_out, ref_h_n), plain = gradients(False, tensors, use)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=0)
    torch.testing.assert_close(h_n, ref_h_n, rtol=0, atol=0)
    assert len(fast) == len(plain) == (6 if h0_grad else 5)
    for got, expected in zip(fast, plain):
        assert expected.abs().sum() > 0
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_nonzero_initial_state_enters_the_weight_gradient():
    """h0 is a constant (no gradient) but not zero: dW_hh must still contain dGH_0^T h0."""
    tensors = make_inputs(5)
    tensors[1] = tensors[1].detach() + 1.0
    _, fast = gradients(True, tensors, ('h_n',))
    _, plain = gradients(False, tensors, ('h_n',))
    torch.testing.assert_close(fast[2], plain[2], rtol=1e-12, atol=1e-12)  # W_hh


def test_float32_gradients_close_to_plain_autograd():
    tensors = [t.detach().float().requires_grad_(t.requires_grad) for t in make_inputs(33)]
    _, fast = gradients(True, tensors, ('out', 'h_n'))
    _, plain = gradients(False, tensors, ('out', 'h_n'))
    for got, expected in zip(fast, plain):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_plain_path_without_gradients_or_when_turned_off(monkeypatch):
    seq, h0, *weights = make_inputs(6)
    with torch.no_grad():
        out, _ = gru_direction(seq, h0, weights, False)
    assert out.grad_fn is None
    frozen = [w.detach() for w in weights]
    out, _ = gru_direction(seq, h0, frozen, False)  # W_hh needs no gradient: nothing to batch
    assert type(out.grad_fn).__name__ != '_BatchedWeightGradGRUBackward'
    monkeypatch.setattr(sequence_gru, 'FAST_CPU_BACKWARD', False)
    out, _ = gru_direction(seq, h0, weights, True)
    assert type(out.grad_fn).__name__ != '_BatchedWeightGradGRUBackward'


def test_second_backward_is_a_clear_error():
    seq, h0, *weights = make_inputs(4)
    out, h_n = gru_direction(seq, h0, weights, True)
    total = h_n.sum()
    total.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match='backward ran twice'):
        total.backward()


def test_unrecognised_graph_falls_back_with_a_warning(monkeypatch):
    """If a PyTorch version builds the unrolled graph differently, the probe turns the fast path off."""
    monkeypatch.setattr(sequence_gru, '_probe_passed', {})
    monkeypatch.setattr(sequence_gru, '_recurrent_nodes', lambda roots, leaf: [])
    tensors = make_inputs(7)
    seq, h0, *weights = tensors
    with pytest.warns(RuntimeWarning, match='faster CPU backward is off'):
        out, h_n = gru_direction(seq, h0, weights, True)
    assert type(out.grad_fn).__name__ != '_BatchedWeightGradGRUBackward'
    assert sequence_gru._probe_passed == {torch.float64: False}
    got = torch.autograd.grad(loss_of(out, h_n, ('out', 'h_n')), [t for t in tensors if t.requires_grad])
    _, plain = gradients(False, tensors, ('out', 'h_n'))
    for a, b in zip(got, plain):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_in_place_change_of_the_recurrent_weight_is_caught():
    seq, h0, *weights = make_inputs(4)
    w_hh = weights[1].detach().clone().requires_grad_()
    param = torch.nn.Parameter(w_hh.detach().clone())
    out, h_n = gru_direction(seq, h0, [weights[0], param, weights[2], weights[3]], True)
    with torch.no_grad():
        param.add_(1.0)
    with pytest.raises(RuntimeError, match='modified by an inplace operation'):
        h_n.sum().backward()
