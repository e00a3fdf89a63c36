#!/usr/bin/env bash
# Pretrain CMD: the five published runs, or those named on the command line.
#
#   bash scripts/pretrain.sh                      # ntu60_xsub ntu60_xview ntu120_xsub ntu120_xsetup pku_v2_xsub
#   bash scripts/pretrain.sh ntu60_xsub           # one run
#   DRY_RUN=1 bash scripts/pretrain.sh            # print the commands only
#   NPROC=4 bash scripts/pretrain.sh ntu60_xsub   # four GPUs with torchrun
#
# Each run writes checkpoint_%04d.pth.tar every 10 epochs (and checkpoint_last.pth.tar) to
# ./checkpoints/<run>/; an interrupted run continues with RESUME=1 (which starts the runs that have no
# checkpoint yet), and FRESH=1 starts a run again in
# a folder that holds one (the old files are moved to previous-<date-time>/). Without either, a
# folder that holds a run is left alone and the script says so.
# Settings: the 'pretrain' preset of each dataset (options/presets.py; printed and saved in
# settings.json by every run; docs/published-behaviour.md §4). Only the choices are passed here.
source "$(dirname "$0")/common.sh"

runs=("$@")
if [ ${#runs[@]} -eq 0 ]; then
    runs=("${ALL_RUNS[@]}")
fi

check_runs "${runs[@]}"
if [ "$NPROC" -gt 1 ]; then
    echo "NPROC=$NPROC: each process takes the preset's batch, as the published code's processes do, so the" \
        "global batch is $NPROC times the paper's, which trained on one GPU"
fi
for name in "${runs[@]}"; do
    check_free "./checkpoints/$name" "RESUME=1 continues it, "
done

for name in "${runs[@]}"; do
    run_args "./checkpoints/$name" checkpoint_last.pth.tar
    run "${PRETRAIN_LAUNCH[@]}" \
        --pre-dataset "${RUN_DATASET[$name]}" --protocol "${RUN_PROTOCOL[$name]}" \
        --seed 42 -j "$WORKERS" "${DEVICE_ARGS[@]}" "${RUN_ARGS[@]}" \
        --checkpoint-path "./checkpoints/$name"
done

finish "$(printf './checkpoints/%s/ ' "${runs[@]}")"
