// A viewer behind a bottleneck: an nftables policer on what sfud sends to
// one viewer (recipes: "A bottleneck for one viewer"). sfud's per-subscriber
// estimate, fed by the viewer's transport-cc feedback, must rise on a clean
// path and fall below the bottleneck's rate behind it, and NACK answers must
// not flood the squeezed link. Prints one JSON line of figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSfud } from './lib/sfud.mjs';
import { withHarness } from './lib/scenario.mjs';
import { publish, play, waitForMedia } from './lib/browser.mjs';
import { requireNamespace, applyPolicer, removeLoss, droppedPackets } from './lib/loss.mjs';
import { instrument, sample, receiveSide } from './lib/quality.mjs';
import { pollUntil, sleep } from './lib/util.mjs';

const CLEAN_ESTIMATE_BPS = 1.0e6;
// 40 kB/s is 320 kbit/s: well under what the camera stream needs.
const POLICE_KBYTES = 40;
const SQUEEZED_ESTIMATE_BPS = 0.7e6;

async function shardStats(url) {
  const r = await fetch(`${url}/api/v1/stats`);
  assert.equal(r.status, 200, `GET /api/v1/stats: ${r.status}`);
  return (await r.json()).shards;
}

const estimates = (shards) => shards.flatMap((s) => s.subscriber_estimates_bps.map((e) => e.bps));
const total = (shards, key) => shards.reduce((n, s) => n + s[key], 0);

test('bottleneck: sfud\'s estimate for a policed viewer drops behind a 320 kbit/s policer, and its resends stay bounded', { timeout: 90000 }, async (t) => {
  requireNamespace();
  const name = 'bottleneck';
  const server = await startSfud({ name, env: { SFUD_DATAPLANE__SHARDS: '1' } });
  await withHarness(t, { name, server }, async (ctx) => {
    await instrument(ctx.browser, { camera: { width: 1280, height: 720 } });
    const pageA = await ctx.browser.newPage(`${server.url}/`);
    const pageB = await ctx.browser.newPage(`${server.url}/`);
    await publish(pageA, 'pub', 'bottleneck');
    await play(pageB, 'sub', 'bottleneck', { timeoutMs: 15000 });
    await waitForMedia(pageB, 'sub', { frames: 60, timeoutMs: 15000, signal: t.signal, history: ctx.history });

    let clean = 0;
    await pollUntil(async () => {
      clean = Math.max(0, ...estimates(await shardStats(server.url)));
      return clean > CLEAN_ESTIMATE_BPS;
    }, { timeoutMs: 25000, signal: t.signal, what: `the viewer's estimate in sfud above ${CLEAN_ESTIMATE_BPS} bit/s on a clean path`, describe: () => `${clean}` });

    const viewer = (await sample(pageB)).pcs.find((p) => p.inbound.length > 0);
    const port = viewer && viewer.pair && viewer.pair.localPort;
    assert.ok(port, `the viewer's selected candidate pair has a local port: ${JSON.stringify(viewer && viewer.pair)}`);
    const before = await shardStats(server.url);
    const framesBefore = receiveSide(await sample(pageB)).framesDecoded;
    await applyPolicer(port, POLICE_KBYTES);
    let squeezed = clean;
    let dropped = 0;
    let after = before;
    try {
      await pollUntil(async () => {
        squeezed = Math.min(...estimates(await shardStats(server.url)));
        return squeezed < SQUEEZED_ESTIMATE_BPS;
      }, { timeoutMs: 20000, signal: t.signal, what: `the estimate below ${SQUEEZED_ESTIMATE_BPS} bit/s behind a ${POLICE_KBYTES} kB/s policer`, describe: () => `${squeezed}` });
      await sleep(3000);
      after = await shardStats(server.url);
      dropped = await droppedPackets();
    } finally {
      await removeLoss();
    }
    const forwarded = total(after, 'rtp_forwarded') - total(before, 'rtp_forwarded');
    const resent = total(after, 'retransmissions') - total(before, 'retransmissions');
    const fig = {
      case: name,
      policeKbytesPerSec: POLICE_KBYTES,
      cleanEstimateBps: clean,
      squeezedEstimateBps: squeezed,
      droppedByPolicer: dropped,
      forwarded,
      resent,
      framesDecodedWhilePoliced: receiveSide(await sample(pageB)).framesDecoded - framesBefore,
    };
    console.log(JSON.stringify(fig));
    // Every packet may be NACKed and resent at most a few times, by design
    // (ResendLimiter): the squeezed link must not see a storm.
    assert.ok(resent <= forwarded, `resends ${resent} exceed forwarded ${forwarded}: ${JSON.stringify(fig)}`);
  });
});
