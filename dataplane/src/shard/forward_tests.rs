//! The forwarding core through the shard, without sockets: NACKs answered
//! from the shard's copy (as RTX or on the primary SSRC), the publisher's
//! repair stream restored, losses NACKed upstream, header extensions under
//! the subscriber's ids, and congestion feedback to the publisher.

use std::time::{Duration, Instant};

use crate::forward::rtx;
use crate::msg::{ExtIds, Feedback, RtxSpec};
use crate::rtcp::{self, RtcpPacket};
use crate::rtp;
use crate::shard::core::ShardCore;
use crate::shard::outbox::Outbox;
use crate::shard::tests::{
    addr, down_spec, protect, rtp_packet, setup_with, take_for, up_spec, vp8, Peer, PUB_SSRC, SUB_SSRC,
};
use crate::srtp::SrtpProfile;

const RTX_SSRC: u32 = 0x7777;
const PUB_RTX_SSRC: u32 = 0x5555;

/// Decrypts what the viewer got and returns (ssrc, seq, pt, payload) each.
fn viewer_sees(viewer: &mut Peer, got: Vec<Vec<u8>>) -> Vec<(u32, u16, u8, Vec<u8>)> {
    got.into_iter()
        .map(|mut d| {
            let len = d.len();
            let n = viewer.rx.unprotect_rtp(&mut d, len).expect("viewer decrypts");
            let h = rtp::parse(&d[..n]).unwrap();
            (h.ssrc, h.sequence, h.payload_type, h.payload(&d[..n]).to_vec())
        })
        .collect()
}

pub(super) fn nack(viewer: &mut Peer, seqs: &[u16]) -> Vec<u8> {
    let mut buf = vec![0u8; 300];
    let n = rtcp::write_rr(&mut buf, 0x3333, &[]).unwrap();
    let m = rtcp::write_nack(&mut buf[n..], 0x3333, SUB_SSRC, seqs).unwrap();
    let len = viewer.tx.protect_rtcp(&mut buf, n + m).unwrap();
    buf.truncate(len);
    buf
}

fn start(rtx_down: bool) -> (ShardCore, Outbox, Peer, Peer, Instant) {
    let now = Instant::now();
    let mut core = ShardCore::new(0);
    let mut out = Outbox::new(1);
    let mut down = down_spec();
    down.feedback = Feedback { nack: true, ..Default::default() };
    if rtx_down {
        down.rtx = Some(RtxSpec { ssrc: RTX_SSRC, payload_type: 101 });
    }
    let mut up = up_spec();
    up.feedback = Feedback { nack: true, ..Default::default() };
    up.rtx_ssrc = Some(PUB_RTX_SSRC);
    up.rtx_payload_type = Some(97);
    let (p, v) = setup_with(&mut core, &mut out, now, SrtpProfile::AeadAes128Gcm, up, down);
    out.clear_datagrams();
    (core, out, p, v, now)
}

/// Sends publisher packets `seqs` (the first a keyframe) and returns what
/// the viewer got.
pub(super) fn publish(core: &mut ShardCore, out: &mut Outbox, publisher: &mut Peer, seqs: &[u16], now: Instant) -> Vec<Vec<u8>> {
    for (i, &seq) in seqs.iter().enumerate() {
        let mut p = protect(&mut publisher.tx, &rtp_packet(seq, 1000 + u32::from(seq) * 10, &vp8(i == 0)));
        core.handle_datagram(addr(5000), &mut p, now, out);
    }
    take_for(out, addr(6000))
}

#[test]
fn nack_answered_on_the_primary_ssrc() {
    let (mut core, mut out, mut publisher, mut viewer, now) = start(false);
    let mut got = publish(&mut core, &mut out, &mut publisher, &[10, 11, 12], now);
    assert_eq!(got.len(), 3);
    // The second is lost on the way to the viewer.
    got.remove(1);
    let seen = viewer_sees(&mut viewer, got);
    let lost = (SUB_SSRC, seen[0].1.wrapping_add(1), 100, vp8(false));
    let mut n = nack(&mut viewer, &[lost.1]);
    core.handle_datagram(addr(6000), &mut n, now + Duration::from_millis(5), &mut out);
    let resent = viewer_sees(&mut viewer, take_for(&mut out, addr(6000)));
    assert_eq!(resent, vec![lost.clone()], "the same packet, again");
    assert_eq!(core.stats.retransmissions, 1);
    // Asked again at once: within one RTT, not resent.
    let mut n = nack(&mut viewer, &[lost.1]);
    core.handle_datagram(addr(6000), &mut n, now + Duration::from_millis(6), &mut out);
    assert!(take_for(&mut out, addr(6000)).is_empty());
    // A sequence number never sent is not answered (and counted).
    let mut n = nack(&mut viewer, &[lost.1.wrapping_add(100)]);
    core.handle_datagram(addr(6000), &mut n, now + Duration::from_millis(7), &mut out);
    assert!(take_for(&mut out, addr(6000)).is_empty());
    assert!(core.stats.nacks_unanswered >= 2);
}

