// GStreamer webrtcbin as a WHIP publisher with bundle-policy max-bundle
// (issue 13): its second section comes with port 0 and a=bundle-only, and
// its strict answer parser wants a fingerprint in every section. Played in
// Chromium. Run inside a private network namespace:
//   SFUD_BIN=target/release/sfud scripts/in-netns.sh node --test --test-concurrency=1 e2e/gstreamer.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSfud } from './lib/sfud.mjs';
import { withHarness } from './lib/scenario.mjs';
import { play, waitForMedia } from './lib/browser.mjs';
import { killAllOnExit } from './lib/util.mjs';
import { requireNamespace } from './lib/loss.mjs';

// Debian's python3, the one python3-gi is built for (a pyenv python on PATH
// would not see it).
const PYTHON = process.env.GST_PYTHON || '/usr/bin/python3';
const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'whip_gst.py');

/** Starts the publisher; resolves with { location, stop(), output() } once it has its answer. */
function startGstPublisher(url, { timeoutMs = 15000 } = {}) {
  const child = spawn(PYTHON, [SCRIPT, url], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, GST_DEBUG: '1' } });
  const unregister = killAllOnExit(child);
  let out = '';
  const keep = (d) => { out = (out + d).slice(-20000); };
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => { unregister(); resolve({ code, sig }); }));
  const handle = {
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { handle.stop(); reject(new Error(`no WHIP answer within ${timeoutMs} ms:\n${out}`)); }, timeoutMs);
    // A line can arrive in several chunks: match on everything so far.
    let stdout = '';
    child.stdout.on('data', (d) => {
      keep(d);
      stdout = (stdout + d).slice(-4000);
      const m = /^LOCATION (\S+)\n/m.exec(stdout);
      if (m) { clearTimeout(timer); resolve({ ...handle, location: m[1] }); }
    });
    exited.then((e) => { clearTimeout(timer); reject(new Error(`publisher exited ${JSON.stringify(e)}:\n${out}`)); });
  });
}

// libnice (webrtcbin's ICE agent) never gathers loopback addresses, and the
// test namespace has nothing else: give it one non-loopback address on a veth
// pair. Packets between it and sfud's 127.0.0.1 still go through lo.
const VETH = 'sfudgst0';
function ip(...args) {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 5000 });
  assert.equal(r.status, 0, `ip ${args.join(' ')}: ${r.stderr}`);
}
function addHostAddress() {
  spawnSync('ip', ['link', 'del', VETH]); // left over from a crashed run
  ip('link', 'add', VETH, 'type', 'veth', 'peer', 'name', `${VETH}p`);
  ip('addr', 'add', '10.213.0.1/32', 'dev', VETH);
  ip('link', 'set', VETH, 'up');
  ip('link', 'set', `${VETH}p`, 'up');
}

test('GStreamer webrtcbin (max-bundle) publishes over WHIP, Chromium plays', { timeout: 60000 }, async (t) => {
  requireNamespace();
  addHostAddress();
  t.after(() => spawnSync('ip', ['link', 'del', VETH]));
  const server = await startSfud({ name: 'gstreamer', env: { SFUD_DATAPLANE__SHARDS: '1' } });
  await withHarness(t, { name: 'gstreamer', server }, async (ctx) => {
    const gst = await startGstPublisher(`${server.url}/whip/gst-room`);
    try {
      assert.match(gst.output(), /a=bundle-only/, 'webrtcbin offered without a=bundle-only');
      const page = await ctx.browser.newPage(`${server.url}/`);
      await play(page, 'sub', 'gst-room', { timeoutMs: 15000 });
      await waitForMedia(page, 'sub', { frames: 90, timeoutMs: 25000, signal: t.signal, history: ctx.history });
    } catch (e) {
      console.error(`--- gstreamer publisher output (tail):\n${gst.output().slice(-6000)}`);
      throw e;
    } finally {
      await gst.stop();
    }
  });
});
