// Replays of issue 10's findings against the real sfud, over plain HTTP,
// WebSocket and TCP (no browser): every limit answers 429/503 with a reason
// (or a JSON-RPC error) and is counted; slow HTTP heads, silent WebSockets
// and silent ICE-TCP connections are dropped; with auth on, TURN
// credentials, DELETE and the session list need the right token, and a
// POST body is not read before the token is checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startSfud } from './lib/sfud.mjs';
import { authEnv, mintToken, whipOffer, whepOffer, postSdp, req, fetchMetrics, parseMetrics, sumOf } from './lib/ops.mjs';
import { connectRpc, DATA_ONLY_OFFER } from './lib/jsonrpc.mjs';
import { pollUntil } from './lib/util.mjs';

const refusals = async (limit) =>
  sumOf(parseMetrics((await fetchMetrics()).text), 'sfud_limit_refusals_total', (l) => l.limit === limit);

async function withServer(name, env, fn) {
  const server = await startSfud({ name, env: { SFUD_NODE__DRAIN_TIMEOUT_SECS: '1', ...env } });
  try {
    await fn(server);
  } catch (e) {
    console.error(server.logTail(40));
    throw e;
  } finally {
    await server.stop();
  }
}

/** Opens a raw TCP connection; `closed` resolves with what arrived and how long it stayed open. */
function rawConnect(port, { send } = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const sock = net.connect({ host: '127.0.0.1', port }, () => {
      if (send) sock.write(send);
      let data = '';
      sock.on('data', (d) => { data += d.toString('latin1'); });
      const closed = new Promise((res) => sock.on('close', () => res({ data, ms: Date.now() - started })));
      sock.on('error', () => {});
      resolve({ sock, closed });
    });
    sock.once('error', reject);
  });
}

const within = (p, ms, what) =>
  Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`${what}: still open after ${ms} ms`)), ms))]);

test('node and room capacity limits answer 503 with the key, JSON-RPC -32006', { timeout: 60000 }, async () => {
  await withServer('harden-capacity', {
    SFUD_LIMITS__MAX_ROOMS: '2',
    SFUD_LIMITS__MAX_SESSIONS: '4',
    SFUD_LIMITS__MAX_SUBSCRIBERS_PER_ROOM: '1',
    SFUD_LIMITS__MAX_PUBLISHERS_PER_ROOM: '1',
  }, async (server) => {
    const expect = async (path, offer, status, reason) => {
      const r = await postSdp(path, offer);
      assert.equal(r.status, status, `POST ${path}: ${r.status} ${r.text}`);
      if (reason) assert.match(r.text, reason, `POST ${path}`);
    };
    await expect('/whip/a', whipOffer(), 201);
    await expect('/whep/a', whepOffer(), 201);
    await expect('/whep/a', whepOffer(), 503, /max_subscribers_per_room/);
    const rpc = await connectRpc(`ws://127.0.0.1:7880/ws`);
    try {
      const res = await rpc.call('join', { sid: 'a', uid: 'u1', offer: DATA_ONLY_OFFER });
      assert.equal(res.error?.code, -32006, JSON.stringify(res));
      assert.match(res.error.message, /max_publishers_per_room/);
    } finally {
      rpc.close();
    }
    await expect('/whip/b', whipOffer(), 201);
    await expect('/whip/c', whipOffer(), 503, /max_rooms/);
    await expect('/whep/b', whepOffer(), 201);
    await expect('/whep/b', whepOffer(), 503, /max_sessions/);
    assert.equal((await server.sessions()).length, 4);
    for (const l of ['max_rooms', 'max_sessions', 'max_subscribers_per_room', 'max_publishers_per_room']) {
      assert.ok(await refusals(l) >= 1, `sfud_limit_refusals_total{limit="${l}"}`);
    }
  });
});

