"""Evaluation loops: linear classification on frozen encoders, fine-tuning, feature extraction.

Linear evaluation (docs/published-behaviour.md §4) keeps every encoder in eval mode with
`requires_grad=False`, puts only the classifiers of the evaluated views in the optimizer, and
afterwards checks that every encoder weight and BatchNorm statistic is bit-for-bit unchanged
(`FrozenEncoderError` otherwise).
Fine-tuning trains the evaluated views' whole encoders in train mode. With several views the loss
is the sum of the views' cross-entropies; their parameters are disjoint, so each classifier learns
exactly as if trained alone on the same batches. The three-stream score is the sum of the three
softmaxes (the paper's 3s-CMD).
"""
import json
import logging
import os

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from dataset.layouts import read_folder_record
from dataset.processed import load_splits, resolve_data_dir
from engine.checkpoint import (check_same_run, read_checkpoint, rng_state, save_checkpoint_atomic,
                               set_rng_state)
from engine.pretrained import CLASSIFIER_KEYS, ENCODERS, downstream_model
from engine.runtime import adjust_learning_rate, atomic_write_text, plain, resolve_device, seed_everything, topk_correct

log = logging.getLogger(__name__)

FUSION = "fusion"


class FrozenEncoderError(RuntimeError):
    """A frozen encoder's weights or BatchNorm statistics changed during linear evaluation."""


def setup_downstream(args):
    """The start shared by the evaluation scripts, from resolved options: seed, pick the device, open
    the processed folder's two splits (labels checked against the class count) and build the
    downstream model.

    The folder's layout record (`layout.json`; ntu25 without one) gives the skeleton layout and, when
    it holds one, the class count and dataset name, which then replace the dataset preset's
    (`args.num_class`, `args.dataset_name`); without a record the labels are checked against the
    preset's class count. Raises ProcessedDataError, LayoutError or CheckpointError naming the folder
    or file (a checkpoint pretrained on another layout is one). Fills in `args.hidden_size`,
    `args.num_layers` (as read from the checkpoint), `args.layout` and `args.pretrain_dataset` (from
    our checkpoints when not given).
    Returns (device, folder, train_split, val_split, model, checkpoint_info).
    """
    seed_everything(args.seed)
    device = resolve_device(args.device)
    folder = resolve_data_dir(args.finetune_dataset, args.protocol, args.data_dir)
    layout, recorded_classes, recorded_dataset = read_folder_record(folder)
    if recorded_classes is not None:
        args.num_class = recorded_classes
    args.dataset_name = recorded_dataset or args.finetune_dataset
    args.layout = layout.name
    train_split, val_split = load_splits(folder, num_class=args.num_class)
    model, info = downstream_model(args.pretrained or None, args.num_class, args.hidden_size, args.num_layers,
                                   layout)
    args.hidden_size, args.num_layers = info["hidden_size"], info["num_layers"]
    if args.pretrain_dataset is None and info.get("pretrain_dataset"):
        args.pretrain_dataset = info["pretrain_dataset"]
    return device, folder, train_split, val_split, model, info


def make_loader(dataset, batch_size, workers, train, seed, device):
    """A DataLoader over `dataset`: shuffled with a seeded generator when `train`, in order otherwise."""
    generator = torch.Generator().manual_seed(seed) if train else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=train, num_workers=workers,
                      pin_memory=device.type == "cuda", drop_last=False, generator=generator)


