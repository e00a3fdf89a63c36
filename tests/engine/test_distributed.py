"""Two CPU processes (gloo) × B samples take the same training steps as one process × 2B.

Each rank builds the same model, synchronises BatchNorm statistics over the ranks and gathers keys
into every queue; with the views fed directly, losses and updated weights (queues, BatchNorm
statistics and key encoders included) must match one process that sees all samples. Also: the
torchrun environment, CPU BatchNorm conversion, and `agree` stopping every rank when one fails.
"""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from engine.distributed import (
    AllReduceBatchNorm1d,
    DistContext,
    PeerStoppedError,
    agree,
    all_reduce_sum,
    convert_sync_batchnorm,
    init_distributed,
    leave_together,
    same_on_every_rank,
    unwrap,
    wrap_ddp,
)
from engine.pretrain import train_step
from engine.runtime import RunError
from moco.builder import MoCo

B, WORLD, STEPS = 4, 2, 2
LOSSES = ("loss_ce_joint", "loss_ce_motion", "loss_ce_bone", "loss_cmd", "loss")


def _model():
    torch.manual_seed(0)
    args = {"en_input_size": 150, "en_hidden_size": 8, "en_num_layers": 1, "num_class": 16}
    return MoCo("graph-based", args, dim=16, K=32, m=0.9, topk=16, mlp=True)


def _optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-4)


def _views(step):
    g = torch.Generator().manual_seed(100 + step)
    im_q = torch.randn(WORLD * B, 3, 12, 25, 2, generator=g) * 0.5 + 0.2  # 2B x 3 x T x 25 x 2
    im_k = torch.randn(WORLD * B, 3, 12, 25, 2, generator=g) * 0.5 - 0.1
    return im_q, im_k


def _worker(rank, init_file, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        ctx = init_distributed("cpu")
        assert (ctx.rank, ctx.world_size, ctx.distributed, ctx.owns_group) == (rank, WORLD, True, False)
        model = convert_sync_batchnorm(_model(), ctx.device)
        optimizer = _optimizer(model)
        ddp = wrap_ddp(model, ctx)
        losses = []
        for step in range(STEPS):
            im_q, im_k = (v[rank * B : (rank + 1) * B] for v in _views(step))
            stats = train_step(ddp, optimizer, im_q, im_k)
            losses.append({k: (all_reduce_sum(stats[k]) / WORLD).item() for k in LOSSES})
        if rank == 0:
            torch.save({"losses": losses, "state": unwrap(ddp).state_dict()}, out)
        del ddp
        leave_together(ctx)
    finally:
        dist.destroy_process_group()


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow  # two processes started with spawn
def test_two_ranks_match_one_process_with_the_whole_batch(tmp_path):
    model = _model()
    optimizer = _optimizer(model)
    single = []
    for step in range(STEPS):
        stats = train_step(model, optimizer, *_views(step))
        single.append({k: stats[k].item() for k in LOSSES})
    out = str(tmp_path / "rank0.pt")
    mp.spawn(_worker, args=(str(tmp_path / "init"), out), nprocs=WORLD, join=True)
    result = torch.load(out, weights_only=True)
    for step in range(STEPS):
        for key in LOSSES:
            assert result["losses"][step][key] == pytest.approx(single[step][key], abs=1e-5), (step, key)
    expected = model.state_dict()
    assert result["state"].keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(result["state"][key], value, rtol=0, atol=1e-5, msg=key)
    # the steps moved weights, BatchNorm statistics and every queue
    fresh = _model().state_dict()
    for key in (
        "encoder_q.fc.2.weight",
        "encoder_q_bone.input_norm.running_mean",
        "queue_motion",
        "encoder_k.encoder.gru.weight_hh_l0_reverse",
    ):
        assert not torch.allclose(fresh[key], expected[key]), key
    assert int(expected["queue_ptr"]) == STEPS * WORLD * B


def test_cpu_conversion_keeps_batchnorm_names_and_values():
    model = _model()
    converted = convert_sync_batchnorm(_model(), torch.device("cpu"))
    assert isinstance(converted.encoder_q.input_norm, AllReduceBatchNorm1d)
    assert not converted.encoder_k.input_norm.weight.requires_grad
    assert converted.state_dict().keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        assert torch.equal(converted.state_dict()[key], value)
    # outside a process group it is exactly BatchNorm1d
    x = torch.randn(5, 150, 7)
    reference = nn.BatchNorm1d(150)
    assert torch.equal(AllReduceBatchNorm1d(150)(x), reference(x))


def test_single_process_without_torchrun_environment(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    ctx = init_distributed("cpu", local_rank=3)
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.distributed, ctx.is_main) == (0, 1, 3, False, True)
    assert (ctx.device, ctx.owns_group) == (torch.device("cpu"), False)
    # WORLD_SIZE is read (and checked) with the options: tests/options/test_options.py; here LOCAL_RANK and RANK
    monkeypatch.setenv("LOCAL_RANK", "two")
    with pytest.raises(ValueError, match="LOCAL_RANK='two'"):
        init_distributed("cpu")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert init_distributed("cpu", local_rank=3).local_rank == 1  # torchrun's environment wins over the flag
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ValueError, match="RANK='x'"):
        init_distributed("cpu")


