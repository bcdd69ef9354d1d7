use super::*;
use crate::rtcp::{iter_compound, RtcpPacket};

const R: fn(i64) -> PacketStatus = |delta_us| PacketStatus::Received { delta_us };
const N: PacketStatus = PacketStatus::NotReceived;

/// The FCI (and SSRCs) of the only packet in `buf`, which must be transport-cc.
pub(crate) fn fci_of(buf: &[u8]) -> (u32, u32, &[u8]) {
    let mut it = iter_compound(buf);
    let Some(Ok(RtcpPacket::TransportCc {
        sender_ssrc,
        media_ssrc,
        fci,
    })) = it.next()
    else {
        panic!("not a transport-cc packet");
    };
    assert!(it.next().is_none());
    (sender_ssrc, media_ssrc, fci)
}

fn statuses(fb: &TwccFeedback<'_>) -> Vec<(u16, PacketStatus)> {
    fb.packets().collect()
}

#[test]
fn chrome_capture_run_of_small_deltas() {
    // A Chrome feedback as Wireshark decoded it (olivermichel/webrtc-analysis
    // test data): P bit with one byte of padding, one run-length chunk.
    let buf =
        hex::decode("afcd000700000001dd586eb6000100095e91100020091c0c2c38000400081801").unwrap();
    let (sender, media, fci) = fci_of(&buf);
    assert_eq!((sender, media), (1, 0xdd58_6eb6));
    let fb = parse_twcc(fci).unwrap();
    assert_eq!((fb.base_seq, fb.status_count, fb.fb_count), (1, 9, 0));
    assert_eq!(fb.reference_time_us, 6_197_520 * 64_000);
    assert_eq!(fb.received, 9);
    let ms = [7, 3, 11, 14, 0, 1, 0, 2, 6];
    let want: Vec<_> = (1u16..).zip(ms.iter().map(|&m| R(m * 1000))).collect();
    assert_eq!(statuses(&fb), want);
}

#[test]
fn chrome_capture_vector_large_delta_and_overlong_run() {
    // From pion/rtcp's tests, captured from Chrome: a 2-bit vector with a
    // large delta, then a not-received run of 48 of which the status count
    // uses only 2.
    let buf =
        hex::decode("afcd00079b74f61f9371dcbc853c000963f916b3d55200309baa6aaa7b010901").unwrap();
    let (sender, media, fci) = fci_of(&buf);
    assert_eq!((sender, media), (2_608_133_663, 2_473_712_828));
    let fb = parse_twcc(fci).unwrap();
    assert_eq!((fb.base_seq, fb.status_count, fb.fb_count), (34108, 9, 179));
    assert_eq!(fb.reference_time_us, 6_551_830 * 64_000);
    assert_eq!(fb.received, 6);
    assert_eq!(
        statuses(&fb),
        vec![
            (34108, R(38_750)),
            (34109, R(42_500)),
            (34110, R(26_500)),
            (34111, R(42_500)),
            (34112, R(30_750)),
            (34113, N),
            (34114, R(66_250)),
            (34115, N),
            (34116, N),
        ]
    );
    let t0 = fb.reference_time_us;
    let arrivals: Vec<_> = fb.arrivals().collect();
    assert_eq!(arrivals[0], (34108, Some(t0 + 38_750)));
    assert_eq!(arrivals[5], (34113, None));
    assert_eq!(
        arrivals[6],
        (
            34114,
            Some(t0 + 38_750 + 42_500 + 26_500 + 42_500 + 30_750 + 66_250)
        )
    );
}

#[test]
fn chrome_capture_one_bit_vector() {
    // pion/rtcp, from Chrome: a 1-bit vector 0b1011_1010_0000_0000, padding 2.
    let buf = hex::decode("afcd0006fa17fa17193dd8bb0001000e10636d00ba00100c0c100002").unwrap();
    let fb = parse_twcc(fci_of(&buf).2).unwrap();
    assert_eq!((fb.base_seq, fb.status_count), (1, 14));
    let got = statuses(&fb);
    assert_eq!(
        &got[..5],
        &[
            (1, R(4000)),
            (2, R(3000)),
            (3, R(3000)),
            (4, N),
            (5, R(4000))
        ]
    );
    assert!(got[5..].iter().all(|&(_, s)| s == N));
    assert_eq!(got.len(), 14);
}

#[test]
fn negative_reference_time_sign_extends() {
    let fci = [0, 5, 0, 1, 0xff, 0xff, 0xff, 7, 0x20, 0x01, 4];
    let fb = parse_twcc(&fci).unwrap();
    assert_eq!(fb.reference_time_us, -64_000);
    assert_eq!(statuses(&fb), vec![(5, R(1000))]);
}

