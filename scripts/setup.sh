#!/usr/bin/env bash
# Install everything fieldapp needs into this folder: a Python virtualenv, the Python packages,
# the front-end packages from the npm registry, and the compiled translations.
# Usage: scripts/setup.sh [--dev]   (--dev adds the test and lint tools)
set -euo pipefail
cd "$(dirname "$0")/.."

python_bin="${PYTHON:-}"
if [ -z "$python_bin" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python_bin=$candidate; break; fi
  done
fi
[ -n "$python_bin" ] || { echo "fieldapp needs Python 3.11 (python3.11 or python3)." >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $python_bin"
  "$python_bin" -m venv .venv
fi
echo "==> Python packages (hash-pinned: requirements*.lock, made by scripts/lock.sh)"
lock=requirements.lock
[ "${1:-}" = "--dev" ] && lock=requirements-dev.lock
.venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r "$lock"

echo "==> front-end packages (npm registry)"
command -v npm >/dev/null 2>&1 || { echo "fieldapp needs Node.js and npm (apt-get install nodejs npm)." >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error
scripts/vendor.sh

echo "==> translations"
.venv/bin/pybabel compile -d translations
