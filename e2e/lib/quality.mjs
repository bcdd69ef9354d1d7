// Media-quality figures from Chromium's getStats(): what the publisher
// encoded and sent, what a viewer decoded, froze and NACKed, and the
// publisher's send-side estimate. Works on any page (the demo page,
// ion-sdk-js pages, the direct-peer reference) because an init script records
// every RTCPeerConnection the page creates.
import { pollUntil, sleep } from './util.mjs';

// Runs in every page before its own scripts.
function instrumentPage({ camera }) {
  if (window.__quality) return;
  const pcs = [];
  const Native = window.RTCPeerConnection;
  if (Native) {
    window.RTCPeerConnection = class extends Native {
      constructor(...args) {
        super(...args);
        // Closed ones go, so a page that reconnects does not pile them up.
        for (let i = pcs.length - 1; i >= 0; i--) if (pcs[i].signalingState === 'closed') pcs.splice(i, 1);
        pcs.push(this);
      }
    };
  }
  // The demo page asks for { video: true }; `camera` makes that e.g. 720p.
  // Explicit constraints (ion-sdk-js, the reference page) pass unchanged.
  if (camera && navigator.mediaDevices) {
    const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getUserMedia = (c) => gum(c && c.video === true ? { ...c, video: camera } : c);
  }

  const pick = (s, keys) => {
    const o = {};
    for (const k of keys) if (s[k] !== undefined) o[k] = s[k];
    return o;
  };
  const OUT = ['ssrc', 'rid', 'framesEncoded', 'framesSent', 'packetsSent', 'retransmittedPacketsSent', 'nackCount', 'pliCount',
    'qualityLimitationReason', 'qualityLimitationDurations', 'frameWidth', 'frameHeight', 'framesPerSecond', 'targetBitrate', 'scalabilityMode'];
  const IN = ['ssrc', 'trackIdentifier', 'framesDecoded', 'framesReceived', 'framesDropped', 'keyFramesDecoded', 'packetsReceived',
    'packetsLost', 'retransmittedPacketsReceived', 'nackCount', 'pliCount', 'firCount', 'totalFreezesDuration', 'freezeCount',
    'frameWidth', 'frameHeight', 'framesPerSecond'];

  async function read(pc) {
    const report = await pc.getStats();
    const out = { connectionState: pc.connectionState, outbound: [], inbound: [], remoteInbound: [], pair: null };
    report.forEach((s) => {
      const video = (s.kind || s.mediaType) === 'video';
      if (s.type === 'outbound-rtp' && video) out.outbound.push(pick(s, OUT));
      else if (s.type === 'inbound-rtp' && video) out.inbound.push(pick(s, IN));
      else if (s.type === 'remote-inbound-rtp' && video) out.remoteInbound.push(pick(s, ['ssrc', 'packetsLost', 'fractionLost', 'roundTripTime']));
      else if (s.type === 'transport' && s.selectedCandidatePairId) {
        const p = report.get(s.selectedCandidatePairId);
        const local = p && report.get(p.localCandidateId);
        if (p) {
          out.pair = {
            ...pick(p, ['availableOutgoingBitrate', 'availableIncomingBitrate', 'currentRoundTripTime']),
            localPort: local && local.port,
            protocol: local && local.protocol,
          };
        }
      }
    });
    return out;
  }

  window.__quality = {
    read: () => Promise.all(pcs.filter((pc) => pc.signalingState !== 'closed').map(read)),
  };
}

/**
 * Records the PeerConnections of every page `browser` (from launchBrowser)
 * opens from now on; `camera` replaces the demo page's `video: true`
 * constraint, e.g. { width: 1280, height: 720 }.
 */
export async function instrument(browser, { camera = null } = {}) {
  await browser.context.addInitScript(instrumentPage, { camera });
}

