"""Command-line options of `pretrain_cmd.py`: the published flags (SPEC §6) and ours.

Defaults come from `options.presets.preset('pretrain', --pre-dataset, --protocol)`; a flag given
on the command line wins.
"""
import argparse

from options.presets import PROTOCOLS, preset

AUGMENT_ON = ("auto", "loader", "device")


def build_parser(defaults=None):
    """The argument parser, with defaults from `defaults` (a preset dict) where the preset has them."""
    d = defaults or preset("pretrain", "ntu60", "cross_subject")
    p = argparse.ArgumentParser(description="CMD pretraining: three-modality MoCo with cross-modal mutual "
                                            "distillation on skeleton sequences")
    p.add_argument("-j", "--workers", default=8, type=int, metavar="N", help="data loading workers (default 8)")
    p.add_argument("--epochs", default=d["epochs"], type=int, metavar="N", help="total epochs to run")
    p.add_argument("--start-epoch", default=0, type=int, metavar="N",
                   help="epoch number to start at (overridden by --resume)")
    p.add_argument("-b", "--batch-size", default=d["batch_size"], type=int, metavar="N",
                   help="batch size per process; the global batch is this × the number of processes")
    p.add_argument("--lr", "--learning-rate", default=d["lr"], type=float, metavar="LR", dest="lr",
                   help="initial learning rate")
    p.add_argument("--schedule", default=d["schedule"], type=int, nargs="*", metavar="EPOCH",
                   help="epochs at which the learning rate is multiplied by 0.1")
    p.add_argument("--momentum", default=d["momentum"], type=float, metavar="M", help="SGD momentum")
    p.add_argument("--wd", "--weight-decay", default=d["weight_decay"], type=float, metavar="W",
                   dest="weight_decay", help="weight decay")
    p.add_argument("-p", "--print-freq", default=10, type=int, metavar="N",
                   help="log step scalars every N steps")
    p.add_argument("--resume", default="", type=str, metavar="PATH", help="checkpoint to resume from")
    p.add_argument("--local_rank", "--local-rank", default=-1, type=int, dest="local_rank",
                   help="local process rank (set by torch.distributed.launch; torchrun sets LOCAL_RANK)")
    p.add_argument("--seed", default=42, type=int, help="seed of weights, sample order and views")
    p.add_argument("--checkpoint-path", default=None, type=str, metavar="DIR",
                   help="folder for checkpoints, settings and TensorBoard logs "
                        "(default ./checkpoints/<dataset>_<protocol>_pretrain)")
    p.add_argument("--skeleton-representation", default=d["skeleton_representation"], type=str,
                   choices=["graph-based"], help="input representation")
    p.add_argument("--pre-dataset", default=d["dataset"], type=str, choices=sorted(PROTOCOLS),
                   help="pretraining dataset")
    p.add_argument("--protocol", default=d["protocol"], type=str,
                   choices=["cross_subject", "cross_view", "cross_setup"], help="benchmark")
    p.add_argument("--contrast-dim", default=d["contrast_dim"], type=int, help="embedding size")
    p.add_argument("--contrast-k", default=d["contrast_k"], type=int, help="queue length K")
    p.add_argument("--contrast-m", default=d["contrast_m"], type=float, help="key encoder momentum")
    p.add_argument("--contrast-t", default=d["contrast_t"], type=float, help="InfoNCE temperature")
    p.add_argument("--teacher-t", default=d["teacher_t"], type=float, help="CMD teacher temperature")
    p.add_argument("--student-t", default=d["student_t"], type=float, help="CMD student temperature")
    p.add_argument("--cmd-weight", default=d["cmd_weight"], type=float, help="weight of the CMD loss")
    p.add_argument("--topk", default=d["topk"], type=int, help="queue entries compared by the CMD loss")
    p.add_argument("--mlp", default=d["mlp"], action=argparse.BooleanOptionalAction,
                   help="MLP projection head")
    p.add_argument("--cos", default=d["cos"], action=argparse.BooleanOptionalAction,
                   help="cosine learning-rate schedule")
    p.add_argument("--data-dir", default=None, type=str, metavar="DIR",
                   help="processed folder (default: the dataset's folder for the protocol)")
    p.add_argument("--hidden-size", default=d["hidden_size"], type=int, help="GRU hidden size per direction")
    p.add_argument("--num-layers", default=d["num_layers"], type=int, help="GRU layers")
    p.add_argument("--device", default=None, type=str, help="torch device (default: CUDA when available)")
    p.add_argument("--amp", action="store_true", help="mixed precision (autocast + GradScaler) on CUDA")
    p.add_argument("--view-frames", default=64, type=int,
                   help="frames of each pretraining view (the paper: 64)")
    p.add_argument("--corrupted-joints", default=15, type=int,
                   help="joints a joint corruption picks (the paper: 15 of 25)")
    p.add_argument("--augment-on", default="auto", choices=AUGMENT_ON,
                   help="where views are made: 'loader' (per sample in DataLoader workers), 'device' "
                        "(batched on the training device), 'auto' (device on CUDA, else loader)")
    return p


def parse_args(argv=None):
    """Parse `argv` with defaults from the preset of the chosen --pre-dataset and --protocol."""
    first, _ = build_parser().parse_known_args(argv)
    try:
        defaults = preset("pretrain", first.pre_dataset, first.protocol)
    except ValueError as exc:
        build_parser().error(str(exc))
    parser = build_parser(defaults)
    args = parser.parse_args(argv)
    problems = []
    for name in ("epochs", "batch_size", "contrast_k", "contrast_dim", "topk", "hidden_size", "num_layers",
                 "print_freq"):
        if getattr(args, name) < 1:
            problems.append(f"--{name.replace('_', '-')} must be at least 1, found {getattr(args, name)}")
    if args.workers < 0:
        problems.append(f"--workers must be at least 0, found {args.workers}")
    if args.topk > args.contrast_k:
        problems.append(f"--topk {args.topk} is larger than the queue length --contrast-k {args.contrast_k}")
    if args.contrast_k % args.batch_size:
        problems.append(f"--contrast-k {args.contrast_k} is not divisible by the batch size {args.batch_size}")
    if not 0 <= args.start_epoch < args.epochs:
        problems.append(f"--start-epoch {args.start_epoch} must be in [0, --epochs {args.epochs})")
    if problems:
        parser.error("; ".join(problems))
    if args.checkpoint_path is None:
        args.checkpoint_path = f"./checkpoints/{args.pre_dataset}_{args.protocol}_pretrain"
    return args
