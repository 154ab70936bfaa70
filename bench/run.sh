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
# Then the scale figures (bench_scale.c; BENCH_SCALE=0 skips them): SQLite and PostgreSQL
# hubs (a throwaway PostgreSQL from scripts/pg.sh, stopped at exit) and PouchDB (npm, into
# bench/node_modules); knobs BENCH_SCALE_RUNS, BENCH_SCALE_SALES, BENCH_FANIN_TILLS/_SALES/
# _THREADS, BENCH_PRODUCTS, BENCH_PG=0, BENCH_PG_SHARED_BUFFERS (default 512MB), BENCH_POUCH=0,
# BENCH_POUCH_RUNS, BENCH_SCALE_PARTS (e.g. catchup,pouch; default all) (bench/README.md).
# Between the two, the web UI's figures in Chromium (bench/ui_bench.js; BENCH_UI=0 skips them):
# BENCH_UI_SALES (timed Pay clicks, default 200), BENCH_UI_RSS_SALES (UI sales for the RSS
# figure, default 1000), BENCH_UI_LOADS (fresh first loads of /, default 20).
# Last, the eTIMS figures (issue 12; bench/bench_etims.c; BENCH_ETIMS=0 skips them): a real hub
# forwarding an outage's backlog to `duka sim etims`, and the push's added cost in-process (on
# PostgreSQL too when the scale part's PostgreSQL is up or can be started); knobs
# BENCH_ETIMS_SALES (default 5000), BENCH_ETIMS_SLOW_SALES (200), BENCH_ETIMS_LATENCIES
# (0,200), BENCH_ETIMS_IN_FLIGHT (1,16,32), BENCH_ETIMS_HOLD (s, 40), BENCH_ETIMS_BATCHES (20),
# BENCH_ETIMS_PARTS (forward,cost). BENCH_ONLY=etims runs that part alone and only prints it
# (bench/RESULTS.md is left as it is); it takes about 11 minutes.
# The first part takes about 4 minutes, the scale part about 5; BENCH_RECONNECT_RUNS=1 BENCH_IDLE_PENDING=10000
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
# ALERT_*, nor a hub's ETIMS_*) changes what is measured — the tills run with the defaults
# (duka-bench checks).
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
for v in $(compgen -e | grep -E '^(DUKA_|OFFLINE_QUEUE_|CONNECTIVITY_|QUEUE_|ALERT_|ETIMS_)' || true); do
  unset "$v"
done

DRAIN=()
if [ "${BENCH_DRAIN:-1}" = 0 ]; then DRAIN=(--no-drain); fi
ONLY="${BENCH_ONLY:-}"
case "$ONLY" in ""|etims) ;; *) echo "run.sh: BENCH_ONLY='$ONLY': only 'etims' is known" >&2; exit 2 ;; esac

