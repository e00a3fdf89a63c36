#!/usr/bin/env bash
# CMD on real recordings with the small-data defaults, the same for every data set, on a CPU.
#
#   bash scripts/real_data_benchmark.sh nw_ucla=../shared/data/nw_ucla_all_sqe.tar.gz \
#                                       msr_action3d=../shared/data/msr_action3d_skeleton3D.tar.gz
#   bash scripts/real_data_benchmark.sh mine=data/my_processed_folder       # a processed folder of an importer
#   DRY_RUN=1 bash scripts/real_data_benchmark.sh nw_ucla=all_sqe/          # print the commands only
#
# Each argument is NAME=SOURCE. SOURCE is NW-UCLA's all_sqe JSON files (NAME nw_ucla; cross-view:
# views 1-2 train, view 3 evaluates), MSR-Action3D's skeleton3D text files (NAME msr_action3d;
# cross-subject: odd subjects train, even ones evaluate) — a folder or an archive (.tar.gz, .tgz,
# .zip) holding it — or, for any other data set, a processed folder (data_gen/ importers).
#
# For every data set and every seed in SEEDS it pretrains CMD and the same run with --cmd-weight 0
# (three independent MoCo models) with nothing but --data-dir, --seed and an output folder: every
# other setting is the small-data preset the folder implies (docs/small-data.md). Each encoder, and a
# randomly initialised one of the same size, is evaluated by kNN on the mean of the three encoders'
# features and by the linear probe of all three streams (the logistic regression of the preset; joint,
# motion, bone and their fusion). Beside them, no-learning baselines on the normalised coordinates:
# logistic regression and 1-NN (scripts/coordinate_baseline.py). scripts/real_data_report.py prints
# one table (mean ± std over seeds, minutes per data set) and writes results/real_data_benchmark.json
# and .md.
#
# A relative SOURCE is relative to the folder the script is called from; WORK_DIR and RESULTS_DIR, like
# every script's outputs, to the repository root.
# Environment: WORK_DIR (./runs/real_data_benchmark; each data set's subfolder emptied first; no SOURCE
# may lie inside it), RESULTS_DIR (./results),
# SEEDS ("0 1 2"), MAX_JOBS (2 runs side by side, one CPU thread each), DEVICE, PYTHON.
MAX_JOBS="${MAX_JOBS:-2}"
source "$(dirname "$0")/common.sh"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

if [ $# -eq 0 ]; then
    echo "usage: bash scripts/real_data_benchmark.sh NAME=SOURCE ... (see the top of this script)" >&2
    exit 2
fi
WORK_DIR="${WORK_DIR:-./runs/real_data_benchmark}"
RESULTS_DIR="${RESULTS_DIR:-./results}"
read -r -a seeds <<< "${SEEDS-0 1 2}"
check_seeds "${seeds[@]}"
# raw_format NAME: sets `pattern` (the raw files' names) and `importer` of a data set read from raw files
# (nw_ucla, msr_action3d); both empty for any other, whose source is a processed folder.
raw_format() {
    case "$1" in
        nw_ucla) pattern='a*_s*_e*_v*.json' importer=data_gen.ucla_gendata ;;
        msr_action3d) pattern='a*_s*_e*_skeleton3D.txt' importer=data_gen.msr_gendata ;;
        *) pattern='' importer='' ;;
    esac
}

# raw_folder DIR PATTERN: the first folder under DIR holding files that match PATTERN.
raw_folder() {
    local found
    found="$(find "$1" -name "$2" -type f -print -quit)"
    if [ -n "$found" ]; then
        dirname "$found"
    fi
}

