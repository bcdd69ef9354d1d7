// Simulcast: a 720p Chromium WHIP publisher with three encodings (rids
// q/h/f at a quarter, half and full size) on shard 0, and two WHEP viewers
// on shard 1. Viewer A is unconstrained; viewer B sits behind an nftables
// policer of about 300 kbit/s on its own port (recipes: "A bottleneck for
// one viewer"). Each viewer's stream allocator must pick the layer its link
// carries: A decodes 1280x720, B a small layer smoothly, and B goes back to
// 1280 once its limit is lifted. Meanwhile the layer neither viewer needs
// is not forwarded to their shard. Prints one JSON line of figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSfud, getSessions } from './lib/sfud.mjs';
import { withHarness } from './lib/scenario.mjs';
import { publish, play, waitForMedia } from './lib/browser.mjs';
import { requireNamespace, applyPolicer, removeLoss, droppedPackets } from './lib/loss.mjs';
import { instrument, sample, receiveSide, windowFigures } from './lib/quality.mjs';
import { pollUntil, sleep } from './lib/util.mjs';
import { loadIon, joinRoom, roomState, preferLayer, remoteWidths } from './lib/ion.mjs';
import { wsUrlOf } from './lib/rooms.mjs';

// 37 kB/s is about 300 kbit/s.
const POLICE_KBYTES = 37;
const ENCODINGS = [
  { rid: 'q', scaleResolutionDownBy: 4 },
  { rid: 'h', scaleResolutionDownBy: 2 },
  { rid: 'f', scaleResolutionDownBy: 1 },
];

const width = (s) => (s && s.resolution ? Number(s.resolution.split('x')[0]) : 0);

// What the publisher sends per rid: a viewer can only climb to a layer the
// publisher's own estimate and CPU let it encode.
async function publisherLayers(page) {
  const pc = (await sample(page)).pcs.find((p) => p.outbound.length > 0);
  if (!pc) return null;
  return {
    availableOutgoingBitrate: pc.pair?.availableOutgoingBitrate ?? null,
    rids: pc.outbound.map((o) => ({ rid: o.rid, w: o.frameWidth ?? 0, fps: o.framesPerSecond ?? 0, limit: o.qualityLimitationReason, target: o.targetBitrate })),
  };
}

async function stats(url) {
  const r = await fetch(`${url}/api/v1/stats`);
  assert.equal(r.status, 200);
  const shards = (await r.json()).shards;
  const sum = (k) => shards.reduce((n, s) => n + (s.simulcast[k] || 0), 0);
  return {
    layerSwitches: sum('layer_switches'),
    layerPruned: sum('layer_pruned'),
    probes: `${sum('probes_succeeded')}/${sum('probes_started')}`,
    probePackets: sum('probe_packets'),
  };
}

