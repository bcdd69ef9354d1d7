//! Simulcast through the shard, without sockets: layers bound by RID on
//! their first authenticated packet, a viewer switched between layers only
//! on the target's keyframe (asking for it), with its sequence numbers,
//! timestamps and VP8 PictureID / TL0PICIDX continuous across the switch.

use std::time::{Duration, Instant};

use crate::forward::vp8;
use crate::msg::{Command, ExtIds, LayerCap, LayerSpec};
use crate::rtcp::{self, RtcpPacket};
use crate::rtp;
use crate::shard::core::ShardCore;
use crate::shard::outbox::Outbox;
use crate::shard::tests::{addr, down_spec, protect, setup_with, take_for, up_spec, Peer, SUB, TRACK};
use crate::srtp::SrtpProfile;

const RID_EXT: u8 = 10;
const SSRCS: [u32; 3] = [0x1000, 0x2000, 0x3000];

/// A VP8 packet of `layer` with the RID extension, PictureID (15 bits),
/// TL0PICIDX and TID; frames numbered from a base far apart per layer.
fn layer_packet(layer: usize, seq: u16, frame: u16, keyframe: bool, rid: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 1500];
    let f = rtp::HeaderFields {
        marker: true,
        payload_type: 96,
        sequence: seq,
        timestamp: 90 * u32::from(frame) * 33 + layer as u32 * 1_000_000,
        ssrc: SSRCS[layer],
    };
    let n = rtp::write_header_with_extensions(&mut buf, &f, &[(RID_EXT, rid)]).unwrap();
    let pid = (layer as u16 * 10_000 + frame) & 0x7fff;
    let tl0 = (layer as u8).wrapping_mul(100).wrapping_add(frame as u8);
    let mut p = vec![0x90, 0xe0, 0x80 | (pid >> 8) as u8, pid as u8, tl0, 0x00];
    p.push(if keyframe { 0x00 } else { 0x01 });
    p.extend_from_slice(&[0xAB; 60]);
    buf[n..n + p.len()].copy_from_slice(&p);
    buf.truncate(n + p.len());
    buf
}

fn start() -> (ShardCore, Outbox, Peer, Peer, Instant) {
    let now = Instant::now();
    let mut core = ShardCore::new(0);
    let mut out = Outbox::new(1);
    let mut up = up_spec();
    up.ssrc = None;
    up.ext = ExtIds { rid: Some(RID_EXT), ..Default::default() };
    up.layers = ["q", "h", "f"]
        .iter()
        .map(|r| LayerSpec { rid: Some((*r).into()), ssrc: None, rtx_ssrc: None })
        .collect();
    let (p, v) = setup_with(&mut core, &mut out, now, SrtpProfile::AeadAes128Gcm, up, down_spec());
    out.clear_datagrams();
    (core, out, p, v, now)
}

/// What the viewer decrypts: (seq, ts, PictureID, TL0PICIDX) per packet.
fn viewer_sees(viewer: &mut Peer, got: Vec<Vec<u8>>) -> Vec<(u16, u32, u16, u8)> {
    got.into_iter()
        .map(|mut d| {
            let len = d.len();
            let n = viewer.rx.unprotect_rtp(&mut d, len).expect("viewer decrypts");
            let h = rtp::parse(&d[..n]).unwrap();
            let desc = vp8::parse(h.payload(&d[..n])).unwrap();
            (h.sequence, h.timestamp, desc.picture_id.unwrap().0, desc.tl0picidx.unwrap().0)
        })
        .collect()
}

/// PLIs sfud sent the publisher, by media SSRC.
fn plis(publisher: &mut Peer, out: &mut Outbox) -> Vec<u32> {
    let mut ssrcs = Vec::new();
    for mut d in take_for(out, addr(5000)) {
        let len = d.len();
        let Ok(n) = publisher.rx.unprotect_rtcp(&mut d, len) else { continue };
        for pkt in rtcp::iter_compound(&d[..n]).flatten() {
            if let RtcpPacket::Pli { media_ssrc, .. } = pkt {
                ssrcs.push(media_ssrc);
            }
        }
    }
    ssrcs
}

/// Sends one frame (one packet) on every layer; returns what the viewer got.
fn frame(core: &mut ShardCore, out: &mut Outbox, publisher: &mut Peer, n: u16, keyframes: [bool; 3], now: Instant) -> Vec<Vec<u8>> {
    for (layer, rid) in [&b"q"[..], b"h", b"f"].iter().enumerate() {
        let mut p = protect(&mut publisher.tx, &layer_packet(layer, 100 * layer as u16 + n, n, keyframes[layer], rid));
        core.handle_datagram(addr(5000), &mut p, now, out);
    }
    take_for(out, addr(6000))
}

