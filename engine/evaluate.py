"""Evaluation runs: linear probes (SGD or logistic regression), fine-tuning and kNN on CMD encoders.

`run_classification(settings, model, train, val)` and `run_knn(…)` take an EvalSettings record, the
downstream model (engine.pretrained) and the two Splits. Before any work they claim the output folder
(engine.runfolder), read and check a checkpoint resumed from, and check that the results file (and
`--save-features`) can be written; at the end one evaluation's result records are appended in one
write, all or none.

The SGD linear probe (docs/published-behaviour.md §4) keeps every encoder in eval mode with
`requires_grad=False`, puts only the classifiers of the evaluated views in the optimizer, and checks
afterwards that no encoder weight or BatchNorm statistic moved (FrozenEncoderError otherwise).
Fine-tuning trains the evaluated views' whole encoders in train mode. With several views the loss is
the sum of the views' cross-entropies; their parameters are disjoint, so each classifier learns exactly
as if trained alone on the same batches. The three-stream score is the sum of the three softmaxes
(the paper's 3s-CMD). The logistic probe (engine/probe.py) fits on frozen features of the 0.95 centre
crops, as kNN takes them.
"""

import json
import logging
import os
import secrets

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from dataset.files import atomic_output, check_writable, write_text
from dataset.processed import ProcessedDataError
from engine.checkpoint import (
    CheckpointError,
    parse_rng_state,
    read_checkpoint,
    recorded_settings,
    rng_state,
    save_checkpoint,
    short_list,
)
from engine.knn import knn_top1
from engine.pretrained import downstream_model
from engine.probe import informative_top5, logistic_probe
from engine.results import RESULT, append_results, make_record
from engine.runfolder import open_run_folder
from engine.runtime import RunError, adjust_learning_rate, make_writer, save_settings, seed_everything, topk_correct
from feeder.feeder_downstream import DownstreamFeeder, semi_subset
from moco.modalities import MODALITIES
from options.options_classification import RESUME_MAY_CHANGE, choose_preset, eval_settings, open_data
from options.settings import differences, learning_rate_change, resume_refusal, to_dict

log = logging.getLogger(__name__)

FUSION = "fusion"
CHECKPOINT = "checkpoint.pth.tar"


class FrozenEncoderError(RunError):
    """A frozen encoder's weights or BatchNorm statistics changed during linear evaluation."""


def make_loader(dataset, batch_size, workers, train, device):
    """A DataLoader over `dataset`: shuffled by its own generator when `train` (train_classifier seeds it
    every epoch), in order otherwise."""
    generator = torch.Generator() if train else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=False,
        generator=generator,
    )


