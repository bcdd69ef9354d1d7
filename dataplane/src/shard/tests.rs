//! The shard core without sockets: claims, SRTP in, rewrite, SRTP out,
//! drops by reason, keyframe requests, and the two-shard hand-off.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::msg::{CodecKind, Command, DowntrackSpec, Event, MediaKind, SessionId, SessionSpec, TrackId, UptrackSpec};
use crate::rtcp::{self, RtcpPacket};
use crate::shard::core::ShardCore;
use crate::shard::outbox::{Dest, Outbox};
use crate::srtp::{MasterKey, SrtpContext, SrtpProfile};
use crate::stats::DropReason;
use crate::stun::{self, Class, MessageWriter};
use crate::{rtp, shard::peer::PeerMsg};

pub(super) const PUB: SessionId = SessionId(1);
pub(super) const SUB: SessionId = SessionId(2);
pub(super) const TRACK: TrackId = TrackId(10);
pub(super) const PUB_SSRC: u32 = 0x1111;
pub(super) const SUB_SSRC: u32 = 0x2222;

pub(super) fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub(super) fn key(seed: u8, profile: SrtpProfile) -> MasterKey {
    MasterKey { profile, key: [seed; 16], salt: [seed.wrapping_add(1); 14] }
}

pub(super) fn session(id: SessionId, ufrag: &str, pinned: Option<usize>) -> Command {
    Command::AddSession(SessionSpec {
        id,
        ufrag: ufrag.into(),
        pwd: format!("{ufrag}-password-0123456789"),
        remote_ufrag: "peer".into(),
        pinned_shard: pinned,
    })
}

pub(super) fn binding(ufrag: &str) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut w = MessageWriter::new(&mut buf, Class::Request, stun::method::BINDING, &[7; 12]).unwrap();
    w.add_attr(stun::attr::USERNAME, format!("{ufrag}:peer").as_bytes()).unwrap();
    w.add_u32(stun::attr::PRIORITY, 12345).unwrap();
    w.add_u64(stun::attr::ICE_CONTROLLING, 99).unwrap();
    w.add_attr(stun::attr::USE_CANDIDATE, &[]).unwrap();
    w.add_message_integrity(format!("{ufrag}-password-0123456789").as_bytes()).unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

pub(super) fn vp8(keyframe: bool) -> Vec<u8> {
    // Payload descriptor: S=1, PID=0; then the VP8 frame tag's P bit (0 = key).
    let mut p = vec![0x10, if keyframe { 0x00 } else { 0x01 }];
    p.extend_from_slice(&[0xAB; 100]);
    p
}

pub(super) fn rtp_packet(seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 1500];
    let f = rtp::HeaderFields { marker: true, payload_type: 96, sequence: seq, timestamp: ts, ssrc: PUB_SSRC };
    let n = rtp::write_header(&mut buf, &f).unwrap();
    buf[n..n + payload.len()].copy_from_slice(payload);
    buf.truncate(n + payload.len());
    buf
}

/// The peer's side of the keys: what it protects with and unprotects with.
pub(super) struct Peer {
    pub(super) tx: SrtpContext,
    pub(super) rx: SrtpContext,
}

pub(super) fn up_spec() -> UptrackSpec {
    UptrackSpec {
        track: TRACK,
        session: PUB,
        kind: MediaKind::Video,
        codec: CodecKind::Vp8,
        payload_type: 96,
        clock_rate: 90000,
        ssrc: Some(PUB_SSRC),
        mid: "0".into(),
        rtx_ssrc: None,
        rtx_payload_type: None,
        red_payload_type: None,
        ext: Default::default(),
        feedback: Default::default(),
            layers: Vec::new(),
    }
}

pub(super) fn down_spec() -> DowntrackSpec {
    DowntrackSpec {
        session: SUB,
        track: TRACK,
        kind: MediaKind::Video,
        ssrc: SUB_SSRC,
        payload_type: 100,
        clock_rate: 90000,
        mid: String::new(),
        rtx: None,
        red_payload_type: None,
        ext: Default::default(),
        feedback: Default::default(),
        priority: 0,
    }
}

