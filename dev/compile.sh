#!/usr/bin/env bash
# deno task compile: builds dist/monitor, one self-contained binary with the migrations inside.
# `deno compile` downloads its runtime (denort) from dl.deno.land; where that host is unreachable, point
# DENORT_BIN at a denort binary of the same Deno version.
# Workers are not in main.ts's import graph: each worker module is named with --include (WORKERS below;
# tests/compile_test.ts keeps the list equal to the workers src/ starts).
set -euo pipefail
cd "$(dirname "$0")/.."
source dev/permissions.sh
WORKERS=(src/check/pattern_worker.ts src/check/publisher_worker.ts)
mkdir -p dist
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! deno compile "${MONITOR_PERMISSIONS[@]}" --include sql "${WORKERS[@]/#/--include=}" --output dist/monitor main.ts >"$log" 2>&1; then
  if grep -qiE "dl\.deno\.land|denort|error sending request|dns error" "$log"; then
    echo "compile: cannot download the Deno runtime (denort) from dl.deno.land; set DENORT_BIN to a denort binary for deno $(deno --version | head -n1 | cut -d' ' -f2) and run again" >&2
  else
    cat "$log" >&2
  fi
  exit 1
fi
cat "$log"
echo "compile: built dist/monitor ($(du -h dist/monitor | cut -f1)); try: dist/monitor --help"
