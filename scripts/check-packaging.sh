#!/usr/bin/env bash
# Checks the systemd unit, the sysctl drop-in, the default config and the
# .deb, without installing anything on this machine:
#   1. systemd-analyze verify on the unit (ExecStart pointed at the built
#      binary in a temp copy: verify insists the executable exists, and the
#      real /usr/bin/sfud is what the package installs, not this machine);
#   2. systemd-analyze security --offline scores it "OK" or better
#      (exposure <= 4.9), and docs/operations.md records that score;
#   3. packaging/sfud.toml equals `sfud config print` once comments and
#      blank lines are dropped, so the shipped defaults cannot drift;
#   4. cargo deb builds the package from the existing release binary;
#   5. dpkg-deb -I/-c and `dpkg -x` into a throwaway root show every file
#      where it belongs, with the right modes and maintainer scripts.
# Uses target/release/sfud (or $SFUD_BIN); builds it only when missing.
# Installs cargo-deb with `cargo install --locked` when it is missing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SFUD_BIN=${SFUD_BIN:-$TARGET_DIR/release/sfud}
TMP=$(mktemp -d /tmp/sfud-check-packaging.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

step "tools"
if ! command -v systemd-analyze >/dev/null; then
    apt-get update -qq && apt-get install -y -qq systemd >/dev/null
fi
command -v dpkg-deb >/dev/null || fail "dpkg-deb missing (not a Debian system?)"
if ! cargo deb --version >/dev/null 2>&1; then
    # --debug: a packaging tool needs no optimiser, and it compiles in a
    # fraction of the time on a 2-core CI machine.
    cargo install cargo-deb --locked --debug
fi
echo "systemd $(systemd-analyze --version | awk 'NR==1 {print $2}'), $(cargo deb --version)"

if [ ! -x "$SFUD_BIN" ]; then
    step "building the release binary (not found at $SFUD_BIN)"
    cargo build --release -p controlplane --bin sfud
fi
echo "binary: $SFUD_BIN"

step "unit: systemd-analyze verify"
mkdir -p "$TMP/unit"
sed "s#^ExecStart=/usr/bin/sfud #ExecStart=$SFUD_BIN #" systemd/sfud.service >"$TMP/unit/sfud.service"
grep -q "^ExecStart=$SFUD_BIN " "$TMP/unit/sfud.service" || fail "ExecStart line not found in systemd/sfud.service"
verify_out=$(systemd-analyze verify "$TMP/unit/sfud.service" 2>&1) || { echo "$verify_out"; fail "systemd-analyze verify"; }
# verify also reports on unrelated host units; only ours matter.
if echo "$verify_out" | grep -i "sfud"; then fail "systemd-analyze verify warns about sfud.service"; fi
echo "verify: ok"

step "unit: systemd-analyze security"
sec_out=$(systemd-analyze security --offline=yes --threshold=49 "$TMP/unit/sfud.service" 2>&1) \
    || { echo "$sec_out" | grep '✗' || true; echo "$sec_out" | tail -1; fail "exposure above 4.9 (worse than OK)"; }
overall=$(echo "$sec_out" | grep 'Overall exposure level')
echo "$overall"
score=$(echo "$overall" | grep -oE '[0-9]+\.[0-9]' | head -1)
band=$(echo "$overall" | grep -oE '(SAFE|OK|MEDIUM|EXPOSED|UNSAFE)' | head -1)
grep -q "exposure level $score $band" docs/operations.md \
    || fail "docs/operations.md does not record the score: expected \"exposure level $score $band\""

step "sysctl drop-in"
n=0
while IFS= read -r line; do
    case "$line" in ''|'#'*|';'*) continue ;; esac
    [[ $line =~ ^([a-z0-9_.]+)\ =\ ([0-9]+(\ [0-9]+)*)$ ]] || fail "malformed sysctl line: $line"
    key=${BASH_REMATCH[1]}
    [ -e "/proc/sys/${key//./\/}" ] || fail "unknown sysctl $key"
    n=$((n + 1))
done <systemd/60-sfud.conf
[ "$(readlink tuning/60-sfud.conf)" = ../systemd/60-sfud.conf ] || fail "tuning/60-sfud.conf must link to systemd/60-sfud.conf"
echo "$n settings, all known to this kernel"

