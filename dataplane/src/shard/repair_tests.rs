//! Repairs driven by the subscriber's transport-wide feedback, through the
//! shard: a loss the feedback reports is resent when no NACK asked for it
//! (the NACK was lost) or when the resend itself was lost, and not when a
//! NACK's resend is already on its way.

use std::time::{Duration, Instant};

use crate::forward::rtx;
use crate::forward::twcc_receiver::TwccReceiver;
use crate::msg::{ExtIds, Feedback, RtxSpec};
use crate::rtcp;
use crate::rtp;
use crate::shard::core::ShardCore;
use crate::shard::outbox::Outbox;
use crate::shard::forward_tests::{nack, publish};
use crate::shard::tests::{addr, down_spec, setup_with, take_for, up_spec, Peer, SUB_SSRC};
use crate::srtp::SrtpProfile;

const RTX_SSRC: u32 = 0x7777;
const TW_ID: u8 = 3;
const MS: Duration = Duration::from_millis(1);

/// One packet as the viewer decrypted it.
#[derive(Debug, Clone, Copy)]
struct Got {
    ssrc: u32,
    /// The sequence number it stands for: its own, or the RTX OSN.
    seq: u16,
    tw: u16,
}

struct Viewer {
    peer: Peer,
    twcc: TwccReceiver,
}

impl Viewer {
    /// Decrypts what sfud sent the viewer.
    fn decode(&mut self, got: Vec<Vec<u8>>) -> Vec<Got> {
        got.into_iter()
            .map(|mut d| {
                let len = d.len();
                let n = self.peer.rx.unprotect_rtp(&mut d, len).expect("viewer decrypts");
                let h = rtp::parse(&d[..n]).unwrap();
                let tw = rtp::extension(&d[..n], &h, TW_ID).expect("stamped");
                let tw = u16::from_be_bytes([tw[0], tw[1]]);
                let seq = match h.ssrc {
                    RTX_SSRC => rtx::decapsulate(h.payload(&d[..n])).unwrap().0,
                    _ => h.sequence,
                };
                Got { ssrc: h.ssrc, seq, tw }
            })
            .collect()
    }

    fn arrived(&mut self, got: &[Got], at: Instant) {
        for g in got {
            self.twcc.on_packet(g.tw, at);
        }
    }

    /// The viewer's transport-cc feedback, due at `at`, as sent on the wire.
    fn feedback(&mut self, at: Instant) -> Vec<u8> {
        let mut buf = vec![0u8; 1200];
        let n = rtcp::write_rr(&mut buf, 0x3333, &[]).unwrap();
        let m = self.twcc.poll_feedback(at, SUB_SSRC, &mut buf[n..]).expect("feedback due");
        let len = self.peer.tx.protect_rtcp(&mut buf, n + m).unwrap();
        buf.truncate(len);
        buf
    }

}

fn start(nack: bool) -> (ShardCore, Outbox, Peer, Viewer, Instant) {
    let now = Instant::now();
    let mut core = ShardCore::new(0);
    let mut out = Outbox::new(1);
    let mut down = down_spec();
    down.ext = ExtIds { transport_cc: Some(TW_ID), ..Default::default() };
    down.feedback = Feedback { nack, transport_cc: true, ..Default::default() };
    down.rtx = Some(RtxSpec { ssrc: RTX_SSRC, payload_type: 101 });
    let (publisher, peer) = setup_with(&mut core, &mut out, now, SrtpProfile::AeadAes128Gcm, up_spec(), down);
    out.clear_datagrams();
    (core, out, publisher, Viewer { peer, twcc: TwccReceiver::new(0x3333) }, now)
}

#[test]
fn a_loss_whose_nack_was_lost_is_repaired_and_so_is_a_lost_repair() {
    let (mut core, mut out, mut publisher, mut viewer, now) = start(true);
    let mut got = viewer.decode(publish(&mut core, &mut out, &mut publisher, &[10, 11, 12, 13], now));
    assert_eq!(got.len(), 4);
    // The second is lost on the way, and so is the viewer's NACK for it.
    let lost = got.remove(1);
    viewer.arrived(&got, now + MS);
    let mut fb = viewer.feedback(now + 60 * MS);
    core.handle_datagram(addr(6000), &mut fb, now + 61 * MS, &mut out);
    let repair = viewer.decode(take_for(&mut out, addr(6000)));
    assert_eq!(repair.len(), 1, "{repair:?}");
    assert_eq!((repair[0].ssrc, repair[0].seq), (RTX_SSRC, lost.seq), "the lost packet, on the repair stream");
    assert_eq!(core.stats.loss_repairs, 1);
    // The repair is lost too: the next feedback says so, and it goes again.
    let next = viewer.decode(publish(&mut core, &mut out, &mut publisher, &[14], now + 80 * MS));
    viewer.arrived(&next, now + 81 * MS);
    let mut fb = viewer.feedback(now + 120 * MS);
    core.handle_datagram(addr(6000), &mut fb, now + 121 * MS, &mut out);
    let again = viewer.decode(take_for(&mut out, addr(6000)));
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].seq, lost.seq);
    assert_ne!(again[0].tw, repair[0].tw, "a new transport-wide number, so its own fate is reported");
    assert_eq!(core.stats.loss_repairs, 2);
    // This one arrives: later feedback reports nothing new to repair.
    viewer.arrived(&again, now + 122 * MS);
    let next = viewer.decode(publish(&mut core, &mut out, &mut publisher, &[15], now + 140 * MS));
    viewer.arrived(&next, now + 141 * MS);
    let mut fb = viewer.feedback(now + 180 * MS);
    core.handle_datagram(addr(6000), &mut fb, now + 181 * MS, &mut out);
    assert!(viewer.decode(take_for(&mut out, addr(6000))).is_empty());
    assert_eq!(core.stats.loss_repairs, 2);
}

#[test]
fn a_loss_a_nack_already_repaired_is_not_sent_twice() {
    let (mut core, mut out, mut publisher, mut viewer, now) = start(true);
    let mut got = viewer.decode(publish(&mut core, &mut out, &mut publisher, &[10, 11, 12], now));
    let lost = got.remove(1);
    viewer.arrived(&got, now + MS);
    // The viewer NACKs at once and the resend arrives.
    let mut n = nack(&mut viewer.peer, &[lost.seq]);
    core.handle_datagram(addr(6000), &mut n, now + 2 * MS, &mut out);
    let resent = viewer.decode(take_for(&mut out, addr(6000)));
    assert_eq!(resent.len(), 1);
    viewer.arrived(&resent, now + 3 * MS);
    // The feedback still reports the original lost: old news.
    let mut fb = viewer.feedback(now + 60 * MS);
    core.handle_datagram(addr(6000), &mut fb, now + 61 * MS, &mut out);
    assert!(viewer.decode(take_for(&mut out, addr(6000))).is_empty());
    assert_eq!((core.stats.retransmissions, core.stats.loss_repairs), (1, 0));
}

#[test]
fn a_subscriber_without_nack_gets_no_repairs() {
    let (mut core, mut out, mut publisher, mut viewer, now) = start(false);
    let mut got = viewer.decode(publish(&mut core, &mut out, &mut publisher, &[10, 11, 12], now));
    got.remove(1);
    viewer.arrived(&got, now + MS);
    let mut fb = viewer.feedback(now + 60 * MS);
    core.handle_datagram(addr(6000), &mut fb, now + 61 * MS, &mut out);
    assert!(viewer.decode(take_for(&mut out, addr(6000))).is_empty());
    assert_eq!(core.stats.loss_repairs, 0);
}
