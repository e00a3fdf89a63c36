#!/usr/bin/env bash
# kNN evaluation of pretrained CMD encoders: frozen 2048-d joint-encoder features of the 0.95 centre
# crop on both sides, L2-normalised, nearest neighbour by cosine similarity between validation and
# training samples ('knn' preset, options/presets.py; docs/published-behaviour.md §4).
#
#   bash scripts/knn_eval.sh                     # all five runs
#   bash scripts/knn_eval.sh ntu60_xsub          # one run
#   DRY_RUN=1 bash scripts/knn_eval.sh           # print the commands only
#
# Reads ./checkpoints/<run>/checkpoint_0450.pth.tar (PKU-MMD II: checkpoint_1000.pth.tar). One JSON
# line per evaluation goes to results/knn.jsonl, each run's settings to ./runs/knn/<run>/; the summary
# table is printed at the end.
source "$(dirname "$0")/common.sh"

runs=("$@")
if [ ${#runs[@]} -eq 0 ]; then
    runs=("${ALL_RUNS[@]}")
fi
results=results/knn.jsonl

check_runs "${runs[@]}"
for name in "${runs[@]}"; do
    check_free "./runs/knn/$name" "RESUME=1 continues the sweep (finished runs skipped), "
done

for name in "${runs[@]}"; do
    run_args "./runs/knn/$name" checkpoint.pth.tar || continue
    run "$PYTHON" knn_eval.py \
        --finetune-dataset "${RUN_DATASET[$name]}" --protocol "${RUN_PROTOCOL[$name]}" \
        --pretrained "$(pretrained_checkpoint "$name")" -j "$WORKERS" "${DEVICE_ARGS[@]}" "${RUN_ARGS[@]}" \
        --checkpoint-path "./runs/knn/$name" --results "$results"
done
run "$PYTHON" -m tools.report "$results"

finish "$results"
