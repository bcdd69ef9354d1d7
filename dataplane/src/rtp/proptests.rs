//! Random input never panics; written headers parse back.

use super::*;
use proptest::prelude::*;

/// Random bytes with version 2 forced, so parsing gets past the first check.
fn rtpish() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..200).prop_map(|mut v| {
        if let Some(b) = v.first_mut() {
            *b = 0x80 | (*b & 0x3f);
        }
        v
    })
}

fn exercise(buf: &[u8]) {
    if let Ok(h) = parse(buf) {
        assert!(h.header_len + h.payload_len <= buf.len());
        let _ = h.payload(buf);
        for (id, data) in h.extensions(buf) {
            assert!(id != 0 && data.len() <= 255);
        }
        let _ = extension(buf, &h, 1);
        // A different buffer must not make accessors panic either.
        let _ = h.payload(&buf[..buf.len() / 2]);
        let _ = h.extensions(&buf[..buf.len() / 2]).count();
    }
    let _ = is_rtcp(buf);
    let _ = codec::vp8_is_keyframe(buf);
    let _ = codec::h264_is_keyframe(buf);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..200)) {
        exercise(&buf);
    }

    #[test]
    fn rtp_shaped_bytes_never_panic(buf in rtpish()) {
        exercise(&buf);
    }

    #[test]
    fn extension_blocks_never_panic(profile in prop_oneof![Just(0xBEDEu16), 0x1000u16..0x1010, any::<u16>()],
                                    words in 0u16..8, data in prop::collection::vec(any::<u8>(), 0..40)) {
        let mut p = vec![0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(&profile.to_be_bytes());
        p.extend_from_slice(&words.to_be_bytes());
        p.extend_from_slice(&data);
        exercise(&p);
    }

    #[test]
    fn header_with_extensions_round_trip(
        marker: bool, pt in 0u8..128, seq: u16, ts: u32, ssrc: u32,
        exts in prop::collection::vec((1u8..15, prop::collection::vec(any::<u8>(), 1..17)), 0..6),
        payload in prop::collection::vec(any::<u8>(), 0..50),
    ) {
        let f = HeaderFields { marker, payload_type: pt, sequence: seq, timestamp: ts, ssrc };
        let refs: Vec<(u8, &[u8])> = exts.iter().map(|(i, d)| (*i, d.as_slice())).collect();
        let mut out = [0u8; 400];
        let n = write_header_with_extensions(&mut out, &f, &refs).unwrap();
        out[n..n + payload.len()].copy_from_slice(&payload);
        let pkt = &out[..n + payload.len()];
        let h = parse(pkt).unwrap();
        prop_assert_eq!((h.marker, h.payload_type, h.sequence, h.timestamp, h.ssrc), (marker, pt, seq, ts, ssrc));
        prop_assert_eq!(h.header_len, n);
        prop_assert_eq!(h.payload(pkt), &payload[..]);
        let got: Vec<(u8, &[u8])> = h.extensions(pkt).collect();
        prop_assert_eq!(got, refs);
    }

    #[test]
    fn unwrapper_matches_true_index(start in 0u64..200_000, steps in prop::collection::vec(-50i64..200, 1..300)) {
        // A walk over true indices with small backward steps (reordering) and forward jumps.
        let mut u = SeqUnwrapper::new();
        let mut idx = start as i64 + 1000;
        let first = u.unwrap(idx as u16) as i64;
        let offset = first - idx;
        for s in steps {
            idx = (idx + s).max(0);
            prop_assert_eq!(u.unwrap(idx as u16) as i64 - offset, idx);
        }
    }
}