test('a namespace (tenant) has its own room and session budgets (429); other tenants are unaffected', { timeout: 60000 }, async () => {
  await withServer('harden-namespaces', {
    SFUD_LIMITS__MAX_ROOMS_PER_NAMESPACE: '1',
    SFUD_LIMITS__MAX_SESSIONS_PER_NAMESPACE: '2',
  }, async () => {
    const expect = async (path, offer, status, reason) => {
      const r = await postSdp(path, offer);
      assert.equal(r.status, status, `POST ${path}: ${r.status} ${r.text}`);
      if (reason) assert.match(r.text, reason, `POST ${path}`);
    };
    await expect('/whip/r1?ns=t1', whipOffer(), 201);
    await expect('/whip/r2?ns=t1', whipOffer(), 429, /namespace 't1'.*max_rooms_per_namespace/);
    await expect('/whip/r1?ns=t2', whipOffer(), 201);
    await expect('/whep/r1?ns=t1', whepOffer(), 201);
    await expect('/whep/r1?ns=t1', whepOffer(), 429, /max_sessions_per_namespace/);
    await expect('/whep/r1?ns=t2', whepOffer(), 201);
    for (const l of ['max_rooms_per_namespace', 'max_sessions_per_namespace']) {
      assert.ok(await refusals(l) >= 1, `sfud_limit_refusals_total{limit="${l}"}`);
    }
  });
});

test('auth on: per-identity and per-address limits (429), TURN only for authorized OPTIONS, DELETE and listing need tokens, auth before body', { timeout: 60000 }, async () => {
  await withServer('harden-auth', authEnv({
    SFUD_LIMITS__MAX_SESSIONS_PER_IDENTITY: '1',
    SFUD_LIMITS__MAX_PENDING_PER_ADDRESS: '2',
    SFUD_TURN__ENABLED: 'true',
    SFUD_TURN__SHARED_SECRET: 'e2e-turn-secret-0123456789abcdef',
  }), async () => {
    const tok = (room, identity) => mintToken({ room, identity });
    // Per token identity.
    const a1 = await postSdp('/whip/r1', whipOffer(), { token: tok('r1', 'alice') });
    assert.equal(a1.status, 201, a1.text);
    const a2 = await postSdp('/whip/r2', whipOffer(), { token: tok('r2', 'alice') });
    assert.equal(a2.status, 429, a2.text);
    assert.match(a2.text, /max_sessions_per_identity/);
    // Per source address (all of these come from 127.0.0.1, none connects).
    assert.equal((await postSdp('/whip/r2', whipOffer(), { token: tok('r2', 'bob') })).status, 201);
    const c = await postSdp('/whip/r3', whipOffer(), { token: tok('r3', 'carol') });
    assert.equal(c.status, 429, c.text);
    assert.match(c.text, /max_pending_per_address/);

    // OPTIONS: TURN credentials only with a token that would pass the POST.
    const noTok = await req('OPTIONS', '/whip/r9');
    assert.equal(noTok.status, 204);
    assert.equal(noTok.headers.get('link'), null, 'no TURN credentials without a token');
    const wrongRoom = await req('OPTIONS', '/whip/r9', { token: tok('r1', 'dave') });
    assert.equal(wrongRoom.headers.get('link'), null, 'no TURN credentials with a token for another room');
    const good = await req('OPTIONS', '/whip/r9', { token: tok('r9', 'dave') });
    assert.match(good.headers.get('link') ?? '', /turn:.*credential=/, 'TURN credentials with a valid token');

    // Listing needs an admin grant and shows no DELETE capability.
    assert.equal((await req('GET', '/api/v1/sessions')).status, 401);
    const list = await req('GET', '/api/v1/sessions', { token: mintToken({ identity: 'ops', join: false, admin: true, list: true }) });
    assert.equal(list.status, 200, list.text);
    const location = a1.headers.get('location');
    const resource = location.split('/').pop();
    assert.ok(!list.text.includes(resource), 'the list does not reveal resource ids');
    assert.ok(JSON.parse(list.text).some((s) => resource.startsWith(s.id)), `a public id prefix is listed: ${list.text}`);

    // DELETE needs a token for the room besides the resource id.
    assert.equal((await req('DELETE', location)).status, 401);
    assert.equal((await req('DELETE', location, { token: tok('r2', 'mallory') })).status, 403);
    const del = await req('DELETE', location, { token: tok('r1', 'alice') });
    assert.equal(del.status, 200, del.text);

    // Auth before body: a refused POST is answered without its body being read.
    const { sock, closed } = await rawConnect(7880, {
      send: 'POST /whip/r1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/sdp\r\nContent-Length: 100000000\r\n\r\nv=0\r\n',
    });
    const reply = await new Promise((resolve) => {
      let data = '';
      sock.on('data', (d) => { data += d; if (data.includes('\r\n\r\n')) resolve(data); });
      setTimeout(() => resolve(data), 3000);
    });
    assert.match(reply, /^HTTP\/1.1 401/, `reply to an unauthenticated 100 MB POST: ${JSON.stringify(reply.slice(0, 80))}`);
    sock.destroy();
    await closed;
  });
});