#[test]
fn nack_answered_as_rtx_when_negotiated() {
    let (mut core, mut out, mut publisher, mut viewer, now) = start(true);
    let mut got = publish(&mut core, &mut out, &mut publisher, &[10, 11, 12], now);
    got.pop();
    let seen = viewer_sees(&mut viewer, got);
    let lost = &(SUB_SSRC, seen[1].1.wrapping_add(1), 100, vp8(false));
    let mut n = nack(&mut viewer, &[lost.1]);
    core.handle_datagram(addr(6000), &mut n, now, &mut out);
    let resent = viewer_sees(&mut viewer, take_for(&mut out, addr(6000)));
    assert_eq!(resent.len(), 1);
    let (ssrc, _, pt, payload) = &resent[0];
    assert_eq!((*ssrc, *pt), (RTX_SSRC, 101));
    let (osn, original) = rtx::decapsulate(payload).unwrap();
    assert_eq!(osn, lost.1, "RFC 4588: the original sequence number leads");
    assert_eq!(original, &lost.3[..]);
}

#[test]
fn publisher_repairs_are_restored_in_place() {
    let (mut core, mut out, mut publisher, mut viewer, now) = start(false);
    // 11 is lost on the way in.
    let seen = viewer_sees(&mut viewer, publish(&mut core, &mut out, &mut publisher, &[10, 12], now));
    assert_eq!(seen[1].1, seen[0].1.wrapping_add(2), "the gap stays visible, so the viewer NACKs it");
    // The publisher repairs 11 on its RTX stream.
    let original = vp8(false);
    let mut body = vec![0u8; 200];
    let n = rtx::encapsulate(&mut body, 11, &original).unwrap();
    let f = rtp::HeaderFields { marker: true, payload_type: 97, sequence: 500, timestamp: 1110, ssrc: PUB_RTX_SSRC };
    let mut pkt = vec![0u8; 300];
    let h = rtp::write_header(&mut pkt, &f).unwrap();
    pkt[h..h + n].copy_from_slice(&body[..n]);
    pkt.truncate(h + n);
    let mut p = protect(&mut publisher.tx, &pkt);
    core.handle_datagram(addr(5000), &mut p, now, &mut out);
    let got = viewer_sees(&mut viewer, take_for(&mut out, addr(6000)));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, SUB_SSRC, "restored onto the viewer's primary stream");
    assert_eq!(got[0].1, seen[0].1.wrapping_add(1), "in the slot the loss left");
    assert_eq!(got[0].3, original);
}

#[test]
fn extensions_written_under_the_subscribers_ids() {
    let now = Instant::now();
    let mut core = ShardCore::new(0);
    let mut out = Outbox::new(1);
    let mut up = up_spec();
    up.ext = ExtIds { video_orientation: Some(13), ..Default::default() };
    let mut down = down_spec();
    down.mid = "v1".into();
    down.ext = ExtIds { mid: Some(4), transport_cc: Some(3), abs_send_time: Some(2), video_orientation: Some(7), ..Default::default() };
    let (mut publisher, mut viewer) = setup_with(&mut core, &mut out, now, SrtpProfile::AeadAes128Gcm, up, down);
    out.clear_datagrams();
    let mut pkt = vec![0u8; 300];
    let f = rtp::HeaderFields { marker: true, payload_type: 96, sequence: 1, timestamp: 1, ssrc: PUB_SSRC };
    let h = rtp::write_header_with_extensions(&mut pkt, &f, &[(13, &[3]), (9, &[1, 2, 3])]).unwrap();
    let payload = vp8(true);
    pkt[h..h + payload.len()].copy_from_slice(&payload);
    pkt.truncate(h + payload.len());
    let mut tw = Vec::new();
    for later in 0..2 {
        let mut p = protect(&mut publisher.tx, &pkt);
        core.handle_datagram(addr(5000), &mut p, now + Duration::from_millis(later), &mut out);
        pkt[3] += 1; // next sequence number
        for mut d in take_for(&mut out, addr(6000)) {
            let len = d.len();
            let n = viewer.rx.unprotect_rtp(&mut d, len).unwrap();
            let h = rtp::parse(&d[..n]).unwrap();
            let els: Vec<(u8, Vec<u8>)> = h.extensions(&d[..n]).map(|(i, v)| (i, v.to_vec())).collect();
            let ids: Vec<u8> = els.iter().map(|(i, _)| *i).collect();
            assert_eq!(ids, vec![4, 2, 3, 7], "mid, abs-send-time, transport-cc, orientation; unknown id 9 dropped");
            assert_eq!(els[0].1, b"v1");
            assert_eq!(els[3].1, vec![3]);
            tw.push(u16::from_be_bytes([els[2].1[0], els[2].1[1]]));
            assert_eq!(h.payload(&d[..n]), &payload[..]);
        }
    }
    assert_eq!(tw.len(), 2);
    assert_eq!(tw[1], tw[0].wrapping_add(1), "transport-wide numbers count per session");
}

