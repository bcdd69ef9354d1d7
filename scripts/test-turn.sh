#!/usr/bin/env bash
# Interop test of sfud's embedded TURN server against coturn's own clients
# (turnutils_stunclient, turnutils_uclient, turnutils_peer), inside a private
# network namespace (scripts/in-netns.sh), so everything runs on loopback.
#
# Matrix: STUN Binding; uclient over UDP, TCP and TLS, with static and with
# TURN REST shared-secret credentials, channels and Send indications, to an
# echo peer and client-to-client (-y), each with 0 packets lost; a wrong
# password refused; and, with allow_private_peers=false, relaying to a
# loopback peer refused with 403 (no open relay).
#
# Server: by default the real `sfud` (target/debug/sfud, built if missing,
# or $SFUD_BIN) configured through SFUD_TURN__* environment overrides.
# TURN_TEST_SERVER=CMD runs CMD instead with the same environment (used to
# develop against a stand-in before sfud wired the TURN server in).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ -z "${TURN_TEST_IN_NETNS:-}" ]; then
  if ! command -v turnutils_uclient >/dev/null 2>&1; then
    echo "installing coturn (for its test clients)"
    apt-get install -y --no-install-recommends coturn >/dev/null 2>&1 ||
      { apt-get update >/dev/null && apt-get install -y --no-install-recommends coturn >/dev/null; }
  fi
  if [ -z "${TURN_TEST_SERVER:-}" ] && [ -z "${SFUD_BIN:-}" ] && [ ! -x "$ROOT/target/debug/sfud" ]; then
    (cd "$ROOT" && cargo build -p controlplane --bin sfud)
  fi
  export TURN_TEST_IN_NETNS=1
  exec "$ROOT/scripts/in-netns.sh" "$0" "$@"
fi

SERVER_CMD="${TURN_TEST_SERVER:-${SFUD_BIN:-$ROOT/target/debug/sfud}}"
WORK="$(mktemp -d /tmp/sfud-turn-test.XXXXXX)"
HOST=127.0.0.1
PEER_PORT=3480
TLS_PORT=5349
SECRET="turn-test-secret"
SERVER_PID=""
PEER_PID=""
PASS=0
FAIL=0

