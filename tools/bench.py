"""Speed of a CMD training step: whole-sequence encoder against the published per-frame loop.

    python -m tools.bench [--device cpu|cuda] [--amp] [--config paper|small|both] [--steps N]
                         [--kinds train,encoder,inference]

For each configuration this times, in one process and on the same weights, (a) one full
pretraining step (three query encoders forward + backward, momentum update, three key encoders,
InfoNCE + CMD losses, SGD step), (b) one encoder forward + backward and (c) one encoder forward
without gradients (what key encoders and feature extraction do), each with the whole-sequence
encoder (`SkeletonGRUEncoder.forward`) and with the per-frame loop (`forward_loop`, the published
computation). Calls of the two variants alternate so that load from other processes hits both
alike; the median and minimum ms per call are printed with three ratios: of the medians, of the
minima, and the median of the ratios of neighbouring calls (the steadiest on a machine whose speed
drifts). Peak memory is
`torch.cuda.max_memory_allocated` on CUDA; on CPU it is, for the training step, the peak resident
set size of a fresh process that builds one variant and runs one step (reported with the size
before the step).
Not part of the tests. On a CPU shared with other busy processes, use `--threads 1`: OpenMP threads
waiting for each other on oversubscribed cores can make a step 10-50x slower and the ratios noise.
"""

import argparse
import copy
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from dataset.layouts import NTU25
from moco.builder import MoCo
from moco.encoder import SkeletonGRUEncoder
from moco.modalities import MODALITIES
from options.parsing import check_device
from options.presets import preset

_PAPER = preset("pretrain", "ntu60")
CONFIGS = {
    "paper": dict(
        hidden=_PAPER["hidden_size"],
        layers=_PAPER["num_layers"],
        batch=_PAPER["batch_size"],
        K=_PAPER["contrast_k"],
        topk=_PAPER["topk"],
        frames=_PAPER["view_frames"],
        mlp=_PAPER["mlp"],
    ),
    "small": dict(hidden=256, layers=3, batch=32, K=4096, topk=2048, frames=32, mlp=True),
}
VARIANTS = ("sequence", "loop")
KINDS = {
    "train": f"training step ({len(MODALITIES)} modalities: queries, keys, losses, SGD)",
    "encoder": "one encoder, forward + backward",
    "inference": "one encoder, forward without gradients",
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def use_loop_encoders(model: torch.nn.Module) -> None:
    """Make every encoder in `model` compute with the per-frame loop (the published computation)."""
    for module in model.modules():
        if isinstance(module, SkeletonGRUEncoder):
            module.forward = module.forward_loop


def _autocast(device: torch.device, amp: bool):
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=amp)


def _train_step(model, optimizer, scaler, im_q, im_k, device, amp) -> None:
    """One pretraining step as the training loop runs it."""
    with _autocast(device, amp):
        *logits, labels, loss_cmd = model(im_q, im_k)  # 3 x (N x (1+K)), N, scalar
        loss = loss_cmd + sum(F.cross_entropy(scores.float(), labels) for scores in logits)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def _encoder_step(forward, x, device, amp) -> None:
    """Forward + backward of one encoder."""
    with _autocast(device, amp):
        out = forward(x)  # N x num_class
    out.float().sum().backward()


def _inference_step(forward, x, device, amp) -> None:
    """Forward of one encoder without gradients."""
    with torch.no_grad(), _autocast(device, amp):
        forward(x)  # N x num_class


