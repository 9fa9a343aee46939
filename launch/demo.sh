#!/usr/bin/env bash
# The main job (README command 1), end to end on the embedded default data:
# synthesise a cohort of 60 → prepare shards → summarise → pretrain the small GaitMAE
# on CPU → frozen embeddings with every body-region ablation → engineered gait
# features → probe both on the same folds → each task alone → region importance →
# headline table → the report, runs/demo/report/index.html (printed last).
# Re-running reuses what is already done. Settings: launch/pipeline.sh.
source "$(dirname "$0")/venv.sh"
exec bash launch/pipeline.sh
