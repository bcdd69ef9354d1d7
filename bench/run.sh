#!/usr/bin/env bash
# One command for the whole side-by-side benchmark:
#   bench/run.sh --quick     (a few minutes)
#   bench/run.sh --full      (longer windows, more steps)
# Options: --sfud PATH (use this sfud binary instead of building one),
#          --no-janus, --only SCENARIO (livestream|audio-room|meeting|
#          livestream-simulcast; Janus is not run for livestream-simulcast),
#          --loss P (also run sfud and the floor with every viewer dropping a
#          fraction P of its video and NACKing it, e.g. 0.01; Janus is not
#          rerun with loss), --rounds R (measure every step R times, in
#          alternating order, and keep each target's median run; default 3).
# Runs inside a private network namespace (loopback only). The target
# (sfud, the floor forwarder or Janus) is pinned to core 0 and the load
# generator to core 1. Writes bench/results/<date>-<scenario>.{md,json,png}
# and bench/results/<date>-summary.md.
set -euo pipefail
# An overloaded Janus can crash; a multi-GiB core file helps nobody here.
ulimit -c 0
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# Binaries live where cargo puts them (CARGO_TARGET_DIR when set).
TGT="${CARGO_TARGET_DIR:-$ROOT/target}"

MODE=quick SFUD="" JANUS=1 ONLY="" LOSS="" ROUNDS=3
args=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) MODE=quick ;;
    --full) MODE=full ;;
    --sfud) SFUD="$2"; shift ;;
    --no-janus) JANUS=0 ;;
    --only) ONLY="$2"; shift ;;
    --loss) LOSS="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    -h|--help) sed -n 2,18p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "${SFU_BENCH_IN_NETNS:-}" ]; then
  # Outside the namespace: install tools, build, then re-enter in a netns.
  need=()
  command -v gnuplot >/dev/null || need+=(gnuplot-nox)
  [ "$JANUS" = 1 ] && ! command -v janus >/dev/null && need+=(janus)
  command -v cc >/dev/null || need+=(gcc libc6-dev)
  if [ "${#need[@]}" -gt 0 ]; then
    apt-get install -y --no-install-recommends "${need[@]}" || { apt-get update && apt-get install -y --no-install-recommends "${need[@]}"; }
  fi
  if [ -z "$SFUD" ]; then
    cargo build --release -p controlplane --bin sfud
    SFUD="$TGT/release/sfud"
  fi
  cargo build --release -p sfu-bench
  mkdir -p target/bench
  cc -O2 -shared -fPIC -o target/bench/lo_not_loopback.so bench/janus/lo_not_loopback.c -ldl
  export SFU_BENCH_IN_NETNS=1 SFU_BENCH_SFUD="$SFUD"
  exec scripts/in-netns.sh "$0" "${args[@]}"
fi

SFUD="${SFU_BENCH_SFUD:-$TGT/release/sfud}"
BIN="$TGT/release/sfu-bench"
DATE="$(date -u +%Y-%m-%d)"
RAW="$ROOT/target/bench/raw-$DATE-$MODE"
OUT="$ROOT/bench/results"
rm -rf "$RAW"; mkdir -p "$RAW" "$OUT"
# Other work on the machine shows in these (and in 'core busy %' above the target's CPU).
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" > "$RAW/load.txt"

if [ "$MODE" = quick ]; then
  WARM=1 WIN=4
  LIVE=50,100,200,400,600,800
  AUDIO=10,25,50,100,200
  MEET=2,4,8,12
  SIM=60,150,300,600,900,1200
  SIM_WARM=8
else
  WARM=2 WIN=10
  LIVE=100,200,300,400,500,600,800,1000,1200,1600
  AUDIO=10,25,50,100,150,200,300
  MEET=2,4,6,8,10,12,14,16,20
  SIM=150,300,600,900,1200,1500,1800,2400
  SIM_WARM=10
fi

declare -A STEPS=([livestream]=$LIVE [audio-room]=$AUDIO [meeting]=$MEET [livestream-simulcast]=$SIM)
SCENARIOS=(livestream audio-room meeting livestream-simulcast)
[ -n "$ONLY" ] && SCENARIOS=("$ONLY")
# Each entry: raw-file name and target; the -loss entries rerun with --viewer-loss.
TARGETS=(sfud floor)
[ -n "$LOSS" ] && TARGETS+=(sfud-loss floor-loss)
[ "$JANUS" = 1 ] && TARGETS+=(janus)

common=(--core 0 --gen-core 1 --sfud-bin "$SFUD" --log-dir "$RAW"
        --janus-conf "$ROOT/bench/janus" --janus-preload "$ROOT/target/bench/lo_not_loopback.so"
        --window-s "$WIN" --stop-loss-pct 5)

