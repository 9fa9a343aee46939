#!/usr/bin/env bash
# N processes of one command on this machine, wired into one JAX job (see
# launch/local.py; --gpus-per-process G on a multi-GPU machine):
#   launch/local.sh --processes 2 --devices-per-process 4 -- \
#     python -m gait_jax.main --config ... --workdir ...
exec "${PYTHON:-python3}" "$(dirname "$0")/local.py" "$@"
