//! The few header fields SRTP needs: where the RTP payload starts, SSRC, sequence number.
//! Full RTP/RTCP parsing lives elsewhere; this only validates what the transforms rely on.

use super::SrtpError;

pub(crate) const RTP_FIXED_HEADER_LEN: usize = 12;
/// RTCP header up to and including the sender SSRC: what SRTCP leaves in the clear.
pub(crate) const RTCP_HEADER_LEN: usize = 8;

/// What the transforms need from an RTP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RtpHeader {
    /// Bytes before the payload: fixed header, CSRCs and header extension.
    pub len: usize,
    pub seq: u16,
    pub ssrc: u32,
}

#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Parses the RTP header of `packet` (which must not include any SRTP tag).
#[inline]
pub(crate) fn parse_rtp(packet: &[u8]) -> Result<RtpHeader, SrtpError> {
    let first = *packet.first().ok_or(SrtpError::Malformed)?;
    if first >> 6 != 2 || packet.len() < RTP_FIXED_HEADER_LEN {
        return Err(SrtpError::Malformed);
    }
    let csrc_count = usize::from(first & 0x0f);
    let mut len = RTP_FIXED_HEADER_LEN + 4 * csrc_count;
    if first & 0x10 != 0 {
        // Header extension: 16-bit profile, 16-bit length in 32-bit words.
        let words = be16(packet, len + 2).ok_or(SrtpError::Malformed)?;
        len += 4 + 4 * usize::from(words);
    }
    if len > packet.len() {
        return Err(SrtpError::Malformed);
    }
    Ok(RtpHeader {
        len,
        seq: be16(packet, 2).ok_or(SrtpError::Malformed)?,
        ssrc: be32(packet, 8).ok_or(SrtpError::Malformed)?,
    })
}

/// Sender SSRC of the first RTCP packet in a compound packet, after checking the version.
#[inline]
pub(crate) fn parse_rtcp_ssrc(packet: &[u8]) -> Result<u32, SrtpError> {
    let first = *packet.first().ok_or(SrtpError::Malformed)?;
    if first >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    be32(packet, 4).ok_or(SrtpError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_header_lengths() {
        let mut p = [0u8; 40];
        p[0] = 0x80;
        p[2..4].copy_from_slice(&0x1234u16.to_be_bytes());
        p[8..12].copy_from_slice(&0xdeadbeefu32.to_be_bytes());
        assert_eq!(
            parse_rtp(&p).unwrap(),
            RtpHeader {
                len: 12,
                seq: 0x1234,
                ssrc: 0xdeadbeef
            }
        );
        p[0] = 0x82; // two CSRCs
        assert_eq!(parse_rtp(&p).unwrap().len, 20);
        p[0] = 0x92; // + extension of 2 words
        p[22..24].copy_from_slice(&2u16.to_be_bytes());
        assert_eq!(parse_rtp(&p).unwrap().len, 32);
        assert_eq!(parse_rtp(&p[..31]), Err(SrtpError::Malformed));
        p[0] = 0x40;
        assert_eq!(parse_rtp(&p), Err(SrtpError::Malformed));
        assert_eq!(parse_rtp(&[]), Err(SrtpError::Malformed));
        assert_eq!(parse_rtp(&[0x80; 11]), Err(SrtpError::Malformed));
    }
}
