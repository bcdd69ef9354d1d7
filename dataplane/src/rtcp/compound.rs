//! Walking a compound RTCP packet (RFC 3550 §6.1) and decoding each part.

use std::iter::FusedIterator;

use super::{
    lists::{FirEntries, NackItems, SsrcList},
    report::{ReportBlocks, REPORT_BLOCK_LEN},
    wire::be32,
    RtcpError, RtcpPacket, PT_BYE, PT_PSFB, PT_RR, PT_RTPFB, PT_SDES, PT_SR,
};

/// Iterator over the packets of a compound RTCP packet.
///
/// Each item is one packet or the first error; after an error the iterator
/// ends, since a bad length makes everything after it unparseable.
#[derive(Debug, Clone)]
pub struct Compound<'a> {
    rest: &'a [u8],
    failed: bool,
}

/// Iterates the packets of `buf` (already SRTCP-decrypted).
pub fn iter_compound(buf: &[u8]) -> Compound<'_> {
    Compound {
        rest: buf,
        failed: false,
    }
}

impl<'a> Iterator for Compound<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let r = self.split_one();
        if r.is_err() {
            self.failed = true;
            self.rest = &[];
        }
        Some(r)
    }
}

impl FusedIterator for Compound<'_> {}

impl<'a> Compound<'a> {
    fn split_one(&mut self) -> Result<RtcpPacket<'a>, RtcpError> {
        let rest = self.rest;
        let Some(hdr) = rest.first_chunk::<4>() else {
            return Err(RtcpError::TooShort(rest.len()));
        };
        let version = hdr[0] >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion(version));
        }
        let padded = hdr[0] & 0x20 != 0;
        let count = hdr[0] & 0x1f;
        let packet_type = hdr[1];
        let declared = (usize::from(u16::from_be_bytes([hdr[2], hdr[3]])) + 1) * 4;
        let Some(packet) = rest.get(..declared) else {
            return Err(RtcpError::BadLength {
                declared,
                available: rest.len(),
            });
        };
        let mut end = declared;
        if padded {
            let pad = packet[declared - 1];
            if pad == 0 || usize::from(pad) > declared - 4 {
                return Err(RtcpError::BadPadding(pad));
            }
            end -= usize::from(pad);
        }
        self.rest = &rest[declared..];
        decode(packet_type, count, &packet[4..end])
    }
}

fn decode(packet_type: u8, count: u8, body: &[u8]) -> Result<RtcpPacket<'_>, RtcpError> {
    let malformed = RtcpError::Malformed {
        packet_type,
        fmt: count,
    };
    let blocks_len = usize::from(count) * REPORT_BLOCK_LEN;
    match packet_type {
        PT_SR => {
            // Anything after the blocks is a profile-specific extension we ignore.
            let blocks = body.get(24..24 + blocks_len).ok_or(malformed)?;
            let ntp_hi = be32(body, 4).ok_or(malformed)?;
            let ntp_lo = be32(body, 8).ok_or(malformed)?;
            Ok(RtcpPacket::SenderReport {
                ssrc: be32(body, 0).ok_or(malformed)?,
                ntp: (u64::from(ntp_hi) << 32) | u64::from(ntp_lo),
                rtp_ts: be32(body, 12).ok_or(malformed)?,
                packet_count: be32(body, 16).ok_or(malformed)?,
                octet_count: be32(body, 20).ok_or(malformed)?,
                reports: ReportBlocks::new(blocks),
            })
        }
        PT_RR => {
            let blocks = body.get(4..4 + blocks_len).ok_or(malformed)?;
            Ok(RtcpPacket::ReceiverReport {
                ssrc: be32(body, 0).ok_or(malformed)?,
                reports: ReportBlocks::new(blocks),
            })
        }
        PT_SDES => Ok(RtcpPacket::Sdes(body)),
        PT_BYE => {
            let ssrcs = body.get(..4 * usize::from(count)).ok_or(malformed)?;
            Ok(RtcpPacket::Bye {
                ssrcs: SsrcList::new(ssrcs),
            })
        }
        PT_RTPFB | PT_PSFB => decode_feedback(packet_type, count, body).ok_or(malformed),
        _ => Ok(RtcpPacket::Other {
            packet_type,
            fmt: count,
            body,
        }),
    }
}

const FMT_NACK: u8 = 1;
const FMT_PLI: u8 = 1;
const FMT_FIR: u8 = 4;
const FMT_TWCC: u8 = 15;
const FMT_AFB: u8 = 15;

/// RFC 4585 §6.1 feedback: sender SSRC, media SSRC, then the FCI.
fn decode_feedback(packet_type: u8, fmt: u8, body: &[u8]) -> Option<RtcpPacket<'_>> {
    let sender_ssrc = be32(body, 0)?;
    let media_ssrc = be32(body, 4)?;
    let fci = body.get(8..)?;
    let other = RtcpPacket::Other {
        packet_type,
        fmt,
        body,
    };
    Some(match (packet_type, fmt) {
        (PT_RTPFB, FMT_NACK) => {
            if fci.len() % 4 != 0 {
                return None;
            }
            RtcpPacket::Nack {
                sender_ssrc,
                media_ssrc,
                items: NackItems::new(fci),
            }
        }
        (PT_RTPFB, FMT_TWCC) => RtcpPacket::TransportCc {
            sender_ssrc,
            media_ssrc,
            fci,
        },
        (PT_PSFB, FMT_PLI) => RtcpPacket::Pli {
            sender_ssrc,
            media_ssrc,
        },
        (PT_PSFB, FMT_FIR) => {
            if fci.len() % 8 != 0 {
                return None;
            }
            RtcpPacket::Fir {
                sender_ssrc,
                entries: FirEntries::new(fci),
            }
        }
        (PT_PSFB, FMT_AFB) if fci.starts_with(b"REMB") => decode_remb(sender_ssrc, fci)?,
        _ => other,
    })
}

