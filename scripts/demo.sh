#!/usr/bin/env bash
# The whole CMD workflow in a few minutes on a CPU, on synthetic data:
#   1. synthesize a small NTU-format raw dataset (.skeleton files; python -m data_gen.synthetic),
#   2. preprocess it with data_gen/ntu_gendata.py exactly as real NTU data (x-sub split),
#   3. pretrain CMD at a small size, and the same run with --cmd-weight 0 (three independent MoCo
#      models, the paper's baseline),
#   4. evaluate both and a randomly initialised encoder by kNN and linear evaluation (joint stream),
#   5. print a table and write results/demo.json:
#      {"seconds": ..., "runs": [{"encoder": "cmd" | "cmd_weight0" | "random", "knn_top1": ..., "linear_top1": ...}, ...]}
#
#   bash scripts/demo.sh
#   DRY_RUN=1 bash scripts/demo.sh             # print the commands only
#
# This is a smoke test of the workflow, not a measurement: the pretraining is tiny (see the
# numbers printed at the end) and far from the paper's 451 epochs of a 1024-wide, 3-layer GRU.
# scripts/synthetic_benchmark.sh measures whether CMD learns.
#
# Size (environment variables; the defaults take about 3 minutes on 2 idle CPU cores):
#   WORK_DIR            raw data, processed data, checkpoints and logs   (default ./runs/demo)
#   RESULTS_DIR         where demo.json goes                             (default ./results)
#   DEMO_CLASSES        action classes (NTU action ids 1..N)             (default 10)
#   DEMO_SUBJECTS       performers; x-sub trains on subjects 1 2 4 5 8 9 ... (default 8: 5 train, 3 val)
#   DEMO_CAMERAS, DEMO_SETUPS, DEMO_REPLICATIONS  the rest of the recording grid (default 3, 2, 2:
#                       10 x 8 x 3 x 2 x 2 = 960 samples, 600 train / 360 val)
#   DEMO_HIDDEN, DEMO_LAYERS   GRU hidden size and layers               (default 48, 2)
#   DEMO_BATCH, DEMO_K, DEMO_TOPK  batch size, queue length, CMD top-k   (default 32, 256, 128)
#   DEMO_EPOCHS         pretraining epochs                               (default 30)
#   DEMO_LINEAR_EPOCHS  linear-evaluation epochs (lr x0.1 at 5/8 and 7/8 of them, as 50/70 of 80) (default 16)
#   DEMO_SEED           seed of the data, the weights and the views      (default 0)
#   DEMO_WORKERS        data-loading workers per run, -j                 (default 1)
#   MAX_JOBS            runs at a time (default 2: the two pretrainings side by side, then the
#                       evaluations two by two, each on one thread; 1: one after the other)
MAX_JOBS="${MAX_JOBS:-2}"
source "$(dirname "$0")/common.sh"
if [ "$MAX_JOBS" -gt 1 ]; then
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
fi

WORK_DIR="${WORK_DIR:-./runs/demo}"
RESULTS_DIR="${RESULTS_DIR:-./results}"
DEMO_CLASSES="${DEMO_CLASSES:-10}"
DEMO_SUBJECTS="${DEMO_SUBJECTS:-8}"
DEMO_CAMERAS="${DEMO_CAMERAS:-3}"
DEMO_SETUPS="${DEMO_SETUPS:-2}"
DEMO_REPLICATIONS="${DEMO_REPLICATIONS:-2}"
DEMO_HIDDEN="${DEMO_HIDDEN:-48}"
DEMO_LAYERS="${DEMO_LAYERS:-2}"
DEMO_BATCH="${DEMO_BATCH:-32}"
DEMO_K="${DEMO_K:-256}"
DEMO_TOPK="${DEMO_TOPK:-128}"
DEMO_EPOCHS="${DEMO_EPOCHS:-30}"
DEMO_LINEAR_EPOCHS="${DEMO_LINEAR_EPOCHS:-16}"
DEMO_SEED="${DEMO_SEED:-0}"
DEMO_WORKERS="${DEMO_WORKERS:-1}"

data="$WORK_DIR/data/xsub"
linear_schedule=($((DEMO_LINEAR_EPOCHS * 5 / 8)) $((DEMO_LINEAR_EPOCHS * 7 / 8)))
if [ "${linear_schedule[0]}" -lt 1 ]; then
    linear_schedule=("$DEMO_LINEAR_EPOCHS")  # too few epochs for a decay
fi

