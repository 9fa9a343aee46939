#!/usr/bin/env bash
# The main job (README command 1), end to end on the embedded default data:
# synthesise a small cohort → prepare shards → summarise → pretrain the small
# GaitMAE for a few minutes on CPU → frozen embeddings → engineered gait features
# → probe both against every phenotype target → headline table. Re-running reuses
# what is already done.
#   GAIT_JAX_DEMO_DIR   work directory (default runs/demo)
#   GAIT_JAX_DEMO_N     participants (default 60)
source "$(dirname "$0")/venv.sh"
WORK="${GAIT_JAX_DEMO_DIR:-runs/demo}"
N="${GAIT_JAX_DEMO_N:-60}"
export WANDB_MODE="${WANDB_MODE:-offline}"

echo "== 1/8 synthetic cohort: $N participants × 5 tasks, 30 s each → $WORK/cohort"
python -m data_tools.synth --out "$WORK/cohort" --participants "$N" --seed 0 --seconds 30

echo "== 2/8 prepare: QC + 10 s clips (5 s overlap) → $WORK/shards"
python -m data_tools.prepare --input "$WORK/cohort/recordings" --format npz \
    --out "$WORK/shards" --clip-frames 300 --clip-stride 150

echo "== 3/8 summary"
python -m data_tools.summary --shards "$WORK/shards" --cohort "$WORK/cohort" \
    | tee "$WORK/summary.txt"

echo "== 4/8 pretrain the small GaitMAE (W&B offline, under $WORK/pretrain_small)"
python -m gait_jax.main --config experiments/pretrain_gaitmae.py:small \
    --workdir "$WORK/pretrain_small" --config.data.shards="$WORK/shards"

echo "== 5/8 frozen embeddings (2 clips per participant × task) → $WORK/embed"
if [ ! -f "$WORK/embed/embeddings.parquet" ]; then
  python -m gait_jax.main --config experiments/embed.py --workdir "$WORK/embed" \
      --config.checkpoint_dir="$WORK/pretrain_small" --config.data.shards="$WORK/shards" \
      --config.data.max_clips_per_group=2
fi

echo "== 6/8 engineered gait features → $WORK/features"
if [ ! -f "$WORK/features/features.parquet" ]; then
  python -m gait_jax.main --config experiments/features.py --workdir "$WORK/features" \
      --config.data.shards="$WORK/shards"
fi

for source in embed:embeddings features:features; do
  dir="${source%%:*}"; file="${source##*:}"
  echo "== 7/8 probe $file against every phenotype target → $WORK/probe_$dir"
  python -m gait_jax.main --config experiments/probe.py --workdir "$WORK/probe_$dir" \
      --config.embeddings="$WORK/$dir/$file.parquet" \
      --config.phenotypes="$WORK/cohort/phenotypes.parquet" \
      --config.dictionary="$WORK/cohort/dictionary.csv" --config.n_seeds=5
done

echo "== 8/8 headline: gait embedding vs engineered features"
python -m gait_jax.probing.headline --run "embedding=$WORK/probe_embed" \
    --run "engineered=$WORK/probe_features" --truth "$WORK/cohort/truth.json" \
    --out "$WORK/headline.csv"
echo "done: $WORK/headline.csv, $WORK/probe_*/results/, $WORK/pretrain_small/metrics.jsonl"