/// Reads every RTCP packet the publisher got.
fn publisher_rtcp(publisher: &mut Peer, out: &mut Outbox) -> Vec<(u8, Vec<u16>)> {
    let mut seen = Vec::new();
    for mut d in take_for(out, addr(5000)) {
        let len = d.len();
        let n = publisher.rx.unprotect_rtcp(&mut d, len).expect("publisher decrypts RTCP");
        for p in rtcp::iter_compound(&d[..n]).flatten() {
            match p {
                RtcpPacket::Nack { items, .. } => seen.push((1, items.lost_sequences().collect())),
                RtcpPacket::TransportCc { .. } => seen.push((15, Vec::new())),
                RtcpPacket::Pli { .. } => seen.push((2, Vec::new())),
                _ => {}
            }
        }
    }
    seen
}

#[test]
fn upstream_losses_are_nacked_then_given_up() {
    let (mut core, mut out, mut publisher, _viewer, now) = start(false);
    publish(&mut core, &mut out, &mut publisher, &[10, 11, 14, 15], now);
    publisher_rtcp(&mut publisher, &mut out);
    let mut nacked = Vec::new();
    let mut t = now;
    for _ in 0..100 {
        t += Duration::from_millis(20);
        core.tick(t, &mut out);
        for (kind, seqs) in publisher_rtcp(&mut publisher, &mut out) {
            if kind == 1 {
                nacked.extend(seqs);
            }
        }
    }
    assert!(nacked.contains(&12) && nacked.contains(&13), "lost 12 and 13 were NACKed: {nacked:?}");
    assert!(nacked.len() > 2, "and retried");
    assert!(nacked.len() < 60, "a bounded number of times: {}", nacked.len());
    assert!(core.stats.nacks_sent as usize >= nacked.len());
    assert!(core.stats.losses_unrecoverable >= 1, "given up after the bound, asking for a keyframe");
}

#[test]
fn transport_wide_feedback_to_the_publisher() {
    let now = Instant::now();
    let mut core = ShardCore::new(0);
    let mut out = Outbox::new(1);
    let mut up = up_spec();
    up.ext = ExtIds { transport_cc: Some(3), ..Default::default() };
    up.feedback = Feedback { transport_cc: true, ..Default::default() };
    let (mut publisher, _viewer) =
        setup_with(&mut core, &mut out, now, SrtpProfile::AeadAes128Gcm, up, down_spec());
    out.clear_datagrams();
    for seq in 0..10u16 {
        let mut pkt = vec![0u8; 300];
        let f = rtp::HeaderFields { marker: false, payload_type: 96, sequence: seq, timestamp: 1, ssrc: PUB_SSRC };
        let tw = (100 + seq).to_be_bytes();
        let h = rtp::write_header_with_extensions(&mut pkt, &f, &[(3, &tw)]).unwrap();
        let payload = vp8(seq == 0);
        pkt[h..h + payload.len()].copy_from_slice(&payload);
        pkt.truncate(h + payload.len());
        let mut p = protect(&mut publisher.tx, &pkt);
        core.handle_datagram(addr(5000), &mut p, now + Duration::from_millis(u64::from(seq) * 5), &mut out);
    }
    publisher_rtcp(&mut publisher, &mut out);
    let mut feedback = 0;
    let mut t = now;
    for _ in 0..10 {
        t += Duration::from_millis(50);
        core.tick(t, &mut out);
        feedback += publisher_rtcp(&mut publisher, &mut out).iter().filter(|(k, _)| *k == 15).count();
    }
    assert!(feedback >= 1, "transport-cc feedback went to the publisher");
}