/// PUB publishing `up_spec()` and SUB subscribed by `down_spec()`, both
/// registered on a fresh shard and neither claimed there yet: what a shard
/// sees of a session before its ICE reaches it.
pub(super) fn registered_unclaimed(now: Instant) -> (ShardCore, Outbox) {
    let mut core = ShardCore::new(0);
    let mut out = Outbox::new(1);
    core.handle_command(session(PUB, "pubu", None), now, &mut out);
    core.handle_command(session(SUB, "subu", None), now, &mut out);
    core.handle_command(Command::AddUptrack(up_spec()), now, &mut out);
    core.handle_command(Command::AddDowntrack(down_spec()), now, &mut out);
    (core, out)
}

fn setup(core: &mut ShardCore, out: &mut Outbox, now: Instant, profile: SrtpProfile) -> (Peer, Peer) {
    setup_with(core, out, now, profile, up_spec(), down_spec())
}

/// Publisher (PUB at port 5000) and subscriber (SUB at 6000) on one shard,
/// connected and keyed: returns the publisher's and the viewer's ends.
pub(super) fn setup_with(
    core: &mut ShardCore,
    out: &mut Outbox,
    now: Instant,
    profile: SrtpProfile,
    up: UptrackSpec,
    down: DowntrackSpec,
) -> (Peer, Peer) {
    core.handle_command(session(PUB, "pubu", None), now, out);
    core.handle_command(session(SUB, "subu", None), now, out);
    core.handle_command(Command::AddUptrack(up), now, out);
    core.handle_command(Command::AddDowntrack(down), now, out);
    for (ufrag, port) in [("pubu", 5000), ("subu", 6000)] {
        let mut b = binding(ufrag);
        core.handle_datagram(addr(port), &mut b, now, out);
    }
    // Each session: server tx = seed a, server rx = seed b.
    core.handle_command(Command::SetSrtp { session: PUB, tx: key(1, profile), rx: key(2, profile) }, now, out);
    core.handle_command(Command::SetSrtp { session: SUB, tx: key(3, profile), rx: key(4, profile) }, now, out);
    let peer = |tx: u8, rx: u8| Peer {
        tx: SrtpContext::new(&key(tx, profile)).unwrap(),
        rx: SrtpContext::new(&key(rx, profile)).unwrap(),
    };
    (peer(2, 1), peer(4, 3))
}

pub(super) fn protect(ctx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + 64, 0);
    let n = ctx.protect_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

/// Datagrams queued for `dst`, drained from the outbox.
pub(super) fn take_for(out: &mut Outbox, dst: SocketAddr) -> Vec<Vec<u8>> {
    let v = (0..out.len()).map(|i| out.datagram(i)).filter(|(_, d)| *d == Dest::Udp(dst)).map(|(b, _)| b.to_vec()).collect();
    out.clear_datagrams();
    v
}

#[test]
fn claims_answers_stun_and_reports_claims() {
    let now = Instant::now();
    let mut core = ShardCore::new(0);
    let mut out = Outbox::new(1);
    core.handle_command(session(PUB, "pubu", None), now, &mut out);
    let mut b = binding("pubu");
    core.handle_datagram(addr(5000), &mut b, now, &mut out);
    let replies = take_for(&mut out, addr(5000));
    assert_eq!(replies.len(), 1);
    let msg = stun::Message::parse(&replies[0]).unwrap();
    assert_eq!(msg.class(), Class::Success);
    assert_eq!(msg.xor_mapped_address(), Some(addr(5000)));
    assert!(matches!(out.events.as_slice(), [Event::Claimed { session: PUB, shard: 0, .. }]));
    assert!(core.owns(PUB));

    // A forged Binding (wrong password) neither claims nor gets an answer.
    core.handle_command(session(SUB, "subu", None), now, &mut out);
    let mut forged = binding("subu");
    let n = forged.len();
    forged[n - 13] ^= 0xff; // inside MESSAGE-INTEGRITY's HMAC
    core.handle_datagram(addr(6000), &mut forged, now, &mut out);
    assert!(take_for(&mut out, addr(6000)).is_empty());
    assert!(!core.owns(SUB));
    // Unknown ufrag and unknown source are counted.
    let mut unknown = binding("nobody");
    core.handle_datagram(addr(7000), &mut unknown, now, &mut out);
    let mut stray = rtp_packet(1, 1, &vp8(true));
    core.handle_datagram(addr(7001), &mut stray, now, &mut out);
    assert_eq!(core.stats.drops_for(DropReason::UnknownUfrag), 1);
    assert_eq!(core.stats.drops_for(DropReason::UnknownSource), 1);
}

