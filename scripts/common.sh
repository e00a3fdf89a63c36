# Shared by every experiment script (source it; do not run it).
#
# Environment knobs, all optional (the switches DRY_RUN, FRESH and RESUME take 1 or 0; any other value is refused):
#   DRY_RUN=1   print the commands without running them
#   PYTHON      the interpreter (default: python)
#   DEVICE      passed as --device to every entry point (default: the entry point's own choice,
#               CUDA when available, else CPU)
#   WORKERS     data-loading workers, -j (default 8)
#   NPROC       pretraining processes; above 1 the pretraining runs under torchrun
#               (`PYTHON -m torch.distributed.run --nproc_per_node NPROC`, one per GPU)
#   FRESH=1     start again in output folders that hold an earlier run (each entry point then moves
#               the old files to a subfolder previous-<date-time>/; nothing is deleted)
#   RESUME=1    go on with an interrupted sweep: pretraining continues from checkpoint_last; an
#               evaluation that finished (its folder holds result.jsonl) is skipped, an interrupted SGD
#               probe continues from its checkpoint, any other interrupted one starts afresh (as FRESH=1)
#
# Every command is printed as one shell-quoted line starting with "+ " before it runs, so a log
# (or a dry run) can be replayed by copying the line.

set -euo pipefail

# The scripts run from the repository root: relative paths in the environment knobs (WORK_DIR, …) are
# relative to it; CALLER_DIR is where the script was called from (for paths given as arguments).
CALLER_DIR="$PWD"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

PYTHON="${PYTHON:-python}"
DRY_RUN="${DRY_RUN:-0}"
# The switches take 1 (on) or 0 (off, as unset or empty): DRY_RUN=true would otherwise read as off and run.
for switch in DRY_RUN FRESH RESUME; do
    case "${!switch:-0}" in
        0 | 1) ;;
        *)
            echo "$switch=${!switch}: expected 1 (on) or 0 (off)" >&2
            exit 2
            ;;
    esac
done
WORKERS="${WORKERS:-8}"
NPROC="${NPROC:-1}"
SCRIPT_START_SECONDS=$SECONDS

# The published runs, by name: dataset and protocol of each. Checkpoints go to ./checkpoints/<name>/.
declare -A RUN_DATASET=(
    [ntu60_xsub]=ntu60 [ntu60_xview]=ntu60
    [ntu120_xsub]=ntu120 [ntu120_xsetup]=ntu120
    [pku_v2_xsub]=pku_v2
)
declare -A RUN_PROTOCOL=(
    [ntu60_xsub]=cross_subject [ntu60_xview]=cross_view
    [ntu120_xsub]=cross_subject [ntu120_xsetup]=cross_setup
    [pku_v2_xsub]=cross_subject
)
# The last checkpoint of each run (written at epochs 0, 10, ..., so 451 epochs end at 0450).
declare -A RUN_LAST_EPOCH=(
    [ntu60_xsub]=0450 [ntu60_xview]=0450 [ntu120_xsub]=0450 [ntu120_xsetup]=0450 [pku_v2_xsub]=1000
)
# PRETRAIN_LAUNCH: how pretrain_cmd.py is started (one process, or torchrun with NPROC processes, run
# by PYTHON as `python -m torch.distributed.run`, the module behind the torchrun command).
if [[ ! "$NPROC" =~ ^[1-9][0-9]*$ ]]; then
    echo "NPROC=$NPROC: expected a positive integer" >&2
    exit 2
fi
if [ "$NPROC" -gt 1 ]; then
    PRETRAIN_LAUNCH=("$PYTHON" -m torch.distributed.run --nproc_per_node "$NPROC" pretrain_cmd.py)
else
    PRETRAIN_LAUNCH=("$PYTHON" pretrain_cmd.py)
fi

ALL_RUNS=(ntu60_xsub ntu60_xview ntu120_xsub ntu120_xsetup pku_v2_xsub)

# run CMD ARGS...: print the command, then run it unless DRY_RUN=1.
run() {
    local line
    printf -v line ' %q' "$@"
    echo "+${line}"
    if [ "$DRY_RUN" != 1 ]; then
        "$@"
    fi
}

# Background jobs, at most MAX_JOBS at a time (default 1: one after the other).
# job LOG CMD ARGS...: print the command, then run it in the background with its output in LOG
# (unless DRY_RUN=1); when MAX_JOBS are running, wait for them. wait_jobs: wait for every job,
# show the last lines of each log, and fail naming the log of any job that failed.
MAX_JOBS="${MAX_JOBS:-1}"
if [[ ! "$MAX_JOBS" =~ ^[1-9][0-9]*$ ]]; then
    echo "MAX_JOBS=$MAX_JOBS: expected a positive integer" >&2
    exit 2
