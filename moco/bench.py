"""Speed of a CMD training step: whole-sequence encoder against the published per-frame loop.

    python -m moco.bench [--device cpu|cuda] [--amp] [--config paper|small|both] [--steps N]

For each configuration this times, in one process and on the same weights, (a) one full
pretraining step (three query encoders forward + backward, momentum update, three key encoders,
InfoNCE + CMD losses, SGD step) and (b) one encoder forward + backward, each with the
whole-sequence encoder (`BIGRU.forward`) and with the per-frame loop (`BIGRU.forward_loop`, the
published computation). Runs of the two variants alternate so that load from other processes
hits both alike; the median and minimum ms per step, their ratios and the peak memory (resident
set size on CPU, `torch.cuda.max_memory_allocated` on CUDA) are printed. Not part of the tests.
"""
import argparse
import contextlib
import copy
import ctypes
import os
import statistics
import threading
import time

import torch
import torch.nn.functional as F

from moco.builder import MoCo
from moco.encoder import BIGRU
from moco.modalities import MODALITIES

CONFIGS = {
    'paper': dict(hidden=1024, layers=3, batch=64, K=16384, topk=8192, frames=64, mlp=True),
    'small': dict(hidden=256, layers=3, batch=32, K=4096, topk=2048, frames=32, mlp=True),
}
VARIANTS = ('sequence', 'loop')


def _return_freed_memory_to_os() -> None:
    """Make glibc serve allocations above 1 MiB with mmap (and unmap them on free), so that the RSS
    after a step falls back and the RSS peaks of the two variants can be compared."""
    try:
        ctypes.CDLL('libc.so.6').mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory of the code run inside `measure()`: CUDA allocator peak, or on CPU the sampled
    resident set size above its level when `measure()` began."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak = 0

    @staticmethod
    def _rss() -> int:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')

    @contextlib.contextmanager
    def measure(self):
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)
            yield
            self.peak = max(self.peak, torch.cuda.max_memory_allocated(self.device))
            return
        done = threading.Event()
        base = self._rss()

        def sample():
            while not done.wait(0.005):
                self.peak = max(self.peak, self._rss() - base)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def use_loop_encoders(model: torch.nn.Module) -> None:
    """Make every BIGRU in `model` compute with the per-frame loop (the published computation)."""
    for module in model.modules():
        if isinstance(module, BIGRU):
            module.forward = module.forward_loop


def _autocast(device: torch.device, amp: bool):
    dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=amp)


def _train_step(model, optimizer, scaler, im_q, im_k, device, amp):
    """One pretraining step as the training loop runs it."""
    with _autocast(device, amp):
        *logits, labels, loss_cmd = model(im_q, im_k)  # 3 x (N x (1+K)), N, scalar
        loss = loss_cmd + sum(F.cross_entropy(scores.float(), labels) for scores in logits)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def _encoder_step(encoder, x, device, amp):
    """Forward + backward of one encoder."""
    with _autocast(device, amp):
        out = encoder(x)  # N x num_class
    out.float().sum().backward()


def _time_alternating(runs: dict, steps: int, warmup: int, device: torch.device) -> dict:
    """Per variant: (list of seconds per call, peak memory); variants alternate call by call."""
    times = {name: [] for name in runs}
    memory = {name: PeakMemory(device) for name in runs}
    for i in range(warmup + steps):
        for name, run in runs.items():
            _sync(device)
            with memory[name].measure():
                start = time.perf_counter()
                run()
                _sync(device)
                elapsed = time.perf_counter() - start
            if i >= warmup:
                times[name].append(elapsed)
    return {name: (times[name], memory[name].peak) for name in runs}


def _report(title: str, results: dict, device: torch.device) -> None:
    mem_kind = 'max allocated' if device.type == 'cuda' else 'peak RSS growth'
    print(f'  {title}')
    for name, (times, peak) in results.items():
        print(f'    {name:9s} median {1e3 * statistics.median(times):10.1f} ms   '
              f'min {1e3 * min(times):10.1f} ms   {mem_kind} {peak / 2 ** 20:8.0f} MiB')
    (seq, _), (loop, _) = results['sequence'], results['loop']
    print(f'    speed-up of the whole-sequence encoder over the loop: '
          f'median {statistics.median(loop) / statistics.median(seq):.2f}x, '
          f'min {min(loop) / min(seq):.2f}x')


def bench_config(name: str, cfg: dict, device: torch.device, amp: bool, steps: int, warmup: int) -> None:
    """Time the training step and the encoder of one configuration, whole-sequence against loop."""
    print(f'[{name}] hidden {cfg["hidden"]}, layers {cfg["layers"]}, batch {cfg["batch"]}, '
          f'K {cfg["K"]}, topk {cfg["topk"]}, frames {cfg["frames"]}, mlp {cfg["mlp"]}, '
          f'device {device}, amp {amp}', flush=True)
    args_bi_gru = dict(en_input_size=150, en_hidden_size=cfg['hidden'], en_num_layers=cfg['layers'],
                       num_class=128)
    torch.manual_seed(0)
    models = {'sequence': MoCo('graph-based', args_bi_gru, dim=128, K=cfg['K'], topk=cfg['topk'],
                               mlp=cfg['mlp']).to(device)}
    models['loop'] = copy.deepcopy(models['sequence'])
    use_loop_encoders(models['loop'])
    shape = (cfg['batch'], 3, cfg['frames'], 25, 2)
    im_q, im_k = torch.randn(shape, device=device), torch.randn(shape, device=device)
    runs = {}
    for variant in VARIANTS:
        model = models[variant]
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01,
                                    momentum=0.9, weight_decay=1e-4)
        scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == 'cuda')
        runs[variant] = (lambda m=model, o=optimizer, s=scaler:
                         _train_step(m, o, s, im_q, im_k, device, amp))
    _report(f'training step ({len(MODALITIES)} modalities, queries + keys + losses + SGD)',
            _time_alternating(runs, steps, warmup, device), device)

    encoder = models['sequence'].encoder_q
    x = torch.randn(cfg['batch'], cfg['frames'], 150, device=device)  # N x T x 150
    runs = {'sequence': lambda: _encoder_step(encoder, x, device, amp),
            'loop': lambda: _encoder_step(encoder.forward_loop, x, device, amp)}
    _report('one encoder, forward + backward', _time_alternating(runs, steps, warmup, device), device)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default=None, help='cpu or cuda (default: cuda when available)')
    parser.add_argument('--amp', action='store_true',
                        help='autocast (float16 on CUDA with a gradient scaler, bfloat16 on CPU)')
    parser.add_argument('--config', choices=('paper', 'small', 'both'), default='both')
    parser.add_argument('--steps', type=int, default=None,
                        help='timed steps per variant (default 1 on CPU, 10 on CUDA)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed steps per variant first')
    args = parser.parse_args(argv)
    device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    if device.type == 'cuda' and not torch.cuda.is_available():
        parser.error(f'--device {args.device}: CUDA is not available on this machine')
    steps = args.steps or (10 if device.type == 'cuda' else 1)
    if steps < 1 or args.warmup < 0:
        parser.error('--steps must be at least 1 and --warmup at least 0')
    if device.type == 'cuda':
        print(f'GPU: {torch.cuda.get_device_name(device)}; torch {torch.__version__}')
    else:
        _return_freed_memory_to_os()
        print(f'CPU threads: {torch.get_num_threads()}; torch {torch.__version__}')
    names = ('small', 'paper') if args.config == 'both' else (args.config,)
    for name in names:
        bench_config(name, CONFIGS[name], device, args.amp, steps, args.warmup)


if __name__ == '__main__':
    main()
