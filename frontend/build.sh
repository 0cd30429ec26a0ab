#!/usr/bin/env bash
# Rebuild the vendored design-system assets (make frontend). Needs node and the npm registry;
# nothing at run time or in CI does: the built files are committed.
set -euo pipefail
cd "$(dirname "$0")"
npm install --no-audit --no-fund --silent
out=../src/brygga/web/static/govuk
mkdir -p "$out"
node_modules/.bin/sass --load-path=node_modules --no-source-map --style=compressed --quiet-deps \
  brygga.scss "$out/brygga-govuk.min.css"
cp node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.js "$out/govuk-frontend.min.js"
# LICENSE.txt beside the built files is kept by hand: the npm package ships no licence file.
echo "built $(du -sh "$out" | cut -f1) into $out (govuk-frontend $(node -p "require('./node_modules/govuk-frontend/package.json').version"))"
