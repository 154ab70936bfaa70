#!/usr/bin/env bash
# bench/run.sh BUILD_DIR — builds duka and duka-bench, then runs the benchmark in a scratch
# folder (removed afterwards) and writes bench/RESULTS.md. Figures only: the exit code is
# non-zero when something is wrong (a build error, a lost sale), never because it was slow.
#
# Knobs (environment): BENCH_SALES (latency samples per side, default 2000), BENCH_CATCHUP
# (sales per catch-up run, default 10000), BENCH_RUNS (catch-up runs, default 3),
# BENCH_RECONNECT_RUNS (hub comes back to a serving till, default 5; 0 skips),
# BENCH_RECONNECT_SALES (default 1000), BENCH_RECONNECT_IDLE (s with the hub down, default 20),
# BENCH_IDLE_PENDING (queue of the idle measurement, default 100000; 0 skips),
# BENCH_IDLE_SETTLE / BENCH_IDLE_WINDOW (s, default 5 / 20), BENCH_DRAIN (1: drain that queue
# through the worker afterwards, default; 0: skip), BENCH_TMPDIR (where the scratch folder
# goes; default $TMPDIR or /tmp — put it on the disk you want to measure).
# The whole run takes about 4 minutes; BENCH_RECONNECT_RUNS=1 BENCH_IDLE_PENDING=10000
# BENCH_RUNS=1 brings it under one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac

# CMake only adds duka-bench when bench/bench_main.c exists at configure time: configure
# again (cheap) so a fresh checkout or an old build folder picks it up.
cmake -S "$ROOT" -B "$BUILD" >/dev/null
cmake --build "$BUILD" -j "${JOBS:-2}" --target duka duka-bench

# Everything stays on 127.0.0.1: no proxy may see loopback traffic, and no stray DUKA_*
# configuration of the caller (nor a till setting: OFFLINE_QUEUE_*, CONNECTIVITY_*, QUEUE_*,
# ALERT_*) changes what is measured — the tills run with the defaults (duka-bench checks).
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
for v in $(compgen -e | grep -E '^(DUKA_|OFFLINE_QUEUE_|CONNECTIVITY_|QUEUE_|ALERT_)' || true); do
  unset "$v"
done

DRAIN=()
if [ "${BENCH_DRAIN:-1}" = 0 ]; then DRAIN=(--no-drain); fi

SCRATCH="$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/duka-bench.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT

"$BUILD/duka-bench" --duka "$BUILD/duka" --dir "$SCRATCH" \
  --results "$ROOT/bench/RESULTS.md" \
  --sales "${BENCH_SALES:-2000}" --catchup "${BENCH_CATCHUP:-10000}" --runs "${BENCH_RUNS:-3}" \
  --reconnect-runs "${BENCH_RECONNECT_RUNS:-5}" --reconnect-sales "${BENCH_RECONNECT_SALES:-1000}" \
  --reconnect-idle "${BENCH_RECONNECT_IDLE:-20}" --idle-pending "${BENCH_IDLE_PENDING:-100000}" \
  --idle-settle "${BENCH_IDLE_SETTLE:-5}" --idle-window "${BENCH_IDLE_WINDOW:-20}" \
  "${DRAIN[@]}"
