#!/usr/bin/env bash
# The whole pipeline on a synthetic cohort, with `python` from PATH (launch/demo.sh
# sets up the environment and runs this at the demo's size; the tests run it at the
# smoke size). Re-running reuses what is already done.
#   GAIT_JAX_DEMO_DIR   work directory (default runs/demo)
#   GAIT_JAX_DEMO_N     participants (default 60 at the demo size, 30 at smoke)
#   GAIT_JAX_DEMO_SIZE  "demo" (the small model, about 12 minutes on 2 CPU cores) or
#                       "smoke" (tiny sizes and smoke variants, for tests)
set -euo pipefail
WORK="${GAIT_JAX_DEMO_DIR:-runs/demo}"
SIZE="${GAIT_JAX_DEMO_SIZE:-demo}"
export WANDB_MODE="${WANDB_MODE:-offline}"
case "$SIZE" in
  demo)
    N="${GAIT_JAX_DEMO_N:-60}"; SECONDS_PER_TASK=30; CLIP=300; STRIDE=150
    PRETRAIN=small; EMBED=ablations; FEATURES=default; PROBE=paper; ABLATION=paper
    # One clip per participant × task, and the regions removed (not kept alone): the
    # encoder's nine passes per clip are the demo's largest cost after pretraining.
    TARGETS=3210; PRETRAIN_ARGS=(); CLIPS=1; SEEDS=5; TASK_SEEDS=3; ABLATION_SEEDS=5
    ABLATIONS="('none','zero:legs','zero:arms','zero:torso','zero:head')"
    # The heatmap must find the regions the cohort plants (legs: frailty, renal,
    # lipids, glycaemic, liver, immune; torso or head: sleep, mental health).
    RECOVERED=6 ;;
  smoke)
    N="${GAIT_JAX_DEMO_N:-30}"; SECONDS_PER_TASK=4; CLIP=60; STRIDE=30
    PRETRAIN=smoke; EMBED=ablations; FEATURES=smoke; PROBE=smoke; ABLATION=smoke
    PRETRAIN_ARGS=(--config.total_steps=2 --config.checkpoint_every=2 --config.data.split=all)
    TARGETS=200; CLIPS=1; SEEDS=2; TASK_SEEDS=2; ABLATION_SEEDS=2; RECOVERED=0
    ABLATIONS="('none','zero:legs','zero:arms','zero:torso','zero:head','only:legs','only:arms','only:torso','only:head')" ;;
  *) echo "GAIT_JAX_DEMO_SIZE=$SIZE: expected demo or smoke" >&2; exit 2 ;;
esac
COHORT="$WORK/cohort"
PHENOTYPES=(--config.phenotypes="$COHORT/phenotypes.parquet"
            --config.dictionary="$COHORT/dictionary.csv")
# Binary targets by the closed-form ridge classifier: AUC within 0.002 of the
# published logistic at paper scale, minutes faster here (--config.binary_model=logistic
# for the published model).
BINARY=(--config.binary_model=ridge)
step() { echo "== $1"; }

step "1/10 synthetic cohort: $N participants × 5 tasks, $SECONDS_PER_TASK s each → $COHORT"
python -m data_tools.synth --out "$COHORT" --participants "$N" --seed 0 \
    --seconds "$SECONDS_PER_TASK" --targets "$TARGETS"

step "2/10 prepare: QC + $CLIP-frame clips (stride $STRIDE) → $WORK/shards"
python -m data_tools.prepare --input "$COHORT/recordings" --format npz \
    --out "$WORK/shards" --clip-frames "$CLIP" --clip-stride "$STRIDE"

step "3/10 summary"
python -m data_tools.summary --shards "$WORK/shards" --cohort "$COHORT" \
    | tee "$WORK/summary.txt"

step "4/10 pretrain the $PRETRAIN GaitMAE (W&B offline) → $WORK/pretrain_$PRETRAIN"
# Evaluators: held-out loss on the val participants; a frozen probe of age, BMI and
# sex over everyone (the val split alone is a handful of people here).
python -m gait_jax.main --config "experiments/pretrain_gaitmae.py:$PRETRAIN" \
    --workdir "$WORK/pretrain_$PRETRAIN" --config.data.shards="$WORK/shards" \
    --config.evals.probe.phenotypes="$COHORT/phenotypes.parquet" \
    --config.evals.probe.split=all --config.evals.probe.max_clips_per_group=1 \
    ${PRETRAIN_ARGS[@]+"${PRETRAIN_ARGS[@]}"}

step "5/10 frozen embeddings with body-region ablations ($CLIPS clip per participant × task, each read once) → $WORK/embed"
if [ ! -f "$WORK/embed/embeddings.parquet" ]; then
  python -m gait_jax.main --config "experiments/embed.py:$EMBED" --workdir "$WORK/embed" \
      --config.checkpoint_dir="$WORK/pretrain_$PRETRAIN" --config.data.shards="$WORK/shards" \
      --config.data.max_clips_per_group="$CLIPS" --config.ablations="$ABLATIONS"
fi

step "6/10 engineered gait features → $WORK/features"
if [ ! -f "$WORK/features/features.parquet" ]; then
  python -m gait_jax.main --config "experiments/features.py:$FEATURES" \
      --workdir "$WORK/features" --config.data.shards="$WORK/shards"
fi

step "7/10 probe the embedding and the engineered features on the same folds → $WORK/probe"
python -m gait_jax.main --config "experiments/probe.py:$PROBE" --workdir "$WORK/probe" \
    --config.embeddings="$WORK/embed/embeddings.parquet" \
    --config.inputs="engineered=$WORK/features/features.parquet" \
    "${PHENOTYPES[@]}" --config.n_seeds="$SEEDS" "${BINARY[@]}"

step "8/10 probe each task alone and fused → $WORK/probe_tasks"
python -m gait_jax.main --config "experiments/probe.py:$PROBE" --workdir "$WORK/probe_tasks" \
    --config.embeddings="$WORK/embed/embeddings.parquet" --config.tasks=each \
    --config.covariates= "${PHENOTYPES[@]}" --config.n_seeds="$TASK_SEEDS" "${BINARY[@]}"

step "9/10 body-region ablation → $WORK/ablation"
python -m gait_jax.main --config "experiments/ablation.py:$ABLATION" --workdir "$WORK/ablation" \
    --config.embeddings="$WORK/embed/embeddings.parquet" "${PHENOTYPES[@]}" \
    --config.truth="$COHORT/truth.json" --config.min_recovered="$RECOVERED" \
    --config.probe.n_seeds="$ABLATION_SEEDS" --config.probe.binary_model=ridge

step "10/10 headline and report"
python -m gait_jax.probing.headline --run "$WORK/probe" --truth "$COHORT/truth.json" \
    --out "$WORK/headline.csv"
python -m gait_jax.report --run "$WORK" --out "$WORK/report"
