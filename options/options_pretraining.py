"""Command-line options of `pretrain_cmd.py`: the published flags and ours.

Every flag the 'pretrain' preset holds is filled from `preset('pretrain', --pre-dataset, --protocol)`
after parsing (options/presets.py); a flag given on the command line wins.
"""
import os

from options.parsing import at_least, check_rules, flag_name, in_unit, make_parser, positive, resolve_preset
from options.presets import PROTOCOLS

AUGMENT_ON = ("auto", "loader", "device")

# Settings a resumed run may give other values than its checkpoint's 'options'. Every other one (data
# folder and its size, model, loss, seed, SGD momentum and weight decay, which the optimizer state
# brings back anyway, and the global batch) must be the same, or the resume would mix two runs.
RESUME_MAY_CHANGE = (
    "epochs", "lr", "schedule", "cos",  # the learning-rate schedule; each epoch's rate is in log.jsonl
    "batch_size", "world_size", "steps_per_epoch",  # how the same global batch is split over processes
    "resume", "start_epoch", "checkpoint_path", "workers", "print_freq", "local_rank", "device", "amp",
    "augment_on",  # where and how the run computes, not what it trains
)

RULES = {
    "epochs": at_least(1), "batch_size": at_least(1), "contrast_k": at_least(1), "contrast_dim": at_least(1),
    "topk": at_least(1), "hidden_size": at_least(1), "num_layers": at_least(1), "print_freq": at_least(1),
    "workers": at_least(0), "start_epoch": at_least(0), "schedule": at_least(0), "view_frames": at_least(1),
    "corrupted_joints": at_least(1), "lr": positive(), "momentum": in_unit(closed_top=False),
    "weight_decay": at_least(0), "contrast_m": in_unit(), "contrast_t": positive(), "teacher_t": positive(),
    "student_t": positive(), "cmd_weight": at_least(0),
}


