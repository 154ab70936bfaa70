#!/usr/bin/env bash
# tests/mpesa_clients/install.sh — makes tests/mpesa_clients/node_modules hold the third-party
# Daraja clients (mpesa-node and its axios, mpesa-api) at the versions that
# tests/mpesa_clients/package-lock.json pins, with npm, the first time (and again when the lock
# changes). None of them has an install script; nothing here downloads anything but the
# locked packages from the npm registry.
# Safe to run again and again and from two builds at once (a lock file); does nothing when
# the installed tree matches the lock. Exit 1 with one line on stderr when it cannot install.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "tests/mpesa_clients/install.sh: $tool not found (scripts/deps.sh test installs it)" >&2
    exit 1
  fi
done

# The installed tree is current when every package of the lock is there at its locked version.
current() {
  [ -d node_modules ] &&
    node -e '
      const fs = require("fs");
      const pkgs = require("./package-lock.json").packages;
      for (const [where, want] of Object.entries(pkgs)) {
        if (where === "") continue;
        let have;
        try { have = JSON.parse(fs.readFileSync(where + "/package.json", "utf8")); }
        catch (e) { process.exit(1); }
        if (have.version !== want.version) process.exit(1);
      }
      process.exit(0);' 2>/dev/null
}

exec 9>"$HERE/node_modules.lock"
flock 9
if current; then
  exit 0
fi
echo "tests/mpesa_clients/install.sh: installing mpesa-node and mpesa-api with npm into tests/mpesa_clients/node_modules" >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! timeout 600 npm ci --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
  why=$(grep -m1 -E 'ERR|error' "$log" | cut -c1-200 || true)
  echo "tests/mpesa_clients/install.sh: npm ci failed: ${why:-no error line, run npm ci in tests/mpesa_clients}" >&2
  exit 1
fi
if ! current; then
  echo "tests/mpesa_clients/install.sh: npm ci ran but node_modules does not match package-lock.json" >&2
  exit 1
fi
