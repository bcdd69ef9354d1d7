// Random packet loss with nftables (there is no netem in this kernel), in a
// table of its own that the tests delete between cases. See
// /work/shared/recipes.md, "Packet loss".
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import os from 'node:os';
import { fetchMetrics, parseMetrics, sumOf } from './ops.mjs';

export const MEDIA_PORT = 7882;
const TABLE = 'sfud_e2e_loss';

// nft rules in the host's namespace would cut real traffic: only ever touch a
// namespace that has nothing but loopback (scripts/in-netns.sh). Refuse (fail,
// never skip) elsewhere, so a skipped test cannot hide a gap.
export function requireNamespace() {
  const onlyLoopback = Object.keys(os.networkInterfaces()).every((name) => name === 'lo');
  assert.ok(onlyLoopback, 'run inside a private network namespace (scripts/in-netns.sh): nft rules must not touch the host');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  assert.ok(isRoot, 'needs root for nftables (as scripts/test.sh runs)');
}

function nft(args, script) {
  return new Promise((resolve, reject) => {
    const child = execFile('nft', args, { encoding: 'utf8', timeout: 10000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`nft ${args.join(' ')} failed: ${stderr || err.message}${script ? `\nscript:\n${script}` : ''}`));
      else resolve(stdout);
    });
    if (script !== undefined) child.stdin.end(script);
  });
}

// "add" then "delete" in one transaction deletes the table whether or not a
// crashed earlier run left it behind.
const DROP_TABLE = `add table inet ${TABLE}\ndelete table inet ${TABLE}\n`;

/**
 * Drops `percent`% of UDP packets at random, each way. With `port` (the
 * default: sfud's media port) only packets to or from that port, so every
 * hop through the SFU loses `percent`% on its own; with `port: null` all
 * UDP, for peers connected directly. On loopback every packet passes the
 * input hook once. Returns { dropped(), remove() }.
 */
export async function applyLoss(percent, { port = MEDIA_PORT } = {}) {
  assert.ok(Number.isInteger(percent) && percent >= 0 && percent <= 100, `loss percent ${percent}`);
  const matches = port === null ? ['meta l4proto udp'] : [`udp dport ${port}`, `udp sport ${port}`];
  const script = [
    DROP_TABLE,
    `add table inet ${TABLE}`,
    `add chain inet ${TABLE} in { type filter hook input priority 0; }`,
    ...matches.map((m) => `add rule inet ${TABLE} in ${m} numgen random mod 100 < ${percent} counter drop`),
  ].join('\n');
  await nft(['-f', '-'], `${script}\n`);
  return { dropped: droppedPackets, remove: removeLoss };
}

/** Deletes the loss table (if any). */
export async function removeLoss() {
  await nft(['-f', '-'], DROP_TABLE);
}

/** Packets the loss rules have dropped so far (0 without the table). */
export async function droppedPackets() {
  const out = await nft(['list', 'table', 'inet', TABLE]).catch(() => '');
  let n = 0;
  for (const m of out.matchAll(/counter packets (\d+)/g)) n += Number(m[1]);
  return n;
}

/** Runs `body` with `percent`% loss applied, and always removes it. */
export async function withLoss(percent, opts, body) {
  await applyLoss(percent, opts);
  try {
    return await body();
  } finally {
    await removeLoss();
  }
}

/**
 * A bottleneck for one viewer: polices what sfud's media port sends to
 * `viewerPort` to `kbytesPerSec` (excess dropped, not queued, as a policer
 * does). Shares the loss table, so `removeLoss` takes it away too.
 */
export async function applyPolicer(viewerPort, kbytesPerSec) {
  assert.ok(Number.isInteger(viewerPort) && viewerPort > 0, `viewer port ${viewerPort}`);
  const script = [
    DROP_TABLE,
    `add table inet ${TABLE}`,
    `add chain inet ${TABLE} in { type filter hook input priority 0; }`,
    `add rule inet ${TABLE} in udp sport ${MEDIA_PORT} udp dport ${viewerPort} limit rate over ${kbytesPerSec} kbytes/second counter drop`,
  ].join('\n');
  await nft(['-f', '-'], `${script}\n`);
}

// sfud's own view of loss repair (its Prometheus counters, summed over
// shards), so a case's figures say which side of a hop a repair came from.
const REPAIR_COUNTERS = {
  nacksReceived: 'sfud_nacks_received_total',
  retransmissions: 'sfud_retransmissions_total',
  lossRepairs: 'sfud_loss_repairs_total',
  nackSeqsUnanswered: 'sfud_nack_sequences_unanswered_total',
  nackSeqsSentUpstream: 'sfud_nack_sequences_sent_total',
  recoveredUpstream: 'sfud_packets_recovered_total',
};

/** sfud's repair counters now: { name: total }. */
export async function repairCounters() {
  const samples = parseMetrics((await fetchMetrics()).text);
  return Object.fromEntries(Object.entries(REPAIR_COUNTERS).map(([k, name]) => [k, sumOf(samples, name)]));
}

/** What changed between two `repairCounters()`. */
export const repairDelta = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, b[k] - a[k]]));
