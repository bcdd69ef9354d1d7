// sfud demo page: a minimal WHIP publisher and WHEP viewer.
// The same functions back the buttons and `window.sfud`, which the end-to-end
// tests drive, so what the tests check is what a person uses.
'use strict';

(function () {
  // Server-side errors arrive as text/plain; keep what a person sees short.
  const MAX_ERROR_BODY = 500;
  // A server that accepts the connection and never answers must not leave
  // the page (or a test) waiting forever.
  const REQUEST_TIMEOUT_MS = 10000;

  class HttpError extends Error {
    constructor(status, body) {
      super(`server answered ${status}${body ? ': ' + body.slice(0, MAX_ERROR_BODY) : ''}`);
      this.status = status;
      this.body = body;
    }
  }

  // An access token, when sfud runs with [auth] keys: opts.token, else the
  // page's ?token= parameter, else the token field.
  function accessToken(opts) {
    if (opts && opts.token) return opts.token;
    const fromUrl = new URLSearchParams(window.location.search).get('token');
    if (fromUrl) return fromUrl;
    const field = document.getElementById('token');
    return field && field.value.trim() ? field.value.trim() : null;
  }
  window.sfudAccessToken = accessToken;

  // opts.iceServers (e.g. from the endpoint's Link headers) and
  // opts.iceTransportPolicy ('relay' forces TURN) pass through.
  function pcConfig(opts) {
    const config = { bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' };
    if (opts && opts.iceServers) config.iceServers = opts.iceServers;
    if (opts && opts.iceTransportPolicy) config.iceTransportPolicy = opts.iceTransportPolicy;
    return config;
  }

  // opts.server ("https://sfu.example.com") lets a page hosted elsewhere use
  // these functions; sfud must list the page's origin in
  // http.cors_allowed_origins.
  function endpoint(kind, room, opts) {
    const base = (opts && opts.server) || window.location.origin;
    const url = new URL(`/${kind}/${encodeURIComponent(room)}`, base);
    if (opts && Number.isInteger(opts.shard)) url.searchParams.set('shard', String(opts.shard));
    // A namespace (tenant) scopes the room name in a cluster.
    if (opts && opts.ns) url.searchParams.set('ns', opts.ns);
    return url;
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  // POSTs the local offer and applies the answer. Returns the Location-derived
  // handle fields; throws HttpError on any other status than 201 (or 200) so callers can decide
  // to retry.
  async function exchange(pc, url, opts) {
    let res;
    const headers = { 'Content-Type': 'application/sdp' };
    const token = accessToken(opts);
    if (token) headers.Authorization = `Bearer ${token}`;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers,
        body: pc.localDescription.sdp,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (e) {
      if (e.name === 'TimeoutError') throw new Error(`no answer from ${url.pathname} within ${REQUEST_TIMEOUT_MS / 1000} s`);
      throw new Error(`cannot reach the server: ${e.message}`);
    }
    const body = await res.text();
    if (res.status !== 201 && res.status !== 200) throw new HttpError(res.status, body.trim());
    const loc = res.headers.get('Location');
    if (!loc) throw new Error('server answered without a Location header');
    // In a cluster the POST may have followed a 307 to the room's node: the
    // relative Location belongs to that node, the URL that answered.
    const location = new URL(loc, res.url || url).toString();
    const id = decodeURIComponent(new URL(location).pathname.split('/').filter(Boolean).pop() || '');
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
    // With auth on, ending the session takes a token for its room too.
    return { id, location, token };
  }

  const deleteHeaders = (handle) => (handle.token ? { Authorization: `Bearer ${handle.token}` } : {});

  async function publish(room, opts = {}) {
    if (!room) throw new Error('room name is empty');
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      // Browsers hide getUserMedia outside secure contexts (https or localhost).
      throw new Error('camera access needs a secure context: open this page over https or via http://localhost / 127.0.0.1');
    }
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    const pc = new RTCPeerConnection(pcConfig(opts));
    try {
      // Audio first, then video: a stable m-line order keeps server logs readable.
      for (const track of [...stream.getAudioTracks(), ...stream.getVideoTracks()]) {
        const init = { direction: 'sendonly', streams: [stream] };
        // opts.sendEncodings (e.g. rids q/h/f) publishes video as simulcast.
        if (track.kind === 'video' && opts.sendEncodings) init.sendEncodings = opts.sendEncodings;
        const tr = pc.addTransceiver(track, init);
        // opts.videoCodec ('H264', 'VP8') offers only that codec, to exercise it.
        if (track.kind === 'video' && opts.videoCodec && tr.setCodecPreferences) {
          const want = `video/${opts.videoCodec}`.toLowerCase();
          const caps = RTCRtpSender.getCapabilities('video').codecs.filter((c) => c.mimeType.toLowerCase() === want);
          if (!caps.length) throw new Error(`this browser cannot send ${opts.videoCodec}`);
          tr.setCodecPreferences(caps);
        }
      }
      await pc.setLocalDescription(await pc.createOffer());
      // The server is ICE-lite and puts all its candidates in the answer, so
      // the offer goes out at once, without waiting for our gathering.
      const { id, location, token } = await exchange(pc, endpoint('whip', room, opts), opts);
      return { id, location, token, pc, stream, kind: 'whip', room };
    } catch (e) {
      pc.close();
      stream.getTracks().forEach((t) => t.stop());
      throw e;
    }
  }

  async function play(room, opts = {}) {
    if (!room) throw new Error('room name is empty');
    const timeoutMs = opts.timeoutMs ?? 15000;
    const deadline = Date.now() + timeoutMs;
    const pc = new RTCPeerConnection(pcConfig(opts));
    const video = opts.video || newVideoElement();
    const remote = new MediaStream();
    video.srcObject = remote;
    pc.ontrack = (ev) => {
      remote.addTrack(ev.track);
      // Autoplay of muted media is allowed everywhere; a rejected play() only
      // means nothing renders, decoding still goes on.
      video.play().catch(() => {});
    };
    try {
      const audio = pc.addTransceiver('audio', { direction: 'recvonly' });
      if (opts.audioCodecs) {
        // Offer only these audio codecs (mime types), e.g. Opus without RED.
        const keep = opts.audioCodecs.map((m) => m.toLowerCase());
        audio.setCodecPreferences(RTCRtpReceiver.getCapabilities('audio').codecs.filter((c) => keep.includes(c.mimeType.toLowerCase())));
      }
      pc.addTransceiver('video', { direction: 'recvonly' });
      await pc.setLocalDescription(await pc.createOffer());
      const url = endpoint('whep', room, opts);
      let delay = 200;
      for (;;) {
        try {
          const { id, location, token } = await exchange(pc, url, opts);
          return { id, location, token, pc, video, kind: 'whep', room };
        } catch (e) {
          // 409/404: the room has no publisher yet. Anything else is final.
          const waiting = e instanceof HttpError && (e.status === 409 || e.status === 404);
          if (!waiting || Date.now() + delay > deadline) throw e;
          if (opts.onWaiting) opts.onWaiting(e);
          await sleep(delay);
          delay = Math.min(delay * 2, 2000);
        }
      }
    } catch (e) {
      pc.close();
      if (!opts.video) video.remove();
      throw e;
    }
  }

  async function stop(handle) {
    if (!handle) return;
    let failure = null;
    try {
      if (handle.location) {
        const res = await fetch(handle.location, { method: 'DELETE', headers: deleteHeaders(handle), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
        if (!res.ok) failure = new HttpError(res.status, (await res.text()).trim());
      }
    } catch (e) {
      failure = e;
    } finally {
      // Local teardown happens whatever the server said.
      if (handle.pc) handle.pc.close();
      if (handle.stream) handle.stream.getTracks().forEach((t) => t.stop());
    }
    if (failure) throw failure;
  }

  async function stats(pc) {
    const out = {
      video: { framesDecoded: 0, packetsReceived: 0, packetsLost: 0, bytesReceived: 0 },
      audio: { packetsReceived: 0, packetsLost: 0 },
    };
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      const kind = s.kind || s.mediaType;
      // Summed, so an SSRC change mid-session does not hide earlier counts.
      if (kind === 'video') {
        out.video.framesDecoded += s.framesDecoded || 0;
        out.video.packetsReceived += s.packetsReceived || 0;
        out.video.packetsLost += s.packetsLost || 0;
        out.video.bytesReceived += s.bytesReceived || 0;
      } else if (kind === 'audio') {
        out.audio.packetsReceived += s.packetsReceived || 0;
        out.audio.packetsLost += s.packetsLost || 0;
      }
    });
    return out;
  }

  function newVideoElement() {
    const v = document.createElement('video');
    v.autoplay = true;
    v.playsInline = true;
    v.muted = true;
    const box = document.getElementById('viewers');
    (box || document.body).appendChild(v);
    return v;
  }

  window.sfud = { publish, play, stop, stats };

  // ---- the page itself (skipped when loaded without the demo markup) ----

  const $ = (id) => document.getElementById(id);
  if (!$('room')) return;

  // ?room= and ?shard= let a person share a link to a room or pin a shard
  // (the latter only on a server started with placement hints allowed).
  const params = new URLSearchParams(window.location.search);
  if (params.get('room')) $('room').value = params.get('room');
  const pageOpts = {};
  if (params.has('shard')) pageOpts.shard = Number.parseInt(params.get('shard'), 10);

  let published = null;
  let watching = null;
  let statsTimer = null;

  function status(text, isError) {
    const el = $('status');
    el.textContent = text;
    el.classList.toggle('error', !!isError);
  }

  function room() {
    return $('room').value.trim();
  }

  function render() {
    $('publish').textContent = published ? 'Stop publishing' : 'Publish camera+mic';
    $('watch').textContent = watching ? 'Stop watching' : 'Watch room';
  }

  async function togglePublish() {
    $('publish').disabled = true;
    try {
      if (published) {
        const h = published;
        published = null;
        $('local').srcObject = null;
        await stop(h);
        status('stopped publishing');
      } else {
        status(`publishing to "${room()}"…`);
        published = await publish(room(), pageOpts);
        $('local').srcObject = published.stream;
        published.pc.onconnectionstatechange = () => status(`publisher: ${published ? published.pc.connectionState : 'closed'}`);
        status(`publishing to "${room()}" (session ${published.id})`);
      }
    } catch (e) {
      status(`publish failed: ${e.message}`, true);
    } finally {
      $('publish').disabled = false;
      render();
    }
  }

  async function toggleWatch() {
    $('watch').disabled = true;
    try {
      if (watching) {
        const h = watching;
        watching = null;
        clearInterval(statsTimer);
        $('remote').srcObject = null;
        await stop(h);
        status('stopped watching');
      } else {
        status(`waiting for a publisher in "${room()}"…`);
        watching = await play(room(), {
          ...pageOpts,
          video: $('remote'),
          timeoutMs: 60000,
          onWaiting: (e) => status(`waiting for a publisher in "${room()}" (${e.body || e.status})…`),
        });
        status(`watching "${room()}" (session ${watching.id})`);
        statsTimer = setInterval(showStats, 1000);
      }
    } catch (e) {
      watching = null;
      status(`watch failed: ${e.message}`, true);
    } finally {
      $('watch').disabled = false;
      render();
    }
  }

  async function showStats() {
    if (!watching) return;
    try {
      const s = await stats(watching.pc);
      $('stats').textContent =
        `${watching.pc.connectionState} · video: ${s.video.framesDecoded} frames decoded, ` +
        `${s.video.packetsReceived} packets, ${s.video.packetsLost} lost · ` +
        `audio: ${s.audio.packetsReceived} packets, ${s.audio.packetsLost} lost`;
    } catch (e) {
      $('stats').textContent = `stats unavailable: ${e.message}`;
    }
  }

  // Enter in the room field must not reload the page and drop the sessions.
  $('controls').addEventListener('submit', (e) => e.preventDefault());
  $('publish').addEventListener('click', togglePublish);
  $('watch').addEventListener('click', toggleWatch);
  window.addEventListener('pagehide', () => {
    // Best effort: tell the server so sessions do not linger until timeout.
    for (const h of [published, watching]) {
      if (h && h.location) fetch(h.location, { method: 'DELETE', headers: deleteHeaders(h), keepalive: true }).catch(() => {});
    }
  });
  render();
})();
