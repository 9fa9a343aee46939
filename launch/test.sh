#!/usr/bin/env bash
# The test suite (README command 2). Extra arguments go to pytest.
GAIT_JAX_EXTRAS=dev
source "$(dirname "$0")/venv.sh"
# --dist loadfile: a file's tests share one worker, so module fixtures (a pipeline
# run, a pretrained checkpoint) are built once.
exec python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadfile -q "$@"
