#!/usr/bin/env bash
# Semi-supervised evaluation: a random 1 %, 5 %, 10 % or 20 % of the training set, the whole network
# fine-tuned in train mode with the 'semi' preset (options/presets.py; docs/published-behaviour.md
# §4), best top-1 on the full validation set. Every fraction is
# repeated 5 times with seeds 1..5 (each seed draws its own labelled subset); the report gives the
# mean and standard deviation over the repeats.
#
#   bash scripts/semi_supervised.sh                      # NTU-60 x-sub and x-view (the paper's table)
#   bash scripts/semi_supervised.sh ntu120_xsub          # another run
#   RATIOS="0.01 0.1" SEEDS="1 2 3" bash scripts/semi_supervised.sh
#   DRY_RUN=1 bash scripts/semi_supervised.sh            # print the commands only
#
# Reads ./checkpoints/<run>/checkpoint_0450.pth.tar; one JSON line per fine-tuning goes to
# results/semi.jsonl, each fine-tuning's log, settings and labelled subset to
# ./runs/semi/<run>_ratio<ratio>_seed<seed>/.
source "$(dirname "$0")/common.sh"

runs=("$@")
if [ ${#runs[@]} -eq 0 ]; then
    runs=(ntu60_xsub ntu60_xview)
fi
read -r -a ratios <<< "${RATIOS-0.01 0.05 0.1 0.2}"
read -r -a seeds <<< "${SEEDS-1 2 3 4 5}"
check_seeds "${seeds[@]}"
check_given RATIOS "fractions of the training set such as '0.01 0.1'" "${ratios[@]}"
for ratio in "${ratios[@]}"; do  # what --data-ratio takes, written as the folder names will show it
    if [[ ! "$ratio" =~ ^([0-9]+(\.[0-9]*)?|\.[0-9]+)$ ]] || ! awk -v r="$ratio" 'BEGIN { exit !(r > 0 && r <= 1) }'; then
        echo "ratio '$ratio' (RATIOS): expected a decimal fraction of the training set, above 0 and at most 1" >&2
        exit 2
    fi
done
check_distinct "ratio %s (RATIOS)" "${ratios[@]}"
results=results/semi.jsonl

check_runs "${runs[@]}"
for name in "${runs[@]}"; do
    for ratio in "${ratios[@]}"; do
        for seed in "${seeds[@]}"; do
            check_free "./runs/semi/${name}_ratio${ratio}_seed${seed}" "RESUME=1 continues the sweep (finished runs skipped), "
        done
    done
done

for name in "${runs[@]}"; do
    for ratio in "${ratios[@]}"; do
        for seed in "${seeds[@]}"; do
            run_args "./runs/semi/${name}_ratio${ratio}_seed${seed}" checkpoint.pth.tar || continue
            run "$PYTHON" action_classification.py \
                --finetune-dataset "${RUN_DATASET[$name]}" --protocol "${RUN_PROTOCOL[$name]}_semi" \
                --pretrained "$(pretrained_checkpoint "$name")" --view joint --data-ratio "$ratio" \
                --seed "$seed" -j "$WORKERS" "${DEVICE_ARGS[@]}" "${RUN_ARGS[@]}" \
                --checkpoint-path "./runs/semi/${name}_ratio${ratio}_seed${seed}" --results "$results"
        done
    done
done
run "$PYTHON" -m tools.report "$results"

finish "$results"
