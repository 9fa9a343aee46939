#!/usr/bin/env bash
# The test suite (README command 2). Extra arguments go to pytest.
GAIT_JAX_EXTRAS=dev
source "$(dirname "$0")/venv.sh"
exec python -m pytest -n "${PYTEST_WORKERS:-2}" -q "$@"
