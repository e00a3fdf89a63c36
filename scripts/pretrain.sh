#!/usr/bin/env bash
# Pretrain CMD (SPEC §4): the five published runs, or those named on the command line.
#
#   bash scripts/pretrain.sh                      # ntu60_xsub ntu60_xview ntu120_xsub ntu120_xsetup pku_v2_xsub
#   bash scripts/pretrain.sh ntu60_xsub           # one run
#   DRY_RUN=1 bash scripts/pretrain.sh            # print the commands only
#   NPROC=4 bash scripts/pretrain.sh ntu60_xsub   # four GPUs with torchrun
#
# Each run writes checkpoint_%04d.pth.tar every 10 epochs (and checkpoint_last.pth.tar) to
# ./checkpoints/<run>/; an interrupted run continues with RESUME=1.
# Settings: SGD lr 0.01, momentum 0.9, weight decay 1e-4, batch 64, MLP head, K 16384, T 0.07,
# m 0.999, teacher T 0.05, student T 0.1, top-k 8192, CMD weight 1; NTU: 451 epochs, lr x0.1 at 351;
# PKU-MMD II: 1001 epochs, lr x0.1 at 801.
source "$(dirname "$0")/common.sh"

runs=("$@")
if [ ${#runs[@]} -eq 0 ]; then
    runs=("${ALL_RUNS[@]}")
fi

for name in "${runs[@]}"; do
    check_run "$name"
    if [ "${RUN_DATASET[$name]}" = pku_v2 ]; then
        epochs=1001 schedule=801
    else
        epochs=451 schedule=351
    fi
    resume=()
    if [ "${RESUME:-0}" = 1 ]; then
        resume=(--resume "./checkpoints/$name/checkpoint_last.pth.tar")
    fi
    run "${PRETRAIN_LAUNCH[@]}" \
        --pre-dataset "${RUN_DATASET[$name]}" --protocol "${RUN_PROTOCOL[$name]}" \
        --skeleton-representation graph-based \
        --lr 0.01 --momentum 0.9 --wd 1e-4 --batch-size 64 \
        --epochs "$epochs" --schedule "$schedule" \
        --mlp --contrast-dim 128 --contrast-k 16384 --contrast-t 0.07 --contrast-m 0.999 \
        --teacher-t 0.05 --student-t 0.1 --topk 8192 --cmd-weight 1.0 \
        --seed 42 -j "$WORKERS" "${DEVICE_ARGS[@]}" "${resume[@]}" \
        --checkpoint-path "./checkpoints/$name"
done

finish "$(printf './checkpoints/%s/ ' "${runs[@]}")"
