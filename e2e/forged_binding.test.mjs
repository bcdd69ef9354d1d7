// Replays the route-redirect attack against a running sfud (issue 10): a
// STUN Binding without MESSAGE-INTEGRITY, sent from a live session's
// address and naming another shard's session, must redirect nothing. The
// victim's next packets stay on its own shard (none are steered away and
// dropped as unknown_source), and the forgery is counted as stun_auth.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { startSfud } from './lib/sfud.mjs';
import { whipOffer, postSdp } from './lib/ops.mjs';
import { sleep } from './lib/util.mjs';

const STATS_PERIOD_MS = 1300;

const attr = (type, value) => {
  const pad = (4 - (value.length % 4)) % 4;
  const h = Buffer.alloc(4);
  h.writeUInt16BE(type, 0);
  h.writeUInt16BE(value.length, 2);
  return Buffer.concat([h, value, Buffer.alloc(pad)]);
};

/** A Binding request; with `pwd`, MESSAGE-INTEGRITY (RFC 5389 §15.4). Always FINGERPRINT. */
function binding(username, pwd) {
  const head = Buffer.alloc(20);
  head.writeUInt16BE(0x0001, 0);
  head.writeUInt32BE(0x2112a442, 4);
  crypto.randomBytes(12).copy(head, 8);
  const prio = Buffer.alloc(4);
  prio.writeUInt32BE(0x6e0001ff, 0);
  const tie = crypto.randomBytes(8);
  let body = Buffer.concat([attr(0x0006, Buffer.from(username)), attr(0x0024, prio), attr(0x802a, tie)]);
  if (pwd) {
    head.writeUInt16BE(body.length + 24, 2);
    const mac = crypto.createHmac('sha1', pwd).update(Buffer.concat([head, body])).digest();
    body = Buffer.concat([body, attr(0x0008, mac)]);
  }
  head.writeUInt16BE(body.length + 8, 2);
  const crc = (zlib.crc32(Buffer.concat([head, body])) ^ 0x5354554e) >>> 0;
  const fp = Buffer.alloc(4);
  fp.writeUInt32BE(crc, 0);
  return Buffer.concat([head, body, attr(0x8028, fp)]);
}

const line = (sdp, key) => sdp.split(/\r?\n/).find((l) => l.startsWith(`a=${key}:`)).slice(key.length + 3).trim();

async function whip(url, room, shard) {
  const offer = whipOffer();
  const r = await postSdp(`/whip/${room}?shard=${shard}`, offer, { base: url });
  assert.equal(r.status, 201, r.text);
  return { ufrag: line(r.text, 'ice-ufrag'), pwd: line(r.text, 'ice-pwd'), remote: line(offer, 'ice-ufrag') };
}

async function shards(url) {
  return (await (await fetch(`${url}/api/v1/stats`)).json()).shards;
}

function send(sock, buf) {
  return new Promise((resolve, reject) => sock.send(buf, 7882, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
}

test('a Binding without integrity from a victim\'s address redirects nothing', { timeout: 60000 }, async () => {
  const server = await startSfud({
    name: 'forged-binding',
    env: { SFUD_DATAPLANE__SHARDS: '2', SFUD_DATAPLANE__ALLOW_PLACEMENT_HINT: 'true' },
  });
  const sockets = [];
  try {
    const victim = await whip(server.url, 'victim', 0);
    const other = await whip(server.url, 'other', 1);
    // The victim's 5-tuple must land on its owner's socket for the attack
    // to bite (the kernel's reuseport hash decides): try a few ports.
    let sock = null;
    for (let i = 0; i < 12 && !sock; i++) {
      const s = dgram.createSocket('udp4');
      sockets.push(s);
      await new Promise((r) => s.bind(0, '127.0.0.1', r));
      const before = await shards(server.url);
      await send(s, binding(`${victim.ufrag}:${victim.remote}`, victim.pwd));
      // Shards report their counters once a second.
      await sleep(STATS_PERIOD_MS);
      const after = await shards(server.url);
      if (after[0].stun_in > before[0].stun_in && after[1].stun_in === before[1].stun_in) sock = s;
    }
    assert.ok(sock, 'found a port whose packets the kernel hands to shard 0');
    const before = await shards(server.url);
    await send(sock, binding(`${other.ufrag}:${other.remote}`, null));
    await sleep(100);
    // DTLS-shaped datagrams from the victim: they must reach its session.
    for (let i = 0; i < 20; i++) await send(sock, Buffer.from([22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, i, 0, 0]));
    await sleep(STATS_PERIOD_MS);
    const after = await shards(server.url);
    const figures = {
      stunAuthDrops: after[0].drops.stun_auth - before[0].drops.stun_auth,
      steered: after[0].steered - before[0].steered,
      unknownSource: after[1].drops.unknown_source - before[1].drops.unknown_source + after[0].drops.unknown_source - before[0].drops.unknown_source,
    };
    console.log(JSON.stringify({ case: 'forged-binding', ...figures }));
    assert.equal(figures.stunAuthDrops, 1, 'the forgery is refused and counted');
    assert.equal(figures.steered, 0, 'nothing of the victim was steered away');
    assert.equal(figures.unknownSource, 0, 'nothing of the victim was dropped as unknown_source');
  } finally {
    for (const s of sockets) s.close();
    await server.stop();
  }
});
