#!/usr/bin/env bash
# Copy the front-end libraries the pages load from node_modules (installed from the npm
# registry by `npm ci`) into the git-ignored static/vendor folder. No bundler: each is one file.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p static/vendor
cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js
cp node_modules/idb/build/index.js static/vendor/idb.js
cp node_modules/signature_pad/dist/signature_pad.js static/vendor/signature_pad.js
cp node_modules/jsqr/dist/jsQR.js static/vendor/jsQR.js
# Leaflet (the dashboard's map; desktop only, so not in the phone's precache): the ES module,
# its stylesheet and the images the stylesheet names (relative URLs: keep them side by side).
mkdir -p static/vendor/leaflet
cp -R node_modules/leaflet/dist/leaflet-src.esm.js node_modules/leaflet/dist/leaflet.css \
  node_modules/leaflet/dist/images static/vendor/leaflet/
