#!/usr/bin/env bash
# Captures the first RTP packets Chromium sends for an SVC call, unencrypted,
# for the fixtures in dataplane/src/forward/svc_filter/tests/. Needs root,
# chromium and e2e/node_modules (scripts/install-test-deps.sh). Run it as
#   flock /tmp/heavy.lock bash scripts/in-netns.sh bash scripts/capture-svc/capture.sh VP9 L3T3_KEY OUT.hex
# then: python3 scripts/capture-svc/fixture.py OUT.hex 98 24 300   (VP9 was PT 98; AV1 45, head 4, 200)
# (the fixture files' first lines say what was captured; add them by hand.)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python3 "$here/sniff.py" "$3" 14 &
sniffer=$!
sleep 0.5
node "$here/drive.cjs" "$1" "$2"
wait "$sniffer"
