// A livestream survives its encoder reconnecting: WHEP viewers follow the
// room's new WHIP publisher without a new POST (same SSRC, no sequence jump),
// and end cleanly when none comes back within room.publisher_grace_secs.
// Also under 5% random loss per hop, as every media feature is tested.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSfud } from './lib/sfud.mjs';
import { withHarness } from './lib/scenario.mjs';
import { publish, play, stop, waitForMedia } from './lib/browser.mjs';
import { requireNamespace, withLoss } from './lib/loss.mjs';
import { pollUntil, sleep } from './lib/util.mjs';

const VIEWERS = [{ key: 'v0', shard: 0 }, { key: 'v1', shard: 1 }, { key: 'v2', shard: 1 }];

/** The viewer handle's video inbound-rtp and its PeerConnection's state. */
function inbound(page, key) {
  return page.evaluate(async (key) => {
    const h = window.__e2e && window.__e2e[key];
    if (!h) throw new Error(`no handle ${key}`);
    let v = null;
    (await h.pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') v = s;
    });
    return {
      state: h.pc.connectionState,
      ssrc: v && v.ssrc,
      framesDecoded: (v && v.framesDecoded) || 0,
      packetsLost: (v && v.packetsLost) || 0,
      packetsReceived: (v && v.packetsReceived) || 0,
    };
  }, key);
}

async function viewersWatching(t, ctx, server, room) {
  const page = await ctx.browser.newPage(`${server.url}/`);
  const handles = {};
  for (const v of VIEWERS) {
    handles[v.key] = await play(page, v.key, room, { timeoutMs: 15000, shard: v.shard });
  }
  for (const v of VIEWERS) {
    await waitForMedia(page, v.key, { frames: 60, timeoutMs: 20000, signal: t.signal, history: ctx.history });
  }
  return { page, handles };
}

/** Publisher leaves, a new one (a new page) publishes 1 s later; returns the figures. */
async function republish(t, ctx, server, room, viewerPage, { pubOpts = {} } = {}) {
  const before = {};
  for (const v of VIEWERS) before[v.key] = await inbound(viewerPage, v.key);
  await stop(ctx.pubPage, 'pub');
  await sleep(1000);
  const pageC = await ctx.browser.newPage(`${server.url}/`);
  await publish(pageC, 'pub2', room, { ...pubOpts, shard: 0 });
  const republishedAt = Date.now();
  const after = {};
  for (const v of VIEWERS) {
    after[v.key] = await pollUntil(async () => {
      const s = await inbound(viewerPage, v.key);
      ctx.history.push({ t: Date.now(), key: v.key, phase: 'after republish', ...s });
      return s.framesDecoded - before[v.key].framesDecoded >= 90 ? s : null;
    }, {
      timeoutMs: Math.max(1000, 10000 - (Date.now() - republishedAt)),
      signal: t.signal,
      what: `${v.key} decodes 90 frames of the new publisher within 10 s, without a new POST`,
      describe: () => JSON.stringify({ before: before[v.key], now: ctx.history.filter((h) => h.key === v.key).slice(-1)[0] }),
    });
  }
  return { before, after, pageC };
}

function assertContinuous(before, after) {
  for (const v of VIEWERS) {
    const b = before[v.key];
    const a = after[v.key];
    assert.equal(a.ssrc, b.ssrc, `${v.key}: same SSRC across the republish`);
    assert.equal(a.state, 'connected', `${v.key}: still connected`);
    // A sequence jump would show as a burst of "lost" packets.
    assert.ok(a.packetsLost - b.packetsLost < 50, `${v.key}: no sequence jump: lost ${b.packetsLost} -> ${a.packetsLost}`);
  }
}

