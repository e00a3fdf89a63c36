"""Command line of `pretrain_cmd.py`: the published flags and ours, resolved into one PretrainSettings.

The preset comes from the processed folder's record (options.presets.choose_preset): a published
dataset's for NTU and PKU-MMD folders, the small-data preset for any other; every flag it holds is
filled from it after parsing, and a flag given on the command line wins.
"""

import os

from dataset.catalog import DATASETS, PROTOCOL_FOLDERS, SMALL_MIN_SAMPLES
from dataset.processed import load_split
from options.parsing import (
    DEFAULT_WORKERS,
    PROTOCOL_HELP,
    SEED,
    VIEW_FRAMES,
    WORKERS_HELP,
    add_run_folder_flags,
    at_least,
    check_device,
    check_output_path,
    check_rules,
    data_folder,
    data_name,
    data_settings,
    given_flags,
    in_unit,
    make_parser,
    positive,
    print_import_warnings,
    resolve_preset,
    resolve_protocol,
    say,
    world_size_from_env,
)
from options.presets import (
    DEFAULT_DATASET,
    PRESET_NAMES,
    SMALL,
    SMALL_CORRUPTED_SHARE,
    checkpoint_every,
)
from options.settings import (
    ContrastSettings,
    EncoderSettings,
    OptimSettings,
    PretrainSettings,
    RunSettings,
    ViewSettings,
    flag,
)

AUGMENT_ON = ("device", "loader")

# Settings a resumed run may give other values than its checkpoint's. Every other one (the data's
# fingerprint and size, model, loss, views, seed, SGD momentum and weight decay, the global batch)
# must be the same, or the resume would mix two runs.
RESUME_MAY_CHANGE = (
    "epochs",
    "steps",
    "lr",
    "schedule",
    "cos",  # the learning-rate schedule; each epoch's rate is in log.jsonl
    "batch_size",
    "world_size",
    "local_rank",  # how the same global batch is split over processes
    "data_dir",  # the same data (same fingerprint) may have moved
    "num_class",  # learnt by no pretraining; a layout.json (which published tools do not write) records it
    "resume",
    "fresh",
    "rewind",
    "start_epoch",
    "checkpoint_path",
    "checkpoint_every",
    "workers",
    "print_freq",
    "device",
    "amp",
    "augment_on",  # where and how the run computes, not what it trains
)

RULES = {
    "epochs": at_least(1),
    "steps": at_least(1),
    "batch_size": at_least(1),
    "contrast_k": at_least(1),
    "contrast_dim": at_least(1),
    "topk": at_least(1),
    "hidden_size": at_least(1),
    "num_layers": at_least(1),
    "print_freq": at_least(1),
    "checkpoint_every": at_least(1),
    "workers": at_least(0),
    "start_epoch": at_least(0),
    "schedule": at_least(0),
    "view_frames": VIEW_FRAMES,
    "seed": SEED,
    "min_crop_frames": at_least(1),
    "corrupted_joints": at_least(1),
    "lr": positive(),
    "momentum": in_unit(closed_top=False),
    "weight_decay": at_least(0),
    "contrast_m": in_unit(),
    "contrast_t": positive(),
    "teacher_t": positive(),
    "student_t": positive(),
    "cmd_weight": at_least(0),
}


