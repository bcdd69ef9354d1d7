#!/usr/bin/env bash
# Runs CMD ARGS... in a private network namespace that has only loopback.
# The default route through lo matters: without one, Chromium gathers no ICE
# candidates. Outside a namespace, browsers prefer the machine's other
# interface over loopback, so tests must run in here.
set -euo pipefail
if [ "$#" -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi
exec unshare --net sh -c 'set -e; ip link set lo up; ip route add default dev lo src 127.0.0.1; exec "$@"' in-netns "$@"
