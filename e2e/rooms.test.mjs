// Rooms over ion-sfu's JSON-RPC (issue 4): real ion-sdk-js 1.8 clients in
// headless Chromium, and plain-node protocol checks. Run inside a private
// network namespace:
//   SFUD_BIN=target/release/sfud scripts/in-netns.sh node --test --test-concurrency=1 e2e/rooms.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startSfud, getSessions } from './lib/sfud.mjs';
import { withHarness } from './lib/scenario.mjs';
import { meeting, churn, demoPageMeeting, wsUrlOf, expectNothingLeft } from './lib/rooms.mjs';
import { connectRpc, brief, DATA_ONLY_OFFER } from './lib/jsonrpc.mjs';
import { pollUntil } from './lib/util.mjs';

// Inner waits are bounded well below these, so a case fails on its own
// (and cleans up) before the runner's timeout cancels it.
const MEETING_TIMEOUT_MS = 150000;
const CHURN_TIMEOUT_MS = 120000;
const RPC_TIMEOUT_MS = 40000;

// SFUD_E2E_SERVER_MODULE names a module exporting startServer(opts) with
// startSfud's contract: a stand-in server for checking the harness itself.
const startServer = process.env.SFUD_E2E_SERVER_MODULE
  ? (await import(pathToFileURL(path.resolve(process.env.SFUD_E2E_SERVER_MODULE)).href)).startServer
  : startSfud;

const roomEnv = (shards, extra = {}) => ({
  SFUD_DATAPLANE__SHARDS: String(shards),
  SFUD_ROOM__EMPTY_TIMEOUT_SECS: '0',
  ...extra,
});

/** On failure, adds what every participant saw to withHarness's report. */
async function dumping(ctx, body) {
  try {
    return await body();
  } catch (e) {
    if (ctx.dumpState) {
      const states = await Promise.race([ctx.dumpState(), new Promise((r) => setTimeout(() => r('(timed out)'), 3000))]).catch((err) => err.message);
      const lines = Array.isArray(states) ? states.filter(Boolean).map((x) => JSON.stringify(x)) : [String(states)];
      console.error(['--- participants (state and event log):', ...lines].join('\n'));
    }
    throw e;
  }
}

for (const shards of [1, 2]) {
  test(`shards=${shards}: three ion-sdk-js participants meet, one leaves and rejoins`, { timeout: MEETING_TIMEOUT_MS }, async (t) => {
    const name = `rooms-meeting-shards${shards}`;
    const server = await startServer({ name, env: roomEnv(shards) });
    await withHarness(t, { name, server }, (ctx) => dumping(ctx, () => meeting(t, ctx, { room: 'meet1' })));
  });
}

test('10 participants join and leave concurrently, twice, and nothing leaks', { timeout: CHURN_TIMEOUT_MS }, async (t) => {
  const name = 'rooms-churn';
  const server = await startServer({ name, env: roomEnv(2) });
  await withHarness(t, { name, server }, (ctx) => dumping(ctx, () => churn(t, ctx, { room: 'busy', n: 10 })));
});

test('demo page meeting mode: two people see each other, one leaves', { timeout: CHURN_TIMEOUT_MS }, async (t) => {
  const name = 'rooms-demo-page';
  const server = await startServer({ name, env: roomEnv(1) });
  await withHarness(t, { name, server }, (ctx) => demoPageMeeting(t, ctx));
});

// ---- JSON-RPC without a browser ----

async function withRpcServer(t, name, env, body) {
  const server = await startServer({ name, env });
  const sockets = [];
  const open = async () => { const s = await connectRpc(wsUrlOf(server.url)); sockets.push(s); return s; };
  try {
    await body({ server, open });
  } catch (e) {
    const lines = [`--- ${name} failed: ${e.message}`];
    sockets.forEach((s, i) => lines.push(`--- socket ${i} received:`, brief(s.received)));
    if (server.logTail) lines.push(`--- server log (tail of ${server.logPath}):`, server.logTail(80));
    console.error(lines.join('\n'));
    throw e;
  } finally {
    for (const s of sockets) s.ws.terminate();
    await server.stop();
  }
}

function assertError(resp, code, what) {
  assert.ok(resp.error, `${what}: expected an error, got ${brief(resp)}`);
  assert.equal(resp.error.code, code, `${what}: ${brief(resp)}`);
  assert.equal(typeof resp.error.message, 'string', `${what}: error.message`);
  assert.ok(resp.error.message.length > 0, `${what}: empty error.message`);
  assert.equal(resp.jsonrpc, '2.0', `${what}: responses carry jsonrpc "2.0"`);
  assert.ok(!('result' in resp), `${what}: both result and error`);
}

