// CORS (issue 13): a web app hosted on another origin publishes and plays
// through sfud when its origin is in http.cors_allowed_origins, and is
// blocked by the browser when it is not. Preflights are checked with curl.
// Run inside a private network namespace:
//   SFUD_BIN=target/release/sfud scripts/in-netns.sh node --test --test-concurrency=1 e2e/cors.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { startSfud, getSessions } from './lib/sfud.mjs';
import { withHarness } from './lib/scenario.mjs';
import { publish, play, stop, waitForMedia } from './lib/browser.mjs';

const APP_PORT = 8081; // allowed
const OTHER_PORT = 8082; // not allowed
const APP_ORIGIN = `http://127.0.0.1:${APP_PORT}`;
const OTHER_ORIGIN = `http://127.0.0.1:${OTHER_PORT}`;

/** A static "web app" that loads sfud's app.js from sfud itself. */
function serveApp(port, sfudUrl) {
  const html = `<!doctype html><meta charset="utf-8"><title>app</title><div id="viewers"></div>
<script src="${sfudUrl}/app.js"></script>`;
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

function curl(args) {
  const r = spawnSync('curl', ['-s', '-o', '/dev/null', '-D', '-', ...args], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 0, r.stderr);
  const [status, ...lines] = r.stdout.trim().split(/\r?\n/);
  const headers = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(status.split(' ')[1]), headers };
}

test('CORS: allowed origin publishes and plays, another origin is blocked', { timeout: 60000 }, async (t) => {
  const server = await startSfud({
    name: 'cors',
    env: { SFUD_DATAPLANE__SHARDS: '1', SFUD_HTTP__CORS_ALLOWED_ORIGINS: `["${APP_ORIGIN}"]` },
  });
  const apps = [await serveApp(APP_PORT, server.url), await serveApp(OTHER_PORT, server.url)];
  try {
    // Preflight as a browser sends it, checked with curl.
    const pre = (origin) => curl(['-X', 'OPTIONS', `${server.url}/whip/cors-room`,
      '-H', `Origin: ${origin}`, '-H', 'Access-Control-Request-Method: POST',
      '-H', 'Access-Control-Request-Headers: authorization, content-type']);
    const ok = pre(APP_ORIGIN);
    assert.equal(ok.status, 204);
    assert.equal(ok.headers['access-control-allow-origin'], APP_ORIGIN);
    for (const h of ['Authorization', 'Content-Type', 'If-Match']) assert.match(ok.headers['access-control-allow-headers'], new RegExp(h));
    for (const m of ['POST', 'PATCH', 'DELETE']) assert.match(ok.headers['access-control-allow-methods'], new RegExp(m));
    const refused = pre(OTHER_ORIGIN);
    assert.equal(refused.status, 403);
    assert.equal(refused.headers['access-control-allow-origin'], undefined);
    // Preflight of a session resource (PATCH/DELETE) too.
    const res = curl(['-X', 'OPTIONS', `${server.url}/whep/cors-room/abc`, '-H', `Origin: ${APP_ORIGIN}`,
      '-H', 'Access-Control-Request-Method: PATCH', '-H', 'Access-Control-Request-Headers: if-match, content-type']);
    assert.equal(res.status, 204);
    // A cross-origin WebSocket from a page not allowed is refused.
    const ws = curl([`${server.url}/ws`, '-H', `Origin: ${OTHER_ORIGIN}`, '-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket',
      '-H', 'Sec-WebSocket-Version: 13', '-H', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']);
    assert.equal(ws.status, 403);

    await withHarness(t, { name: 'cors', server }, async (ctx) => {
      const pub = await ctx.browser.newPage(`${APP_ORIGIN}/`);
      const sub = await ctx.browser.newPage(`${APP_ORIGIN}/`);
      const opts = { server: server.url };
      const p = await publish(pub, 'pub', 'cors-room', opts);
      assert.ok(p.location.startsWith(`${server.url}/whip/cors-room/`), p.location);
      await play(sub, 'sub', 'cors-room', { ...opts, timeoutMs: 15000 });
      await waitForMedia(sub, 'sub', { frames: 90, timeoutMs: 20000, signal: t.signal, history: ctx.history });

      // The page that is not allowed: the browser blocks the POST.
      const other = await ctx.browser.newPage(`${OTHER_ORIGIN}/`);
      const err = await publish(other, 'pub', 'cors-room2', opts).then(() => null, (e) => e.message);
      assert.ok(err && /cannot reach the server/.test(err), `expected a blocked request, got ${err}`);
      const sessions = await getSessions(server.url);
      assert.ok(!sessions.some((s) => s.room === 'cors-room2'), JSON.stringify(sessions));

      // DELETE is cross-origin and preflighted too.
      await stop(pub, 'pub');
      const left = await getSessions(server.url);
      assert.ok(!left.some((s) => s.kind === 'whip' && s.room === 'cors-room'), JSON.stringify(left));
    });
  } finally {
    for (const a of apps) a.close();
  }
});
