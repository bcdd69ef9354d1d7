// The publish -> watch -> stop scenario shared by the sfud tests and the
// harness self-test, with failure reports that show what was seen.
import assert from 'node:assert/strict';
import { launchBrowser, publish, play, stop, stats, waitForMedia } from './browser.mjs';
import { sleep } from './util.mjs';

/**
 * Runs `body(ctx)` with a browser and collects diagnostics. On failure prints
 * the stats seen, the browser console and `server.logTail()` (if given), then
 * rethrows. Always closes the browser and stops the server (ctx.server, which
 * `body` may also set when its server needs the browser).
 */
export async function withHarness(t, { name, server, browserArgs = [] }, body) {
  const ctx = { history: [], server, browser: null };
  // When the runner's timeout cancels the test, closing the browser makes any
  // pending page.evaluate() reject, so `body` unwinds and cleans up here
  // instead of running on into the next test.
  const onAbort = () => { if (ctx.browser) ctx.browser.close(); };
  t.signal.addEventListener('abort', onAbort, { once: true });
  try {
    ctx.browser = await launchBrowser({ name, extraArgs: browserArgs });
    if (t.signal.aborted) throw new Error('test cancelled');
    return await body(ctx);
  } catch (e) {
    const lines = [`--- ${name} failed: ${e.message}`];
    lines.push('--- stats seen (last 10):', ...ctx.history.slice(-10).map((h) => JSON.stringify(h)));
    if (ctx.browser) lines.push('--- browser console (tail):', ctx.browser.consoleTail());
    if (ctx.server && ctx.server.exitInfo) lines.push(`--- server exited early: ${JSON.stringify(ctx.server.exitInfo)}`);
    if (ctx.server && ctx.server.logTail) {
      lines.push(`--- server log (tail of ${ctx.server.logPath}):`, ctx.server.logTail(80));
    }
    console.error(lines.join('\n'));
    throw e;
  } finally {
    t.signal.removeEventListener('abort', onAbort);
    if (ctx.browser) await ctx.browser.close();
    if (ctx.server && ctx.server.stop) await ctx.server.stop();
  }
}

/**
 * Publisher on page A, one viewer on page B; asserts media flows, then stops
 * the publisher and asserts the viewer's frame count freezes. Returns ids.
 */
export async function publishWatchStop(t, ctx, { room, pubOpts = {}, subOpts = {}, afterMedia } = {}) {
  const pageA = await ctx.browser.newPage(`${ctx.server.url}/`);
  const pageB = await ctx.browser.newPage(`${ctx.server.url}/`);

  const pub = await publish(pageA, 'pub', room, pubOpts);
  const started = Date.now();
  const sub = await play(pageB, 'sub', room, { timeoutMs: 15000, ...subOpts });
  const remaining = Math.max(1000, 15000 - (Date.now() - started));
  await waitForMedia(pageB, 'sub', { frames: 90, timeoutMs: remaining, signal: t.signal, history: ctx.history });

  if (afterMedia) await afterMedia({ pub, sub, pageA, pageB });

  await stop(pageA, 'pub');
  await assertFrozen(t, ctx, pageB, 'sub');
  return { pub, sub, pageA, pageB };
}

/** After a 1 s grace, the handle's framesDecoded must not move for ~2 s. */
export async function assertFrozen(t, ctx, page, key) {
  await sleep(1000);
  const before = await stats(page, key);
  ctx.history.push({ t: Date.now(), key, phase: 'after-stop', ...before });
  await sleep(2000);
  const after = await stats(page, key);
  ctx.history.push({ t: Date.now(), key, phase: 'after-stop+2s', ...after });
  assert.equal(after.video.framesDecoded, before.video.framesDecoded,
    `${key}: video framesDecoded still rising after the publisher stopped`);
}

/**
 * One publisher on page A and `viewers` PeerConnections in page B (five
 * renderers would cost a 2-core box more than the server under test); all
 * viewers must decode >= 90 frames. Returns the viewers' final stats.
 */
export async function manyViewers(t, ctx, { room, viewers = 5, timeoutMs = 25000 } = {}) {
  const pageA = await ctx.browser.newPage(`${ctx.server.url}/`);
  const pageB = await ctx.browser.newPage(`${ctx.server.url}/`);
  await publish(pageA, 'pub', room);
  const keys = Array.from({ length: viewers }, (_, i) => `sub${i}`);
  await Promise.all(keys.map((k) => play(pageB, k, room, { timeoutMs: 15000 })));
  await Promise.all(keys.map((k) =>
    waitForMedia(pageB, k, { frames: 90, timeoutMs, signal: t.signal, history: ctx.history })));
  const finals = [];
  for (const k of keys) {
    const s = await stats(pageB, k);
    ctx.history.push({ t: Date.now(), key: k, phase: 'final', ...s });
    assert.ok(s.video.framesDecoded >= 90, `${k}: ${JSON.stringify(s)}`);
    finals.push(s);
  }
  return finals;
}
