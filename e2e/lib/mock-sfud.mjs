// A stand-in for sfud's WHIP/WHEP API, for the harness self-test: a node HTTP
// server hands each offer to a "reflector" page whose RTCPeerConnections
// answer it and forward the publisher's tracks to the viewers. It checks the
// client side (app.js and the test helpers) without a server build; it says
// nothing about sfud itself.
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO } from './sfud.mjs';

const STATIC_DIR = path.join(REPO, 'controlplane', 'static');
const STATIC = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
};

// Runs in the reflector page.
function installReflector() {
  const gathered = (pc) => new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const done = () => { if (pc.iceGatheringState === 'complete') resolve(); };
    pc.addEventListener('icegatheringstatechange', done);
    setTimeout(resolve, 3000);
  });
  const answer = async (pc, sdp) => {
    await pc.setRemoteDescription({ type: 'offer', sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    return pc.localDescription.sdp;
  };
  const pubs = new Map(); // room -> { id, pc, tracks }
  const sessions = new Map(); // id -> { kind, room, pc }
  window.mock = {
    async whip(id, room, sdp, shard) {
      const pc = new RTCPeerConnection();
      const sdpAnswer = await answer(pc, sdp);
      const tracks = {};
      for (const tr of pc.getTransceivers()) tracks[tr.receiver.track.kind] = tr.receiver.track;
      // Chromium pulls remote audio only through a sink: without one, the
      // forwarded audio track carries nothing.
      if (tracks.audio) {
        const sink = new Audio();
        sink.muted = true;
        sink.srcObject = new MediaStream([tracks.audio]);
        sink.play().catch(() => {});
      }
      pubs.set(room, { id, pc, tracks });
      sessions.set(id, { kind: 'whip', room, pc, shard });
      return sdpAnswer;
    },
    async whep(id, room, sdp, shard) {
      const pub = pubs.get(room);
      if (!pub) return null;
      const pc = new RTCPeerConnection();
      await pc.setRemoteDescription({ type: 'offer', sdp });
      for (const tr of pc.getTransceivers()) {
        tr.direction = 'sendonly';
        await tr.sender.replaceTrack(pub.tracks[tr.receiver.track.kind] || null);
      }
      await pc.setLocalDescription(await pc.createAnswer());
      await gathered(pc);
      sessions.set(id, { kind: 'whep', room, pc, shard });
      return pc.localDescription.sdp;
    },
    async del(id) {
      const s = sessions.get(id);
      if (!s) return false;
      sessions.delete(id);
      s.pc.close();
      if (s.kind === 'whip' && pubs.get(s.room)?.id === id) {
        pubs.delete(s.room);
        for (const v of sessions.values()) {
          if (v.kind !== 'whep' || v.room !== s.room) continue;
          for (const sender of v.pc.getSenders()) await sender.replaceTrack(null);
        }
      }
      return true;
    },
    list() {
      return [...sessions].map(([id, s]) => ({
        id, kind: s.kind, room: s.room, shard: s.shard,
        state: s.pc.connectionState === 'connected' ? 'connected' : 'new',
      }));
    },
  };
}

/**
 * Starts the mock on 127.0.0.1:`port` (0: any free port) using `browser` for
 * the reflector. `?shard=N` is only recorded, and shown in the sessions list.
 */
export async function startMockSfud(browser, { port = 0 } = {}) {
  const log = [];
  let next = 1;
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks).toString('utf8');
    const reply = (status, text, headers = {}) => {
      log.push(`${req.method} ${req.url} -> ${status}`);
      res.writeHead(status, { 'Content-Type': 'text/plain', ...headers }).end(text);
    };
    try {
      const m = url.pathname.match(/^\/(whip|whep)\/([^/]+)(?:\/([^/]+))?$/);
      if (req.method === 'GET' && STATIC[url.pathname]) {
        const [file, type] = STATIC[url.pathname];
        return reply(200, await readFile(path.join(STATIC_DIR, file)), { 'Content-Type': type });
      }
      if (req.method === 'GET' && url.pathname === '/healthz') return reply(200, 'ok');
      if (req.method === 'GET' && url.pathname === '/api/v1/sessions') {
        return reply(200, JSON.stringify(await reflector.evaluate(() => window.mock.list())),
          { 'Content-Type': 'application/json' });
      }
      if (m && req.method === 'POST' && !m[3]) {
        const [, kind, roomEnc] = m;
        const room = decodeURIComponent(roomEnc);
        if (req.headers['content-type'] !== 'application/sdp') return reply(415, 'expected application/sdp');
        if (room === 'forbidden') return reply(403, 'room forbidden by test');
        if (!body.startsWith('v=0')) return reply(400, 'body is not an SDP offer');
        const id = `s${next++}`;
        const shard = url.searchParams.has('shard') ? Number(url.searchParams.get('shard')) : null;
        const sdp = await reflector.evaluate(([k, i, r, o, sh]) => window.mock[k](i, r, o, sh), [kind, id, room, body, shard]);
        if (sdp === null) return reply(409, `room ${room} has no publisher`);
        return reply(201, sdp, { 'Content-Type': 'application/sdp', Location: `/${kind}/${roomEnc}/${id}` });
      }
      if (m && req.method === 'DELETE' && m[3]) {
        const ok = await reflector.evaluate((i) => window.mock.del(i), decodeURIComponent(m[3]));
        return ok ? reply(204, '') : reply(404, 'no such session');
      }
      return reply(404, 'not found');
    } catch (e) {
      return reply(500, `mock failed: ${e.message}`);
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${server.address().port}`;
  const reflector = await browser.newPage(`${url}/healthz`);
  await reflector.evaluate(installReflector);
  return {
    url,
    logPath: '(mock: in memory)',
    logTail: (n = 60) => log.slice(-n).join('\n'),
    stop: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}
