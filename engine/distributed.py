"""Multi-process training set-up: torchrun / `--local_rank` environment, synchronised BatchNorm, DDP.

One process per device. Under `torchrun` (or the older `torch.distributed.launch`, which passes
`--local_rank`) RANK, WORLD_SIZE and LOCAL_RANK come from the environment; without them the run is
a single process. CUDA uses NCCL and torch's SyncBatchNorm; CPU uses gloo and
`AllReduceBatchNorm1d`, which computes the same batch statistics over all ranks.
"""

import hashlib
import inspect
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from engine.runtime import RunError

log = logging.getLogger(__name__)


@dataclass
class DistContext:
    """Where this process stands: its rank, the number of processes, its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False  # this process initialised the process group (and ends it)

    @property
    def distributed(self):
        return self.world_size > 1

    @property
    def is_main(self):
        """Only the main process (rank 0) writes files and shows progress."""
        return self.rank == 0


def is_initialized():
    return dist.is_available() and dist.is_initialized()


def _env_int(name, default):
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r}: expected an integer") from None


def init_distributed(device="cpu", local_rank=-1, world_size=1):
    """Join the process group torchrun describes (or use one already initialised), else run alone.

    device: the run's device ('cpu', 'cuda' or 'cuda:N'; options.parsing.check_device). local_rank: the
    published `--local_rank` flag, used when LOCAL_RANK is not in the environment. world_size: the
    number of processes (WORLD_SIZE as options.parsing read it).
    """
    owns_group = False
    if is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
    else:
        rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", local_rank if local_rank is not None and local_rank >= 0 else 0)
    base = torch.device(device)
    if base.type == "cuda":
        index = local_rank if world_size > 1 or base.index is None else base.index
        base = torch.device("cuda", index)
        torch.cuda.set_device(base)
    if world_size > 1 and not is_initialized():
        missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
        if missing:
            raise RunError(
                f"WORLD_SIZE={world_size} without {' and '.join(missing)}: start the processes with torchrun "
                f"(torchrun --nproc_per_node {world_size} pretrain_cmd.py ...), which sets them"
            )
        backend = "nccl" if base.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://", world_size=world_size, rank=rank)
        owns_group = True
        log.info("process %d of %d joined the %s group on %s", rank, world_size, backend, base)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=base, owns_group=owns_group)


class PeerStoppedError(RuntimeError):
    """Another process of a multi-process run stopped with an error (it printed the reason)."""


def agree(ctx, fn):
    """fn()'s result, with every rank learning whether it failed on any rank: the failing rank raises its
    error, the others PeerStoppedError, so that no rank waits for a peer that has stopped."""
    error = None
    try:
        result = fn()
    except Exception as exc:
        if not ctx.distributed:
            raise
        error, result = exc, None
    if ctx.distributed:
        ok = all_reduce_min(torch.tensor([0.0 if error else 1.0], device=ctx.device))
        if error is not None:
            raise error
        if ok.item() < 1:
            raise PeerStoppedError("another process of this run stopped before training (its message says why)")
    return result


def leave_together(ctx):
    """Wait for every rank before leaving after a successful run.

    gloo aborts a rank whose peer tears the group down while it is still finishing (rank 0 writing
    the last checkpoint, say); call this on the success path only, never after an error.
    """
    if ctx.distributed:
        dist.barrier()


def cleanup(ctx):
    """Leave the process group if this process initialised it in `init_distributed`."""
    if ctx.owns_group and is_initialized():
        dist.destroy_process_group()


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose gradient is the sum over ranks of the incoming gradients."""

    @staticmethod
    def forward(ctx, tensor):
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        out = grad.clone()
        dist.all_reduce(out)
        return out


class AllReduceBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics are those of the batch of all ranks together.

    For CPU (gloo) runs, where torch's SyncBatchNorm does not run. Mean and variance are
    all-reduced through autograd-aware collectives, so gradients are those of one batch made of
    every rank's samples. Running statistics and state-dict names are BatchNorm1d's. Outside a
    process group, or in eval mode, it is a plain BatchNorm1d.
    """

    def forward(self, x):
        if not (self.training and is_initialized()):
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)  # 1
        sums = _AllReduceSum.apply(torch.cat([x.sum(dim=dims), count]))  # C + 1
        total = sums[-1]
        mean = sums[:-1] / total  # C
        centred = x - mean.view(shape)  # like x
        var = _AllReduceSum.apply((centred * centred).sum(dim=dims)) / total  # C (biased)
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            with torch.no_grad():
                unbiased = var * (total / (total - 1).clamp_min(1))  # C
                self.running_mean.mul_(1 - factor).add_(factor * mean)
                self.running_var.mul_(1 - factor).add_(factor * unbiased)
        out = centred * torch.rsqrt(var + self.eps).view(shape)  # like x
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def _convert_cpu(module):
    """`module` with every BatchNorm1d replaced by an AllReduceBatchNorm1d holding the same state."""
    if isinstance(module, nn.BatchNorm1d) and not isinstance(module, AllReduceBatchNorm1d):
        synced = AllReduceBatchNorm1d(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        synced.load_state_dict(module.state_dict())
        synced.train(module.training)
        if module.affine:
            synced.weight.requires_grad_(module.weight.requires_grad)
            synced.bias.requires_grad_(module.bias.requires_grad)
        return synced.to(next(module.parameters(), module.running_mean).device)
    for name, child in module.named_children():
        module.add_module(name, _convert_cpu(child))
    return module


def convert_sync_batchnorm(model, device):
    """`model` with its BatchNorm layers computing statistics over all ranks (state-dict names kept)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _convert_cpu(model)


def wrap_ddp(model, ctx):
    """`model` in DistributedDataParallel when running on several processes, else unchanged.

    Buffers (queues, BatchNorm statistics) are not broadcast: they stay equal on every rank because
    keys are gathered from all ranks and BatchNorm statistics are synchronised.
    """
    if not ctx.distributed:
        return model
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    # torch >= 2.12 names the per-forward buffer broadcast `forward_sync_buffers`
    newer = "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    no_buffer_sync = {"forward_sync_buffers": False} if newer else {"broadcast_buffers": False}
    return DistributedDataParallel(model, device_ids=device_ids, **no_buffer_sync)


def unwrap(model):
    """The module inside a DistributedDataParallel wrapper (its state dict has no `module.` prefix)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def all_reduce_sum(tensor):
    """Sum of `tensor` over all ranks (itself when running alone); returns a new tensor."""
    out = tensor.clone()
    if is_initialized():
        dist.all_reduce(out)
    return out


def same_on_every_rank(ctx, text):
    """Whether `text` (a record of what a rank is about to do) is the same on every rank (True alone)."""
    if not ctx.distributed:
        return True
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "big")  # fits an int64 with its negative
    extremes = torch.tensor([value, -value], dtype=torch.int64)  # gloo and NCCL reduce int64; on the CPU for gloo
    extremes = extremes.to(ctx.device)
    dist.all_reduce(extremes, op=dist.ReduceOp.MAX)
    return int(extremes[0]) == -int(extremes[1])  # the largest equals the smallest


def all_reduce_min(tensor):
    """Element-wise minimum of `tensor` over all ranks (itself when running alone)."""
    out = tensor.clone()
    if is_initialized():
        dist.all_reduce(out, op=dist.ReduceOp.MIN)
    return out
