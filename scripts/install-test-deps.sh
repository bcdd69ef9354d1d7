#!/usr/bin/env bash
# Installs what the tests need: Chromium, Firefox ESR, GStreamer (webrtcbin,
# vpx, opus, nice) with python3-gi, nftables, iproute2, util-linux
# (unshare), Prometheus (promtool and the server), coturn's test clients,
# systemd-analyze, espeak-ng (the active speaker test's voice) and
# redis-server + redis-cli (the cluster test) from Debian, openssl (its
# throwaway TLS CA), and
# playwright-core, puppeteer-core (Firefox over WebDriver BiDi) + ion-sdk-js
# from npm.
# Idempotent and quick when everything is already present, so CI can call it
# on every run. Never downloads a browser build: only Debian's chromium and
# firefox-esr.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

# package:command pairs; a command on PATH means the package is usable.
# The machine images ship node and npm; nodejs/npm are here for bare ones.
wanted=(chromium:chromium nftables:nft iproute2:ip util-linux:unshare nodejs:node npm:npm
        prometheus:promtool coturn:turnutils_uclient systemd:systemd-analyze curl:curl
        libhwloc-dev:/usr/include/hwloc.h libudev-dev:/usr/include/libudev.h
        firefox-esr:firefox-esr espeak-ng:espeak-ng
        gstreamer1.0-tools:gst-launch-1.0 gstreamer1.0-plugins-base:/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstvideotestsrc.so
        gstreamer1.0-plugins-good:/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstvpx.so
        gstreamer1.0-plugins-bad:/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstwebrtc.so
        gstreamer1.0-nice:/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstnice.so
        gir1.2-gst-plugins-bad-1.0:/usr/lib/x86_64-linux-gnu/girepository-1.0/GstWebRTC-1.0.typelib
        python3-gi:/usr/lib/python3/dist-packages/gi/__init__.py
        redis-server:redis-server redis-tools:redis-cli openssl:openssl)
missing=()
for pair in "${wanted[@]}"; do
  pkg="${pair%%:*}" cmd="${pair#*:}"
  if command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || [ -x "/usr/bin/$cmd" ] || [ -f "$cmd" ]; then
    continue
  fi
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    continue
  fi
  missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "install-test-deps: installing ${missing[*]}"
  # Debian's postinst scripts would start prometheus/coturn daemons on the
  # host; tests start their own inside network namespaces.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  # An empty list dir means apt-get update never ran on this machine.
  if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e '^lock$' -e '^partial$' || true)" ] \
     || ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    apt-get update -qq
    apt-get install -y --no-install-recommends "${missing[@]}"
  fi
fi

cd "$repo/e2e"
# Skip npm when node_modules already matches the lockfile (npm writes this copy).
if [ -f package-lock.json ] && [ -f node_modules/.package-lock.json ] \
   && [ -d node_modules/playwright-core ] && [ -d node_modules/puppeteer-core ] \
   && ! [ package-lock.json -nt node_modules/.package-lock.json ]; then
  exit 0
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi
