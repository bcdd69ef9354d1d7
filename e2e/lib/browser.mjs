// Headless Chromium (Debian's /usr/bin/chromium) through playwright-core,
// with a fake camera and microphone, and page helpers that drive window.sfud.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { pollUntil } from './util.mjs';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

// From /work/shared/recipes.md: loopback candidates need
// --allow-loopback-in-peer-connection, and mDNS hiding must be off so the
// candidates carry 127.0.0.1.
export const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
  '--no-first-run', '--no-default-browser-check', '--disable-default-apps', '--disable-domain-reliability',
  '--disable-client-side-phishing-detection', '--disable-breakpad',
  // Several pages decode at once in a test; keep hidden ones running at full rate.
  '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows', '--autoplay-policy=no-user-gesture-required',
];

/**
 * Launches a browser with a fresh user-data-dir (and `extraArgs` after
 * CHROMIUM_ARGS, e.g. a file for the fake microphone). Returns
 * { context, newPage(url), close(), consoleTail(n) }.
 */
export async function launchBrowser({ name = 'browser', extraArgs = [] } = {}) {
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), `sfud-e2e-${name}-`));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      ignoreDefaultArgs: ['--headless'],
      args: [...CHROMIUM_ARGS, ...extraArgs],
      headless: true,
      timeout: 30000,
    });
  } catch (e) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw e;
  }
  const consoleLines = [];
  const remember = (line) => {
    consoleLines.push(line);
    if (consoleLines.length > 500) consoleLines.shift();
  };
  context.on('page', (page) => watchPage(page, remember));
  for (const page of context.pages()) watchPage(page, remember);

  let closed = false;
  return {
    context,
    async newPage(url) {
      const page = await context.newPage();
      await page.goto(url, { waitUntil: 'load', timeout: 15000 });
      return page;
    },
    consoleTail: (n = 40) => consoleLines.slice(-n).join('\n'),
    async close() {
      if (closed) return;
      closed = true;
      await context.close().catch(() => {});
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

function watchPage(page, remember) {
  const tag = () => { try { return new URL(page.url()).pathname; } catch { return '?'; } };
  page.on('console', (msg) => remember(`[${tag()} ${msg.type()}] ${msg.text()}`));
  page.on('pageerror', (err) => remember(`[${tag()} pageerror] ${err.message}`));
}

// The handles window.sfud returns hold an RTCPeerConnection, which cannot
// cross into node; the page keeps them in window.__e2e under a string key.

export async function publish(page, key, room, opts = {}) {
  return page.evaluate(async ({ key, room, opts }) => {
    const h = await window.sfud.publish(room, opts);
    (window.__e2e ||= {})[key] = h;
    return { id: h.id, location: h.location };
  }, { key, room, opts });
}

export async function play(page, key, room, opts = {}) {
  return page.evaluate(async ({ key, room, opts }) => {
    const h = await window.sfud.play(room, opts);
    (window.__e2e ||= {})[key] = h;
    return { id: h.id, location: h.location };
  }, { key, room, opts });
}

export async function stop(page, key) {
  return page.evaluate(async (key) => {
    const h = window.__e2e && window.__e2e[key];
    if (!h) throw new Error(`no handle ${key}`);
    delete window.__e2e[key];
    await window.sfud.stop(h);
  }, key);
}

export async function stats(page, key) {
  return page.evaluate(async (key) => {
    const h = window.__e2e && window.__e2e[key];
    if (!h) throw new Error(`no handle ${key}`);
    const s = await window.sfud.stats(h.pc);
    s.connectionState = h.pc.connectionState;
    return s;
  }, key);
}

/**
 * Polls stats of handle `key` until video framesDecoded >= `frames` and
 * audio packetsReceived > 0. `history` (an array) collects what was seen.
 */
export async function waitForMedia(page, key, { frames = 90, timeoutMs = 15000, signal, history = [] } = {}) {
  return pollUntil(async () => {
    const s = await stats(page, key);
    history.push({ t: Date.now(), key, ...s });
    return s.video.framesDecoded >= frames && s.audio.packetsReceived > 0 ? s : null;
  }, {
    timeoutMs,
    intervalMs: 500,
    signal,
    what: `${key}: video framesDecoded >= ${frames} and audio packetsReceived > 0`,
    describe: () => JSON.stringify(history.filter((h) => h.key === key).slice(-1)[0] ?? null),
  });
}
