// Media that survives packet loss: headless Chromium through sfud with
// random loss on the media port (nftables, both directions, every hop), and
// the same browser connected directly to itself as the reference. Each case
// prints one JSON line of figures (docs/media-quality.md explains them) and
// asserts the quality bars on them. Needs root in a private network
// namespace (for nft):
//   SFUD_BIN=target/release/sfud scripts/in-netns.sh node --test --test-concurrency=1 e2e/loss.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startSfud, waitForShards } from './lib/sfud.mjs';
import { withHarness } from './lib/scenario.mjs';
import { publish, play, waitForMedia } from './lib/browser.mjs';
import { loadIon, joinRoom, roomState, waitForRemoteFrames } from './lib/ion.mjs';
import { wsUrlOf } from './lib/rooms.mjs';
import { requireNamespace, withLoss, droppedPackets, repairCounters, repairDelta } from './lib/loss.mjs';
import { instrument, sample, sendSide, receiveSide, measureWindow, pathFigures, waitForSendSide } from './lib/quality.mjs';
import { pollUntil } from './lib/util.mjs';

const HD = { width: 1280, height: 720 };
// The bars: what a viewer must decode of what the publisher
// encoded, and how long its picture may freeze, over a lossy window.
const MIN_DECODED_RATIO = 0.95;
const MAX_FREEZE_SECS = 1;
// Two Chromiums connected directly decode about 99% at 5% loss (see
// /work/shared/recipes.md); below this the reference itself is broken.
const MIN_REFERENCE_RATIO = 0.9;
const MIN_ESTIMATE_BPS = 1.5e6;
// At 2% loss the publisher may spend at most this long bandwidth-limited in
// 15 s (a tenth); directly connected it spends none.
const MAX_BANDWIDTH_LIMITED_SECS = 1.5;
// How long after publishing the 720p publisher may take to become
// unconstrained (directly connected: about 23 s) before the 2% phase starts.
const WARM_UP_MS = 40000;
// Each case's inner waits are bounded well below its timeout, so a case
// fails on its own (and removes its nft table) before the runner cancels it.
const CASE_TIMEOUT_MS = 100000;
const REFERENCE_PAGE = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), 'pages', 'reference.html')).href;

/** Prints the case's one-line summary; returns it for assertion messages. */
function report(name, figures) {
  const line = JSON.stringify({ case: name, ...figures });
  console.log(line);
  return line;
}

/** The bars for one publisher -> viewer path, as a list of misses. */
function misses(fig, label = 'viewer') {
  const out = [];
  if (!(fig.ratio >= MIN_DECODED_RATIO)) {
    out.push(`${label} decoded ${fig.framesDecoded} of ${fig.framesEncoded} frames encoded (ratio ${fig.ratio}, want >= ${MIN_DECODED_RATIO})`);
  }
  if (!(fig.totalFreezesDuration < MAX_FREEZE_SECS)) {
    out.push(`${label} froze ${fig.totalFreezesDuration} s in ${fig.freezeCount} freezes (want < ${MAX_FREEZE_SECS} s)`);
  }
  return out;
}

function assertNoMisses(list, line) {
  assert.ok(list.length === 0, `${list.join('; ')}\nfigures: ${line}`);
}

/**
 * Runs `ms` with `loss`% applied (per hop on the media port; `port: null`
 * for all UDP), sampling `pages` (name -> page) at both ends. Returns
 * measureWindow's { before, after, trace }, the packets nft dropped and,
 * with sfud running, what its repair counters did meanwhile.
 */
async function lossWindow(t, ctx, pages, { loss, ms, port, everyMs }) {
  const counters = ctx.server ? repairCounters : async () => null;
  const c0 = await counters();
  return withLoss(loss, { port }, async () => {
    const w = await measureWindow(pages, { ms, everyMs, history: ctx.history, signal: t.signal });
    const dropped = await droppedPackets();
    const c1 = await counters();
    return { ...w, dropped, sfud: c0 && c1 ? repairDelta(c0, c1) : null };
  });
}

