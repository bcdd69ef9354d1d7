// Headless Firefox ESR (Debian's /usr/bin/firefox-esr) through puppeteer-core
// over WebDriver BiDi, with fake devices. Returns the same handle as
// launchBrowser() in browser.mjs ({ newPage, close, consoleTail }), and its
// pages take the same page.evaluate(fn, arg) calls, so the helpers there
// (publish, play, stats, waitForMedia) drive Firefox unchanged.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

export const FIREFOX = process.env.FIREFOX_BIN || '/usr/bin/firefox-esr';

export const FIREFOX_PREFS = {
  // Fake camera and microphone, no permission prompt.
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  // The test namespace has only loopback: let ICE use it, and show real
  // addresses instead of mDNS names.
  'media.peerconnection.ice.loopback': true,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'media.autoplay.default': 0,
  'media.autoplay.blocking_policy': 0,
  // Quiet, offline start-up.
  'app.update.enabled': false,
  'browser.shell.checkDefaultBrowser': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.reportingpolicy.firstRun': false,
};

export async function launchFirefox({ name = 'firefox' } = {}) {
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), `sfud-e2e-${name}-`));
  let browser;
  try {
    browser = await puppeteer.launch({
      browser: 'firefox',
      executablePath: FIREFOX,
      headless: true,
      userDataDir,
      extraPrefsFirefox: FIREFOX_PREFS,
      timeout: 30000,
      // Firefox refuses to start as root when HOME belongs to someone else.
      env: { ...process.env, HOME: userDataDir, MOZ_HEADLESS: '1' },
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
  let closed = false;
  return {
    browser,
    async newPage(url) {
      const page = await browser.newPage();
      const tag = () => { try { return new URL(page.url()).pathname; } catch { return '?'; } };
      page.on('console', (msg) => remember(`[ff ${tag()} ${msg.type()}] ${msg.text()}`));
      page.on('pageerror', (err) => remember(`[ff ${tag()} pageerror] ${err.message}`));
      await page.goto(url, { waitUntil: 'load', timeout: 15000 });
      return page;
    },
    consoleTail: (n = 40) => consoleLines.slice(-n).join('\n'),
    async close() {
      if (closed) return;
      closed = true;
      await browser.close().catch(() => {});
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