#[test]
fn layers_bind_by_rid_and_switches_wait_for_the_targets_keyframe() {
    let (mut core, mut out, mut publisher, mut viewer, now) = start();
    // A packet with a malformed RID binds nothing.
    let mut bad = protect(&mut publisher.tx, &layer_packet(0, 50_000, 0, true, b"q q"));
    core.handle_datagram(addr(5000), &mut bad, now, &mut out);
    assert!(take_for(&mut out, addr(6000)).is_empty());

    // The viewer starts on layer 0 at its keyframe; other layers never reach it.
    let got = viewer_sees(&mut viewer, frame(&mut core, &mut out, &mut publisher, 1, [true; 3], now));
    assert_eq!(got.len(), 1, "only layer 0: {got:?}");
    let mut seen = got;
    for n in 2..5 {
        seen.extend(viewer_sees(&mut viewer, frame(&mut core, &mut out, &mut publisher, n, [false; 3], now)));
    }
    assert_eq!(seen.len(), 4);

    // Switch the viewer to layer 2: it asks for layer 2's keyframe (by its
    // SSRC, bound by RID) and keeps layer 0 until it comes.
    take_for(&mut out, addr(5000));
    let dt = core.downtracks.get_mut(&TRACK).unwrap().iter_mut().find(|d| d.spec.session == SUB).unwrap();
    assert!(dt.set_layer(Some(2), 3));
    let later = now + Duration::from_secs(1);
    core.request_keyframe(dt_keyframe_track(&core), later, &mut out);
    assert_eq!(plis(&mut publisher, &mut out), [SSRCS[2]]);
    for n in 5..7 {
        let got = viewer_sees(&mut viewer, frame(&mut core, &mut out, &mut publisher, n, [false, true, false], later));
        assert_eq!(got.len(), 1, "still layer 0");
        seen.extend(got);
    }
    for n in 7..10 {
        seen.extend(viewer_sees(&mut viewer, frame(&mut core, &mut out, &mut publisher, n, [n == 7, false, n == 7], later)));
    }
    // Frame 7 twice: layer 0's (sent before layer 2's keyframe came), then
    // layer 2's keyframe, as the next picture.
    assert_eq!(seen.len(), 10);
    // Continuous: seq +1 per packet, PictureID and TL0PICIDX +1 per frame,
    // timestamps rising across the switch.
    for w in seen.windows(2) {
        let ((s0, t0, p0, l0), (s1, t1, p1, l1)) = (w[0], w[1]);
        assert_eq!(s1, s0.wrapping_add(1), "{seen:?}");
        assert_eq!(p1, (p0 + 1) & 0x7fff, "{seen:?}");
        assert_eq!(l1, l0.wrapping_add(1), "{seen:?}");
        // At most the second the test waited before the switch.
        assert!(t1.wrapping_sub(t0) > 0 && t1.wrapping_sub(t0) <= 93_000, "{seen:?}");
    }
}

fn dt_keyframe_track(core: &ShardCore) -> crate::msg::TrackId {
    core.downtracks[&TRACK].iter().find(|d| d.spec.session == SUB).unwrap().keyframe_track()
}

#[test]
fn a_subscribers_cap_bounds_the_allocator_and_off_pauses() {
    let (mut core, mut out, mut publisher, mut viewer, now) = start();
    core.handle_command(
        Command::SetLayerCap { session: SUB, track: Some(TRACK), cap: LayerCap { max_layer: Some(1), ..Default::default() } },
        now,
        &mut out,
    );
    // Two seconds of frames on every layer so the rates are known, with
    // the allocator running as the shard's tick would.
    let mut t = now;
    for n in 1..=60u16 {
        frame(&mut core, &mut out, &mut publisher, n, [n % 10 == 1; 3], t);
        core.tick(t, &mut out);
        t += Duration::from_millis(50);
    }
    let dt = &core.downtracks[&TRACK][0];
    assert_eq!(dt.cap.max_layer, Some(1));
    assert!(dt.chosen().0.is_some_and(|l| l <= 1), "capped at layer 1: {:?}", dt.chosen());
    core.handle_command(
        Command::SetLayerCap { session: SUB, track: None, cap: LayerCap { off: true, ..Default::default() } },
        t,
        &mut out,
    );
    core.tick(t, &mut out);
    take_for(&mut out, addr(6000));
    let got = frame(&mut core, &mut out, &mut publisher, 61, [true; 3], t);
    assert!(viewer_sees(&mut viewer, got).is_empty(), "off: nothing forwarded");
    assert_eq!(core.downtracks[&TRACK][0].chosen().0, None);
}

