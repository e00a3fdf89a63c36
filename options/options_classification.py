"""Command lines of the evaluation scripts, resolved into one EvalSettings record.

An evaluation reads its settings in three steps, each a call of the entry point: `parse_*` (argv; flag
rules), `open_data` + `choose_preset` (the processed folder and the preset it implies; a random
encoder's sizes and views from the preset), then, once the model is built, `eval_settings` (the record,
with the encoder's sizes and the views' length from the model's info: the checkpoint's, or a random
encoder's). Every problem with the
command line is a usage error (exit status 2).

Stage of an `action_classification.py` run:
- 'linear' (frozen encoders) unless fine-tuning is asked for;
- 'semi' for the protocols `cross_subject_semi` / `cross_view_semi` (which need `--data-ratio`),
  or with `--finetune` on NTU;
- 'transfer' with `--transfer`, or a fine-tuning on PKU-MMD II (`--finetune-dataset pku_v2`, or a folder
  recorded as it) of its cross-subject benchmark with all labels (`settle_stage`, once the folder is
  open): an encoder pretrained elsewhere (NTU-60/120) fine-tuned there; `--transfer` on anything else
  is a usage error.
  `--pretrain-dataset` names the source for the results table (ours record it in the checkpoint).
The linear probe is the published SGD one (`--probe sgd`) under the published presets, and a logistic
regression fitted to convergence (`--probe logistic`, engine/probe.py) under the small-data preset.
"""

import hashlib
import os
import re
from dataclasses import replace

from dataset.catalog import DATASETS, PROTOCOLS, SEMI_PROTOCOLS, base_protocol
from dataset.files import CLAIM_FILE, folder_settings, is_run_file, run_family
from dataset.layouts import read_folder_record
from dataset.processed import fingerprint, load_splits
from moco.model import VIEWS
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
    fill,
    folder_facts,
    given_flags,
    in_unit,
    make_parser,
    positive,
    print_import_warnings,
    resolve_preset,
    resolve_protocol,
)
from options.presets import DEFAULT_DATASET, PRESET_NAMES, SMALL
from options.presets import preset as preset_values
from options.settings import EncoderSettings, EvalRunSettings, EvalSettings, KnnSettings, ProbeSettings, flag

PROBES = ("sgd", "logistic")
DEFAULT_RESULTS = os.path.join("results", "results.jsonl")

COMMON_RULES = {
    "batch_size": at_least(1),
    "workers": at_least(0),
    "hidden_size": at_least(1),
    "num_layers": at_least(1),
    "view_frames": VIEW_FRAMES,
    "seed": SEED,
}
CLASSIFICATION_RULES = dict(
    COMMON_RULES,
    epochs=at_least(1),
    schedule=at_least(0),
    eval_freq=at_least(1),
    lr=positive(),
    momentum=in_unit(closed_top=False),
    weight_decay=at_least(0),
)
KNN_RULES = dict(COMMON_RULES, knn_neighbours=at_least(1), chunk_size=at_least(1))
# The SGD probe's training settings: a logistic probe uses none of them (given: a usage error; recorded: None).
SGD_ONLY = ("lr", "momentum", "weight_decay", "epochs", "schedule", "eval_freq")
# Published flags accepted and ignored (a warning names those given): the evaluations' --start-epoch and
# --print-freq, and the training flags the published kNN script passes.
IGNORED = ("start_epoch", "print_freq")
IGNORED_KNN = ("lr", "momentum", "wd", "epochs", "schedule", "resume")
# Settings a resumed linear evaluation may change (its schedule's length, where it runs and reports).
RESUME_MAY_CHANGE = (
    "epochs",
    "lr",
    "schedule",
    "eval_freq",
    "resume",
    "fresh",
    "checkpoint_path",
    "results",
    "workers",
    "device",
    "pretrain_dataset",
    "data_dir",
    "pretrained",
)


