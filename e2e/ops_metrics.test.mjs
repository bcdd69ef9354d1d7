// Prometheus metrics (issue 5): while a WHIP publisher and a WHEP viewer
// run in headless Chromium, sfud's /metrics passes `promtool check metrics`,
// and a real Prometheus server scrapes it and sees forwarded packets rise.
// Run inside a private network namespace:
//   SFUD_BIN=target/release/sfud scripts/in-netns.sh node --test e2e/ops_metrics.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSfud } from './lib/sfud.mjs';
import { withHarness } from './lib/scenario.mjs';
import { publish, play, waitForMedia, stats } from './lib/browser.mjs';
import { pollUntil, sleep } from './lib/util.mjs';
import { fetchMetrics, parseMetrics, sumOf, promtoolCheck, startPrometheus, METRICS_URL } from './lib/ops.mjs';

const CASE_TIMEOUT_MS = 90000;

/** Publisher on page A, viewer on page B, media decoding. */
async function liveSession(t, ctx, room) {
  const pageA = await ctx.browser.newPage(`${ctx.server.url}/`);
  const pageB = await ctx.browser.newPage(`${ctx.server.url}/`);
  await publish(pageA, 'pub', room);
  await play(pageB, 'sub', room, { timeoutMs: 15000 });
  await waitForMedia(pageB, 'sub', { frames: 60, timeoutMs: 15000, signal: t.signal, history: ctx.history });
  return { pageA, pageB };
}

test('/metrics passes promtool check metrics during a live session', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  const server = await startSfud({ name: 'ops-metrics-promtool', env: { SFUD_DATAPLANE__SHARDS: '2' } });
  await withHarness(t, { name: 'ops-metrics-promtool', server }, async (ctx) => {
    await liveSession(t, ctx, 'metrics1');
    // Per-shard counters are exported periodically; let one period pass.
    await sleep(2000);
    const { text, contentType } = await fetchMetrics();
    assert.match(contentType || '', /^text\/plain/, `${METRICS_URL} content-type`);

    const check = promtoolCheck(text);
    assert.equal(check.status, 0,
      `promtool check metrics exited ${check.status} (${check.signal ?? 'no signal'}) on ${check.file}:\n${check.output}`);

    const samples = parseMetrics(text);
    const names = new Set(samples.map((s) => s.name));
    const missing = [
      'sfud_packets_received_total', 'sfud_packets_sent_total', 'sfud_rtp_forwarded_total',
      'sfud_send_batch_size_bucket', 'sfud_send_batch_size_sum', 'sfud_send_batch_size_count',
      'sfud_sessions', 'sfud_rooms', 'sfud_participants', 'sfud_dtls_handshakes_total',
      'sfud_signaling_requests_total', 'sfud_shard_busy_seconds_total',
    ].filter((n) => !names.has(n));
    assert.deepEqual(missing, [], `metrics missing from /metrics (saved in ${check.file})`);
    if (!names.has('sfud_packets_dropped_total')) {
      t.diagnostic('sfud_packets_dropped_total has no samples yet (no drops, and not pre-registered at 0)');
    }

    for (const n of ['sfud_packets_received_total', 'sfud_packets_sent_total', 'sfud_rtp_forwarded_total', 'sfud_shard_busy_seconds_total']) {
      const bad = samples.filter((s) => s.name === n && !('shard' in s.labels));
      assert.deepEqual(bad, [], `${n} samples without a shard label`);
    }
    for (const s of samples.filter((x) => x.name === 'sfud_packets_dropped_total')) {
      assert.ok('shard' in s.labels && 'reason' in s.labels, `sfud_packets_dropped_total labels: ${JSON.stringify(s)}`);
    }
    assert.ok(sumOf(samples, 'sfud_rtp_forwarded_total') > 0, 'sfud_rtp_forwarded_total is 0 while media flows');
    assert.ok(sumOf(samples, 'sfud_packets_received_total') > 0, 'sfud_packets_received_total is 0 while media flows');
    assert.ok(sumOf(samples, 'sfud_packets_sent_total') > 0, 'sfud_packets_sent_total is 0 while media flows');
    assert.equal(sumOf(samples, 'sfud_sessions'), 2, 'sfud_sessions summed over shards (one WHIP, one WHEP)');
    assert.ok(sumOf(samples, 'sfud_dtls_handshakes_total', (l) => /^(ok|success)$/.test(l.result)) >= 2,
      `sfud_dtls_handshakes_total{result="ok"} >= 2: ${JSON.stringify(samples.filter((s) => s.name === 'sfud_dtls_handshakes_total'))}`);
    const whip = samples.filter((s) => s.name === 'sfud_signaling_requests_total' && /whip/i.test(s.labels.method ?? ''));
    assert.ok(whip.length > 0 && 'status' in whip[0].labels,
      `sfud_signaling_requests_total has a WHIP method with a status: ${JSON.stringify(samples.filter((s) => s.name === 'sfud_signaling_requests_total'))}`);
    const infBucket = samples.filter((s) => s.name === 'sfud_send_batch_size_bucket' && s.labels.le === '+Inf');
    assert.ok(infBucket.length > 0 && infBucket.every((s) => s.value >= 0), 'sfud_send_batch_size has a +Inf bucket');
  });
});

test('a real Prometheus scrapes sfud and sees forwarded packets rise', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  const server = await startSfud({ name: 'ops-metrics-scrape', env: { SFUD_DATAPLANE__SHARDS: '2' } });
  let prom = null;
  const seen = [];
  try {
    await withHarness(t, { name: 'ops-metrics-scrape', server }, async (ctx) => {
      const { pageB } = await liveSession(t, ctx, 'metrics2');
      prom = await startPrometheus({ target: '127.0.0.1:6789' });
      const Q = 'sum(sfud_rtp_forwarded_total)';
      const value = async () => {
        const r = await prom.query(Q);
        seen.push({ t: Date.now(), result: r });
        return r.length ? Number(r[0].value[1]) : null;
      };
      // The first scrape lands a few seconds after start.
      const first = await pollUntil(async () => {
        const v = await value();
        return v !== null && v > 0 ? v : null;
      }, {
        timeoutMs: 15000, intervalMs: 500, signal: t.signal,
        what: `${Q} > 0 in Prometheus`,
        describe: async () => `${JSON.stringify(seen.slice(-3))}; up: ${JSON.stringify(await prom.query('up').catch((e) => e.message))}`,
      });
      await sleep(4000);
      const second = await value();
      ctx.history.push({ t: Date.now(), key: 'sub', phase: 'after-scrapes', ...(await stats(pageB, 'sub')) });
      assert.ok(second !== null && second > first, `${Q} did not rise: ${first} then ${second}`);
      const up = await prom.query('up{job="sfud"}');
      assert.equal(up[0]?.value[1], '1', `up{job="sfud"}: ${JSON.stringify(up)}`);
      t.diagnostic(`${Q}: ${first} then ${second} 4 s later`);
    });
  } catch (e) {
    console.error([
      '--- prometheus queries seen:', ...seen.slice(-6).map((x) => JSON.stringify(x)),
      ...(prom ? [`--- prometheus log (tail of ${prom.logPath}):`, prom.logTail(30)] : []),
    ].join('\n'));
    throw e;
  } finally {
    if (prom) await prom.stop();
  }
});
