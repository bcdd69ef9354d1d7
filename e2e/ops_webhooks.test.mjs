// Webhooks (issue 5): a local endpoint that fails its first two requests
// receives signed room/participant/track events for one WHIP session, the
// first one retried until it is accepted. Canned offer, no browser. Run
// inside a private network namespace:
//   SFUD_BIN=target/release/sfud scripts/in-netns.sh node --test e2e/ops_webhooks.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSfud } from './lib/sfud.mjs';
import { pollUntil } from './lib/util.mjs';
import {
  API_KEY, authEnv, mintToken, whipOffer, postSdp, req, startWebhookReceiver, verifyWebhook, short,
} from './lib/ops.mjs';

const ROOM = 'hooks1';
const IDENTITY = 'hook-alice';

/** What the receiver saw, one line per request, for failure reports. */
function describeRequests(requests) {
  return requests.map((r, i) => {
    let ev = null;
    try { ev = JSON.parse(r.body.toString('utf8')); } catch { /* shown raw */ }
    const what = ev ? `${ev.event} id=${ev.id} room=${ev.room?.name} participant=${ev.participant?.identity ?? '-'} track=${short(ev.track ?? null)}`
      : `unparsable body ${JSON.stringify(r.body.toString('utf8').slice(0, 200))}`;
    return `#${i} +${r.t - requests[0].t}ms -> ${r.status} ${r.method} ${r.url} type=${r.headers['content-type']} ${what}`;
  }).join('\n');
}

