#!/usr/bin/env bash
# tests/ui/install.sh — makes tests/ui/node_modules hold playwright-core at the version that
# tests/ui/package-lock.json pins, with npm, the first time (and again when the lock changes).
# The browser is Debian's chromium (scripts/deps.sh test installs it): playwright-core has no
# install script and downloads nothing; nothing here may ever run `playwright install`.
# Safe to run again and again and from two builds at once (a lock file); does nothing when
# the installed tree matches the lock. Exit 1 with one line on stderr when it cannot install.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "tests/ui/install.sh: $tool not found (scripts/deps.sh test installs it)" >&2
    exit 1
  fi
done

# The installed tree is current when playwright-core's version is the locked one.
current() {
  [ -f node_modules/playwright-core/package.json ] &&
    node -e '
      const want = require("./package-lock.json").packages["node_modules/playwright-core"];
      const have = require("./node_modules/playwright-core/package.json");
      process.exit(want && have.version === want.version ? 0 : 1);' 2>/dev/null
}

exec 9>"$HERE/node_modules.lock"
flock 9
if current; then
  exit 0
fi
echo "tests/ui/install.sh: installing playwright-core with npm into tests/ui/node_modules" >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: belt and braces; playwright-core downloads nothing itself.
if ! PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 600 npm ci --no-audit --no-fund --loglevel=error \
  >"$log" 2>&1; then
  why=$(grep -m1 -E 'ERR|error' "$log" | cut -c1-200 || true)
  echo "tests/ui/install.sh: npm ci failed: ${why:-no error line, run npm ci in tests/ui}" >&2
  exit 1
fi
if ! current; then
  echo "tests/ui/install.sh: npm ci ran but node_modules/playwright-core is not the locked version" >&2
  exit 1
fi
