// Bad input to the real sfud gets a clear 4xx with a reason, never a crash;
// bad configuration exits non-zero naming the key. No browser needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startSfud, sfudBin } from './lib/sfud.mjs';

// A syntactically valid offer whose only codec (AV1) sfud does not forward.
const H265_ONLY = [
  'v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0',
  'm=video 9 UDP/TLS/RTP/SAVPF 45', 'c=IN IP4 0.0.0.0', 'a=mid:0', 'a=sendonly', 'a=rtcp-mux',
  'a=ice-ufrag:abcd', 'a=ice-pwd:abcdefghijklmnopqrstuvwx',
  'a=fingerprint:sha-256 ' + Array(32).fill('AB').join(':'), 'a=setup:actpass',
  'a=rtpmap:45 H265/90000', '',
].join('\r\n');

async function req(method, path, { body, type } = {}) {
  const headers = type ? { 'content-type': type } : {};
  const res = await fetch(`http://127.0.0.1:7880${path}`, { method, headers, body, signal: AbortSignal.timeout(5000) });
  return { status: res.status, text: await res.text() };
}

test('WHIP/WHEP refuse bad input with a clear status and reason', { timeout: 60000 }, async () => {
  const server = await startSfud({ name: 'http-errors' });
  try {
    const cases = [
      ['POST', '/whip/r1', { body: 'v=0', type: 'text/plain' }, 415, /application\/sdp/],
      ['POST', '/whip/r1', { body: '', type: 'application/sdp' }, 400, /empty/],
      ['POST', '/whip/r1', { body: 'hello world', type: 'application/sdp' }, 400, /malformed SDP/],
      ['POST', '/whip/r1', { body: H265_ONLY, type: 'application/sdp' }, 400, /codec|usable/i],
      ['POST', '/whip/bad%20room', { body: H265_ONLY, type: 'application/sdp' }, 400, /room names/],
      ['POST', '/whip/r1?shard=0', { body: H265_ONLY, type: 'application/sdp' }, 400, /placement hint/],
      ['POST', '/whep/nobody-here', { body: H265_ONLY, type: 'application/sdp' }, 409, /no publisher yet/],
      ['POST', '/whip/r1', { body: 'x'.repeat(70000), type: 'application/sdp' }, 413, /limit/],
      ['DELETE', '/whip/r1/doesnotexist', {}, 404, /no session/],
      ['DELETE', '/whep/r1/doesnotexist', {}, 404, /no session/],
      ['PATCH', '/whip/r1/doesnotexist', { body: 'a=candidate', type: 'application/trickle-ice-sdpfrag' }, 400, /malformed sdpfrag/],
      ['PATCH', '/whip/r1/doesnotexist', { body: 'a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n', type: 'text/plain' }, 415, /trickle-ice-sdpfrag/],
      ['PATCH', '/whip/r1/doesnotexist', { body: 'a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n', type: 'application/trickle-ice-sdpfrag' }, 404, /no session/],
      // Test hooks are off by default: nobody can make sfud panic.
      ['POST', '/api/v1/test/controlplane/panic', {}, 403, /test hooks are off/],
    ];
    for (const [method, path, opts, status, reason] of cases) {
      const res = await req(method, path, opts);
      assert.equal(res.status, status, `${method} ${path}: got ${res.status} ${res.text}`);
      assert.match(res.text, reason, `${method} ${path}: reason was ${JSON.stringify(res.text)}`);
    }
    // Still alive and nothing half-created.
    assert.equal((await req('GET', '/healthz')).status, 200);
    assert.deepEqual(await server.sessions(), []);
  } catch (e) {
    console.error(server.logTail(40));
    throw e;
  } finally {
    await server.stop();
  }
});

test('invalid configuration exits non-zero and names the key', () => {
  const run = (env, args = []) =>
    spawnSync(sfudBin(), args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 10000 });
  let r = run({ SFUD_DATAPLANE__SHARDS: 'lots' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /dataplane\.shards/);
  r = run({ SFUD_RTC__UDP_PROT: '1' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /rtc\.udp_prot/);
  r = run({}, ['--config', '/nonexistent/sfud.toml']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /nonexistent/);
  r = run({}, ['--help']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /SFUD_/);
  assert.match(r.stdout, /7882/);
});