def _common_parser(description, kind):
    parser = make_parser(description + ". Flags marked (preset) default to the preset the data folder implies.")
    knn = kind == "kNN evaluation"
    data = parser.add_argument_group("data")
    data.add_argument(
        "--finetune-dataset",
        default=None,
        choices=sorted(DATASETS),
        help="published dataset whose default folder and preset to use (default ntu60; a folder "
        "whose layout.json names its dataset chooses its own preset)",
    )
    data.add_argument(
        "--protocol",
        default=None,
        choices=PROTOCOLS,
        help=PROTOCOL_HELP
        + (
            "; not the *_semi ones: kNN uses the whole training set"
            if knn
            else "; the *_semi ones fine-tune on a labelled fraction, see --data-ratio"
        ),
    )
    data.add_argument(
        "--finetune-skeleton-representation",
        default="graph-based",
        choices=["graph-based"],
        help="input representation (published flag; CMD uses graph-based)",
    )
    data.add_argument(
        "--data-dir",
        default=None,
        type=os.path.expanduser,
        help="processed folder (default: ./data/<dataset root>/<xsub|xview|xsetup>)",
    )
    data.add_argument(
        "--preset",
        default=None,
        choices=PRESET_NAMES,
        help="use this preset whatever the folder's record says (default: chosen from the folder)",
    )
    data.add_argument(
        "-j",
        "--workers",
        default=DEFAULT_WORKERS,
        type=int,
        help=WORKERS_HELP,
    )
    data.add_argument("-b", "--batch-size", default=None, type=int, help="batch size (preset)")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--pretrained",
        default=None,  # "" after parsing; given empty (an unset shell variable), a usage error
        type=os.path.expanduser,
        help="pretraining checkpoint (released checkpoint_0450.pth.tar or ours); "
        "none: randomly initialised encoders (a baseline)",
    )
    model.add_argument(
        "--view",
        default="joint",
        choices=VIEWS,
        help="encoder stream; 'all': kNN on the mean of the three encoders' features"
        if knn
        else "encoder stream; 'all' evaluates joint, motion, bone and their fusion",
    )
    model.add_argument(
        "--hidden-size",
        default=None,
        type=int,
        help="GRU hidden size (default: the checkpoint's; the preset's without one)",
    )
    model.add_argument(
        "--num-layers", default=None, type=int, help="GRU layers (default: the checkpoint's; the preset's without one)"
    )
    model.add_argument(
        "--view-frames",
        default=None,
        type=int,
        help="frames of a random encoder's crops, as its pretraining run would pass them (default: what a "
        "pretraining on this folder gets); a checkpoint records its own",
    )
    run = parser.add_argument_group("run")
    run.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    run.add_argument(
        "--seed",
        default=42 if knn else None,  # kNN keeps the published default 42
        type=int,
        help="seed of a random encoder's weights and, with --train-crop random, of the training crops"
        if knn
        else "seed of initialisation, crops, order and subset (default: drawn afresh and recorded, as the "
        "published evaluation draws one each run, so the published semi-supervised script's five repeats "
        "fine-tune on five subsets)",
    )
    run.add_argument(
        "--checkpoint-path",
        "--out",
        dest="checkpoint_path",
        default=None,
        type=os.path.expanduser,
        help="output folder of this run (default: the --resume checkpoint's folder, else "
        "runs/<stage>/<dataset>_<protocol>_<view>...; a dataset not published is tagged by its folder: mine-1a2b3c)",
    )
    run.add_argument(
        "--results", default=DEFAULT_RESULTS, type=os.path.expanduser, help="JSON-lines file results are appended to"
    )
    run.add_argument(
        "--pretrain-dataset",
        default=None,
        help="dataset the checkpoint was pretrained on, recorded with the results "
        "(default: from our checkpoints' settings, else unknown)",
    )
    add_run_folder_flags(run, kind)
    published = parser.add_argument_group(
        "the published parsers' other flags (accepted so published command lines run)"
    )
    published.add_argument(
        "--pretrain-skeleton-representation", default=None, help="no effect (as published: any value is accepted)"
    )
    published.add_argument("--gpu", default=None, type=int, help="GPU index: the same as --device cuda:GPU")
    published.add_argument(
        "--start-epoch",
        default=None,
        type=int,
        help="ignored (published flag)" if knn else "ignored: a resume continues at its epoch",
    )
    published.add_argument(
        "-p",
        "--print-freq",
        default=None,
        type=int,
        help="ignored (published flag)" if knn else "ignored: progress is shown per epoch",
    )
    return parser


