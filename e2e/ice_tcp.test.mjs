// ICE-TCP (RFC 6544 passive candidates, RFC 4571 framing) end to end: with
// UDP to the media port dropped by nftables, a Chromium publisher (WHIP) and
// viewer (WHEP) still connect, over TCP to rtc.tcp_port, and the viewer
// decodes. Needs root in a private network namespace (for nft):
//   SFUD_BIN=target/release/sfud scripts/in-netns.sh node --test --test-concurrency=1 e2e/ice_tcp.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { startSfud, getSessions, sessionOf } from './lib/sfud.mjs';
import { withHarness } from './lib/scenario.mjs';
import { publish, play, waitForMedia } from './lib/browser.mjs';
import { pollUntil } from './lib/util.mjs';

const CASE_TIMEOUT_MS = 90000;
const UDP_PORT = 7882;
const TCP_PORT = 7881;
const TABLE = 'sfudtest';

// nft rules in the host's namespace would cut real traffic: only ever touch
// a namespace that has nothing but loopback (scripts/in-netns.sh).
const onlyLoopback = Object.keys(os.networkInterfaces()).every((name) => name === 'lo');
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
// Refuse (fail, never skip) outside a root-owned private namespace: nft
// rules must not touch the host, and a skipped test would hide a gap.
function requireNamespace() {
  assert.ok(onlyLoopback, 'run inside a private network namespace (scripts/in-netns.sh): nft rules must not touch the host');
  assert.ok(isRoot, 'needs root for nftables (as scripts/test.sh runs)');
}

function nft(...args) {
  return execFileSync('nft', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function blockUdp() {
  try { nft('delete', 'table', 'inet', TABLE); } catch { /* not there */ }
  nft('add', 'table', 'inet', TABLE);
  nft('add', 'chain', 'inet', TABLE, 'in', '{ type filter hook input priority 0; }');
  nft('add', 'rule', 'inet', TABLE, 'in', 'udp', 'dport', String(UDP_PORT), 'counter', 'drop');
}

function unblockUdp() {
  try { nft('delete', 'table', 'inet', TABLE); } catch { /* already gone */ }
}

/** Packets the UDP drop rule has eaten so far. */
function droppedUdp() {
  const m = /counter packets (\d+)/.exec(nft('list', 'chain', 'inet', TABLE, 'in'));
  return m ? Number(m[1]) : 0;
}

async function shardStats(url) {
  const res = await fetch(`${url}/api/v1/stats`, { signal: AbortSignal.timeout(3000) });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`GET /api/v1/stats: ${res.status} ${body}`);
  return JSON.parse(body).shards;
}

const sum = (shards, key) => shards.reduce((n, s) => n + (s[key] || 0), 0);

/** The transport the page's PeerConnection selected: protocols and ports. */
async function selectedPair(page, key) {
  return page.evaluate(async (key) => {
    const h = window.__e2e && window.__e2e[key];
    if (!h) throw new Error(`no handle ${key}`);
    const report = await h.pc.getStats();
    let pair = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
    });
    if (!pair) return null;
    const local = report.get(pair.localCandidateId) || {};
    const remote = report.get(pair.remoteCandidateId) || {};
    return {
      state: pair.state,
      local: { protocol: local.protocol, tcpType: local.tcpType, candidateType: local.candidateType },
      remote: { protocol: remote.protocol, port: remote.port, address: remote.address || remote.ip },
    };
  }, key);
}

/**
 * Publisher on page A, viewer on page B, with UDP to the media port dropped:
 * the viewer must decode >= 90 frames within 20 s, both over TCP.
 */
