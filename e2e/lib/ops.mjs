// Helpers for the operations tests (issue 5): access tokens minted and
// checked in node, canned SDP offers that need no browser, a webhook
// receiver, promtool and a real Prometheus server.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdtempSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { LOG_DIR, SFUD_URL, sfudBin } from './sfud.mjs';
import { killAllOnExit, pollUntil, sleep } from './util.mjs';

export const METRICS_URL = 'http://127.0.0.1:6789/metrics';
export const API_KEY = 'devkey';
// 32+ characters: sfud warns about shorter secrets, as LiveKit refuses them.
export const SECRET = 'e2e-secret-0123456789abcdefghijklmnop';
export const WRONG_SECRET = 'not-the-secret-0123456789abcdefghijk';

/** Environment that turns auth on with API_KEY/SECRET. */
export const authEnv = (extra = {}) => ({ SFUD_AUTH__KEYS: `{${API_KEY}="${SECRET}"}`, ...extra });

// ---- JWT (HS256) ----

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const nowSecs = () => Math.floor(Date.now() / 1000);

export function signJwt(claims, secret) {
  const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** Splits a JWT without checking it: { header, claims, input, signature }. */
export function decodeJwt(token) {
  const parts = String(token).split('.');
  if (parts.length !== 3) throw new Error(`not a JWT (${parts.length} parts): ${String(token).slice(0, 80)}`);
  const json = (p, what) => {
    try { return JSON.parse(Buffer.from(p, 'base64url').toString('utf8')); } catch (e) { throw new Error(`JWT ${what} is not base64url JSON: ${e.message}`); }
  };
  return { header: json(parts[0], 'header'), claims: json(parts[1], 'payload'), input: `${parts[0]}.${parts[1]}`, signature: parts[2] };
}

/** Verifies an HS256 JWT's signature with `secret` and returns its claims; throws why not. */
export function verifyJwt(token, secret) {
  const { header, claims, input, signature } = decodeJwt(token);
  if (header.alg !== 'HS256') throw new Error(`JWT alg is ${JSON.stringify(header.alg)}, not HS256`);
  const want = createHmac('sha256', secret).update(input).digest();
  const got = Buffer.from(signature, 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) throw new Error('JWT signature does not verify with the secret');
  return claims;
}

/**
 * A LiveKit-style access token. `room: null` leaves the room out (node-wide
 * admin). `expired` puts exp an hour in the past (beyond any leeway).
 */
export function mintToken({
  room = null, identity = 'e2e-user', join = true, publish = true, subscribe = true, admin = false, list = false,
  ttlSecs = 600, expired = false, secret = SECRET, apiKey = API_KEY,
} = {}) {
  const now = nowSecs();
  const video = {};
  if (room !== null) video.room = room;
  if (join) video.roomJoin = true;
  video.canPublish = publish;
  video.canSubscribe = subscribe;
  if (admin) video.roomAdmin = true;
  if (list) video.roomList = true;
  const exp = expired ? now - 3600 : now + ttlSecs;
  return signJwt({ iss: apiKey, sub: identity, nbf: expired ? now - 7200 : now - 5, exp, video }, secret);
}

/** Runs `sfud ARGS...` to completion (for `sfud token create`). */
export function runSfud(args, env = {}) {
  return spawnSync(sfudBin(), args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 10000 });
}

/** Whether the binary under test has the `token` subcommand (the ops wiring). */
export function hasTokenCommand() {
  const r = runSfud(['token', '--help']);
  return r.status === 0;
}

// ---- canned SDP offers (what Chromium sends, values arbitrary) ----

function iceCreds() {
  return { ufrag: randomBytes(3).toString('hex'), pwd: randomBytes(12).toString('hex') };
}

const FINGERPRINT = 'a=fingerprint:sha-256 75:2F:BA:D1:AF:45:3A:5B:06:59:08:F1:39:4E:52:D9:2C:D9:C8:BF:35:3A:08:56:D1:3E:71:84:C8:69:2D:96';

