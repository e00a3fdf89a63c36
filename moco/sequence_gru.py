"""One forward-in-time, single-direction GRU over a whole sequence, with a faster backward on CPU.

`gru_direction(seq, h0, weights, training)` computes exactly

    torch.gru(seq, h0, weights, has_biases=True, num_layers=1, dropout=0, train=training,
              bidirectional=False, batch_first=False)          # seq: T x N x I, h0: 1 x N x H

and returns the same (output T x N x H, last state 1 x N x H). `BIGRU.features` calls it once per
layer and direction (SPEC §3.1).

Why it exists. ATen's CPU GRU is unrolled for autograd: frame t's recurrent product
gh_t = h_{t-1} W_hh^T + b_hh is one addmm node, and its backward forms the rank-N (N = batch) update
dGH_t^T h_{t-1} of the 3H x H weight gradient and adds it to an accumulator: T thin products and T
full-size additions per layer and direction, about a sixth of a forward + backward at the paper's
size. Here, under autograd on CPU, the unrolled graph is built with a detached view of W_hh, so those
updates are never computed; a pre-hook on each recurrent addmm node catches dGH_t as autograd passes
it, and dW_hh = sum_t dGH_t^T h_{t-1} is formed as one thick product per chunk of frames. Every other
gradient is autograd's own. The result equals torch.gru's gradient up to float summation order.

The recurrent nodes are recognised by their bias input (the AccumulateGrad node of the b_hh leaf).
A tiny probe, once per process and dtype, compares the gradients with plain autograd; if the
recognition or the comparison fails (a future PyTorch may build the graph differently) the plain path
is used, with one warning. `FAST_CPU_BACKWARD = False` turns the fast path off.
"""
import warnings

import torch
from torch.autograd.function import once_differentiable

FAST_CPU_BACKWARD = True
FRAMES_PER_PRODUCT = 16  # frames whose dGH_t^T h_{t-1} updates are summed by one matrix product
_probe_passed = {}  # dtype -> bool


def _plain(seq, h0, weights, training):
    return torch.gru(seq, h0, list(weights), True, 1, 0.0, training, False, False)


def gru_direction(seq: torch.Tensor, h0: torch.Tensor, weights, training: bool):
    """torch.gru over the whole sequence (time-major), one layer, one direction. -> (T x N x H, 1 x N x H)."""
    w_hh = weights[1]
    if (FAST_CPU_BACKWARD and torch.is_grad_enabled() and w_hh.requires_grad
            and seq.device.type == 'cpu' and seq.dtype in (torch.float32, torch.float64)
            and all(w.dtype == seq.dtype for w in weights) and not torch.is_autocast_enabled('cpu')
            and seq.shape[0] > 0 and _probe(seq.dtype)):
        return _BatchedWeightGradGRU.apply(seq, h0, training, *weights)
    return _plain(seq, h0, weights, training)


def _recurrent_nodes(roots, b_hh_leaf: torch.Tensor) -> list:
    """The addmm backward nodes whose bias input is `b_hh_leaf`: one per frame."""
    found, seen, stack = [], set(), [r for r in roots if r is not None]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        nexts = node.next_functions
        if (type(node).__name__ == 'AddmmBackward0' and nexts and nexts[0][0] is not None
                and getattr(nexts[0][0], 'variable', None) is b_hh_leaf):
            found.append(node)
        stack.extend(child for child, _ in nexts if child is not None)
    return found


class _WeightGradAccumulator:
    """Receives dGH_t for t = T-1, T-2, ..., 0 (the order autograd must visit the frames in) and adds
    sum_t dGH_t^T h_{t-1} into a 3H x H gradient, FRAMES_PER_PRODUCT frames per product."""

    def __init__(self, h0: torch.Tensor, out: torch.Tensor):
        self.h0, self.out = h0.detach(), out.detach()  # 1 x N x H, T x N x H
        self.grad = None  # 3H x H after the first product
        self.pending = []  # dGH of frames next_frame+1, next_frame+2, ... (descending arrival)
        self.next_frame = out.shape[0] - 1

    def add(self, d_gh: torch.Tensor) -> None:
        self.pending.append(d_gh)
        self.next_frame -= 1
        if len(self.pending) == FRAMES_PER_PRODUCT:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        first = self.next_frame + 1  # earliest frame among the pending ones
        count = len(self.pending)
        d_gh = torch.stack(self.pending[::-1])  # count x N x 3H, frames first .. first+count-1
        if first == 0:
            h_prev = torch.cat([self.h0, self.out[:count - 1]])  # count x N x H
        else:
            h_prev = self.out[first - 1:first - 1 + count]
        d_gh, h_prev = d_gh.reshape(-1, d_gh.shape[-1]).t(), h_prev.reshape(-1, h_prev.shape[-1])
        self.grad = d_gh @ h_prev if self.grad is None else self.grad.addmm_(d_gh, h_prev)  # 3H x H
        self.pending = []


