// Audio RED (RFC 2198, Chromium's red/48000/2 around Opus), issue 9: a
// Chromium WHIP publisher (sfud answers RED first, so Chromium sends RED);
// viewer A offers RED and gets it passed through as is; viewer B offers
// Opus only and gets each packet reduced to its primary Opus block. Both
// must decode audio, clean and at 5% random loss per hop, and sfud's
// counters must show which path each packet took. One sfud, one browser.
// Needs root in a private network namespace (for nft):
//   SFUD_BIN=target/release/sfud scripts/in-netns.sh node --test --test-concurrency=1 e2e/red.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSfud } from './lib/sfud.mjs';
import { withHarness } from './lib/scenario.mjs';
import { publish, play, waitForMedia } from './lib/browser.mjs';
import { requireNamespace, withLoss, droppedPackets } from './lib/loss.mjs';
import { sleep } from './lib/util.mjs';

const ROOM = 'red';
const WINDOW_MS = 10000;

/** The viewer's audio: samples, concealment, and the codec Chromium reports. */
async function audioFigures(page, key) {
  return page.evaluate(async (key) => {
    const { pc } = window.__e2e[key];
    const report = await pc.getStats();
    const out = { samples: 0, concealed: 0, packets: 0, lost: 0, codec: null, remoteSdpRed: /a=rtpmap:\d+ red\/48000/i.test(pc.remoteDescription.sdp) };
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp' || s.kind !== 'audio') return;
      out.samples += s.totalSamplesReceived || 0;
      out.concealed += s.concealedSamples || 0;
      out.packets += s.packetsReceived || 0;
      out.lost += s.packetsLost || 0;
      const c = s.codecId && report.get(s.codecId);
      if (c) out.codec = c.mimeType;
    });
    return out;
  }, key);
}

async function redCounters(url) {
  const body = await (await fetch(`${url}/api/v1/stats`, { signal: AbortSignal.timeout(3000) })).json();
  return body.shards.reduce((a, s) => ({ passed: a.passed + s.red_passed, reduced: a.reduced + s.red_reduced }), { passed: 0, reduced: 0 });
}

/** What each viewer and sfud did over `ms`. */
async function measure(server, pages, ms) {
  const before = await Promise.all(pages.map(([p, k]) => audioFigures(p, k)));
  const c0 = await redCounters(server.url);
  await sleep(ms);
  const after = await Promise.all(pages.map(([p, k]) => audioFigures(p, k)));
  const c1 = await redCounters(server.url);
  const viewers = after.map((a, i) => {
    const samples = a.samples - before[i].samples;
    return {
      codec: a.codec,
      samples,
      concealedPct: samples > 0 ? (100 * (a.concealed - before[i].concealed)) / samples : 100,
      packets: a.packets - before[i].packets,
      lost: a.lost - before[i].lost,
    };
  });
  return { viewers, passed: c1.passed - c0.passed, reduced: c1.reduced - c0.reduced };
}

function check(label, fig, [maxA, maxB]) {
  console.log(`${label}: viewer A (RED) ${JSON.stringify(fig.viewers[0])}; viewer B (Opus only) ${JSON.stringify(fig.viewers[1])}; sfud red passed ${fig.passed}, reduced ${fig.reduced}`);
  assert.ok(fig.passed > 100, `${label}: RED passed through to viewer A (${fig.passed})`);
  assert.ok(fig.reduced > 100, `${label}: RED reduced to Opus for viewer B (${fig.reduced})`);
  for (const [i, v] of fig.viewers.entries()) {
    const who = i === 0 ? 'A (RED)' : 'B (Opus only)';
    const maxConcealedPct = i === 0 ? maxA : maxB;
    // 48 kHz for the window, less what DTX leaves out: at least half.
    assert.ok(v.samples > 24 * WINDOW_MS, `${label}: viewer ${who} decoded audio (${v.samples} samples)`);
    assert.ok(v.concealedPct < maxConcealedPct, `${label}: viewer ${who} concealed ${v.concealedPct.toFixed(2)}% (bar ${maxConcealedPct}%)`);
  }
}

test('RED passes through to a viewer that offered it and is reduced to Opus for one that did not, clean and at 5% loss', { timeout: 90000 }, async (t) => {
  requireNamespace();
  const server = await startSfud({ name: 'red' });
  await withHarness(t, { name: 'red', server }, async (ctx) => {
    const pubPage = await ctx.browser.newPage(`${server.url}/`);
    const pageA = await ctx.browser.newPage(`${server.url}/`);
    const pageB = await ctx.browser.newPage(`${server.url}/`);
    await publish(pubPage, 'pub', ROOM);
    await play(pageA, 'a', ROOM);
    // Viewer B's audio transceiver offers Opus alone.
    await play(pageB, 'b', ROOM, { audioCodecs: ['audio/opus'] });
    const b = await pageB.evaluate(() => ({ offer: window.__e2e.b.pc.localDescription.sdp, answer: window.__e2e.b.pc.remoteDescription.sdp }));
    assert.doesNotMatch(b.offer, /red\/48000/i, 'viewer B offered no RED');
    assert.doesNotMatch(b.answer, /red\/48000/i, 'and sfud answered none');
    await waitForMedia(pageA, 'a', { frames: 30, signal: t.signal, history: ctx.history });
    const a = await audioFigures(pageA, 'a');
    assert.ok(a.remoteSdpRed, 'sfud answered RED to viewer A, which offered it');

    check('clean', await measure(server, [[pageA, 'a'], [pageB, 'b']], WINDOW_MS), [2, 2]);
    const lossy = await withLoss(5, {}, async () => {
      const fig = await measure(server, [[pageA, 'a'], [pageB, 'b']], WINDOW_MS);
      fig.dropped = await droppedPackets();
      return fig;
    });
    assert.ok(lossy.dropped > 0, 'the loss rules dropped packets');
    // Audio is not NACKed, so without RED a viewer conceals about what the
    // two hops lose (~10%; seen: 8.6%). RED's redundant block repairs most
    // single losses (seen: 1.1%): the RED viewer must conceal under 4% and
    // under half of what the Opus-only viewer does.
    check('5% loss per hop', lossy, [4, 20]);
    const [a5, b5] = lossy.viewers;
    assert.ok(a5.concealedPct < b5.concealedPct / 2,
      `RED repairs loss: viewer A concealed ${a5.concealedPct.toFixed(2)}%, viewer B ${b5.concealedPct.toFixed(2)}%`);
  });
});