/// A livestream's encoder reconnects: the old uptrack is detached, the
/// viewer's downtrack moves to the new one, and the viewer's stream goes on
/// with the same SSRC, the next sequence number, a later timestamp, from
/// the new source's keyframe.
#[test]
fn downtrack_follows_a_new_publisher() {
    use crate::msg::{Command, SessionId, TrackId};
    use crate::shard::tests::{binding, key, session};
    let (mut core, mut out, mut publisher, mut viewer, now) = start(false);
    let first = viewer_sees(&mut viewer, publish(&mut core, &mut out, &mut publisher, &[10, 11, 12], now));
    let last = first.last().unwrap().clone();

    const PUB2: SessionId = SessionId(9);
    const TRACK2: TrackId = TrackId(20);
    core.handle_command(Command::DetachUptrack(crate::shard::tests::TRACK), now, &mut out);
    core.handle_command(Command::RemoveSession(crate::shard::tests::PUB), now, &mut out);
    assert!(take_for(&mut out, addr(6000)).is_empty(), "no BYE: the viewer's stream is kept");
    core.handle_command(session(PUB2, "pub2", None), now, &mut out);
    let mut up = up_spec();
    up.track = TRACK2;
    up.session = PUB2;
    up.ssrc = Some(0x9999);
    core.handle_command(Command::AddUptrack(up), now, &mut out);
    let later = now + Duration::from_secs(1);
    core.handle_command(Command::MoveDowntrack { session: crate::shard::tests::SUB, from: crate::shard::tests::TRACK, to: TRACK2 }, later, &mut out);
    let mut b = binding("pub2");
    core.handle_datagram(addr(5002), &mut b, later, &mut out);
    core.handle_command(Command::SetSrtp { session: PUB2, tx: key(5, SrtpProfile::AeadAes128Gcm), rx: key(6, SrtpProfile::AeadAes128Gcm) }, later, &mut out);
    core.tick(later, &mut out);
    out.clear_datagrams();
    let mut tx2 = crate::srtp::SrtpContext::new(&key(6, SrtpProfile::AeadAes128Gcm)).unwrap();
    let mut got = Vec::new();
    for (i, seq) in [500u16, 501, 502].into_iter().enumerate() {
        let mut pkt = rtp_packet(seq, 777_000 + u32::from(seq), &vp8(i == 1));
        pkt[8..12].copy_from_slice(&0x9999u32.to_be_bytes());
        let mut p = protect(&mut tx2, &pkt);
        core.handle_datagram(addr(5002), &mut p, later, &mut out);
        got.extend(take_for(&mut out, addr(6000)));
    }
    let mut seen = Vec::new();
    for mut d in got {
        let len = d.len();
        let n = viewer.rx.unprotect_rtp(&mut d, len).expect("viewer decrypts");
        let h = rtp::parse(&d[..n]).unwrap();
        seen.push((h.ssrc, h.sequence, h.timestamp));
    }
    assert_eq!(seen.len(), 2, "from the keyframe on: {seen:?}");
    assert!(seen.iter().all(|(ssrc, _, _)| *ssrc == SUB_SSRC), "same SSRC");
    assert_eq!(seen[0].1, last.1.wrapping_add(1), "the next sequence number");
    assert_eq!(seen[1].1, last.1.wrapping_add(2));
    let _ = first;
}

/// RFC 2198 audio redundancy passes through to a subscriber that
/// negotiated it, and is reduced to the primary Opus block for one that
/// did not.
#[test]
fn red_passes_through_or_is_reduced_to_its_primary() {
    use crate::msg::{CodecKind, MediaKind};
    for viewer_red in [Some(120u8), None] {
        let now = Instant::now();
        let mut core = ShardCore::new(0);
        let mut out = Outbox::new(1);
        let mut up = up_spec();
        up.kind = MediaKind::Audio;
        up.codec = CodecKind::Opus;
        up.payload_type = 111;
        up.clock_rate = 48000;
        up.red_payload_type = Some(63);
        let mut down = down_spec();
        down.kind = MediaKind::Audio;
        down.payload_type = 109;
        down.clock_rate = 48000;
        down.red_payload_type = viewer_red;
        let (mut publisher, mut viewer) = setup_with(&mut core, &mut out, now, SrtpProfile::AeadAes128Gcm, up, down);
        out.clear_datagrams();
        // One redundant block of 2 bytes (offset 960), then the primary.
        let red_payload = [0x80 | 111, 0x0f, 0x00, 2, 111, 0xaa, 0xbb, b'o', b'p', b'u', b's'];
        let mut pkt = rtp_packet(7, 4800, &red_payload);
        pkt[1] = 63;
        let mut p = protect(&mut publisher.tx, &pkt);
        core.handle_datagram(addr(5000), &mut p, now, &mut out);
        let seen = viewer_sees(&mut viewer, take_for(&mut out, addr(6000)));
        assert_eq!(seen.len(), 1);
        match viewer_red {
            Some(pt) => assert_eq!((seen[0].2, &seen[0].3[..]), (pt, &red_payload[..]), "RED as is"),
            None => assert_eq!((seen[0].2, &seen[0].3[..]), (109, &b"opus"[..]), "the primary, as Opus"),
        }
        let counted = (core.stats.red_passed, core.stats.red_reduced);
        assert_eq!(counted, if viewer_red.is_some() { (1, 0) } else { (0, 1) });
    }
}
