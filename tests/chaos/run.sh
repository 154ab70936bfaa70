#!/usr/bin/env bash
# The two variants of the chaos harness (tests/chaos/README.md):
#   tests/chaos/run.sh short [BUILD_DIR]   >= 1,000 kill/fault events, under 2 minutes (make test)
#   tests/chaos/run.sh long  [BUILD_DIR]   >= 20,000 events, about 15 minutes (make chaos)
# BUILD_DIR (default build) holds duka and duka-check. Environment: SEED (default random,
# printed), EVENTS (overrides the variant's count), TILLS, CHAOS_ARGS (more chaos.py options).
# eTIMS (the simulator, its faults, the invoice checks) is on; CHAOS_ARGS=--no-etims turns it off.
# Exit 0 only when the run passed; a failing run prints the command that reruns its seed and
# keeps its folder.
set -euo pipefail
variant=${1:-}
build=${2:-build}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case "$variant" in
short) events=${EVENTS:-1000}; tills=${TILLS:-3}; bounds=(--max-seconds 240 --drain-seconds 60 --etims-drain-seconds 90) ;;
long) events=${EVENTS:-20000}; tills=${TILLS:-5}; bounds=(--max-seconds 3600 --drain-seconds 120 --etims-drain-seconds 900) ;;
*) echo "usage: $0 short|long [BUILD_DIR]" >&2; exit 2 ;;
esac
if [ ! -x "$build/duka" ] || [ ! -x "$build/duka-check" ]; then
  echo "chaos: $build/duka and $build/duka-check must be built first (make chaos)" >&2
  exit 2
fi
args=(--duka "$build/duka" --check "$build/duka-check" --events "$events" --tills "$tills"
      "${bounds[@]}")
if [ -n "${SEED:-}" ]; then args+=(--seed "$SEED"); fi
# shellcheck disable=SC2206 # CHAOS_ARGS is split on purpose
if [ -n "${CHAOS_ARGS:-}" ]; then args+=(${CHAOS_ARGS}); fi
echo "chaos ($variant): python3 tests/chaos/chaos.py ${args[*]}"
exec python3 "$here/chaos.py" "${args[@]}"
