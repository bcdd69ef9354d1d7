//! The RTX payload format (RFC 4588 §4): a retransmission carries the
//! original sequence number (OSN) in its first two payload bytes, then the
//! original payload. The RTP header around it (RTX SSRC, RTX payload type,
//! the RTX stream's own sequence number) is the caller's business.

/// Bytes the OSN adds in front of the original payload.
pub const OSN_LEN: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtxError {
    #[error("RTX payload of {0} bytes has no room for the original sequence number")]
    TooShort(usize),
    #[error("output buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall { need: usize, have: usize },
}

/// The original sequence number (first two payload bytes) and the original payload.
///
/// An empty RTX payload (a padding-only probe, RFC 4588 does allow them) is
/// `TooShort`: there is nothing to recover from it.
pub fn decapsulate(rtx_payload: &[u8]) -> Result<(u16, &[u8]), RtxError> {
    match rtx_payload {
        [hi, lo, payload @ ..] => Ok((u16::from_be_bytes([*hi, *lo]), payload)),
        _ => Err(RtxError::TooShort(rtx_payload.len())),
    }
}

/// Writes OSN + payload into `out`; returns bytes written.
pub fn encapsulate(out: &mut [u8], osn: u16, payload: &[u8]) -> Result<usize, RtxError> {
    let need = OSN_LEN + payload.len();
    let Some(dst) = out.get_mut(..need) else {
        return Err(RtxError::BufferTooSmall {
            need,
            have: out.len(),
        });
    };
    let (head, body) = dst.split_at_mut(OSN_LEN);
    head.copy_from_slice(&osn.to_be_bytes());
    body.copy_from_slice(payload);
    Ok(need)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let mut buf = [0u8; 64];
        let n = encapsulate(&mut buf, 0xBEEF, b"vp8 data").unwrap();
        assert_eq!(n, 10);
        assert_eq!(decapsulate(&buf[..n]), Ok((0xBEEF, &b"vp8 data"[..])));
    }

    #[test]
    fn rfc4588_shaped_packet() {
        // A whole RTX packet: RTP header (PT 97 = rtx, seq 7, ts, rtx SSRC),
        // then OSN 0x1234 and the original payload. The RTP header is
        // parsed by the caller; this module sees what follows it.
        let packet = hex::decode(concat!(
            "80610007", "0000a000", "cafebabe", "1234", "9010", "deadbeef"
        ))
        .unwrap();
        let (osn, original) = decapsulate(&packet[12..]).unwrap();
        assert_eq!(osn, 0x1234);
        assert_eq!(original, [0x90, 0x10, 0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn osn_only_is_an_empty_payload() {
        assert_eq!(decapsulate(&[0, 5]), Ok((5, &[][..])));
    }

    #[test]
    fn short_input_is_an_error() {
        assert_eq!(decapsulate(&[]), Err(RtxError::TooShort(0)));
        assert_eq!(decapsulate(&[1]), Err(RtxError::TooShort(1)));
    }

    #[test]
    fn small_output_is_an_error() {
        let mut buf = [0u8; 5];
        assert_eq!(
            encapsulate(&mut buf, 1, b"1234"),
            Err(RtxError::BufferTooSmall { need: 6, have: 5 })
        );
        assert_eq!(encapsulate(&mut buf, 1, b"123"), Ok(5));
    }

    proptest! {
        #[test]
        fn decapsulate_never_panics(buf in prop::collection::vec(any::<u8>(), 0..64)) {
            match decapsulate(&buf) {
                Ok((osn, rest)) => {
                    prop_assert_eq!(osn.to_be_bytes(), [buf[0], buf[1]]);
                    prop_assert_eq!(rest, &buf[2..]);
                }
                Err(e) => prop_assert_eq!(e, RtxError::TooShort(buf.len())),
            }
        }

        #[test]
        fn encapsulate_then_decapsulate_is_identity(
            osn: u16,
            payload in prop::collection::vec(any::<u8>(), 0..1500),
            spare in 0usize..8,
        ) {
            let mut out = vec![0u8; OSN_LEN + payload.len() + spare];
            let n = encapsulate(&mut out, osn, &payload).unwrap();
            prop_assert_eq!(n, OSN_LEN + payload.len());
            prop_assert_eq!(decapsulate(&out[..n]), Ok((osn, &payload[..])));
        }
    }
}