/// draft-alvestrand-rmcat-remb §2.2: "REMB", Num SSRC, BR Exp (6) / BR Mantissa (18), SSRCs.
fn decode_remb(sender_ssrc: u32, fci: &[u8]) -> Option<RtcpPacket<'_>> {
    let word = be32(fci, 4)?;
    let num = usize::from((word >> 24) as u8);
    let exp = (word >> 18) & 0x3f;
    let mantissa = u64::from(word & 0x3_ffff);
    let ssrcs = fci.get(8..8 + 4 * num)?;
    // A 63-bit exponent can exceed u64; such an estimate means "unlimited".
    let bitrate_bps = u64::try_from(u128::from(mantissa) << exp).unwrap_or(u64::MAX);
    Some(RtcpPacket::Remb {
        sender_ssrc,
        bitrate_bps,
        ssrcs: SsrcList::new(ssrcs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_end_iteration() {
        // an RR with no blocks, then a packet of version 1
        let buf = hex::decode("80c9000100000001" /* RR */).unwrap();
        let mut bad = buf.clone();
        bad.extend_from_slice(&[0x40, 0xc9, 0, 1, 0, 0, 0, 1]);
        bad.extend_from_slice(&buf);
        let items: Vec<_> = iter_compound(&bad).collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert_eq!(items[1], Err(RtcpError::BadVersion(1)));
    }

    #[test]
    fn length_past_end() {
        let buf = hex::decode("80c9000200000001").unwrap();
        let items: Vec<_> = iter_compound(&buf).collect();
        assert_eq!(
            items,
            vec![Err(RtcpError::BadLength {
                declared: 12,
                available: 8
            })]
        );
    }

    #[test]
    fn trailing_garbage() {
        let buf = hex::decode("80c900010000000180").unwrap();
        let items: Vec<_> = iter_compound(&buf).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1], Err(RtcpError::TooShort(1)));
    }

    #[test]
    fn padding() {
        // RR with 4 bytes of padding: P=1, length 2 words + 1
        let buf = hex::decode("a0c900020000000100000004").unwrap();
        let items: Vec<_> = iter_compound(&buf).collect();
        assert!(matches!(
            items[..],
            [Ok(RtcpPacket::ReceiverReport { ssrc: 1, .. })]
        ));
        // padding count larger than the body
        let buf = hex::decode("a0c900020000000100000009").unwrap();
        assert_eq!(
            iter_compound(&buf).next(),
            Some(Err(RtcpError::BadPadding(9)))
        );
        let buf = hex::decode("a0c900020000000100000000").unwrap();
        assert_eq!(
            iter_compound(&buf).next(),
            Some(Err(RtcpError::BadPadding(0)))
        );
        // padding eating into the RR's SSRC makes it malformed
        let buf = hex::decode("a0c900020000000100000008").unwrap();
        assert_eq!(
            iter_compound(&buf).next(),
            Some(Err(RtcpError::Malformed {
                packet_type: 201,
                fmt: 0
            }))
        );
    }

    #[test]
    fn counts_beyond_body_are_malformed() {
        // RR claiming one block with none present
        let buf = hex::decode("81c9000100000001").unwrap();
        assert_eq!(
            iter_compound(&buf).next(),
            Some(Err(RtcpError::Malformed {
                packet_type: 201,
                fmt: 1
            }))
        );
        // BYE claiming two SSRCs with one present
        let buf = hex::decode("82cb000100000001").unwrap();
        assert!(matches!(
            iter_compound(&buf).next(),
            Some(Err(RtcpError::Malformed { .. }))
        ));
        // PLI without media SSRC
        let buf = hex::decode("81ce000100000001").unwrap();
        assert!(matches!(
            iter_compound(&buf).next(),
            Some(Err(RtcpError::Malformed { .. }))
        ));
    }

    #[test]
    fn unknown_feedback_and_types_are_other() {
        // PSFB fmt 15 that is not REMB
        let buf = hex::decode("8fce00030000000100000000414243440000").unwrap();
        // length 3 words => 16 bytes; buf is 18 bytes so a TooShort follows
        let mut it = iter_compound(&buf);
        assert!(matches!(
            it.next(),
            Some(Ok(RtcpPacket::Other {
                packet_type: 206,
                fmt: 15,
                ..
            }))
        ));
        assert_eq!(it.next(), Some(Err(RtcpError::TooShort(2))));
        assert_eq!(it.next(), None);
        // APP (204)
        let buf = hex::decode("80cc000200000001414243440000").unwrap();
        assert!(
            matches!(iter_compound(&buf).next(), Some(Ok(RtcpPacket::Other { packet_type: 204, fmt: 0, body })) if body.len() == 8)
        );
    }

    #[test]
    fn remb_huge_exponent_saturates() {
        // exponent 63, mantissa 0x3ffff
        let buf = hex::decode("8fce0004000000010000000052454d4200ffffff").unwrap();
        match iter_compound(&buf).next() {
            Some(Ok(RtcpPacket::Remb {
                bitrate_bps, ssrcs, ..
            })) => {
                assert_eq!(bitrate_bps, u64::MAX);
                assert!(ssrcs.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }
}
