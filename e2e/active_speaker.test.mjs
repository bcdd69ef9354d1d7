// Active speaker detection (issue 11): three ion-sdk-js participants in
// headless Chromium, one talking (espeak-ng speech as its fake microphone),
// two silent (a silent WAV, or Chromium's fake device would beep). The
// talker's stream must be named by `audioLevels` (ion-sdk-js `onspeaker`)
// at every participant within 2 s of its audio reaching sfud, the admin
// room view must show it, and the same must hold under 5% random loss on
// the media port. One sfud (2 shards) and two browsers serve both phases.
// Needs root in a private network namespace (for nft):
//   SFUD_BIN=target/release/sfud scripts/in-netns.sh node --test --test-concurrency=1 e2e/active_speaker.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSfud } from './lib/sfud.mjs';
import { withHarness } from './lib/scenario.mjs';
import { launchBrowser } from './lib/browser.mjs';
import { loadIon, joinRoom, leaveRoom, roomState, audioSent } from './lib/ion.mjs';
import { wsUrlOf } from './lib/rooms.mjs';
import { requireNamespace, withLoss, droppedPackets } from './lib/loss.mjs';
import { pollUntil } from './lib/util.mjs';

const NAMED_WITHIN_MS = 2000;
const CASE_TIMEOUT_MS = 90000;
const ROOM = 'speakers';

/** A 16-bit mono PCM WAV of `seconds` of silence (Chromium's fake mic format). */
function silentWav(file, seconds = 2, rate = 48000) {
  const data = Buffer.alloc(seconds * rate * 2);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + data.length, 4); h.write('WAVE', 8);
  h.write('fmt ', 12); h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22);
  h.writeUInt32LE(rate, 24); h.writeUInt32LE(rate * 2, 28); h.writeUInt16LE(2, 32); h.writeUInt16LE(16, 34);
  h.write('data', 36); h.writeUInt32LE(data.length, 40);
  writeFileSync(file, Buffer.concat([h, data]));
}

/** Continuous speech (espeak-ng writes 16-bit mono PCM WAV); Chromium loops it. */
function speechWav(file) {
  const text = 'The quick brown fox jumps over the lazy dog, again and again, without any pause at all. '.repeat(3);
  execFileSync('espeak-ng', ['-s', '170', '-g', '0', '-w', file, text], { stdio: ['ignore', 'ignore', 'pipe'] });
}

const fakeMic = (file) => [`--use-file-for-fake-audio-capture=${file}`];

/** GET /api/v1/rooms, the room named ROOM. */
async function adminRoom(url) {
  const res = await fetch(`${url}/api/v1/rooms`, { signal: AbortSignal.timeout(3000) });
  assert.equal(res.status, 200);
  return (await res.json()).find((r) => r.name === ROOM);
}

/** When `key` first sent audio (its publisher's packetsSent, polled every 50 ms). */
async function firstAudioSent(t, page, key) {
  return pollUntil(async () => ((await audioSent(page, key)) > 0 ? Date.now() : null),
    { timeoutMs: 10000, intervalMs: 50, signal: t.signal, what: `${key} sends audio` });
}

/** Waits until every listener's onspeaker named `streamId` first; returns ms after `since` per listener. */
async function namedBy(t, listeners, streamId, since) {
  const out = {};
  await Promise.all(listeners.map(async ({ page, key }) => {
    let st = null;
    const ev = await pollUntil(async () => {
      st = await roomState(page, key);
      return st.speakers.find((e) => e.t >= since - 50 && Array.isArray(e.list) && e.list[0] === streamId);
    }, {
      timeoutMs: NAMED_WITHIN_MS + 8000,
      intervalMs: 100,
      signal: t.signal,
      what: `${key}: audioLevels naming ${streamId} first`,
      describe: () => JSON.stringify(st && { speakers: st.speakers, log: st.log }),
    });
    out[key] = ev.t - since;
  }));
  return out;
}

