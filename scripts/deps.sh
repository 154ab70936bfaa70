#!/usr/bin/env bash
# Installs the Debian packages duka needs to build and test, and only those that are missing:
# a library counts as present when pkg-config finds it, a tool when it is on PATH.
# Safe to run again and again; does nothing on a machine that has everything.
set -euo pipefail
# `deps.sh fuzz` (make fuzz) also needs clang with libFuzzer; `make test` never does.
want_fuzz=false
[ "${1:-}" = fuzz ] && want_fuzz=true

need=()
# pkg-config module  -> Debian package
declare -A libs=(
  [sqlite3]=libsqlite3-dev
  [libmicrohttpd]=libmicrohttpd-dev
  [libcurl]=libcurl4-openssl-dev
  [jansson]=libjansson-dev
  [libsodium]=libsodium-dev
  [cmocka]=libcmocka-dev
  [libpq]=libpq-dev
)
# command -> Debian package
declare -A tools=(
  [pkg-config]=pkg-config
  [cmake]=cmake
  [make]=make
  [cc]=gcc
  [python3]=python3
  [valgrind]=valgrind
  [openssl]=openssl
)

for t in "${!tools[@]}"; do
  command -v "$t" >/dev/null 2>&1 || need+=("${tools[$t]}")
done
if command -v pkg-config >/dev/null 2>&1; then
  for m in "${!libs[@]}"; do
    pkg-config --exists "$m" 2>/dev/null || need+=("${libs[$m]}")
  done
else
  need+=("${libs[@]}")
fi

# libFuzzer: clang on PATH that links a tiny -fsanitize=fuzzer program (Debian 12's clang
# needs libclang-rt-14-dev for that).
fuzzer_works() {
  command -v clang >/dev/null 2>&1 || return 1
  local dir
  dir=$(mktemp -d)
  printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
    >"$dir/t.c"
  local ok=1
  clang -fsanitize=fuzzer,address,undefined "$dir/t.c" -o "$dir/t" >/dev/null 2>&1 && ok=0
  rm -rf "$dir"
  return $ok
}
# PostgreSQL 15's server for the tests of the hub on PostgreSQL (scripts/pg.sh runs a throwaway
# one): its binaries are not on PATH, so look where Debian puts them. psql comes with it.
if [ ! -x /usr/lib/postgresql/15/bin/initdb ] || [ ! -x /usr/lib/postgresql/15/bin/psql ]; then
  need+=(postgresql-15)
fi
# nginx for the test of several hubs behind it (tests/pg/test_pg_nginx.py, deploy/nginx).
if [ ! -x /usr/sbin/nginx ]; then
  need+=(nginx-light)
fi

if $want_fuzz && ! fuzzer_works; then
  need+=(clang libclang-rt-14-dev)
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing missing Debian packages: ${need[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: not root; install these yourself: apt-get install ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
