// SVC: a 720p Chromium WHIP publisher sending VP9, then AV1, with
// scalabilityMode L3T3_KEY (three spatial and three temporal layers in one
// SSRC; AV1's layers in its dependency descriptor) on shard 0, and two WHEP
// viewers on shard 1. One sfud and one browser serve both cases. Viewer A is unconstrained; viewer B
// sits behind an nftables policer of about 300 kbit/s on its own port. Each
// viewer's downtrack filters the layers its allocator chose: A decodes
// 1280x720 (or, if the publisher's encoder itself is CPU-limited below
// 720p on a loaded machine, its top layer, at least 640 wide), B a lower
// spatial layer smoothly. Prints one JSON line of figures, wall time
// included, and on a timeout what A and the publisher were doing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSfud, getSessions } from './lib/sfud.mjs';
import { withHarness } from './lib/scenario.mjs';
import { publish, play, waitForMedia } from './lib/browser.mjs';
import { requireNamespace, applyPolicer, removeLoss, droppedPackets } from './lib/loss.mjs';
import { instrument, sample, receiveSide, windowFigures } from './lib/quality.mjs';
import { pollUntil, sleep } from './lib/util.mjs';

// 37 kB/s is about 300 kbit/s.
const POLICE_KBYTES = 37;

const width = (s) => (s && s.resolution ? Number(s.resolution.split('x')[0]) : 0);

/** NACK answering over every shard (/api/v1/stats), to tell repair from loss. */
async function nackCounters(url) {
  const shards = (await (await fetch(`${url}/api/v1/stats`)).json()).shards;
  const sum = (k) => shards.reduce((n, s) => n + (s[k] || 0), 0);
  return { nacks: sum('nacks_received'), unanswered: sum('nacks_unanswered'), resent: sum('retransmissions'), plisIn: sum('plis_received') };
}

/** The publisher's sending outbound-rtp (the SVC stream), or {}. */
async function publisherOut(page) {
  return (await sample(page)).pcs.flatMap((p) => p.outbound).find((o) => o.packetsSent > 0) || {};
}

async function svcCase(t, ctx, server, codec) {
  const caseStart = Date.now();
  const room = `svc-${codec.toLowerCase()}`;
  const pubPage = await ctx.browser.newPage(`${server.url}/`);
  const pageA = await ctx.browser.newPage(`${server.url}/`);
  const pageB = await ctx.browser.newPage(`${server.url}/`);
  const pub = await publish(pubPage, 'pub', room, { shard: 0, videoCodec: codec, sendEncodings: [{ scalabilityMode: 'L3T3_KEY' }] });
  const published = Date.now();
  const a = await play(pageA, 'sub', room, { shard: 1, timeoutMs: 15000 });
  const b = await play(pageB, 'sub', room, { shard: 1, timeoutMs: 15000 });
  await waitForMedia(pageB, 'sub', { frames: 20, timeoutMs: 15000, signal: t.signal, history: ctx.history });

  const sessions = await getSessions(server.url);
  const shardOf = (id) => (sessions.find((s) => id.startsWith(s.id)) || {}).shard;
  assert.deepEqual([shardOf(pub.id), shardOf(a.id), shardOf(b.id)], [0, 1, 1], JSON.stringify(sessions));

  // The publisher really sends SVC.
  const out = await publisherOut(pubPage);
  const fig = { case: room, publisher: { mode: out.scalabilityMode, width: out.frameWidth }, policeKbytesPerSec: POLICE_KBYTES };

  const viewerB = (await sample(pageB)).pcs.find((p) => p.inbound.length > 0);
  const port = viewerB && viewerB.pair && viewerB.pair.localPort;
  assert.ok(port, `viewer B's local port: ${JSON.stringify(viewerB && viewerB.pair)}`);
  await applyPolicer(port, POLICE_KBYTES);
  try {
    let aSide = null;
    let pubTop = {};
    await pollUntil(async () => {
      aSide = receiveSide(await sample(pageA));
      // What the publisher's encoder sends now: sfud cannot forward a
      // layer the encoder dropped because the machine ran out of CPU.
      const o = await publisherOut(pubPage);
      pubTop = { width: o.frameWidth, reason: o.qualityLimitationReason, targetBitrate: o.targetBitrate };
      return width(aSide) === 1280 || (pubTop.reason === 'cpu' && pubTop.width >= 640 && width(aSide) === pubTop.width);
    }, { timeoutMs: Math.max(1000, 20000 - (Date.now() - published)), signal: t.signal, what: `${codec}: viewer A decoding 1280 wide (or the publisher's top layer, if CPU-limited)`, describe: () => JSON.stringify({ viewerA: aSide, publisher: pubTop }) });
    fig.publisherThen = pubTop;
    fig.aResolution = aSide.resolution;
    fig.aAfterSecs = (Date.now() - published) / 1000;
    // B settles (A's switches up ask for keyframes, which B's policer
    // feels too), then is measured over 8 s.
    await sleep(Math.max(4000, 14000 - (Date.now() - published)));
    const b0 = receiveSide(await sample(pageB));
    const n0 = await nackCounters(server.url);
    await sleep(8000);
    const b1 = receiveSide(await sample(pageB));
    const n1 = await nackCounters(server.url);
    fig.inWindow = Object.fromEntries(Object.keys(n1).map((k) => [k, n1[k] - n0[k]]));
    const w = windowFigures(b0, b1);
    Object.assign(fig, { bResolution: w.resolution, bFps: w.fps, bFreezesSecs: w.freezesSecs, bFreezeCount: w.freezeCount, bPacketsLost: w.packetsLost });
    fig.droppedByPolicer = await droppedPackets();
    fig.aResolutionThen = receiveSide(await sample(pageA)).resolution;
  } finally {
    await removeLoss();
    fig.caseSecs = (Date.now() - caseStart) / 1000;
    console.log(JSON.stringify(fig));
  }
  for (const p of [pubPage, pageA, pageB]) await p.close();
  assert.equal(fig.publisher.mode, 'L3T3_KEY', `the publisher sends SVC: ${JSON.stringify(fig)}`);
  assert.ok(width({ resolution: fig.bResolution }) <= 640, `B decodes at most 640 wide: ${JSON.stringify(fig)}`);
  assert.ok(fig.bFps >= 10, `B decodes frames (>= 10 fps): ${JSON.stringify(fig)}`);
  assert.ok(fig.bFreezesSecs < 1, `B freezes < 1 s in the last 8 s: ${JSON.stringify(fig)}`);
}

test('svc: VP9 then AV1 L3T3_KEY, a policed viewer gets a lower spatial layer smoothly, an unconstrained one 720p', { timeout: 100000 }, async (t) => {
  requireNamespace();
  const wallStart = Date.now();
  const name = 'svc';
  const server = await startSfud({
    name,
    env: { SFUD_DATAPLANE__SHARDS: '2', SFUD_DATAPLANE__ALLOW_PLACEMENT_HINT: 'true' },
  });
  await withHarness(t, { name, server }, async (ctx) => {
    await instrument(ctx.browser, { camera: { width: 1280, height: 720 } });
    try {
      await svcCase(t, ctx, server, 'VP9');
      await svcCase(t, ctx, server, 'AV1');
    } finally {
      console.log(JSON.stringify({ case: name, wallSecs: (Date.now() - wallStart) / 1000 }));
    }
  });
});