# check_source ARGUMENT PATH PATTERN: exit 2 (naming ARGUMENT, NAME=SOURCE) unless PATH holds what the script will read from it: raw files
# matching PATTERN (a folder or an archive listing them) or, without a PATTERN, a processed folder that every
# evaluation opens and whose pretraining resolves, as pretrain_cmd.py resolves it, to the small-data preset.
check_source() {
    if [ -z "$3" ]; then
        "$PYTHON" -c 'import contextlib, io, sys
from dataset.processed import load_split
from engine.evaluate import check_classes
from options.options_pretraining import parse_args, resolve
parser, args = parse_args(["--data-dir", sys.argv[1], "--device", "cpu"])
parser.prog, parser.print_usage = f"{sys.argv[2]}: its pretraining", lambda file=None: None
try:  # the training part as the pretraining opens it, then the evaluation part
    with contextlib.redirect_stdout(io.StringIO()):  # the notes a run prints
        settings, train = resolve(parser, args)
    load_split(sys.argv[1], "val")
    check_classes(sys.argv[1], train.labels)  # every probe and baseline would refuse it, after the pretrainings
except Exception as exc:
    sys.exit(f"{sys.argv[2]}: not a processed folder every evaluation can open: {exc}")
if settings.preset != "small":
    found = f"its layout.json records {train.dataset}" if train.dataset else "its layout.json names no dataset, or it has none (NTU-60 then)"
    sys.exit(f"{sys.argv[2]}: {found}, whose published preset a pretraining takes; this benchmark compares the "
             "defaults of the small-data preset (import the data with a data_gen importer)")' "$2" "$1" || exit 2
    elif [ -d "$2" ]; then
        if [ -z "$(raw_folder "$2" "$3")" ]; then
            echo "$1: no files named $3 in it" >&2
            exit 2
        fi
    elif [[ "$2" != *.tar.gz && "$2" != *.tgz && "$2" != *.zip ]]; then
        echo "$1: expected a folder or an archive ending in .tar.gz, .tgz or .zip" >&2
        exit 2
    else
        "$PYTHON" -c 'import fnmatch, os, sys, tarfile, zipfile
path, pattern, spec = sys.argv[1:]
try:
    names = zipfile.ZipFile(path).namelist() if path.endswith(".zip") else tarfile.open(path).getnames()
except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
    sys.exit(f"{spec}: not a readable archive: {exc}")
if not any(fnmatch.fnmatch(os.path.basename(n), pattern) for n in names):
    sys.exit(f"{spec}: no files named {pattern} in it")' "$2" "$3" "$1" || exit 2
    fi
}