def build_parser():
    """The argument parser; preset-held flags default to None (filled by `resolve`)."""
    p = make_parser(
        "CMD pretraining: three-modality MoCo with cross-modal mutual distillation on skeleton "
        "sequences. Flags marked (preset) default to the preset the data folder implies: the "
        "published settings for NTU / PKU-MMD folders, the small-data rules for others."
    )
    p.add_argument(
        "-j",
        "--workers",
        default=DEFAULT_WORKERS,
        type=int,
        metavar="N",
        help=WORKERS_HELP,
    )
    p.add_argument("--epochs", type=int, metavar="N", help="total epochs to run (preset)")
    p.add_argument(
        "--steps",
        type=int,
        metavar="N",
        help="training length in optimisation steps, rounded up to whole epochs of the folder "
        "(preset: the small-data preset's; published presets give --epochs)",
    )
    p.add_argument(
        "--start-epoch", default=0, type=int, metavar="N", help="epoch number to start at (overridden by --resume)"
    )
    p.add_argument(
        "-b",
        "--batch-size",
        type=int,
        metavar="N",
        help="batch size per process; the global batch is this x the number of processes (preset)",
    )
    p.add_argument(
        "--lr", "--learning-rate", type=float, metavar="LR", dest="lr", help="initial learning rate (preset)"
    )
    p.add_argument(
        "--schedule",
        type=int,
        nargs="*",
        metavar="EPOCH",
        help="epochs at which the learning rate is multiplied by 0.1 (preset)",
    )
    p.add_argument("--momentum", type=float, metavar="M", help="SGD momentum (preset)")
    p.add_argument("--wd", "--weight-decay", type=float, metavar="W", dest="weight_decay", help="weight decay (preset)")
    p.add_argument("-p", "--print-freq", default=10, type=int, metavar="N", help="log step scalars every N steps")
    p.add_argument(
        "--resume",
        default="",
        type=os.path.expanduser,
        metavar="PATH",
        help="checkpoint to resume from; the settings that define the run must equal the checkpoint's, "
        "only these may change: " + ", ".join(flag(name) for name in RESUME_MAY_CHANGE),
    )
    p.add_argument(
        "--rewind",
        action="store_true",
        help="allow --resume from a checkpoint older than the run folder's newest; the newer files "
        "are moved to a subfolder rewound-<date-time>/",
    )
    add_run_folder_flags(p, "pretraining")
    p.add_argument(
        "--local_rank",
        "--local-rank",
        default=-1,
        type=int,
        dest="local_rank",
        help="local process rank (set by torch.distributed.launch; torchrun sets LOCAL_RANK)",
    )
    p.add_argument("--seed", default=42, type=int, help="seed of weights, sample order and views")
    p.add_argument(
        "--checkpoint-path",
        default=None,
        type=os.path.expanduser,
        metavar="DIR",
        help="folder for checkpoints, settings and TensorBoard logs "
        "(default: the folder of the --resume checkpoint when it holds a run's settings.json, else "
        "./checkpoints/<dataset>_<protocol>_pretrain; a dataset not published is tagged by its folder: mine-1a2b3c)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help="write checkpoint_%%04d.pth.tar every N epochs, besides checkpoint_last.pth.tar after each "
        "(preset: the published 10; the small-data preset a tenth of the run)",
    )
    p.add_argument("--skeleton-representation", type=str, choices=["graph-based"], help="input representation (preset)")
    p.add_argument(
        "--pre-dataset",
        default=None,
        type=str,
        choices=sorted(DATASETS),
        help="published dataset whose default folder and preset to use (default ntu60; a folder "
        "whose layout.json names its dataset chooses its own preset)",
    )
    p.add_argument(
        "--preset",
        default=None,
        choices=PRESET_NAMES,
        help="use this preset whatever the folder's record says (default: chosen from the folder)",
    )
    p.add_argument("--protocol", default=None, type=str, choices=sorted(PROTOCOL_FOLDERS), help=PROTOCOL_HELP)
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
    p.add_argument("--cos", default=None, action="store_true", help="cosine learning-rate schedule (preset)")
    p.add_argument("--no-cos", dest="cos", action="store_false", help="step learning-rate schedule")
    p.add_argument(
        "--data-dir",
        default=None,
        type=os.path.expanduser,
        metavar="DIR",
        help="processed folder (default: the dataset's folder for the protocol)",
    )
    p.add_argument("--hidden-size", type=int, help="GRU hidden size per direction (preset)")
    p.add_argument("--num-layers", type=int, help="GRU layers (preset)")
    p.add_argument("--device", default=None, type=str, help="torch device (default: CUDA when available)")
    p.add_argument("--amp", action="store_true", help="mixed precision (autocast + GradScaler) on CUDA")
    p.add_argument("--view-frames", type=int, help="frames of each pretraining view (preset)")
    p.add_argument(
        "--min-crop-frames",
        type=int,
        help="a view's random crop keeps at least this many frames, or all of a shorter recording "
        "(preset: the paper's 64; small-data: half the view length)",
    )
    p.add_argument(
        "--corrupted-joints",
        type=int,
        help="joints a joint corruption picks (preset; published: the layout's, 15 of NTU's 25)",
    )
    p.add_argument(
        "--augment-on",
        default="device",
        choices=AUGMENT_ON,
        help="where views are made: 'device' (batched on the training device, CPU or CUDA: the faster on "
        "both; loader workers only copy samples) or 'loader' (per sample in DataLoader workers)",
    )
    return p


def parse_args(argv=None):
    """(parser, args): the command line parsed, nothing resolved yet."""
    parser = build_parser()
    return parser, parser.parse_args(argv)


