#!/usr/bin/env bash
# One GPU check, under 8 minutes on one device, without network:
#
#   bash benchmarks/gpu.sh                 # on the GPU machine
#   bash benchmarks/gpu.sh --cpu-dry-run   # the same steps at tiny sizes on CPU
#
# Prints, in order:
#   1. the environment: Python, JAX, the devices;
#   2. the train step of the published recipe at the paper shape, bf16
#      (`benchmarks/train_step.py --dtype bfloat16`): batch 8 with remat under
#      two attentions (the default, cuDNN's fused kernel on this GPU; XLA's in one
#      pass), then the default at batch 8 without remat and at batch 32 with it
#      (XLA's chunked CPU path, 8× slower here, is left out for time). Step time,
#      clips/s, MFU against the device's bf16 dense peak, XLA's temporary memory
#      and the device's peak memory, compile time, and the attention path the
#      compiled step takes (cudnn / chunked / one pass, read from its HLO);
#   3. attention alone at the model's two shapes (temporal: 900 frames; spatial: 26
#      joints), batch 8, bf16, forward + backward, cuDNN's kernel against XLA's in one
#      pass (`benchmarks/attention.py`);
#   4. where the fastest row's device time goes: a profiler trace of 3 steps summed
#      per kernel and per kind of kernel (`benchmarks/profile_step.py`);
#   5. embedding throughput: the embed job's forward (`make_embed_fn`) over 9
#      ablations of full-length clips, bf16, the default attention
#      (`benchmarks/embed_ablations.py`);
#   6. the paper-scale probe: 3,414 participants × 1,024 features × 3,210 targets,
#      5 folds × 15 seeds, nested α (`benchmarks/probe.py`, its default sizes).
#
# Python: $GAIT_JAX_PYTHON if set, else the project venv (.venv, made by
# launch/venv.sh) when its JAX sees the device, else `python3`; the repository is
# put on PYTHONPATH, so no install step runs. Nothing is downloaded: a package the
# machine lacks travels as wheels in .whl/ (pip download here; see the device
# notes), which this script installs with --no-index into a temporary folder.
# Each step has its own time limit, and a failing step is reported and skipped.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DRY=0
for arg in "$@"; do
  case "$arg" in
    --cpu-dry-run) DRY=1 ;;
    -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

if [ "$DRY" = 1 ]; then
  export JAX_PLATFORMS=cpu
fi
export PYTHONUNBUFFERED=1
export WANDB_MODE=disabled

pick_python() {
  if [ -n "${GAIT_JAX_PYTHON:-}" ]; then echo "$GAIT_JAX_PYTHON"; return; fi
  local venv="$ROOT/.venv/bin/python"
  if [ -x "$venv" ]; then
    if [ "$DRY" = 1 ] || "$venv" -c 'import jax, sys; sys.exit(jax.default_backend() == "cpu")' \
        > /dev/null 2>&1; then
      echo "$venv"; return
    fi
  fi
  echo python3
}
PY="$(pick_python)"

# --- Packages, offline (on the device machine; a dry run uses $PY's own) -------------
if [ "$DRY" = 0 ] && ls "$ROOT"/.whl/*.whl > /dev/null 2>&1; then
  SITE="${TMPDIR:-/tmp}/gait_jax_site"
  rm -rf "$SITE"
  if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --target "$SITE" "$ROOT"/.whl/*.whl; then
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "warning: installing .whl/ with $PY failed; going on without it" >&2
  fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

echo "== environment"
"$PY" - <<'EOF' || { echo "JAX does not import with $PY" >&2; exit 1; }
import importlib, sys
import jax
print(f"python {sys.version.split()[0]} ({sys.executable}), jax {jax.__version__}, "
      f"backend {jax.default_backend()}, devices {[d.device_kind for d in jax.devices()]}")
import flax, optax
print(f"flax {flax.__version__}, optax {optax.__version__}")
missing = []
for name in ("flax", "optax", "orbax.checkpoint", "ml_collections", "grain", "numpy", "pandas",
             "scipy", "sklearn", "statsmodels", "pyarrow"):
  try:
    importlib.import_module(name)
  except Exception:  # pylint: disable=broad-except
    missing.append(name)
if missing:
  print(f"missing packages: {', '.join(missing)}; carry them as wheels in .whl/")
EOF
command -v nvidia-smi > /dev/null &&
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv,noheader
if [ "$DRY" = 0 ] && [ "$("$PY" -c 'import jax; print(jax.default_backend())')" = cpu ]; then
  echo "no accelerator visible to $PY; for a CPU check run with --cpu-dry-run" >&2
  exit 1
fi

status=0
step() {  # step NAME SECONDS COMMAND...: run with a time limit, report a failure, go on
  local name="$1" limit="$2"; shift 2
  echo
  echo "== $name"
  local t0=$SECONDS
  timeout --signal=INT --kill-after=10 "$limit" "$@"
  local rc=$?
  echo "-- $name: $((SECONDS - t0)) s, exit status $rc"
  [ "$rc" = 0 ] || status=1
}

if [ "$DRY" = 1 ]; then
  step "train step (dry run: smoke shape, bf16)" 120 \
    "$PY" benchmarks/train_step.py --shapes smoke --dtype bfloat16 --steps 1 --rounds 1 \
      --attention-impl ,xla/0
  step "attention alone (dry run)" 60 \
    "$PY" benchmarks/attention.py --frames 32 --clips 1 --rounds 1 --implementations xla \
      --blocks 0
  step "profile (dry run)" 60 \
    "$PY" benchmarks/profile_step.py --shapes smoke --steps 1 --top 5
  step "embedding throughput (dry run)" 60 \
    "$PY" benchmarks/embed_ablations.py --preset smoke --clips 2 --frames 32 --window 16 --reps 1
  step "probe (dry run)" 60 \
    "$PY" benchmarks/probe.py --participants 120 --features 16 --targets 40 --folds 3 \
      --seeds 2 --sklearn-targets 5 10
else
  step "train step: paper shape, batch 8, remat, bf16, two attentions" 150 \
    "$PY" benchmarks/train_step.py --shapes paper_b8 --dtype bfloat16 --steps 5 --rounds 2 \
      --attention-impl ,xla/0
  step "train step: paper shape, batch 8 without remat, 32 with it, bf16" 150 \
    "$PY" benchmarks/train_step.py --shapes paper_b8_noremat,paper_b32 --dtype bfloat16 \
      --steps 5 --rounds 2
  step "attention alone: paper shapes, batch 8, bf16, cuDNN and XLA in one pass" 90 \
    "$PY" benchmarks/attention.py --clips 8 --dtype bfloat16 --implementations cudnn,xla \
      --blocks 0 --rounds 3
  step "profile: paper shape, batch 8, no remat, bf16, per kernel" 90 \
    "$PY" benchmarks/profile_step.py --shapes paper_b8_noremat --steps 3 --top 15
  step "embedding throughput: paper model, 16 clips × 2 windows of 900 frames" 70 \
    "$PY" benchmarks/embed_ablations.py --preset paper --clips 16 --frames 1800 --window 900 \
      --reps 3 --dtype bfloat16
  step "probe at paper scale" 100 "$PY" benchmarks/probe.py
fi
exit $status
