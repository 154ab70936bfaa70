#!/usr/bin/env bash
# tests/ui/update-screenshots.sh [BUILD_DIR] — copies one current set of the browser tests'
# screenshots (BUILD_DIR/ui-screenshots, default build/, after `ctest -R '^ui/'` there) into
# docs/screenshots/ under the names README.md shows. Exit 1 naming the first one missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-$ROOT/build}"
SHOTS="$BUILD/ui-screenshots"
# docs name = the test's screenshot it is taken from (suite/test/NN-state.png)
pairs=(
  "01-login.png=keyboard_sale/three_items_with_the_keyboard_only/01-login.png"
  "02-sell.png=keyboard_sale/three_items_with_the_keyboard_only/02-cart.png"
  "03-receipt.png=keyboard_sale/three_items_with_the_keyboard_only/04-receipt.png"
  "04-offline.png=offline/hub_killed_red_selling_continues_hub_back_green/03-offline-3-pending.png"
  "05-sync.png=failed_items/poisoned_items_show_with_their_error_and_retry_sends_them/01-sync-screen-2-failed.png"
  "06-back-online.png=offline/hub_killed_red_selling_continues_hub_back_green/05-back-online-green.png"
)
for pair in "${pairs[@]}"; do
  src="$SHOTS/${pair#*=}"
  if [ ! -f "$src" ]; then
    echo "update-screenshots: $src not found (run the browser tests in $BUILD first)" >&2
    exit 1
  fi
done
mkdir -p "$ROOT/docs/screenshots"
for pair in "${pairs[@]}"; do
  cp "$SHOTS/${pair#*=}" "$ROOT/docs/screenshots/${pair%%=*}"
done
echo "update-screenshots: ${#pairs[@]} screenshots from $SHOTS in docs/screenshots/"
