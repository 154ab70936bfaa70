#!/usr/bin/env bash
# run_with_pg.sh CMD [ARG...] — runs CMD against a throwaway PostgreSQL 15: starts one in a
# fresh temp dir (scripts/pg.sh), exports DUKA_PG_URL, DUKA_PG_ADMIN_URL, DUKA_PG_SUPER_URL and
# DUKA_PG_DIR, runs CMD, and always stops the server and removes the dir afterwards — on
# success, on failure, on SIGINT/SIGTERM, and (through a watchdog) even when this script is
# SIGKILLed by a test timeout. Exits with CMD's status; on failure prints the server log's tail.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$here")")
pg="$repo/scripts/pg.sh"
dir=$(mktemp -d "${TMPDIR:-/tmp}/duka-pg-XXXXXX")

stop_server() {
  bash "$pg" stop "$dir" >/dev/null 2>&1
  rm -rf "$dir"
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! exports=$(bash "$pg" start "$dir"); then
  echo "run_with_pg: could not start PostgreSQL in $dir" >&2
  exit 1
fi
eval "$exports"

# The watchdog: stops the server if this script dies without running its trap (SIGKILL).
# Its output goes nowhere, so it never holds the caller's pipes open.
parent=$$
(
  while kill -0 "$parent" 2>/dev/null; do sleep 1; done
  bash "$pg" stop "$dir"
  rm -rf "$dir"
) </dev/null >/dev/null 2>&1 &
disown

"$@"
status=$?
if [ $status -ne 0 ] && [ -f "$dir/server.log" ]; then
  echo "run_with_pg: '$*' exited $status; PostgreSQL's log ends with:" >&2
  tail -n 20 "$dir/server.log" >&2
fi
exit $status