def frozen_snapshot(model):
    """Copies of every encoder parameter and buffer except the classifiers (name -> tensor)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k not in CLASSIFIER_KEYS}


def check_unchanged(model, snapshot):
    """Raise FrozenEncoderError naming the entries of `model` that differ from `snapshot`."""
    state = model.state_dict()
    changed = sorted(k for k, v in snapshot.items() if not torch.equal(state[k].to(v.device), v))
    if changed:
        shown = ", ".join(changed[:10]) + (f" … and {len(changed) - 10} more" if len(changed) > 10 else "")
        raise FrozenEncoderError(f"linear evaluation changed {len(changed)} frozen encoder entries "
                                 f"(weights or BatchNorm statistics): {shown}")


def freeze_encoders(model):
    """Linear evaluation: no gradient for anything but the classifiers. Returns the trainable names."""
    trainable = []
    for name, param in model.named_parameters():
        param.requires_grad = name in CLASSIFIER_KEYS
        if param.requires_grad:
            trainable.append(name)
    return trainable


def trainable_parameters(model, views, finetune):
    """The parameters the optimizer updates: the views' classifiers, or their whole encoders."""
    params = []
    for view in views:
        encoder = getattr(model, ENCODERS[view])
        params.extend(encoder.parameters() if finetune else encoder.fc.parameters())
    return params


def fuse_scores(scores):
    """The three-stream score: sum of the softmaxes of each stream's class scores (each N x C)."""
    return torch.stack([F.softmax(s.float(), dim=1) for s in scores]).sum(dim=0)  # N x C


@torch.no_grad()
def evaluate(model, loader, views, device):
    """Top-1 and top-5 (percent) of each view and, with all three views, of the fusion."""
    model.eval()
    scores = {view: [] for view in views}
    targets = []
    for clips, labels, _ in tqdm(loader, desc="validate", leave=False, dynamic_ncols=True):
        clips = clips.to(device, non_blocking=True)  # N x 3 x T x V x M
        for view in views:
            scores[view].append(model(clips, view=view).float().cpu())  # N x C
        targets.append(labels)
    target = torch.cat(targets)  # N
    merged = {view: torch.cat(s) for view, s in scores.items()}  # view -> N x C
    if len(views) == len(ENCODERS):
        merged[FUSION] = fuse_scores([merged[v] for v in views])
    return {name: dict(zip(("top1", "top5"), topk_correct(s, target, ks=(1, 5)))) for name, s in merged.items()}


@torch.no_grad()
def extract_features(model, loader, view, device):
    """Frozen encoder features of every sample: (features N x 2H float32, labels N, indices N) on the CPU."""
    model.eval()
    features, labels, indices = [], [], []
    for clips, target, index in tqdm(loader, desc=f"features {view}", leave=False, dynamic_ncols=True):
        features.append(model.features(clips.to(device, non_blocking=True), view).float().cpu())  # N x 2H
        labels.append(target)
        indices.append(index)
    return torch.cat(features), torch.cat(labels), torch.cat(indices)


def train_one_epoch(model, loader, optimizer, views, device, finetune, epoch, writer):
    """One epoch of classifier training; returns the mean summed cross-entropy."""
    model.train(finetune)  # linear evaluation keeps BatchNorm statistics fixed
    total, count = 0.0, 0
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, dynamic_ncols=True)
    for clips, labels, _ in bar:
        clips = clips.to(device, non_blocking=True)  # N x 3 x T x V x M
        labels = labels.to(device, non_blocking=True)  # N
        loss = sum(F.cross_entropy(model(clips, view=view), labels) for view in views)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at epoch {epoch}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * labels.shape[0]
        count += labels.shape[0]
        bar.set_postfix(loss=f"{loss.item():.4f}")
    mean = total / max(count, 1)
    writer.add_scalar("train/loss", mean, epoch)
    return mean