test('webhooks: signed, retried after failures, one session start to finish', { timeout: 60000 }, async (t) => {
  const hook = await startWebhookReceiver({ port: 8099, path: '/hook', failFirst: 2 });
  let server = null;
  try {
    server = await startSfud({
      name: 'ops-webhooks',
      env: authEnv({
        SFUD_WEBHOOK__URLS: JSON.stringify([hook.url]),
        SFUD_WEBHOOK__API_KEY: API_KEY,
        SFUD_ROOM__EMPTY_TIMEOUT_SECS: '0',
      }),
    });

    const token = mintToken({ room: ROOM, identity: IDENTITY });
    const pub = await postSdp(`/whip/${ROOM}`, whipOffer(), { token });
    assert.equal(pub.status, 201, `WHIP: ${pub.status} ${pub.text}`);
    const location = new URL(pub.headers.get('location'), server.url).pathname;

    // track_published must arrive before we end the session, whether sfud
    // sends it at negotiation or later; give it a bounded moment.
    const events = () => hook.requests.filter((r) => r.status === 200).map((r) => JSON.parse(r.body.toString('utf8')));
    await pollUntil(() => events().some((e) => e.event === 'track_published'), {
      timeoutMs: 10000, signal: t.signal, what: 'track_published delivered', describe: () => `\n${describeRequests(hook.requests)}`,
    });

    const del = await req('DELETE', location, { token });
    assert.ok(del.status === 200 || del.status === 204, `DELETE ${location}: ${del.status} ${del.text}`);

    await pollUntil(() => events().some((e) => e.event === 'room_finished'), {
      timeoutMs: 15000, signal: t.signal, what: 'room_finished delivered', describe: () => `\n${describeRequests(hook.requests)}`,
    });
    // Anything still in flight (a late duplicate would show here).
    await new Promise((r) => setTimeout(r, 1000));

    const reqs = hook.requests;
    for (const [i, r] of reqs.entries()) {
      assert.equal(r.method, 'POST', `request #${i} method`);
      assert.equal(r.url, '/hook', `request #${i} path`);
      assert.match(r.headers['content-type'] || '', /^application\/webhook\+json/, `request #${i} content-type`);
      try {
        verifyWebhook(r);
      } catch (e) {
        assert.fail(`request #${i}: bad signature: ${e.message}; Authorization: ${r.headers.authorization}`);
      }
    }

    const parsed = reqs.map((r) => ({ ...JSON.parse(r.body.toString('utf8')), status: r.status }));
    for (const e of parsed) {
      assert.equal(typeof e.id, 'string', `event id: ${short(e)}`);
      assert.ok(e.id.length > 0, `event id: ${short(e)}`);
      assert.ok(typeof e.createdAt === 'number' || typeof e.createdAt === 'string', `createdAt: ${short(e)}`);
      assert.equal(e.room?.name, ROOM, `room.name: ${short(e)}`);
    }

    // The first event was refused twice, then accepted: three attempts, same id.
    const first = parsed[0];
    const attempts = parsed.filter((e) => e.id === first.id);
    assert.ok(attempts.length >= 3, `first event ${first.event} (${first.id}) seen ${attempts.length} times, want >= 3 (2 failures then success)`);
    assert.deepEqual(attempts.map((e) => e.status).slice(0, 3), [500, 500, 200]);
    assert.ok(reqs[2].t - reqs[0].t >= 700, `retries came too fast (0.5 s then 1 s backoff expected): ${reqs[1].t - reqs[0].t} ms, ${reqs[2].t - reqs[1].t} ms`);
    // Every event is delivered successfully exactly once.
    const okCount = new Map();
    for (const e of parsed) if (e.status === 200) okCount.set(e.id, (okCount.get(e.id) ?? 0) + 1);
    for (const [id, n] of okCount) assert.equal(n, 1, `event ${id} accepted ${n} times`);
    for (const e of parsed) assert.ok(okCount.has(e.id), `event ${e.event} ${e.id} never delivered successfully`);

    const delivered = parsed.filter((e) => e.status === 200);
    const kinds = delivered.map((e) => e.event);
    const idx = (k) => kinds.indexOf(k);
    for (const k of ['room_started', 'participant_joined', 'track_published', 'track_unpublished', 'participant_left', 'room_finished']) {
      assert.ok(kinds.includes(k), `no ${k} among ${JSON.stringify(kinds)}`);
    }
    assert.equal(kinds[0], 'room_started', `first event: ${JSON.stringify(kinds)}`);
    assert.equal(kinds[kinds.length - 1], 'room_finished', `last event: ${JSON.stringify(kinds)}`);
    assert.ok(idx('participant_joined') < idx('track_published'), `participant_joined before track_published: ${JSON.stringify(kinds)}`);
    assert.ok(kinds.lastIndexOf('track_published') < idx('participant_left'), `track_published before participant_left: ${JSON.stringify(kinds)}`);

    for (const e of delivered.filter((x) => x.event.startsWith('participant_') || x.event.startsWith('track_'))) {
      assert.equal(e.participant?.identity, IDENTITY, `participant.identity (the token's sub): ${short(e)}`);
    }
    const published = delivered.filter((e) => e.event === 'track_published');
    const types = published.map((e) => e.track?.type).sort();
    assert.deepEqual(types, ['audio', 'video'], `one track_published per track (opus + VP8): ${short(published)}`);
    for (const e of published) assert.ok(e.track.sid, `track.sid: ${short(e)}`);
    const unpublished = delivered.filter((e) => e.event === 'track_unpublished').map((e) => e.track?.sid).sort();
    assert.deepEqual(unpublished, published.map((e) => e.track.sid).sort(), 'every published track is unpublished');
    for (const k of ['room_started', 'room_finished', 'participant_joined', 'participant_left']) {
      assert.equal(kinds.filter((x) => x === k).length, 1, `${k} delivered once: ${JSON.stringify(kinds)}`);
    }
    t.diagnostic(`delivered: ${kinds.join(' > ')}; first event's attempts at ${attempts.map((_, i) => `+${reqs[i].t - reqs[0].t} ms`).join(', ')}`);
  } catch (e) {
    console.error([
      `--- ops-webhooks failed: ${e.message}`,
      '--- webhook requests received:', describeRequests(hook.requests),
      ...(server ? [`--- server log (tail of ${server.logPath}):`, server.logTail(80)] : []),
    ].join('\n'));
    throw e;
  } finally {
    if (server) await server.stop();
    await hook.close();
  }
});
