// SIGHUP re-reads the config file: auth keys change live, and a config that
// fails (validation or log-filter parsing) changes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSfud } from './lib/sfud.mjs';
import { sleep } from './lib/util.mjs';

async function whipStatus(url) {
  const res = await fetch(`${url}/whip/reload-room`, {
    method: 'POST', headers: { 'content-type': 'application/sdp' }, body: 'v=0', signal: AbortSignal.timeout(5000),
  });
  await res.text();
  return res.status;
}

test('SIGHUP reloads auth keys live and refuses a broken config whole', { timeout: 60000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sfud-reload-'));
  const cfg = path.join(dir, 'sfud.toml');
  writeFileSync(cfg, '[log]\nlevel = "info"\n');
  const server = await startSfud({ name: 'reload', args: ['--config', cfg] });
  try {
    // Open mode: the request gets past auth and fails on the SDP (400).
    assert.equal(await whipStatus(server.url), 400);
    writeFileSync(cfg, '[log]\nlevel = "info"\n[auth.keys]\ndevkey = "0123456789abcdef0123456789abcdef"\n');
    process.kill(server.pid, 'SIGHUP');
    await sleep(700);
    assert.equal(await whipStatus(server.url), 401, 'keys from the reloaded file apply');
    // Plausible to validation, refused by the log-filter parser: nothing changes.
    writeFileSync(cfg, '[log]\nlevel = "nonsense=[[["\n');
    process.kill(server.pid, 'SIGHUP');
    await sleep(700);
    assert.equal(await whipStatus(server.url), 401, 'a refused reload keeps the keys');
    // Invalid TOML: refused too.
    writeFileSync(cfg, '[log\n');
    process.kill(server.pid, 'SIGHUP');
    await sleep(700);
    assert.equal(await whipStatus(server.url), 401);
    assert.match(server.logTail(200), /reload refused/);
    assert.equal(server.exitInfo, null, 'still running');
  } catch (e) {
    console.error(server.logTail(60));
    throw e;
  } finally {
    await server.stop();
  }
});