class _BatchedWeightGradGRU(torch.autograd.Function):
    """torch.gru (one layer, one direction, time-major) with dW_hh formed in thick products."""

    @staticmethod
    def forward(ctx, seq, h0, training, w_ih, w_hh, b_ih, b_hh):
        needs = ctx.needs_input_grad
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_(bool(need))
                      for t, need in zip((seq, h0, w_ih, b_ih, b_hh), (needs[0], needs[1], needs[3], True, True))]
            x, h, w_ih_leaf, b_ih_leaf, b_hh_leaf = leaves
            w_hh_const = w_hh.detach()  # shares the version counter: in-place changes are still caught
            out, h_n = torch.gru(x, h, [w_ih_leaf, w_hh_const, b_ih_leaf, b_hh_leaf], True, 1, 0.0, training,
                                 False, False)
        nodes = _recurrent_nodes([out.grad_fn, h_n.grad_fn], b_hh_leaf)
        if len(nodes) != seq.shape[0]:
            raise RuntimeError(f'whole-sequence GRU: found {len(nodes)} recurrent products for '
                               f'{seq.shape[0]} frames; set moco.sequence_gru.FAST_CPU_BACKWARD = False')
        accumulator = _WeightGradAccumulator(h, out)
        ctx.hooks = [node.register_prehook(lambda grad_outputs: accumulator.add(grad_outputs[0]))
                     for node in nodes]
        ctx.inner = (leaves, out, h_n, accumulator)
        ctx.set_materialize_grads(False)
        return out.detach(), h_n.detach()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_h_n):
        if ctx.inner is None:
            raise RuntimeError('whole-sequence GRU: backward ran twice through the same forward; '
                               'run the forward again (retain_graph is not supported here)')
        leaves, out, h_n, accumulator = ctx.inner
        ctx.inner = None
        outputs, grads = [], []
        for tensor, grad in ((out, grad_out), (h_n, grad_h_n)):
            if grad is not None:
                outputs.append(tensor)
                grads.append(grad)
        wanted = [leaf for leaf in leaves if leaf.requires_grad]
        try:
            if outputs:
                found = torch.autograd.grad(outputs, wanted, grads, allow_unused=True)
            else:
                found = [None] * len(wanted)
        finally:
            for hook in ctx.hooks:
                hook.remove()
        if outputs and accumulator.next_frame != -1:
            raise RuntimeError(f'whole-sequence GRU: recurrent gradients reached frame '
                               f'{accumulator.next_frame + 1}, expected frame 0; '
                               'set moco.sequence_gru.FAST_CPU_BACKWARD = False')
        accumulator.flush()
        by_leaf = dict(zip((id(leaf) for leaf in wanted), found))
        g_seq, g_h0, g_w_ih, g_b_ih, g_b_hh = (by_leaf.get(id(leaf)) for leaf in leaves)
        return g_seq, g_h0, None, g_w_ih, accumulator.grad, g_b_ih, g_b_hh


def _probe(dtype: torch.dtype) -> bool:
    """Once per process and dtype: does the fast path give plain autograd's gradients on a tiny GRU?"""
    if dtype not in _probe_passed:
        passed, reason = False, ''
        try:
            generator = torch.Generator().manual_seed(0)
            frames, batch, inputs, hidden = 2 * FRAMES_PER_PRODUCT + 3, 3, 4, 5
            tensors = [torch.randn(shape, generator=generator, dtype=dtype)
                       for shape in ((frames, batch, inputs), (1, batch, hidden), (3 * hidden, inputs),
                                     (3 * hidden, hidden), (3 * hidden,), (3 * hidden,))]
            tensors = [t.requires_grad_() for t in tensors]
            seq, h0, weights = tensors[0], tensors[1], tensors[2:]
            weight_out = torch.randn(frames, batch, hidden, generator=generator, dtype=dtype)
            results = []
            for fast in (True, False):
                with torch.enable_grad():
                    if fast:
                        out, h_n = _BatchedWeightGradGRU.apply(seq, h0, True, *weights)
                    else:
                        out, h_n = _plain(seq, h0, weights, True)
                    loss = (out * weight_out).sum() + h_n.pow(2).sum()
                results.append(torch.autograd.grad(loss, tensors))
            tolerance = 1e-4 if dtype == torch.float32 else 1e-10
            passed = all(torch.allclose(a, b, rtol=tolerance, atol=tolerance) for a, b in zip(*results))
            reason = 'gradients differ from plain autograd'
        except RuntimeError as error:
            reason = str(error)
        if not passed:
            warnings.warn(f'whole-sequence GRU: the faster CPU backward is off ({reason}); '
                          'using plain autograd', RuntimeWarning)
        _probe_passed[dtype] = passed
    return _probe_passed[dtype]
