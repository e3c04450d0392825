#!/usr/bin/env bash
# Regenerate the hash-pinned lock files from the top-level pins, after editing
# requirements.txt or requirements-dev.txt:
#   requirements.lock      what production installs (requirements.txt and everything under it)
#   requirements-dev.lock  the same versions plus the test and lint tools (requirements-dev.txt)
# Every package, direct or not, is pinned to one version and the SHA-256 of each of its files on
# the registry, so an install that gets other bytes fails (pip --require-hashes).
# Needs the package registry; takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=$(mktemp -d)
dev_input=.lock-dev.in
trap 'rm -rf "$tools" "$dev_input"' EXIT
"${PYTHON:-python3.11}" -m venv "$tools"
"$tools/bin/pip" install --quiet --disable-pip-version-check pip-tools==7.6.2

compile=("$tools/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras
  --no-emit-index-url --no-emit-find-links)
"${compile[@]}" --output-file requirements.lock requirements.txt
# The dev lock takes the production lock as a constraint, so tests run the versions that ship.
printf -- '-r requirements.txt\n-r requirements-dev.txt\n-c requirements.lock\n' > "$dev_input"
"${compile[@]}" --output-file requirements-dev.lock "$dev_input"
echo "Wrote requirements.lock and requirements-dev.lock; run ./test.sh, then commit them."
