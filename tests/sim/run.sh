#!/usr/bin/env bash
# Runs the deterministic simulator over SEEDS seeds from FIRST, split across JOBS processes
# (the seeds are independent; each process prints its own summary), then one combined line.
#   tests/sim/run.sh BUILD_DIR FIRST SEEDS [COMMANDS] [JOBS]
set -euo pipefail
build=$1 first=$2 seeds=$3 commands=${4:-500} jobs=${5:-2}
sim="$build/duka-sim"
[ -x "$sim" ] || { echo "sim: $sim not built" >&2; exit 1; }
(( jobs > seeds )) && jobs=$seeds
per=$(( (seeds + jobs - 1) / jobs ))
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
pids=()
start=$first
for (( j = 0; j < jobs; j++ )); do
  n=$(( seeds - j * per < per ? seeds - j * per : per ))
  (( n <= 0 )) && break
  twice=(); (( j == 0 )) && twice=(--twice)
  "$sim" --seed "$start" --seeds "$n" --commands "$commands" "${twice[@]}" >"$logs/$j.log" 2>&1 &
  pids+=($!)
  start=$(( start + n ))
done
failed=0
for (( j = 0; j < ${#pids[@]}; j++ )); do
  wait "${pids[$j]}" || failed=1
  cat "$logs/$j.log"
done
# One line over all processes: seeds, commands and the checker's totals.
awk -v seeds="$seeds" -v cmds="$commands" '
  /^sim: acknowledged=/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); t[kv[1]] += kv[2] } }
  /^sim: events:/ { for (i = 3; i <= NF; i++) { split($i, kv, "="); ev += kv[2] } }
  END { printf "sim: total %d seeds x %d commands = %d commands, %d events; acknowledged=%d hub_sales=%d lost=%d duplicated=%d unexpected=%d\n",
        seeds, cmds, seeds * cmds, ev, t["acknowledged"], t["hub_sales"], t["lost"], t["duplicated"], t["unexpected"] }
' "$logs"/*.log
if (( failed )); then echo "sim: FAILED (see the seed above)"; exit 1; fi
echo "sim: ok"
