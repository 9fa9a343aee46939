# Sourced by the launch scripts: creates or reuses the project's virtual environment
# ($GAIT_JAX_VENV, default .venv) and installs the project with the extras given in
# $GAIT_JAX_EXTRAS, re-installing only when pyproject.toml or the extras change.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GAIT_JAX_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
EXTRAS="${GAIT_JAX_EXTRAS:-}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "gait_jax needs Python >= 3.11; $PYTHON is $("$PYTHON" --version 2>&1)." >&2
    echo "Set PYTHON=/path/to/python3.11 and run again." >&2
    exit 1
  }
  echo "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
want="$(sha256sum < "$ROOT/pyproject.toml" | cut -c1-16)"
stamp="$VENV/.gait_jax-install${EXTRAS:+-$EXTRAS}"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing gait_jax${EXTRAS:+[$EXTRAS]} into $VENV (first run: a few minutes)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT${EXTRAS:+[$EXTRAS]}"
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
