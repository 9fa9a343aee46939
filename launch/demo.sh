#!/usr/bin/env bash
# The main job (README command 1), end to end on the embedded default data:
# synthesise a small cohort → prepare shards → summarise the pipeline's output →
# pretrain the small GaitMAE for a few minutes on CPU. Later stages (probing, the
# report) extend this same script. Re-running reuses what is already done.
#   GAIT_JAX_DEMO_DIR   work directory (default runs/demo)
#   GAIT_JAX_DEMO_N     participants (default 60)
source "$(dirname "$0")/venv.sh"
WORK="${GAIT_JAX_DEMO_DIR:-runs/demo}"
N="${GAIT_JAX_DEMO_N:-60}"

echo "== 1/4 synthetic cohort: $N participants × 5 tasks, 30 s each → $WORK/cohort"
python -m data_tools.synth --out "$WORK/cohort" --participants "$N" --seed 0 --seconds 30

echo "== 2/4 prepare: QC + 10 s clips (5 s overlap) → $WORK/shards"
python -m data_tools.prepare --input "$WORK/cohort/recordings" --format npz \
    --out "$WORK/shards" --clip-frames 300 --clip-stride 150

echo "== 3/4 summary"
python -m data_tools.summary --shards "$WORK/shards" --cohort "$WORK/cohort" \
    | tee "$WORK/summary.txt"

echo "== 4/4 pretrain the small GaitMAE on the cohort (W&B offline, under $WORK/pretrain_small)"
WANDB_MODE="${WANDB_MODE:-offline}" python -m gait_jax.main \
    --config experiments/pretrain_gaitmae.py:small --workdir "$WORK/pretrain_small" \
    --config.data.shards="$WORK/shards"
echo "done: $WORK/summary.txt, $WORK/pretrain_small/metrics.jsonl"
