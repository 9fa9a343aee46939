#!/usr/bin/env bash
# The main job (README command 1), end to end on the embedded default data:
# synthesise a small cohort → prepare shards → summarise the pipeline's output.
# Later stages (pretraining, probing, the report) extend this same script.
#   GAIT_JAX_DEMO_DIR   work directory (default runs/demo)
#   GAIT_JAX_DEMO_N     participants (default 60)
source "$(dirname "$0")/venv.sh"
WORK="${GAIT_JAX_DEMO_DIR:-runs/demo}"
N="${GAIT_JAX_DEMO_N:-60}"

echo "== 1/3 synthetic cohort: $N participants × 5 tasks, 30 s each → $WORK/cohort"
python -m data_tools.synth --out "$WORK/cohort" --participants "$N" --seed 0 --seconds 30

echo "== 2/3 prepare: QC + 10 s clips (5 s overlap) → $WORK/shards"
python -m data_tools.prepare --input "$WORK/cohort/recordings" --format npz \
    --out "$WORK/shards" --clip-frames 300 --clip-stride 150

echo "== 3/3 summary"
python -m data_tools.summary --shards "$WORK/shards" --cohort "$WORK/cohort" \
    | tee "$WORK/summary.txt"
echo "done: $WORK/summary.txt"