# Every argument is checked before anything is removed or run.
names=()
work_real="$(realpath -m "$WORK_DIR")"
for spec in "$@"; do
    name="${spec%%=*}" source_path="${spec#*=}"
    if [ -n "$source_path" ] && [[ "$source_path" != /* ]]; then
        source_path="$CALLER_DIR/$source_path"  # relative to where the script was called, not the repository
    fi
    if [ "$name" = "$spec" ] || [ -z "$source_path" ] || [[ ! "$name" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]]; then
        echo "argument '$spec': expected NAME=SOURCE, NAME of letters, digits, '_', '.' or '-' (not first)" >&2
        exit 2
    fi
    check_distinct "data set %s" "${names[@]}" "$name"
    if [ ! -e "$source_path" ]; then
        if [ "$DRY_RUN" != 1 ]; then
            echo "$spec: no such file or folder" >&2
            exit 2
        fi
        echo "warning: $spec: no such file or folder (dry run: going on)" >&2
    fi
    case "$name:$source_path" in
        nw_ucla:* | msr_action3d:*) ;;
        *.tar.gz | *.tgz | *.zip)
            echo "$spec: an archive is imported only for nw_ucla and msr_action3d; for another data set," \
                "give a processed folder (made by a data_gen/ importer)" >&2
            exit 2
            ;;
    esac
    source_real="$(realpath -m "$source_path")"
    if [ "$source_real" = "$work_real" ] || [[ "$source_real" == "$work_real"/* ]]; then
        echo "$spec: the source is inside WORK_DIR $WORK_DIR, which this script empties; move it out or" \
            "set WORK_DIR to another folder" >&2
        exit 2
    fi
    raw_format "$name"
    if [ "$DRY_RUN" != 1 ]; then
        check_source "$spec" "$source_path" "$pattern"
    fi
    names+=("$name")
done
clear_work_dir "$WORK_DIR" "${names[@]}"

for spec in "$@"; do
    name="${spec%%=*}" source_path="${spec#*=}"
    if [ -n "$source_path" ] && [[ "$source_path" != /* ]]; then
        source_path="$CALLER_DIR/$source_path"  # relative to where the script was called, not the repository
    fi
    root="$WORK_DIR/$name" data="$WORK_DIR/$name/data" start=$SECONDS
    echo "== $name: data from $source_path"
    raw_format "$name"
    if [ -z "$importer" ]; then
        data="$source_path"
    else
        raw="$source_path"
        case "$source_path" in
            *.tar.gz | *.tgz | *.zip)
                run mkdir -p "$root/raw"
                run "$PYTHON" -c "import shutil, sys; shutil.unpack_archive(sys.argv[1], sys.argv[2])" \
                    "$source_path" "$root/raw"
                raw="$root/raw"
                ;;
        esac
        if [ "$DRY_RUN" != 1 ]; then
            raw="$(raw_folder "$raw" "$pattern")"
            if [ -z "$raw" ]; then
                echo "$spec: no files named $pattern in it" >&2
                exit 2
            fi
        fi
        run "$PYTHON" -m "$importer" --data-path "$raw" --out-folder "$data" --skip-bad --workers 2 --no-progress
        if [ "$DRY_RUN" != 1 ]; then  # --skip-bad may have left a part empty: stop before the pretrainings
            check_source "$spec (converted to $data)" "$data" ''
        fi
    fi

    echo "== $name: pretraining CMD and CMD-weight-0 for seeds ${seeds[*]} (the small-data preset)"
    for seed in "${seeds[@]}"; do
        for method in cmd cmd_weight0; do
            weight=()
            if [ "$method" = cmd_weight0 ]; then
                weight=(--cmd-weight 0)
            fi
            job "$root/logs/pretrain_${method}_seed$seed.log" \
                "$PYTHON" pretrain_cmd.py --data-dir "$data" --seed "$seed" "${weight[@]}" \
                -j 0 "${DEVICE_ARGS[@]}" --checkpoint-path "$root/checkpoints/${method}_seed$seed"
        done
    done
    wait_jobs

    echo "== $name: kNN and linear probes (pretrained and random encoders), coordinate baselines"
    for seed in "${seeds[@]}"; do
        for method in cmd cmd_weight0 random; do
            model=()
            if [ "$method" != random ]; then
                model=(--pretrained "$root/checkpoints/${method}_seed$seed/checkpoint_last.pth.tar")
            fi
            run_name="${method}_seed$seed"
            job "$root/logs/knn_$run_name.log" \
                "$PYTHON" knn_eval.py --data-dir "$data" --view all --seed "$seed" "${model[@]}" \
                -j 0 "${DEVICE_ARGS[@]}" --checkpoint-path "$root/eval/knn_$run_name" --results "$root/eval/$run_name.jsonl"
            job "$root/logs/linear_$run_name.log" \
                "$PYTHON" action_classification.py --data-dir "$data" --view all --seed "$seed" \
                "${model[@]}" -j 0 "${DEVICE_ARGS[@]}" --checkpoint-path "$root/eval/linear_$run_name" \
                --results "$root/eval/$run_name.jsonl"
        done
    done
    job "$root/logs/coordinate_baseline.log" \
        "$PYTHON" -m scripts.coordinate_baseline --data-dir "$data" \
        --results "$root/eval/baseline.jsonl"
    wait_jobs
    if [ "$DRY_RUN" != 1 ]; then
        echo "$((SECONDS - start))" > "$root/seconds"
    fi
done

echo "== report"
run "$PYTHON" -m scripts.real_data_report --work-dir "$WORK_DIR" --datasets "${names[@]}" --seeds "${seeds[@]}" \
    --out "$RESULTS_DIR/real_data_benchmark"

finish "$RESULTS_DIR/real_data_benchmark.json and .md; checkpoints and logs in $WORK_DIR/"
