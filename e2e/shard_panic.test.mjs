// A shard that panics is contained (issue 10): forced through the test-only
// admin hook, it ends only that shard's sessions, the admin API shows them
// gone, the client notices, the panic is counted, and new sessions on the
// same shard work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSfud, getSessions, sessionOf } from './lib/sfud.mjs';
import { publish, stats } from './lib/browser.mjs';
import { withHarness, publishWatchStop } from './lib/scenario.mjs';
import { pollUntil } from './lib/util.mjs';

test('a forced shard panic ends only that shard\'s sessions', { timeout: 120000 }, async (t) => {
  const server = await startSfud({
    name: 'shard-panic',
    env: {
      SFUD_DATAPLANE__SHARDS: '2',
      SFUD_DATAPLANE__ALLOW_PLACEMENT_HINT: 'true',
      SFUD_DATAPLANE__TEST_HOOKS: 'true',
    },
  });
  await withHarness(t, { name: 'shard-panic', server }, async (ctx) => {
    const page0 = await ctx.browser.newPage(`${server.url}/`);
    const page1 = await ctx.browser.newPage(`${server.url}/`);
    const lost = await publish(page0, 'lost', 'on-shard-0', { shard: 0 });
    const kept = await publish(page1, 'kept', 'on-shard-1', { shard: 1 });
    let sessions = [];
    await pollUntil(async () => {
      sessions = await getSessions(server.url);
      const a = sessionOf(sessions, lost.id);
      const b = sessionOf(sessions, kept.id);
      return a && b && a.shard === 0 && b.shard === 1 && a.state === 'connected' && b.state === 'connected';
    }, { timeoutMs: 15000, signal: t.signal, what: 'both publishers connected on their shards', describe: () => JSON.stringify(sessions) });

    const res = await fetch(`${server.url}/api/v1/test/shards/0/panic`, { method: 'POST', signal: AbortSignal.timeout(3000) });
    assert.equal(res.status, 202, await res.text());

    await pollUntil(async () => {
      sessions = await getSessions(server.url);
      return !sessionOf(sessions, lost.id);
    }, { timeoutMs: 5000, signal: t.signal, what: 'the lost session gone from the API', describe: () => JSON.stringify(sessions) });
    assert.ok(sessionOf(sessions, kept.id)?.state === 'connected', `shard 1's session untouched: ${JSON.stringify(sessions)}`);

    // The client whose session ended sees its connection drop (checks go
    // unanswered); the other stays connected.
    await pollUntil(async () => {
      const s = await stats(page0, 'lost');
      return s.connectionState !== 'connected';
    }, { timeoutMs: 30000, signal: t.signal, what: 'the lost publisher notices' });
    assert.equal((await stats(page1, 'kept')).connectionState, 'connected');

    const body = await (await fetch(`${server.url}/api/v1/stats`, { signal: AbortSignal.timeout(3000) })).json();
    const panics = body.shards.map((s) => s.panics);
    assert.deepEqual(panics, [1, 0], `panics counted per shard: ${JSON.stringify(panics)}`);
    assert.match(server.logTail(200), /shard panicked: core reset/);

    // The controlplane's timer task panics once: contained, logged, and the
    // task goes on (the kept session stays up, new sessions connect below).
    const cp = await fetch(`${server.url}/api/v1/test/controlplane/panic`, { method: 'POST', signal: AbortSignal.timeout(3000) });
    assert.equal(cp.status, 202, await cp.text());
    await pollUntil(async () => /panic contained in a controlplane task/.test(server.logTail(200)),
      { timeoutMs: 5000, signal: t.signal, what: 'the controlplane panic logged as contained' });
    assert.equal((await stats(page1, 'kept')).connectionState, 'connected');

    // Shard 0 takes new sessions: publish and watch there.
    await publishWatchStop(t, ctx, { room: 'after', pubOpts: { shard: 0 }, subOpts: { shard: 0 } });
  });
});
