// Replay of the "sessions that never connect" finding (issue 10): a flood
// of WHIP offers whose clients never do ICE is removed within
// limits.connect_timeout_secs, counted, and the memory comes back.
// Plain HTTP against the real sfud; no browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startSfud } from './lib/sfud.mjs';
import { whipOffer, postSdp, fetchMetrics, parseMetrics, sumOf } from './lib/ops.mjs';
import { pollUntil, sleep } from './lib/util.mjs';

const FLOOD = 2000;
const TIMEOUT_SECS = 3;

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

test(`a flood of ${FLOOD} never-connecting WHIP sessions is reaped within limits.connect_timeout_secs`, { timeout: 90000 }, async () => {
  const server = await startSfud({
    name: 'harden-reap',
    env: {
      SFUD_LIMITS__CONNECT_TIMEOUT_SECS: String(TIMEOUT_SECS),
      // Room for the whole flood: this test is about the reaper, not the caps.
      SFUD_LIMITS__MAX_ROOMS: String(FLOOD * 2),
      SFUD_LIMITS__MAX_PENDING_PER_ADDRESS: String(FLOOD * 2),
      RUST_LOG: 'warn',
    },
  });
  try {
    // Warm up once (first-use allocations), then take the baseline.
    assert.equal((await postSdp('/whip/warmup', whipOffer())).status, 201);
    await pollUntil(async () => (await server.sessions()).length === 0, { timeoutMs: 15000, what: 'warm-up session reaped' });
    const before = rssKiB(server.pid);

    const started = Date.now();
    let next = 0;
    const worker = async () => {
      while (next < FLOOD) {
        const i = next++;
        const r = await postSdp(`/whip/flood-${i}`, whipOffer());
        assert.equal(r.status, 201, `POST ${i}: ${r.status} ${r.text}`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    const postedMs = Date.now() - started;
    const peak = rssKiB(server.pid);
    const live = (await server.sessions()).length;
    assert.ok(live > 0, 'the flood created sessions');

    // Every session is gone within the timeout (plus the 50 ms timer and slack)
    // after the last POST.
    await pollUntil(async () => (await server.sessions()).length === 0, {
      timeoutMs: TIMEOUT_SECS * 1000 + 4000,
      what: 'every flood session reaped',
    });
    const reapedMs = Date.now() - started;
    const samples = parseMetrics((await fetchMetrics()).text);
    const reaped = sumOf(samples, 'sfud_sessions_reaped_total');
    assert.ok(reaped >= FLOOD, `sfud_sessions_reaped_total = ${reaped}`);
    // The allocator keeps some pages; what matters is that the flood's
    // growth does not stay.
    await sleep(500);
    const after = rssKiB(server.pid);
    console.log(`flood: ${FLOOD} POSTs in ${postedMs} ms, ${live} live at the end, all reaped after ${reapedMs} ms; RSS ${before} -> ${peak} -> ${after} KiB`);
    const grown = peak - before;
    assert.ok(after - before <= Math.max(8 * 1024, grown / 2), `RSS did not come back: ${before} -> ${peak} -> ${after} KiB`);
  } catch (e) {
    console.error(server.logTail(40));
    throw e;
  } finally {
    await server.stop();
  }
});