def frozen_snapshot(model):
    """Copies of every encoder parameter and buffer except the classifiers (name -> tensor)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k not in model.classifier_keys}


def check_unchanged(model, snapshot):
    """Raise FrozenEncoderError naming the entries of `model` that differ from `snapshot`."""
    state = model.state_dict()
    changed = sorted(k for k, v in snapshot.items() if not torch.equal(state[k].to(v.device), v))
    if changed:
        raise FrozenEncoderError(
            f"linear evaluation changed {len(changed)} frozen encoder entries "
            f"(weights or BatchNorm statistics): {short_list(changed, 10)}"
        )


def trainable_parameters(model, views, finetune):
    """The parameters the optimizer updates: the views' classifiers (nothing else gets a gradient), or
    their whole encoders."""
    if not finetune:
        for name, param in model.named_parameters():
            param.requires_grad = name in model.classifier_keys
    params = []
    for view in views:
        encoder = model.query_encoder(view)
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
        clips = clips.to(device, non_blocking=True)  # N x C x T x V x M
        for view in views:
            scores[view].append(model(clips, view=view).float().cpu())  # N x classes
        targets.append(labels)
    target = torch.cat(targets)  # N
    merged = {view: torch.cat(s) for view, s in scores.items()}  # view -> N x classes
    if len(views) == len(MODALITIES):
        merged[FUSION] = fuse_scores([merged[v] for v in views])
    return {name: _top1_top5(s, target) for name, s in merged.items()}


def _top1_top5(scores, target):
    """{'top1', 'top5'} (percent) of class scores (N x C); top-5 is None over 5 classes or fewer, where
    every target is among the five highest by definition."""
    top1, top5 = topk_correct(scores, target, ks=(1, 5))
    return dict(top1=top1, top5=informative_top5(top5, scores.shape[1]))


def top5_text(value):
    """A top-5 as printed: 'n/a' when there were 5 classes or fewer to rank."""
    return "n/a" if value is None else f"{value:.2f}"


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
        clips = clips.to(device, non_blocking=True)  # N x C x T x V x M
        labels = labels.to(device, non_blocking=True)  # N
        loss = sum(F.cross_entropy(model(clips, view=view), labels) for view in views)
        if not torch.isfinite(loss):
            raise RunError(
                f"the classifier's loss became {loss.item()} at epoch {epoch} (a learning rate too "
                f"large, or non-finite weights in the checkpoint); no result was recorded"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * labels.shape[0]
        count += labels.shape[0]
        bar.set_postfix(loss=f"{loss.item():.4f}")
    mean = total / max(count, 1)
    writer.add_scalar("train/loss", mean, epoch)
    return mean


def read_probe_resume(path, record):
    """The checkpoint of an SGD evaluation run to continue, checked against this run's `record`, with
    its RNG restorer; CheckpointError naming the file when it is not one, or another run's."""
    state = read_checkpoint(path, need=("epoch", "state_dict"))
    if "best_acc1" in state:
        raise CheckpointError(
            f"--resume {path} is a checkpoint of the published linear evaluation, which this code cannot "
            "continue (it keeps one view's best top-1 only); start the evaluation again without --resume"
        )
    missing = [key for key in ("best", "optimizer") if key not in state]
    if missing:
        pretraining = any(key.startswith(("queue", "module.queue")) for key in state["state_dict"])
        raise CheckpointError(
            f"--resume {path} is not an action_classification.py checkpoint (no {' or '.join(map(repr, missing))} "
            "entry)" + ("; it is a pretraining checkpoint, which goes to --pretrained" if pretraining else "")
        )
    recorded = recorded_settings(state)
    if recorded is not None:
        differ = differences(recorded, record, RESUME_MAY_CHANGE)
        if differ:
            raise CheckpointError(resume_refusal(path, differ))
        change = learning_rate_change(recorded, record)
        if change:
            log.warning("--resume %s: %s", path, change)
    return state, parse_rng_state(state["rng"], path)


def train_classifier(model, train_loader, val_loader, settings, device, out_dir, writer, resumed=None):
    """Train the classifiers of the run's views with SGD (linear or fine-tuning) and validate every
    eval_freq epochs and at the last; returns, for each view (and the fusion), the best top-1, the
    top-5 of that epoch and the epoch. A checkpoint (weights, optimizer, epoch, best results, RNG,
    settings) is written to `out_dir/checkpoint.pth.tar` at each validation; `resumed` is one read by
    `read_probe_resume`, continued here."""
    probe, views = settings.probe, _views(settings)
    model.to(device)
    params = trainable_parameters(model, views, probe.finetune)
    if not probe.finetune:
        snapshot = frozen_snapshot(model)
    optimizer = torch.optim.SGD(params, lr=probe.lr, momentum=probe.momentum, weight_decay=probe.weight_decay)
    best, start_epoch = {}, 0
    if resumed is not None:
        state, restore_rng = resumed
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, best = int(state["epoch"]), dict(state["best"])
        restore_rng()
        log.info("resumed %s at epoch %d", settings.run.resume, start_epoch)
        if not probe.finetune:
            try:
                check_unchanged(model, snapshot)
            except FrozenEncoderError as exc:
                raise FrozenEncoderError(
                    f"--resume {settings.run.resume}: its frozen encoders are not those of "
                    f"the pretrained checkpoint given now ({exc})"
                ) from None
    record = to_dict(settings)
    for epoch in range(start_epoch, probe.epochs):
        lr = adjust_learning_rate(optimizer, epoch, probe.lr, probe.schedule)
        writer.add_scalar("train/lr", lr, epoch)
        train_loader.dataset.set_epoch(epoch)
        train_loader.generator.manual_seed(settings.run.seed * 100_003 + epoch)  # batch order of this epoch
        loss = train_one_epoch(model, train_loader, optimizer, views, device, probe.finetune, epoch, writer)
        if (epoch + 1) % probe.eval_freq and epoch + 1 != probe.epochs:
            continue
        metrics = evaluate(model, val_loader, views, device)
        for name, values in metrics.items():
            writer.add_scalar(f"val/top1_{name}", values["top1"], epoch)
            if values["top5"] is not None:
                writer.add_scalar(f"val/top5_{name}", values["top5"], epoch)
            if name not in best or values["top1"] > best[name]["top1"]:
                best[name] = dict(values, epoch=epoch)
            best[name]["last_top1"] = values["top1"]  # each view's best is its own; the last beside it
        tqdm.write(
            f"epoch {epoch}: loss {loss:.4f} lr {lr:g} "
            + " ".join(
                f"{n} {v['top1']:.2f}/{top5_text(v['top5'])} (best {best[n]['top1']:.2f})" for n, v in metrics.items()
            )
        )
        save_checkpoint(
            {
                "epoch": epoch + 1,
                "state_dict": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "best": best,
                "rng": rng_state(),
                "settings": record,
            },
            os.path.join(out_dir, CHECKPOINT),
        )
    if not probe.finetune:
        check_unchanged(model, snapshot)
    writer.flush()
    return best


