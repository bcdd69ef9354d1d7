//! A viewer's receive side: the simulated network drop, loss accounting per
//! SSRC, browser-like NACKs (dataplane's NackGenerator: a few ms of reorder
//! allowance, then one request per round trip, bounded) and the count of
//! what came back, on RTX (RFC 4588) or on the primary SSRC.

use std::time::{Duration, Instant};

use dataplane::forward::nack_generator::{Arrival, NackGenerator};
use dataplane::forward::rtx;
use dataplane::forward::twcc_receiver::TwccReceiver;
use dataplane::rtcp::{write_nack, write_pli, write_remb, write_rr};
use dataplane::rtp::codec::vp8_is_keyframe;
use dataplane::rtp::{RtpHeader, SeqUnwrapper};
use dataplane::srtp::SrtpContext;

use crate::loss::Dropper;
use crate::media::{keyframe_width, mono_ns, read_trailer};
use crate::simulcast::{layer_of_width, REMB_EVERY_MS};
use crate::sdp::PT_VP8;
use crate::session::{Counters, Outq};

/// The round trip the viewer assumes when it repeats a NACK. Loopback's is
/// well under a millisecond; a browser's floor is in this range too.
const NACK_RTT: Duration = Duration::from_millis(20);

/// Sequence numbers per NACK packet: keeps one RTCP packet small and
/// `write_nack`'s scan short; a bigger backlog goes out over several polls.
const NACK_MAX_SEQS: usize = 64;

struct RxStream {
    ssrc: u32,
    unwrap: SeqUnwrapper,
    first: u64,
    highest: u64,
    /// Distinct packets received (duplicates and abandoned ones not counted).
    received: u64,
    nack: NackGenerator,
    /// Video: NACKed, as browsers do; audio is not (no `nack` offered).
    nackable: bool,
}

pub struct Receiver {
    streams: Vec<RxStream>,
    pub first_media: Option<Instant>,
    /// Our SSRC, as the sender of RTCP feedback.
    pub own_ssrc: u32,
    /// RTX payload type sfud answered, and its FID pairs (primary, repair).
    pub rtx_pt: Option<u8>,
    pub fid: Vec<(u32, u32)>,
    pub drop: Option<Dropper>,
    /// Earliest time the NACK generators may have something to do (lowered
    /// on arrival, recomputed by `poll_nacks`; early is harmless).
    nack_due: Option<Instant>,
    /// The engine keeps this session in its NACK list while true.
    pub queued: bool,
    lost: Vec<u16>,
    /// Budget viewers (livestream-simulcast) only; None elsewhere.
    pub budget: Option<Budget>,
}

/// A simulcast viewer: its class, the feedback that tells sfud its budget,
/// and what it saw.
pub struct Budget {
    pub class: u8,
    /// REMB to send every `REMB_EVERY_MS`, if the class has a budget.
    pub remb_bps: Option<u64>,
    next_remb: Option<Instant>,
    /// The transport-wide-cc extension id sfud answered, and our feedback state.
    pub twcc: Option<(u8, TwccReceiver)>,
    /// The downtrack's SSRC (REMB and transport-cc name it).
    pub media_ssrc: u32,
    /// Bytes of media received (whole datagrams, as `Counters::bytes_rx`).
    pub bytes: u64,
    /// Of those, RTX packets: with no loss in the scenario, sfud's probes.
    pub rtx_bytes: u64,
    /// The layer the last keyframe's size says, and how often that changed.
    pub layer: Option<u8>,
    pub switches: u64,
}

impl Budget {
    pub fn new(class: u8, remb_bps: Option<u64>) -> Self {
        Self { class, remb_bps, next_remb: None, twcc: None, media_ssrc: 0, bytes: 0, rtx_bytes: 0, layer: None, switches: 0 }
    }
}

impl Receiver {
    pub fn new(own_ssrc: u32) -> Self {
        Self {
            streams: Vec::new(),
            first_media: None,
            own_ssrc,
            rtx_pt: None,
            fid: Vec::new(),
            drop: None,
            nack_due: None,
            queued: false,
            lost: Vec::with_capacity(NACK_MAX_SEQS),
            budget: None,
        }
    }

    /// Budget viewers: per-class accounting, transport-cc arrivals and the
    /// layer a keyframe shows. `len` is the datagram's size.
    pub fn on_budget_rtp(&mut self, h: &RtpHeader, pkt: &[u8], len: usize, now: Instant) {
        let Some(b) = &mut self.budget else { return };
        b.bytes += len as u64;
        if Some(h.payload_type) == self.rtx_pt {
            b.rtx_bytes += len as u64;
        }
        if let Some((id, tw)) = &mut b.twcc {
            if let Some(d) = dataplane::rtp::extension(pkt, h, *id).filter(|d| d.len() >= 2) {
                tw.on_packet(u16::from_be_bytes([d[0], d[1]]), now);
            }
        }
        if h.payload_type == PT_VP8 {
            if let Some(l) = keyframe_width(h.payload(pkt)).and_then(layer_of_width) {
                if b.layer.is_some_and(|x| x != l) {
                    b.switches += 1;
                }
                b.layer = Some(l);
            }
        }
    }

