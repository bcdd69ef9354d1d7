#!/usr/bin/env bash
# CI smoke test of the load generator against sfud: 20 livestream viewers
# for 5 s inside a private network namespace. Exits non-zero unless every
# session connected, every viewer received media, nothing was lost and
# every packet authenticated. Not timing-sensitive beyond "no loss on an
# idle loopback".
# Usage: bench/smoke.sh [SFUD_BINARY]   (default: target/release/sfud, built if missing)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SFUD="${1:-$ROOT/target/release/sfud}"
if [ ! -x "$SFUD" ]; then
  cargo build --release -p controlplane --bin sfud
fi
cargo build --release -p sfu-bench
LOGS="$(mktemp -d)"
trap 'rm -rf "$LOGS"' EXIT
if ! scripts/in-netns.sh "$ROOT/target/release/sfu-bench" smoke --viewers 20 --secs 5 \
    --sfud-bin "$SFUD" --log-dir "$LOGS"; then
  echo "--- sfud log" >&2
  tail -50 "$LOGS"/*.log >&2 || true
  exit 1
fi
