#!/usr/bin/env bash
# bench/push_ab.sh [BUILD_DIR] [BASE_REF] — the push's cost now against the push at BASE_REF
# (default 05a4824, the last commit before a push built and enqueued each sale's eTIMS
# invoice), in-process, the same 500-sale bodies on fresh SQLite hubs, alternating A and B
# for BENCH_AB_ROUNDS rounds (default 6) of BENCH_AB_BATCHES batches (default 20). Not part
# of `make bench`: it builds BASE_REF (git archive into a scratch folder, about 2 minutes on
# 2 cores). Prints the median us/sale of each round and the ratio of the medians. Figures
# only: it fails only when something does not build or run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
REF="${2:-05a4824}"
ROUNDS="${BENCH_AB_ROUNDS:-6}"
BATCHES="${BENCH_AB_BATCHES:-20}"
JOBS="${JOBS:-2}"

for v in $(compgen -e | grep -E '^(DUKA_|ETIMS_)' || true); do unset "$v"; done
SCRATCH="$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/duka-push-ab.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT

cmake -S "$ROOT" -B "$BUILD" >/dev/null
cmake --build "$BUILD" -j "$JOBS" --target duka dukacore >/dev/null
echo "push_ab: building $REF ($(git -C "$ROOT" log -1 --format=%s "$REF"))" >&2
mkdir -p "$SCRATCH/base"
git -C "$ROOT" archive "$REF" | tar -x -C "$SCRATCH/base"
cmake -S "$SCRATCH/base" -B "$SCRATCH/base/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$SCRATCH/base/build" -j "$JOBS" --target duka dukacore >/dev/null

LIBS=$(pkg-config --libs jansson sqlite3 libsodium libcurl libmicrohttpd libpq)
CC=${CC:-cc}
CFLAGS=(-O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE) # as CMakeLists.txt
# shellcheck disable=SC2086
$CC "${CFLAGS[@]}" -DPUSH_AB_GEN -I "$ROOT/src" -I "$ROOT/bench" "$ROOT/bench/push_ab.c" \
  "$ROOT/bench/bench_common.c" -o "$SCRATCH/ab-now" "$BUILD/libdukacore.a" $LIBS -lpthread -lm
# shellcheck disable=SC2086
$CC "${CFLAGS[@]}" -I "$SCRATCH/base/src" "$ROOT/bench/push_ab.c" -o "$SCRATCH/ab-base" \
  "$SCRATCH/base/build/libdukacore.a" $LIBS -lpthread -lm
"$SCRATCH/ab-now" gen "$SCRATCH/bodies.jsonl" "$BATCHES" "$SCRATCH/products.csv"

json_get() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
now=() base=()
for round in $(seq 1 "$ROUNDS"); do
  for side in base now; do
    if [ "$side" = base ]; then duka="$SCRATCH/base/build/duka"; else duka="$BUILD/duka"; fi
    hub="$SCRATCH/hub-$side"
    rm -rf "$hub"
    mkdir "$hub"
    biz=$("$duka" hub init --db "$hub/hub.db" --business "Bench Duka" --json 2>/dev/null | json_get business_id)
    "$duka" product import --db "$hub/hub.db" --business "$biz" --json "$SCRATCH/products.csv" >/dev/null 2>&1
    tok=$("$duka" device add --db "$hub/hub.db" --business "$biz" --terminal T01 --json 2>/dev/null | json_get token)
    sync
    us=$("$SCRATCH/ab-$side" apply "$hub/hub.db" "$tok" "$SCRATCH/bodies.jsonl" 2>/dev/null)
    if [ "$side" = base ]; then base+=("$us"); else now+=("$us"); fi
    echo "push_ab: round $round $side: $us us/sale" >&2
  done
done
python3 - "$REF" "${base[*]}" "${now[*]}" "$BATCHES" <<'PY'
import statistics, sys
ref, base, now, batches = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()], int(sys.argv[4])
b, n = statistics.median(base), statistics.median(now)
print(f"push of {batches} x 500 sales in-process, SQLite (us/sale, median of {len(base)} rounds)")
print(f"  at {ref} (no eTIMS invoice): {b:.1f} ({min(base):.1f}..{max(base):.1f})")
print(f"  now:                       {n:.1f} ({min(now):.1f}..{max(now):.1f})")
print(f"  added per sale: {n - b:.1f} us = {100 * (n - b) / b:.0f} % (target <= 10 %)")
PY
