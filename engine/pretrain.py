"""The CMD pretraining loop: data, model, SGD, checkpoints, resume, logging, several processes.

`run_pretraining(settings, train)` runs a whole pretraining from a `PretrainSettings` record on the
training `Split` it was resolved with. Its pieces are usable alone: `build_model`, `train_step` (one
optimisation step on given views), `train_one_epoch`, `save_pretraining_checkpoint`, `read_resume`.

Loss = CE_joint + CE_motion + CE_bone + loss_cmd (the model applies cmd_weight). Checkpoints
(docs/published-behaviour.md §3.3) are written by rank 0 only, atomically, after every epoch: first
`checkpoint_%04d.pth.tar` after epochs 0, N, 2N, … (N = --checkpoint-every: the published 10, or a
tenth of the run under the small-data preset), then `checkpoint_last.pth.tar`, each holding
{'epoch': next epoch, 'state_dict' (no DDP prefix), 'optimizer'} plus 'settings', 'rng', 'log' (the
epoch's line of log.jsonl) and, with --amp, 'scaler'. The epoch's line is appended to `log.jsonl`
once both are written.

The run folder is claimed for the whole run (engine.runfolder). A resume refuses a checkpoint whose
settings differ from this run's outside RESUME_MAY_CHANGE (the data's fingerprint included), or that is
older than the folder's newest unless --rewind (the newer files are then kept aside); it cuts
log.jsonl back to the epochs before the resumed one.
"""

import dataclasses
import json
import logging
import math
import os
import re
import shlex
import shutil
import sys

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from dataset.catalog import DATASETS
from dataset.files import append_lines, json_line, keep_aside, write_text
from engine.checkpoint import (
    CheckpointError,
    check_fits,
    evaluation_keys,
    optimizer_state_for,
    parse_rng_state,
    read_checkpoint,
    recorded_settings,
    rng_state,
    save_checkpoint,
    strip_module_prefix,
)
from engine.distributed import (
    agree,
    all_reduce_min,
    all_reduce_sum,
    cleanup,
    convert_sync_batchnorm,
    init_distributed,
    leave_together,
    same_on_every_rank,
    unwrap,
    wrap_ddp,
)
from engine.pretrained import checkpoint_layout
from engine.runfolder import RunFolderError, open_run_folder
from engine.runtime import RunError, adjust_learning_rate, make_writer, save_settings, seed_everything, topk_correct
from feeder.augmentations import pretraining_views
from feeder.feeder_pretraining import PretrainingFeeder
from feeder.seeding import epoch_generator, worker_init_fn
from moco.modalities import MODALITIES
from moco.model import CMD
from options.options_pretraining import RESUME_MAY_CHANGE
from options.settings import differences, flatten, learning_rate_change, resume_refusal, to_dict

log = logging.getLogger(__name__)

LAST_CHECKPOINT = "checkpoint_last.pth.tar"
LOG = "log.jsonl"
_PERIODIC = re.compile(r"^checkpoint_(\d+)\.pth\.tar$")


class NonFiniteLossError(RunError):
    """The loss became NaN or infinite; the run stops without writing a checkpoint."""


def build_model(settings):
    """The CMD model of a PretrainSettings record, for the skeletons of its data's layout."""
    layout = settings.data.layout
    return CMD(
        layout.input_size,
        parents=layout.parents,
        **dataclasses.asdict(settings.encoder),
        **dataclasses.asdict(settings.contrast),
    )


def build_optimizer(model, optim):
    """SGD over all the model's parameters (the key encoders get no gradient, so SGD leaves them)."""
    return torch.optim.SGD(model.parameters(), optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay)


