//! Transport-cc feedback: random input never panics; random packet lists round-trip.

use super::twcc::*;
use super::{iter_compound, RtcpError, RtcpPacket};
use proptest::prelude::*;

/// Walks a parsed feedback fully, checking it yields what its head promised.
fn walk(fci: &[u8]) {
    if let Ok(fb) = parse_twcc(fci) {
        let all: Vec<_> = fb.packets().collect();
        assert_eq!(all.len(), usize::from(fb.status_count));
        let received = all
            .iter()
            .filter(|(_, s)| matches!(s, PacketStatus::Received { .. }))
            .count();
        assert_eq!(received, usize::from(fb.received));
        for (i, (seq, _)) in all.iter().enumerate() {
            assert_eq!(*seq, fb.base_seq.wrapping_add(i as u16));
        }
        assert_eq!(fb.arrivals().count(), all.len());
    }
}

/// A plausible head (small status count) followed by random chunk and delta bytes.
fn twccish() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u16>(),
        1u16..80,
        prop::collection::vec(any::<u8>(), 0..120),
    )
        .prop_map(|(base, count, tail)| {
            let mut v = Vec::with_capacity(8 + tail.len());
            v.extend_from_slice(&base.to_be_bytes());
            v.extend_from_slice(&count.to_be_bytes());
            v.extend_from_slice(&[0x12, 0x34, 0x56, 7]);
            v.extend_from_slice(&tail);
            v
        })
}

/// `(seq gap before this entry, arrival step in us or lost)`; steps stay within ±8 s.
fn entries() -> impl Strategy<Value = Vec<(u16, Option<i64>)>> {
    prop::collection::vec(
        (
            prop_oneof![8 => Just(0u16), 2 => 1u16..20, 1 => 20u16..500],
            prop_oneof![
                6 => (0i64..20_000).prop_map(Some),
                2 => (-8_000_000i64..8_000_000).prop_map(Some),
                2 => Just(None),
            ],
        ),
        1..300,
    )
}

/// Turns steps into absolute `(seq, arrival)` entries from `base` at `start_us`.
fn absolute(base: u16, start_us: i64, steps: &[(u16, Option<i64>)]) -> Vec<(u16, Option<i64>)> {
    let mut seq = base;
    let mut at = start_us;
    let mut out = Vec::new();
    for (i, &(gap, step)) in steps.iter().enumerate() {
        if i > 0 {
            seq = seq.wrapping_add(1);
        }
        seq = seq.wrapping_add(gap);
        let arrival = step.map(|d| {
            at += d;
            at
        });
        out.push((seq, arrival));
    }
    out
}

/// What the parser should give back: every seq from `base`, arrivals rounded down to 250 us.
fn expected(base: u16, entries: &[(u16, Option<i64>)]) -> Vec<(u16, Option<i64>)> {
    let mut want = Vec::new();
    let mut seq = base;
    for &(s, at) in entries {
        while seq != s {
            want.push((seq, None));
            seq = seq.wrapping_add(1);
        }
        want.push((s, at.map(|t| t.div_euclid(250) * 250)));
        seq = seq.wrapping_add(1);
    }
    want
}

fn fci(buf: &[u8]) -> &[u8] {
    match iter_compound(buf).next() {
        Some(Ok(RtcpPacket::TransportCc { fci, .. })) => fci,
        other => panic!("{other:?}"),
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..200)) {
        walk(&buf);
    }

    #[test]
    fn twcc_shaped_bytes_never_panic(buf in twccish()) {
        walk(&buf);
    }

    #[test]
    fn packet_lists_round_trip(base: u16, start in -1_000_000_000i64..1_000_000_000, steps in entries()) {
        // Keep the whole list within the status count cap.
        let span: usize = steps.iter().map(|&(gap, _)| usize::from(gap) + 1).sum();
        prop_assume!(span <= usize::from(MAX_STATUS_COUNT));
        let entries = absolute(base, start, &steps);
        let mut out = vec![0u8; 4096];
        let n = write_twcc(&mut out, 9, 8, base, 3, start, &entries).unwrap();
        let fb = parse_twcc(fci(&out[..n])).unwrap();
        prop_assert_eq!(fb.base_seq, base);
        prop_assert_eq!(fb.fb_count, 3);
        prop_assert_eq!(fb.arrivals().collect::<Vec<_>>(), expected(base, &entries));
    }

    #[test]
    fn prefixes_fit_and_round_trip(base: u16, steps in entries(), room in 0usize..400) {
        let entries = absolute(base, 0, &steps);
        let mut out = vec![0u8; room];
        match write_twcc_prefix(&mut out, 9, 8, base, 3, 0, entries.iter().copied()) {
            Ok(w) => {
                prop_assert!(w.len <= room && w.len % 4 == 0);
                prop_assert!(w.packets >= 1 && w.packets <= entries.len());
                let fb = parse_twcc(fci(&out[..w.len])).unwrap();
                prop_assert_eq!(fb.status_count, w.statuses);
                prop_assert_eq!(
                    fb.arrivals().collect::<Vec<_>>(),
                    expected(base, &entries[..w.packets])
                );
            }
            Err(e) => prop_assert!(
                matches!(e, RtcpError::BufferTooSmall { .. }),
                "{:?}", e
            ),
        }
    }
}