def classification_parser():
    """Parser of action_classification.py (linear evaluation, semi-supervised, transfer)."""
    parser = _common_parser(
        "Linear evaluation, semi-supervised fine-tuning and transfer of CMD encoders", "classification run"
    )
    train = parser.add_argument_group("training")
    train.add_argument(
        "--probe",
        default=None,
        choices=PROBES,
        help="linear probe: the published SGD one, or a logistic regression on frozen features "
        "fitted to convergence with its regularisation chosen by cross-validation (preset)",
    )
    train.add_argument("--lr", default=None, type=float, help="base learning rate (preset)")
    train.add_argument("--epochs", default=None, type=int, help="epochs (preset)")
    train.add_argument("--schedule", default=None, type=int, nargs="*", help="epochs where lr x0.1 (preset)")
    train.add_argument("--momentum", default=None, type=float, help="SGD momentum (preset)")
    train.add_argument(
        "--wd", "--weight-decay", dest="weight_decay", default=None, type=float, help="weight decay (preset)"
    )
    train.add_argument("--eval-freq", default=None, type=int, help="validate every this many epochs (preset)")
    train.add_argument(
        "--resume",
        default="",
        type=os.path.expanduser,
        help="continue from this run's checkpoint.pth.tar (the same views, folder and checkpoint)",
    )
    train.add_argument(
        "--data-ratio",
        default=None,
        type=float,
        help="labelled fraction of the training set: required for *_semi protocols (fine-tuning); on the "
        "others the linear probe is trained on that fraction (default 1)",
    )
    train.add_argument(
        "--finetune",
        default=None,
        action="store_true",
        help="fine-tune the whole network in train mode instead of a linear probe (preset)",
    )
    train.add_argument(
        "--transfer", action="store_true", help="transfer protocol: fine-tune on PKU-MMD II (pku_v2) with all labels"
    )
    return parser


def knn_parser():
    """Parser of knn_eval.py."""
    parser = _common_parser("kNN evaluation of frozen CMD encoder features", "kNN evaluation")
    knn = parser.add_argument_group("kNN")
    knn.add_argument("--knn-neighbours", default=None, type=int, help="neighbours k (preset)")
    knn.add_argument(
        "--train-crop",
        default="centre",
        choices=["centre", "random"],
        help="training features from the 0.95 centre crop, as the published kNN does for both "
        "sides, or from the training feeder's random crop",
    )
    knn.add_argument("--chunk-size", default=1024, type=int, help="queries per similarity block")
    ignored = parser.add_argument_group("training flags of the published kNN script (ignored: kNN trains nothing)")
    for flags in (["--lr"], ["--momentum"], ["--wd", "--weight-decay"]):
        ignored.add_argument(*flags, dest=flags[0][2:], default=None, type=float)
    ignored.add_argument("--epochs", default=None, type=int)
    ignored.add_argument("--schedule", default=None, type=int, nargs="*")
    ignored.add_argument("--resume", default=None)
    knn.add_argument(
        "--save-features",
        default=None,
        type=os.path.expanduser,
        help="write train/val features, labels and names to this .npz (an existing file is replaced)",
    )
    return parser