def train_step(model, optimizer, im_q, im_k, scaler=None, amp=False):
    """One SGD step on a batch of view pairs (each N x C x T x V x M); returns its statistics.

    Statistics: 'loss_ce_<modality>', 'loss_cmd', 'loss' (the total) as detached scalars, and
    'top1_<modality>' (percent of queries whose positive key scores highest). Raises
    NonFiniteLossError, before the optimizer step, when the total loss on any rank is not finite (the
    forward pass has already moved the key encoders, enqueued the keys and updated BatchNorm statistics).
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


def train_one_epoch(model, loader, optimizer, epoch, settings, ctx, writer, scaler=None):
    """Train one epoch; returns the epoch's mean statistics over all steps and ranks."""
    model.train()
    run, views = settings.run, settings.views
    on_device = run.augment_on == "device"
    generator = epoch_generator(run.seed, epoch, ctx.rank, ctx.device) if on_device else None
    totals, steps = {}, 0
    bar = tqdm(loader, total=len(loader), desc=f"epoch {epoch}", disable=not ctx.is_main, dynamic_ncols=True)
    for step, batch in enumerate(bar):
        if on_device:
            data, frames = (t.to(ctx.device, non_blocking=True) for t in batch)  # N x C x T x V x M, N
            im_q, im_k = pretraining_views(data, frames, generator, views)
        else:
            im_q, im_k = (t.to(ctx.device, non_blocking=True) for t in batch)
        try:
            stats = train_step(model, optimizer, im_q, im_k, scaler, run.amp)
        except NonFiniteLossError as exc:
            raise NonFiniteLossError(
                f"epoch {epoch}, step {step} of {len(loader)}: {exc}; stopping, the last "
                f"checkpoint written before this epoch is left as it was"
            ) from None
        for key, value in stats.items():
            totals[key] = totals.get(key, 0.0) + value  # summed where it lives (no device sync)
        steps += 1
        if step % run.print_freq == 0:
            for key, value in stats.items():
                writer.add_scalar(f"step/{key}", float(value), epoch * len(loader) + step)
            bar.set_postfix(loss=f"{float(stats['loss']):.4f}", top1=f"{stats['top1_joint']:.1f}")
        if step + 1 == len(loader):  # the bar ends on this process's epoch means, not on a step --print-freq chose
            loss, top1 = (float(totals[key]) / steps for key in ("loss", "top1_joint"))
            bar.set_postfix_str(f"epoch mean loss={loss:.4f}, top1={top1:.1f}")
    bar.close()
    packed = all_reduce_sum(
        torch.tensor([float(totals[k]) for k in sorted(totals)] + [steps], dtype=torch.float64, device=ctx.device)
    )
    return {k: (packed[i] / packed[-1]).item() for i, k in enumerate(sorted(totals))}


def periodic_checkpoint(folder, epoch):
    """The path of the periodic checkpoint written after `epoch` (0-based)."""
    return os.path.join(folder, "checkpoint_%04d.pth.tar" % epoch)


def save_pretraining_checkpoint(folder, epoch, model, optimizer, record, every, scaler=None, log_line=None):
    """Write the checkpoint of a finished `epoch` (0-based): `checkpoint_%04d` every `every` epochs and
    `checkpoint_last`, both or neither (a full disk in the second leaves the first unchanged too; renamed
    once both are whole, the periodic one first, so only a kill between the two renames leaves it ahead).
    `record` is the run's settings (a dict), `log_line` the epoch's log record."""
    state = {
        "epoch": epoch + 1,
        "state_dict": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "settings": record,
        "rng": rng_state(),
    }
    if log_line is not None:
        state["log"] = log_line
    if scaler is not None and scaler.is_enabled():
        state["scaler"] = scaler.state_dict()
    paths = [os.path.join(folder, LAST_CHECKPOINT)]
    if epoch % every == 0:
        paths.insert(0, periodic_checkpoint(folder, epoch))
    save_checkpoint(state, *paths)


