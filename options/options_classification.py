"""Command lines of the evaluation scripts, with defaults from options/presets.py.

Every setting a preset holds defaults to None here and is filled from `preset(stage, dataset,
protocol)` after parsing, so a flag given on the command line always wins. `parse_classification`
and `parse_knn` are the entry points' one call: parse, resolve, check; any problem is a usage error
(exit status 2) before work starts.

Stage of an `action_classification.py` run:
- 'linear' (frozen encoders) unless fine-tuning is asked for;
- 'semi' for the protocols `cross_subject_semi` / `cross_view_semi` (which need `--data-ratio`),
  or with `--finetune` on NTU;
- 'transfer' with `--transfer`, or with `--finetune` on `--finetune-dataset pku_v2` with a plain
  protocol: an encoder pretrained elsewhere (NTU-60/120) fine-tuned on PKU-MMD II with all labels.
  `--pretrain-dataset` names the source for the results table (ours record it in the checkpoint).
"""
import os

from options.parsing import at_least, check_rules, fill_from_preset, in_unit, make_parser, positive
from options.presets import ENCODER, NUM_CLASSES, SEMI_PROTOCOLS, preset

VIEWS = ("joint", "motion", "bone", "all")
PROTOCOL_CHOICES = ("cross_subject", "cross_view", "cross_setup") + SEMI_PROTOCOLS
DEFAULT_RESULTS = os.path.join("results", "results.jsonl")

COMMON_RULES = {"batch_size": at_least(1), "workers": at_least(0), "hidden_size": at_least(1),
                "num_layers": at_least(1)}
CLASSIFICATION_RULES = dict(COMMON_RULES, epochs=at_least(1), schedule=at_least(0), eval_freq=at_least(1),
                            lr=positive(), momentum=in_unit(closed_top=False), weight_decay=at_least(0))
KNN_RULES = dict(COMMON_RULES, knn_neighbours=at_least(1), chunk_size=at_least(1))


def _common_parser(description):
    parser = make_parser(description + ". Flags marked (preset) default to the published setting of the stage.")
    data = parser.add_argument_group("data")
    data.add_argument("--finetune-dataset", default="ntu60", choices=sorted(NUM_CLASSES),
                      help="downstream dataset")
    data.add_argument("--protocol", default="cross_subject", choices=PROTOCOL_CHOICES,
                      help="benchmark (the *_semi ones fine-tune on a labelled fraction, see --data-ratio)")
    data.add_argument("--finetune-skeleton-representation", default="graph-based", choices=["graph-based"],
                      help="input representation (published flag; CMD uses graph-based)")
    data.add_argument("--data-dir", default=None,
                      help="processed folder (default: ./data/<dataset root>/<xsub|xview|xsetup>)")
    data.add_argument("-j", "--workers", default=8, type=int, help="data-loading workers")
    data.add_argument("-b", "--batch-size", default=None, type=int, help="batch size (preset)")
    model = parser.add_argument_group("model")
    model.add_argument("--pretrained", default="",
                       help="pretraining checkpoint (released checkpoint_0450.pth.tar or ours); "
                            "none: randomly initialised encoders (a baseline)")
    model.add_argument("--view", default="joint", choices=VIEWS,
                       help="encoder stream; 'all' evaluates joint, motion, bone and their fusion")
    model.add_argument("--hidden-size", default=None, type=int,
                       help="GRU hidden size (default: the checkpoint's; the pretraining preset's without one)")
    model.add_argument("--num-layers", default=None, type=int,
                       help="GRU layers (default: the checkpoint's; the pretraining preset's without one)")
    run = parser.add_argument_group("run")
    run.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    run.add_argument("--seed", default=42, type=int, help="seed of initialisation, crops, order and subset")
    run.add_argument("--checkpoint-path", "--out", dest="checkpoint_path", default=None,
                     help="output folder of this run (default: runs/<stage>/<dataset>_<protocol>_<view>...)")
    run.add_argument("--results", default=DEFAULT_RESULTS, help="JSON-lines file the results are appended to")
    run.add_argument("--pretrain-dataset", default=None, choices=sorted(NUM_CLASSES),
                     help="dataset the checkpoint was pretrained on, recorded with the results "
                          "(default: from our checkpoints' options, else unknown)")
    return parser