def resolve(parser, args):
    """(PretrainSettings, training Split): open the processed folder, choose the preset, fill unset flags
    from it and check every rule. Command-line problems are usage errors (exit 2); a bad folder raises
    ProcessedDataError."""
    world_size = world_size_from_env(parser)
    device = check_device(parser, args.device)
    folder = data_folder(parser, args.pre_dataset, args.protocol, args.data_dir)
    train = load_split(folder, "train")
    print_import_warnings(train)
    args.protocol = resolve_protocol(parser, args.protocol, train)
    if args.epochs is not None and args.steps is not None:
        parser.error("give --epochs or --steps, not both")
    if args.rewind and not args.resume:
        parser.error(
            "--rewind goes with --resume: it lets a resume continue from a checkpoint older than the folder's newest"
        )
    epochs_given = args.epochs is not None
    given = given_flags(args)
    name = resolve_preset(parser, args, "pretrain", train, args.pre_dataset, "--pre-dataset", world_size)
    if name == SMALL and len(train) < SMALL_MIN_SAMPLES:
        parser.error(
            f"the training part of {folder} holds {len(train)} recordings; the small-data preset needs "
            f"{SMALL_MIN_SAMPLES} or more (a queue of 4 and a CMD top-k of 2 at the least)"
        )
    if args.cmd_weight > 0 and 0 <= args.topk < 2 and args.contrast_k >= 1:  # a queue of 0: the flag's own rule
        # the teacher's and the student's distributions over one queue entry are both 1: the KL is always 0
        derived = "" if "topk" in given else f" (half the queue, --contrast-k {args.contrast_k})"
        parser.error(
            f"--topk {args.topk}{derived} leaves the CMD loss nothing to distil: over fewer than 2 queue entries "
            "its KL is always 0, and the run would be MoCo recorded as CMD; give --topk 2 or more (a queue of 4 "
            "or more gives it by default), or --cmd-weight 0 for MoCo without distillation"
        )
    if args.topk == 0 and "topk" not in given:  # --cmd-weight 0 with a queue of 1: top-k is unused, but valid
        args.topk = 1
    layout = train.layout
    if args.corrupted_joints is None:
        args.corrupted_joints = layout.corrupted_joints
    elif name == SMALL and "corrupted_joints" not in given and args.corrupted_joints != layout.corrupted_joints:
        say(
            f"note: the small-data preset corrupts {args.corrupted_joints} of the {layout.num_joints} joints "
            f"({SMALL_CORRUPTED_SHARE * 100:g} %), "
            f"not the {layout.corrupted_joints} of layout {layout.name!r} (the published presets' share); "
            f"--corrupted-joints {layout.corrupted_joints} uses the layout's"
        )
    check_rules(parser, vars(args), RULES)
    global_batch = args.batch_size * world_size
    steps_per_epoch = len(train) // global_batch
    problems = []
    if steps_per_epoch < 1:
        problems.append(
            f"the training set of {folder} has {len(train)} samples, fewer than one global batch of "
            f"{global_batch} (--batch-size {args.batch_size} x {world_size} processes)"
        )
    elif epochs_given:
        args.steps = None  # --epochs given: the preset's step count does not apply
    elif args.steps is not None:
        args.epochs = -(-args.steps // steps_per_epoch)
    if args.checkpoint_every is None and args.epochs is not None:
        args.checkpoint_every = checkpoint_every(args.epochs)
    if args.topk > args.contrast_k:
        problems.append(f"--topk {args.topk} is larger than the queue length --contrast-k {args.contrast_k}")
    if args.contrast_k % global_batch:
        problems.append(
            f"--contrast-k {args.contrast_k} is not divisible by the global batch size {global_batch} "
            f"(--batch-size {args.batch_size} x {world_size} processes)"
        )
    if args.epochs is not None and not args.start_epoch < args.epochs:  # None: fewer samples than a batch
        problems.append(f"--start-epoch {args.start_epoch} must be in [0, --epochs {args.epochs})")
    if args.corrupted_joints > layout.num_joints:
        problems.append(
            f"--corrupted-joints {args.corrupted_joints} is more than the {layout.num_joints} joints "
            f"of the folder's layout {layout.name!r}"
        )
    if problems:
        parser.error("; ".join(problems))
    if "schedule" in given and args.cos:  # as in the published code, the cosine schedule has no milestones
        say(
            f"warning: --schedule {' '.join(map(str, args.schedule))} is not used: the learning rate follows the "
            f"cosine schedule ({'--cos' if 'cos' in given else f'the {name} preset'}); --no-cos uses the milestones"
        )
    if args.amp and not device.startswith("cuda"):
        say(f"warning: --amp applies to CUDA only; running {device} in float32")
        args.amp = False
    resumed_in = os.path.dirname(os.path.abspath(args.resume)) if args.resume else ""
    if args.checkpoint_path is None and os.path.isfile(os.path.join(resumed_in, "settings.json")):
        args.checkpoint_path = resumed_in  # a run of ours goes on where it is (not beside a downloaded checkpoint)
    elif args.checkpoint_path is None:
        data = data_name(train, args.pre_dataset or DEFAULT_DATASET)
        args.checkpoint_path = f"./checkpoints/{data}_{args.protocol}_pretrain"
    check_output_path(parser, "checkpoint_path", args.checkpoint_path)
    settings = PretrainSettings(
        preset=name,
        skeleton_representation=args.skeleton_representation,
        data=data_settings(train, args.pre_dataset or DEFAULT_DATASET, args.protocol, train.num_class),
        encoder=_part(EncoderSettings, args),
        contrast=_part(ContrastSettings, args),
        views=_part(ViewSettings, args),
        optim=_part(OptimSettings, args, schedule=tuple(args.schedule)),
        run=_part(RunSettings, args, device=device, world_size=world_size),
    )
    return settings, train


def _part(cls, args, **given):
    """An instance of settings part `cls` from the attributes of `args` named as its fields."""
    return cls(**{name: given[name] if name in given else getattr(args, name) for name in cls.__dataclass_fields__})
