// WHIP PATCH (RFC 9725 §4.3, issue 13): a publisher that trickles its
// candidates after the POST, then restarts ICE with a new ufrag; media goes
// on through the restart. Also ETag/If-Match and the sdpfrag errors. Run
// inside a private network namespace:
//   SFUD_BIN=target/release/sfud scripts/in-netns.sh node --test --test-concurrency=1 e2e/whip_patch.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSfud } from './lib/sfud.mjs';
import { withHarness } from './lib/scenario.mjs';
import { play, stats, waitForMedia } from './lib/browser.mjs';
import { pollUntil } from './lib/util.mjs';

// Runs in the page: a hand-written WHIP client that uses PATCH, unlike the
// demo page (which needs none: sfud is ICE-lite and puts everything in its
// answer). State lives in window.__patch.
function installClient() {
  const FRAG = 'application/trickle-ice-sdpfrag';
  const line = (sdp, key) => (sdp.match(new RegExp(`^a=${key}:(.*)$`, 'm')) || [])[1]?.trim();
  const fragment = (sdp, candidates) => {
    const mid = line(sdp, 'mid');
    let f = `a=ice-ufrag:${line(sdp, 'ice-ufrag')}\r\na=ice-pwd:${line(sdp, 'ice-pwd')}\r\n`;
    f += `m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:${mid}\r\n`;
    for (const c of candidates) f += `a=${c}\r\n`;
    return f;
  };
  const patch = (s, body, ifMatch) => fetch(s.location, {
    method: 'PATCH', headers: { 'Content-Type': FRAG, 'If-Match': ifMatch }, body,
  }).then(async (r) => ({ status: r.status, etag: r.headers.get('ETag'), text: await r.text() }));

  window.__patch = {
    async publish(room) {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
      for (const t of stream.getTracks()) pc.addTransceiver(t, { direction: 'sendonly', streams: [stream] });
      const s = { pc, candidates: [], trickles: [], gathered: null };
      s.gathered = new Promise((resolve) => {
        pc.onicecandidate = (e) => { if (e.candidate) s.candidates.push(e.candidate.candidate); else resolve(); };
      });
      await pc.setLocalDescription(await pc.createOffer());
      // The offer goes out before gathering: candidates follow by PATCH.
      const offer = pc.localDescription.sdp;
      const res = await fetch(`/whip/${room}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: offer });
      if (res.status !== 201) throw new Error(`POST ${res.status}: ${await res.text()}`);
      s.location = new URL(res.headers.get('Location'), location.href).toString();
      s.etag = res.headers.get('ETag');
      s.acceptPatch = res.headers.get('Accept-Patch');
      s.answer = await res.text();
      s.offerHadCandidates = /a=candidate/.test(offer);
      await pc.setRemoteDescription({ type: 'answer', sdp: s.answer });
      window.__e2e = { ...(window.__e2e || {}), pub: { pc } };
      window.__patch.s = s;
      return { location: s.location, etag: s.etag, acceptPatch: s.acceptPatch, offerHadCandidates: s.offerHadCandidates };
    },
    async trickle() {
      const s = window.__patch.s;
      await s.gathered;
      const r = await patch(s, fragment(s.pc.localDescription.sdp, [...s.candidates, 'end-of-candidates']), s.etag);
      return { ...r, candidates: s.candidates.length };
    },
    async stalePatch() {
      const s = window.__patch.s;
      return patch(s, fragment(s.pc.localDescription.sdp, []), '"not-the-etag"');
    },
    async restart() {
      const s = window.__patch.s;
      const oldUfrag = line(s.pc.localDescription.sdp, 'ice-ufrag');
      s.pc.restartIce();
      await s.pc.setLocalDescription(await s.pc.createOffer({ iceRestart: true }));
      const sdp = s.pc.localDescription.sdp;
      const r = await patch(s, fragment(sdp, []), s.etag);
      if (r.status !== 200) return { ...r, oldUfrag };
      // The server's new credentials replace the old ones in its answer.
      const ufrag = line(r.text, 'ice-ufrag');
      const pwd = line(r.text, 'ice-pwd');
      const answer = s.answer.replace(/^a=ice-ufrag:.*$/gm, `a=ice-ufrag:${ufrag}`).replace(/^a=ice-pwd:.*$/gm, `a=ice-pwd:${pwd}`);
      await s.pc.setRemoteDescription({ type: 'answer', sdp: answer });
      s.answer = answer;
      const previous = s.etag;
      s.etag = r.etag;
      return { ...r, oldUfrag, newUfrag: line(sdp, 'ice-ufrag'), serverUfrag: ufrag, previousEtag: previous };
    },
    // The transport's current ICE generation and whether its pair works.
    async transport() {
      const report = await window.__patch.s.pc.getStats();
      let t = null;
      report.forEach((x) => { if (x.type === 'transport') t = x; });
      const pair = t && report.get(t.selectedCandidatePairId);
      return {
        iceState: t && t.iceState, localUfrag: t && t.iceLocalUsernameFragment,
        pairState: pair && pair.state, responses: pair ? pair.responsesReceived : 0,
        connectionState: window.__patch.s.pc.connectionState,
      };
    },
  };
}

test('WHIP PATCH: trickle after the POST, then an ICE restart; media carries on', { timeout: 60000 }, async (t) => {
  const server = await startSfud({ name: 'whip-patch', env: { SFUD_DATAPLANE__SHARDS: '2' } });
  await withHarness(t, { name: 'whip-patch', server }, async (ctx) => {
    const pubPage = await ctx.browser.newPage(`${server.url}/`);
    const subPage = await ctx.browser.newPage(`${server.url}/`);
    await pubPage.evaluate(installClient);

    const p = await pubPage.evaluate(() => window.__patch.publish('patch-room'));
    assert.match(p.etag ?? '', /^"[A-Za-z0-9]+"$/, 'POST answered with an ETag');
    assert.equal(p.acceptPatch, 'application/trickle-ice-sdpfrag');
    assert.equal(p.offerHadCandidates, false, 'the offer went out before gathering');
    assert.ok(p.location.startsWith(`${server.url}/whip/patch-room/`), p.location);

    const tr = await pubPage.evaluate(() => window.__patch.trickle());
    assert.equal(tr.status, 204, `trickle PATCH: ${JSON.stringify(tr)}`);
    assert.ok(tr.candidates > 0, 'Chromium gathered candidates to trickle');
    const stale = await pubPage.evaluate(() => window.__patch.stalePatch());
    assert.equal(stale.status, 412, `stale If-Match: ${JSON.stringify(stale)}`);

    await play(subPage, 'sub', 'patch-room', { timeoutMs: 15000 });
    await waitForMedia(subPage, 'sub', { frames: 90, timeoutMs: 15000, signal: t.signal, history: ctx.history });

    const r = await pubPage.evaluate(() => window.__patch.restart());
    assert.equal(r.status, 200, `restart PATCH: ${JSON.stringify(r)}`);
    assert.notEqual(r.newUfrag, r.oldUfrag, 'the client restarted with a new ufrag');
    assert.ok(r.etag && r.etag !== r.previousEtag, `a new ETag: ${JSON.stringify(r)}`);
    assert.match(r.text, /a=candidate:.* typ host/);

    // The new ICE generation connects with sfud's new credentials...
    let seen = null;
    await pollUntil(async () => {
      seen = await pubPage.evaluate(() => window.__patch.transport());
      return seen.localUfrag === r.newUfrag && seen.iceState === 'connected' && seen.pairState === 'succeeded' && seen.responses > 0;
    }, { timeoutMs: 10000, signal: t.signal, what: 'the restarted ICE generation connected', describe: () => JSON.stringify(seen) });
    // ...and the viewer keeps decoding.
    const before = (await stats(subPage, 'sub')).video.framesDecoded;
    await waitForMedia(subPage, 'sub', { frames: before + 90, timeoutMs: 15000, signal: t.signal, history: ctx.history });
    assert.match(server.logTail(200), /ICE restarted/);
  });
});
