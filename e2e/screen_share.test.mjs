// Screen share first (issue 11): two ion-sdk-js publishers send simulcast
// video, alice her camera and bob a "screen" (the fake camera with
// contentHint 'detail', which makes Chromium encode it as a screen capture
// and mark it with the video-content-type extension). sfud learns the screen
// share from the media, shows it in the admin API and passes the marking on,
// so carol's Chromium reports contentType 'screenshare'. Then carol's link is
// policed below what both videos need: her stream allocator must serve the
// screen share first (a higher layer than the camera, or the camera paused)
// and keep it smooth. Once freed, both videos flow again. One sfud (2
// shards), one browser. Prints one JSON line of figures.
//   SFUD_BIN=target/release/sfud scripts/in-netns.sh node --test --test-concurrency=1 e2e/screen_share.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSfud } from './lib/sfud.mjs';
import { withHarness } from './lib/scenario.mjs';
import { requireNamespace, applyPolicer, removeLoss, droppedPackets } from './lib/loss.mjs';
import { pollUntil, sleep } from './lib/util.mjs';
import { loadIon, joinRoom, roomStats, remoteWidths, subscriberPort, waitForRemoteFrames, framesOf } from './lib/ion.mjs';
import { wsUrlOf } from './lib/rooms.mjs';

const ROOM = 'screens';
const POLICE_KBYTES = 20;
const PUBLISH = { audio: false, video: true, resolution: 'vga', simulcast: true };

async function participants(url) {
  const r = await fetch(`${url}/api/v1/rooms/${ROOM}/participants`, { signal: AbortSignal.timeout(3000) });
  assert.equal(r.status, 200);
  return r.json();
}

/** carol's view of one stream between two roomStats samples. */
function between(s0, s1, id, secs) {
  const a = s0[id].video;
  const b = s1[id].video;
  return { fps: (b.framesDecoded - a.framesDecoded) / secs, freezesSecs: b.freezesSecs - a.freezesSecs };
}

test('screen share: marked from the media, passed on, and served first on a constrained link', { timeout: 120000 }, async (t) => {
  requireNamespace();
  const wallStart = Date.now();
  const server = await startSfud({ name: 'screen-share', env: { SFUD_DATAPLANE__SHARDS: '2' } });
  await withHarness(t, { name: 'screen-share', server }, async (ctx) => {
    const pages = {};
    for (const k of ['alice', 'bob', 'carol']) {
      pages[k] = await ctx.browser.newPage(`${server.url}/`);
      await loadIon(pages[k]);
    }
    const wsUrl = wsUrlOf(server.url);
    const cam = (await joinRoom(pages.alice, 'alice', { wsUrl, sid: ROOM, uid: 'alice', publish: PUBLISH })).streamId;
    const screen = (await joinRoom(pages.bob, 'bob', { wsUrl, sid: ROOM, uid: 'bob', publish: { ...PUBLISH, contentHint: 'detail' } })).streamId;
    await joinRoom(pages.carol, 'carol', { wsUrl, sid: ROOM, uid: 'carol', publish: false });
    await waitForRemoteFrames(pages.carol, 'carol', [cam, screen], { frames: 30, timeoutMs: 20000, signal: t.signal, history: ctx.history });

    // Clean link: sfud marks bob's video (and only it) as a screen share,
    // and carol's decoder hears so.
    let people = null;
    await pollUntil(async () => {
      people = await participants(server.url);
      const video = (who) => people.find((p) => p.identity === who)?.tracks.find((tr) => tr.kind === 'video');
      return video('bob')?.screen === true && video('alice')?.screen === false;
    }, { timeoutMs: 10000, signal: t.signal, what: "the admin API marking bob's video (only) as a screen share", describe: () => JSON.stringify(people) });
    let st = null;
    await pollUntil(async () => {
      st = await roomStats(pages.carol, 'carol');
      return st[screen]?.video.contentType === 'screenshare';
    }, { timeoutMs: 10000, signal: t.signal, what: "carol's inbound-rtp contentType 'screenshare' for bob", describe: () => JSON.stringify(st) });
    const fig = { case: 'screen-share', cameraContentType: st[cam].video.contentType, policeKbytesPerSec: POLICE_KBYTES };

    // Constrained link: the screen share goes first.
    const port = await subscriberPort(pages.carol, 'carol');
    assert.ok(port, "carol's subscriber port");
    await applyPolicer(port, POLICE_KBYTES);
    try {
      await sleep(10000);
      const s0 = await roomStats(pages.carol, 'carol');
      const widths = { screen: [], cam: [] };
      for (let i = 0; i < 8; i++) {
        await sleep(1000);
        const w = await remoteWidths(pages.carol, 'carol');
        widths.screen.push(w[screen] || 0);
        widths.cam.push(w[cam] || 0);
      }
      const s1 = await roomStats(pages.carol, 'carol');
      Object.assign(fig, {
        screen: { ...between(s0, s1, screen, 8), widths: widths.screen },
        camera: { ...between(s0, s1, cam, 8), widths: widths.cam },
        droppedByPolicer: await droppedPackets(),
      });
    } finally {
      await removeLoss();
    }
    // Freed: both flow again.
    const lifted = Date.now();
    try {
      await waitForRemoteFrames(pages.carol, 'carol', [cam, screen], { frames: 30, baseline: framesOf(await roomStats(pages.carol, 'carol')), timeoutMs: 20000, signal: t.signal, history: ctx.history });
      fig.bothAgainSecs = (Date.now() - lifted) / 1000;
    } finally {
      fig.wallSecs = (Date.now() - wallStart) / 1000;
      console.log(JSON.stringify(fig));
    }
    const last = (a) => a[a.length - 1];
    const served = last(fig.screen.widths) > last(fig.camera.widths) || fig.camera.fps < 1;
    assert.ok(served, `the screen share gets a higher layer than the camera, or the camera pauses: ${JSON.stringify(fig)}`);
    // A paused camera keeps its last frame's width: compare only while it plays.
    const camPlays = fig.camera.fps >= 1;
    assert.ok(!camPlays || fig.screen.widths.every((w, i) => w >= fig.camera.widths[i]), `the camera never outranks the screen share: ${JSON.stringify(fig)}`);
    assert.ok(fig.screen.fps >= 10, `the screen share stays smooth (>= 10 fps): ${JSON.stringify(fig)}`);
    assert.ok(fig.screen.freezesSecs < 1, `the screen share freezes < 1 s: ${JSON.stringify(fig)}`);
  });
});