def read_resume(path, model, settings, warn=True):
    """Read and check the checkpoint a run resumes from, before anything is written.

    Returns the checkpoint dict and a function restoring its RNG states (None without one). Raises
    CheckpointError naming the file when it lacks the published keys, was made for another layout or
    another run (its settings differ outside RESUME_MAY_CHANGE; released checkpoints, which hold none,
    are not compared), its weights do not fit the model, or its RNG entry is malformed. Warns when the
    learning rate changes, or the checkpoint holds no optimizer state (with `warn`: one process of a run).
    """
    ckpt = read_checkpoint(path, need=("epoch", "state_dict"))
    trained_with_labels = evaluation_keys(ckpt)
    if trained_with_labels:
        raise CheckpointError(
            f"--resume {path} is an evaluation's checkpoint (it holds {trained_with_labels[0]!r}), not a "
            "pretraining's: an evaluation resumes with action_classification.py --resume"
        )
    recorded = checkpoint_layout(ckpt, path)
    layout = settings.data.layout
    if recorded != layout:
        raise CheckpointError(
            f"--resume {path}: the checkpoint was trained on skeletons of layout {recorded.name!r}, "
            f"the data folder {settings.data.data_dir} holds layout {layout.name!r}; they differ in "
            f"{recorded.differences(layout)}"
        )
    before = recorded_settings(ckpt)
    if before is not None:
        differ = differences(before, to_dict(settings), RESUME_MAY_CHANGE)
        then = _global_batch(before)
        now = settings.optim.batch_size * settings.run.world_size
        if then is not None and then != now:  # per process and process count may change, not their product
            differ.append(f"the global batch (--batch-size x processes): {then} then, {now} now")
        if differ:
            raise CheckpointError(resume_refusal(path, differ))
        change = learning_rate_change(before, to_dict(settings))
        if change and warn:
            log.warning("--resume %s: %s", path, change)
        then = flatten(before).get("augment_on")
        if then not in (None, settings.run.augment_on) and warn:  # the same views' law, not the same draws
            log.warning(
                "--resume %s: --augment-on %s, the run's was %s: its views are drawn from other random numbers, "
                "so the run does not repeat an uninterrupted one; pass --augment-on %s for that",
                path,
                settings.run.augment_on,
                then,
                then,
            )
    state = strip_module_prefix(ckpt["state_dict"])
    check_fits(path, state, unwrap(model).state_dict())
    ckpt["state_dict"] = state
    if "optimizer" in ckpt:  # SGD over model.parameters() (build_optimizer), in our order
        ckpt["optimizer"] = optimizer_state_for(path, ckpt["optimizer"], list(unwrap(model).named_parameters()))
    elif warn:
        log.warning("--resume %s holds no optimizer state: SGD's momentum starts again from zero", path)
    restore_rng = parse_rng_state(ckpt["rng"], path) if "rng" in ckpt else None
    return ckpt, restore_rng


def _global_batch(record):
    """The global batch of a checkpoint's settings record (None for records without both parts)."""
    try:
        return int(record["optim"]["batch_size"]) * int(record["run"]["world_size"])
    except (KeyError, TypeError, ValueError):
        return None


def newest_epoch(folder, resumed_path):
    """(epoch count, file) of the newest training state in run folder `folder`: its periodic checkpoints,
    log.jsonl and checkpoint_last (read only when it is not the file resumed from; math.inf when it
    cannot be read or holds no epoch)."""
    states = [(0, None)]
    for name in os.listdir(folder):
        match = _PERIODIC.match(name)
        if match:
            states.append((int(match.group(1)) + 1, name))
    log_path = os.path.join(folder, LOG)
    if os.path.exists(log_path):
        epochs = [line.get("epoch") for line in _log_lines(log_path)]
        if epochs:
            states.append((max(epochs) + 1, LOG))
    last = os.path.join(folder, LAST_CHECKPOINT)
    if os.path.exists(last) and not os.path.samefile(last, resumed_path):
        try:
            states.append((int(read_checkpoint(last, need=("epoch",))["epoch"]), LAST_CHECKPOINT))
        except CheckpointError:  # damaged or epoch-less: it may hold a newer state; --rewind moves it aside
            states.append((math.inf, LAST_CHECKPOINT))
    return max(states, key=lambda state: (state[0], state[1] != LOG, state[1] or ""))  # a checkpoint over the log


def rewind_folder(folder, resumed_path, epoch, rewind, work=True):
    """Refuse a resume at `epoch` from a checkpoint older than the folder's newest, unless `rewind`:
    then, when the run has `work` to do, the newer checkpoints (and a copy of log.jsonl) are moved to a
    subfolder rewound-<date-time>/."""
    newest, source = newest_epoch(folder, resumed_path)
    if newest <= epoch or rewind and not work:
        return
    if not rewind:
        if newest == math.inf:
            raise RunFolderError(
                f"--resume {resumed_path}: {os.path.join(folder, LAST_CHECKPOINT)} cannot be read (or holds no "
                "epoch), so whether it holds a newer state is unknown; pass --rewind to continue from this "
                "checkpoint (the unreadable file and any newer ones are then moved to rewound-<date-time>/, not "
                "deleted)"
            )
        if source == LOG:  # a log line beyond every checkpoint (a tie goes to the checkpoint)
            raise RunFolderError(
                f"--resume {resumed_path} continues after {epoch} epochs, but {folder}'s log.jsonl reaches "
                f"{newest} epochs, a state no checkpoint there holds; pass --rewind to continue from this "
                "checkpoint (the log's later epochs are kept in rewound-<date-time>/)"
            )
        raise RunFolderError(
            f"--resume {resumed_path} continues after {epoch} epochs, but {folder} holds a newer state "
            f"({newest} epochs, {source}); resuming would replace it. Resume from "
            f"{os.path.join(folder, source)}, or pass --rewind to continue from this "
            f"checkpoint (the newer files are then moved to rewound-<date-time>/, not deleted)"
        )
    newer = [
        name
        for name in os.listdir(folder)
        if (_PERIODIC.match(name) and int(_PERIODIC.match(name).group(1)) >= epoch)
        or (name == LAST_CHECKPOINT and not os.path.samefile(os.path.join(folder, name), resumed_path))
    ]
    aside = keep_aside(folder, newer, "rewound")
    if os.path.exists(os.path.join(folder, LOG)):
        shutil.copy2(os.path.join(folder, LOG), aside)  # rewind_log then cuts the folder's copy back
    print(f"--rewind: the files newer than epoch {epoch} were moved to {aside}/", flush=True)