function mediaOffer(direction) {
  const { ufrag, pwd } = iceCreds();
  const common = (mid) => [
    'c=IN IP4 0.0.0.0',
    'a=rtcp:9 IN IP4 0.0.0.0',
    `a=ice-ufrag:${ufrag}`,
    `a=ice-pwd:${pwd}`,
    'a=ice-options:trickle',
    FINGERPRINT,
    'a=setup:actpass',
    `a=mid:${mid}`,
    'a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid',
    `a=${direction}`,
    ...(direction === 'sendonly' ? [`a=msid:e2e-stream e2e-track-${mid}`] : []),
    'a=rtcp-mux',
  ];
  const ssrc = (n, mid) => (direction === 'sendonly' ? [`a=ssrc:${n} cname:e2e-cname`, `a=ssrc:${n} msid:e2e-stream e2e-track-${mid}`] : []);
  return [
    'v=0',
    `o=- ${Date.now()} 2 IN IP4 127.0.0.1`,
    's=-',
    't=0 0',
    'a=group:BUNDLE 0 1',
    'a=extmap-allow-mixed',
    'a=msid-semantic: WMS e2e-stream',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111',
    ...common(0),
    'a=rtpmap:111 opus/48000/2',
    'a=rtcp-fb:111 transport-cc',
    'a=fmtp:111 minptime=10;useinbandfec=1',
    ...ssrc(1111, 0),
    'm=video 9 UDP/TLS/RTP/SAVPF 96 97',
    ...common(1),
    'a=rtcp-rsize',
    'a=rtpmap:96 VP8/90000',
    'a=rtcp-fb:96 goog-remb',
    'a=rtcp-fb:96 transport-cc',
    'a=rtcp-fb:96 ccm fir',
    'a=rtcp-fb:96 nack',
    'a=rtcp-fb:96 nack pli',
    'a=rtpmap:97 rtx/90000',
    'a=fmtp:97 apt=96',
    ...(direction === 'sendonly' ? ['a=ssrc-group:FID 2222 3333'] : []),
    ...ssrc(2222, 1),
    ...ssrc(3333, 1),
    '',
  ].join('\r\n');
}

/** A WHIP offer: opus + VP8 (with RTX) sendonly, BUNDLE, rtcp-mux. Fresh ICE credentials each call. */
export const whipOffer = () => mediaOffer('sendonly');
/** A WHEP offer: the same codecs, recvonly. */
export const whepOffer = () => mediaOffer('recvonly');

// ---- HTTP ----

/**
 * One request to sfud; never throws on a status. `token` goes in
 * `Authorization: Bearer`. Returns { status, text, headers }.
 */