fn forwards_rewritten(profile: SrtpProfile) {
    let now = Instant::now();
    let mut core = ShardCore::new(0);
    let mut out = Outbox::new(1);
    let (mut publisher, mut viewer) = setup(&mut core, &mut out, now, profile);
    out.clear_datagrams();

    // Before the first keyframe, video is held back (and counted).
    let mut p = protect(&mut publisher.tx, &rtp_packet(100, 9000, &vp8(false)));
    core.handle_datagram(addr(5000), &mut p, now, &mut out);
    assert!(take_for(&mut out, addr(6000)).is_empty());
    assert_eq!(core.stats.drops_for(DropReason::WaitingKeyframe), 1);

    let mut first_seq = None;
    for (i, key) in [true, false, false].into_iter().enumerate() {
        let i = i as u16;
        let payload = vp8(key);
        let mut p = protect(&mut publisher.tx, &rtp_packet(101 + i, 9000 + 3000 * i as u32, &payload));
        core.handle_datagram(addr(5000), &mut p, now, &mut out);
        let mut got = take_for(&mut out, addr(6000));
        assert_eq!(got.len(), 1, "packet {i} forwarded once");
        let len = got[0].len();
        let n = viewer.rx.unprotect_rtp(&mut got[0], len).expect("viewer can decrypt");
        let h = rtp::parse(&got[0][..n]).unwrap();
        assert_eq!(h.ssrc, SUB_SSRC);
        assert_eq!(h.payload_type, 100);
        assert_eq!(h.payload(&got[0][..n]), &payload[..]);
        let first = *first_seq.get_or_insert(h.sequence.wrapping_sub(i));
        assert_eq!(h.sequence, first.wrapping_add(i), "contiguous rewritten sequence numbers");
    }
    assert_eq!(core.stats.rtp_forwarded, 3);

    // A tampered packet and a replay are dropped and counted.
    let mut good = protect(&mut publisher.tx, &rtp_packet(200, 20000, &vp8(false)));
    let mut replay = good.clone();
    let mut bad = protect(&mut publisher.tx, &rtp_packet(201, 20000, &vp8(false)));
    let last = bad.len() - 1;
    bad[last] ^= 1;
    core.handle_datagram(addr(5000), &mut good, now, &mut out);
    core.handle_datagram(addr(5000), &mut replay, now, &mut out);
    core.handle_datagram(addr(5000), &mut bad, now, &mut out);
    assert_eq!(take_for(&mut out, addr(6000)).len(), 1);
    assert_eq!(core.stats.drops_for(DropReason::Replay), 1);
    assert_eq!(core.stats.drops_for(DropReason::SrtpAuth), 1);

    // A PLI from the viewer for its SSRC reaches the publisher for its SSRC.
    let mut pli = vec![0u8; 200];
    let n = rtcp::write_rr(&mut pli, 0x3333, &[]).unwrap();
    let m = rtcp::write_pli(&mut pli[n..], 0x3333, SUB_SSRC).unwrap();
    let n2 = viewer.tx.protect_rtcp(&mut pli, n + m).unwrap();
    pli.truncate(n2);
    core.handle_datagram(addr(6000), &mut pli, now + Duration::from_secs(1), &mut out);
    let mut to_pub = take_for(&mut out, addr(5000));
    let mut saw_pli = false;
    for d in &mut to_pub {
        let len = d.len();
        let n = publisher.rx.unprotect_rtcp(d, len).expect("publisher can decrypt RTCP");
        for p in rtcp::iter_compound(&d[..n]) {
            if let Ok(RtcpPacket::Pli { media_ssrc, .. }) = p {
                assert_eq!(media_ssrc, PUB_SSRC);
                saw_pli = true;
            }
        }
    }
    assert!(saw_pli, "PLI forwarded to the publisher");
}

