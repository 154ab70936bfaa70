#!/usr/bin/env bash
# Installs the Debian packages duka needs to build and test, and only those that are missing:
# a library counts as present when pkg-config finds it, a tool when it is on PATH.
# Safe to run again and again; does nothing on a machine that has everything.
set -euo pipefail

need=()
# pkg-config module  -> Debian package
declare -A libs=(
  [sqlite3]=libsqlite3-dev
  [libmicrohttpd]=libmicrohttpd-dev
  [libcurl]=libcurl4-openssl-dev
  [jansson]=libjansson-dev
  [libsodium]=libsodium-dev
  [cmocka]=libcmocka-dev
)
# command -> Debian package
declare -A tools=(
  [pkg-config]=pkg-config
  [cmake]=cmake
  [make]=make
  [cc]=gcc
  [python3]=python3
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