SCRATCH="$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/duka-bench.XXXXXX")"
PGDIR=""
cleanup() {
  # The PostgreSQL of the scale figures is stopped whatever happened.
  if [ -n "$PGDIR" ]; then bash "$ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1 || true; fi
  rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A throwaway PostgreSQL 15 (scripts/pg.sh), stopped by the trap above whatever happens, for
# the scale and eTIMS parts; started once, by the first that needs it. Durable (fsync on, as
# the SQLite hub is) and with the shared buffers a database server would give it (the tests'
# cluster has fsync off and 32MB).
PG=()
PG_TRIED=0
PGBIN=${DUKA_PG_BIN:-/usr/lib/postgresql/15/bin}
start_pg() {
  [ "$PG_TRIED" = 1 ] && return 0
  PG_TRIED=1
  [ "${BENCH_PG:-1}" = 0 ] && return 0
  PGDIR="$SCRATCH/pg"
  local exports
  if exports=$(DUKA_PG_FSYNC=on DUKA_PG_SHARED_BUFFERS="${BENCH_PG_SHARED_BUFFERS:-512MB}" \
               bash "$ROOT/scripts/pg.sh" start "$PGDIR"); then
    eval "$exports"
    PG=(--pg-url "$DUKA_PG_URL" --pg-admin-url "$DUKA_PG_ADMIN_URL" --psql "$PGBIN/psql")
  else
    echo "run.sh: could not start PostgreSQL (scripts/pg.sh); figures on SQLite only" >&2
    PGDIR=""
  fi
}

# ---- the eTIMS figures (issue 12): bench/bench_etims.c; run last (or alone: BENCH_ONLY) ----
run_etims() {
  [ "${BENCH_ETIMS:-1}" = 0 ] && [ -z "$ONLY" ] && return 0
  start_pg
  local results=(--results "$ROOT/bench/RESULTS.md")
  [ -n "$ONLY" ] && results=()
  local dir="$SCRATCH/etims"
  mkdir -p "$dir"
  "$BUILD/duka-bench" etims --duka "$BUILD/duka" --dir "$dir" "${results[@]}" \
    --parts "${BENCH_ETIMS_PARTS:-forward,cost}" --sales "${BENCH_ETIMS_SALES:-5000}" \
    --slow-sales "${BENCH_ETIMS_SLOW_SALES:-200}" --latencies "${BENCH_ETIMS_LATENCIES:-0,200}" \
    --in-flight "${BENCH_ETIMS_IN_FLIGHT:-1,16,32}" --hold "${BENCH_ETIMS_HOLD:-40}" \
    --cost-batches "${BENCH_ETIMS_BATCHES:-20}" "${PG[@]}"
}
if [ -n "$ONLY" ]; then
  run_etims
  exit 0
fi

"$BUILD/duka-bench" --duka "$BUILD/duka" --dir "$SCRATCH" \
  --results "$ROOT/bench/RESULTS.md" \
  --sales "${BENCH_SALES:-2000}" --catchup "${BENCH_CATCHUP:-10000}" --runs "${BENCH_RUNS:-3}" \
  --reconnect-runs "${BENCH_RECONNECT_RUNS:-5}" --reconnect-sales "${BENCH_RECONNECT_SALES:-1000}" \
  --reconnect-idle "${BENCH_RECONNECT_IDLE:-20}" --idle-pending "${BENCH_IDLE_PENDING:-100000}" \
  --idle-settle "${BENCH_IDLE_SETTLE:-5}" --idle-window "${BENCH_IDLE_WINDOW:-20}" \
  "${DRAIN[@]}"

# ---- the web UI's figures (issue 11): Chromium + playwright-core, bench/ui_bench.js ----
# playwright-core comes from npm into tests/ui/node_modules (tests/ui/install.sh, the first
# time); the browser is Debian's chromium (scripts/deps.sh bench). Without them the table says
# n/a and why; a wrong result (a sale without its receipt) fails the bench.
if [ "${BENCH_UI:-1}" != 0 ]; then
  if ! command -v node >/dev/null 2>&1 || [ ! -x "${DUKA_CHROMIUM:-/usr/bin/chromium}" ]; then
    echo "run.sh: node or chromium not found; web UI figures n/a" >&2
    printf '\nWeb UI figures (issue 11): n/a (node or chromium not found; scripts/deps.sh bench)\n' \
      >>"$ROOT/bench/RESULTS.md"
  elif ! bash "$ROOT/tests/ui/install.sh"; then
    echo "run.sh: tests/ui/install.sh failed; web UI figures n/a" >&2
    printf '\nWeb UI figures (issue 11): n/a (npm could not install playwright-core)\n' \
      >>"$ROOT/bench/RESULTS.md"
  else
    node "$ROOT/bench/ui_bench.js" --duka "$BUILD/duka" --dir "$SCRATCH/ui" \
      --results "$ROOT/bench/RESULTS.md" --sales "${BENCH_UI_SALES:-200}" \
      --rss-sales "${BENCH_UI_RSS_SALES:-1000}" --loads "${BENCH_UI_LOADS:-20}"
  fi
fi

if [ "${BENCH_SCALE:-1}" = 0 ]; then
  run_etims
  exit 0
fi

# ---- the scale figures (issue 5): SQLite and PostgreSQL hubs, and PouchDB beside them ----

# PouchDB, the peer: installed with npm into bench/node_modules (gitignored) the first time.
# Any failure is reported in the table as "n/a (why)"; it never fails the bench.
POUCH=(--pouch-na "BENCH_POUCH=0")
if [ "${BENCH_POUCH:-1}" != 0 ]; then
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    POUCH=(--pouch-na "node/npm not found")
  elif [ ! -d "$ROOT/bench/node_modules/pouchdb" ] || [ ! -d "$ROOT/bench/node_modules/express-pouchdb" ]; then
    echo "run.sh: installing pouchdb and express-pouchdb with npm into bench/node_modules" >&2
    if (cd "$ROOT/bench" && timeout 600 npm install --no-audit --no-fund --no-save --loglevel=error \
          --prefix "$ROOT/bench" pouchdb@9 express-pouchdb@4 express@4 >"$SCRATCH/npm.log" 2>&1); then
      POUCH=(--node "$(command -v node)" --pouch-script "$ROOT/bench/pouchdb_bench.js")
    else
      why=$(grep -m1 -E 'ERR|error' "$SCRATCH/npm.log" | cut -c1-160)
      echo "run.sh: npm install failed: ${why:-see the npm log}; PouchDB figure n/a" >&2
      POUCH=(--pouch-na "npm install failed: ${why:-unknown error}")
    fi
  else
    POUCH=(--node "$(command -v node)" --pouch-script "$ROOT/bench/pouchdb_bench.js")
  fi
fi

start_pg

SCALE_DIR="$SCRATCH/scale"
mkdir -p "$SCALE_DIR"
NODE_PATH="$ROOT/bench/node_modules" "$BUILD/duka-bench" scale --duka "$BUILD/duka" \
  --dir "$SCALE_DIR" --results "$ROOT/bench/RESULTS.md" \
  --runs "${BENCH_SCALE_RUNS:-3}" --pouch-runs "${BENCH_POUCH_RUNS:-3}" \
  --catchup "${BENCH_SCALE_SALES:-100000}" \
  --devices "${BENCH_FANIN_TILLS:-1000}" --device-sales "${BENCH_FANIN_SALES:-100}" \
  --threads "${BENCH_FANIN_THREADS:-32}" --products "${BENCH_PRODUCTS:-100000}" \
  --parts "${BENCH_SCALE_PARTS:-catchup,fanin,catalog,pouch}" \
  "${PG[@]}" "${POUCH[@]}"

run_etims
