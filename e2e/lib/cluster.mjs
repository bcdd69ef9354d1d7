// A three-node sfud cluster for e2e tests: a real redis-server and three
// sfud processes, each on its own loopback address (127.0.0.2/.3/.4) for
// HTTP, media and metrics, inside the test's network namespace. Nodes 1
// and 2 reach Redis over TLS, node 3 over plain TCP.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LOG_DIR, sfudBin } from './sfud.mjs';
import { killAllOnExit, pollUntil, sleep } from './util.mjs';

export const REDIS_PORT = 6379;
// The same redis-server also listens with TLS here: nodes 1 and 2 use it
// (rediss:// with a throwaway CA), node 3 plain TCP, so both paths run.
export const REDIS_TLS_PORT = 6380;
const TLS_NODES = 2;
export const NODE_IPS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
export const nodeUrl = (ip) => `http://${ip}:7880`;

function deathSignalled(cmd, args) {
  for (const setpriv of ['/usr/bin/setpriv', '/bin/setpriv']) {
    if (existsSync(setpriv)) return [setpriv, ['--pdeathsig', 'KILL', '--', cmd, ...args]];
  }
  return [cmd, args];
}

/** Spawns `cmd` in its own process group with output in LOG_DIR/name.log. */
function spawnLogged(name, cmd, args, env = {}) {
  mkdirSync(LOG_DIR, { recursive: true });
  const logPath = path.join(LOG_DIR, `${name}.log`);
  const fd = openSync(logPath, 'w');
  const [c, a] = deathSignalled(cmd, args);
  const child = spawn(c, a, { env: { RUST_LOG: 'info', ...process.env, ...env }, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  const unregister = killAllOnExit(child);
  const proc = { name, child, logPath, exit: null };
  proc.exited = new Promise((resolve) => child.on('exit', (code, signal) => { proc.exit = { code, signal }; unregister(); resolve(proc.exit); }));
  proc.logTail = (n = 40) => { try { return readFileSync(logPath, 'utf8').split('\n').slice(-n - 1).join('\n'); } catch (e) { return e.message; } };
  proc.kill = async (sig = 'SIGTERM') => {
    if (proc.exit) return proc.exit;
    try { process.kill(-child.pid, sig); } catch { /* gone */ }
    const done = await Promise.race([proc.exited, sleep(5000).then(() => null)]);
    if (done) return done;
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    return proc.exited;
  };
  return proc;
}

export function redisCli(...args) {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(REDIS_PORT), ...args], { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout.trim();
}

/** A CA and a server certificate for 127.0.0.1, made afresh once per test process with openssl. */
let tlsFiles = null;
function redisTls() {
  if (tlsFiles) return tlsFiles;
  const dir = path.join(LOG_DIR, 'redis-tls');
  const f = (n) => path.join(dir, n);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const run = (...args) => {
    const r = spawnSync('openssl', args, { encoding: 'utf8', timeout: 20000 });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=sfud e2e Redis CA');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(f('ext'), 'subjectAltName=IP:127.0.0.1\n');
  run('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '2', '-extfile', f('ext'));
  tlsFiles = { ca: f('ca.crt'), cert: f('server.crt'), key: f('server.key') };
  return tlsFiles;
}

/** Starts redis-server (no persistence: a restart starts empty, as after a failover to an empty replica). */
export async function startRedis(name = 'cluster-redis') {
  const tls = redisTls();
  const proc = spawnLogged(name, 'redis-server', [
    '--bind', '127.0.0.1', '--port', String(REDIS_PORT), '--save', '', '--appendonly', 'no',
    '--tls-port', String(REDIS_TLS_PORT), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key,
    '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no',
  ]);
  await pollUntil(() => { try { return redisCli('PING') === 'PONG'; } catch { return false; } }, { timeoutMs: 5000, what: 'redis-server answers PING' });
  return proc;
}

/** Starts the node on `ip` (node1 = 127.0.0.2, ...) and waits for /healthz. */
export async function startNode(i, { env = {}, ttlSecs = 3 } = {}) {
  const ip = NODE_IPS[i];
  const id = `node${i + 1}`;
  const proc = spawnLogged(`cluster-${id}`, sfudBin(), [], {
    SFUD_DATAPLANE__SHARDS: '1',
    SFUD_HTTP__LISTEN: `${ip}:7880`,
    SFUD_RTC__BIND_ADDRESS: ip,
    SFUD_RTC__INCLUDE_LOOPBACK: 'false',
    SFUD_METRICS__LISTEN: `${ip}:6789`,
    // The pages of one node call the others after a redirect.
    SFUD_HTTP__CORS_ALLOWED_ORIGINS: '["*"]',
    SFUD_ROOM__EMPTY_TIMEOUT_SECS: '0',
    SFUD_ROOM__PUBLISHER_GRACE_SECS: '0',
    SFUD_CLUSTER__ENABLED: 'true',
    SFUD_CLUSTER__NODE_ID: id,
    ...(i < TLS_NODES
      ? { SFUD_CLUSTER__REDIS_URL: `rediss://127.0.0.1:${REDIS_TLS_PORT}`, SFUD_CLUSTER__REDIS_CA_FILE: redisTls().ca }
      : { SFUD_CLUSTER__REDIS_URL: `redis://127.0.0.1:${REDIS_PORT}` }),
    SFUD_CLUSTER__TTL_SECS: String(ttlSecs),
    ...env,
  });
  Object.assign(proc, { id, ip, url: nodeUrl(ip) });
  await pollUntil(async () => {
    if (proc.exit) throw new Error(`${id} exited: ${JSON.stringify(proc.exit)}\n${proc.logTail()}`);
    try { return (await fetch(`${proc.url}/healthz`, { signal: AbortSignal.timeout(1000) })).status === 200; } catch { return false; }
  }, { timeoutMs: 20000, intervalMs: 100, what: `${id} /healthz` });
  return proc;
}

export async function clusterView(url, ns) {
  const u = new URL('/api/v1/cluster', url);
  if (ns) u.searchParams.set('ns', ns);
  const res = await fetch(u, { signal: AbortSignal.timeout(3000) });
  if (res.status !== 200) throw new Error(`GET ${u}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** Waits until `url`'s view of the registry lists exactly `ids`, with Redis up. */
export async function waitForNodes(url, ids, { timeoutMs = 10000, signal } = {}) {
  let seen = null;
  return pollUntil(async () => {
    seen = await clusterView(url);
    const got = seen.nodes.map((n) => n.id).sort();
    return seen.redis_up && JSON.stringify(got) === JSON.stringify([...ids].sort()) ? seen : null;
  }, { timeoutMs, signal, what: `${url} sees nodes ${ids.join(',')}`, describe: () => JSON.stringify(seen) });
}

// A minimal SDP offer: placement happens before the offer is read, so a
// redirect (307) is decided whatever the body is.
export const PROBE_SDP = 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n';

/** POSTs to `url` without following redirects; returns { status, location, body }. */
export async function probe(url) {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: PROBE_SDP, redirect: 'manual', signal: AbortSignal.timeout(5000) });
  return { status: res.status, location: res.headers.get('location'), body: await res.text() };
}
