#!/usr/bin/env bash
# Set everything up and serve fieldapp on SQLite with demo data at http://127.0.0.1:5000
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
export FLASK_APP=wsgi
echo "==> database"
.venv/bin/flask db upgrade heads
.venv/bin/flask seed-demo
.venv/bin/flask vapid-keys  # Web Push key pair in instance/, kept once made
echo "==> serving on http://127.0.0.1:${PORT:-5000}  (Ctrl+C to stop)"
exec .venv/bin/flask run --host 127.0.0.1 --port "${PORT:-5000}"