#[test]
fn forwards_rewritten_gcm() {
    forwards_rewritten(SrtpProfile::AeadAes128Gcm);
}

#[test]
fn forwards_rewritten_cm_hmac() {
    forwards_rewritten(SrtpProfile::Aes128CmHmacSha1_80);
}

#[test]
fn reports_go_out_each_second() {
    let now = Instant::now();
    let mut core = ShardCore::new(0);
    let mut out = Outbox::new(1);
    let (mut publisher, mut viewer) = setup(&mut core, &mut out, now, SrtpProfile::AeadAes128Gcm);
    let mut p = protect(&mut publisher.tx, &rtp_packet(1, 1000, &vp8(true)));
    core.handle_datagram(addr(5000), &mut p, now, &mut out);
    out.clear_datagrams();
    core.tick(now + Duration::from_secs(2), &mut out);
    let kinds = |d: &mut Vec<u8>, ctx: &mut SrtpContext| {
        let len = d.len();
        let n = ctx.unprotect_rtcp(d, len).unwrap();
        rtcp::iter_compound(&d[..n])
            .filter_map(Result::ok)
            .map(|p| match p {
                RtcpPacket::ReceiverReport { .. } => "rr",
                RtcpPacket::SenderReport { .. } => "sr",
                _ => "other",
            })
            .collect::<Vec<_>>()
    };
    let mut to_pub = (0..out.len()).filter(|&i| out.datagram(i).1 == Dest::Udp(addr(5000))).map(|i| out.datagram(i).0.to_vec()).collect::<Vec<_>>();
    let mut to_sub = take_for(&mut out, addr(6000));
    assert!(to_pub.iter_mut().any(|d| kinds(d, &mut publisher.rx).contains(&"rr")), "RR to the publisher");
    assert!(to_sub.iter_mut().any(|d| kinds(d, &mut viewer.rx).contains(&"sr")), "SR to the viewer");
}

