//! Random input never panics; structured input round-trips.

use super::*;
use proptest::prelude::*;

fn walk(buf: &[u8]) -> usize {
    let mut steps = 0;
    for item in iter_compound(buf) {
        steps += 1;
        // Each Ok consumes at least 4 bytes, plus one final Err.
        assert!(steps <= buf.len() / 4 + 1);
        if let Ok(p) = item {
            // Touch every lazy list so their iterators are exercised too.
            match p {
                RtcpPacket::SenderReport { reports, .. }
                | RtcpPacket::ReceiverReport { reports, .. } => {
                    reports.count();
                }
                RtcpPacket::Bye { ssrcs } | RtcpPacket::Remb { ssrcs, .. } => {
                    ssrcs.count();
                }
                RtcpPacket::Nack { items, .. } => {
                    assert!(items.lost_sequences().count() <= items.len() * 17);
                }
                RtcpPacket::Fir { entries, .. } => {
                    entries.count();
                }
                _ => {}
            }
        }
    }
    steps
}

/// Random bytes that start like RTCP (version 2), so parsing gets past the first check.
fn rtcpish() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(any::<u8>(), 0..200),
        0u8..32,
        192u8..=223,
    )
        .prop_map(|(mut v, c, pt)| {
            if v.len() >= 2 {
                v[0] = 0x80 | (v[0] & 0x20) | c;
                v[1] = pt;
            }
            if v.len() >= 4 {
                let words = (v.len() / 4).saturating_sub(1) as u16;
                v[2..4].copy_from_slice(&words.to_be_bytes());
            }
            v
        })
}

fn block() -> impl Strategy<Value = ReportBlock> {
    (
        any::<u32>(),
        any::<u8>(),
        -0x80_0000i32..=0x7f_ffff,
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(ssrc, fraction_lost, cumulative_lost, ext_highest_seq, jitter, lsr, dlsr)| {
                ReportBlock {
                    ssrc,
                    fraction_lost,
                    cumulative_lost,
                    ext_highest_seq,
                    jitter,
                    lsr,
                    dlsr,
                }
            },
        )
}

proptest! {
    #[test]
    fn random_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..300)) {
        walk(&buf);
    }

    #[test]
    fn rtcp_shaped_bytes_never_panic(buf in rtcpish()) {
        walk(&buf);
    }

    #[test]
    fn sr_round_trip(ssrc: u32, ntp: u64, ts: u32, pc: u32, oc: u32, blocks in prop::collection::vec(block(), 0..32)) {
        let mut out = [0u8; 1024];
        let n = write_sr(&mut out, ssrc, ntp, ts, pc, oc, &blocks).unwrap();
        let mut it = iter_compound(&out[..n]);
        match it.next() {
            Some(Ok(RtcpPacket::SenderReport { ssrc: s, ntp: t, rtp_ts, packet_count, octet_count, reports })) => {
                prop_assert_eq!((s, t, rtp_ts, packet_count, octet_count), (ssrc, ntp, ts, pc, oc));
                prop_assert_eq!(reports.collect::<Vec<_>>(), blocks);
            }
            other => prop_assert!(false, "{:?}", other),
        }
        prop_assert!(it.next().is_none());
    }

    #[test]
    fn nack_round_trip(lost in prop::collection::vec(any::<u16>(), 1..60), base: u16) {
        // Keep the set inside half the sequence space, as real losses are.
        let lost: Vec<u16> = lost.iter().map(|&d| base.wrapping_add(d % 2000)).collect();
        let mut out = [0u8; 1024];
        let n = write_nack(&mut out, 1, 2, &lost).unwrap();
        let mut want: Vec<u16> = lost.clone();
        want.sort_unstable();
        want.dedup();
        match iter_compound(&out[..n]).next() {
            Some(Ok(RtcpPacket::Nack { items, .. })) => {
                let mut got: Vec<u16> = items.lost_sequences().collect();
                let pairs = items.len();
                got.sort_unstable();
                prop_assert_eq!(got, want.clone());
                // Never more pairs than distinct losses.
                prop_assert!(pairs <= want.len());
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn remb_round_trip(br: u64, ssrcs in prop::collection::vec(any::<u32>(), 0..10)) {
        let mut out = [0u8; 128];
        let n = write_remb(&mut out, 7, br, &ssrcs).unwrap();
        match iter_compound(&out[..n]).next() {
            Some(Ok(RtcpPacket::Remb { sender_ssrc, bitrate_bps, ssrcs: got })) => {
                prop_assert_eq!(sender_ssrc, 7);
                prop_assert!(bitrate_bps <= br && br - bitrate_bps <= br >> 17);
                prop_assert_eq!(got.collect::<Vec<_>>(), ssrcs);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn writers_never_panic_on_short_buffers(len in 0usize..64, lost in prop::collection::vec(any::<u16>(), 1..20)) {
        let mut out = vec![0u8; len];
        let _ = write_sr(&mut out, 1, 2, 3, 4, 5, &[ReportBlock::default()]);
        let _ = write_rr(&mut out, 1, &[ReportBlock::default()]);
        let _ = write_sdes_cname(&mut out, 1, "a-cname-of-some-length");
        let _ = write_bye(&mut out, &[1, 2, 3]);
        let _ = write_pli(&mut out, 1, 2);
        let _ = write_fir(&mut out, 1, 2, 3);
        let _ = write_remb(&mut out, 1, 5_000_000, &[1, 2]);
        if let Ok(n) = write_nack(&mut out, 1, 2, &lost) {
            prop_assert!(n <= len);
        }
    }
}