def _log_lines(path):
    """The whole records of an epoch log (lines an interrupted append cut short are passed over)."""
    records = []
    with open(path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("epoch"), int):
                records.append(record)
    return records


def rewind_log(path, start_epoch, record=None):
    """Rewrite the epoch log `path` (atomically) to hold one line per epoch before `start_epoch`; of
    repeated epochs the last line is kept; `record` (the resumed checkpoint's copy of epoch
    start_epoch - 1) stands for that epoch."""
    lines = {r["epoch"]: r for r in (_log_lines(path) if os.path.exists(path) else []) if r["epoch"] < start_epoch}
    if record is not None:
        lines[start_epoch - 1] = record
    if lines or os.path.exists(path):
        write_text(path, "".join(json_line(lines[epoch]) for epoch in sorted(lines)))


def run_pretraining(settings, train):
    """Run CMD pretraining as `settings` (a PretrainSettings) describe, on the training Split `train`."""
    ctx = init_distributed(settings.run.device, settings.run.local_rank, settings.run.world_size)
    try:
        return _run(settings, train, ctx)
    finally:
        cleanup(ctx)


def _prepare(settings, model, ctx):
    """Claim the run folder and read the checkpoint resumed from; nothing is written if either fails.
    Returns (claim or None, checkpoint or None, RNG restorer or None)."""
    run = settings.run
    ckpt = restore_rng = claim = None
    if run.resume:
        ckpt, restore_rng = read_resume(run.resume, model, settings, warn=ctx.is_main)
    if ctx.is_main:
        claim = open_run_folder(
            run.checkpoint_path,
            "pretraining",
            to_dict(settings),
            RESUME_MAY_CHANGE,
            run.resume,
            run.fresh,
            os.path.join(run.checkpoint_path, LAST_CHECKPOINT),
        )
        if ckpt is not None:
            try:
                epoch = int(ckpt["epoch"])  # at --epochs or beyond: nothing to do (_train), nothing to move
                rewind_folder(run.checkpoint_path, run.resume, epoch, run.rewind, epoch < settings.optim.epochs)
            except BaseException:
                claim.release()
                raise
    return claim, ckpt, restore_rng


def _run(settings, train, ctx):
    run, optim = settings.run, settings.optim
    shared = {key: value for key, value in to_dict(settings).items() if key != "run"}  # a rank's own: device, rank
    shared["data"] = {key: value for key, value in shared["data"].items() if key != "data_dir"}  # may differ by node
    if not same_on_every_rank(ctx, json.dumps(shared, sort_keys=True)):
        raise RunError(
            "the processes of this run read different training data or resolved different settings (their "
            "fingerprints differ): give every process the same data and flags"
        )
    seed_everything(run.seed)
    dataset = PretrainingFeeder(
        train, mode="raw" if run.augment_on == "device" else "views", seed=run.seed, views=settings.views
    )
    sampler = DistributedSampler(
        dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=run.seed, drop_last=True
    )
    loader = DataLoader(
        dataset,
        batch_size=optim.batch_size,
        sampler=sampler,
        num_workers=run.workers,
        persistent_workers=run.workers > 0 and run.augment_on == "device",  # raw samples: no state per epoch
        pin_memory=ctx.device.type == "cuda",
        drop_last=True,
        worker_init_fn=worker_init_fn,
    )
    model = build_model(settings).to(ctx.device)
    if ctx.distributed:
        model = convert_sync_batchnorm(model, ctx.device)
    optimizer = build_optimizer(model, optim)
    scaler = torch.amp.GradScaler("cuda", enabled=run.amp)
    claim, ckpt, restore_rng = agree(ctx, lambda: _prepare(settings, model, ctx))
    try:
        return _train(settings, ctx, model, optimizer, scaler, loader, sampler, dataset, ckpt, restore_rng)
    finally:
        if claim is not None:
            claim.release()


