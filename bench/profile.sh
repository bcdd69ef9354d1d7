#!/usr/bin/env bash
# Profiles sfud under livestream load: sfud pinned to core 0 (1 shard), the
# generator on core 1, N viewers, `perf record -e cpu-clock -g` on sfud for
# SECS seconds. Writes bench/results/<date>-profile-livestream.txt.
# Usage: bench/profile.sh [VIEWERS=400] [SECS=10] [SFUD_BINARY]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
N="${1:-400}" SECS="${2:-10}" SFUD="${3:-$ROOT/target/release/sfud}"
if [ -z "${SFU_BENCH_IN_NETNS:-}" ]; then
  command -v perf >/dev/null || apt-get install -y --no-install-recommends linux-perf
  [ -x "$SFUD" ] || cargo build --release -p controlplane --bin sfud
  cargo build --release -p sfu-bench
  SFU_BENCH_IN_NETNS=1 exec scripts/in-netns.sh "$0" "$N" "$SECS" "$SFUD"
fi
OUT="$ROOT/bench/results/$(date -u +%Y-%m-%d)-profile-livestream.txt"
TMP="$(mktemp -d)"
taskset -c 1 "$ROOT/target/release/sfu-bench" run --target sfud --scenario livestream --steps "$N" \
  --core 0 --gen-core 1 --sfud-bin "$SFUD" --log-dir "$TMP" --warmup-s 1 --window-s $((SECS + 4 + N / 150)) \
  --out "$TMP/run.json" 2> "$TMP/run.err" &
BENCH=$!
SPID=""
for _ in $(seq 1 100); do
  SPID="$(pgrep -P "$BENCH" | head -1 || true)"
  [ -n "$SPID" ] && break
  sleep 0.1
done
[ -n "$SPID" ] || { echo "sfud did not start" >&2; cat "$TMP/run.err" >&2; exit 1; }
# Setup of N viewers (about 1 s per 200 here) and warm-up, then profile
# inside the measurement window.
sleep $((3 + N / 150))
perf record -e cpu-clock -g -p "$SPID" -o "$TMP/perf.data" -- sleep "$SECS" 2> /dev/null
wait "$BENCH" || true
{
  echo "# perf record -e cpu-clock -g, sfud (1 shard, core 0), livestream $N viewers, $SECS s"
  echo "# commit $(git rev-parse HEAD 2>/dev/null || echo unknown); run: $(tail -1 "$TMP/run.err")"
  echo
  perf report -i "$TMP/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null \
    | grep -E '^ +[0-9.]+%' | sed 's/ *- *- *$//; s/ *$//' > "$TMP/flat.txt"
  echo "## share by DSO (self time)"
  awk '{gsub("%","",$1); s[$2]+=$1} END {for (d in s) printf "  %6.2f%%  %s\n", s[d], d}' "$TMP/flat.txt" | sort -rn
  echo
  echo "## flat (self time), top 45"
  head -45 "$TMP/flat.txt"
  echo
  echo "## sfud's own symbols (self time)"
  grep -v kernel.kallsyms "$TMP/flat.txt" | head -30
} > "$OUT"
rm -rf "$TMP"
echo "profile in $OUT"
