#!/usr/bin/env bash
# Installs what the tests need, then runs every test: unit, property and RFC
# vector tests (cargo), then the end-to-end browser tests in a private network
# namespace. This is the README's test command and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

START=$SECONDS
step() { printf '\n==> [%d s] %s\n' "$((SECONDS - START))" "$*"; }

step "installing test dependencies"
bash scripts/install-test-deps.sh

# One profile for everything: the e2e tests need an optimised sfud, and
# sharing it with the unit tests avoids a second full build on small CI boxes.
# Release builds wrap silently on integer overflow; with this set (exported,
# so every script below builds the same way and reuses the build) the unit,
# property and end-to-end tests all run with overflow checks on, and an
# arithmetic overflow on hostile input is a failing test, not a wrap. The
# shipped binary (`cargo build --release` outside this script) is unchanged.
export CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true
# CI builds with the hwloc topology reader (libhwloc-dev is installed above);
# `cargo run --release` without the feature needs no system library.
FEATURES=(--features controlplane/hwloc)

step "building (release, with hwloc)"
cargo build --release --workspace --all-targets --locked "${FEATURES[@]}"

step "unit, property and RFC vector tests (overflow checks on)"
cargo test --release --workspace --locked "${FEATURES[@]}"

# Each libFuzzer target (fuzz/, its own nightly workspace) runs briefly from
# its checked-in corpus: a crash input found once stays a test forever.
# Longer runs: scripts/fuzz.sh without --ci (docs/fuzzing.md).
# The fuzz build keeps both cores busy for minutes; the tune, packaging and
# TURN checks below mostly wait on small tools, so they run beside it and
# its log is printed after them.
step "fuzz targets, 5 s each from the checked-in corpus (in the background)"
FUZZ_LOG="$(mktemp)"
bash scripts/fuzz.sh --ci 5 >"$FUZZ_LOG" 2>&1 &
FUZZ_PID=$!

step "sfud tune reads the topology through hwloc"
tune_plan="$(target/release/sfud tune)"
sed -n 1,3p <<<"$tune_plan"
grep -q "topology: hwloc" <<<"$tune_plan"

step "systemd unit (verify, security score) and the .deb"
bash scripts/check-packaging.sh

export SFUD_BIN="$PWD/target/release/sfud"

step "TURN server against coturn's own test clients"
bash scripts/test-turn.sh

step "waiting for the fuzz targets"
fuzz_rc=0
wait "$FUZZ_PID" || fuzz_rc=$?
cat "$FUZZ_LOG"
rm -f "$FUZZ_LOG"
if [ "$fuzz_rc" -ne 0 ]; then
  echo "fuzz targets failed (exit $fuzz_rc)" >&2
  exit "$fuzz_rc"
fi

step "load generator smoke run (20 viewers: 5 s without loss, 3 s with 2% loss repaired by NACK and RTX)"
bash bench/smoke.sh "$SFUD_BIN"

step "end-to-end tests (headless Chromium, private network namespace)"
bash scripts/in-netns.sh node --test --test-concurrency=1 e2e/
step "all tests passed"
