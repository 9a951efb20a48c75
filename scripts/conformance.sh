#!/usr/bin/env bash
# Runs the black-box conformance suite (../shared/conformance) against the demo app.
# shared/ is read-only and may ship without its node_modules, so the suite is copied
# to a scratch folder and its three dependencies are installed there.
# Usage: scripts/conformance.sh [--only NAME]...
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=${CONFORMANCE_DIR:-$root/../shared/conformance}
if [ ! -f "$src/run.mjs" ]; then
  echo "conformance suite not found at $src (set CONFORMANCE_DIR)" >&2
  exit 1
fi
work=$root/node_modules/.cache/conformance
rm -rf "$work"
mkdir -p "$work"
cp -R "$src"/. "$work"/
chmod -R u+w "$work"
if ! node -e "require.resolve('ws',{paths:['$work']});require.resolve('eventsource',{paths:['$work']})" 2>/dev/null; then
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
fi
# Build once here so that each server start in the suite is quick.
(cd "$root" && npm run build --silent)
exec node "$work/run.mjs" --checkout "$root" --start "node dist/apps/demo-chat/src/main.js" "$@"