def classification_stage(args):
    """'linear', 'semi', 'transfer' or 'knn' for parsed arguments (see the module docstring)."""
    if not hasattr(args, "finetune"):
        return "knn"
    semi = args.protocol in SEMI_PROTOCOLS
    if args.transfer:
        if args.finetune_dataset not in (None, "pku_v2"):
            raise ValueError(f"--transfer fine-tunes on --finetune-dataset pku_v2; found {args.finetune_dataset}")
        args.finetune_dataset = "pku_v2"
        return "transfer"
    if args.finetune_dataset == "pku_v2" and (args.finetune and not semi or semi and args.data_ratio == 1.0):
        return "transfer"  # the published transfer script: the semi-supervised one, pku_v2, all labels
    if semi or args.finetune:
        return "semi"
    return "linear"


def _parse(parser, rules, argv):
    args = parser.parse_args(argv)
    if args.pretrained == "":
        parser.error("--pretrained is empty; name a checkpoint, or leave the flag out for a random encoder")
    args.pretrained = args.pretrained or ""
    args.given = given_flags(args)
    try:
        args.stage = classification_stage(args)
    except ValueError as exc:
        parser.error(str(exc))
    if args.stage == "knn" and args.protocol in SEMI_PROTOCOLS:
        parser.error(f"kNN evaluation uses the full training set; use a plain protocol, not {args.protocol}")
    if getattr(args, "data_ratio", None) is not None and not 0.0 < args.data_ratio <= 1.0:
        parser.error(f"--data-ratio must be in (0, 1], found {args.data_ratio}")
    if args.protocol in SEMI_PROTOCOLS and args.data_ratio is None:
        ratios = "1.0: a transfer trains on all labels" if args.transfer else "e.g. 0.01, 0.05, 0.1, 0.2"
        parser.error(f"--protocol {args.protocol} needs --data-ratio ({ratios})")
    check_rules(parser, vars(args), rules)
    names = IGNORED + (IGNORED_KNN if args.stage == "knn" else ())
    ignored = [f"--{name.replace('_', '-')}" for name in names if getattr(args, name, None) is not None]
    if ignored:
        print(f"warning: {', '.join(ignored)} ignored here (published flags; see --help)", flush=True)
    if args.gpu is not None and args.device is None:
        args.device = f"cuda:{args.gpu}"
    args.device = check_device(parser, args.device)

    for name in ("checkpoint_path", "results", "save_features"):
        if getattr(args, name, None) is not None:  # given, or a default
            check_output_path(parser, name, getattr(args, name))
    return parser, args


def parse_classification(argv=None):
    """(parser, args) of action_classification.py; flag problems are usage errors (exit status 2)."""
    return _parse(classification_parser(), CLASSIFICATION_RULES, argv)


def parse_knn(argv=None):
    """(parser, args) of knn_eval.py; flag problems are usage errors (exit status 2)."""
    return _parse(knn_parser(), KNN_RULES, argv)


def open_data(parser, args):
    """(train, val) Splits of the evaluation's processed folder (ProcessedDataError when bad)."""
    folder = data_folder(parser, args.finetune_dataset, args.protocol, args.data_dir)
    recorded = read_folder_record(folder)[1]  # without a record: the published dataset's classes
    num_class = None if recorded else DATASETS[args.finetune_dataset or DEFAULT_DATASET].num_class
    splits = tuple(replace(split, num_class=split.num_class or num_class) for split in load_splits(folder, num_class))
    print_import_warnings(splits[0])
    args.protocol = resolve_protocol(parser, args.protocol, splits[0])
    return splits