/// Publisher on shard 0, viewer pinned to shard 1: the viewer's Binding
/// lands on shard 0 and is steered; media crosses as one batch per receive.
#[test]
fn two_shards_steer_and_batch() {
    let now = Instant::now();
    let profile = SrtpProfile::AeadAes128Gcm;
    let mut s0 = ShardCore::new(0);
    let mut s1 = ShardCore::new(1);
    let mut o0 = Outbox::new(2);
    let mut o1 = Outbox::new(2);
    let up = up_spec();
    let down = down_spec();
    for (core, out) in [(&mut s0, &mut o0), (&mut s1, &mut o1)] {
        core.handle_command(session(PUB, "pubu", None), now, out);
        core.handle_command(session(SUB, "subu", Some(1)), now, out);
        core.handle_command(Command::AddUptrack(up.clone()), now, out);
        core.handle_command(Command::AddDowntrack(down.clone()), now, out);
    }
    let mut b = binding("pubu");
    s0.handle_datagram(addr(5000), &mut b, now, &mut o0);
    let mut b = binding("subu");
    s0.handle_datagram(addr(6000), &mut b, now, &mut o0);
    assert!(!s0.owns(SUB), "pinned elsewhere: shard 0 must not claim");
    // Deliver shard 0's peer messages (Claimed, Steered) to shard 1.
    for (to, msg) in std::mem::take(&mut o0.peer) {
        assert_eq!(to, 1);
        s1.handle_peer(0, msg, now, &mut o1);
    }
    assert!(s1.owns(SUB));
    assert_eq!(take_for(&mut o1, addr(6000)).len(), 1, "shard 1 answered the steered Binding");
    for (to, msg) in std::mem::take(&mut o1.peer) {
        assert_eq!(to, 0);
        s0.handle_peer(1, msg, now, &mut o0);
    }
    s0.handle_command(Command::SetSrtp { session: PUB, tx: key(1, profile), rx: key(2, profile) }, now, &mut o0);
    s1.handle_command(Command::SetSrtp { session: SUB, tx: key(3, profile), rx: key(4, profile) }, now, &mut o1);
    let mut pub_tx = SrtpContext::new(&key(2, profile)).unwrap();
    let mut sub_rx = SrtpContext::new(&key(3, profile)).unwrap();
    o0.clear_datagrams();
    o0.peer.clear();
    o1.peer.clear();

    for i in 0..5u16 {
        let mut p = protect(&mut pub_tx, &rtp_packet(10 + i, 500, &vp8(i == 0)));
        s0.handle_datagram(addr(5000), &mut p, now, &mut o0);
    }
    let batch = o0.media[1].take().expect("one batch for shard 1");
    assert_eq!(batch.items.len(), 5, "five packets, one message");
    assert!(o0.media[0].is_none());
    s1.handle_peer(0, PeerMsg::Media(batch), now, &mut o1);
    let mut got = take_for(&mut o1, addr(6000));
    assert_eq!(got.len(), 5);
    for d in &mut got {
        let len = d.len();
        let n = sub_rx.unprotect_rtp(d, len).unwrap();
        assert_eq!(rtp::parse(&d[..n]).unwrap().ssrc, SUB_SSRC);
    }
}

/// A video downtrack that never got its keyframe keeps asking, about once a
/// second, rather than trusting a single PLI.
#[test]
fn waiting_downtrack_re_requests_keyframes() {
    let now = Instant::now();
    let mut core = ShardCore::new(0);
    let mut out = Outbox::new(1);
    let _peers = setup(&mut core, &mut out, now, SrtpProfile::AeadAes128Gcm);
    core.tick(now + Duration::from_millis(100), &mut out);
    let first = core.stats.plis_sent;
    assert!(first >= 1, "a PLI goes out for the new downtrack");
    for i in 2..5u64 {
        core.tick(now + Duration::from_millis(1200 * i), &mut out);
    }
    assert!(core.stats.plis_sent >= first + 3, "re-requested while waiting: {} PLIs", core.stats.plis_sent);
}

/// Send state goes only when its stream is quiet *and* no longer negotiated:
/// a downtrack that pauses keeps its rollover counter however long it is idle.
#[test]
fn srtp_send_state_reaped_only_when_not_negotiated() {
    let now = Instant::now();
    let mut core = ShardCore::new(0);
    let mut out = Outbox::new(1);
    let (mut publisher, _viewer) = setup(&mut core, &mut out, now, SrtpProfile::AeadAes128Gcm);
    let mut p = protect(&mut publisher.tx, &rtp_packet(100, 9000, &vp8(true)));
    core.handle_datagram(addr(5000), &mut p, now, &mut out);
    let sending = |core: &ShardCore| core.sessions[&SUB].tx.as_ref().unwrap().rollover_counter(SUB_SSRC).is_some();
    assert!(sending(&core));
    let interval = crate::shard::core::SRTP_REAP_INTERVAL + Duration::from_secs(1);
    let mut t = now;
    for _ in 0..4 {
        t += interval;
        core.tick(t, &mut out);
    }
    assert!(sending(&core), "idle but negotiated: kept");
    core.handle_command(Command::RemoveDowntrack { session: SUB, track: TRACK }, t, &mut out);
    for _ in 0..2 {
        t += interval;
        core.tick(t, &mut out);
    }
    assert!(!sending(&core), "idle and gone from the session: reaped");
}