/** One getStats() sample of every live PeerConnection in `page`. */
export async function sample(page) {
  const pcs = await page.evaluate(() => {
    if (!window.__quality) throw new Error('page not instrumented (call instrument() before opening it)');
    return window.__quality.read();
  });
  return { t: Date.now(), pcs };
}

const sum = (list, key) => list.reduce((n, s) => n + (Number(s[key]) || 0), 0);
const res = (s) => (s && s.frameWidth ? `${s.frameWidth}x${s.frameHeight}` : null);

/** The sending side of a sample: its video outbound-rtp streams and their pair. */
export function sendSide(smp) {
  const pc = smp.pcs.find((p) => p.outbound.length > 0);
  if (!pc) return null;
  const top = pc.outbound.reduce((a, b) => ((b.frameWidth || 0) > (a.frameWidth || 0) ? b : a));
  return {
    t: smp.t,
    framesEncoded: sum(pc.outbound, 'framesEncoded'),
    packetsSent: sum(pc.outbound, 'packetsSent'),
    retransmittedPacketsSent: sum(pc.outbound, 'retransmittedPacketsSent'),
    nackCountReceived: sum(pc.outbound, 'nackCount'),
    pliCountReceived: sum(pc.outbound, 'pliCount'),
    bandwidthLimitedSecs: pc.outbound.reduce((n, s) => n + ((s.qualityLimitationDurations || {}).bandwidth || 0), 0),
    reportedLost: sum(pc.remoteInbound, 'packetsLost'),
    qualityLimitationReason: top.qualityLimitationReason ?? null,
    resolution: res(top),
    targetBitrate: top.targetBitrate ?? null,
    availableOutgoingBitrate: pc.pair?.availableOutgoingBitrate ?? null,
  };
}

/**
 * The receiving side of a sample: video inbound-rtp streams, all of them or
 * those whose trackIdentifier `accept`s.
 */
export function receiveSide(smp, accept = () => true) {
  const streams = smp.pcs.flatMap((p) => p.inbound).filter((s) => accept(s.trackIdentifier));
  if (streams.length === 0) return null;
  const top = streams.reduce((a, b) => ((b.frameWidth || 0) > (a.frameWidth || 0) ? b : a));
  return {
    t: smp.t,
    framesDecoded: sum(streams, 'framesDecoded'),
    framesReceived: sum(streams, 'framesReceived'),
    keyFramesDecoded: sum(streams, 'keyFramesDecoded'),
    packetsReceived: sum(streams, 'packetsReceived'),
    packetsLost: sum(streams, 'packetsLost'),
    retransmittedPacketsReceived: sum(streams, 'retransmittedPacketsReceived'),
    nackCount: sum(streams, 'nackCount'),
    pliCount: sum(streams, 'pliCount'),
    totalFreezesDuration: sum(streams, 'totalFreezesDuration'),
    freezeCount: sum(streams, 'freezeCount'),
    resolution: res(top),
  };
}

const round = (x, digits = 3) => (x === null || x === undefined ? null : Number(x.toFixed(digits)));

/**
 * The figures of one publisher -> viewer path over a window: deltas between
 * the `before` and `after` sendSide/receiveSide values, and the state at the
 * end (estimate, limitation, resolutions).
 */
