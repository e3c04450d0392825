#!/usr/bin/env bash
# Set everything up and run the whole test suite: ruff, then pytest (unit, database, browser).
# Database tests run on SQLite, and again on PostgreSQL when TEST_POSTGRES_URL is set, e.g.
#   TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test ./test.sh
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh --dev

if [ ! -x /usr/bin/chromium ]; then
  echo "==> installing Debian's chromium for the browser tests"
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo -n"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
fi

echo "==> ruff"
.venv/bin/ruff check .
echo "==> pytest"
# One test process per core (at most 4): each has its own databases, server and Chromium, and
# takes whole test files (--dist loadfile). FIELDAPP_TEST_WORKERS=0 runs them all in one process.
exec .venv/bin/python -m pytest --numprocesses="${FIELDAPP_TEST_WORKERS:-auto}" --maxprocesses=4 \
  --dist loadfile "$@"