test('JSON-RPC: errors, the join exchange, one join per socket, cleanup on drop', { timeout: RPC_TIMEOUT_MS }, async (t) => {
  await withRpcServer(t, 'rooms-jsonrpc', roomEnv(1), async ({ server, open }) => {
    const s = await open();

    s.send('{"method": "join", "params": ');
    const parse = await s.next((m) => 'error' in m && m.id === null, 5000, 'a -32700 response with id null');
    assertError(parse, -32700, 'malformed JSON');

    // The socket survives protocol errors.
    assertError(await s.call('nope', {}, { jsonrpc: true }), -32601, 'unknown method');
    assertError(await s.call('join', { sid: 5, uid: 'x' }), -32602, 'join with a numeric sid and no offer');
    assertError(await s.call('join', { sid: 'rpc1', uid: 'x', offer: { type: 'offer' } }), -32602, 'join with an offer without sdp');
    assertError(await s.call('join', 'rpc1'), -32602, 'join with params not an object');
    const early = await s.call('offer', { desc: DATA_ONLY_OFFER });
    assert.ok(early.error, `offer before join must be refused: ${brief(early)}`);

    // A join exactly as ion-sdk-js sends it: uuid id, no "jsonrpc" member.
    const joined = await s.call('join', { sid: 'rpc1', uid: 'alice', offer: DATA_ONLY_OFFER }, { timeoutMs: 10000 });
    assert.ok(joined.result, `join: ${brief(joined)}`);
    assert.equal(joined.result.type, 'answer');
    assert.match(joined.result.sdp, /^v=0\r\n/);
    assert.match(joined.result.sdp, /\r\nm=application /, 'the answer keeps the offer\'s m=application line (accepted or port 0)');

    // The subscriber PC: an offer notification whose params are a bare
    // description, carrying the data channel ion-sdk-js waits for.
    const subOffer = await s.next((m) => m.method === 'offer' && !('id' in m && m.id !== null), 5000, 'a subscriber offer notification');
    assert.equal(subOffer.params.type, 'offer', brief(subOffer));
    assert.match(subOffer.params.sdp, /\r\nm=application [1-9]\d* UDP\/DTLS\/SCTP webrtc-datachannel\r\n/, 'subscriber offer has a data channel m-line');

    const again = await s.call('join', { sid: 'rpc1', uid: 'alice2', offer: DATA_ONLY_OFFER });
    assert.ok(again.error, `second join on one socket must be refused: ${brief(again)}`);
    assert.ok(typeof again.error.code === 'number' && again.error.message, brief(again));

    let seen = null;
    await pollUntil(async () => {
      seen = await getSessions(server.url);
      return seen.some((x) => x.room === 'rpc1');
    }, { timeoutMs: 3000, signal: t.signal, what: 'sessions of room rpc1 listed', describe: () => JSON.stringify(seen) });

    // Dropped without a word: the participant goes within a few seconds.
    s.ws.terminate();
    await expectNothingLeft(t, server.url, { timeoutMs: 5000 });
  });
});

test('JSON-RPC: room.max_participants refuses the next join with a clear error', { timeout: RPC_TIMEOUT_MS }, async (t) => {
  await withRpcServer(t, 'rooms-limit', roomEnv(1, { SFUD_ROOM__MAX_PARTICIPANTS: '1' }), async ({ server, open }) => {
    const a = await open();
    const ok = await a.call('join', { sid: 'small', uid: 'a', offer: DATA_ONLY_OFFER }, { timeoutMs: 10000 });
    assert.ok(ok.result, brief(ok));
    const b = await open();
    const full = await b.call('join', { sid: 'small', uid: 'b', offer: DATA_ONLY_OFFER }, { timeoutMs: 10000 });
    assert.ok(full.error, `join into a full room: ${brief(full)}`);
    assert.match(full.error.message, /full|max|limit|participants/i, brief(full));
    // Another room is not affected.
    const other = await b.call('join', { sid: 'other', uid: 'b', offer: DATA_ONLY_OFFER }, { timeoutMs: 10000 });
    assert.ok(other.result, `a refused join leaves the socket usable: ${brief(other)}`);
    await a.close();
    await b.close();
    await expectNothingLeft(t, server.url, { timeoutMs: 5000 });
  });
});