test('simulcast: a policed viewer gets a small layer smoothly, an unconstrained one 720p, and the policed one 720p again once freed', { timeout: 110000 }, async (t) => {
  requireNamespace();
  const wallStart = Date.now();
  const name = 'simulcast';
  const server = await startSfud({
    name,
    env: { SFUD_DATAPLANE__SHARDS: '2', SFUD_DATAPLANE__ALLOW_PLACEMENT_HINT: 'true' },
  });
  await withHarness(t, { name, server }, async (ctx) => {
    await instrument(ctx.browser, { camera: { width: 1280, height: 720 } });
    const pubPage = await ctx.browser.newPage(`${server.url}/`);
    const pageA = await ctx.browser.newPage(`${server.url}/`);
    const pageB = await ctx.browser.newPage(`${server.url}/`);
    const pub = await publish(pubPage, 'pub', 'simulcast', { shard: 0, sendEncodings: ENCODINGS });
    const published = Date.now();
    const a = await play(pageA, 'sub', 'simulcast', { shard: 1, timeoutMs: 15000 });
    const b = await play(pageB, 'sub', 'simulcast', { shard: 1, timeoutMs: 15000 });
    await waitForMedia(pageB, 'sub', { frames: 20, timeoutMs: 15000, signal: t.signal, history: ctx.history });

    // The cross-shard path is the one measured.
    const sessions = await getSessions(server.url);
    const shardOf = (id) => (sessions.find((s) => id.startsWith(s.id)) || {}).shard;
    assert.deepEqual([shardOf(pub.id), shardOf(a.id), shardOf(b.id)], [0, 1, 1], JSON.stringify(sessions));

    // The publisher sends all three encodings (it starts them as its own
    // estimate grows).
    let sent = [];
    await pollUntil(async () => {
      sent = (await sample(pubPage)).pcs.flatMap((p) => p.outbound).filter((o) => o.packetsSent > 0).map((o) => o.rid);
      return ['q', 'h', 'f'].every((r) => sent.includes(r));
    }, { timeoutMs: 10000, signal: t.signal, what: 'the publisher sending rids q, h and f', describe: () => JSON.stringify(sent) });

    const viewerB = (await sample(pageB)).pcs.find((p) => p.inbound.length > 0);
    const port = viewerB && viewerB.pair && viewerB.pair.localPort;
    assert.ok(port, `viewer B's local port: ${JSON.stringify(viewerB && viewerB.pair)}`);
    await applyPolicer(port, POLICE_KBYTES);
    const fig = { case: name, policeKbytesPerSec: POLICE_KBYTES };
    try {
      // A: 1280x720 within 20 s of publishing.
      let aSide = null;
      let sending = null;
      await pollUntil(async () => {
        aSide = receiveSide(await sample(pageA));
        sending = await publisherLayers(pubPage);
        return width(aSide) === 1280;
      }, { timeoutMs: Math.max(1000, 20000 - (Date.now() - published)), signal: t.signal, what: 'viewer A decoding 1280 wide',
        describe: async () => JSON.stringify({ a: aSide, publisher: sending, sfud: await stats(server.url) }) });
      fig.aResolution = aSide.resolution;
      fig.aAfterSecs = (Date.now() - published) / 1000;
      // B settles for 10 s, then is measured over 10 s.
      await sleep(10000);
      const b0 = receiveSide(await sample(pageB));
      const pruned0 = (await stats(server.url)).layerPruned;
      await sleep(10000);
      const b1 = receiveSide(await sample(pageB));
      // With A on 1280 and B on a small layer, the third layer is wanted
      // by nobody on shard 1: the publisher's shard stops copying it there.
      fig.prunedInWindow = (await stats(server.url)).layerPruned - pruned0;
      const w = windowFigures(b0, b1);
      Object.assign(fig, { bResolution: w.resolution, bFps: w.fps, bFreezesSecs: w.freezesSecs, bFreezeCount: w.freezeCount, bPacketsLost: w.packetsLost });
      fig.droppedByPolicer = await droppedPackets();
      fig.aResolutionThen = receiveSide(await sample(pageA)).resolution;
    } finally {
      await removeLoss();
    }
    const lifted = Date.now();
    let bSide = null;
    try {
      await pollUntil(async () => {
        bSide = receiveSide(await sample(pageB));
        return width(bSide) === 1280;
      }, { timeoutMs: 15000, signal: t.signal, what: 'viewer B back at 1280 wide after the limit is lifted', describe: () => JSON.stringify(bSide) });
      fig.bBackAt1280Secs = (Date.now() - lifted) / 1000;
    } finally {
      Object.assign(fig, await stats(server.url));
      fig.wallSecs = (Date.now() - wallStart) / 1000;
      console.log(JSON.stringify(fig));
    }
    assert.ok(width({ resolution: fig.bResolution }) <= 640, `B decodes at most 640 wide: ${JSON.stringify(fig)}`);
    assert.ok(fig.bFps >= 15, `B decodes >= 15 fps: ${JSON.stringify(fig)}`);
    assert.ok(fig.bFreezesSecs < 1, `B freezes < 1 s in the last 10 s: ${JSON.stringify(fig)}`);
    assert.ok(fig.prunedInWindow > 0, `a layer nobody needed was pruned: ${JSON.stringify(fig)}`);
  });
});

test('simulcast: ion-sdk-js publishes simulcast: true; a subscriber\'s setRemoteMedia for the low layer is honoured and reported', { timeout: 60000 }, async (t) => {
  const wallStart = Date.now();
  const name = 'simulcast-ion';
  const server = await startSfud({ name, env: { SFUD_DATAPLANE__SHARDS: '2' } });
  await withHarness(t, { name, server }, async (ctx) => {
    const pubPage = await ctx.browser.newPage(`${server.url}/`);
    const subPage = await ctx.browser.newPage(`${server.url}/`);
    await loadIon(pubPage);
    await loadIon(subPage);
    const wsUrl = wsUrlOf(server.url);
    // ion-sdk-js at 'hd' with simulcast: rids f, h, q at 1280, 640, 320 wide.
    const { streamId } = await joinRoom(pubPage, 'pub', { wsUrl, sid: 'sim-ion', uid: 'alice', publish: { audio: true, video: true, resolution: 'hd', simulcast: true } });
    await joinRoom(subPage, 'sub', { wsUrl, sid: 'sim-ion', uid: 'bob', publish: false });
    let widths = {};
    await pollUntil(async () => {
      widths = await remoteWidths(subPage, 'sub');
      return (widths[streamId] || 0) > 320;
    }, { timeoutMs: 20000, signal: t.signal, what: 'bob decoding alice above the low layer', describe: () => JSON.stringify(widths) });
    const before = widths[streamId];
    assert.equal(await preferLayer(subPage, 'sub', 'low'), 1);
    const asked = Date.now();
    await pollUntil(async () => {
      widths = await remoteWidths(subPage, 'sub');
      return widths[streamId] === 320;
    }, { timeoutMs: 10000, signal: t.signal, what: 'bob decoding alice at 320 wide after preferLayer(low)', describe: () => JSON.stringify(widths) });
    const fig = { case: name, widthBefore: before, widthAfterLow: widths[streamId], lowAfterSecs: (Date.now() - asked) / 1000 };
    let state = null;
    await pollUntil(async () => {
      state = await roomState(subPage, 'sub');
      return state.activeLayers.some((m) => m.streamId === streamId && m.activeLayer === 'low');
    }, { timeoutMs: 5000, signal: t.signal, what: 'an activeLayer message naming the low layer', describe: () => JSON.stringify(state && state.activeLayers) });
    fig.activeLayer = state.activeLayers[state.activeLayers.length - 1];
    fig.wallSecs = (Date.now() - wallStart) / 1000;
    console.log(JSON.stringify(fig));
  });
});