/** Path figures of a lossWindow: publisher page `pub`, viewer page `sub`. */
function figuresOf(w, pub, sub, accept) {
  return pathFigures({
    pub: [sendSide(w.before[pub]), sendSide(w.after[pub])],
    sub: [receiveSide(w.before[sub], accept), receiveSide(w.after[sub], accept)],
  });
}

/**
 * A 720p WHIP publisher (page A) and a WHEP viewer (page B) in `room`; once
 * the viewer decodes, `loss`% per hop for `windowMs`. Returns the figures.
 */
async function whipWhepUnderLoss(t, ctx, { room, loss, windowMs, pubOpts = {}, subOpts = {}, afterMedia }) {
  await instrument(ctx.browser, { camera: HD });
  const pageA = await ctx.browser.newPage(`${ctx.server.url}/`);
  const pageB = await ctx.browser.newPage(`${ctx.server.url}/`);
  const pub = await publish(pageA, 'pub', room, pubOpts);
  const sub = await play(pageB, 'sub', room, { timeoutMs: 15000, ...subOpts });
  await waitForMedia(pageB, 'sub', { frames: 60, timeoutMs: 15000, signal: t.signal, history: ctx.history });
  if (afterMedia) await afterMedia({ pub, sub });
  const w = await lossWindow(t, ctx, { pub: pageA, sub: pageB }, { loss, ms: windowMs });
  return { lossPerHop: loss, droppedByNft: w.dropped, ...figuresOf(w, 'pub', 'sub'), sfud: w.sfud };
}

/**
 * Opens the direct-peer reference page and connects its two 720p peers.
 * Returns the page once the receiver decodes.
 */
async function startReference(t, ctx) {
  await instrument(ctx.browser);
  const page = await ctx.browser.newPage(REFERENCE_PAGE);
  await page.evaluate((camera) => window.reference.start(camera), HD);
  return page;
}

async function referenceDecodes(t, ctx, page, frames) {
  await pollUntil(async () => {
    const r = receiveSide(await sample(page));
    ctx.history.push({ t: Date.now(), phase: 'reference start', receive: r });
    return r && r.framesDecoded >= frames;
  }, { timeoutMs: 15000, signal: t.signal, what: `the direct receiver decodes ${frames} frames` });
}

/**
 * Case 4 from `startedAt` (when the publisher started): the estimate at 0%
 * loss within 15 s, a warm-up until the encoder is unconstrained, then 2%
 * loss for 15 s. Returns { fig, failed } (the misses of the bars).
 */
async function estimateThenLoss(t, ctx, { pubPage, subPage, startedAt, port }) {
  const sinceSecs = () => Number(((Date.now() - startedAt) / 1000).toFixed(1));
  const poll = { signal: t.signal, history: ctx.history };
  const estimate = await waitForSendSide(pubPage, (s) => s.availableOutgoingBitrate > MIN_ESTIMATE_BPS, {
    ...poll, timeoutMs: Math.max(0, 15000 - (Date.now() - startedAt)), what: 'estimate',
  });
  const estimateAtZeroLoss = { reached: estimate.reached, afterSecs: sinceSecs(), maxBps: estimate.maxEstimate };
  // Chromium starts a camera small and steps its resolution up as the
  // estimate allows: directly connected it reaches 720p, unconstrained,
  // about 23 s after the start. Loss only means something once it is there.
  const warm = await waitForSendSide(pubPage, (s) => s.qualityLimitationReason === 'none' && s.framesEncoded > 0, {
    ...poll, timeoutMs: Math.max(0, WARM_UP_MS - (Date.now() - startedAt)), what: 'unconstrained',
  });
  const warmUp = { unconstrained: warm.reached, afterSecs: sinceSecs(), resolution: warm.last?.resolution ?? null };
  // Whether or not they got there, go on: all figures belong in the report.
  const w = await lossWindow(t, ctx, { pub: pubPage, sub: subPage }, { loss: 2, ms: 15000, everyMs: 3000, port });
  const fig = {
    estimateAtZeroLoss,
    warmUp,
    lossPerHop: 2,
    droppedByNft: w.dropped,
    ...figuresOf(w, 'pub', 'sub'),
    reasonsSeen: [...new Set(w.trace.map((e) => e.pub.send?.qualityLimitationReason ?? null))],
  };
  const failed = [];
  if (!estimate.reached) {
    failed.push(`availableOutgoingBitrate stayed <= ${MIN_ESTIMATE_BPS} bit/s for 15 s at 0% loss (max ${estimate.maxEstimate})`);
  }
  if (fig.qualityLimitationReason === 'bandwidth' || fig.qualityLimitationReason === null) {
    failed.push(`after 15 s at 2% loss the publisher's qualityLimitationReason is ${fig.qualityLimitationReason}`);
  }
  if (!(fig.bandwidthLimitedSecs <= MAX_BANDWIDTH_LIMITED_SECS)) {
    failed.push(`the publisher was bandwidth-limited ${fig.bandwidthLimitedSecs} s of the 15 s at 2% loss (want <= ${MAX_BANDWIDTH_LIMITED_SECS} s)`);
  }
  return { fig, failed };
}

