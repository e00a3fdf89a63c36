"""Action classification on top of CMD encoders (docs/published-behaviour.md §4, §6).

Linear evaluation (default): encoders frozen in eval mode, only the classifier trained, checked
unchanged afterwards. Semi-supervised (`--protocol cross_subject_semi|cross_view_semi --data-ratio
R`) and transfer (`--finetune-dataset pku_v2 --finetune`, or `--transfer`) fine-tune the whole
network. `--view all` trains the joint, motion and bone classifiers and also reports their fusion
(summed softmax scores, 3s-CMD). `python action_classification.py --help` lists every flag.

    python action_classification.py --finetune-dataset ntu60 --protocol cross_subject \
        --pretrained checkpoints/ntu60_xsub/checkpoint_0450.pth.tar --view all
"""
import os
import sys

from dataset.layouts import LayoutError
from dataset.processed import ProcessedDataError
from engine.checkpoint import CheckpointError
from engine.evaluate import make_loader, save_subset, setup_downstream, subset_path, train_classifier
from engine.pretrained import ENCODERS
from engine.results import append_result, make_record
from engine.runtime import NoSpaceError, make_writer, save_settings
from feeder.feeder_downstream import DownstreamFeeder, semi_subset
from options.options_classification import parse_classification


def main(argv=None):
    parser, args = parse_classification(argv)
    try:
        device, folder, train_split, val_split, model, info = setup_downstream(args)
    except (ProcessedDataError, LayoutError, CheckpointError) as exc:
        parser.exit(2, f"error: {exc}\n")
    out_dir = args.checkpoint_path
    os.makedirs(out_dir, exist_ok=True)
    indices = None
    if args.data_ratio < 1.0:
        indices = semi_subset(len(train_split), args.data_ratio, args.seed)
        save_subset(subset_path(out_dir), indices, train_split.names, train_split.labels,
                    args.data_ratio, args.seed, folder)
    train_set = DownstreamFeeder(train_split, train=True, indices=indices, seed=args.seed)
    val_set = DownstreamFeeder(val_split, train=False)

    settings = save_settings(dict(vars(args), data_folder=folder, train_samples=len(train_set),
                                  val_samples=len(val_set), device=str(device), checkpoint_info=info), out_dir)

    views = list(ENCODERS) if args.view == "all" else [args.view]
    train_loader = make_loader(train_set, args.batch_size, args.workers, True, args.seed, device)
    val_loader = make_loader(val_set, args.batch_size, args.workers, False, args.seed, device)
    writer = make_writer(out_dir)
    try:
        best = train_classifier(model, train_loader, val_loader, views, vars(args), device, out_dir, writer)
    except (CheckpointError, NoSpaceError) as exc:
        parser.exit(1, f"error: {exc}\n")
    finally:
        writer.close()

    for view, values in best.items():
        record = make_record(args.stage, args.dataset_name, args.protocol, view, "top1", values["top1"],
                             args.pretrained or None, settings, top5=values["top5"], epoch=values["epoch"],
                             seed=args.seed, data_ratio=args.data_ratio, pretrain_dataset=args.pretrain_dataset,
                             run=out_dir)
        append_result(args.results, record)
        print(f"{args.stage} {args.dataset_name} {args.protocol} {view}: best top-1 {values['top1']:.2f} "
              f"top-5 {values['top5']:.2f} (epoch {values['epoch']})")
    if best:
        print(f"{len(best)} results appended to {args.results}; run folder {out_dir}")
    else:
        print(f"no validation ran, nothing appended to {args.results}; run folder {out_dir}")
    return best


if __name__ == "__main__":
    main(sys.argv[1:])