#[test]
fn malformed_fci_is_an_error() {
    let malformed = Err(MALFORMED);
    // head too short
    assert_eq!(parse_twcc(&[0, 1, 0, 1, 0, 0, 0]), malformed);
    // zero statuses
    assert_eq!(parse_twcc(&[0, 1, 0, 0, 0, 0, 0, 0, 0x20, 0]), malformed);
    // more statuses than we accept
    assert!(matches!(
        parse_twcc(&[0, 1, 0x80, 1, 0, 0, 0, 0, 0, 0]),
        Err(RtcpError::TooMany { count: 0x8001, .. })
    ));
    // chunks end before the count is covered
    assert_eq!(parse_twcc(&[0, 1, 0, 20, 0, 0, 0, 0, 0x20, 5]), malformed);
    // reserved symbol 3 in a run, and inside the used part of a 2-bit vector
    assert_eq!(
        parse_twcc(&[0, 1, 0, 2, 0, 0, 0, 0, 0x60, 2, 0, 0]),
        malformed
    );
    // (0xd00c: symbols 1, 0, 0, 0, 0, 3, 0)
    assert_eq!(
        parse_twcc(&[0, 1, 0, 6, 0, 0, 0, 0, 0xd0, 0x0c, 0]),
        malformed
    );
    // ... but past the status count it is ignored
    let fb = parse_twcc(&[0, 1, 0, 5, 0, 0, 0, 0, 0xd0, 0x0c, 9]).unwrap();
    assert_eq!(
        statuses(&fb),
        vec![(1, R(9 * 250)), (2, N), (3, N), (4, N), (5, N)]
    );
    // every truncation of a valid FCI fails
    let buf =
        hex::decode("afcd00079b74f61f9371dcbc853c000963f916b3d55200309baa6aaa7b010901").unwrap();
    let fci = &buf[12..31];
    assert!(parse_twcc(fci).is_ok());
    for len in 0..fci.len() {
        assert!(parse_twcc(&fci[..len]).is_err(), "len {len}");
    }
}

/// Writes, parses back, and checks each arrival comes back rounded down to 250 us.
fn round_trip(base_seq: u16, reference_us: i64, packets: &[(u16, Option<i64>)]) -> Vec<u8> {
    let mut out = [0u8; 1500];
    let n = write_twcc(
        &mut out,
        0x1111,
        0x2222,
        base_seq,
        42,
        reference_us,
        packets,
    )
    .unwrap();
    assert_eq!(n % 4, 0);
    let buf = out[..n].to_vec();
    let (sender, media, fci) = fci_of(&buf);
    assert_eq!((sender, media), (0x1111, 0x2222));
    let fb = parse_twcc(fci).unwrap();
    assert_eq!((fb.base_seq, fb.fb_count), (base_seq, 42));
    assert_eq!(
        fb.reference_time_us,
        reference_us.div_euclid(64_000) * 64_000
    );
    let last = packets.last().unwrap().0;
    assert_eq!(fb.status_count, last.wrapping_sub(base_seq) + 1);
    let mut want = Vec::new();
    let mut seq = base_seq;
    for &(s, at) in packets {
        while seq != s {
            want.push((seq, None));
            seq = seq.wrapping_add(1);
        }
        want.push((s, at.map(|t| t.div_euclid(250) * 250)));
        seq = seq.wrapping_add(1);
    }
    assert_eq!(fb.arrivals().collect::<Vec<_>>(), want);
    buf
}

#[test]
fn round_trip_runs_and_vectors() {
    // 40 in a row every 1 ms, then a loss pattern, then a long gap.
    let mut p: Vec<(u16, Option<i64>)> = (0..40)
        .map(|i| (100 + i, Some(1_000_000 + 1000 * i64::from(i))))
        .collect();
    for i in 40..70u16 {
        let at = (i % 3 != 0).then_some(1_000_000 + 1000 * i64::from(i));
        p.push((100 + i, at));
    }
    p.push((5000, Some(1_100_000)));
    let buf = round_trip(100, 1_000_000, &p);
    // The 40-packet run is one chunk, the gap of ~4900 one more.
    assert!(buf.len() < 20 + 2 * 12 + 72 + 4, "{} bytes", buf.len());
}

#[test]
fn round_trip_large_negative_and_unaligned_deltas() {
    let p = [
        (7, Some(2_000_123)), // first: small delta from the 64 ms reference
        (8, Some(1_999_000)), // earlier than the previous: negative
        (9, Some(2_500_000)), // 500 ms later: large
        (10, None),
        (11, Some(10_000_000)), // 7.5 s later: still 16 bits
        (12, Some(10_000_249)),
        (13, Some(10_000_251)),
    ];
    round_trip(7, 1_990_000, &p);
    // The first packet may precede the reference time.
    round_trip(0, 5_000_000, &[(0, Some(4_000_000)), (1, Some(4_000_100))]);
}

