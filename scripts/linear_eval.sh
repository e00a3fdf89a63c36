#!/usr/bin/env bash
# Linear evaluation of pretrained CMD encoders: the encoders frozen in eval mode, only the classifier
# trained, with the 'linear' preset (options/presets.py: SGD, 80 epochs, validation every 5 epochs,
# best top-1 reported; docs/published-behaviour.md §4).
#
#   bash scripts/linear_eval.sh                  # all five runs, joint stream and three streams
#   bash scripts/linear_eval.sh ntu60_xsub       # one run
#   VIEWS=joint bash scripts/linear_eval.sh      # the joint stream only (the published script)
#   DRY_RUN=1 bash scripts/linear_eval.sh        # print the commands only
#
# Reads ./checkpoints/<run>/checkpoint_0450.pth.tar (PKU-MMD II: checkpoint_1000.pth.tar) written
# by scripts/pretrain.sh. "joint" classifies from the joint encoder (CMD); "all" trains a classifier on
# each of the joint, motion and bone encoders and fuses them by summing their softmax scores (3s-CMD). One JSON line per evaluation goes to
# results/linear.jsonl (with --view all: joint, motion, bone and their fusion); each run's log,
# settings and classifier go to ./runs/linear/<run>_<view>/. The summary table is printed at the end.
source "$(dirname "$0")/common.sh"

runs=("$@")
if [ ${#runs[@]} -eq 0 ]; then
    runs=("${ALL_RUNS[@]}")
fi
read -r -a views <<< "${VIEWS-joint all}"
results=results/linear.jsonl

check_runs "${runs[@]}"
check_views "${views[@]}"
for name in "${runs[@]}"; do
    for view in "${views[@]}"; do
        check_free "./runs/linear/${name}_${view}" "RESUME=1 continues the sweep (finished runs skipped), "
    done
done

for name in "${runs[@]}"; do
    for view in "${views[@]}"; do
        run_args "./runs/linear/${name}_${view}" checkpoint.pth.tar || continue
        run "$PYTHON" action_classification.py \
            --finetune-dataset "${RUN_DATASET[$name]}" --protocol "${RUN_PROTOCOL[$name]}" \
            --pretrained "$(pretrained_checkpoint "$name")" --view "$view" \
            --seed 42 -j "$WORKERS" "${DEVICE_ARGS[@]}" "${RUN_ARGS[@]}" \
            --checkpoint-path "./runs/linear/${name}_${view}" --results "$results"
    done
done
run "$PYTHON" -m tools.report "$results"

finish "$results"