echo "== 1/4 synthetic NTU-format raw data -> $WORK_DIR/raw"
clear_work_dir "$WORK_DIR" raw data checkpoints eval logs
run "$PYTHON" -m data_gen.synthetic --format ntu --out "$WORK_DIR/raw" --classes "$DEMO_CLASSES" \
    --subjects "$DEMO_SUBJECTS" --cameras "$DEMO_CAMERAS" --setups "$DEMO_SETUPS" \
    --replications "$DEMO_REPLICATIONS" --seed "$DEMO_SEED"

echo "== 2/4 preprocessing (data_gen/ntu_gendata.py, cross-subject split) -> $data"
run "$PYTHON" -m data_gen.ntu_gendata --dataset ntu60 --benchmark xsub --data-path "$WORK_DIR/raw" \
    --out-folder "$WORK_DIR/data" --workers 2 --no-progress

echo "== 3/4 pretraining: CMD, and the same with --cmd-weight 0"
# Departures from docs/published-behaviour.md §4, for size: hidden/layers/batch/K/top-k/epochs above; lr 0.05 and key
# momentum 0.99 (a short run on a small set needs faster key encoders than m = 0.999); views of 32
# frames with 5 corrupted joints (paper 64 and 15: on small synthetic data and short training the
# paper's corruption wipes out the limb motion the classes differ by; scripts/synthetic_benchmark.sh
# measures it). MLP head, temperatures and the CMD loss as published.
for encoder in cmd cmd_weight0; do
    weight=1.0
    if [ "$encoder" = cmd_weight0 ]; then
        weight=0
    fi
    job "$WORK_DIR/logs/pretrain_$encoder.log" \
        "$PYTHON" pretrain_cmd.py --pre-dataset ntu60 --protocol cross_subject --data-dir "$data" \
        --hidden-size "$DEMO_HIDDEN" --num-layers "$DEMO_LAYERS" \
        --lr 0.05 --batch-size "$DEMO_BATCH" --epochs "$DEMO_EPOCHS" --schedule "$DEMO_EPOCHS" \
        --contrast-k "$DEMO_K" --contrast-m 0.99 --topk "$DEMO_TOPK" --cmd-weight "$weight" \
        --view-frames 32 --corrupted-joints 5 \
        --seed "$DEMO_SEED" -j "$DEMO_WORKERS" "${DEVICE_ARGS[@]}" \
        --checkpoint-path "$WORK_DIR/checkpoints/$encoder"
done
wait_jobs

echo "== 4/4 evaluation: kNN and linear, for CMD, CMD-weight-0 and a random encoder"
for encoder in cmd cmd_weight0 random; do
    if [ "$encoder" = random ]; then
        model=(--hidden-size "$DEMO_HIDDEN" --num-layers "$DEMO_LAYERS" --view-frames 32)  # as CMD's views
    else
        model=(--pretrained "$WORK_DIR/checkpoints/$encoder/checkpoint_last.pth.tar")
    fi
    job "$WORK_DIR/logs/${encoder}_knn.log" \
        "$PYTHON" knn_eval.py --finetune-dataset ntu60 --protocol cross_subject --data-dir "$data" \
        "${model[@]}" --view joint \
        --seed "$DEMO_SEED" -j "$DEMO_WORKERS" "${DEVICE_ARGS[@]}" \
        --checkpoint-path "$WORK_DIR/eval/${encoder}_knn" --results "$WORK_DIR/eval/${encoder}_knn.jsonl"
    job "$WORK_DIR/logs/${encoder}_linear.log" \
        "$PYTHON" action_classification.py --finetune-dataset ntu60 --protocol cross_subject --data-dir "$data" \
        "${model[@]}" --view joint \
        --epochs "$DEMO_LINEAR_EPOCHS" --schedule "${linear_schedule[@]}" --eval-freq 4 \
        --seed "$DEMO_SEED" -j "$DEMO_WORKERS" "${DEVICE_ARGS[@]}" \
        --checkpoint-path "$WORK_DIR/eval/${encoder}_linear" --results "$WORK_DIR/eval/${encoder}_linear.jsonl"
done
wait_jobs

run "$PYTHON" -m scripts.demo_report --work-dir "$WORK_DIR" --out "$RESULTS_DIR/demo.json" \
    --seconds $((SECONDS - SCRIPT_START_SECONDS))

finish "$RESULTS_DIR/demo.json (table above); checkpoints in $WORK_DIR/checkpoints/, logs in $WORK_DIR/logs/"