#[test]
fn layers_nobody_here_needs_are_pruned_but_their_rates_stay_known() {
    let (mut core, mut out, mut publisher, mut viewer, now) = start();
    core.handle_command(
        Command::SetLayerCap { session: SUB, track: Some(TRACK), cap: LayerCap { max_layer: Some(0), ..Default::default() } },
        now,
        &mut out,
    );
    let mut t = now;
    for n in 1..=40u16 {
        frame(&mut core, &mut out, &mut publisher, n, [n % 10 == 1; 3], t);
        core.tick(t, &mut out);
        t += Duration::from_millis(50);
    }
    let pruned = core.stats.layer_pruned;
    assert!(pruned > 0, "layers 1 and 2 are needed by nobody on this shard");
    // The viewer still gets layer 0, every frame.
    take_for(&mut out, addr(6000));
    let got = viewer_sees(&mut viewer, frame(&mut core, &mut out, &mut publisher, 41, [false; 3], t));
    assert_eq!(got.len(), 1);
    assert_eq!(core.stats.layer_pruned, pruned + 2, "one packet each of layers 1 and 2");
    // Their rates still reach the allocator, so an upgrade knows its cost.
    for l in 1..3 {
        let id = crate::forward::simulcast::layer_track(TRACK, Some(l));
        assert!(core.rates.get(&id).is_some_and(|r| r.bps(t) > 0), "layer {l} rate known");
    }
    // Lifting the cap asks for the layers again: nothing is pruned once
    // the allocator wants layer 2.
    core.handle_command(Command::SetLayerCap { session: SUB, track: Some(TRACK), cap: LayerCap::default() }, t, &mut out);
    core.tick(t, &mut out);
    let dt = &core.downtracks[&TRACK][0];
    let (current, target) = dt.layers();
    for l in 0..3u8 {
        let wanted = core.layer_demand.wants(TRACK, 0, Some(l), t);
        assert_eq!(wanted, current == Some(l) || target == Some(l), "layer {l}: {current:?} -> {target:?}");
    }
}

#[test]
fn a_stale_or_missing_demand_prunes_nothing() {
    let (mut core, mut out, _publisher, _viewer, now) = start();
    // Another shard said it needs only layer 0, then went quiet.
    core.handle_peer(1, crate::shard::peer::PeerMsg::LayerDemand { track: TRACK, mask: 0b001 }, now, &mut out);
    assert!(!core.layer_demand.wants(TRACK, 1, Some(2), now));
    let later = now + crate::forward::layer_demand::STALE_AFTER + Duration::from_millis(1);
    assert!(core.layer_demand.wants(TRACK, 1, Some(2), later));
    // A shard that never reported gets every layer.
    assert!(core.layer_demand.wants(TRACK, 2, Some(2), now));
}

/// A viewer whose REMB holds its estimate is never probed (no probe can
/// raise it), so the REMB itself must count as proven: else the viewer
/// stays on the layer it started on whatever budget it declares.
#[test]
fn a_rembs_budget_counts_as_proven_without_probes() {
    let (mut core, mut out, mut publisher, mut viewer, now) = start();
    let mut t = now;
    for n in 1..=60u16 {
        if n % 6 == 1 {
            let mut buf = vec![0u8; 128];
            let len = rtcp::write_remb(&mut buf, 0x5eed, 500_000, &[crate::shard::tests::SUB_SSRC]).unwrap();
            let n = viewer.tx.protect_rtcp(&mut buf, len).unwrap();
            buf.truncate(n);
            core.handle_datagram(addr(6000), &mut buf, t, &mut out);
        }
        frame(&mut core, &mut out, &mut publisher, n, [n % 10 == 1; 3], t);
        core.tick(t, &mut out);
        t += Duration::from_millis(50);
    }
    assert_eq!(core.stats.probes_started, 0, "REMB-held: no probes");
    assert_eq!(core.downtracks[&TRACK][0].chosen().0, Some(2), "every layer fits in 500 kbit/s");
}

/// A cap set before the subscriber's session lands on this shard (an
/// ion-sfu client's `setRemoteMedia` can arrive before its ICE completes)
/// holds once it does, and a cap for all the session's tracks also bounds
/// a downtrack installed after it.
#[test]
fn a_cap_set_before_the_claim_is_kept() {
    use crate::shard::tests::{binding, registered_unclaimed};
    let now = Instant::now();
    let (mut core, mut out) = registered_unclaimed(now);
    let one = LayerCap { max_layer: Some(1), ..Default::default() };
    core.handle_command(Command::SetLayerCap { session: SUB, track: Some(TRACK), cap: one }, now, &mut out);
    assert!(core.downtracks.get(&TRACK).is_none_or(|l| l.is_empty()), "not claimed here yet");
    let mut b = binding("subu");
    core.handle_datagram(addr(6000), &mut b, now, &mut out);
    assert_eq!(core.downtracks[&TRACK][0].cap, one, "kept through the claim");

    // All tracks, then a track added later: it starts capped too.
    let off = LayerCap { off: true, ..Default::default() };
    core.handle_command(Command::SetLayerCap { session: SUB, track: None, cap: off }, now, &mut out);
    assert_eq!(core.downtracks[&TRACK][0].cap, off);
    let other = crate::msg::TrackId(TRACK.0 + 1);
    let mut up = up_spec();
    up.track = other;
    up.ssrc = Some(0x7777);
    let mut down = down_spec();
    down.track = other;
    down.ssrc = 0x8888;
    core.handle_command(Command::AddUptrack(up), now, &mut out);
    core.handle_command(Command::AddDowntrack(down), now, &mut out);
    assert_eq!(core.downtracks[&other][0].cap, off, "a later downtrack honours the session-wide cap");
}
