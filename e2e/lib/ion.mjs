// Drives the real ion-sdk-js (from node_modules) inside Chromium pages.
// Each page can hold several participants; a participant is one
// IonSFUJSONRPCSignal + one Client, kept in window.__rooms under a string key
// because PeerConnections cannot cross into node.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pollUntil, sleep } from './util.mjs';

const require = createRequire(import.meta.url);
export const ION_DIST = path.join(path.dirname(require.resolve('ion-sdk-js/package.json')), 'dist');
// ion-sdk.min.js defines window.IonSDK {Client, LocalStream};
// json-rpc.min.js defines window.Signal {IonSFUJSONRPCSignal}.
export const ION_BUNDLES = ['ion-sdk.min.js', 'json-rpc.min.js'];

let bundleText = null;
function bundles() {
  bundleText ||= ION_BUNDLES.map((f) => readFileSync(path.join(ION_DIST, f), 'utf8'));
  return bundleText;
}

/** Injects ion-sdk-js and the participant helpers into `page`. */
export async function loadIon(page) {
  for (const content of bundles()) await page.addScriptTag({ content });
  await page.evaluate(installRoomsHelpers);
}

// Runs in the page.
function installRoomsHelpers() {
  if (window.__rooms) return;
  const parts = new Map();
  const sinks = document.body.appendChild(document.createElement('div'));
  sinks.id = 'e2e-sinks';

  const errText = (e) => (e instanceof Error ? e.message : JSON.stringify(e));
  const withTimeout = (p, ms, what) => {
    let timer;
    const expire = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
    });
    return Promise.race([p, expire]).finally(() => clearTimeout(timer));
  };

  function onTrack(p, track, stream) {
    p.log(`ontrack ${track.kind} ${track.id} stream=${stream && stream.id}`);
    if (!stream) return; // ion-sdk-js itself would have thrown in makeRemote
    let r = p.remotes.get(stream.id);
    if (!r) {
      r = { streamId: stream.id, stream, tracks: new Map(), firstSeen: Date.now(), sink: null };
      p.remotes.set(stream.id, r);
      // What ion-sdk-js apps watch to drop a tile: the RemoteStream loses its tracks.
      stream.addEventListener('removetrack', (ev) => {
        const t = r.tracks.get(ev.track.id);
        if (t) t.removed = true;
        p.log(`removetrack ${ev.track.kind} ${ev.track.id} stream=${stream.id}`);
      });
      // A sink per stream, so Chromium pulls and decodes both kinds.
      const v = document.createElement('video');
      Object.assign(v, { muted: true, autoplay: true, playsInline: true, width: 96, height: 72 });
      v.srcObject = stream;
      sinks.appendChild(v);
      v.play().catch(() => {});
      r.sink = v;
    }
    const t = { id: track.id, kind: track.kind, ended: false, removed: false, mutes: 0, track };
    r.tracks.set(track.id, t);
    p.trackToStream.set(track.id, stream.id);
    track.addEventListener('ended', () => { t.ended = true; p.log(`ended ${track.kind} ${track.id}`); });
    track.addEventListener('mute', () => { t.mutes += 1; });
  }

  async function join(key, { wsUrl, sid, uid, publish = { audio: true, video: true, resolution: 'qvga' }, timeoutMs = 15000 }) {
    if (parts.has(key)) throw new Error(`participant ${key} already exists`);
    const p = {
      key, sid, uid, remotes: new Map(), trackToStream: new Map(), lines: [], local: null, client: null, signal: null, speakers: [],
      log(line) { this.lines.push(`${new Date().toISOString().slice(11, 23)} ${line}`); if (this.lines.length > 200) this.lines.shift(); },
    };
    parts.set(key, p);
    try {
      p.signal = new window.Signal.IonSFUJSONRPCSignal(wsUrl);
      await withTimeout(new Promise((resolve, reject) => {
        p.signal.onerror = () => reject(new Error(`websocket error on ${wsUrl}`));
        p.signal.onclose = (e) => reject(new Error(`websocket closed (${e.code}) before open`));
        p.signal.onopen = resolve;
      }), 5000, `websocket ${wsUrl} open`);
      p.signal.onerror = () => p.log('websocket error');
      p.signal.onclose = (e) => p.log(`websocket closed code=${e.code} reason=${e.reason}`);
      // No STUN: the test runs on loopback only.
      p.client = new window.IonSDK.Client(p.signal, { codec: 'vp8', iceServers: [] });
      p.client.onerrnegotiate = (role, err) => p.log(`negotiation error role=${role}: ${errText(err)}`);
      p.client.ontrack = (track, stream) => onTrack(p, track, stream);
      // ion-sfu's audioLevels on the data channel: stream ids, loudest first.
      p.client.onspeaker = (list) => {
        p.speakers.push({ t: Date.now(), list });
        if (p.speakers.length > 200) p.speakers.shift();
      };
      p.activeLayers = [];
      p.client.onactivelayer = (m) => { p.activeLayers.push(m); p.log(`activeLayer ${JSON.stringify(m)}`); };
      try {
        // Resolves once the server has opened the "ion-sfu" data channel on the subscriber PC.
        await withTimeout(p.client.join(sid, uid), timeoutMs, `join(${sid}, ${uid}) (needs the ion-sfu data channel)`);
      } catch (e) {
        throw new Error(`join failed: ${errText(e)}`);
      }
      p.log('joined');
      if (publish) {
        // contentHint 'detail' makes Chromium encode the camera as a screen
        // capture and mark it with video-content-type; maxBitrate caps each
        // video encoding (bits/s).
        const { contentHint, maxBitrate, ...gum } = publish;
        p.local = await window.IonSDK.LocalStream.getUserMedia({ codec: 'vp8', simulcast: false, ...gum });
        if (contentHint) p.local.getVideoTracks().forEach((t) => { t.contentHint = contentHint; });
        p.client.publish(p.local);
        if (maxBitrate) {
          for (const sender of p.client.transports[0].pc.getSenders()) {
            if (!sender.track || sender.track.kind !== 'video') continue;
            const params = sender.getParameters();
            (params.encodings || []).forEach((e) => { e.maxBitrate = maxBitrate; });
            await sender.setParameters(params);
          }
        }
        p.log(`published ${p.local.id}`);
      }
      return { streamId: p.local ? p.local.id : null };
    } catch (e) {
      p.log(`join aborted: ${errText(e)}`);
      close(key);
      throw e;
    }
  }

  // client.close() closes both PCs and the WebSocket, which is how an
  // ion-sdk-js app leaves (ion-sfu has no leave call in 1.8).
  function close(key) {
    const p = parts.get(key);
    if (!p) throw new Error(`no participant ${key}`);
    parts.delete(key);
    try { if (p.client) p.client.close(); else if (p.signal) p.signal.close(); } catch (e) { p.log(`close: ${errText(e)}`); }
    if (p.local) p.local.getTracks().forEach((t) => t.stop());
    for (const r of p.remotes.values()) if (r.sink) r.sink.remove();
    parts.set(`${key}!closed`, p); // kept for diagnostics
  }

  async function stats(key) {
    const p = parts.get(key);
    if (!p || !p.client) throw new Error(`no joined participant ${key}`);
    const per = {};
    const bucket = (sid) => (per[sid] ||= { video: { framesDecoded: 0, packetsReceived: 0, bytesReceived: 0, freezesSecs: 0, contentType: null }, audio: { packetsReceived: 0 } });
    const report = await p.client.getSubStats();
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      const b = bucket(p.trackToStream.get(s.trackIdentifier) || `?track:${s.trackIdentifier}`);
      if (s.kind === 'video') {
        b.video.framesDecoded += s.framesDecoded || 0;
        b.video.packetsReceived += s.packetsReceived || 0;
        b.video.bytesReceived += s.bytesReceived || 0;
        b.video.freezesSecs += s.totalFreezesDuration || 0;
        // 'screenshare' when the video-content-type extension said so.
        b.video.contentType = s.contentType ?? b.video.contentType;
      } else if (s.kind === 'audio') {
        b.audio.packetsReceived += s.packetsReceived || 0;
      }
    });
    return per;
  }

  /** Audio packets the participant's publisher PC has sent. */
  async function audioSent(key) {
    const p = parts.get(key);
    if (!p || !p.client) throw new Error(`no joined participant ${key}`);
    let n = 0;
    (await p.client.getPubStats()).forEach((s) => { if (s.type === 'outbound-rtp' && s.kind === 'audio') n += s.packetsSent || 0; });
    return n;
  }

  function state(key) {
    const p = parts.get(key) || parts.get(`${key}!closed`);
    if (!p) return null;
    const tr = p.client && p.client.transports;
    return {
      key: p.key, uid: p.uid, sid: p.sid, joined: parts.has(key),
      localStreamId: p.local ? p.local.id : null,
      pub: tr ? tr[0].pc.connectionState : 'closed',
      sub: tr ? tr[1].pc.connectionState : 'closed',
      remotes: [...p.remotes.values()].map((r) => ({
        streamId: r.streamId,
        tracks: [...r.tracks.values()].map((t) => ({
          kind: t.kind, id: t.id, ended: t.ended || t.track.readyState === 'ended', removed: t.removed, mutes: t.mutes, muted: t.track.muted,
        })),
      })),
      log: p.lines.slice(-40),
      speakers: p.speakers.slice(-50),
      activeLayers: (p.activeLayers || []).slice(-5),
    };
  }

  // RemoteStream.preferLayer (ion-sfu's setRemoteMedia) on every remote stream.
  function prefer(key, layer) {
    const p = parts.get(key);
    if (!p) throw new Error(`no participant ${key}`);
    for (const r of p.remotes.values()) r.stream.preferLayer(layer);
    return p.remotes.size;
  }

  // Widest video frame decoded per remote stream, and activeLayer messages heard.
  async function widths(key) {
    const p = parts.get(key);
    if (!p || !p.client) throw new Error(`no joined participant ${key}`);
    const out = {};
    (await p.client.getSubStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') out[p.trackToStream.get(s.trackIdentifier)] = s.frameWidth || 0;
    });
    return out;
  }

  // The local UDP port of the subscriber PC's selected candidate pair (for
  // an nftables policer on what this participant receives).
  async function subscriberPort(key) {
    const p = parts.get(key);
    if (!p || !p.client) throw new Error(`no joined participant ${key}`);
    let port = null;
    const report = await p.client.transports[1].pc.getStats();
    report.forEach((s) => {
      if (s.type !== 'transport' || !s.selectedCandidatePairId) return;
      const pair = report.get(s.selectedCandidatePairId);
      const local = pair && report.get(pair.localCandidateId);
      if (local) port = local.port;
    });
    return port;
  }

  window.__rooms = { join, close, stats, audioSent, state, prefer, widths, subscriberPort, keys: () => [...parts.keys()].filter((k) => !k.includes('!')) };
}

