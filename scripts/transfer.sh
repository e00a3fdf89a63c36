#!/usr/bin/env bash
# Transfer to PKU-MMD II: encoders pretrained on NTU-60 x-sub and NTU-120 x-sub, the whole network
# fine-tuned on PKU-MMD II x-sub with all its labels with the 'transfer' preset (the semi-supervised
# recipe; options/presets.py, docs/published-behaviour.md §4), best top-1 on the validation set.
#
#   bash scripts/transfer.sh                     # from ntu60_xsub and ntu120_xsub
#   bash scripts/transfer.sh ntu60_xsub          # from one run
#   DRY_RUN=1 bash scripts/transfer.sh           # print the commands only
#
# Reads ./checkpoints/<run>/checkpoint_0450.pth.tar and the processed PKU-MMD II x-sub folder; one
# JSON line per fine-tuning goes to results/transfer.jsonl, each run's log and settings to
# ./runs/transfer/<run>_to_pku_v2_xsub/.
source "$(dirname "$0")/common.sh"

runs=("$@")
if [ ${#runs[@]} -eq 0 ]; then
    runs=(ntu60_xsub ntu120_xsub)
fi
results=results/transfer.jsonl

check_runs "${runs[@]}"
for name in "${runs[@]}"; do
    if [ "${RUN_DATASET[$name]}" = pku_v2 ]; then
        echo "$name: transfer goes from NTU to PKU-MMD II; $name was pretrained on PKU-MMD II itself" >&2
        exit 2
    fi
done
for name in "${runs[@]}"; do
    check_free "./runs/transfer/${name}_to_pku_v2_xsub" "RESUME=1 continues the sweep (finished runs skipped), "
done

for name in "${runs[@]}"; do
    run_args "./runs/transfer/${name}_to_pku_v2_xsub" checkpoint.pth.tar || continue
    run "$PYTHON" action_classification.py \
        --finetune-dataset pku_v2 --protocol cross_subject \
        --pretrained "$(pretrained_checkpoint "$name")" --view joint \
        --transfer --pretrain-dataset "${RUN_DATASET[$name]}" \
        --seed 42 -j "$WORKERS" "${DEVICE_ARGS[@]}" "${RUN_ARGS[@]}" \
        --checkpoint-path "./runs/transfer/${name}_to_pku_v2_xsub" --results "$results"
done
run "$PYTHON" -m tools.report "$results"

finish "$results"
