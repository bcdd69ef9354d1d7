//! Writer output against bytes hand-built from the RFCs, and writer -> parser round trips.

use super::*;

const BLOCK: ReportBlock = ReportBlock {
    ssrc: 0x9abc_def0,
    fraction_lost: 0x40,
    cumulative_lost: 5,
    ext_highest_seq: 0x0001_0010,
    jitter: 0x20,
    lsr: 0xc3d4_8000,
    dlsr: 0x0001_0000,
};
const BLOCK_HEX: &str = "9abcdef0400000050001001000000020c3d4800000010000";

fn write(f: impl FnOnce(&mut [u8]) -> Result<usize, RtcpError>) -> Vec<u8> {
    let mut out = [0u8; 1500];
    let n = f(&mut out).unwrap();
    out[..n].to_vec()
}

fn only(buf: &[u8]) -> RtcpPacket<'_> {
    let mut it = iter_compound(buf);
    let p = it.next().expect("one packet").expect("valid");
    assert!(it.next().is_none());
    p
}

fn short_fails(f: impl Fn(&mut [u8]) -> Result<usize, RtcpError>) {
    let mut big = [0u8; 1500];
    let n = f(&mut big).unwrap();
    for len in 0..n {
        let mut out = vec![0u8; len];
        assert_eq!(
            f(&mut out),
            Err(RtcpError::BufferTooSmall { need: n, have: len }),
            "len {len}"
        );
    }
}

#[test]
fn sr_known_bytes_and_round_trip() {
    let f = |o: &mut [u8]| {
        write_sr(
            o,
            0x1234_5678,
            0xe1b2_c3d4_8000_0000,
            0x15f90,
            10,
            1000,
            &[BLOCK],
        )
    };
    let b = write(f);
    let expect = format!("81c8000c12345678e1b2c3d48000000000015f900000000a000003e8{BLOCK_HEX}");
    assert_eq!(hex::encode(&b), expect);
    short_fails(f);
    match only(&b) {
        RtcpPacket::SenderReport {
            ssrc,
            ntp,
            rtp_ts,
            packet_count,
            octet_count,
            reports,
        } => {
            assert_eq!(
                (ssrc, ntp, rtp_ts, packet_count, octet_count),
                (0x1234_5678, 0xe1b2_c3d4_8000_0000, 0x15f90, 10, 1000)
            );
            assert_eq!(reports.collect::<Vec<_>>(), vec![BLOCK]);
        }
        p => panic!("{p:?}"),
    }
}

#[test]
fn rr_known_bytes_and_round_trip() {
    let f = |o: &mut [u8]| write_rr(o, 0x1234_5678, &[BLOCK]);
    let b = write(f);
    assert_eq!(hex::encode(&b), format!("81c9000712345678{BLOCK_HEX}"));
    short_fails(f);
    assert_eq!(
        only(&b),
        RtcpPacket::ReceiverReport {
            ssrc: 0x1234_5678,
            reports: ReportBlocks::new(&b[8..])
        }
    );

    let b = write(|o| write_rr(o, 1, &[]));
    assert_eq!(hex::encode(&b), "80c9000100000001");
    match only(&b) {
        RtcpPacket::ReceiverReport { ssrc: 1, reports } => assert!(reports.is_empty()),
        p => panic!("{p:?}"),
    }
}

#[test]
fn rr_many_blocks() {
    let blocks: Vec<ReportBlock> = (0..31)
        .map(|i| ReportBlock {
            ssrc: i,
            cumulative_lost: -(i as i32),
            ..BLOCK
        })
        .collect();
    let b = write(|o| write_rr(o, 9, &blocks));
    assert_eq!(b.len(), 8 + 31 * 24);
    match only(&b) {
        RtcpPacket::ReceiverReport { reports, .. } => {
            assert_eq!(reports.collect::<Vec<_>>(), blocks)
        }
        p => panic!("{p:?}"),
    }
    let too_many = vec![BLOCK; 32];
    let mut out = [0u8; 2000];
    assert_eq!(
        write_rr(&mut out, 9, &too_many),
        Err(RtcpError::TooMany {
            what: "report blocks",
            count: 32
        })
    );
    assert!(write_sr(&mut out, 9, 0, 0, 0, 0, &too_many).is_err());
}

#[test]
fn sdes_cname() {
    let f = |o: &mut [u8]| write_sdes_cname(o, 0x1111_1111, "abc");
    let b = write(f);
    assert_eq!(hex::encode(&b), "81ca0003111111110103616263000000");
    short_fails(f);
    assert_eq!(only(&b), RtcpPacket::Sdes(&b[4..]));
    // a CNAME whose item fills whole words still gets a terminating null word
    let b = write(|o| write_sdes_cname(o, 1, "ab"));
    assert_eq!(
        hex::encode(&b),
        "81ca00030000000101026162".to_owned() + "00000000"
    );
    let long = "x".repeat(256);
    let mut out = [0u8; 600];
    assert!(matches!(
        write_sdes_cname(&mut out, 1, &long),
        Err(RtcpError::InvalidArgument(_))
    ));
}

#[test]
fn bye() {
    let f = |o: &mut [u8]| write_bye(o, &[1, 2]);
    let b = write(f);
    assert_eq!(hex::encode(&b), "82cb00020000000100000002");
    short_fails(f);
    match only(&b) {
        RtcpPacket::Bye { ssrcs } => assert_eq!(ssrcs.collect::<Vec<_>>(), vec![1, 2]),
        p => panic!("{p:?}"),
    }
}