test('1 shard: 720p WHIP -> WHEP at 5% loss per hop for 30 s decodes >= 95% of frames, freezes < 1 s', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  requireNamespace();
  const name = 'loss-shards1';
  const server = await startSfud({ name, env: { SFUD_DATAPLANE__SHARDS: '1' } });
  await withHarness(t, { name, server }, async (ctx) => {
    const fig = await whipWhepUnderLoss(t, ctx, { room: 'loss1', loss: 5, windowMs: 30000 });
    assertNoMisses(misses(fig), report(name, fig));
  });
});

test('2 shards (publisher on 0, viewer on 1): 720p at 5% loss per hop for 30 s decodes >= 95%, freezes < 1 s', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  requireNamespace();
  const name = 'loss-shards2-pinned';
  const server = await startSfud({
    name,
    env: { SFUD_DATAPLANE__SHARDS: '2', SFUD_DATAPLANE__ALLOW_PLACEMENT_HINT: 'true' },
  });
  await withHarness(t, { name, server }, async (ctx) => {
    const fig = await whipWhepUnderLoss(t, ctx, {
      room: 'loss2',
      loss: 5,
      windowMs: 30000,
      pubOpts: { shard: 0 },
      subOpts: { shard: 1 },
      // The case is about the cross-shard path: make sure it is the one measured.
      afterMedia: ({ pub, sub }) => waitForShards(t, server.url, { pub, sub }),
    });
    assertNoMisses(misses(fig), report(name, fig));
  });
});

test('3-party ion-sdk-js room at 5% loss per hop: each decodes >= 95% of each remote\'s frames', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  requireNamespace();
  const name = 'loss-room3';
  const server = await startSfud({ name, env: { SFUD_DATAPLANE__SHARDS: '1', SFUD_ROOM__EMPTY_TIMEOUT_SECS: '0' } });
  await withHarness(t, { name, server }, async (ctx) => {
    await instrument(ctx.browser);
    const uids = ['alice', 'bob', 'carol'];
    const pages = {};
    const streamOf = {};
    for (const uid of uids) {
      pages[uid] = await ctx.browser.newPage(`${server.url}/`);
      await loadIon(pages[uid]);
    }
    // One page per participant, so a page's PeerConnections are exactly its
    // participant's publisher and subscriber transports.
    for (const uid of uids) {
      const joined = await joinRoom(pages[uid], uid, {
        wsUrl: wsUrlOf(server.url), sid: 'loss-room', uid, publish: { audio: true, video: true, resolution: 'vga' },
      });
      streamOf[uid] = joined.streamId;
    }
    const others = (uid) => uids.filter((u) => u !== uid);
    await Promise.all(uids.map((uid) => waitForRemoteFrames(pages[uid], uid, others(uid).map((u) => streamOf[u]), {
      frames: 40, timeoutMs: 20000, signal: t.signal, history: ctx.history,
    })));

    const w = await lossWindow(t, ctx, pages, { loss: 5, ms: 20000 });
    const pairs = {};
    const failed = [];
    for (const uid of uids) {
      const state = await roomState(pages[uid], uid);
      for (const from of others(uid)) {
        const remote = state.remotes.find((r) => r.streamId === streamOf[from]);
        const tracks = new Set(remote ? remote.tracks.map((x) => x.id) : []);
        const fig = figuresOf(w, from, uid, (id) => tracks.has(id));
        pairs[`${from}->${uid}`] = fig;
        if (!(fig.ratio >= MIN_DECODED_RATIO)) {
          failed.push(`${uid} decoded ${fig.framesDecoded} of ${fig.framesEncoded} frames ${from} encoded (ratio ${fig.ratio}, want >= ${MIN_DECODED_RATIO})`);
        }
      }
    }
    const ratios = Object.values(pairs).map((f) => f.ratio ?? 0);
    const line = report(name, { lossPerHop: 5, droppedByNft: w.dropped, minRatio: Math.min(...ratios), pairs, sfud: w.sfud });
    assertNoMisses(failed, line);
  });
});