#[test]
fn round_trip_wraps_inside_one_message() {
    let p: Vec<(u16, Option<i64>)> = (0..30u16)
        .map(|i| {
            (
                65520u16.wrapping_add(i),
                (i != 16).then_some(3_000_000 + 500 * i64::from(i)),
            )
        })
        .collect();
    round_trip(65520, 3_000_000, &p);
    // base before the first entry: leading statuses are losses
    round_trip(65530, 3_000_000, &p[12..]);
}

#[test]
fn reference_time_field_wraps_at_24_bits() {
    let reference = (1i64 << 23) * 64_000; // first tick past the signed range
    let mut out = [0u8; 64];
    let n = write_twcc(
        &mut out,
        1,
        2,
        0,
        0,
        reference,
        &[(0, Some(reference + 1000))],
    )
    .unwrap();
    let fb = parse_twcc(fci_of(&out[..n]).2).unwrap();
    assert_eq!(fb.reference_time_us, reference - REFERENCE_WRAP_US);
    assert_eq!(statuses(&fb), vec![(0, R(1000))]);
}

#[test]
fn writer_rejects_what_it_cannot_encode() {
    let mut out = [0u8; 1500];
    let w = |out: &mut [u8], p: &[(u16, Option<i64>)]| write_twcc(out, 1, 2, 10, 0, 0, p);
    assert!(matches!(
        w(&mut out, &[]),
        Err(RtcpError::InvalidArgument(_))
    ));
    assert!(matches!(
        w(&mut out, &[(11, Some(0)), (11, Some(0))]),
        Err(RtcpError::InvalidArgument(_))
    ));
    assert!(matches!(
        w(&mut out, &[(12, Some(0)), (11, Some(0))]),
        Err(RtcpError::InvalidArgument(_))
    ));
    // 8.2 s between two arrivals does not fit 16 bits of 250 us
    assert!(matches!(
        w(&mut out, &[(10, Some(0)), (11, Some(8_200_000))]),
        Err(RtcpError::InvalidArgument(_))
    ));
    assert!(matches!(
        w(&mut out, &[(10, Some(0)), (10 + 0x8000, Some(0))]),
        Err(RtcpError::TooMany { count: 0x8001, .. })
    ));
    // Short buffers report the full size.
    let p = [(10, Some(0)), (11, Some(1000))];
    let n = w(&mut out, &p).unwrap();
    assert_eq!(n, 24);
    for len in 0..n {
        let mut short = vec![0u8; len];
        assert_eq!(
            w(&mut short, &p),
            Err(RtcpError::BufferTooSmall { need: n, have: len })
        );
    }
}

#[test]
fn prefix_splits_on_size_and_delta_range() {
    // 300 packets with 1-byte deltas do not fit 200 bytes: the prefix does,
    // and the rest follows in a second message.
    let p: Vec<(u16, Option<i64>)> = (0..300u16)
        .map(|i| (i, Some(1000 * i64::from(i))))
        .collect();
    let mut out = [0u8; 200];
    let w = write_twcc_prefix(&mut out, 1, 2, 0, 0, 0, p.iter().copied()).unwrap();
    assert!(w.len <= 200 && w.len + 4 > 200 - 2, "{w:?}");
    assert_eq!(usize::from(w.statuses), w.packets);
    let fb = parse_twcc(fci_of(&out[..w.len]).2).unwrap();
    let got: Vec<_> = fb.arrivals().collect();
    assert_eq!(got, p[..w.packets].to_vec());

    // A jump of 9 s ends the message before it.
    let p = [(0, Some(0)), (1, Some(1000)), (2, Some(9_001_000))];
    let mut out = [0u8; 200];
    let w = write_twcc_prefix(&mut out, 1, 2, 0, 0, 0, p).unwrap();
    assert_eq!((w.statuses, w.packets), (2, 2));
    // ... which then starts the next one, with its own reference time.
    let w = write_twcc_prefix(&mut out, 1, 2, 2, 1, 9_000_000, p[2..].iter().copied()).unwrap();
    assert_eq!((w.statuses, w.packets), (1, 1));
    let fb = parse_twcc(fci_of(&out[..w.len]).2).unwrap();
    assert_eq!(
        fb.arrivals().collect::<Vec<_>>(),
        vec![(2, Some(9_001_000))]
    );

    // Nothing fits: an error, not an empty message.
    let mut tiny = [0u8; 20];
    assert!(matches!(
        write_twcc_prefix(&mut tiny, 1, 2, 0, 0, 0, p),
        Err(RtcpError::BufferTooSmall { need: 24, have: 20 })
    ));
}
