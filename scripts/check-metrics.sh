#!/usr/bin/env bash
# Validates a running sfud's Prometheus exposition with `promtool check
# metrics` (Debian package `prometheus`), installing promtool if missing.
# Usage: scripts/check-metrics.sh [URL]   (default http://127.0.0.1:6789/metrics)
# Exit status is promtool's: 0 when the exposition is valid and lint-clean.
set -euo pipefail

url="${1:-http://127.0.0.1:6789/metrics}"

if ! command -v promtool >/dev/null 2>&1; then
    apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 || {
        apt-get update >/dev/null
        apt-get install -y --no-install-recommends prometheus >/dev/null
    }
fi

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
curl -fsS --max-time 5 "$url" -o "$tmp"
if [ ! -s "$tmp" ]; then
    echo "check-metrics: $url returned an empty body" >&2
    exit 1
fi
promtool check metrics <"$tmp"
echo "check-metrics: $url OK ($(grep -c '^sfud_' "$tmp") sfud samples)"