def settle_stage(parser, args, train):
    """A fine-tuning's stage once its folder is open: on PKU-MMD II (the folder's record, or
    --finetune-dataset), its cross-subject benchmark, with all labels, it is the paper's transfer, whichever
    flags said so; anything else is a semi-supervised fine-tuning, and --transfer there (or on a folder of
    another dataset) a usage error."""
    if args.stage not in ("semi", "transfer"):
        return
    if args.transfer and train.dataset not in (None, "pku_v2"):
        parser.error(
            f"--transfer fine-tunes on PKU-MMD II (pku_v2), the paper's transfer protocol, but {train.folder} holds "
            f"{train.dataset!r}; to fine-tune the whole network on it, pass --finetune instead"
        )
    ratio = 1.0 if args.data_ratio is None else args.data_ratio
    benchmark = base_protocol(args.protocol)
    paper = (args.finetune_dataset or train.dataset) == "pku_v2" and benchmark == "cross_subject" and ratio == 1.0
    if args.transfer and not paper:
        parser.error(
            "--transfer fine-tunes on PKU-MMD II's cross-subject benchmark with all its labels, the paper's transfer "
            f"protocol; this is {benchmark}"
            + (f" with --data-ratio {ratio:g}" if ratio < 1.0 else "")
            + ": to fine-tune on it, pass --finetune instead"
        )
    args.stage = "transfer" if paper else "semi"


def choose_preset(parser, args, train):
    """Choose the preset for the folder of `train` and fill unset flags from it. Returns its name and,
    without --pretrained, the views of the random encoder (None with a checkpoint, which records its
    own): a random encoder gets the sizes and views (unset flags) a pretraining on this folder would use,
    the shortest crop following --view-frames as a pretraining's does."""
    settle_stage(parser, args, train)
    name = resolve_preset(parser, args, args.stage, train, args.finetune_dataset, "--finetune-dataset")
    if args.pretrained:
        if args.view_frames is not None:
            parser.error("--view-frames is for a random encoder; a checkpoint records the views it was trained on")
        return name, None
    built = preset_values("pretrain", name, folder_facts(train), {"view_frames": args.view_frames})
    fill(args, {key: built[key] for key in ("hidden_size", "num_layers")})
    return name, {"view_frames": args.view_frames or built["view_frames"], "min_crop_frames": built["min_crop_frames"]}


def encoder_name(pretrained):
    """The encoder in a default run folder's name: 'random', or the checkpoint's folder and file name and a
    tag of its path ('mine-checkpoint_last-1a2b3c' for checkpoints/mine/checkpoint_last.pth.tar), so that
    evaluations of two checkpoints do not meet in one folder."""
    if not pretrained:
        return "random"
    path = os.path.abspath(pretrained)
    stem = re.sub(r"(\.pth\.tar|\.pth|\.pt|\.tar)$", "", os.path.basename(path))
    tag = hashlib.sha1(path.encode()).hexdigest()[:6]  # two checkpoints of one name in two places differ
    return f"{os.path.basename(os.path.dirname(path))}-{stem}-{tag}"


def _setup_name(args, preset, train):
    """What sets an evaluation apart from its preset's, for its default run folder's name: another probe,
    another k or training crop for kNN (so that two such runs do not meet in one folder)."""
    if args.stage == "knn":
        return [f"k{args.knn_neighbours}"] * (args.knn_neighbours != 1) + ["randomcrop"] * (args.train_crop == "random")
    usual = preset_values("linear", preset, folder_facts(train)).get("probe") if args.stage == "linear" else None
    return [args.probe] if usual and not args.finetune and args.probe != usual else []


def _whose_run_file(path, out):
    """'this run' when `path`, as given or where its link points, has the name of a file a run writes (its
    claim and temporaries are hidden ones) in this run's folder `out`; "a folder holding another run or
    processed data" in a folder that holds a run or a conversion's output (a claim, or a run's settings.json),
    whose files would replace it; else None."""
    for where in (os.path.abspath(path), os.path.realpath(path)):
        name, folder = os.path.basename(where), os.path.dirname(where)
        if not (is_run_file(name) or name.startswith(".")):
            continue
        if os.path.realpath(folder) == os.path.realpath(out):
            return "this run"
        runs = ("pretraining", "evaluation")  # what the folder's settings.json records (not a converter's data)
        if os.path.lexists(os.path.join(folder, CLAIM_FILE)) or run_family(folder_settings(folder)) in runs:
            return "a folder holding another run or processed data"
    return None


