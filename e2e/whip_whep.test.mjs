// End-to-end WHIP publish and WHEP playback through a real sfud, with
// headless Chromium on both ends. Run inside a private network namespace:
//   SFUD_BIN=target/release/sfud scripts/in-netns.sh node --test --test-concurrency=1 e2e/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSfud, getSessions, waitForShards } from './lib/sfud.mjs';
import { withHarness, publishWatchStop, manyViewers } from './lib/scenario.mjs';
import { pollUntil } from './lib/util.mjs';

// Each case's inner waits are bounded well below this, so a case fails on its
// own (and cleans up) before the runner's timeout cancels it.
const CASE_TIMEOUT_MS = 90000;

async function assertNoWhipSession(t, server, room) {
  let seen = null;
  await pollUntil(async () => {
    seen = await getSessions(server.url);
    return !seen.some((s) => s.kind === 'whip' && s.room === room);
  }, {
    timeoutMs: 3000,
    signal: t.signal,
    what: `no whip session for ${room} in /api/v1/sessions`,
    describe: () => JSON.stringify(seen),
  });
}

test('shards=1: publish, watch, stop', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  const server = await startSfud({ name: 'shards1', env: { SFUD_DATAPLANE__SHARDS: '1' } });
  await withHarness(t, { name: 'shards1', server }, async (ctx) => {
    await publishWatchStop(t, ctx, { room: 'room1' });
    await assertNoWhipSession(t, server, 'room1');
  });
});

test('shards=2: publisher pinned to shard 0, viewer to shard 1', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  const server = await startSfud({
    name: 'shards2-pinned',
    env: { SFUD_DATAPLANE__SHARDS: '2', SFUD_DATAPLANE__ALLOW_PLACEMENT_HINT: 'true' },
  });
  await withHarness(t, { name: 'shards2-pinned', server }, async (ctx) => {
    await publishWatchStop(t, ctx, {
      room: 'room1',
      pubOpts: { shard: 0 },
      subOpts: { shard: 1 },
      afterMedia: async ({ pub, sub }) => {
        // Media flows, so both sessions have been claimed by their shards.
        const [p, v] = await waitForShards(t, server.url, { pub, sub });
        assert.equal(p.kind, 'whip');
        assert.equal(v.kind, 'whep');
        assert.equal(p.room, 'room1');
        assert.equal(v.room, 'room1');
      },
    });
    await assertNoWhipSession(t, server, 'room1');
  });
});

test('shards=2 without hints: publish, watch, stop', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  const server = await startSfud({ name: 'shards2', env: { SFUD_DATAPLANE__SHARDS: '2' } });
  await withHarness(t, { name: 'shards2', server }, async (ctx) => {
    await publishWatchStop(t, ctx, { room: 'room1' });
    await assertNoWhipSession(t, server, 'room1');
  });
});

test('5 viewers of one publisher all decode', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  const VIEWERS = 5;
  const server = await startSfud({ name: 'viewers5', env: { SFUD_DATAPLANE__SHARDS: '2' } });
  await withHarness(t, { name: 'viewers5', server }, async (ctx) => {
    await manyViewers(t, ctx, { room: 'room5', viewers: VIEWERS });

    const sessions = await getSessions(server.url);
    const whep = sessions.filter((s) => s.kind === 'whep' && s.room === 'room5');
    assert.equal(whep.length, VIEWERS, `whep sessions: ${JSON.stringify(sessions)}`);
  });
});

test('H.264 publisher (offered alone) plays through 2 shards', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  const server = await startSfud({ name: 'h264', env: { SFUD_DATAPLANE__SHARDS: '2' } });
  await withHarness(t, { name: 'h264', server }, async (ctx) => {
    await publishWatchStop(t, ctx, { room: 'room-h264', pubOpts: { videoCodec: 'H264' } });
  });
});

test('auth on: the demo page publishes and plays with tokens from `sfud token create`', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { sfudBin } = await import('./lib/sfud.mjs');
  const env = { SFUD_AUTH__KEYS: '{devkey="an-e2e-secret-of-at-least-32-characters"}' };
  const token = (...args) => {
    const r = spawnSync(sfudBin(), ['token', 'create', '--room', 'room-auth', ...args],
      { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const pubToken = token('--identity', 'alice', '--publish');
  const subToken = token('--identity', 'bob', '--subscribe');
  const server = await startSfud({ name: 'auth-page', env: { SFUD_DATAPLANE__SHARDS: '1', ...env } });
  await withHarness(t, { name: 'auth-page', server }, async (ctx) => {
    await publishWatchStop(t, ctx, { room: 'room-auth', pubOpts: { token: pubToken }, subOpts: { token: subToken } });
  });
});