def _train(settings, ctx, model, optimizer, scaler, loader, sampler, dataset, ckpt, restore_rng):
    run, optim = settings.run, settings.optim
    folder = run.checkpoint_path
    log_path = os.path.join(folder, LOG)
    start_epoch = run.start_epoch
    if ckpt is not None:
        unwrap(model).load_state_dict(ckpt["state_dict"])
        if "optimizer" in ckpt:
            optimizer.load_state_dict(ckpt["optimizer"])
        if scaler.is_enabled() and "scaler" in ckpt:
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch = int(ckpt["epoch"])
        log.info("resumed from %s at epoch %d", run.resume, start_epoch)
        if start_epoch >= optim.epochs:
            if ctx.is_main:  # the folder stays as it was
                length = f"--steps {optim.steps} ({optim.epochs} epochs)" if optim.steps else f"--epochs {optim.epochs}"
                log.warning(
                    "nothing to do: checkpoint %s is at epoch %d, %s (a longer run continues it)",
                    run.resume,
                    start_epoch,
                    length,
                )
            leave_together(ctx)
            return []
        if ctx.is_main:
            here = os.path.samefile(os.path.dirname(os.path.abspath(run.resume)), folder)
            if here and start_epoch > 1 and not os.path.exists(log_path):  # a resume into another folder has none
                log.warning(
                    "%s is missing: it starts again %s; the lines of the epochs before are lost",
                    log_path,
                    f"with the checkpoint's copy of epoch {start_epoch - 1}"
                    if ckpt.get("log")
                    else f"at epoch {start_epoch}",
                )
            rewind_log(log_path, start_epoch, ckpt.get("log"))
    record = to_dict(dataclasses.replace(settings, run=dataclasses.replace(run, start_epoch=start_epoch)))
    if ctx.is_main:
        save_settings(record, folder)
    writer = make_writer(os.path.join(folder, "tensorboard"), enabled=ctx.is_main)
    train_model = wrap_ddp(model, ctx)
    if restore_rng is not None:
        restore_rng()
    history = []
    last = os.path.join(folder, LAST_CHECKPOINT)  # named when the run ends or is interrupted
    try:
        for epoch in range(start_epoch, optim.epochs):
            sampler.set_epoch(epoch)
            dataset.set_epoch(epoch)
            lr = adjust_learning_rate(optimizer, epoch, optim.lr, optim.schedule, optim.cos, optim.epochs)
            stats = dict(train_one_epoch(train_model, loader, optimizer, epoch, settings, ctx, writer, scaler), lr=lr)
            line = dict(stats, epoch=epoch)
            history.append(line)
            if ctx.is_main:
                for key, value in stats.items():
                    writer.add_scalar(f"train/{key}", value, epoch)
                writer.flush()
                save_pretraining_checkpoint(folder, epoch, model, optimizer, record, run.checkpoint_every, scaler, line)
                append_lines(log_path, [line])
                tqdm.write(
                    f"epoch {epoch}: loss {stats['loss']:.4f}  cmd {stats['loss_cmd']:.4f}  "
                    f"top1 joint/motion/bone {stats['top1_joint']:.1f}/{stats['top1_motion']:.1f}/"
                    f"{stats['top1_bone']:.1f}  lr {lr:.3g}"
                )
        leave_together(ctx)
        if ctx.is_main and history:
            data = settings.data  # a published one named: a folder without layout.json would be read as NTU-60's
            named = f" --finetune-dataset {data.dataset} --protocol {data.protocol}" if data.dataset in DATASETS else ""
            tqdm.write(
                f"pretrained through epoch {history[-1]['epoch']} (counted from 0; the checkpoint records "
                f"{history[-1]['epoch'] + 1} epochs): {last}; a linear probe of it: python "
                f"action_classification.py --data-dir {shlex.quote(data.data_dir)}{named} --pretrained "
                f"{shlex.quote(last)} --view all"
            )
    except KeyboardInterrupt:
        if ctx.is_main and os.path.isfile(last):
            tqdm.write(
                f"to go on from its last whole epoch: this command with --resume {shlex.quote(last)}", sys.stderr
            )
        raise
    finally:
        writer.close()
    return history
