"""The CMD pretraining loop: data, model, SGD, checkpoints, resume, logging, several processes.

`run_pretraining(args)` runs a whole pretraining from the options of `options.options_pretraining`.
Its pieces are usable alone: `build_model`, `train_step` (one optimisation step on given views),
`train_one_epoch`, `save_pretraining_checkpoint`, `resume_from`.

Loss = CE_joint + CE_motion + CE_bone + loss_cmd (the model applies cmd_weight). Checkpoints
(docs/published-behaviour.md §3.3) are written by rank 0 only, atomically, after every epoch: first
`checkpoint_%04d.pth.tar` after epochs 0, 10, 20, …, then `checkpoint_last.pth.tar`, each holding
{'epoch': next epoch, 'state_dict' (no DDP prefix), 'optimizer'} plus 'arch', 'options', 'rng',
'log' (the epoch's line of log.jsonl) and, with --amp, 'scaler'. The epoch's line is appended to
`log.jsonl` once both are written.

A resume refuses a checkpoint whose 'options' differ from this run's in any setting outside
RESUME_MAY_CHANGE, re-creates the periodic checkpoint of the resumed epoch when it is missing, and
cuts log.jsonl back to the epochs before the resumed one.
"""
import json
import logging
import os
import shutil

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from dataset.layouts import NTU25
from dataset.processed import resolve_data_dir
from engine.checkpoint import (CheckpointError, check_same_run, read_checkpoint, rng_state, save_checkpoint_atomic,
                               set_rng_state)
from engine.distributed import (all_reduce_min, all_reduce_sum, cleanup, convert_sync_batchnorm, init_distributed,
                              leave_together, unwrap, wrap_ddp)
from engine.pretrained import checkpoint_layout
from engine.runtime import (adjust_learning_rate, append_jsonl, atomic_output, atomic_write_text, json_line,
                            make_writer, save_settings, seed_everything, topk_correct)
from feeder.augmentations import pretraining_views
from feeder.feeder_pretraining import PretrainingFeeder
from feeder.seeding import epoch_generator, worker_init_fn
from moco.builder import MoCo
from moco.modalities import MODALITIES
from options.options_pretraining import RESUME_MAY_CHANGE

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 10
LAST_CHECKPOINT = "checkpoint_last.pth.tar"
LOG = "log.jsonl"
# Constructor arguments a resumed checkpoint must share with the model built from the options (its
# layout is compared first, on its own, for a message that names both layouts).
ARCH_KEYS = ("skeleton_representation", "args_bi_gru", "dim", "K", "mlp")
# How the settings without a flag of their own are named in messages.
SETTING_NAMES = {"global_batch_size": "global batch (--batch-size x processes)",
                 "world_size": "number of processes", "steps_per_epoch": "steps per epoch",
                 "train_samples": "training samples in --data-dir"}