def eval_settings(parser, args, preset, train, info):
    """The EvalSettings of the run, once the checkpoint (`info`, engine.pretrained) is loaded."""
    dataset = args.finetune_dataset or DEFAULT_DATASET
    num_class = train.num_class  # open_data gave a folder without a record its published dataset's count
    recorded = info.get("pretrain_dataset")  # what our checkpoints record; released ones record nothing
    if args.pretrain_dataset and recorded and args.pretrain_dataset != recorded:
        parser.error(
            f"--pretrain-dataset {args.pretrain_dataset}: the checkpoint {args.pretrained} records that it was "
            f"pretrained on {recorded}"
        )
    pretrained_on = recorded or args.pretrain_dataset
    if args.stage == "transfer" and (pretrained_on == "pku_v2" or not args.pretrained):
        if args.transfer:
            parser.error(
                "--transfer fine-tunes an encoder pretrained on NTU: "
                + ("this one was pretrained on PKU-MMD II itself" if args.pretrained else "pass --pretrained")
                + "; to fine-tune it on PKU-MMD II, pass --finetune instead"
            )
        args.stage = "semi"  # fine-tuning with all labels, from where it was pretrained or from scratch: no transfer
    if args.stage == "knn" and args.knn_neighbours > len(train):
        parser.error(
            f"--knn-neighbours {args.knn_neighbours} is larger than the training set of {train.folder} "
            f"({len(train)} samples)"
        )
    if args.checkpoint_path:
        out = args.checkpoint_path
    elif args.resume and args.stage != "knn":  # the run goes on where it is
        out = os.path.dirname(os.path.abspath(args.resume))
    else:
        extra = f"_ratio{args.data_ratio:g}" if (getattr(args, "data_ratio", None) or 1.0) < 1.0 else ""
        extra += "".join(f"_{part}" for part in [encoder_name(args.pretrained), *_setup_name(args, preset, train)])
        name = f"{data_name(train, dataset)}_{args.protocol}_{args.view}{extra}_seed{args.seed}"
        out = os.path.join("runs", args.stage, name)
    features = getattr(args, "save_features", None)
    if features and os.path.realpath(features) == os.path.realpath(args.results):
        parser.error(f"--save-features {features} names a file this run writes itself; choose another path")
    for name, path in (("results", args.results), ("save_features", features)):
        whose = path and _whose_run_file(path, out)
        if whose:
            written = "this run writes itself" if whose == "this run" else f"of {whose}"
            parser.error(f"{flag(name)} {path} names a file {written}; choose another path")
    common = dict(
        preset=preset,
        stage=args.stage,
        data=data_settings(train, dataset, args.protocol, num_class),
        encoder=EncoderSettings(hidden_size=info["hidden_size"], num_layers=info["num_layers"]),
        view_frames=int(info["view_frames"]),
        min_crop_frames=int(info["min_crop_frames"]),
        run=EvalRunSettings(
            seed=args.seed,
            device=args.device,
            workers=args.workers,
            checkpoint_path=out,
            results=args.results,
            resume=(args.resume or "") if args.stage != "knn" else "",  # kNN's --resume is an ignored flag
            fresh=args.fresh,
            view=args.view,
            pretrained=args.pretrained,
            pretrain_dataset=pretrained_on,
            pretrained_fingerprint=info.get("checkpoint_fingerprint") or "",  # of the bytes loaded
            val_fingerprint=fingerprint(train.folder, "val"),
            pretrain_cmd_weight=info.get("cmd_weight"),
            pretrain_fingerprint=info.get("pretrain_fingerprint") or "",
        ),
    )
    evaluated_on = train.dataset or dataset
    data, learnt, folder = common["data"], info.get("pretrain_fingerprint"), info.get("pretrain_data_dir")
    # the same name, another training part: its records get rows of their own in tools.report
    other_data = pretrained_on == evaluated_on and learnt and learnt != data.fingerprint
    rewritten = other_data and folder and os.path.realpath(folder) == os.path.realpath(data.data_dir)
    report_says = f"; the results say so ('pretrained on other {evaluated_on} data' in tools.report)"
    if pretrained_on and pretrained_on != evaluated_on and args.stage != "transfer":
        print(
            f"note: the encoder was pretrained on {pretrained_on} and is evaluated on {evaluated_on}; the results "
            f"say so ('pretrained on {pretrained_on}' in tools.report)",
            flush=True,
        )
    elif pretrained_on == evaluated_on and info.get("pretrain_protocol") not in (None, base_protocol(args.protocol)):
        print(
            f"note: the encoder was pretrained on the training part of the {info['pretrain_protocol']} benchmark of "
            f"{evaluated_on}, which may hold the recordings this {args.protocol} evaluation validates on"
            + (report_says if other_data and not rewritten else ""),
            flush=True,
        )
    elif other_data and not rewritten:
        print(
            f"note: the encoder was pretrained on {folder or 'a folder'} of {evaluated_on}, whose training part is "
            f"not {data.data_dir}'s (another fingerprint){report_says}",
            flush=True,
        )
    if rewritten:  # whatever was noted above
        print(
            f"warning: {args.pretrained} was pretrained on {data.data_dir} when its training part held other data "
            "(another fingerprint): the folder was written again since, so this evaluation is not on the data the "
            f"encoder learnt from{report_says}",
            flush=True,
        )
    trained = info.get("pretrain_preset")
    if trained and (trained == SMALL) != (preset == SMALL):  # a folder of NTU's, say, pretrained with --preset small
        taken = "the one --preset names" if args.preset else "its folder's"
        print(
            f"note: {args.pretrained} was pretrained with the {trained} preset; this evaluation takes {taken}, "
            f"{preset} ({'the logistic probe' if preset == SMALL else 'the published SGD probe'}): --preset {trained} "
            "evaluates it as that preset does",
            flush=True,
        )
    if args.stage == "knn":
        return EvalSettings(
            **common,
            knn=KnnSettings(
                knn_neighbours=args.knn_neighbours,
                train_crop=args.train_crop,
                chunk_size=args.chunk_size,
                batch_size=args.batch_size,
                save_features=args.save_features,
            ),
        )
    if args.finetune and args.probe == "logistic":
        parser.error("--probe logistic is a linear probe on frozen features; fine-tuning trains with SGD")
    if args.resume and args.probe == "logistic":
        parser.error(
            "--resume continues an SGD run (the SGD probe, or --finetune), but this command's probe is the logistic "
            "regression, fitted in one go: give the run's own flags (--probe sgd, or --finetune) to continue it"
        )
    sgd = {name: getattr(args, name) for name in SGD_ONLY}
    if args.probe == "logistic":
        given = [
            {"weight_decay": "--wd"}.get(name, f"--{name.replace('_', '-')}") for name in SGD_ONLY if name in args.given
        ]
        if given:
            parser.error(
                f"{', '.join(given)} set the SGD probe's training; the logistic probe is fitted to convergence "
                "and uses none of them (pass --probe sgd to train the published probe)"
            )
        sgd = dict.fromkeys(SGD_ONLY)  # recorded as unused
    probe = ProbeSettings(
        probe="sgd" if args.finetune else args.probe,
        finetune=bool(args.finetune),
        data_ratio=args.data_ratio or 1.0,
        batch_size=args.batch_size,
        **dict(sgd, schedule=None if sgd["schedule"] is None else tuple(sgd["schedule"])),
    )
    return EvalSettings(**common, probe=probe)
