//! Compound RTCP (RFC 3550) as the shard reads it after SRTCP: every packet
//! kind, report blocks, BYE/REMB SSRC lists, FIR entries, generic NACK lists
//! expanded to sequence numbers, and transport-cc feedback (parse, walk,
//! arrivals, and the bandwidth estimator fed with it).
#![no_main]

use std::time::{Duration, Instant};

use dataplane::forward::bwe::{BandwidthEstimator, SentMedia, MAX_LOST_PER_FEEDBACK};
use dataplane::rtcp::{self, twcc, RtcpPacket};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let mut bwe = BandwidthEstimator::new(1_000_000);
    // Packets the estimator believes it sent, so feedback can match them;
    // every other one names a media packet, so losses reach the repair list.
    for seq in 0..64u16 {
        let media = (seq % 2 == 0).then_some(SentMedia { ssrc: 1, seq, attempt: 0 });
        bwe.on_sent(seq, 1200, media, now + Duration::from_millis(u64::from(seq)));
    }
    let mut lost = Vec::new();
    // Raw input as a bare transport-cc FCI too: the parser is reached that
    // way directly, without the compound framing in front of it.
    if let Ok(fb) = twcc::parse_twcc(data) {
        check_twcc(&fb);
    }
    let mut packets = 0usize;
    for p in rtcp::iter_compound(data) {
        packets += 1;
        assert!(packets <= data.len() / 4 + 1, "each packet takes at least 4 bytes");
        let Ok(p) = p else { break };
        match p {
            RtcpPacket::SenderReport { reports, .. } | RtcpPacket::ReceiverReport { reports, .. } => {
                let n = reports.len();
                assert_eq!(reports.count(), n);
            }
            RtcpPacket::Sdes(body) => {
                let _ = body.len();
            }
            RtcpPacket::Bye { ssrcs } | RtcpPacket::Remb { ssrcs, .. } => {
                let n = ssrcs.len();
                assert_eq!(ssrcs.count(), n);
            }
            RtcpPacket::Nack { items, .. } => {
                let n = items.len();
                // Each item names at most 17 packets.
                assert!(items.lost_sequences().count() <= n * 17);
                assert_eq!(items.count(), n);
            }
            RtcpPacket::Pli { .. } => {}
            RtcpPacket::Fir { entries, .. } => {
                let n = entries.len();
                assert_eq!(entries.count(), n);
            }
            RtcpPacket::TransportCc { fci, .. } => {
                if let Ok(fb) = twcc::parse_twcc(fci) {
                    check_twcc(&fb);
                }
                lost.clear();
                let _ = bwe.on_twcc(fci, now + Duration::from_millis(100), &mut lost);
                assert!(lost.len() <= MAX_LOST_PER_FEEDBACK);
                assert!(lost.iter().all(|m| m.ssrc == 1 && m.seq % 2 == 0 && m.seq < 64));
                let _ = bwe.estimate_bps();
            }
            RtcpPacket::Other { body, .. } => {
                let _ = body.len();
            }
        }
    }
});

fn check_twcc(fb: &twcc::TwccFeedback<'_>) {
    let statuses = fb.packets().count();
    assert_eq!(statuses, usize::from(fb.status_count), "validated: every status is there");
    let received = fb.packets().filter(|(_, s)| matches!(s, twcc::PacketStatus::Received { .. })).count();
    assert_eq!(received, usize::from(fb.received));
    for (seq, at) in fb.arrivals() {
        let _ = (seq, at);
    }
}