class SettingsError(ValueError):
    """The options cannot make a valid pretraining run (found before training starts)."""


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stops without writing a checkpoint."""


def build_model(args, layout=NTU25):
    """The three-modality MoCo (docs/published-behaviour.md §6) with the options' sizes and hyperparameters,
    for skeletons of `layout` (the processed folder's)."""
    args_bi_gru = {"en_input_size": layout.input_size, "en_hidden_size": args.hidden_size,
                   "en_num_layers": args.num_layers, "num_class": args.contrast_dim}
    return MoCo(args.skeleton_representation, args_bi_gru, dim=args.contrast_dim, K=args.contrast_k,
                m=args.contrast_m, T=args.contrast_t, teacher_T=args.teacher_t, student_T=args.student_t,
                cmd_weight=args.cmd_weight, topk=args.topk, mlp=args.mlp, pretrain=True, layout=layout)


def build_optimizer(model, args):
    """SGD over all the model's parameters (the key encoders get no gradient, so SGD leaves them)."""
    return torch.optim.SGD(model.parameters(), args.lr, momentum=args.momentum, weight_decay=args.weight_decay)


def train_step(model, optimizer, im_q, im_k, scaler=None, amp=False):
    """One SGD step on a batch of view pairs (each N x 3 x T x 25 x 2); returns its statistics.

    Statistics: 'loss_ce_<modality>', 'loss_cmd', 'loss' (the total) as detached scalars, and
    'top1_<modality>' (percent of queries whose positive key scores highest). Raises
    NonFiniteLossError, before any weight changes, when the total loss on any rank is not finite.
    """
    with torch.autocast(device_type=im_q.device.type, enabled=amp):
        *logits, labels, loss_cmd = model(im_q, im_k)  # 3 x (N x (1+K)), N, scalar
    stats = {}
    loss = loss_cmd.float()
    for name, scores in zip(MODALITIES, logits):
        ce = F.cross_entropy(scores.float(), labels)
        stats[f"loss_ce_{name}"] = ce.detach()
        stats[f"top1_{name}"] = topk_correct(scores.detach(), labels)[0]
        loss = loss + ce
    stats["loss_cmd"] = loss_cmd.detach().float()
    stats["loss"] = loss.detach()
    finite = all_reduce_min(torch.isfinite(stats["loss"]).float())
    if finite.item() < 1:
        values = ", ".join(f"{k}={float(v):.4g}" for k, v in stats.items() if k.startswith("loss"))
        raise NonFiniteLossError(f"non-finite loss on some rank ({values} here)")
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return stats


def _views(batch, device, augment_on_device, generator, args):
    """(im_q, im_k) on `device` from a loader batch: made here from raw samples, or moved there."""
    if augment_on_device:
        data, frames = batch  # N x 3 x T x 25 x 2, N
        data = data.to(device, non_blocking=True)
        return pretraining_views(data, frames.to(device), generator, args.view_frames, args.corrupted_joints)
    im_q, im_k = batch
    return im_q.to(device, non_blocking=True), im_k.to(device, non_blocking=True)


def train_one_epoch(model, loader, optimizer, epoch, args, ctx, writer, scaler=None):
    """Train one epoch; returns the epoch's mean statistics over all steps and ranks."""
    model.train()
    augment_on_device = args.augment_on == "device"
    generator = epoch_generator(args.seed, epoch, ctx.rank, ctx.device) if augment_on_device else None
    amp = bool(args.amp)
    totals, steps = {}, 0
    bar = tqdm(loader, total=len(loader), desc=f"epoch {epoch}", disable=not ctx.is_main, dynamic_ncols=True)
    for step, batch in enumerate(bar):
        im_q, im_k = _views(batch, ctx.device, augment_on_device, generator, args)
        try:
            stats = train_step(model, optimizer, im_q, im_k, scaler, amp)
        except NonFiniteLossError as exc:
            raise NonFiniteLossError(f"epoch {epoch}, step {step} of {len(loader)}: {exc}; stopping, the last "
                                     f"checkpoint written before this epoch is left as it was") from None
        for key, value in stats.items():
            totals[key] = totals.get(key, 0.0) + value  # summed where it lives (no device sync)
        steps += 1
        if step % args.print_freq == 0:
            global_step = epoch * len(loader) + step
            for key, value in stats.items():
                writer.add_scalar(f"step/{key}", float(value), global_step)
            bar.set_postfix(loss=f"{float(stats['loss']):.4f}", top1=f"{stats['top1_joint']:.1f}")
    bar.close()
    packed = all_reduce_sum(torch.tensor([float(totals[k]) for k in sorted(totals)] + [steps],
                                         dtype=torch.float64, device=ctx.device))
    return {k: (packed[i] / packed[-1]).item() for i, k in enumerate(sorted(totals))}


def periodic_checkpoint(folder, epoch):
    """The path of the periodic checkpoint written after `epoch` (0-based)."""
    return os.path.join(folder, "checkpoint_%04d.pth.tar" % epoch)


def save_pretraining_checkpoint(folder, epoch, model, optimizer, options, scaler=None, record=None):
    """Write the checkpoint of a finished `epoch` (0-based): `checkpoint_%04d` every CHECKPOINT_EVERY
    epochs, then `checkpoint_last`, so a resume from the latter finds the former. `record` is the
    epoch's log line, kept as 'log'. Returns the paths written."""
    state = {
        "epoch": epoch + 1,
        "state_dict": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "arch": unwrap(model).arch,
        "options": options,
        "rng": rng_state(),
    }
    if record is not None:
        state["log"] = record
    if scaler is not None and scaler.is_enabled():
        state["scaler"] = scaler.state_dict()
    paths = [os.path.join(folder, LAST_CHECKPOINT)]
    if epoch % CHECKPOINT_EVERY == 0:
        paths.insert(0, periodic_checkpoint(folder, epoch))
    for path in paths:
        save_checkpoint_atomic(state, path)
    return paths


def _strip_ddp_prefix(state_dict):
    if state_dict and all(key.startswith("module.") for key in state_dict):
        return {key[len("module."):]: value for key, value in state_dict.items()}
    return state_dict


def resume_from(path, model, optimizer, scaler=None, settings=None):
    """Restore weights (queues included), optimizer and scaler state from a checkpoint.

    Returns (start epoch, RNG state or None, log record of the epoch before or None). Raises
    CheckpointError naming the file when it lacks the published keys, holds 'options' that differ
    from `settings` outside RESUME_MAY_CHANGE (checkpoints without 'options', e.g. the released
    ones, are not compared), was made for another architecture, or its weights do not fit the model.
    """
    ckpt = read_checkpoint(path)
    for key in ("epoch", "state_dict"):
        if key not in ckpt:
            raise CheckpointError(f"checkpoint {path!r}: no {key!r} entry; found keys {sorted(ckpt)}")
    model = unwrap(model)
    recorded = checkpoint_layout(ckpt, path)
    if recorded != model.layout:
        raise CheckpointError(f"--resume {path}: the checkpoint was trained on skeletons of layout {recorded.name!r}, "
                              f"the data folder holds layout {model.layout.name!r}")
    if settings is not None and isinstance(ckpt.get("options"), dict):
        check_same_run(path, ckpt["options"], settings, RESUME_MAY_CHANGE, paths=("data_dir",), names=SETTING_NAMES)
    if "arch" in ckpt:
        differ = [f"{k}: checkpoint {ckpt['arch'].get(k)!r}, options {model.arch.get(k)!r}"
                  for k in ARCH_KEYS if ckpt["arch"].get(k) != model.arch.get(k)]
        if differ:
            raise CheckpointError(f"checkpoint {path!r} was made for another architecture: " + "; ".join(differ))
    state = _strip_ddp_prefix(ckpt["state_dict"])
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong_shape:
        raise CheckpointError(f"checkpoint {path!r} does not fit the model: missing {missing[:5]} "
                              f"({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)}), "
                              f"wrong shape {wrong_shape[:5]} ({len(wrong_shape)})")
    model.load_state_dict(state)
    if "optimizer" in ckpt:
        optimizer.load_state_dict(ckpt["optimizer"])
    if scaler is not None and scaler.is_enabled() and "scaler" in ckpt:
        scaler.load_state_dict(ckpt["scaler"])
    log.info("resumed from %s at epoch %d", path, ckpt["epoch"])
    return int(ckpt["epoch"]), ckpt.get("rng"), ckpt.get("log")


def restore_periodic_checkpoint(folder, resumed, start_epoch):
    """Copy checkpoint `resumed` (made after epoch start_epoch - 1) to that epoch's periodic file in
    `folder` when one is due there and missing (a run stopped between the two writes, or written
    before they were ordered). Returns the path written, or None."""
    epoch = start_epoch - 1
    path = periodic_checkpoint(folder, epoch)
    if epoch < 0 or epoch % CHECKPOINT_EVERY or os.path.exists(path):
        return None
    with atomic_output(path) as tmp:
        shutil.copyfile(resumed, tmp)
    log.warning("%s was missing: written as a copy of %s", path, resumed)
    return path


def rewind_log(path, start_epoch, record=None):
    """Rewrite the epoch log `path` (atomically) to hold one line per epoch before `start_epoch`.

    Lines of later epochs (a resumed run writes them again) and lines that are not whole records
    (an append cut short) are dropped; of repeated epochs the last line is kept; `record` (the
    resumed checkpoint's copy of epoch start_epoch - 1) stands for that epoch.
    """
    lines = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    epoch = json.loads(line).get("epoch")
                except (json.JSONDecodeError, AttributeError):
                    continue
                if isinstance(epoch, int) and epoch < start_epoch:
                    lines[epoch] = line if line.endswith("\n") else line + "\n"
    if record is not None:
        lines[start_epoch - 1] = json_line(record)
    if lines or os.path.exists(path):
        atomic_write_text(path, "".join(lines[epoch] for epoch in sorted(lines)))


def _check_settings(args, world_size, dataset_size, layout=NTU25):
    """Raise SettingsError for options that cannot make a run of `world_size` processes."""
    global_batch = args.batch_size * world_size
    if args.corrupted_joints is not None and not 1 <= args.corrupted_joints <= layout.num_joints:
        raise SettingsError(f"--corrupted-joints must be between 1 and the {layout.num_joints} joints of the "
                            f"folder's layout {layout.name!r}, found {args.corrupted_joints}")
    if dataset_size // world_size < args.batch_size:
        raise SettingsError(f"the training set has {dataset_size} samples, fewer than one global batch of "
                            f"{global_batch}: no training step could run")


def resolve_augment_on(choice, device):
    """'loader' or 'device' for --augment-on `choice` ('auto': on the device when it is CUDA)."""
    if choice == "auto":
        return "device" if device.type == "cuda" else "loader"
    return choice


def run_pretraining(args):
    """Run CMD pretraining as the options `args` describe (see options/options_pretraining.py)."""
    ctx = init_distributed(args.device, args.local_rank)
    try:
        return _run(args, ctx)
    finally:
        cleanup(ctx)


def _run(args, ctx):
    seed_everything(args.seed)
    args.augment_on = resolve_augment_on(args.augment_on, ctx.device)
    if args.amp and ctx.device.type != "cuda":
        log.warning("--amp applies to CUDA only; running %s in float32", ctx.device)
        args.amp = False
    data_dir = resolve_data_dir(args.pre_dataset, args.protocol, args.data_dir)
    dataset = PretrainingFeeder(data_dir, mode="raw" if args.augment_on == "device" else "views", seed=args.seed,
                                view_frames=args.view_frames, corrupted_joints=args.corrupted_joints)
    args.corrupted_joints = dataset.corrupted_joints  # the layout's unless given
    layout = dataset.layout
    dataset_name = dataset.split.dataset or args.pre_dataset  # the folder's record, else the preset's name
    _check_settings(args, ctx.world_size, len(dataset), layout)
    sampler = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                 seed=args.seed, drop_last=True)
    loader = DataLoader(dataset, batch_size=args.batch_size, sampler=sampler, num_workers=args.workers,
                        pin_memory=ctx.device.type == "cuda", drop_last=True, worker_init_fn=worker_init_fn)

    model = build_model(args, layout).to(ctx.device)
    if ctx.distributed:
        model = convert_sync_batchnorm(model, ctx.device)
    optimizer = build_optimizer(model, args)
    scaler = torch.amp.GradScaler("cuda", enabled=bool(args.amp))
    settings = dict(vars(args), data_dir=data_dir, world_size=ctx.world_size,
                    global_batch_size=args.batch_size * ctx.world_size, device=str(ctx.device),
                    train_samples=len(dataset), steps_per_epoch=len(loader), layout=layout.name,
                    dataset_name=dataset_name)
    log_path = os.path.join(args.checkpoint_path, LOG)
    start_epoch, saved_rng = args.start_epoch, None
    if args.resume:
        start_epoch, saved_rng, record = resume_from(args.resume, model, optimizer, scaler, settings)
        if ctx.is_main:
            restore_periodic_checkpoint(args.checkpoint_path, args.resume, start_epoch)
        if start_epoch >= args.epochs:
            if ctx.is_main:
                log.warning("nothing to do: checkpoint %s is at epoch %d, --epochs %d (a larger --epochs "
                            "continues it)", args.resume, start_epoch, args.epochs)
            leave_together(ctx)
            return []
        if ctx.is_main:
            rewind_log(log_path, start_epoch, record)

    settings["start_epoch"] = start_epoch
    if ctx.is_main:
        settings = save_settings(settings, args.checkpoint_path)
    writer = make_writer(os.path.join(args.checkpoint_path, "tensorboard"), enabled=ctx.is_main)
    train_model = wrap_ddp(model, ctx)
    if saved_rng is not None:
        set_rng_state(saved_rng)

    history = []
    try:
        for epoch in range(start_epoch, args.epochs):
            sampler.set_epoch(epoch)
            dataset.set_epoch(epoch)
            lr = adjust_learning_rate(optimizer, epoch, args.lr, args.schedule, args.cos, args.epochs)
            stats = train_one_epoch(train_model, loader, optimizer, epoch, args, ctx, writer, scaler)
            stats["lr"] = lr
            record = dict(stats, epoch=epoch)
            history.append(record)
            if ctx.is_main:
                for key, value in stats.items():
                    writer.add_scalar(f"train/{key}", value, epoch)
                writer.flush()
                save_pretraining_checkpoint(args.checkpoint_path, epoch, model, optimizer, settings, scaler, record)
                append_jsonl(log_path, record)
                tqdm.write(f"epoch {epoch}: loss {stats['loss']:.4f}  cmd {stats['loss_cmd']:.4f}  "
                           f"top1 joint/motion/bone {stats['top1_joint']:.1f}/{stats['top1_motion']:.1f}/"
                           f"{stats['top1_bone']:.1f}  lr {lr:.3g}")
        leave_together(ctx)
    finally:
        writer.close()
    return history