def _views(settings):
    return list(MODALITIES) if settings.run.view == "all" else [settings.run.view]


def _start(settings, kind):
    """The device, the output folder claimed and the results file checked, before any work."""
    run = settings.run
    check_writable(run.results, "--results")
    if settings.knn is not None and settings.knn.save_features:
        check_writable(settings.knn.save_features, "--save-features")
    resumable = settings.probe is not None and settings.probe.probe == "sgd"
    claim = open_run_folder(
        run.checkpoint_path,
        kind,
        to_dict(settings),
        RESUME_MAY_CHANGE,
        run.resume,
        run.fresh,
        os.path.join(run.checkpoint_path, CHECKPOINT) if resumable else None,
        reads=run.pretrained,
    )
    return torch.device(run.device), claim


def _feeder(settings, split, train, indices=None):
    return DownstreamFeeder(
        split,
        train=train,
        indices=indices,
        seed=settings.run.seed,
        view_frames=settings.view_frames,
        min_crop_frames=settings.min_crop_frames,
    )


def _frozen_features(settings, model, split, views, random_crop, batch_size, device):
    """{view: (features, labels, indices)} of the frozen encoder on `split`, in the split's order: the
    0.95 centre crops, or random crops when `random_crop` (kNN's --train-crop random)."""
    loader = make_loader(_feeder(settings, split, random_crop), batch_size, settings.run.workers, False, device)
    return {view: extract_features(model, loader, view, device) for view in views}


def prepare_evaluation(parser, args):
    """(settings, model, train, val) of a parsed evaluation command line: seeded (a random encoder's
    weights, as every draw after, follow --seed), the folder opened, the preset chosen, the checkpoint
    loaded, the EvalSettings record built."""
    if args.seed is None:
        args.seed = _unset_seed(getattr(args, "resume", ""))
    seed_everything(args.seed)
    train, val = open_data(parser, args)
    preset, random_views = choose_preset(parser, args, train)
    model, info = downstream_model(
        args.pretrained, train.num_class, train.layout, args.hidden_size, args.num_layers, random_views, train.folder
    )
    settings = eval_settings(parser, args, preset, train, info)
    trained = np.asarray(train.labels)
    if settings.stage != "knn":
        indices = _check_training_classes(parser, settings, train)
        trained = trained if indices is None else trained[indices]  # --data-ratio: the classes of its subset
    unseen = np.setdiff1d(np.asarray(val.labels), trained)
    if len(unseen):
        count = int(np.isin(np.asarray(val.labels), unseen).sum())
        print(
            f"warning: {count} of {len(val)} evaluation recordings of {val.folder} belong to classes with no "
            f"training recording ({', '.join(map(str, unseen[:10]))}{' …' if len(unseen) > 10 else ''}); "
            "no classifier can name them, so top-1 is at most "
            f"{100 * (len(val) - count) / len(val):.1f} %",
            flush=True,
        )
    return settings, model, train, val


def _unset_seed(resume):
    """The seed of a run given no --seed: the resumed run's, else one drawn afresh (as the published
    evaluation's is), printed so that --seed repeats the run."""
    if resume:
        recorded = recorded_settings(read_checkpoint(resume, need=("epoch", "state_dict"))) or {}
        seed = recorded.get("run", recorded).get("seed")
        if isinstance(seed, int):
            return seed
    seed = secrets.randbelow(2**31)
    print(f"no --seed: drew seed {seed} (recorded with the run; --seed {seed} repeats it)", flush=True)
    return seed


