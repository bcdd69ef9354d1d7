// Room scenarios for ion-sdk-js participants, and the admin-API checks
// that go with them. The shapes of /api/v1/rooms are read through
// normalizeRooms() only, so a change of that endpoint touches one function.
import assert from 'node:assert/strict';
import { getSessions } from './sfud.mjs';
import { pollUntil, sleep } from './util.mjs';
import {
  loadIon, joinRoom, leaveRoom, roomStats, roomState, streamGone, liveRemoteIds, waitForRemoteFrames, framesOf,
} from './ion.mjs';

export const wsUrlOf = (httpUrl) => `${httpUrl.replace(/^http/, 'ws')}/ws`;

/**
 * GET /api/v1/rooms as [{ name, participants: [{ uid, tracks }] }].
 * Accepts a bare list or { rooms: [...] }, `name`|`id`|`sid`, and
 * `tracks` as a count or a list.
 */
export function normalizeRooms(body) {
  const list = Array.isArray(body) ? body : (body && Array.isArray(body.rooms) ? body.rooms : null);
  if (!list) throw new Error(`unexpected /api/v1/rooms body: ${JSON.stringify(body)}`);
  return list.map((r) => ({
    name: r.name ?? r.id ?? r.sid,
    participants: (r.participants || []).map((p) => ({
      uid: p.uid ?? p.id,
      tracks: Array.isArray(p.tracks) ? p.tracks.length : (p.tracks ?? 0),
    })),
  }));
}

export async function getRooms(url) {
  const res = await fetch(`${url}/api/v1/rooms`, { signal: AbortSignal.timeout(3000) });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`GET /api/v1/rooms: ${res.status} ${body}`);
  return normalizeRooms(JSON.parse(body));
}

/** Polls until `room` lists exactly `uids`, each with `tracks` tracks (if given). */
export async function expectRoom(t, url, room, { uids, tracks, timeoutMs = 5000 }) {
  let seen = null;
  await pollUntil(async () => {
    seen = await getRooms(url);
    const r = seen.find((x) => x.name === room);
    if (!r) return uids.length === 0;
    const have = r.participants.map((p) => p.uid).sort();
    if (JSON.stringify(have) !== JSON.stringify([...uids].sort())) return false;
    return tracks === undefined || r.participants.every((p) => p.tracks === tracks);
  }, {
    timeoutMs,
    signal: t.signal,
    what: `/api/v1/rooms: ${room} with ${JSON.stringify(uids)}${tracks === undefined ? '' : ` (${tracks} tracks each)`}`,
    describe: () => JSON.stringify(seen),
  });
}

/** Polls until the server lists no sessions and no rooms at all. */
export async function expectNothingLeft(t, url, { timeoutMs = 5000 } = {}) {
  let seen = null;
  await pollUntil(async () => {
    seen = { sessions: await getSessions(url), rooms: await getRooms(url) };
    return seen.sessions.length === 0 && seen.rooms.length === 0;
  }, {
    timeoutMs,
    signal: t.signal,
    what: '0 sessions in /api/v1/sessions and 0 rooms in /api/v1/rooms',
    describe: () => JSON.stringify(seen),
  });
}

/** Polls every page/key in `watchers` until `streamId`'s tracks are all removed or ended. */
async function waitGone(t, watchers, streamId, timeoutMs) {
  await Promise.all(watchers.map(({ page, key }) => {
    let st = null;
    return pollUntil(async () => {
      st = await roomState(page, key);
      return streamGone(st, streamId);
    }, {
      timeoutMs,
      intervalMs: 250,
      signal: t.signal,
      what: `${key}: the departed stream ${streamId} ends (removetrack on its MediaStream, or its tracks ended)`,
      describe: () => JSON.stringify(st),
    });
  }));
}

/** framesDecoded of `streamId` at `key` must not rise over `ms`. */
async function assertStopped(ctx, page, key, streamId, ms = 2000) {
  const before = (await roomStats(page, key))[streamId]?.video.framesDecoded ?? 0;
  await sleep(ms);
  const after = (await roomStats(page, key))[streamId]?.video.framesDecoded ?? 0;
  ctx.history.push({ t: Date.now(), key, phase: `departed ${streamId}`, before, after });
  assert.ok(after <= before, `${key}: video from departed stream ${streamId} still decoding (${before} -> ${after})`);
}

