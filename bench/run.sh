#!/usr/bin/env bash
# bench/run.sh BUILD_DIR — builds duka and duka-bench, then runs the benchmark in a scratch
# folder (removed afterwards) and writes bench/RESULTS.md. Figures only: the exit code is
# non-zero when something is wrong (a build error, a lost sale), never because it was slow.
#
# Knobs (environment): BENCH_SALES (latency samples per side, default 2000), BENCH_CATCHUP
# (sales per catch-up run, default 10000), BENCH_RUNS (catch-up runs, default 3),
# BENCH_TMPDIR (where the scratch folder goes; default $TMPDIR or /tmp — put it on the disk
# you want to measure).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac

# CMake only adds duka-bench when bench/bench_main.c exists at configure time: configure
# again (cheap) so a fresh checkout or an old build folder picks it up.
cmake -S "$ROOT" -B "$BUILD" >/dev/null
cmake --build "$BUILD" -j "${JOBS:-2}" --target duka duka-bench

# Everything stays on 127.0.0.1: no proxy may see loopback traffic, and no stray DUKA_*
# configuration of the caller changes what is measured.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
for v in $(compgen -e | grep '^DUKA_' || true); do unset "$v"; done

SCRATCH="$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/duka-bench.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT

"$BUILD/duka-bench" --duka "$BUILD/duka" --dir "$SCRATCH" \
  --results "$ROOT/bench/RESULTS.md" \
  --sales "${BENCH_SALES:-2000}" --catchup "${BENCH_CATCHUP:-10000}" --runs "${BENCH_RUNS:-3}"
