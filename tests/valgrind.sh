#!/usr/bin/env bash
# tests/valgrind.sh BUILD_DIR — memcheck (errors and leaks) over every unit test binary, then
# one end-to-end test with every duka process under valgrind (tests/valgrind-duka.sh): a lost
# reply after the hub committed, which exercises till, hub, sync and the outbox end to end.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
command -v valgrind >/dev/null || { echo "valgrind: not installed (apt-get install valgrind)"; exit 1; }
failed=0
for t in "$BUILD"/test_*; do
  [ -x "$t" ] || continue
  if valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
       "$t" >/tmp/duka-valgrind.$$ 2>&1; then
    echo "valgrind: $(basename "$t") ok"
  else
    tail -40 /tmp/duka-valgrind.$$
    echo "valgrind: $(basename "$t") FAILED"
    failed=1
  fi
done
# The power-loss loop at a small size (valgrind is ~30x slower) and a seed of the simulator;
# with VALGRIND_FULL=1 (make valgrind) the storage-fault loops too (a minute more).
while read -r name env; do
  [ "$name" = test_storage_faults ] && [ -z "${VALGRIND_FULL:-}" ] && continue
  t="$BUILD/tests/storage/$name" args=()
  [ "$name" = duka-sim ] && t="$BUILD/duka-sim" args=(--seed 1 --seeds 1 --commands 150)
  [ -x "$t" ] || continue
  if env $env valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
       "$t" "${args[@]}" >/tmp/duka-valgrind.$$ 2>&1; then
    echo "valgrind: $name ok"
  else
    tail -40 /tmp/duka-valgrind.$$
    echo "valgrind: $name FAILED"
    failed=1
  fi
done <<'LIST'
test_power_loss DUKA_STORAGE_SALES=2 DUKA_STORAGE_BATCHES=1 DUKA_STORAGE_BATCH_SIZE=2
test_storage_faults DUKA_FAULT_SALES=2 DUKA_FAULT_BATCHES=1 DUKA_FAULT_BATCH_SIZE=2 DUKA_FAULT_STRIDE=64
duka-sim DUKA_SIM=1
LIST
rm -f /tmp/duka-valgrind.$$
export VALGRIND_DUKA_REAL_BIN="$BUILD/duka"
export DUKA_BIN="$ROOT/tests/valgrind-duka.sh"
export DUKA_E2E_SLOWDOWN=4
if out=$(python3 "$ROOT/tests/e2e/test_lost_reply.py" 2>&1); then
  echo "valgrind: e2e test_lost_reply ok"
else
  echo "$out" | tail -30
  echo "valgrind: e2e test_lost_reply FAILED"
  failed=1
fi
exit $failed