def _check_training_classes(parser, settings, train):
    """Before any work: --data-ratio must select a sample (a usage error) and the samples a classifier is
    trained on must hold two classes or more (ProcessedDataError naming the folder). Returns the
    subset's indices (`_training_subset`)."""
    try:
        indices = _training_subset(settings, train)
    except ValueError as exc:
        parser.error(f"--data-ratio: {exc} in {train.folder}")
    labels = np.asarray(train.labels)
    what = "its training part"
    if indices is not None:
        labels, what = labels[indices], f"the --data-ratio {settings.probe.data_ratio:g} subset of its training part"
    check_classes(train.folder, labels, what)
    return indices


def check_classes(folder, labels, what="its training part"):
    """ProcessedDataError naming `folder` unless the training `labels` hold two classes or more."""
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ProcessedDataError(
            f"{folder}: {what} holds one class (label {classes[0]}); a classifier needs two or more"
        )


def _training_subset(settings, train):
    """The sorted indices of --data-ratio's training subset (semi_subset), or None: every sample."""
    ratio = settings.probe.data_ratio
    return semi_subset(len(train), ratio, settings.run.seed) if ratio < 1.0 else None


def _train_or_fit(settings, model, train, val, device, resumed):
    """Train (SGD) or fit (logistic) the run's classifiers, writing the run folder's files; returns the best
    results per view."""
    run, probe = settings.run, settings.probe
    out = run.checkpoint_path
    indices = _training_subset(settings, train)
    if indices is not None:
        save_subset(os.path.join(out, "train_subset.json"), indices, train, probe.data_ratio, run.seed)
    save_settings(to_dict(settings), out)
    model.to(device)
    if probe.probe == "logistic":
        best = _logistic(settings, model, train, val, device, indices)
        write_final_scalars(out, best, "val")
    else:
        writer = make_writer(os.path.join(out, "tensorboard"))
        try:
            loaders = [
                make_loader(
                    _feeder(settings, split, is_train, indices if is_train else None),
                    probe.batch_size,
                    run.workers,
                    is_train,
                    device,
                )
                for split, is_train in ((train, True), (val, False))
            ]
            best = train_classifier(model, *loaders, settings, device, out, writer, resumed)
        finally:
            writer.close()
    return best


def run_classification(settings, model, train, val):
    """A linear evaluation, semi-supervised fine-tuning or transfer run (see the module docstring);
    returns {view: {'top1', 'top5', …}} and appends one record per view to the results file."""
    run, probe = settings.run, settings.probe
    resumed = read_probe_resume(run.resume, to_dict(settings)) if run.resume else None
    out = run.checkpoint_path
    at = int(resumed[0]["epoch"]) if resumed is not None else None  # resumed: an SGD run, which has epochs
    if at is not None and at > probe.epochs:  # its best results were chosen over epochs this run's settings do not have
        raise CheckpointError(
            f"--resume {run.resume} is at epoch {at}, beyond --epochs {probe.epochs}: a run is not cut back; "
            f"pass --epochs {at}, its length, or more to continue it"
        )
    finished = resumed is not None and at == probe.epochs
    if finished and os.path.exists(os.path.join(out, RESULT)):
        print(
            f"nothing to do: {run.resume} is at epoch {at}, --epochs {probe.epochs} (its results are in "
            f"{os.path.join(out, RESULT)}, appended to the results file of the command that finished it; "
            f"nothing is appended to {run.results} now; a longer --epochs continues it)"
        )
        return dict(resumed[0]["best"])
    device, claim = _start(settings, "classification")
    try:
        if finished:  # stopped after its last checkpoint, before its results were recorded
            print(f"{run.resume} finished training (epoch {at}); recording its results")
            best = dict(resumed[0]["best"])
        else:
            best = _train_or_fit(settings, model, train, val, device, resumed)
        classes = settings.data.num_class
        # top-5 left out over 5 classes or fewer, also in a run resumed from before it was
        best = {v: dict(values, top5=informative_top5(values.get("top5"), classes)) for v, values in best.items()}
        records = [
            make_record(
                settings,
                view,
                values["top1"],
                top5=values.get("top5"),  # None (left out) over 5 classes or fewer
                epoch=values.get("epoch"),
                C=values.get("C"),
                last_top1=values.get("last_top1"),
                probe=probe.probe,
                finetune=probe.finetune,
                data_ratio=probe.data_ratio,
            )
            for view, values in best.items()
        ]
        appended = append_results(run.results, records, again=finished)
    finally:
        claim.release()
    trained = "fine-tuned with SGD" if probe.finetune else f"{probe.probe} probe"
    for view, values in best.items():
        chosen = (
            f" (best validation: epoch {values['epoch']}; last {values['last_top1']:.2f})"
            if "last_top1" in values
            else ""
        )
        print(
            f"{settings.stage} {settings.data.dataset} {settings.data.protocol} {view} ({trained}): "
            f"top-1 {values['top1']:.2f} top-5 {top5_text(values.get('top5'))}{chosen}"
        )
    if appended:
        print(f"{len(records)} results appended to {run.results}; run folder {out}")
    else:
        print(f"{len(records)} results already in {run.results} (appended before the stop); run folder {out}")
    return best