function assertSees(state, expected) {
  assert.deepEqual(liveRemoteIds(state), [...expected].sort(),
    `${state.key} (${state.uid}) should see exactly the others' stream ids (ontrack stream.id = publisher's LocalStream id): ${JSON.stringify(state.remotes)}`);
}

/**
 * The meeting scenario of issue 4 in `room`:
 *  a. three participants (one page each) join and publish fake camera+mic;
 *     each decodes >= 60 frames from both others within 20 s;
 *  b. the third leaves: its tracks end at the other two, who keep decoding;
 *  c. it rejoins with the same uid and is seen (and sees) again;
 * then everyone leaves and nothing is left on the server.
 */
export async function meeting(t, ctx, { room = 'meet1', frames = 60, mediaTimeoutMs = 20000 } = {}) {
  const wsUrl = wsUrlOf(ctx.server.url);
  const uids = ['alice', 'bob', 'carol'];
  const pages = {};
  for (const uid of uids) {
    pages[uid] = await ctx.browser.newPage(`${ctx.server.url}/`);
    await loadIon(pages[uid]);
  }
  ctx.dumpState = async () => Promise.all(Object.entries(pages).flatMap(([uid, page]) =>
    [uid, `${uid}#2`].map((k) => roomState(page, k).catch((e) => `${k}: ${e.message}`))));

  const streamOf = {};
  const join = async (uid, key = uid) => {
    const { streamId } = await joinRoom(pages[uid], key, { wsUrl, sid: room, uid, publish: { audio: true, video: true, resolution: 'qvga' } });
    streamOf[uid] = streamId;
  };
  const others = (uid, present) => present.filter((u) => u !== uid).map((u) => streamOf[u]);
  const keyOf = { alice: 'alice', bob: 'bob', carol: 'carol' };
  const decodeAll = (present, baselines = {}) => Promise.all(present.map((uid) =>
    waitForRemoteFrames(pages[uid], keyOf[uid], others(uid, present), {
      frames, baseline: baselines[uid] || {}, timeoutMs: mediaTimeoutMs, signal: t.signal, history: ctx.history,
    })));

  // a.
  for (const uid of uids) await join(uid);
  await decodeAll(uids);
  for (const uid of uids) assertSees(await roomState(pages[uid], keyOf[uid]), others(uid, uids));
  await expectRoom(t, ctx.server.url, room, { uids, tracks: 2 });

  // b.
  const departed = streamOf.carol;
  await leaveRoom(pages.carol, 'carol');
  const stay = ['alice', 'bob'];
  await waitGone(t, stay.map((uid) => ({ page: pages[uid], key: uid })), departed, 10000);
  await Promise.all(stay.map((uid) => assertStopped(ctx, pages[uid], uid, departed)));
  const base = {};
  for (const uid of stay) base[uid] = framesOf(await roomStats(pages[uid], uid));
  await Promise.all(stay.map((uid) => waitForRemoteFrames(pages[uid], uid, others(uid, stay), {
    frames: 30, baseline: base[uid], timeoutMs: 10000, signal: t.signal, history: ctx.history,
  })));
  for (const uid of stay) assertSees(await roomState(pages[uid], uid), others(uid, stay));
  await expectRoom(t, ctx.server.url, room, { uids: stay, tracks: 2 });

  // c. Same uid, new Client: what a page reload does.
  keyOf.carol = 'carol#2';
  for (const uid of stay) base[uid] = framesOf(await roomStats(pages[uid], uid));
  await join('carol', 'carol#2');
  assert.notEqual(streamOf.carol, departed);
  await decodeAll(uids, base);
  for (const uid of uids) assertSees(await roomState(pages[uid], keyOf[uid]), others(uid, uids));
  await expectRoom(t, ctx.server.url, room, { uids, tracks: 2 });

  for (const uid of uids) await leaveRoom(pages[uid], keyOf[uid]);
  await expectNothingLeft(t, ctx.server.url);
}

/**
 * `n` audio-only participants spread over `pagesCount` pages in `room`.
 * Round "mesh": all join at once, each must get ontrack for all others
 * and audio packets from them, then all leave at once.
 * Round "churn": all join at once and each leaves at a random moment in
 * the first 1.5 s after its join, mid-renegotiation. Both end with nothing
 * left on the server.
 */
