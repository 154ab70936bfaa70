#!/usr/bin/env bash
# tests/tsan.sh BUILD_DIR — the end-to-end tests that exercise the till's sync worker, its
# API threads and the hub's thread pool, with every duka process built with ThreadSanitizer.
# The harness fails a test on any "WARNING: ThreadSanitizer" in a process's log.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-build-tsan}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
export DUKA_BIN="$BUILD/duka"
export TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1"
failed=0
# test_concurrent_duplicates: the same batch on three connections at once, through the hub's
# thread pool and store mutex (fewer rounds: TSan runs it about 3x slower).
export DUKA_E2E_DUP_ROUNDS=15
for t in test_worker test_retry_after test_concurrent_writers test_lost_reply \
         test_concurrent_duplicates test_push_pipeline; do
  if out=$(python3 "$ROOT/tests/e2e/$t.py" 2>&1); then
    echo "tsan: $t ok"
  else
    echo "$out" | tail -30
    echo "tsan: $t FAILED"
    failed=1
  fi
done
# The hub's eTIMS forwarder: its worker threads and slots (a subset: the whole file takes
# minutes under TSan).
if out=$(python3 "$ROOT/tests/e2e/test_etims_forwarding.py" twenty_sales_signed_after_a_sync \
         timeout_after_accept_is_asked_not_resent hub_killed_with_invoices_in_flight 2>&1); then
  echo "tsan: test_etims_forwarding (3 tests) ok"
else
  echo "$out" | tail -30
  echo "tsan: test_etims_forwarding FAILED"
  failed=1
fi
exit $failed