fi
JOB_PIDS=()
JOB_LOGS=()
job() {
    local log="$1" line
    shift
    printf -v line ' %q' "$@"
    echo "+${line}"
    echo "  (output: $log)"
    if [ "$DRY_RUN" != 1 ]; then
        mkdir -p "$(dirname "$log")"
        "$@" > "$log" 2>&1 &
        JOB_PIDS+=($!)
        JOB_LOGS+=("$log")
        if [ ${#JOB_PIDS[@]} -ge "$MAX_JOBS" ]; then
            wait_jobs
        fi
    fi
}
wait_jobs() {
    local i failed=0
    for i in "${!JOB_PIDS[@]}"; do
        if wait "${JOB_PIDS[$i]}"; then
            tr '\r' '\n' < "${JOB_LOGS[$i]}" | grep -v '^[[:space:]]*$' | tail -n 2 | sed 's/^/  | /' || true  # a job that printed nothing
        else
            failed=1
            echo "FAILED: ${JOB_LOGS[$i]} (last lines below)" >&2
            tail -n 20 "${JOB_LOGS[$i]}" >&2
        fi
    done
    JOB_PIDS=()
    JOB_LOGS=()
    return "$failed"
}

# check_given KNOB EXAMPLE ITEM...: fail when no ITEM is given (KNOB set empty, or to spaces).
check_given() {
    if [ $# -le 2 ]; then
        echo "$1 is empty; expected $2" >&2
        exit 2
    fi
}

# check_distinct WHAT ITEM...: fail when an ITEM is given twice; WHAT names it (a printf format of one %s).
check_distinct() {
    local what="$1" item seen=" "
    shift
    for item in "$@"; do
        if [[ "$seen" == *" $item "* ]]; then
            printf "$what given twice: its runs would share one output folder\n" "$item" >&2
            exit 2
        fi
        seen+="$item "
    done
}

# check_runs NAME...: fail with the list of known runs when a NAME is not one of them or is given twice
# (before any work).
check_runs() {
    local name
    for name in "$@"; do
        if [ -z "${RUN_DATASET[$name]+set}" ]; then
            echo "unknown run '$name'; expected one of: ${ALL_RUNS[*]}" >&2
            exit 2
        fi
    done
    check_distinct "run %s" "$@"
}

# check_seeds SEED...: fail when a SEED is not an integer from 0 to 2**63 - 1 (what the runs' --seed
# takes), or none is given.
check_seeds() {
    local seed
    check_given SEEDS "seeds such as '0 1 2'" "$@"
    for seed in "$@"; do
        if [[ ! "$seed" =~ ^(0|[1-9][0-9]*)$ ]]; then
            echo "seed '$seed' (SEEDS): expected a non-negative integer without leading zeros" >&2
            exit 2
        fi
        if ((${#seed} > 19)) || { ((${#seed} == 19)) && [[ "$seed" > 9223372036854775807 ]]; }; then
            echo "seed $seed (SEEDS): expected at most 9223372036854775807 (2**63 - 1)" >&2
            exit 2
        fi
    done
    check_distinct "seed %s (SEEDS)" "$@"
}

# check_views VIEW...: fail when a VIEW is not one an evaluation takes or is given twice, or none is given.
check_views() {
    local view
    check_given VIEWS "views such as 'joint all'" "$@"
    for view in "$@"; do
        case "$view" in
            joint | motion | bone | all) ;;
            *)
                echo "unknown view '$view' (VIEWS); expected joint, motion, bone or all" >&2
                exit 2
                ;;
        esac
    done
    check_distinct "view %s (VIEWS)" "$@"
}

# pretrained_checkpoint NAME: the last pretraining checkpoint of run NAME.
pretrained_checkpoint() {
    echo "./checkpoints/$1/checkpoint_${RUN_LAST_EPOCH[$1]}.pth.tar"
}

# DEVICE_ARGS: (--device DEVICE) when DEVICE is set, else empty; use as "${DEVICE_ARGS[@]}".
DEVICE_ARGS=()
if [ -n "${DEVICE:-}" ]; then
    DEVICE_ARGS=(--device "$DEVICE")
fi
if [ "${FRESH:-0}" = 1 ] && [ "${RESUME:-0}" = 1 ]; then
    echo "FRESH=1 starts runs afresh and RESUME=1 continues them: set one of the two" >&2
    exit 2
fi
# FRESH_ARGS: (--fresh) when FRESH=1, else empty.
FRESH_ARGS=()
if [ "${FRESH:-0}" = 1 ]; then
    FRESH_ARGS=(--fresh)
fi

# check_free DIR CONTINUE: fail, saying how to go on, when the output folder DIR holds a run and
# FRESH=1 is not set; CONTINUE names how to continue it instead (e.g. "RESUME=1 continues it").
# Scripts check every output folder before the first run starts.
check_free() {
    if [ -f "$1/settings.json" ] && [ "${FRESH:-0}" != 1 ] && [ "${RESUME:-0}" != 1 ] && [ "$DRY_RUN" != 1 ]; then
        echo "$1 holds an earlier run: ${2}FRESH=1 starts afresh (its files are moved to $1/previous-<date-time>/)" >&2
        exit 2
    fi
}

# run_args DIR CHECKPOINT: the flags a script gives the run in output folder DIR, in RUN_ARGS: FRESH_ARGS,
# or under RESUME=1 what goes on with what DIR holds: --resume DIR/CHECKPOINT when it is there, --fresh
# for a run stopped without a checkpoint (its files kept aside), nothing for a new one. Returns 1
# when RESUME=1 and DIR holds a finished evaluation (result.jsonl): the caller skips it.
run_args() {
    RUN_ARGS=("${FRESH_ARGS[@]}")
    if [ "${RESUME:-0}" != 1 ]; then
        return 0
    fi
    if [ -f "$1/result.jsonl" ]; then
        echo "RESUME=1: $1 holds a finished evaluation (result.jsonl); skipped"
        return 1
    elif [ -f "$1/$2" ]; then
        RUN_ARGS=(--resume "$1/$2")
    elif [ -f "$1/settings.json" ]; then
        echo "RESUME=1: $1 holds a run stopped without a checkpoint to resume from; starting it afresh"
        RUN_ARGS=(--fresh)
    fi
}

# clear_work_dir DIR SUB...: make DIR the work folder of this script: a new or empty folder is marked as
# the scripts' (DIR/.cmd-work-folder); a marked one gets its subfolders SUB (an earlier run's) removed.
# Refuses (exit 2) a folder holding anything and not marked (nothing of the user's is ever removed) and
# RESUME=1 (these scripts start afresh); refuses (exit 1) a folder another script is working in, or one
# holding a folder a running process claims. The script then holds DIR for its lifetime.
WORK_MARK=.cmd-work-folder
clear_work_dir() {
    local dir="$1" sub claim present=()
    shift
    if [ "${RESUME:-0}" = 1 ]; then
        echo "RESUME=1: this script starts afresh in its work folder $dir; run it without RESUME" >&2
        exit 2
    fi
    if [ -e "$dir" ] && [ ! -d "$dir" ]; then
        echo "$dir is a file; the work folder must be a folder (new or empty)" >&2
        exit 2
    fi
    if [ -d "$dir" ] && [ ! -f "$dir/$WORK_MARK" ] && [ -n "$(ls -A "$dir")" ]; then
        echo "$dir holds files these scripts did not make there (no $dir/$WORK_MARK): set a new or empty" \
            "work folder" >&2
        exit 2
    fi
    for sub in "$@"; do
        if [ -e "$dir/$sub" ] || [ -L "$dir/$sub" ]; then
            present+=("$dir/$sub")
        fi
    done
    if [ "$DRY_RUN" != 1 ]; then
        mkdir -p "$dir"
        if [ ! -f "$dir/$WORK_MARK" ]; then
            echo "a work folder of scripts/*.sh, which remove its subfolders when they run again" > "$dir/$WORK_MARK"
        fi
        exec 9< "$dir/$WORK_MARK"
        if ! flock -n 9; then
            echo "$dir is the work folder of another script that is running; wait for it or set another" >&2
            exit 1
        fi
    fi
    if [ ${#present[@]} -gt 0 ]; then
        while IFS= read -r -d '' claim; do
            if ! flock -n "$claim" true 2> /dev/null; then
                echo "$(dirname "$claim") is in use by a running process ($(head -c 300 "$claim")); wait for it" >&2
                exit 1
            fi
        done < <(find "${present[@]}" -name .claim -type f -print0 2> /dev/null)
        run rm -rf "${present[@]}"
    fi
}

# finish WHAT...: print the elapsed time and where the results are.
finish() {
    local elapsed=$((SECONDS - SCRIPT_START_SECONDS))
    if [ "$DRY_RUN" = 1 ]; then
        echo "Dry run: nothing was run. Results would go to: $*"
    else
        printf 'Done in %dh %02dm %02ds. Results: %s\n' \
            $((elapsed / 3600)) $((elapsed % 3600 / 60)) $((elapsed % 60)) "$*"
    fi
}
