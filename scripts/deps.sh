#!/usr/bin/env bash
# scripts/deps.sh [build|test|bench|fuzz] [--dry-run]
#
# Installs the Debian packages a make target needs, and only those that are missing: a library
# counts as present when pkg-config finds it, a tool when it is on PATH. Safe to run again and
# again; does nothing on a machine that has everything.
#
#   build  (the default; `make`, `make duka`, `make demo`, `make sim`) what building duka
#          takes: a C compiler, make, CMake, pkg-config and the libraries duka links (SQLite,
#          libmicrohttpd, libcurl, jansson, libsodium, libpq, libqrencode: the eTIMS QR code
#          of a receipt; at run time Debian's libqrencode4). A shop's machine needs no more.
#   test   (`make test`, `make valgrind`, `make chaos`, `make asan`, `make tsan`) build, plus
#          cmocka (unit tests), Python 3 (end-to-end tests), valgrind, openssl (test
#          certificates), curl (the README tour), PostgreSQL 15 (the hub on PostgreSQL),
#          nginx-light (several hubs behind it), and Node.js, npm and Chromium for the browser
#          tests of the web UI (tests/ui; playwright-core itself comes from npm into
#          tests/ui/node_modules, by tests/ui/install.sh: never a browser download), and
#          zbarimg (zbar-tools) that reads the receipts' QR codes back in the tests.
#   bench  (`make bench`) build, plus PostgreSQL 15 and Python 3 for the PostgreSQL figures,
#          and Node.js, npm and Chromium for the web UI's figures (bench/ui_bench.js).
#   fuzz   (`make fuzz`) build, plus clang with libFuzzer.
#
# --dry-run prints the packages it would install, one a line, and installs nothing.
# DUKA_DEPS_ROOT (for tests of this script) is put before the absolute paths it checks for
# PostgreSQL's and nginx's binaries, which are not on PATH.
set -euo pipefail

mode=build dry_run=false
for arg in "$@"; do
  case "$arg" in
    build | test | bench | fuzz) mode=$arg ;;
    --dry-run) dry_run=true ;;
    *)
      echo "deps: unknown argument '$arg' (usage: scripts/deps.sh [build|test|bench|fuzz] [--dry-run])" >&2
      exit 2
      ;;
  esac
done
root="${DUKA_DEPS_ROOT:-}"

# pkg-config module=Debian package and command=Debian package, per mode, in a fixed order (so
# that --dry-run's output and apt-get's command line are stable). No command but bash's own is
# used before installing: the machine may have nothing yet.
libs=(sqlite3=libsqlite3-dev libmicrohttpd=libmicrohttpd-dev libcurl=libcurl4-openssl-dev
  jansson=libjansson-dev libsodium=libsodium-dev libpq=libpq-dev libqrencode=libqrencode-dev)
tools=(cc=gcc make=make cmake=cmake pkg-config=pkg-config)
want_pg=false want_nginx=false want_fuzzer=false
case "$mode" in
  test)
    libs+=(cmocka=libcmocka-dev)
    tools+=(python3=python3 valgrind=valgrind openssl=openssl curl=curl node=nodejs npm=npm
      chromium=chromium zbarimg=zbar-tools)
    want_pg=true want_nginx=true
    ;;
  bench)
    tools+=(python3=python3 node=nodejs npm=npm chromium=chromium)
    want_pg=true
    ;;
  fuzz)
    want_fuzzer=true
    ;;
esac

need=()
for pair in "${tools[@]}"; do
  command -v "${pair%%=*}" >/dev/null 2>&1 || need+=("${pair#*=}")
done
for pair in "${libs[@]}"; do
  if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists "${pair%%=*}" 2>/dev/null; then
    need+=("${pair#*=}")
  fi
done

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
if $want_pg && { [ ! -x "$root/usr/lib/postgresql/15/bin/initdb" ] ||
  [ ! -x "$root/usr/lib/postgresql/15/bin/psql" ]; }; then
  need+=(postgresql-15)
fi
# nginx for the test of several hubs behind it (tests/pg/test_pg_nginx.py, deploy/nginx).
if $want_nginx && [ ! -x "$root/usr/sbin/nginx" ]; then
  need+=(nginx-light)
fi
if $want_fuzzer && ! fuzzer_works; then
  need+=(clang libclang-rt-14-dev)
fi

if $dry_run; then
  [ ${#need[@]} -eq 0 ] || printf '%s\n' "${need[@]}"
  exit 0
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

echo "deps ($mode): installing missing Debian packages: ${need[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: not root; install these yourself: apt-get install ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