def make_runs(cfg: dict, device: torch.device, amp: bool, variants=VARIANTS) -> dict:
    """{kind: {variant: callable}} for every kind of KINDS; every variant has the same weights."""
    args_bi_gru = dict(
        en_input_size=NTU25.input_size, en_hidden_size=cfg["hidden"], en_num_layers=cfg["layers"], num_class=128
    )
    torch.manual_seed(0)
    base = MoCo("graph-based", args_bi_gru, dim=128, K=cfg["K"], topk=cfg["topk"], mlp=cfg["mlp"]).to(device)
    shape = (cfg["batch"], NTU25.channels, cfg["frames"], NTU25.num_joints, NTU25.bodies)
    im_q, im_k = torch.randn(shape, device=device), torch.randn(shape, device=device)  # N x 3 x T x 25 x 2
    x = torch.randn(cfg["batch"], cfg["frames"], NTU25.input_size, device=device)  # N x T x 150
    runs = {kind: {} for kind in KINDS}
    for i, variant in enumerate(variants):
        model = base if i == len(variants) - 1 else copy.deepcopy(base)
        if variant == "loop":
            use_loop_encoders(model)
        optimizer = torch.optim.SGD(
            [p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9, weight_decay=1e-4
        )
        scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")
        runs["train"][variant] = lambda m=model, o=optimizer, s=scaler: _train_step(m, o, s, im_q, im_k, device, amp)
        runs["encoder"][variant] = lambda e=model.encoder_q: _encoder_step(e, x, device, amp)
        runs["inference"][variant] = lambda e=model.encoder_q: _inference_step(e, x, device, amp)
    return runs


def time_alternating(runs: dict, steps: int, warmup: int, device: torch.device) -> dict:
    """{variant: (seconds of each timed call, CUDA peak bytes or None)}; variants alternate call by call."""
    times = {name: [] for name in runs}
    peaks = {name: 0 for name in runs}
    for i in range(warmup + steps):
        for name, run in runs.items():
            _sync(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            start = time.perf_counter()
            run()
            _sync(device)
            elapsed = time.perf_counter() - start
            if device.type == "cuda":
                peaks[name] = max(peaks[name], torch.cuda.max_memory_allocated(device))
            if i >= warmup:
                times[name].append(elapsed)
    return {name: (times[name], peaks[name] if device.type == "cuda" else None) for name in runs}


def _proc_status_bytes(field: str) -> int:
    """A memory field of /proc/self/status ('VmRSS' now, 'VmHWM' peak of this process image) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field} line")


def _rss_child(config: str, kind: str, variant: str, amp: bool) -> None:
    """In a fresh process: build one variant, run one call, print the RSS before it and the peak."""
    runs = make_runs(CONFIGS[config], torch.device("cpu"), amp, variants=(variant,))
    before = _proc_status_bytes("VmRSS")
    runs[kind][variant]()
    print(f"rss {before} {_proc_status_bytes('VmHWM')}")


def cpu_peak_rss(config: str, kind: str, variant: str, amp: bool) -> str:
    """'peak RSS ... MiB (... before the call)' measured in a fresh process."""
    command = [
        sys.executable,
        "-m",
        "tools.bench",
        "--device",
        "cpu",
        "--config",
        config,
        "--threads",
        str(torch.get_num_threads()),
        "--rss-child",
        f"{kind}:{variant}",
    ]
    command += ["--amp"] if amp else []
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    before, peak = (int(v) for v in result.stdout.split("rss ")[-1].split())
    return f"peak RSS {peak / 2**20:7.0f} MiB ({before / 2**20:.0f} MiB before the call)"


def report(title: str, results: dict, memory: dict) -> None:
    print(f"  {title}")
    for name, (times, _) in results.items():
        print(
            f"    {name:9s} median {1e3 * statistics.median(times):10.1f} ms   "
            f"min {1e3 * min(times):10.1f} ms   {memory[name]}"
        )
    (seq, _), (loop, _) = results["sequence"], results["loop"]
    paired = statistics.median(a / b for a, b in zip(loop, seq))
    print(
        f"    loop / whole-sequence time: {statistics.median(loop) / statistics.median(seq):.2f}x of the medians, "
        f"{min(loop) / min(seq):.2f}x of the minima, {paired:.2f}x median of neighbouring calls",
        flush=True,
    )


def bench_config(name: str, device: torch.device, amp: bool, steps: int, warmup: int, kinds=tuple(KINDS)) -> None:
    """Time the `kinds` of one configuration, whole-sequence against loop."""
    cfg = CONFIGS[name]
    print(
        f"[{name}] hidden {cfg['hidden']}, layers {cfg['layers']}, batch {cfg['batch']}, K {cfg['K']}, "
        f"topk {cfg['topk']}, frames {cfg['frames']}, mlp {cfg['mlp']}, device {device}, amp {amp}",
        flush=True,
    )
    runs = make_runs(cfg, device, amp)
    for i, kind in enumerate(kinds):
        # The first kind's warm-up also warms the encoder computations timed after it.
        results = time_alternating(runs[kind], steps, warmup if i == 0 else 0, device)
        if device.type == "cuda":
            memory = {v: f"max allocated {peak / 2**20:7.0f} MiB" for v, (_, peak) in results.items()}
        elif kind == "train":
            memory = {v: cpu_peak_rss(name, kind, v, amp) for v in VARIANTS}
        else:  # a fresh process per variant costs minutes on CPU; the training step's peak covers this
            memory = {v: "" for v in VARIANTS}
        report(KINDS[kind], results, memory)
    del runs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument(
        "--amp", action="store_true", help="autocast (float16 on CUDA with a gradient scaler, bfloat16 on CPU)"
    )
    parser.add_argument("--config", choices=("paper", "small", "both"), default="both")
    parser.add_argument(
        "--steps", type=int, default=None, help="timed calls per variant (default 1 on CPU, 10 on CUDA)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed calls per variant before the timed ones (of the first kind)"
    )
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help=f"comma-separated, from {', '.join(KINDS)} (default: all)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch (default: torch's choice; 1 is steadier on a busy machine)",
    )
    parser.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    device = torch.device(check_device(parser, args.device))
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, found {args.threads} (leave it out for torch's choice)")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.rss_child:
        kind, variant = args.rss_child.split(":")
        _rss_child(args.config, kind, variant, args.amp)
        return
    steps = args.steps if args.steps is not None else (10 if device.type == "cuda" else 1)
    if steps < 1 or args.warmup < 0:
        parser.error("--steps must be at least 1 and --warmup at least 0")
    kinds = tuple(k for k in args.kinds.split(",") if k)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        parser.error(f"--kinds {args.kinds}: choose from {', '.join(KINDS)}")
    if device.type == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(device)}; torch {torch.__version__}")
    else:
        print(f"CPU threads: {torch.get_num_threads()}; torch {torch.__version__}")
    for name in ("small", "paper") if args.config == "both" else (args.config,):
        bench_config(name, device, args.amp, steps, args.warmup, kinds)


if __name__ == "__main__":
    main()
