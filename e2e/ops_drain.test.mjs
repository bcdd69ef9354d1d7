// Graceful drain on SIGTERM (issue 5): sfud turns not-ready, refuses new
// sessions with 503 "draining", keeps live media flowing, and exits 0 when
// the last session ends or node.drain_timeout_secs passes. Headless
// Chromium on both ends. Run inside a private network namespace:
//   SFUD_BIN=target/release/sfud scripts/in-netns.sh node --test e2e/ops_drain.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSfud } from './lib/sfud.mjs';
import { withHarness } from './lib/scenario.mjs';
import { publish, play, stop, stats, waitForMedia } from './lib/browser.mjs';
import { connectRpc, DATA_ONLY_OFFER, brief } from './lib/jsonrpc.mjs';
import { sleep } from './lib/util.mjs';
import { whipOffer, whepOffer, postSdp, req } from './lib/ops.mjs';

const CASE_TIMEOUT_MS = 90000;

async function liveSession(t, ctx, room) {
  const pageA = await ctx.browser.newPage(`${ctx.server.url}/`);
  const pageB = await ctx.browser.newPage(`${ctx.server.url}/`);
  await publish(pageA, 'pub', room);
  await play(pageB, 'sub', room, { timeoutMs: 15000 });
  await waitForMedia(pageB, 'sub', { frames: 60, timeoutMs: 15000, signal: t.signal, history: ctx.history });
  return { pageA, pageB };
}

/** Resolves with sfud's exit info, or null after `ms`. */
const exitWithin = (server, ms) => Promise.race([server.exited, sleep(ms).then(() => null)]);

test('SIGTERM: not ready, new sessions refused, live one flows, exit 0 when it ends', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  const room = 'drain1';
  const server = await startSfud({ name: 'ops-drain', env: { SFUD_NODE__DRAIN_TIMEOUT_SECS: '30' } });
  await withHarness(t, { name: 'ops-drain', server }, async (ctx) => {
    const { pageA, pageB } = await liveSession(t, ctx, room);
    assert.equal((await req('GET', '/readyz')).status, 200, '/readyz before SIGTERM');

    process.kill(server.pid, 'SIGTERM');
    const termAt = Date.now();
    const before = await stats(pageB, 'sub');
    ctx.history.push({ t: Date.now(), key: 'sub', phase: 'at-sigterm', ...before });

    // Readiness flips promptly; liveness stays.
    let ready = null;
    for (let i = 0; i < 20; i++) {
      ready = await req('GET', '/readyz');
      if (ready.status === 503) break;
      await sleep(100);
    }
    assert.equal(ready.status, 503, `/readyz after SIGTERM: ${ready.status} ${ready.text}`);
    const health = await req('GET', '/healthz');
    assert.equal(health.status, 200, `/healthz while draining: ${health.status} ${health.text}`);

    // New sessions are refused with a clear reason.
    const whip = await postSdp(`/whip/${room}-new`, whipOffer());
    assert.equal(whip.status, 503, `new WHIP while draining: ${whip.status} ${whip.text}`);
    assert.match(whip.text, /draining/i, `new WHIP while draining: reason ${JSON.stringify(whip.text)}`);
    const whep = await postSdp(`/whep/${room}`, whepOffer());
    assert.equal(whep.status, 503, `new WHEP while draining: ${whep.status} ${whep.text}`);
    assert.match(whep.text, /draining/i, `new WHEP while draining: reason ${JSON.stringify(whep.text)}`);
    // A JSON-RPC join: refused at the upgrade (503) or with a JSON-RPC error.
    let rpc = null;
    try {
      rpc = await connectRpc('ws://127.0.0.1:7880/ws');
      const resp = await rpc.call('join', { sid: `${room}-rpc`, uid: 'late', offer: DATA_ONLY_OFFER }, { timeoutMs: 5000 });
      assert.ok(resp.error, `join while draining: ${brief(resp)}`);
      assert.match(resp.error.message, /draining/i, `join while draining: ${brief(resp)}`);
      t.diagnostic(`join while draining: JSON-RPC error ${resp.error.code} ${resp.error.message}`);
    } catch (e) {
      if (e.code === 'ERR_ASSERTION') throw e;
      assert.match(e.message, /503/, `WebSocket while draining: ${e.message}`);
      t.diagnostic(`WebSocket upgrade while draining refused: ${e.message}`);
    } finally {
      if (rpc) rpc.ws.terminate();
    }

    // The live session keeps flowing for ~3 s and sfud stays up.
    await sleep(Math.max(0, 3000 - (Date.now() - termAt)));
    const during = await stats(pageB, 'sub');
    ctx.history.push({ t: Date.now(), key: 'sub', phase: 'draining+3s', ...during });
    assert.equal(server.exitInfo, null, `sfud exited while a session was live: ${JSON.stringify(server.exitInfo)}`);
    assert.ok(during.video.framesDecoded >= before.video.framesDecoded + 30,
      `viewer stalled while draining: framesDecoded ${before.video.framesDecoded} -> ${during.video.framesDecoded}`);

    // The sessions end; sfud exits 0 soon after, well before the 30 s timeout.
    await stop(pageB, 'sub');
    await stop(pageA, 'pub');
    const endedAt = Date.now();
    const exit = await exitWithin(server, 8000);
    assert.ok(exit, `sfud still running 8 s after the last session ended (drain timeout is 30 s)`);
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, `sfud exit: ${JSON.stringify(exit)}`);
    t.diagnostic(`sfud exited ${Date.now() - endedAt} ms after the last session ended`);
  });
});

test('SIGTERM with a session left running: exit 0 after node.drain_timeout_secs', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  const server = await startSfud({ name: 'ops-drain-timeout', env: { SFUD_NODE__DRAIN_TIMEOUT_SECS: '2' } });
  await withHarness(t, { name: 'ops-drain-timeout', server }, async (ctx) => {
    await liveSession(t, ctx, 'drain2');
    const termAt = Date.now();
    process.kill(server.pid, 'SIGTERM');
    const exit = await exitWithin(server, 12000);
    const took = Date.now() - termAt;
    assert.ok(exit, 'sfud still running 12 s after SIGTERM with a 2 s drain timeout');
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, `sfud exit: ${JSON.stringify(exit)}`);
    assert.ok(took >= 1500, `sfud exited after ${took} ms, before the 2 s drain timeout, with a session live`);
    t.diagnostic(`sfud exited ${took} ms after SIGTERM`);
  });
});
