// sfud demo page, meeting mode: everyone in a room publishes camera+mic and
// sees everyone else, through ion-sdk-js (served by sfud from the npm
// package's dist/ bundles) speaking ion-sfu's JSON-RPC over /ws.
// `window.sfudMeeting` backs the buttons, so tests can drive the same code.
'use strict';

(function () {
  // window.IonSDK = { Client, LocalStream }, window.Signal = { IonSFUJSONRPCSignal }.
  const BUNDLES = ['/ion-sdk.min.js', '/json-rpc.min.js'];
  const OPEN_TIMEOUT_MS = 5000;
  // join() resolves only once sfud opens the "ion-sfu" data channel on the
  // subscriber PeerConnection; a server that never does must not hang the page.
  const JOIN_TIMEOUT_MS = 15000;

  let current = null; // { room, uid, signal, client, local, tiles: Map<streamId, figure> }

  const $ = (id) => document.getElementById(id);

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src;
      s.onload = resolve;
      s.onerror = () => reject(new Error(`cannot load ${src}`));
      document.head.appendChild(s);
    });
  }

  // Loaded on first use so the streaming mode never pays for it.
  async function loadIon() {
    if (window.IonSDK && window.Signal) return;
    for (const src of BUNDLES) await loadScript(src);
    if (!window.IonSDK || !window.Signal) throw new Error('ion-sdk-js bundles loaded but define nothing');
  }

  function withTimeout(promise, ms, what) {
    let timer;
    const expire = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
    });
    return Promise.race([promise, expire]).finally(() => clearTimeout(timer));
  }

  // JSON-RPC errors reach us as plain {code, message} objects.
  const errText = (e) => (e instanceof Error ? e.message : (e && e.message) || JSON.stringify(e));

  function wsUrl() {
    const base = `${window.location.protocol === 'https:' ? 'wss:' : 'ws:'}//${window.location.host}/ws`;
    // ion-sdk-js can only pass a token in the URL.
    const token = window.sfudAccessToken && window.sfudAccessToken();
    return token ? `${base}?access_token=${encodeURIComponent(token)}` : base;
  }

  function grid() {
    return $('meeting-grid') || document.body;
  }

  function addTile(m, stream, label, self) {
    let fig = m.tiles.get(stream.id);
    if (!fig) {
      fig = document.createElement('figure');
      fig.dataset.stream = stream.id;
      if (self) fig.classList.add('self');
      const video = document.createElement('video');
      video.autoplay = true;
      video.playsInline = true;
      // Your own microphone must not play back; others' must be heard.
      video.muted = !!self;
      const cap = document.createElement('figcaption');
      cap.textContent = label;
      fig.append(video, cap);
      if (self) grid().prepend(fig); else grid().appendChild(fig);
      m.tiles.set(stream.id, fig);
    }
    const video = fig.querySelector('video');
    if (video.srcObject !== stream) video.srcObject = stream;
    video.play().catch(() => {
      // Sound without a user gesture may be refused: play muted rather than not at all.
      video.muted = true;
      video.play().catch(() => {});
    });
    return fig;
  }

  function removeTile(m, streamId) {
    const fig = m.tiles.get(streamId);
    if (!fig) return;
    const video = fig.querySelector('video');
    if (video) video.srcObject = null;
    fig.remove();
    m.tiles.delete(streamId);
  }

  function onRemoteTrack(m, track, stream) {
    if (m !== current) return;
    // ion-sdk-js does not say who a stream belongs to; ion-sfu (and sfud)
    // keep the publisher's stream id, which is all we can show.
    addTile(m, stream, `participant ${stream.id.slice(0, 8)}`, false);
    // A participant left (or unpublished) when the renegotiation takes its
    // tracks off the stream; an ended track means the same.
    const gone = () => {
      if (!stream.getTracks().every((t) => t.readyState === 'ended')) return;
      removeTile(m, stream.id);
      m.onchange();
    };
    stream.onremovetrack = gone;
    track.addEventListener('ended', gone);
    m.onchange();
  }

  /**
   * Joins `room` as `uid`, publishes camera+mic and shows everyone.
   * opts: { resolution ('qvga'|'vga'|'hd'...), audio, video, onchange(state) }.
   */
  async function join(room, uid, opts = {}) {
    if (current) throw new Error('already in a meeting: leave first');
    if (!room) throw new Error('room name is empty');
    if (!uid) throw new Error('name is empty');
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error('camera access needs a secure context: open this page over https or via http://localhost / 127.0.0.1');
    }
    await loadIon();
    const m = { room, uid, signal: null, client: null, local: null, tiles: new Map(), onchange: opts.onchange || (() => {}) };
    current = m;
    try {
      m.signal = new window.Signal.IonSFUJSONRPCSignal(wsUrl());
      await withTimeout(new Promise((resolve, reject) => {
        m.signal.onerror = () => reject(new Error(`cannot connect to ${wsUrl()}`));
        m.signal.onclose = () => reject(new Error(`${wsUrl()} closed the connection`));
        m.signal.onopen = resolve;
      }), OPEN_TIMEOUT_MS, 'signalling connection');
      m.signal.onerror = () => {};
      m.signal.onclose = () => {
        if (current !== m) return;
        teardown(m);
        m.onchange({ error: 'the server closed the connection' });
      };
      // The server's candidates are in its SDP; no STUN needed on our side.
      m.client = new window.IonSDK.Client(m.signal, { codec: 'vp8', iceServers: [] });
      m.client.ontrack = (track, stream) => onRemoteTrack(m, track, stream);
      try {
        await withTimeout(m.client.join(room, uid), JOIN_TIMEOUT_MS, 'join');
      } catch (e) {
        throw new Error(`join refused: ${errText(e)}`);
      }
      m.local = await window.IonSDK.LocalStream.getUserMedia({
        resolution: opts.resolution || 'vga',
        audio: opts.audio ?? true,
        video: opts.video ?? true,
        codec: 'vp8',
        simulcast: false,
      });
      addTile(m, m.local, `${uid} (you)`, true);
      m.client.publish(m.local);
      m.onchange();
      return m;
    } catch (e) {
      teardown(m);
      throw e;
    }
  }

  function teardown(m) {
    if (current === m) current = null;
    try {
      if (m.client) m.client.close(); else if (m.signal) m.signal.close();
    } catch { /* already closed */ }
    if (m.local) m.local.getTracks().forEach((t) => t.stop());
    for (const id of [...m.tiles.keys()]) removeTile(m, id);
  }

  // Closing the socket is how an ion-sdk-js client leaves: the server
  // drops the participant and renegotiates with everyone else.
  function leave() {
    if (current) teardown(current);
  }

  window.sfudMeeting = {
    join,
    leave,
    get current() { return current; },
  };

  // ---- the page itself (skipped when loaded without the demo markup) ----

  if (!$('meeting-grid')) return;

  function setMode(mode) {
    const meeting = mode === 'meeting';
    $('stream-mode').hidden = meeting;
    $('meeting-mode').hidden = !meeting;
    $('mode-stream').setAttribute('aria-pressed', String(!meeting));
    $('mode-meeting').setAttribute('aria-pressed', String(meeting));
  }

  function status(text, isError) {
    const el = $('meeting-status');
    el.textContent = text;
    el.classList.toggle('error', !!isError);
  }

  function render(state) {
    $('meeting-join').disabled = !!current;
    $('meeting-leave').disabled = !current;
    if (state && state.error) {
      status(state.error, true);
    } else if (current) {
      const others = current.tiles.size - (current.local ? 1 : 0);
      status(`in "${current.room}" as ${current.uid} · ${others} other${others === 1 ? '' : 's'}`);
    }
  }

  async function onJoin() {
    const room = $('meeting-room').value.trim();
    const uid = $('meeting-name').value.trim();
    $('meeting-join').disabled = true;
    status(`joining "${room}"…`);
    try {
      await join(room, uid, { onchange: render });
      render();
    } catch (e) {
      status(`could not join: ${errText(e)}`, true);
      render();
    }
  }

  const params = new URLSearchParams(window.location.search);
  if (params.get('room')) $('meeting-room').value = params.get('room');
  $('meeting-name').value = params.get('name') || `guest-${Math.random().toString(36).slice(2, 6)}`;
  $('mode-stream').addEventListener('click', () => setMode('stream'));
  $('mode-meeting').addEventListener('click', () => setMode('meeting'));
  $('meeting-controls').addEventListener('submit', (e) => e.preventDefault());
  $('meeting-join').addEventListener('click', onJoin);
  $('meeting-leave').addEventListener('click', () => { leave(); status('left the meeting'); render(); });
  // Closing the socket now tells the server at once instead of after a timeout.
  window.addEventListener('pagehide', leave);
  setMode(params.get('mode') === 'meeting' ? 'meeting' : 'stream');
  render();
})();