    /// Budget viewers: transport-cc feedback when due (every ~50 ms, the
    /// generator's timer is 20 ms) and REMB with the budget every
    /// `REMB_EVERY_MS` (RR + REMB, as a browser's compound packet).
    pub fn poll_feedback(&mut self, now: Instant, mut tx: Option<&mut SrtpContext>, out: &mut Outq) {
        let own = self.own_ssrc;
        let Some(b) = &mut self.budget else { return };
        if self.first_media.is_none() {
            return;
        }
        let media = b.media_ssrc;
        if let Some((_, tw)) = &mut b.twcc {
            queue_rtcp(out, tx.as_deref_mut(), |buf| tw.poll_feedback(now, media, buf));
        }
        if let Some(bps) = b.remb_bps {
            if b.next_remb.is_none_or(|t| now >= t) {
                b.next_remb = Some(now + Duration::from_millis(REMB_EVERY_MS));
                queue_rtcp(out, tx, |buf| {
                    let rr = write_rr(buf, own, &[]).ok()?;
                    Some(rr + write_remb(&mut buf[rr..], own, bps, &[media]).ok()?)
                });
            }
        }
    }

    /// Decides, from the (clear) RTP header, whether the network "lost" this
    /// packet. Only video and its retransmissions are dropped: that is what
    /// NACK repairs, and what the loss runs measure.
    pub fn drop_arrival(&mut self, pt: u8) -> bool {
        let video = pt == PT_VP8 || Some(pt) == self.rtx_pt;
        video && self.drop.as_mut().is_some_and(Dropper::drop_next)
    }

    /// One unprotected RTP packet (`pkt` is the whole packet).
    pub fn on_rtp(&mut self, h: &RtpHeader, pkt: &[u8], now: Instant, c: &mut Counters) {
        if self.first_media.is_none() {
            self.first_media = Some(now);
        }
        let is_rtx = Some(h.payload_type) == self.rtx_pt;
        let (ssrc, seq, payload) = if is_rtx {
            let Ok((osn, original)) = rtx::decapsulate(h.payload(pkt)) else {
                c.other_err += 1;
                return;
            };
            match self.fid.iter().find(|(_, r)| *r == h.ssrc) {
                Some(&(p, _)) => (p, osn, original),
                None => {
                    c.other_err += 1;
                    return;
                }
            }
        } else {
            (h.ssrc, h.sequence, h.payload(pkt))
        };
        let i = match self.streams.iter().position(|s| s.ssrc == ssrc) {
            Some(i) => i,
            None if is_rtx => return,
            None => {
                let nackable = h.payload_type == PT_VP8;
                self.streams.push(RxStream {
                    ssrc,
                    unwrap: SeqUnwrapper::new(),
                    first: 0,
                    highest: 0,
                    received: 0,
                    nack: NackGenerator::new(),
                    nackable,
                });
                self.streams.len() - 1
            }
        };
        let st = &mut self.streams[i];
        let fresh = st.unwrap.highest().is_none();
        let e = st.unwrap.unwrap(seq);
        if fresh {
            st.first = e;
            st.highest = e;
        }
        let key = st.nackable && vp8_is_keyframe(payload);
        match st.nack.on_packet(e, key, now) {
            Arrival::InOrder => {
                st.received += 1;
                st.highest = st.highest.max(e);
                // Delay of first deliveries only: a repair is late by design.
                if !is_rtx {
                    if let Some(sent) = read_trailer(payload) {
                        c.delay.record(mono_ns().saturating_sub(sent));
                    }
                }
            }
            Arrival::Recovered => {
                st.received += 1;
                if is_rtx {
                    c.recovered_rtx += 1;
                } else {
                    c.recovered_primary += 1;
                }
            }
            Arrival::Duplicate | Arrival::TooOld => c.repairs_wasted += 1,
        }
        if st.nackable {
            if let Some(t) = st.nack.poll_timeout(NACK_RTT) {
                self.nack_due = Some(self.nack_due.map_or(t, |d| d.min(t)));
            }
        }
    }

    pub fn nack_due(&self) -> Option<Instant> {
        self.nack_due
    }