def train_classifier(model, train_loader, val_loader, views, settings, device, out_dir, writer):
    """Train the classifiers of `views` (linear or fine-tuning per settings['finetune']) and validate
    every settings['eval_freq'] epochs and at the last; returns, for each view (and the fusion),
    the best top-1, the top-5 of that epoch and the epoch.

    A checkpoint of the run (weights, optimizer, epoch, best results, RNG, and as 'run' the views
    and settings that define it) is written to `out_dir/checkpoint.pth.tar` at each validation;
    settings['resume'] continues from one, refused with a CheckpointError naming both values when
    the views or a setting outside `may_change` differ from the checkpoint's.
    """
    finetune = bool(settings["finetune"])
    may_change = ("epochs", "lr", "schedule", "eval_freq", "resume", "checkpoint_path", "results", "workers",
                  "device", "pretrain_dataset")
    run = dict({k: v for k, v in plain(settings).items() if k not in may_change}, views=list(views),
               finetune=finetune)
    model.to(device)
    if not finetune:
        freeze_encoders(model)
        snapshot = frozen_snapshot(model)
    params = trainable_parameters(model, views, finetune)
    if not finetune:  # only the evaluated views' fc.weight and fc.bias, and nothing frozen
        assert len(params) == 2 * len(views) and all(p.requires_grad for p in params), "linear probe parameters"
    optimizer = torch.optim.SGD(params, lr=settings["lr"], momentum=settings["momentum"],
                                weight_decay=settings["weight_decay"])
    best, start_epoch = {}, 0
    if settings.get("resume"):
        state = read_checkpoint(settings["resume"])
        recorded = state.get("run", {k: state[k] for k in ("views", "finetune") if k in state})  # older: no 'run'
        check_same_run(settings["resume"], recorded, run, may_change, paths=("data_dir", "pretrained"),
                       names={"views": "evaluated views"})
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, best = int(state["epoch"]), dict(state["best"])
        set_rng_state(state["rng"])
        log.info("resumed %s at epoch %d", settings["resume"], start_epoch)
        if not finetune:
            try:
                check_unchanged(model, snapshot)
            except FrozenEncoderError as exc:
                raise FrozenEncoderError(f"--resume {settings['resume']}: its frozen encoders are not those "
                                         f"of the pretrained checkpoint given now ({exc})") from None
    epochs = int(settings["epochs"])
    for epoch in range(start_epoch, epochs):
        lr = adjust_learning_rate(optimizer, epoch, settings["lr"], settings["schedule"])
        writer.add_scalar("train/lr", lr, epoch)
        train_loader.dataset.set_epoch(epoch)
        train_loader.generator.manual_seed(int(settings["seed"]) * 100_003 + epoch)  # batch order of this epoch
        loss = train_one_epoch(model, train_loader, optimizer, views, device, finetune, epoch, writer)
        if (epoch + 1) % int(settings["eval_freq"]) and epoch + 1 != epochs:
            continue
        metrics = evaluate(model, val_loader, views, device)
        for name, values in metrics.items():
            writer.add_scalar(f"val/top1_{name}", values["top1"], epoch)
            writer.add_scalar(f"val/top5_{name}", values["top5"], epoch)
            if name not in best or values["top1"] > best[name]["top1"]:
                best[name] = dict(values, epoch=epoch)
        tqdm.write(f"epoch {epoch}: loss {loss:.4f} lr {lr:g} " + " ".join(
            f"{n} {v['top1']:.2f}/{v['top5']:.2f} (best {best[n]['top1']:.2f})" for n, v in metrics.items()))
        save_checkpoint_atomic({"epoch": epoch + 1, "state_dict": model.state_dict(),
                                "optimizer": optimizer.state_dict(), "best": best, "rng": rng_state(),
                                "run": run},
                               os.path.join(out_dir, "checkpoint.pth.tar"))
    if not finetune:
        check_unchanged(model, snapshot)
    writer.flush()
    return best


def save_subset(path, indices, names, labels, ratio, seed, folder):
    """Record the chosen training subset (indices, names, labels, ratio, seed) as JSON at `path`."""
    record = {
        "folder": folder,
        "ratio": ratio,
        "seed": seed,
        "size": len(indices),
        "indices": [int(i) for i in indices],
        "names": [names[int(i)] for i in indices],
        "labels": [int(labels[int(i)]) for i in indices],
    }
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")


def subset_path(out_dir):
    """Where a run records its semi-supervised subset."""
    return os.path.join(out_dir, "train_subset.json")
