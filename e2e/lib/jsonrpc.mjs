// A plain-node JSON-RPC 2.0 WebSocket client (npm `ws`; node 20's global
// WebSocket still needs --experimental-websocket) for protocol tests that
// need no browser.
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';

// What ion-sdk-js 1.8's Client sends as the join offer: only the "ion-sfu"
// data channel, before any track is published, and before trickling (so
// no candidates). Taken from Chromium 148, ICE and DTLS values arbitrary.
export const DATA_ONLY_OFFER = {
  type: 'offer',
  sdp: [
    'v=0',
    'o=- 2469498529133165932 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0',
    'a=extmap-allow-mixed',
    'a=msid-semantic: WMS',
    'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
    'c=IN IP4 0.0.0.0',
    'a=ice-ufrag:uOiR',
    'a=ice-pwd:TSexT7xT4NOaUx8s4mEUem+Q',
    'a=ice-options:trickle',
    'a=fingerprint:sha-256 75:2F:BA:D1:AF:45:3A:5B:06:59:08:F1:39:4E:52:D9:2C:D9:C8:BF:35:3A:08:56:D1:3E:71:84:C8:69:2D:96',
    'a=setup:actpass',
    'a=mid:0',
    'a=sctp-port:5000',
    'a=max-message-size:262144',
    '',
  ].join('\r\n'),
};

/** JSON for failure messages, with SDP bodies cut short. */
export const brief = (x) => JSON.stringify(x, (k, v) => (k === 'sdp' && typeof v === 'string' && v.length > 120 ? `${v.slice(0, 120)}…` : v));

/**
 * Opens `url` and returns { send(text), call(method, params, opts), next(pred, ms),
 * received, close(), closed }. `call` sends like ion-sdk-js does (a uuid
 * string id and no "jsonrpc" member) unless opts.jsonrpc is set, and
 * resolves with the whole response object (result or error).
 */
export async function connectRpc(url, { openTimeoutMs = 5000 } = {}) {
  const ws = new WebSocket(url);
  const received = [];
  const waiters = new Set();
  let closeInfo = null;
  const closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => {
      closeInfo = { code, reason: reason.toString() };
      for (const w of waiters) w.fail(new Error(`socket closed (${code}) while waiting for ${w.what}`));
      resolve(closeInfo);
    });
  });
  ws.on('message', (data) => {
    let msg;
    try { msg = JSON.parse(data.toString()); } catch { msg = { unparsable: data.toString() }; }
    received.push(msg);
    for (const w of waiters) if (w.pred(msg)) w.done(msg);
  });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`${url}: not open within ${openTimeoutMs} ms`)); }, openTimeoutMs);
    ws.once('open', () => { clearTimeout(timer); resolve(); });
    ws.once('error', (e) => { clearTimeout(timer); reject(new Error(`${url}: ${e.message}`)); });
  });
  ws.on('error', () => {}); // 'close' follows and reports it

  /** The first message (already received or future) matching `pred`. */
  const next = (pred, ms = 5000, what = 'a message') => {
    const old = received.find(pred);
    if (old) return Promise.resolve(old);
    if (closeInfo) return Promise.reject(new Error(`socket closed (${closeInfo.code}) before ${what}`));
    return new Promise((resolve, reject) => {
      const w = { pred, what };
      const timer = setTimeout(() => w.fail(new Error(`no ${what} within ${ms} ms; received: ${brief(received)}`)), ms);
      w.done = (m) => { clearTimeout(timer); waiters.delete(w); resolve(m); };
      w.fail = (e) => { clearTimeout(timer); waiters.delete(w); reject(e); };
      waiters.add(w);
    });
  };

  return {
    ws,
    received,
    closed,
    get closeInfo() { return closeInfo; },
    send: (text) => ws.send(text),
    next,
    call(method, params, { id = randomUUID(), jsonrpc = false, timeoutMs = 5000 } = {}) {
      const msg = { method, params, id };
      if (jsonrpc) msg.jsonrpc = '2.0';
      ws.send(JSON.stringify(msg));
      return next((m) => m.id === id && ('result' in m || 'error' in m), timeoutMs, `a response to ${method} (id ${id})`);
    },
    notify(method, params) { ws.send(JSON.stringify({ method, params })); },
    close() { ws.close(); return closed; },
  };
}