export function pathFigures({ pub: [p0, p1], sub: [s0, s1] }) {
  const d = (a, b, k) => (a && b ? b[k] - a[k] : null);
  const framesEncoded = d(p0, p1, 'framesEncoded');
  const framesDecoded = d(s0, s1, 'framesDecoded');
  return {
    windowSecs: p0 && p1 ? round((p1.t - p0.t) / 1000, 1) : null,
    framesEncoded,
    framesDecoded,
    ratio: framesEncoded > 0 ? round(framesDecoded / framesEncoded) : null,
    totalFreezesDuration: round(d(s0, s1, 'totalFreezesDuration')),
    freezeCount: d(s0, s1, 'freezeCount'),
    nackCount: d(s0, s1, 'nackCount'),
    pliCount: d(s0, s1, 'pliCount'),
    retransmittedPacketsSent: d(p0, p1, 'retransmittedPacketsSent'),
    retransmittedPacketsReceived: d(s0, s1, 'retransmittedPacketsReceived'),
    packetsLost: d(s0, s1, 'packetsLost'),
    packetsReceived: d(s0, s1, 'packetsReceived'),
    keyFramesDecoded: d(s0, s1, 'keyFramesDecoded'),
    availableOutgoingBitrate: p1?.availableOutgoingBitrate ?? null,
    qualityLimitationReason: p1?.qualityLimitationReason ?? null,
    bandwidthLimitedSecs: round(d(p0, p1, 'bandwidthLimitedSecs'), 1),
    targetBitrate: p1?.targetBitrate ?? null,
    resolution: { sent: p1?.resolution ?? null, decoded: s1?.resolution ?? null },
  };
}

/**
 * Samples every page in `pages` (name -> page) at once, now and after `ms`,
 * with a sample every `everyMs` in between pushed to `history` (for the
 * failure report and returned as `trace`). Returns { before, after, trace }
 * (before and after: name -> sample; trace: [{ t, name: brief(sample) }]).
 */
export async function measureWindow(pages, { ms, everyMs = 5000, history = [], signal }) {
  const names = Object.keys(pages);
  const all = async () => {
    const smps = await Promise.all(names.map((n) => sample(pages[n])));
    return Object.fromEntries(names.map((n, i) => [n, smps[i]]));
  };
  const before = await all();
  const trace = [];
  const end = before[names[0]].t + ms;
  for (;;) {
    if (signal && signal.aborted) throw new Error('aborted during the measurement window');
    const left = end - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(everyMs, left));
    if (Date.now() < end) {
      const mid = await all();
      const entry = { t: Date.now(), ...Object.fromEntries(names.map((n) => [n, brief(mid[n])])) };
      trace.push(entry);
      history.push({ phase: 'window', ...entry });
    }
  }
  const after = await all();
  return { before, after, trace };
}

/** A short form of a sample for logs: both sides' running totals. */
export function brief(smp) {
  return { send: sendSide(smp), receive: receiveSide(smp) };
}

/**
 * Polls `page`'s send side every second until `ok(sendSide)` holds, for at
 * most `timeoutMs`. Never throws on timeout: returns { reached, ms, last,
 * maxEstimate } so the caller can report the figures either way.
 */
export async function waitForSendSide(page, ok, { timeoutMs, signal, history = [], what = 'send side' }) {
  const start = Date.now();
  let last = null;
  let maxEstimate = null;
  const result = (reached) => ({ reached, ms: Date.now() - start, last, maxEstimate });
  try {
    return await pollUntil(async () => {
      last = sendSide(await sample(page));
      history.push({ t: Date.now(), phase: what, send: last });
      const v = last?.availableOutgoingBitrate ?? null;
      if (v !== null && (maxEstimate === null || v > maxEstimate)) maxEstimate = v;
      return last && ok(last) ? result(true) : null;
    }, { timeoutMs, intervalMs: 1000, signal, what });
  } catch (e) {
    if (signal && signal.aborted) throw e;
    return result(false);
  }
}

/**
 * What a viewer saw between two `receiveSide` samples: its resolution at
 * the end, decoded fps, and the freezes and losses in the window.
 */
export function windowFigures(before, after) {
  const secs = (after.t - before.t) / 1000;
  return {
    resolution: after.resolution,
    fps: Math.round(((after.framesDecoded - before.framesDecoded) / secs) * 10) / 10,
    freezesSecs: Math.round((after.totalFreezesDuration - before.totalFreezesDuration) * 100) / 100,
    freezeCount: after.freezeCount - before.freezeCount,
    packetsLost: after.packetsLost - before.packetsLost,
  };
}