test('slow HTTP heads are dropped, connections are capped, silent WebSockets and ICE-TCP connections are closed', { timeout: 60000 }, async () => {
  await withServer('harden-conns', {
    SFUD_LIMITS__HTTP_HEADER_TIMEOUT_SECS: '1',
    SFUD_LIMITS__HTTP_MAX_CONNECTIONS: '4',
    SFUD_LIMITS__WS_IDLE_TIMEOUT_SECS: '1',
    SFUD_LIMITS__ICE_TCP_FIRST_FRAME_TIMEOUT_SECS: '1',
    SFUD_DATAPLANE__SHARDS: '1',
  }, async () => {
    // Slowloris: half a request head, then nothing.
    const slow = await rawConnect(7880, { send: 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n' });
    const silent = await rawConnect(7880);
    const s = await within(slow.closed, 4000, 'a half-sent request head');
    const q = await within(silent.closed, 4000, 'a silent HTTP connection');
    assert.ok(s.ms >= 900 && q.ms >= 900, `closed after ${s.ms} and ${q.ms} ms`);
    assert.ok(!/200 OK/.test(s.data), `no answer to a partial head: ${s.data}`);

    // Over the connection cap a client gets a 503 and is closed.
    const held = [];
    for (let i = 0; i < 6; i++) held.push(await rawConnect(7880));
    const turnedAway = await within(Promise.race(held.map((h) => h.closed.then((c) => (/503/.test(c.data) ? c : new Promise(() => {}))))), 4000, 'a connection over the cap');
    assert.match(turnedAway.data, /http_max_connections/);
    for (const h of held) h.sock.destroy();
    assert.ok(await refusals('http_max_connections') >= 1);

    // A WebSocket that never answers pings (nor sends anything) is closed.
    const ws = await rawConnect(7880, {
      send: 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
        + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    });
    const w = await within(ws.closed, 5000, 'a silent WebSocket');
    assert.match(w.data, /^HTTP\/1.1 101/, 'the upgrade succeeded first');

    // An oversized WebSocket frame is refused: header claims 16 MiB.
    const big = await rawConnect(7880, {
      send: 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
        + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    });
    await new Promise((r) => setTimeout(r, 200));
    const hdr = Buffer.from([0x81, 0xff, 0, 0, 0, 0, 0x01, 0, 0, 0, 1, 2, 3, 4]);
    big.sock.write(hdr);
    const b = await within(big.closed, 5000, 'a WebSocket announcing a 16 MiB frame');
    assert.ok(b.ms < 1000 + 200 + 900, `closed at once (${b.ms} ms), not by the idle timer`);

    // ICE-TCP: a connection that sends nothing, or half a frame, is closed.
    const t1 = await rawConnect(7881);
    const t2 = await rawConnect(7881, { send: Buffer.from([0x00, 0x40, 0x00, 0x01]) });
    const r1 = await within(t1.closed, 4000, 'a silent ICE-TCP connection');
    const r2 = await within(t2.closed, 4000, 'an ICE-TCP connection with half a frame');
    assert.ok(r1.ms >= 900 && r2.ms >= 900, `closed after ${r1.ms} and ${r2.ms} ms`);
    // Shards report their counters about once a second.
    let rejected = 0;
    await pollUntil(async () => {
      const stats = JSON.parse((await req('GET', '/api/v1/stats')).text);
      rejected = stats.shards.reduce((a, sh) => a + sh.tcp_rejected, 0);
      return rejected >= 2;
    }, { timeoutMs: 5000, what: 'tcp_rejected >= 2', describe: () => String(rejected) });

    // Upgraded WebSockets keep counting against the connection cap (the
    // client's pooled HTTP connection may hold a slot too), and give their
    // slot back when they close.
    const sockets = [];
    try {
      let refused = null;
      for (let i = 0; i < 5 && !refused; i++) {
        try { sockets.push(await connectRpc('ws://127.0.0.1:7880/ws')); } catch (e) { refused = e; }
      }
      assert.ok(sockets.length >= 2 && refused && /503/.test(refused.message), `${sockets.length} WebSockets open, then: ${refused?.message}`);
      sockets.pop().close();
      await new Promise((r) => setTimeout(r, 300));
      sockets.push(await connectRpc('ws://127.0.0.1:7880/ws'));
    } finally {
      for (const s of sockets) s.close();
    }
  });
});
