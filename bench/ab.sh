#!/usr/bin/env bash
# A/B of sfud binaries (and the floor) at one livestream step, interleaved:
#   bench/ab.sh ROUNDS VIEWERS TARGET...      (TARGET: a sfud binary, or "floor")
# Each round runs every target once, in alternating order (ABBA), against a
# fresh process pinned to core 0 (the generator on core 1), and reads the
# target's user and system CPU from /proc/PID/stat over 6 s in the middle of
# the window. Prints one line per run: user, sys and total CPU microseconds
# per forwarded packet. For a change too small to see through the machine's
# run-to-run noise in bench/run.sh's cost ratio (up to 15% per run here).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TGT="${CARGO_TARGET_DIR:-$ROOT/target}"
[ $# -ge 3 ] || { sed -n 2,9p "$0"; exit 2; }
if [ -z "${SFU_BENCH_IN_NETNS:-}" ]; then
  cargo build --release -p sfu-bench
  SFU_BENCH_IN_NETNS=1 exec scripts/in-netns.sh "$0" "$@"
fi
ROUNDS=$1 N=$2; shift 2
order=("$@")
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
HZ=$(getconf CLK_TCK)
ticks() { awk '{sub(/.*\) /, ""); print $12, $13}' "/proc/$1/stat"; }
for r in $(seq 1 "$ROUNDS"); do
  list=("${order[@]}")
  if [ $((r % 2)) = 0 ]; then list=(); for ((k=${#order[@]}-1; k>=0; k--)); do list+=("${order[k]}"); done; fi
  for t in "${list[@]}"; do
    if [ "$t" = floor ]; then args=(--target floor); else args=(--target sfud --sfud-bin "$t"); fi
    taskset -c 1 "$TGT/release/sfu-bench" run "${args[@]}" --scenario livestream --steps "$N" --core 0 --gen-core 1 \
      --log-dir "$TMP" --warmup-s 1 --window-s 16 --out "$TMP/run.json" 2> "$TMP/err" > /dev/null &
    bench=$! pid=""
    for _ in $(seq 1 100); do
      pid="$(pgrep -P "$bench" -f "sfud|floor-server" | head -1 || true)"
      [ -n "$pid" ] && break
      sleep 0.1
    done
    # Setup (about 1 s per 200 viewers) and warm-up, then 6 s inside the window.
    sleep $((4 + N / 150))
    read -r u0 s0 < <(ticks "$pid"); sleep 6; read -r u1 s1 < <(ticks "$pid")
    wait "$bench"
    pps=$(tail -1 "$TMP/err" | grep -o 'fwd=[0-9]*' | cut -d= -f2)
    python3 -c "hz, pps = $HZ, $pps; u = ($u1 - $u0) / hz / 6; s = ($s1 - $s0) / hz / 6
print('round $r %-24s user=%.2f sys=%.2f total=%.2f us/pkt' % ('$(basename "$t")', u * 1e6 / pps, s * 1e6 / pps, (u + s) * 1e6 / pps))"
  done
done
