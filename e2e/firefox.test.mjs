// Firefox ESR against sfud (issue 13), with the browsers' default max-bundle:
// Firefox offers every section after the first with port 0 and
// a=bundle-only (RFC 8843), which sfud must take as live. Firefox runs under
// puppeteer-core over WebDriver BiDi, Chromium under playwright-core. Run
// inside a private network namespace:
//   SFUD_BIN=target/release/sfud scripts/in-netns.sh node --test --test-concurrency=1 e2e/firefox.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSfud } from './lib/sfud.mjs';
import { withHarness } from './lib/scenario.mjs';
import { publish, play, waitForMedia, stats } from './lib/browser.mjs';
import { launchFirefox } from './lib/firefox.mjs';
import { loadIon, joinRoom, roomStats, roomState, waitForRemoteFrames } from './lib/ion.mjs';
import { wsUrlOf } from './lib/rooms.mjs';
import { requireNamespace, withLoss, droppedPackets } from './lib/loss.mjs';
import { pollUntil } from './lib/util.mjs';

const CASE_TIMEOUT_MS = 60000;

/** withHarness (Chromium in ctx.browser) plus a Firefox in ctx.firefox. */
async function withFirefox(t, name, env, body) {
  const server = await startSfud({ name, env: { SFUD_DATAPLANE__SHARDS: '1', ...env } });
  await withHarness(t, { name, server }, async (ctx) => {
    ctx.firefox = await launchFirefox({ name });
    try {
      return await body(ctx);
    } catch (e) {
      console.error(`--- firefox console (tail):\n${ctx.firefox.consoleTail()}`);
      throw e;
    } finally {
      await ctx.firefox.close();
    }
  });
}

/** The publisher's offer really used bundle-only: the case this file is about. */
async function assertBundleOnlyOffer(page, key) {
  const sdp = await page.evaluate((key) => window.__e2e[key].pc.localDescription.sdp, key);
  assert.match(sdp, /a=bundle-only/, 'Firefox offered without a=bundle-only');
  assert.match(sdp, /m=video 0 /, 'Firefox offered video on a real port');
}

test('Firefox publishes, Chromium plays', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  await withFirefox(t, 'ff-publish', {}, async (ctx) => {
    const ff = await ctx.firefox.newPage(`${ctx.server.url}/`);
    const cr = await ctx.browser.newPage(`${ctx.server.url}/`);
    await publish(ff, 'pub', 'ff-room');
    await assertBundleOnlyOffer(ff, 'pub');
    await play(cr, 'sub', 'ff-room', { timeoutMs: 15000 });
    await waitForMedia(cr, 'sub', { frames: 90, timeoutMs: 20000, signal: t.signal, history: ctx.history });
  });
});

test('Chromium publishes, Firefox plays', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  await withFirefox(t, 'ff-play', {}, async (ctx) => {
    const cr = await ctx.browser.newPage(`${ctx.server.url}/`);
    const ff = await ctx.firefox.newPage(`${ctx.server.url}/`);
    await publish(cr, 'pub', 'cr-room');
    await play(ff, 'sub', 'cr-room', { timeoutMs: 15000 });
    await assertBundleOnlyOffer(ff, 'sub');
    await waitForMedia(ff, 'sub', { frames: 90, timeoutMs: 20000, signal: t.signal, history: ctx.history });
  });
});

test('Firefox plays under 5% random loss each way', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  requireNamespace();
  await withFirefox(t, 'ff-loss', {}, async (ctx) => {
    const cr = await ctx.browser.newPage(`${ctx.server.url}/`);
    const ff = await ctx.firefox.newPage(`${ctx.server.url}/`);
    await publish(cr, 'pub', 'loss-room');
    await withLoss(5, {}, async () => {
      await play(ff, 'sub', 'loss-room', { timeoutMs: 15000 });
      await waitForMedia(ff, 'sub', { frames: 90, timeoutMs: 25000, signal: t.signal, history: ctx.history });
      assert.ok(await droppedPackets() > 0, 'the loss rules dropped nothing');
    });
    // NACK/RTX and keyframe requests through sfud keep the picture going.
    const s = await stats(ff, 'sub');
    ctx.history.push({ t: Date.now(), key: 'sub', phase: 'final', ...s });
  });
});

test('Firefox meets Chromium in an ion-sdk-js room', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  await withFirefox(t, 'ff-room', { SFUD_ROOM__EMPTY_TIMEOUT_SECS: '0' }, async (ctx) => {
    const wsUrl = wsUrlOf(ctx.server.url);
    const pages = {
      fox: await ctx.firefox.newPage(`${ctx.server.url}/`),
      chrome: await ctx.browser.newPage(`${ctx.server.url}/`),
    };
    const streams = {};
    for (const [uid, page] of Object.entries(pages)) {
      await loadIon(page);
      ({ streamId: streams[uid] } = await joinRoom(page, uid, {
        wsUrl, sid: 'mixed', uid, publish: { audio: true, video: true, resolution: 'qvga' },
      }));
    }
    const other = { fox: streams.chrome, chrome: streams.fox };
    try {
      await Promise.all(Object.entries(pages).map(([uid, page]) =>
        waitForRemoteFrames(page, uid, [other[uid]], { frames: 90, timeoutMs: 25000, signal: t.signal, history: ctx.history })));
      for (const [uid, page] of Object.entries(pages)) {
        let s = null;
        await pollUntil(async () => {
          s = await roomStats(page, uid);
          return (s[other[uid]]?.audio.packetsReceived ?? 0) > 0;
        }, { timeoutMs: 5000, signal: t.signal, what: `${uid} receives audio`, describe: () => JSON.stringify(s) });
      }
    } catch (e) {
      for (const [uid, page] of Object.entries(pages)) {
        console.error(`--- ${uid}: ${JSON.stringify(await roomState(page, uid).catch((err) => err.message))}`);
      }
      throw e;
    }
  });
});