test('the talker is named by audioLevels within 2 s, and in the admin room view; also at 5% loss', { timeout: CASE_TIMEOUT_MS }, async (t) => {
  requireNamespace();
  const started = Date.now();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sfud-e2e-speaker-'));
  const speech = path.join(dir, 'speech.wav');
  const silence = path.join(dir, 'silence.wav');
  speechWav(speech);
  silentWav(silence);
  const name = 'active-speaker';
  const server = await startSfud({ name, env: { SFUD_DATAPLANE__SHARDS: '2', SFUD_ROOM__EMPTY_TIMEOUT_SECS: '0' } });
  let talkerBrowser = null;
  try {
    await withHarness(t, { name, server, browserArgs: fakeMic(silence) }, async (ctx) => {
      const wsUrl = wsUrlOf(server.url);
      // Both silent participants share one page of the silent browser.
      const quietPage = await ctx.browser.newPage(`${server.url}/`);
      await loadIon(quietPage);
      talkerBrowser = await launchBrowser({ name: `${name}-talker`, extraArgs: fakeMic(speech) });
      const talkerPage = await talkerBrowser.newPage(`${server.url}/`);
      await loadIon(talkerPage);
      const publish = { audio: true, video: false };
      const quiet = {};
      for (const uid of ['quiet1', 'quiet2']) {
        quiet[uid] = (await joinRoom(quietPage, uid, { wsUrl, sid: ROOM, uid, publish })).streamId;
      }
      const listeners = [{ page: quietPage, key: 'quiet1' }, { page: quietPage, key: 'quiet2' }];

      const phase = async (label, key) => {
        const publishedAt = Date.now();
        const { streamId } = await joinRoom(talkerPage, key, { wsUrl, sid: ROOM, uid: 'talker', publish });
        const sendingAt = await firstAudioSent(t, talkerPage, key);
        const named = await namedBy(t, [...listeners, { page: talkerPage, key }], streamId, sendingAt);
        const line = JSON.stringify({ case: label, ms_after_first_audio: named, join_to_audio_ms: sendingAt - publishedAt });
        console.log(line);
        for (const [who, ms] of Object.entries(named)) {
          assert.ok(ms <= NAMED_WITHIN_MS, `${label}: ${who} heard the talker named ${ms} ms after its first audio (want <= ${NAMED_WITHIN_MS}): ${line}`);
        }
        // The silent ones are never speakers.
        for (const { page, key: k } of listeners) {
          const st = await roomState(page, k);
          const wrong = st.speakers.filter((e) => e.list.some((s) => Object.values(quiet).includes(s)));
          assert.deepEqual(wrong, [], `${label}: ${k} heard a silent participant named`);
        }
        let room = null;
        await pollUntil(async () => {
          room = await adminRoom(server.url);
          return room && room.dominant_speaker === streamId;
        }, { timeoutMs: 3000, signal: t.signal, what: `${label}: /api/v1/rooms dominant_speaker ${streamId}`, describe: () => JSON.stringify(room) });
        const levels = Object.fromEntries(room.audio_levels.map((l) => [l.stream_id, l]));
        assert.equal(levels[streamId].speaking, true, JSON.stringify(room.audio_levels));
        assert.equal(levels[streamId].participant, 'talker');
        assert.ok(levels[streamId].level_dbov > -40, `talker's mean level ${levels[streamId].level_dbov} dBov`);
        for (const s of Object.values(quiet)) {
          assert.equal(levels[s]?.speaking, false, `silent ${s}: ${JSON.stringify(levels[s])}`);
          assert.ok(levels[s].level_dbov <= -100, `silent ${s} mean level ${levels[s].level_dbov} dBov`);
        }
        assert.deepEqual(room.speakers, [streamId]);
        return streamId;
      };

      const talker = await phase('clean', 'talker');
      // A participant joining while the talker talks (the list does not
      // change) hears it as soon as its ion-sfu channel opens.
      const lateAt = Date.now();
      await joinRoom(quietPage, 'late', { wsUrl, sid: ROOM, uid: 'late', publish: false });
      const late = await namedBy(t, [{ page: quietPage, key: 'late' }], talker, lateAt);
      console.log(JSON.stringify({ case: 'late joiner', ms_after_join: late.late }));
      assert.ok(late.late <= NAMED_WITHIN_MS, `late joiner named the talker ${late.late} ms after joining`);
      await leaveRoom(quietPage, 'late');
      // The talker leaves: the speakers list empties, and everyone hears it.
      const leftAt = Date.now();
      await leaveRoom(talkerPage, 'talker');
      await Promise.all(listeners.map(({ page, key }) => pollUntil(async () => {
        const st = await roomState(page, key);
        return st.speakers.some((e) => e.t >= leftAt && e.list.length === 0);
      }, { timeoutMs: 5000, intervalMs: 100, signal: t.signal, what: `${key}: an empty audioLevels after the talker left` })));

      await withLoss(5, {}, async () => {
        await phase('loss 5%', 'talker#2');
        const dropped = await droppedPackets();
        assert.ok(dropped > 0, 'the loss rules dropped nothing');
      });
    });
  } finally {
    if (talkerBrowser) await talkerBrowser.close();
    rmSync(dir, { recursive: true, force: true });
    console.log(JSON.stringify({ case: 'active-speaker', wall_secs: Math.round((Date.now() - started) / 100) / 10 }));
  }
});