def _logistic(settings, model, train, val, device, indices=None):
    """The logistic probe on frozen features of the run's views (engine/probe.py), fitted on the training
    samples `indices` (all by default: --data-ratio's subset otherwise)."""

    def read(split, rows=None):
        found = _frozen_features(settings, model, split, _views(settings), False, settings.probe.batch_size, device)
        rows = slice(None) if rows is None else rows
        return {view: feats.numpy()[rows] for view, (feats, _, _) in found.items()}, np.asarray(split.labels)[rows]

    return logistic_probe(read(train, indices), read(val), seed=settings.run.seed)


def save_features(path, view, checkpoint, train, val):
    """Write train/val features (N x D float32), labels (N int64) and sample names to `path` (.npz)."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:  # a file object: np.savez adds no '.npz' to it
        np.savez(
            f,
            view=np.array(view),
            checkpoint=np.array(checkpoint or ""),
            train_features=train[0],
            train_labels=train[1],
            train_names=np.array(train[2]),
            val_features=val[0],
            val_labels=val[1],
            val_names=np.array(val[2]),
        )


def run_knn(settings, model, train, val):
    """kNN evaluation (engine/knn.py) of the run's view; returns the top-1 and appends its record."""
    run, knn = settings.run, settings.knn
    device, claim = _start(settings, "kNN evaluation")
    try:
        if device.type == "cuda":
            torch.backends.cudnn.allow_tf32 = False  # full float32 GRUs: exported features match the CPU's
        save_settings(to_dict(settings), run.checkpoint_path)
        model.to(device)
        features = {}
        for part, split, is_train in (("train", train, knn.train_crop == "random"), ("val", val, False)):
            feats, labels, indices = _frozen_features(
                settings, model, split, [run.view], is_train, knn.batch_size, device
            )[run.view]  # N x 2H, N, N
            features[part] = (feats, labels, [split.names[int(i)] for i in indices])
        if knn.save_features:
            save_features(
                knn.save_features,
                run.view,
                run.pretrained,
                *[
                    (feats.numpy(), labels.numpy(), names)
                    for feats, labels, names in (features["train"], features["val"])
                ],
            )
            print(f"features written to {knn.save_features}")
        try:
            top1 = knn_top1(
                features["train"][0],
                features["train"][1],
                features["val"][0],
                features["val"][1],
                k=knn.knn_neighbours,
                chunk_size=knn.chunk_size,
                device=device,
            )
        except ValueError as exc:  # non-finite features
            raise RunError(str(exc)) from None
        write_final_scalars(run.checkpoint_path, {run.view: {"top1": top1}}, "knn")
        append_results(run.results, [make_record(settings, run.view, top1, k=knn.knn_neighbours)])
    finally:
        claim.release()
    print(
        f"kNN (k={knn.knn_neighbours}) {settings.data.dataset} {settings.data.protocol} {run.view}"
        f"{' (the mean feature of the three encoders)' if run.view == 'all' else ''}: top-1 {top1:.2f}; appended to "
        f"{run.results}"
    )
    return top1


def write_final_scalars(out, results, prefix):
    """TensorBoard scalars `<prefix>/top1_<view>` (and top5) of a run fitted in one go (kNN, the logistic
    probe), at step 0, in `out/tensorboard` as the SGD probe's per-epoch ones."""
    writer = make_writer(os.path.join(out, "tensorboard"))
    try:
        for view, values in results.items():
            for metric in ("top1", "top5"):
                if values.get(metric) is not None:
                    writer.add_scalar(f"{prefix}/{metric}_{view}", values[metric], 0)
    finally:
        writer.close()


def save_subset(path, indices, split, ratio, seed):
    """Record the chosen training subset (indices, names, labels, ratio, seed) as JSON at `path`."""
    record = {
        "folder": split.folder,
        "ratio": ratio,
        "seed": seed,
        "size": len(indices),
        "indices": [int(i) for i in indices],
        "names": [split.names[int(i)] for i in indices],
        "labels": [int(split.labels[int(i)]) for i in indices],
    }
    write_text(path, json.dumps(record, indent=1) + "\n")