test('0% loss: the publisher\'s estimate exceeds 1.5 Mbit/s within 15 s; at 2% loss for 15 s it is not bandwidth-limited', { timeout: CASE_TIMEOUT_MS + WARM_UP_MS }, async (t) => {
  requireNamespace();
  const name = 'loss-estimate';
  const server = await startSfud({ name, env: { SFUD_DATAPLANE__SHARDS: '1' } });
  await withHarness(t, { name, server }, async (ctx) => {
    await instrument(ctx.browser, { camera: HD });
    const pageA = await ctx.browser.newPage(`${server.url}/`);
    const pageB = await ctx.browser.newPage(`${server.url}/`);
    const startedAt = Date.now();
    await publish(pageA, 'pub', 'loss-bwe');
    await play(pageB, 'sub', 'loss-bwe', { timeoutMs: 15000 });
    const { fig, failed } = await estimateThenLoss(t, ctx, { pubPage: pageA, subPage: pageB, startedAt });
    assertNoMisses(failed, report(name, fig));
  });
});

test('reference: two Chromium peers connected directly, 720p, 5% loss on all UDP for 30 s', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  requireNamespace();
  const name = 'loss-reference';
  await withHarness(t, { name, server: null }, async (ctx) => {
    const page = await startReference(t, ctx);
    await referenceDecodes(t, ctx, page, 60);
    const w = await lossWindow(t, ctx, { ref: page }, { loss: 5, ms: 30000, port: null });
    const fig = { lossPerHop: 5, droppedByNft: w.dropped, ...figuresOf(w, 'ref', 'ref') };
    const line = report(name, fig);
    assert.ok(fig.ratio >= MIN_REFERENCE_RATIO, `the reference itself decoded only ${fig.ratio} of frames: ${line}`);
  });
});

// Case 4's schedule on the direct peers, for docs/media-quality.md: opt-in
// (SFUD_E2E_LOSS_REFERENCE_ESTIMATE=1) to keep the suite's runtime down.
test('reference: case 4\'s schedule (estimate at 0%, then 2% on all UDP) on the direct peers', {
  timeout: CASE_TIMEOUT_MS + WARM_UP_MS,
  skip: process.env.SFUD_E2E_LOSS_REFERENCE_ESTIMATE === '1' ? false : 'set SFUD_E2E_LOSS_REFERENCE_ESTIMATE=1 to run',
}, async (t) => {
  requireNamespace();
  const name = 'loss-reference-estimate';
  await withHarness(t, { name, server: null }, async (ctx) => {
    const startedAt = Date.now();
    const page = await startReference(t, ctx);
    const { fig, failed } = await estimateThenLoss(t, ctx, { pubPage: page, subPage: page, startedAt, port: null });
    assertNoMisses(failed, report(name, fig));
  });
});