step "default config matches the code's defaults"
: >"$TMP/empty.toml"
strip() { grep -vE '^[[:space:]]*(#|$)' "$1"; }
env -i PATH="$PATH" "$SFUD_BIN" -c "$TMP/empty.toml" config print >"$TMP/defaults.toml"
if ! diff -u <(strip "$TMP/defaults.toml") <(strip packaging/sfud.toml) >"$TMP/config.diff"; then
    cat "$TMP/config.diff"
    fail "packaging/sfud.toml drifted from \`sfud config print\` (the diff shows what to change)"
fi
env -i PATH="$PATH" "$SFUD_BIN" -c packaging/sfud.toml config check
echo "packaging/sfud.toml: every key at its default"

step "cargo deb"
cargo deb -p controlplane --no-build --output "$TMP/deb/" >"$TMP/cargo-deb.log" 2>&1 \
    || { cat "$TMP/cargo-deb.log"; fail "cargo deb"; }
deb=$(ls "$TMP"/deb/*.deb)
echo "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"

step "package metadata (dpkg-deb -I)"
dpkg-deb -I "$deb" | sed -n '/Package:/,$p'
[ "$(dpkg-deb -f "$deb" Package)" = sfud ] || fail "package name"
dpkg-deb -f "$deb" Depends | grep -q systemd || fail "Depends lacks systemd"
mkdir "$TMP/ctrl"
dpkg-deb -e "$deb" "$TMP/ctrl"
grep -qx /etc/sfud/sfud.toml "$TMP/ctrl/conffiles" || fail "/etc/sfud/sfud.toml is not a conffile"
for s in postinst postrm prerm; do
    [ -x "$TMP/ctrl/$s" ] || fail "no $s script"
    sh -n "$TMP/ctrl/$s" || fail "$s: syntax"
    if grep -q '#DEBHELPER#' "$TMP/ctrl/$s"; then fail "$s: #DEBHELPER# not replaced"; fi
done
grep -q 'systemd-sysusers' "$TMP/ctrl/postinst" || fail "postinst does not run systemd-sysusers"
grep -q 'adduser --system' "$TMP/ctrl/postinst" || fail "postinst lacks the adduser fallback"
grep -q 'deb-systemd-helper' "$TMP/ctrl/postinst" || fail "postinst does not register the unit"

step "package contents (dpkg-deb -c)"
dpkg-deb -c "$deb" | awk '{print $1, $NF}'

step "unpacked into a throwaway root (dpkg -x)"
R="$TMP/root"
dpkg -x "$deb" "$R"
check_file() { # path mode
    [ -f "$R$1" ] || fail "missing $1"
    local m; m=$(stat -c %a "$R$1")
    [ "$m" = "$2" ] || fail "$1 has mode $m, want $2"
    echo "ok $2 $1"
}
check_file /usr/bin/sfud 755
check_file /usr/lib/systemd/system/sfud.service 644
check_file /etc/sfud/sfud.toml 640
check_file /usr/lib/sysctl.d/60-sfud.conf 644
check_file /usr/lib/sysusers.d/sfud.conf 644
check_file /usr/share/sfud/tuning/apply-irq-affinity.sh 755
check_file /usr/share/doc/sfud/operations.md 644
check_file /usr/share/doc/sfud/tuning.md 644
check_file /usr/share/doc/sfud/configuration.md 644
cmp "$R/usr/lib/systemd/system/sfud.service" systemd/sfud.service || fail "packaged unit differs"
cmp "$R/etc/sfud/sfud.toml" packaging/sfud.toml || fail "packaged config differs"
cmp "$R/usr/lib/sysctl.d/60-sfud.conf" systemd/60-sfud.conf || fail "packaged sysctl differs"
# The packaged binary runs and accepts the packaged config; the unit's
# ExecStart names the path the binary is installed at.
"$R/usr/bin/sfud" --version
env -i PATH="$PATH" "$R/usr/bin/sfud" -c "$R/etc/sfud/sfud.toml" config check
grep -q '^ExecStart=/usr/bin/sfud --config /etc/sfud/sfud.toml$' "$R/usr/lib/systemd/system/sfud.service" || fail "ExecStart"
# The sysusers line parses and would create the user and group.
sysusers_out=$(systemd-sysusers --root="$R" --dry-run sfud.conf 2>&1) || { echo "$sysusers_out"; fail "systemd-sysusers"; }
echo "$sysusers_out" | grep -q "sfud" || fail "systemd-sysusers would not create sfud: $sysusers_out"
echo "$sysusers_out"

echo
echo "check-packaging: all checks passed ($overall)"