echo "== idle: sfud with no sessions, 10 s"
taskset -c 1 "$BIN" idle --secs 10 --core 0 --sfud-bin "$SFUD" --log-dir "$RAW" --out "$RAW/idle.json" || true

# A target's finished step: over the stop bound (--stop-loss-pct or a
# saturated core), as sfu-bench judged it?
over_bound() {
  python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1])).get("over_stop_bound") else 1)' "$1"
}

# Each step is measured against a fresh target process, ROUNDS times, and
# at each step the targets run back to back in alternating order (ABBA), so
# that a drift in the machine's speed (a shared VM) hits sfud and the floor
# alike instead of whichever target ran its steps later. Each target keeps
# its median run per step. A target whose step went over the stop bound in
# every round runs no larger step.
for sc in "${SCENARIOS[@]}"; do
  # Simulcast viewers need seconds to be capped by REMB and for the
  # unlimited third to probe its way up to the top layer; Janus's VideoRoom
  # simulcast needs a client path this bench does not have (see README).
  warm=$WARM
  [ "$sc" = livestream-simulcast ] && warm=$SIM_WARM
  order=()
  for name in "${TARGETS[@]}"; do
    [ "$sc" = livestream-simulcast ] && [ "$name" = janus ] && { echo "== $sc: Janus skipped (no simulcast client path for its VideoRoom)"; continue; }
    order+=("$name")
  done
  declare -A stopped=()
  i=0
  IFS=, read -ra steps <<< "${STEPS[$sc]}"
  for n in "${steps[@]}"; do
    declare -A ok=()
    for r in $(seq 1 "$ROUNDS"); do
      round=("${order[@]}")
      if [ $((i % 2)) = 1 ]; then
        round=(); for ((k=${#order[@]}-1; k>=0; k--)); do round+=("${order[k]}"); done
      fi
      i=$((i + 1))
      for name in "${round[@]}"; do
        [ -n "${stopped[$name]:-}" ] && continue
        t="${name%-loss}" extra=(--warmup-s "$warm")
        [ "$t" != "$name" ] && extra+=(--viewer-loss "$LOSS")
        echo "== $sc against $name at $n (round $r)"
        out="$RAW/$name-$sc@$n@$r.json"
        if taskset -c 1 "$BIN" run --target "$t" --scenario "$sc" --steps "$n" "${common[@]}" "${extra[@]}" --out "$out"; then
          over_bound "$out" || ok[$name]=1
        else
          echo "!! $name $sc at $n failed (see $RAW)"; rm -f "$out"
        fi
      done
    done
    for name in "${order[@]}"; do
      [ -z "${ok[$name]:-}" ] && stopped[$name]=1
    done
    unset ok
  done
  unset stopped
  # One file per target and scenario, as report.py reads: per step, the
  # run with the median cost per packet (the others' costs kept beside it).
  for name in "${order[@]}"; do
    python3 - "$RAW" "$name-$sc" <<'PY'
import glob, json, os, sys
raw, stem = sys.argv[1], sys.argv[2]
by_n = {}
for p in glob.glob(os.path.join(raw, stem + "@*.json")):
    n = int(p[len(os.path.join(raw, stem)) + 1:].split("@")[0])
    by_n.setdefault(n, []).append(json.load(open(p)))
if by_n:
    steps = []
    for n in sorted(by_n):
        runs = [r["steps"][-1] for r in by_n[n] if r["steps"]]
        if not runs:
            continue
        runs.sort(key=lambda s: s["cpu_us_per_pkt"])
        pick = dict(runs[(len(runs) - 1) // 2])
        pick["cost_us_per_pkt_runs"] = [s["cpu_us_per_pkt"] for s in runs]
        steps.append(pick)
    first = next(iter(by_n.values()))[0]
    json.dump(dict(first, steps=steps), open(os.path.join(raw, stem + ".json"), "w"), indent=1)
PY
  done
done

{
  echo "machine:"; lscpu | grep -E 'Model name|^CPU\(s\)|Thread|MHz' || true
  echo "kernel: $(uname -r)"
  cat "$RAW/load.txt"
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$RAW/machine.txt"
git -C "$ROOT" rev-parse HEAD > "$RAW/commit.txt" 2>/dev/null || echo unknown > "$RAW/commit.txt"
git -C "$ROOT" status --porcelain | grep -q . && echo "(working tree has uncommitted changes)" >> "$RAW/commit.txt" || true
python3 "$ROOT/bench/report.py" --raw "$RAW" --out "$OUT" --date "$DATE" --mode "$MODE" --cmd "bench/run.sh ${args[*]:-}"
echo "results in $OUT/$DATE-*"