export const joinRoom = (page, key, opts) => page.evaluate(({ key, opts }) => window.__rooms.join(key, opts), { key, opts });
export const leaveRoom = (page, key) => page.evaluate((key) => window.__rooms.close(key), key);
export const roomStats = (page, key) => page.evaluate((key) => window.__rooms.stats(key), key);
export const roomState = (page, key) => page.evaluate((key) => window.__rooms.state(key), key);
export const audioSent = (page, key) => page.evaluate((key) => window.__rooms.audioSent(key), key);
export const preferLayer = (page, key, layer) => page.evaluate(({ key, layer }) => window.__rooms.prefer(key, layer), { key, layer });
export const remoteWidths = (page, key) => page.evaluate((key) => window.__rooms.widths(key), key);
export const subscriberPort = (page, key) => page.evaluate((key) => window.__rooms.subscriberPort(key), key);

/** A remote stream's tracks all gone: removed from its MediaStream or ended. */
export function streamGone(state, streamId) {
  const r = state && state.remotes.find((x) => x.streamId === streamId);
  return !!r && r.tracks.length > 0 && r.tracks.every((t) => t.removed || t.ended);
}

/** Stream ids seen through ontrack whose tracks are still live. */
export function liveRemoteIds(state) {
  return (state ? state.remotes : []).filter((r) => r.tracks.some((t) => !t.removed && !t.ended)).map((r) => r.streamId).sort();
}

/**
 * Polls `key`'s subscriber stats until every stream in `streamIds` decoded
 * `frames` more video frames than in `baseline` (streamId -> frames).
 * Returns the last stats. `history` collects what was seen.
 */
export async function waitForRemoteFrames(page, key, streamIds, { frames = 60, baseline = {}, timeoutMs = 20000, signal, history = [] } = {}) {
  let last = null;
  return pollUntil(async () => {
    last = await roomStats(page, key);
    history.push({ t: Date.now(), key, stats: last });
    const ok = streamIds.every((sid) => ((last[sid]?.video.framesDecoded ?? 0) - (baseline[sid] ?? 0)) >= frames);
    return ok ? last : null;
  }, {
    timeoutMs,
    intervalMs: 500,
    signal,
    what: `${key}: >= ${frames} new video frames from each of ${streamIds.join(', ')}`,
    describe: async () => JSON.stringify({ stats: last, state: await roomState(page, key).catch((e) => e.message) }),
  });
}

/** framesDecoded per remote stream id, from one stats sample. */
export function framesOf(stats) {
  return Object.fromEntries(Object.entries(stats).map(([sid, s]) => [sid, s.video.framesDecoded]));
}

export { sleep };