def test_agree_alone_returns_or_raises_as_the_call_does():
    ctx = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    assert agree(ctx, lambda: 7) == 7
    with pytest.raises(KeyError):
        agree(ctx, lambda: {}["missing"])


def _agree_worker(rank, init_file, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        ctx = init_distributed("cpu", world_size=WORLD)

        def prepare():
            if rank == 1:
                raise RuntimeError("rank 1 cannot read its checkpoint")
            return "ready"

        try:
            agree(ctx, prepare)
            outcome = "returned"
        except PeerStoppedError as exc:
            outcome = f"peer stopped: {exc}"
        except RuntimeError as exc:
            outcome = f"own error: {exc}"
        with open(f"{out}.{rank}", "w") as f:
            f.write(outcome)
    finally:
        dist.destroy_process_group()


def _outcomes(worker, tmp_path):
    """What each of WORLD spawned `worker(rank, init_file, out)` processes wrote to its file `out.<rank>`."""
    out = str(tmp_path / "outcome")
    mp.spawn(worker, args=(str(tmp_path / "init"), out), nprocs=WORLD, join=True)
    outcomes = []
    for rank in range(WORLD):
        with open(f"{out}.{rank}") as f:
            outcomes.append(f.read())
    return outcomes


@pytest.mark.slow  # two processes started with spawn
def test_a_rank_that_fails_before_training_stops_every_rank(tmp_path):
    first, second = _outcomes(_agree_worker, tmp_path)
    assert first.startswith("peer stopped: another process of this run stopped before training")
    assert second == "own error: rank 1 cannot read its checkpoint"


def test_world_size_without_torchruns_rendezvous_is_one_line_not_a_traceback(monkeypatch):
    # WORLD_SIZE set by hand, MASTER_ADDR / MASTER_PORT not: torch's env:// start-up would raise deep inside
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RunError, match="WORLD_SIZE=4 without MASTER_ADDR and MASTER_PORT: start the processes with"):
        init_distributed("cpu", world_size=4)


def _same_worker(rank, init_file, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        ctx = init_distributed("cpu")
        found = [same_on_every_rank(ctx, "data abc"), same_on_every_rank(ctx, f"data of rank {rank}")]
        with open(f"{out}.{rank}", "w") as f:
            f.write(repr(found))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two processes started with spawn
def test_every_rank_learns_whether_they_all_hold_the_same_record(tmp_path):
    assert _outcomes(_same_worker, tmp_path) == ["[True, False]"] * WORLD
    assert same_on_every_rank(DistContext(0, 1, -1, torch.device("cpu")), "alone")  # one process agrees


def test_a_lost_peer_is_one_line_in_a_multi_process_run(monkeypatch, capsys):
    from engine.cli import main_guard

    def lost():
        raise RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer [1.2.3.4]:5")

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main_guard("pretrain_cmd.py", lost) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("pretrain_cmd.py: error: another process of this run stopped (") and len(err.splitlines()) == 1
    )
    monkeypatch.setenv("WORLD_SIZE", "1")  # alone, a RuntimeError is a bug: its traceback is shown
    with pytest.raises(RuntimeError):
        main_guard("pretrain_cmd.py", lost)
