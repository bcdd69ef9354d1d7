#!/usr/bin/env bash
# CI smoke test of the load generator against sfud, inside a private network
# namespace: 20 livestream viewers for 5 s, then 20 viewers for 3 s with 2%
# loss on each viewer's video and 2% on the publisher's uplink. The first
# fails unless every session connected, every viewer received media, nothing
# was lost and every packet authenticated; the second unless sfud answered
# viewers' NACKs with RTX, it took the publisher's resends on RTX, and under
# 0.2% stayed missing. Not timing-sensitive beyond "no loss on an idle
# loopback".
# Usage: bench/smoke.sh [SFUD_BINARY]   (default: target/release/sfud, built if missing)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TGT="${CARGO_TARGET_DIR:-$ROOT/target}"
SFUD="${1:-$TGT/release/sfud}"
if [ ! -x "$SFUD" ]; then
  cargo build --release -p controlplane --bin sfud
fi
cargo build --release -p sfu-bench
LOGS="$(mktemp -d)"
trap 'rm -rf "$LOGS"' EXIT
run() {
  if ! scripts/in-netns.sh "$TGT/release/sfu-bench" smoke --sfud-bin "$SFUD" --log-dir "$LOGS" "$@"; then
    echo "--- sfud log" >&2
    tail -50 "$LOGS"/*.log >&2 || true
    exit 1
  fi
}
run --viewers 20 --secs 5
run --viewers 20 --secs 3 --viewer-loss 0.02 --publisher-loss 0.02