def build_parser():
    """The argument parser; preset-held flags default to None (filled by `parse_args`)."""
    p = make_parser("CMD pretraining: three-modality MoCo with cross-modal mutual distillation on skeleton "
                    "sequences. Flags marked (preset) default to the published setting of --pre-dataset.")
    p.add_argument("-j", "--workers", default=8, type=int, metavar="N", help="data loading workers")
    p.add_argument("--epochs", type=int, metavar="N", help="total epochs to run (preset)")
    p.add_argument("--start-epoch", default=0, type=int, metavar="N",
                   help="epoch number to start at (overridden by --resume)")
    p.add_argument("-b", "--batch-size", type=int, metavar="N",
                   help="batch size per process; the global batch is this x the number of processes (preset)")
    p.add_argument("--lr", "--learning-rate", type=float, metavar="LR", dest="lr", help="initial learning rate (preset)")
    p.add_argument("--schedule", type=int, nargs="*", metavar="EPOCH",
                   help="epochs at which the learning rate is multiplied by 0.1 (preset)")
    p.add_argument("--momentum", type=float, metavar="M", help="SGD momentum (preset)")
    p.add_argument("--wd", "--weight-decay", type=float, metavar="W", dest="weight_decay",
                   help="weight decay (preset)")
    p.add_argument("-p", "--print-freq", default=10, type=int, metavar="N", help="log step scalars every N steps")
    p.add_argument("--resume", default="", type=str, metavar="PATH",
                   help="checkpoint to resume from; the settings that define the run must equal the checkpoint's, "
                        "only these may change: " + ", ".join(flag_name(name) for name in RESUME_MAY_CHANGE
                                                              if name not in ("world_size", "steps_per_epoch"))
                        + " (the global batch, batch size x processes, must stay)")
    p.add_argument("--local_rank", "--local-rank", default=-1, type=int, dest="local_rank",
                   help="local process rank (set by torch.distributed.launch; torchrun sets LOCAL_RANK)")
    p.add_argument("--seed", default=42, type=int, help="seed of weights, sample order and views")
    p.add_argument("--checkpoint-path", default=None, type=str, metavar="DIR",
                   help="folder for checkpoints, settings and TensorBoard logs "
                        "(default ./checkpoints/<dataset>_<protocol>_pretrain)")
    p.add_argument("--skeleton-representation", type=str, choices=["graph-based"], help="input representation (preset)")
    p.add_argument("--pre-dataset", default="ntu60", type=str, choices=sorted(PROTOCOLS),
                   help="pretraining dataset (chooses the preset and the default folder)")
    p.add_argument("--protocol", default="cross_subject", type=str,
                   choices=["cross_subject", "cross_view", "cross_setup"], help="benchmark")
    p.add_argument("--contrast-dim", type=int, help="embedding size (preset)")
    p.add_argument("--contrast-k", type=int, help="queue length K (preset)")
    p.add_argument("--contrast-m", type=float, help="key encoder momentum (preset)")
    p.add_argument("--contrast-t", type=float, help="InfoNCE temperature (preset)")
    p.add_argument("--teacher-t", type=float, help="CMD teacher temperature (preset)")
    p.add_argument("--student-t", type=float, help="CMD student temperature (preset)")
    p.add_argument("--cmd-weight", type=float, help="weight of the CMD loss; 0 gives three independent MoCo (preset)")
    p.add_argument("--topk", type=int, help="queue entries compared by the CMD loss (preset)")
    p.add_argument("--mlp", default=None, action="store_true", help="MLP projection head (preset)")
    p.add_argument("--no-mlp", dest="mlp", action="store_false", help="linear projection head")
    p.add_argument("--cos", default=None, action="store_true", help="cosine learning-rate schedule (preset: step)")
    p.add_argument("--no-cos", dest="cos", action="store_false", help="step learning-rate schedule")
    p.add_argument("--data-dir", default=None, type=str, metavar="DIR",
                   help="processed folder (default: the dataset's folder for the protocol)")
    p.add_argument("--hidden-size", type=int, help="GRU hidden size per direction (preset)")
    p.add_argument("--num-layers", type=int, help="GRU layers (preset)")
    p.add_argument("--device", default=None, type=str, help="torch device (default: CUDA when available)")
    p.add_argument("--amp", action="store_true", help="mixed precision (autocast + GradScaler) on CUDA")
    p.add_argument("--view-frames", type=int, help="frames of each pretraining view (preset: the paper's 64)")
    p.add_argument("--corrupted-joints", type=int,
                   help="joints a joint corruption picks (default: the folder's layout's; ntu25: the paper's 15 "
                        "of 25, kinect20: 12 of 20)")
    p.add_argument("--augment-on", default="auto", choices=AUGMENT_ON,
                   help="where views are made: 'loader' (per sample in DataLoader workers), 'device' "
                        "(batched on the training device), 'auto' (device on CUDA, else loader)")
    return p


def parse_args(argv=None):
    """Parse `argv`, fill unset flags from the preset of --pre-dataset/--protocol and check every rule.

    Any problem is a usage error (exit status 2) before work starts. The global batch is the batch
    size times the number of processes, WORLD_SIZE as torchrun sets it (1 without torchrun). Rules
    that need the processed folder (a training set of at least one global batch, corrupted joints
    within the skeleton) are checked by engine/pretrain.py once it is open.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    resolve_preset(parser, args, "pretrain", args.pre_dataset, args.protocol)
    check_rules(parser, args, RULES)
    problems = []
    if args.topk > args.contrast_k:
        problems.append(f"--topk {args.topk} is larger than the queue length --contrast-k {args.contrast_k}")
    world_size = world_size_from_env(parser)
    if args.contrast_k % (args.batch_size * world_size):
        problems.append(f"--contrast-k {args.contrast_k} is not divisible by the global batch size "
                        f"{args.batch_size * world_size} (--batch-size {args.batch_size} x {world_size} processes)")
    if not args.start_epoch < args.epochs:
        problems.append(f"--start-epoch {args.start_epoch} must be in [0, --epochs {args.epochs})")
    if problems:
        parser.error("; ".join(problems))
    if args.checkpoint_path is None:
        args.checkpoint_path = f"./checkpoints/{args.pre_dataset}_{args.protocol}_pretrain"
    return args


def world_size_from_env(parser):
    """The number of processes torchrun starts (WORLD_SIZE), 1 when it is not set."""
    value = os.environ.get("WORLD_SIZE", "")
    if not value:
        return 1
    if not value.isdigit() or int(value) < 1:
        parser.error(f"environment variable WORLD_SIZE={value!r}: expected a positive integer")
    return int(value)
