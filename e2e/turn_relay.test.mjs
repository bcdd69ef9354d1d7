// A relay-only browser: Chromium with iceTransportPolicy 'relay' and sfud's
// own TURN server (credentials from the WHIP/WHEP endpoint's Link headers)
// publishes and plays; every media packet crosses the TURN relay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSfud } from './lib/sfud.mjs';
import { withHarness, publishWatchStop } from './lib/scenario.mjs';

const TURN_ENV = {
  SFUD_DATAPLANE__SHARDS: '2',
  SFUD_TURN__ENABLED: 'true',
  SFUD_TURN__SHARED_SECRET: 'e2e-turn-secret-0123456789abcdef',
  // The default denylist stays on: relaying to sfud's own media address is
  // the one private destination it allows.
};

/** RFC 9725 §4.6 Link headers -> RTCIceServer[] (one entry per credential set). */
export function iceServersFromLinks(values) {
  const servers = new Map();
  for (const v of values) {
    const url = /<([^>]+)>/.exec(v)?.[1];
    if (!url || !/rel="ice-server"/.test(v)) continue;
    const username = /username="([^"]*)"/.exec(v)?.[1];
    const credential = /credential="([^"]*)"/.exec(v)?.[1];
    const key = `${username}\n${credential}`;
    if (!servers.has(key)) servers.set(key, { urls: [], username, credential });
    servers.get(key).urls.push(url);
  }
  return [...servers.values()];
}

async function linkHeaders(url) {
  const res = await fetch(url, { method: 'OPTIONS', signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 204);
  // fetch joins repeated headers with ", " but Link values themselves
  // contain commas only inside quotes we never emit, so split on "<".
  const raw = res.headers.get('link') || '';
  return raw.split(/,\s*(?=<)/).filter(Boolean);
}

async function turnRelayedPackets(server) {
  const text = await (await fetch('http://127.0.0.1:6789/metrics', { signal: AbortSignal.timeout(5000) })).text();
  const line = text.split('\n').find((l) => l.startsWith('sfud_turn_relayed_packets_total'));
  return line ? Number(line.split(/\s+/).pop()) : 0;
}

test('relay-only Chromium publishes via WHIP and plays via WHEP through sfud\'s TURN server', { timeout: 90000 }, async (t) => {
  const server = await startSfud({ name: 'turn-relay', env: TURN_ENV });
  await withHarness(t, { name: 'turn-relay', server }, async (ctx) => {
    const links = await linkHeaders(`${server.url}/whip/room-relay`);
    const iceServers = iceServersFromLinks(links);
    assert.ok(iceServers.length > 0 && iceServers[0].urls.some((u) => u.startsWith('turn:')),
      `Link headers carry a TURN server: ${JSON.stringify(links)}`);
    const opts = { iceServers, iceTransportPolicy: 'relay' };
    await publishWatchStop(t, ctx, {
      room: 'room-relay',
      pubOpts: opts,
      subOpts: opts,
      afterMedia: async ({ pageB }) => {
        // The viewer's selected pair uses a relay candidate.
        const type = await pageB.evaluate(async () => {
          const pc = window.__e2e.sub.pc;
          const stats = await pc.getStats();
          let pair;
          stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
          return pair ? stats.get(pair.localCandidateId)?.candidateType : null;
        });
        assert.equal(type, 'relay', 'the viewer reaches sfud through TURN');
        const relayed = await turnRelayedPackets(server);
        assert.ok(relayed > 500, `TURN relayed ${relayed} packets`);
      },
    });
  });
});
