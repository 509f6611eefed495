#!/usr/bin/env bash
# npm run bench: Berth against CNCF Distribution on this machine, side by side.
#
# Starts a fresh Berth (and a fresh Distribution when Debian's docker-registry
# is installed) on loopback, runs the shared load client's compare.sh over
# every scenario, and prints its table of figures and B/A ratios. This is a
# benchmark, not a test: it prints figures and never fails on a slow machine.
#
#   npm run bench                          # every scenario, 2 rounds
#   ROUNDS=3 npm run bench
#   SCENARIOS=manifest_get_rps_c32,pull_MBps_c8 npm run bench
#   BERTH_ONLY=1 npm run bench             # Berth alone, without Distribution
#
# Needs Go (Debian's golang-go) to build the load client, found in
# ../shared/bench (or BENCH_SRC). Everything it writes goes under bench/tmp/
# and bench/results/, which git ignores.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SRC=${BENCH_SRC:-$ROOT/../shared/bench}
WORK=$HERE/tmp
BERTH_PORT=${BERTH_PORT:-5032}
DIST_PORT=${DIST_PORT:-5031}

command -v go >/dev/null || { echo "bench: Go is needed to build the load client (apt-get install golang-go)" >&2; exit 1; }
[ -d "$SRC" ] || { echo "bench: load client not found at $SRC (set BENCH_SRC)" >&2; exit 1; }

# The shared folder is read-only: build the client in a writable copy.
rm -rf "$WORK/client" "$WORK/berth-data"
mkdir -p "$WORK" "$HERE/results"
cp -r "$SRC" "$WORK/client"
chmod -R u+w "$WORK/client"
"$WORK/client/build.sh" >/dev/null

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "${dist_started:-}" ]; then "$WORK/client/distribution.sh" stop "$DIST_PORT" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK/berth-data"
}
trap cleanup EXIT

wait_for() {
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$1/v2/" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench: $1 did not answer" >&2
  return 1
}

# Berth runs as `npm start` runs it (the same V8 flag), with its defaults.
REGISTRY_LOG_LEVEL=warn REGISTRY_LOG_ACCESSLOG_DISABLED=true \
  REGISTRY_HTTP_ADDR=127.0.0.1:$BERTH_PORT \
  REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$WORK/berth-data" \
  node --max-semi-space-size=4 --optimize-for-size "$ROOT/dist/src/cli/main.js" serve >"$WORK/berth.log" 2>&1 &
berth_pid=$!
pids+=("$berth_pid")
wait_for "http://127.0.0.1:$BERTH_PORT"
echo "Berth: pid $berth_pid on 127.0.0.1:$BERTH_PORT ($(node "$ROOT/dist/src/cli/main.js" version))"

if [ -z "${BERTH_ONLY:-}" ] && command -v docker-registry >/dev/null; then
  dist_pid=$("$WORK/client/distribution.sh" start "$DIST_PORT")
  dist_started=1
  echo "Distribution: pid $dist_pid on 127.0.0.1:$DIST_PORT ($(docker-registry --version))"
  OUT="$HERE/results/compare-$(date +%Y%m%d-%H%M%S)" \
    "$WORK/client/compare.sh" "http://127.0.0.1:$DIST_PORT" "$dist_pid" \
    "http://127.0.0.1:$BERTH_PORT" "$berth_pid"
else
  echo "Distribution not measured (docker-registry not installed, or BERTH_ONLY set)"
  "$WORK/client/bench" "http://127.0.0.1:$BERTH_PORT" --pid "$berth_pid" \
    ${SCENARIOS:+--only "$SCENARIOS"} | tee "$HERE/results/berth-$(date +%Y%m%d-%H%M%S).txt"
fi
