#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets/) for a set time each.
#
#   scripts/fuzz.sh [--ci] [SECONDS] [TARGET...]
#
# Default: 60 s per target, growing fuzz/corpus/<target>/ with what the
# fuzzer finds (minimise with `cargo +nightly fuzz cmin <target>` before
# committing). --ci: seconds per target default to 10, and the checked-in
# corpus is copied first so a test run never changes the tree. A crash stops
# the script non-zero and leaves its input under fuzz/artifacts/<target>/;
# reproduce with `cargo +nightly fuzz run <target> <file>` and turn it into a
# regression test (docs/fuzzing.md).
#
# Needs the nightly toolchain (installed on these machines) and cargo-fuzz,
# which this installs from crates.io if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

ci=0
if [[ "${1:-}" == "--ci" ]]; then
    ci=1
    shift
fi
secs="${1:-$([[ $ci == 1 ]] && echo 10 || echo 60)}"
shift || true

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz (crates.io)"
    # --debug: a CLI that only drives cargo needs no optimiser.
    cargo +nightly install cargo-fuzz --locked --debug
fi

mapfile -t all < <(cargo +nightly fuzz list)
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=("${all[@]}")
fi

# One build for every target: release, debug assertions, ASan. In --ci the
# targets only replay the corpus for seconds, so they are built unoptimised
# (--dev, still with ASan and overflow checks): half the build time on a
# 2-core CI machine, and nothing a few seconds of replay would miss.
build=()
if [[ $ci == 1 ]]; then
    build=(--dev)
fi
echo "==> building ${#targets[@]} fuzz targets ${build[*]}"
cargo +nightly fuzz build "${build[@]}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
    corpus="fuzz/corpus/$t"
    mkdir -p "$corpus"
    if [[ $ci == 1 ]]; then
        cp -r "$corpus" "$work/$t"
        corpus="$work/$t"
    fi
    echo "==> $t: ${secs}s from $(ls "$corpus" | wc -l) corpus inputs"
    # -rss_limit_mb catches unbounded growth; -max_len keeps inputs datagram-sized.
    cargo +nightly fuzz run "${build[@]}" "$t" "$corpus" -- \
        -max_total_time="$secs" -max_len=4096 -rss_limit_mb=2048 -print_final_stats=1 \
        2>"$work/$t.log" || { tail -40 "$work/$t.log"; exit 1; }
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+ *DONE" "$work/$t.log" | sed "s/^/    /"
done
echo "==> no crashes"
