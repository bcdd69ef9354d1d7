// Starts and stops an sfud process for one test, with its output in a log
// file so a failure can show what the server said.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { killAllOnExit, sleep, pollUntil } from './util.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SFUD_URL = 'http://127.0.0.1:7880';
export const LOG_DIR = process.env.SFUD_E2E_LOG_DIR || path.join(REPO, 'target', 'e2e-logs');

export function sfudBin() {
  return process.env.SFUD_BIN || path.join(REPO, 'target', 'release', 'sfud');
}

// setpriv --pdeathsig makes the kernel kill sfud if this node process dies
// without running its exit hooks (SIGKILL, OOM), so no server outlives a run.
function wrapWithDeathSignal(cmd, args) {
  for (const setpriv of ['/usr/bin/setpriv', '/bin/setpriv']) {
    if (existsSync(setpriv)) return [setpriv, ['--pdeathsig', 'KILL', '--', cmd, ...args]];
  }
  return [cmd, args];
}

async function healthy(url) {
  try {
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * Spawns sfud with `env` added to the environment and waits for /healthz.
 * Returns { url, logPath, pid, stop(), logTail(n), sessions(), exited }.
 */
export async function startSfud({ name = 'sfud', env = {}, args = [], startTimeoutMs = 20000 } = {}) {
  const bin = sfudBin();
  if (!existsSync(bin)) throw new Error(`sfud binary not found at ${bin} (set SFUD_BIN)`);
  // A server from a test the runner timed out may still be shutting down;
  // give it a moment, since it would answer our health check.
  for (let i = 0; await healthy(SFUD_URL); i++) {
    if (i >= 40) throw new Error(`something already answers on ${SFUD_URL}`);
    await sleep(250);
  }

  mkdirSync(LOG_DIR, { recursive: true });
  const logPath = path.join(LOG_DIR, `${name.replace(/[^\w.-]+/g, '_')}.log`);
  const fd = openSync(logPath, 'w');
  const [cmd, argv] = wrapWithDeathSignal(bin, args);
  const child = spawn(cmd, argv, {
    env: { RUST_LOG: 'info', RUST_BACKTRACE: '1', ...process.env, ...env },
    stdio: ['ignore', fd, fd],
    detached: true, // own process group: stop() kills anything sfud started too
  });
  closeSync(fd);
  const unregister = killAllOnExit(child);

  let exitInfo = null;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      unregister();
      resolve(exitInfo);
    });
    child.on('error', (err) => {
      exitInfo = { code: null, signal: null, error: err };
      unregister();
      resolve(exitInfo);
    });
  });

  const logTail = (lines = 60) => {
    try {
      const text = readFileSync(logPath, 'utf8').split('\n');
      return text.slice(-lines - 1).join('\n');
    } catch (e) {
      return `(no log: ${e.message})`;
    }
  };

  const stop = async () => {
    if (exitInfo) return exitInfo;
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
    const graceful = await Promise.race([exited, sleep(5000).then(() => null)]);
    if (graceful) return graceful;
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
    return exited;
  };

  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (exitInfo) {
      throw new Error(`sfud exited during start-up (${JSON.stringify(exitInfo)}); log ${logPath}:\n${logTail()}`);
    }
    if (await healthy(SFUD_URL)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`sfud did not answer /healthz within ${startTimeoutMs} ms; log ${logPath}:\n${logTail()}`);
    }
    await sleep(100);
  }

  return {
    url: SFUD_URL,
    pid: child.pid,
    logPath,
    logTail,
    stop,
    exited,
    get exitInfo() { return exitInfo; },
    sessions: () => getSessions(SFUD_URL),
  };
}

export async function getSessions(url = SFUD_URL) {
  const res = await fetch(`${url}/api/v1/sessions`, { signal: AbortSignal.timeout(3000) });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`GET /api/v1/sessions: ${res.status} ${body}`);
  return JSON.parse(body);
}

// The session list shows a public prefix of each WHIP/WHEP resource id (the
// full id is a capability), so a client's session is the one its id starts with.
export function sessionOf(sessions, resourceId) {
  return sessions.find((s) => resourceId.startsWith(s.id));
}

// Waits until the publisher and the viewer sessions are claimed by the shards
// they were pinned to; returns [publisher, viewer] as the API lists them.
export async function waitForShards(t, url, { pub, sub }, { pubShard = 0, subShard = 1, timeoutMs = 3000 } = {}) {
  let sessions = [];
  await pollUntil(async () => {
    sessions = await getSessions(url);
    const p = sessionOf(sessions, pub.id);
    const v = sessionOf(sessions, sub.id);
    return p && v && p.shard === pubShard && v.shard === subShard;
  }, {
    timeoutMs,
    signal: t.signal,
    what: `publisher ${pub.id} on shard ${pubShard} and viewer ${sub.id} on shard ${subShard}`,
    describe: () => JSON.stringify(sessions),
  });
  return [sessionOf(sessions, pub.id), sessionOf(sessions, sub.id)];
}