test('WHEP viewers on 2 shards follow a new WHIP publisher without a new POST', { timeout: 90000 }, async (t) => {
  requireNamespace();
  const name = 'republish';
  const server = await startSfud({
    name,
    env: { SFUD_DATAPLANE__SHARDS: '2', SFUD_DATAPLANE__ALLOW_PLACEMENT_HINT: 'true' },
  });
  await withHarness(t, { name, server }, async (ctx) => {
    ctx.pubPage = await ctx.browser.newPage(`${server.url}/`);
    await publish(ctx.pubPage, 'pub', 'rp', { shard: 0 });
    const { page } = await viewersWatching(t, ctx, server, 'rp');
    const { before, after } = await republish(t, ctx, server, 'rp', page);
    console.log(JSON.stringify({ case: name, before, after }));
    assertContinuous(before, after);
    const rooms = await (await fetch(`${server.url}/api/v1/rooms`)).json();
    const room = (rooms.rooms || rooms).find((r) => r.name === 'rp');
    assert.ok(room && room.whip_publisher && room.whep_viewers === 3, `one room, a new publisher, viewers kept: ${JSON.stringify(rooms)}`);
  });
});

test('the same at 5% random loss per hop', { timeout: 90000 }, async (t) => {
  requireNamespace();
  const name = 'republish-loss';
  const server = await startSfud({
    name,
    env: { SFUD_DATAPLANE__SHARDS: '2', SFUD_DATAPLANE__ALLOW_PLACEMENT_HINT: 'true' },
  });
  await withHarness(t, { name, server }, async (ctx) => {
    ctx.pubPage = await ctx.browser.newPage(`${server.url}/`);
    await publish(ctx.pubPage, 'pub', 'rpl', { shard: 0 });
    const { page } = await viewersWatching(t, ctx, server, 'rpl');
    await withLoss(5, {}, async () => {
      const { before, after } = await republish(t, ctx, server, 'rpl', page);
      console.log(JSON.stringify({ case: name, before, after }));
      assertContinuous(before, after);
    });
  });
});

test('no publisher within the grace period: viewers end cleanly and their resources answer 404', { timeout: 60000 }, async (t) => {
  requireNamespace();
  const name = 'republish-grace';
  const server = await startSfud({
    name,
    env: { SFUD_DATAPLANE__SHARDS: '2', SFUD_DATAPLANE__ALLOW_PLACEMENT_HINT: 'true', SFUD_ROOM__PUBLISHER_GRACE_SECS: '2' },
  });
  await withHarness(t, { name, server }, async (ctx) => {
    const pubPage = await ctx.browser.newPage(`${server.url}/`);
    await publish(pubPage, 'pub', 'rpg', { shard: 0 });
    const { page, handles } = await viewersWatching(t, ctx, server, 'rpg');
    await stop(pubPage, 'pub');
    // Still connected inside the grace period.
    await sleep(1000);
    for (const v of VIEWERS) assert.equal((await inbound(page, v.key)).state, 'connected', `${v.key} during the grace period`);
    for (const v of VIEWERS) {
      await pollUntil(async () => (await inbound(page, v.key)).state !== 'connected', {
        timeoutMs: 10000, signal: t.signal, what: `${v.key}: connection state leaves connected after the grace period`,
      });
      const r = await fetch(new URL(handles[v.key].location, server.url), { method: 'DELETE' });
      assert.equal(r.status, 404, `${v.key}: its resource is gone`);
    }
  });
});

test('a new publisher the viewers cannot decode (H.264 to VP8 viewers) ends them cleanly', { timeout: 60000 }, async (t) => {
  requireNamespace();
  const name = 'republish-codec';
  const server = await startSfud({ name, env: { SFUD_DATAPLANE__SHARDS: '1' } });
  await withHarness(t, { name, server }, async (ctx) => {
    const pubPage = await ctx.browser.newPage(`${server.url}/`);
    await publish(pubPage, 'pub', 'rpc');
    const page = await ctx.browser.newPage(`${server.url}/`);
    const h = await play(page, 'v', 'rpc', { timeoutMs: 15000 });
    await waitForMedia(page, 'v', { frames: 30, timeoutMs: 15000, signal: t.signal, history: ctx.history });
    await stop(pubPage, 'pub');
    await sleep(500);
    const pageC = await ctx.browser.newPage(`${server.url}/`);
    await publish(pageC, 'pub2', 'rpc', { videoCodec: 'H264' });
    await pollUntil(async () => (await inbound(page, 'v')).state !== 'connected', {
      timeoutMs: 10000, signal: t.signal, what: 'the VP8 viewer is ended when the new publisher sends H.264',
    });
    const r = await fetch(new URL(h.location, server.url), { method: 'DELETE' });
    assert.equal(r.status, 404);
  });
});