    /// Sends the NACKs (RR + generic NACK, as a browser's compound packet)
    /// and PLIs that are due; `tx` None sends plain RTCP (floor mode).
    pub fn poll_nacks(&mut self, now: Instant, mut tx: Option<&mut SrtpContext>, out: &mut Outq, c: &mut Counters) {
        let mut next: Option<Instant> = None;
        for st in self.streams.iter_mut().filter(|s| s.nackable) {
            self.lost.clear();
            st.nack.poll(now, NACK_RTT, &mut self.lost);
            let (own, media) = (self.own_ssrc, st.ssrc);
            for chunk in self.lost.chunks(NACK_MAX_SEQS) {
                let sent = queue_rtcp(out, tx.as_deref_mut(), |b| {
                    let rr = write_rr(b, own, &[]).ok()?;
                    Some(rr + write_nack(&mut b[rr..], own, media, chunk).ok()?)
                });
                if sent {
                    c.nacks_tx += 1;
                    c.nacked_seqs += chunk.len() as u64;
                }
            }
            if st.nack.take_keyframe_needed() {
                let sent = queue_rtcp(out, tx.as_deref_mut(), |b| {
                    let rr = write_rr(b, own, &[]).ok()?;
                    Some(rr + write_pli(&mut b[rr..], own, media).ok()?)
                });
                c.plis_tx += u64::from(sent);
            }
            if let Some(t) = st.nack.poll_timeout(NACK_RTT) {
                next = Some(next.map_or(t, |d| d.min(t)));
            }
        }
        self.nack_due = next;
    }

    /// (expected, received) over all inbound streams.
    pub fn loss_totals(&self) -> (u64, u64) {
        self.streams.iter().fold((0, 0), |(e, r), s| (e + (s.highest - s.first + 1), r + s.received))
    }
}

/// Builds an RTCP packet in the next output slot, protects it when there is
/// a context (floor mode sends plain RTCP) and queues it.
fn queue_rtcp(out: &mut Outq, tx: Option<&mut SrtpContext>, build: impl FnOnce(&mut [u8]) -> Option<usize>) -> bool {
    if out.is_full() {
        return false;
    }
    let slot = out.slot();
    let Some(len) = build(slot) else { return false };
    let n = match tx {
        Some(ctx) => match ctx.protect_rtcp(slot, len) {
            Ok(n) => n,
            Err(_) => return false,
        },
        None => len,
    };
    out.commit(n);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::rtcp::{iter_compound, RtcpPacket};
    use dataplane::rtp::{write_header, HeaderFields};

    fn packet(pt: u8, seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 12 + payload.len()];
        write_header(&mut b, &HeaderFields { marker: false, payload_type: pt, sequence: seq, timestamp: 1, ssrc }).unwrap();
        b[12..].copy_from_slice(payload);
        b
    }

    fn feed(r: &mut Receiver, p: &[u8], now: Instant, c: &mut Counters) {
        let h = dataplane::rtp::parse(p).unwrap();
        r.on_rtp(&h, p, now, c);
    }

    #[test]
    fn a_gap_is_nacked_after_the_reorder_allowance_and_rtx_fills_it() {
        let (media, repair) = (1000, 2000);
        let mut r = Receiver::new(7);
        r.rtx_pt = Some(97);
        r.fid = vec![(media, repair)];
        let mut c = Counters::new();
        let mut out = Outq::new();
        let t0 = Instant::now();
        for seq in (100u16..110).filter(|s| *s != 105) {
            feed(&mut r, &packet(PT_VP8, seq, media, b"\x00delta"), t0, &mut c);
        }
        assert_eq!(r.loss_totals(), (10, 9));
        let due = r.nack_due().expect("a hole is pending");
        assert!(due > t0);
        r.poll_nacks(t0, None, &mut out, &mut c);
        assert!(out.lens.is_empty(), "nothing before the reorder allowance");
        r.poll_nacks(due, None, &mut out, &mut c);
        assert_eq!((out.lens.len(), c.nacks_tx, c.nacked_seqs), (1, 1, 1));
        let nack = iter_compound(&out.buf[..out.lens[0]])
            .find_map(|p| match p {
                Ok(RtcpPacket::Nack { media_ssrc, items, .. }) => Some((media_ssrc, items.lost_sequences().collect::<Vec<_>>())),
                _ => None,
            })
            .expect("RR + NACK");
        assert_eq!(nack, (media, vec![105]));
        // The repair: RTX with OSN 105, then a wasted duplicate on the primary.
        let mut rtx_payload = vec![0, 105];
        rtx_payload.extend_from_slice(b"\x00delta");
        feed(&mut r, &packet(97, 1, repair, &rtx_payload), due, &mut c);
        feed(&mut r, &packet(PT_VP8, 105, media, b"\x00delta"), due, &mut c);
        assert_eq!((c.recovered_rtx, c.recovered_primary, c.repairs_wasted), (1, 0, 1));
        assert_eq!(r.loss_totals(), (10, 10));
        // The due time is only lowered on arrival (cheap); the next poll
        // finds nothing left, sends nothing and clears it.
        r.poll_nacks(due + Duration::from_millis(100), None, &mut out, &mut c);
        assert_eq!((out.lens.len(), c.nacks_tx), (1, 1));
        assert_eq!(r.nack_due(), None);
    }

    #[test]
    fn drops_only_video_and_only_when_asked() {
        let mut r = Receiver::new(7);
        assert!(!(0..100).any(|_| r.drop_arrival(PT_VP8)));
        r.drop = Dropper::new(1.0, 1);
        r.rtx_pt = Some(97);
        assert!(r.drop_arrival(PT_VP8) && r.drop_arrival(97));
        assert!(!r.drop_arrival(crate::sdp::PT_OPUS));
    }
}