def classification_parser():
    """Parser of action_classification.py (linear evaluation, semi-supervised, transfer)."""
    parser = _common_parser("Linear evaluation, semi-supervised fine-tuning and transfer of CMD encoders")
    train = parser.add_argument_group("training")
    train.add_argument("--lr", default=None, type=float, help="base learning rate (preset)")
    train.add_argument("--epochs", default=None, type=int, help="epochs (preset)")
    train.add_argument("--schedule", default=None, type=int, nargs="*", help="epochs where lr x0.1 (preset)")
    train.add_argument("--momentum", default=None, type=float, help="SGD momentum (preset)")
    train.add_argument("--wd", "--weight-decay", dest="weight_decay", default=None, type=float,
                       help="weight decay (preset)")
    train.add_argument("--eval-freq", default=None, type=int, help="validate every this many epochs (preset)")
    train.add_argument("--resume", default="",
                       help="continue from this run's checkpoint.pth.tar (the same views, folder and checkpoint)")
    train.add_argument("--data-ratio", default=None, type=float,
                       help="labelled fraction of the training set (required for *_semi protocols; else 1)")
    train.add_argument("--finetune", default=None, action="store_true",
                       help="fine-tune the whole network in train mode instead of a linear probe (preset)")
    train.add_argument("--transfer", action="store_true",
                       help="transfer protocol: fine-tune on PKU-MMD II (pku_v2) with all labels")
    return parser


def knn_parser():
    """Parser of knn_eval.py."""
    parser = _common_parser("kNN evaluation of frozen CMD encoder features")
    knn = parser.add_argument_group("kNN")
    knn.add_argument("--knn-neighbours", default=None, type=int, help="neighbours k (preset)")
    knn.add_argument("--train-crop", default="centre", choices=["centre", "random"],
                     help="training features from the 0.95 centre crop, as the published kNN does for both "
                          "sides, or from the training feeder's random crop")
    knn.add_argument("--chunk-size", default=1024, type=int, help="queries per similarity block")
    knn.add_argument("--save-features", default=None, help="write train/val features, labels and names to this .npz")
    return parser


def classification_stage(args):
    """'linear', 'semi' or 'transfer' for parsed classification arguments (see module docstring)."""
    semi = args.protocol in SEMI_PROTOCOLS
    if args.transfer:
        if semi or args.finetune_dataset != "pku_v2":
            raise ValueError("--transfer fine-tunes on --finetune-dataset pku_v2 with a plain protocol "
                             f"(cross_subject); found {args.finetune_dataset} {args.protocol}")
        return "transfer"
    if args.finetune and args.finetune_dataset == "pku_v2" and not semi:
        return "transfer"
    if semi or args.finetune:
        return "semi"
    return "linear"


def _encoder_defaults(args):
    """Without a checkpoint (a random-encoder baseline) the encoder has the published sizes unless given;
    with one, the sizes are read from it."""
    if not args.pretrained:
        fill_from_preset(args, ENCODER)


def _default_out(args, stage, extra=""):
    return os.path.join("runs", stage, f"{args.finetune_dataset}_{args.protocol}_{args.view}{extra}_seed{args.seed}")


def resolve_classification(args):
    """Fill unset options of `args` from the stage's preset; adds stage and num_class. ValueError on
    a combination that makes no run."""
    args.stage = classification_stage(args)
    settings = preset(args.stage, args.finetune_dataset, args.protocol)
    if args.protocol in SEMI_PROTOCOLS and args.data_ratio is None:
        raise ValueError(f"--protocol {args.protocol} needs --data-ratio (e.g. 0.01, 0.05, 0.1, 0.2)")
    if args.data_ratio is None:
        args.data_ratio = 1.0
    if not 0.0 < args.data_ratio <= 1.0:
        raise ValueError(f"--data-ratio must be in (0, 1], found {args.data_ratio}")
    fill_from_preset(args, settings)
    _encoder_defaults(args)
    args.num_class = settings["num_class"]
    if args.checkpoint_path is None:
        extra = f"_ratio{args.data_ratio:g}" if args.data_ratio < 1.0 else ""
        args.checkpoint_path = _default_out(args, args.stage, extra)
    return args


def resolve_knn(args):
    """Fill unset options of kNN `args` from the 'knn' preset; adds stage and num_class."""
    if args.protocol in SEMI_PROTOCOLS:
        raise ValueError(f"kNN evaluation uses the full training set; use a plain protocol, not {args.protocol}")
    args.stage = "knn"
    settings = preset("knn", args.finetune_dataset, args.protocol)
    fill_from_preset(args, settings)
    _encoder_defaults(args)
    args.num_class = settings["num_class"]
    if args.checkpoint_path is None:
        args.checkpoint_path = _default_out(args, "knn")
    return args


def _parse(parser, resolve, rules, argv):
    args = parser.parse_args(argv)
    try:
        resolve(args)
    except ValueError as exc:
        parser.error(str(exc))
    check_rules(parser, args, rules)
    return parser, args


def parse_classification(argv=None):
    """(parser, resolved args) of action_classification.py; usage errors exit with status 2."""
    return _parse(classification_parser(), resolve_classification, CLASSIFICATION_RULES, argv)


def parse_knn(argv=None):
    """(parser, resolved args) of knn_eval.py; usage errors exit with status 2."""
    return _parse(knn_parser(), resolve_knn, KNN_RULES, argv)