async function overTcp(t, ctx, { room, pubOpts = {}, subOpts = {} }) {
  const server = ctx.server;
  const pageA = await ctx.browser.newPage(`${server.url}/`);
  const pageB = await ctx.browser.newPage(`${server.url}/`);
  const started = Date.now();
  const pub = await publish(pageA, 'pub', room, pubOpts);
  const sub = await play(pageB, 'sub', room, { timeoutMs: 15000, ...subOpts });
  const remaining = Math.max(1000, 20000 - (Date.now() - started));
  await waitForMedia(pageB, 'sub', { frames: 90, timeoutMs: remaining, signal: t.signal, history: ctx.history });

  for (const [page, key] of [[pageA, 'pub'], [pageB, 'sub']]) {
    const pair = await selectedPair(page, key);
    ctx.history.push({ t: Date.now(), key, phase: 'selected-pair', pair });
    assert.ok(pair, `${key}: no selected candidate pair`);
    assert.equal(pair.local.protocol, 'tcp', `${key}: selected pair ${JSON.stringify(pair)}`);
    assert.equal(pair.remote.protocol, 'tcp', `${key}: selected pair ${JSON.stringify(pair)}`);
    assert.equal(pair.remote.port, TCP_PORT, `${key}: selected pair ${JSON.stringify(pair)}`);
  }
  assert.ok(droppedUdp() > 0, 'the browsers tried UDP first, and nftables dropped it');

  // sfud's own view: both sessions on TCP connections, media in and out.
  let shards = null;
  await pollUntil(async () => {
    shards = await shardStats(server.url);
    return sum(shards, 'tcp_connections') >= 2 && sum(shards, 'tcp_packets_in') > 0
      && sum(shards, 'tcp_packets_out') > 0 && sum(shards, 'rtp_forwarded') > 0;
  }, {
    timeoutMs: 5000,
    signal: t.signal,
    what: 'tcp_connections >= 2 with packets both ways in /api/v1/stats',
    describe: () => JSON.stringify(shards),
  });
  ctx.history.push({ t: Date.now(), phase: 'server-stats', shards });
  return { pub, sub, shards };
}

test('ICE-TCP with UDP blocked, shards=1', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  requireNamespace();
  blockUdp();
  try {
    const server = await startSfud({ name: 'ice-tcp-1', env: { SFUD_DATAPLANE__SHARDS: '1' } });
    await withHarness(t, { name: 'ice-tcp-1', server }, async (ctx) => {
      await overTcp(t, ctx, { room: 'tcp1' });
    });
  } finally {
    unblockUdp();
  }
});

test('ICE-TCP with UDP blocked, shards=2: publisher on shard 0, viewer on shard 1', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  requireNamespace();
  blockUdp();
  try {
    const server = await startSfud({
      name: 'ice-tcp-2',
      env: { SFUD_DATAPLANE__SHARDS: '2', SFUD_DATAPLANE__ALLOW_PLACEMENT_HINT: 'true' },
    });
    await withHarness(t, { name: 'ice-tcp-2', server }, async (ctx) => {
      const { pub, sub, shards } = await overTcp(t, ctx, { room: 'tcp2', pubOpts: { shard: 0 }, subOpts: { shard: 1 } });
      // Whichever listener the kernel chose, each connection ended up on its
      // session's shard (handed over through the mesh when needed).
      const sessions = await getSessions(server.url);
      const p = sessionOf(sessions, pub.id);
      const v = sessionOf(sessions, sub.id);
      assert.equal(p && p.shard, 0, JSON.stringify(sessions));
      assert.equal(v && v.shard, 1, JSON.stringify(sessions));
      const byShard = Object.fromEntries(shards.map((s) => [s.shard, s]));
      assert.ok(byShard[0].tcp_connections >= 1 && byShard[1].tcp_connections >= 1, JSON.stringify(shards));
      assert.ok(byShard[0].peer_batches_out > 0, 'media crossed from shard 0 to shard 1');
      console.log(`ice-tcp shards=2: accepted ${shards.map((s) => s.tcp_accepted)}, handed over ${shards.map((s) => s.tcp_handed_over)}`);
    });
  } finally {
    unblockUdp();
  }
});