#[test]
fn pli_known_bytes() {
    let f = |o: &mut [u8]| write_pli(o, 0x1111_1111, 0x2222_2222);
    let b = write(f);
    assert_eq!(hex::encode(&b), "81ce00021111111122222222");
    short_fails(f);
    assert_eq!(
        only(&b),
        RtcpPacket::Pli {
            sender_ssrc: 0x1111_1111,
            media_ssrc: 0x2222_2222
        }
    );
}

#[test]
fn fir_known_bytes() {
    let f = |o: &mut [u8]| write_fir(o, 0x1111_1111, 0x2222_2222, 7);
    let b = write(f);
    assert_eq!(hex::encode(&b), "84ce000411111111000000002222222207000000");
    short_fails(f);
    match only(&b) {
        RtcpPacket::Fir {
            sender_ssrc,
            entries,
        } => {
            assert_eq!(sender_ssrc, 0x1111_1111);
            assert_eq!(entries.collect::<Vec<_>>(), vec![(0x2222_2222, 7)]);
        }
        p => panic!("{p:?}"),
    }
}

#[test]
fn nack_known_bytes() {
    let f = |o: &mut [u8]| write_nack(o, 0x1111_1111, 0x2222_2222, &[21, 5, 22, 7, 5]);
    let b = write(f);
    // pid 5 with bits for 7 (bit 1) and 21 (bit 15); 22 needs a second pair
    assert_eq!(
        hex::encode(&b),
        "81cd0004111111112222222200058002".to_owned() + "00160000"
    );
    short_fails(f);
    match only(&b) {
        RtcpPacket::Nack {
            sender_ssrc,
            media_ssrc,
            items,
        } => {
            assert_eq!((sender_ssrc, media_ssrc), (0x1111_1111, 0x2222_2222));
            assert_eq!(
                items.clone().collect::<Vec<_>>(),
                vec![(5, 0x8002), (22, 0)]
            );
            assert_eq!(
                items.lost_sequences().collect::<Vec<_>>(),
                vec![5, 7, 21, 22]
            );
        }
        p => panic!("{p:?}"),
    }
}

#[test]
fn nack_across_wrap_packs_in_one_pair() {
    let b = write(|o| write_nack(o, 1, 2, &[1, 65535, 0]));
    assert_eq!(hex::encode(&b[12..]), "ffff0003");
    let mut out = [0u8; 64];
    assert!(matches!(
        write_nack(&mut out, 1, 2, &[]),
        Err(RtcpError::InvalidArgument(_))
    ));
}

#[test]
fn remb_known_bytes() {
    let f = |o: &mut [u8]| write_remb(o, 0x1111_1111, 1_000_000, &[0x1111_1111]);
    let b = write(f);
    // 1_000_000 = 250_000 << 2: exp 2, mantissa 0x3d090, one SSRC
    assert_eq!(
        hex::encode(&b),
        "8fce0005111111110000000052454d42010bd09011111111"
    );
    short_fails(f);
    match only(&b) {
        RtcpPacket::Remb {
            sender_ssrc,
            bitrate_bps,
            ssrcs,
        } => {
            assert_eq!((sender_ssrc, bitrate_bps), (0x1111_1111, 1_000_000));
            assert_eq!(ssrcs.collect::<Vec<_>>(), vec![0x1111_1111]);
        }
        p => panic!("{p:?}"),
    }
}

#[test]
fn remb_rounds_down() {
    for br in [0u64, 1, 262_143, 262_144, 262_145, 123_456_789, u64::MAX] {
        let b = write(|o| write_remb(o, 1, br, &[]));
        match only(&b) {
            RtcpPacket::Remb { bitrate_bps, .. } => {
                assert!(bitrate_bps <= br);
                // 18 significant bits survive
                assert!(br - bitrate_bps <= br >> 17, "{br} -> {bitrate_bps}");
            }
            p => panic!("{p:?}"),
        }
    }
}

#[test]
fn compound_sr_sdes_then_feedback() {
    let mut buf = [0u8; 256];
    let mut n = write_sr(&mut buf, 1, 2, 3, 4, 5, &[]).unwrap();
    n += write_sdes_cname(&mut buf[n..], 1, "me").unwrap();
    n += write_pli(&mut buf[n..], 1, 9).unwrap();
    n += write_nack(&mut buf[n..], 1, 9, &[100]).unwrap();
    n += write_bye(&mut buf[n..], &[1]).unwrap();
    let kinds: Vec<&str> = iter_compound(&buf[..n])
        .map(|p| match p.unwrap() {
            RtcpPacket::SenderReport { .. } => "sr",
            RtcpPacket::Sdes(_) => "sdes",
            RtcpPacket::Pli { .. } => "pli",
            RtcpPacket::Nack { .. } => "nack",
            RtcpPacket::Bye { .. } => "bye",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, vec!["sr", "sdes", "pli", "nack", "bye"]);
}

#[test]
fn transport_cc_is_passed_through() {
    let buf = hex::decode("8fcd000400000001000000020001000200030004").unwrap();
    assert_eq!(
        only(&buf),
        RtcpPacket::TransportCc {
            sender_ssrc: 1,
            media_ssrc: 2,
            fci: &buf[12..]
        }
    );
}