export async function req(method, urlPath, { body, type, token, headers = {}, base = SFUD_URL, timeoutMs = 5000 } = {}) {
  const h = { ...headers };
  if (type) h['content-type'] = type;
  if (token !== undefined && token !== null) h.authorization = `Bearer ${token}`;
  const res = await fetch(`${base}${urlPath}`, { method, headers: h, body, signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

export const postSdp = (urlPath, sdp, opts = {}) => req('POST', urlPath, { ...opts, body: sdp, type: 'application/sdp' });

/** JSON for failure messages with long strings (SDP, tokens) cut short. */
export const short = (x) => JSON.stringify(x, (k, v) => (typeof v === 'string' && v.length > 160 ? `${v.slice(0, 160)}…` : v));

// ---- webhook receiver ----

/**
 * A local HTTP endpoint for webhooks. Answers `failFirst` requests with
 * 500, then 200. `requests` holds every request in arrival order:
 * { t, method, url, headers, body (Buffer), status }.
 */
export async function startWebhookReceiver({ port = 8099, path: hookPath = '/hook', failFirst = 0 } = {}) {
  const requests = [];
  const server = http.createServer((request, response) => {
    const chunks = [];
    request.on('data', (c) => chunks.push(c));
    request.on('end', () => {
      const status = requests.length < failFirst ? 500 : 200;
      requests.push({
        t: Date.now(), method: request.method, url: request.url, headers: request.headers, body: Buffer.concat(chunks), status,
      });
      response.writeHead(status, { 'content-type': 'text/plain' });
      response.end(status === 200 ? 'ok' : 'failing on purpose');
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    url: `http://127.0.0.1:${port}${hookPath}`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}

/**
 * Checks a webhook request as LiveKit receivers do: the Authorization header
 * is an HS256 JWT by `secret` (iss = apiKey) whose `sha256` claim is the
 * base64 SHA-256 of the exact body. Returns the claims; throws why not.
 */
export function verifyWebhook(request, { secret = SECRET, apiKey = API_KEY } = {}) {
  const auth = request.headers.authorization;
  if (!auth) throw new Error('no Authorization header');
  const token = auth.replace(/^Bearer\s+/i, '').trim();
  const claims = verifyJwt(token, secret);
  if (claims.iss !== apiKey) throw new Error(`iss is ${JSON.stringify(claims.iss)}, not ${apiKey}`);
  const want = createHash('sha256').update(request.body).digest('base64');
  if (claims.sha256 !== want) throw new Error(`sha256 claim ${JSON.stringify(claims.sha256)} != base64(sha256(body)) ${want}`);
  if (typeof claims.exp === 'number' && claims.exp < nowSecs() - 30) throw new Error(`signature expired (exp ${claims.exp})`);
  return claims;
}

// ---- Prometheus ----

export async function fetchMetrics(url = METRICS_URL) {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${text.slice(0, 300)}`);
  return { text, contentType: res.headers.get('content-type') };
}

/** Samples of the text exposition: [{ name, labels: {..}, value }]. */
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

export const sumOf = (samples, name, pred = () => true) =>
  samples.filter((s) => s.name === name && pred(s.labels)).reduce((a, s) => a + s.value, 0);

export const PROMTOOL = process.env.PROMTOOL_BIN || '/usr/bin/promtool';
export const PROMETHEUS = process.env.PROMETHEUS_BIN || '/usr/bin/prometheus';

/** `promtool check metrics < file` on `text`: { status, output, file }. */
export function promtoolCheck(text) {
  if (!existsSync(PROMTOOL)) {
    throw new Error(`${PROMTOOL} not found: install Debian's prometheus package (scripts/install-test-deps.sh)`);
  }
  mkdirSync(LOG_DIR, { recursive: true });
  const file = path.join(LOG_DIR, 'ops-metrics.prom');
  writeFileSync(file, text);
  const fd = openSync(file, 'r');
  try {
    const r = spawnSync(PROMTOOL, ['check', 'metrics'], { stdio: [fd, 'pipe', 'pipe'], encoding: 'utf8', timeout: 20000 });
    return { status: r.status, signal: r.signal, output: `${r.stdout || ''}${r.stderr || ''}${r.error ? r.error.message : ''}`, file };
  } finally {
    closeSync(fd);
  }
}

/**
 * Starts a Prometheus server scraping `target` every second. Returns
 * { url, query(q) -> result array, stop(), logTail(n), logPath }.
 */
export async function startPrometheus({ target = '127.0.0.1:6789', listen = '127.0.0.1:9090', job = 'sfud', startTimeoutMs = 20000 } = {}) {
  if (!existsSync(PROMETHEUS)) {
    throw new Error(`${PROMETHEUS} not found: install Debian's prometheus package (scripts/install-test-deps.sh)`);
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sfud-e2e-prom-'));
  const config = path.join(dir, 'prometheus.yml');
  writeFileSync(config, [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    `  - job_name: ${job}`,
    '    static_configs:',
    `      - targets: ['${target}']`,
    '',
  ].join('\n'));
  mkdirSync(LOG_DIR, { recursive: true });
  const logPath = path.join(LOG_DIR, 'ops-prometheus.log');
  const fd = openSync(logPath, 'w');
  const args = [
    `--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=${listen}`,
    '--log.level=info',
  ];
  const [cmd, argv] = existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', PROMETHEUS, ...args]] : [PROMETHEUS, args];
  const child = spawn(cmd, argv, { stdio: ['ignore', fd, fd], detached: true, cwd: dir });
  closeSync(fd);
  const unregister = killAllOnExit(child);
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => { exitInfo = { code, signal }; unregister(); resolve(exitInfo); });
    child.on('error', (error) => { exitInfo = { error: error.message }; unregister(); resolve(exitInfo); });
  });
  const logTail = (n = 30) => { try { return readFileSync(logPath, 'utf8').split('\n').slice(-n - 1).join('\n'); } catch (e) { return e.message; } };
  const stop = async () => {
    if (!exitInfo) {
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
      if (!(await Promise.race([exited, sleep(5000).then(() => null)]))) {
        try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
        await exited;
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `http://${listen}`;
  const query = async (q) => {
    const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(3000) });
    const body = await res.json();
    if (body.status !== 'success') throw new Error(`query ${q}: ${JSON.stringify(body)}`);
    return body.data.result;
  };
  try {
    await pollUntil(async () => {
      if (exitInfo) throw new Error(`prometheus exited: ${JSON.stringify(exitInfo)}`);
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) }).catch(() => null);
      return res && res.status === 200;
    }, { timeoutMs: startTimeoutMs, intervalMs: 250, what: `prometheus ready at ${url}/-/ready`, describe: () => logTail(15) });
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, query, stop, logTail, logPath, get exitInfo() { return exitInfo; } };
}