export async function churn(t, ctx, { room = 'busy', n = 10, pagesCount = 2, rounds = ['mesh', 'churn'], timeoutMs = 20000 } = {}) {
  const wsUrl = wsUrlOf(ctx.server.url);
  const pages = [];
  for (let i = 0; i < pagesCount; i++) {
    pages.push(await ctx.browser.newPage(`${ctx.server.url}/`));
    await loadIon(pages[i]);
  }
  const who = Array.from({ length: n }, (_, i) => ({ uid: `u${i}`, page: pages[i % pagesCount] }));
  ctx.dumpState = async () => Promise.all(who.map(({ uid, page }) => roomState(page, uid).catch((e) => `${uid}: ${e.message}`)));

  for (const [round, mode] of rounds.entries()) {
    const streams = {};
    if (mode === 'mesh') {
      await Promise.all(who.map(async ({ uid, page }) => {
        streams[uid] = (await joinRoom(page, uid, { wsUrl, sid: room, uid, publish: { audio: true, video: false } })).streamId;
      }));
      await Promise.all(who.map(({ uid, page }) => {
        const want = who.filter((w) => w.uid !== uid).map((w) => streams[w.uid]);
        let seen = null;
        return pollUntil(async () => {
          const [st, stats] = await Promise.all([roomState(page, uid), roomStats(page, uid)]);
          const missing = who.filter((w) => w.uid !== uid && !(st && liveRemoteIds(st).includes(streams[w.uid]) && (stats[streams[w.uid]]?.audio.packetsReceived ?? 0) > 0));
          seen = { missing: missing.map((w) => `${w.uid} (${streams[w.uid]})`), stats, log: st && st.log };
          return missing.length === 0 && want.length === n - 1;
        }, {
          timeoutMs,
          intervalMs: 500,
          signal: t.signal,
          what: `round ${round} (${mode}): ${uid} receives audio from all ${n - 1} others`,
          describe: () => JSON.stringify(seen),
        });
      }));
      await expectRoom(t, ctx.server.url, room, { uids: who.map((w) => w.uid), tracks: 1 });
      await Promise.all(who.map(({ uid, page }) => leaveRoom(page, uid)));
    } else {
      await Promise.all(who.map(async ({ uid, page }) => {
        await joinRoom(page, uid, { wsUrl, sid: room, uid, publish: { audio: true, video: false } });
        await sleep(Math.floor(Math.random() * 1500));
        await leaveRoom(page, uid);
      }));
    }
    await expectNothingLeft(t, ctx.server.url, { timeoutMs: 5000 });
  }
}

/**
 * The demo page's meeting mode, with ion-sdk-js as sfud serves it
 * (/meeting.js, /ion-sdk.min.js, /json-rpc.min.js): two pages join `room`
 * through window.sfudMeeting and each shows the other's video playing;
 * one leaves and its tile goes from the other's grid.
 */
export async function demoPageMeeting(t, ctx, { room = 'demo-page', timeoutMs = 20000 } = {}) {
  const pages = [];
  for (const uid of ['pat', 'sam']) {
    const page = await ctx.browser.newPage(`${ctx.server.url}/?mode=meeting&room=${room}&name=${uid}`);
    await page.evaluate(({ room, uid }) => window.sfudMeeting.join(room, uid, { resolution: 'qvga' }).then(() => undefined), { room, uid });
    pages.push(page);
  }
  const tiles = (page) => page.evaluate(() => [...document.querySelectorAll('#meeting-grid figure')].map((f) => {
    const v = f.querySelector('video');
    return { self: f.classList.contains('self'), stream: f.dataset.stream, width: v.videoWidth, time: v.currentTime };
  }));
  for (const page of pages) {
    let seen = null;
    await pollUntil(async () => {
      seen = await tiles(page);
      return seen.length === 2 && seen.every((x) => x.width > 0 && x.time > 1);
    }, { timeoutMs, signal: t.signal, what: 'the meeting grid shows both participants playing', describe: () => JSON.stringify(seen) });
  }
  await pages[1].evaluate(() => window.sfudMeeting.leave());
  let seen = null;
  await pollUntil(async () => {
    seen = await tiles(pages[0]);
    return seen.length === 1 && seen[0].self;
  }, { timeoutMs: 10000, signal: t.signal, what: 'the departed participant\'s tile goes', describe: () => JSON.stringify(seen) });
  await pages[0].evaluate(() => window.sfudMeeting.leave());
  await expectNothingLeft(t, ctx.server.url);
}
