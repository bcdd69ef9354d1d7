// Checks the test harness itself, without sfud: Chromium starts, the demo
// page loads from 127.0.0.1, the fake camera works, and window.sfud.stats()
// counts frames on an RTCPeerConnection pair looped back inside one page.
// When this fails, the sfud tests failing says nothing about the server.
// SFUD_E2E_SKIP_SELFTEST=1 skips these (about 35 s).
import { test as nodeTest } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, play } from './lib/browser.mjs';
import { startMockSfud } from './lib/mock-sfud.mjs';
import { withHarness, publishWatchStop, manyViewers } from './lib/scenario.mjs';
import { serveStatic } from './lib/static-server.mjs';
import { pollUntil, sleep } from './lib/util.mjs';

const skip = process.env.SFUD_E2E_SKIP_SELFTEST ? 'SFUD_E2E_SKIP_SELFTEST is set' : false;
const test = (name, opts, fn) => nodeTest(name, { skip, ...opts }, fn);

test('demo page, fake camera and stats() work in this browser', { timeout: 60000 }, async (t) => {
  const server = await serveStatic();
  t.after(() => server.close());
  const browser = await launchBrowser({ name: 'selftest' });
  t.after(() => browser.close());
  const history = [];
  try {
    const page = await browser.newPage(`${server.url}/`);
    assert.equal(await page.title(), 'sfud demo');
    assert.deepEqual(
      await page.evaluate(() => Object.keys(window.sfud).sort()),
      ['play', 'publish', 'stats', 'stop'],
    );

    const tracks = await page.evaluate(async () => {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      const pub = new RTCPeerConnection();
      const sub = new RTCPeerConnection();
      pub.onicecandidate = (e) => e.candidate && sub.addIceCandidate(e.candidate);
      sub.onicecandidate = (e) => e.candidate && pub.addIceCandidate(e.candidate);
      for (const track of [...stream.getAudioTracks(), ...stream.getVideoTracks()]) {
        pub.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      }
      const video = document.createElement('video');
      video.muted = true;
      video.autoplay = true;
      document.body.appendChild(video);
      const remote = new MediaStream();
      video.srcObject = remote;
      sub.ontrack = (e) => { remote.addTrack(e.track); video.play().catch(() => {}); };
      await pub.setLocalDescription(await pub.createOffer());
      await sub.setRemoteDescription(pub.localDescription);
      await sub.setLocalDescription(await sub.createAnswer());
      await pub.setRemoteDescription(sub.localDescription);
      window.__loop = { pub, sub };
      return stream.getTracks().map((tr) => `${tr.kind}:${tr.readyState}`).sort();
    });
    assert.deepEqual(tracks, ['audio:live', 'video:live']);

    const final = await pollUntil(async () => {
      const s = await page.evaluate(async () => ({
        ...(await window.sfud.stats(window.__loop.sub)),
        candidates: [...(await window.__loop.sub.getStats()).values()]
          .filter((r) => r.type === 'local-candidate').map((r) => r.address ?? r.ip),
      }));
      history.push(s);
      return s.video.framesDecoded >= 90 && s.audio.packetsReceived > 0 ? s : null;
    }, { timeoutMs: 20000, intervalMs: 500, signal: t.signal, what: 'loopback frames' });
    assert.ok(final.video.packetsReceived > 0);
    assert.ok(final.video.bytesReceived > 0);
    t.diagnostic(`loopback: ${JSON.stringify(final)}`);
  } catch (e) {
    console.error('stats seen:', JSON.stringify(history.slice(-5), null, 1));
    console.error('browser console:\n' + browser.consoleTail());
    throw e;
  }
});

// The same scenarios as whip_whep.test.mjs, against an in-browser stand-in
// for sfud's API (lib/mock-sfud.mjs): checks app.js's WHIP/WHEP client
// (Location handling, 409 retry, DELETE, error display) and the helpers.
test('window.sfud WHIP/WHEP client against a mock server', { timeout: 90000 }, async (t) => {
  await withHarness(t, { name: 'selftest-mock' }, async (ctx) => {
    ctx.server = await startMockSfud(ctx.browser);

    // A viewer that comes first waits through 409s until the publisher is up.
    const early = await ctx.browser.newPage(`${ctx.server.url}/`);
    const waiting = play(early, 'early', 'room0', { timeoutMs: 10000 });
    await sleep(1500);
    const { pub } = await publishWatchStop(t, ctx, { room: 'room0' });
    const handle = await waiting;
    assert.match(handle.location, /^http:\/\/127\.0\.0\.1:\d+\/whep\/room0\/s\d+$/);
    assert.ok(pub.id && pub.location.endsWith(`/whip/room0/${pub.id}`));
    const sessions = await (await fetch(`${ctx.server.url}/api/v1/sessions`)).json();
    assert.ok(!sessions.some((s) => s.kind === 'whip'), JSON.stringify(sessions));
    assert.match(ctx.server.logTail(), /POST \/whep\/room0 -> 409/);

    // 4xx: the error carries the server's text, and the page shows it.
    const err = await early.evaluate(() => window.sfud.publish('forbidden').then(() => null, (e) => e.message));
    assert.match(err, /403.*room forbidden by test/);
    const timeout = await early.evaluate(() =>
      window.sfud.play('empty', { timeoutMs: 1000 }).then(() => null, (e) => e.message));
    assert.match(timeout, /409.*no publisher/);
    await early.fill('#room', 'forbidden');
    await early.click('#publish');
    await pollUntil(async () => /403.*room forbidden by test/.test(await early.textContent('#status')),
      { timeoutMs: 5000, what: 'error on the status line' });
    assert.ok(await early.$eval('#status', (el) => el.classList.contains('error')));
  });
});

test('5 viewers against the mock server', { timeout: 90000 }, async (t) => {
  await withHarness(t, { name: 'selftest-mock5' }, async (ctx) => {
    ctx.server = await startMockSfud(ctx.browser);
    await manyViewers(t, ctx, { room: 'room5', viewers: 5 });
  });
});

test('the demo page buttons publish and watch', { timeout: 60000 }, async (t) => {
  await withHarness(t, { name: 'selftest-ui' }, async (ctx) => {
    ctx.server = await startMockSfud(ctx.browser);
    const page = await ctx.browser.newPage(`${ctx.server.url}/?room=ui`);
    await page.click('#watch');
    await sleep(500);
    assert.match(await page.textContent('#status'), /waiting for a publisher in "ui"/);
    await page.click('#publish');
    await pollUntil(async () => /(\d+) frames decoded/.exec(await page.textContent('#stats'))?.[1] >= 30,
      { timeoutMs: 15000, what: 'stats line showing frames', describe: () => page.textContent('#stats') });
    if (process.env.SFUD_E2E_SCREENSHOT) await page.screenshot({ path: process.env.SFUD_E2E_SCREENSHOT });
    await page.click('#publish');
    await pollUntil(async () => (await page.textContent('#status')) === 'stopped publishing',
      { timeoutMs: 5000, what: 'stopped publishing' });
  });
});
