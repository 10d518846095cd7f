#!/usr/bin/env bash
# Create ./.venv with Python >= 3.12 and install Drift with its dev extras (LeRobot, torch, ORT).
# Finds the interpreter itself: python3.12 / python3.13 / python3 on PATH, then pyenv.
# Re-running is cheap: nothing is reinstalled unless pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DRIFT_VENV:-.venv}
STAMP="$VENV/.drift-installed"

py_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; }

find_python() {
  for cand in python3.12 python3.13 python3; do
    if command -v "$cand" >/dev/null 2>&1 && py_ok "$(command -v "$cand")"; then
      command -v "$cand"; return 0
    fi
  done
  # pyenv: oldest first (LeRobot 0.6 is developed and tested on 3.12).
  if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9])(\.|$)' | sort -V); do
      local p; p="$(pyenv root)/versions/$v/bin/python3"
      if [ -x "$p" ] && py_ok "$p"; then echo "$p"; return 0; fi
    done
  fi
  return 1
}

if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ]; then
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  if ! PY=$(find_python); then
    echo "error: Drift needs Python >= 3.12 (LeRobot 0.6 requires it), and none was found on PATH or in pyenv." >&2
    echo "       Install one (e.g. 'pyenv install 3.12' or your OS package python3.12) and re-run." >&2
    exit 1
  fi
  echo "setup: creating $VENV with $PY ($("$PY" --version))"
  "$PY" -m venv "$VENV"
fi

echo "setup: installing Drift and its dependencies into $VENV (LeRobot + torch: a few GB the first time)"
"$VENV/bin/python" -m pip install -q --upgrade pip uv
VIRTUAL_ENV="$PWD/$VENV" "$VENV/bin/uv" pip install -q -e ".[dev]"
touch "$STAMP"
echo "setup: done"