cleanup() {
  # turnutils_peer ignores SIGTERM: SIGKILL, by PID.
  [ -n "$PEER_PID" ] && kill -9 "$PEER_PID" 2>/dev/null || true
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "logs kept in $WORK"; fi
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1

start_server() { # $1 = allow_private_peers (true|false), $2 = log name
  export SFUD_TURN__ENABLED=true
  export SFUD_TURN__STATIC_USERS='{alice="wonderland"}'
  export SFUD_TURN__SHARED_SECRET="$SECRET"
  export SFUD_TURN__RELAY_ADDRESS="$HOST"
  export SFUD_TURN__RELAY_PORT_MIN=49160
  export SFUD_TURN__RELAY_PORT_MAX=49400
  export SFUD_TURN__TLS_PORT=$TLS_PORT
  export SFUD_TURN__TLS_CERT_FILE="$WORK/cert.pem"
  export SFUD_TURN__TLS_KEY_FILE="$WORK/key.pem"
  export SFUD_TURN__ALLOW_PRIVATE_PEERS="$1"
  $SERVER_CMD >"$WORK/$2.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if timeout 3 turnutils_stunclient "$HOST" 2>/dev/null | grep -q 'reflexive addr'; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "server did not come up; its log:"
  tail -30 "$WORK/$2.log"
  exit 1
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

ok() { PASS=$((PASS + 1)); echo "PASS $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $*"; }

# Runs uclient and requires: exit 0, "Total lost packets 0", and every sent
# message received.
uclient_case() { # $1 = name, rest = uclient flags
  local name="$1"
  shift
  local log="$WORK/uclient-$name.log"
  local rc=0
  timeout 90 turnutils_uclient "$@" -L "$HOST" -e "$HOST" -r "$PEER_PORT" -n 50 -m 2 -l 200 "$HOST" >"$log" 2>&1 || rc=$?
  local lost totals
  lost="$(grep -o 'Total lost packets [0-9]* ([0-9.]*%)' "$log" | tail -1 || true)"
  totals="$(grep -o 'tot_send_msgs=[0-9]*, tot_recv_msgs=[0-9]*$' "$log" | tail -1 || true)"
  local sent="${totals#tot_send_msgs=}"
  sent="${sent%%,*}"
  local recv="${totals##*tot_recv_msgs=}"
  if [ "$rc" -eq 0 ] && [ "$lost" = "Total lost packets 0 (0.000000%)" ] && [ -n "$sent" ] && [ "$sent" -gt 0 ] && [ "$sent" = "$recv" ]; then
    ok "$name: $lost, sent $sent, received $recv"
  else
    bad "$name: rc=$rc '${lost:-no summary}' '${totals:-no totals}'"
    tail -5 "$log" | sed 's/^/    /'
  fi
}

turnutils_peer -L "$HOST" -p "$PEER_PORT" >"$WORK/peer.log" 2>&1 &
PEER_PID=$!
disown "$PEER_PID"

echo "== server with allow_private_peers=true (loopback peers allowed for the test)"
start_server true server-open

if out="$(timeout 10 turnutils_stunclient "$HOST" 2>&1)" && echo "$out" | grep -q "UDP reflexive addr: $HOST:"; then
  ok "stunclient: $(echo "$out" | grep -o 'UDP reflexive addr: [0-9.:]*' | head -1)"
else
  bad "stunclient: $out"
fi

uclient_case udp-static-channels -u alice -w wonderland
uclient_case udp-static-send -s -u alice -w wonderland
uclient_case tcp-static -t -u alice -w wonderland
uclient_case udp-rest -W "$SECRET" -u rest-user
uclient_case tcp-rest -t -W "$SECRET" -u rest-user
uclient_case udp-client-to-client -y -u alice -w wonderland
uclient_case tcp-client-to-client -y -t -u alice -w wonderland
uclient_case tls-static -t -S -p "$TLS_PORT" -u alice -w wonderland
uclient_case tls-rest -t -S -p "$TLS_PORT" -W "$SECRET" -u rest-user

# A wrong password and a wrong shared secret must not get an allocation.
for c in "wrong-password:-u alice -w nope" "wrong-secret:-W not-the-secret -u rest-user"; do
  name="${c%%:*}"
  rc=0
  # shellcheck disable=SC2086
  timeout 60 turnutils_uclient ${c#*:} -L "$HOST" -e "$HOST" -r "$PEER_PORT" -n 5 -m 1 "$HOST" >"$WORK/uclient-$name.log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ] && grep -q 'Cannot complete Allocation' "$WORK/uclient-$name.log" && ! grep -q 'Total lost packets' "$WORK/uclient-$name.log"; then
    ok "$name refused: rc=$rc, $(grep -m1 -o 'ERROR: Cannot complete Allocation' "$WORK/uclient-$name.log")"
  else
    bad "$name was not refused (rc=$rc)"
  fi
done
stop_server

echo "== server with allow_private_peers=false (the default): no open relay"
start_server false server-closed
for c in "echo-peer:-u alice -w wonderland" "client-to-client:-y -u alice -w wonderland"; do
  name="denied-${c%%:*}"
  rc=0
  # shellcheck disable=SC2086
  timeout 60 turnutils_uclient ${c#*:} -L "$HOST" -e "$HOST" -r "$PEER_PORT" -n 5 -m 1 "$HOST" >"$WORK/uclient-$name.log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ] && grep -q '403' "$WORK/uclient-$name.log" && ! grep -q 'Total lost packets 0 ' "$WORK/uclient-$name.log"; then
    ok "$name refused: rc=$rc, $(grep -m1 -o 'error 403[^,]*' "$WORK/uclient-$name.log" || echo 403)"
  else
    bad "$name: relaying to $HOST was not refused (rc=$rc)"
    tail -5 "$WORK/uclient-$name.log" | sed 's/^/    /'
  fi
done
if grep -q 'refused relay to a denied peer address' "$WORK/server-closed.log"; then
  ok "refusals logged: $(grep -c 'refused relay to a denied peer address' "$WORK/server-closed.log") log lines"
else
  bad "no refusal logged by the server"
fi
stop_server

echo "turn: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
