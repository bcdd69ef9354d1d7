//! Fixed header, CSRC list, extension block and padding (RFC 3550 §5.1, §5.3.1).

use super::{ext::Extensions, RtpError, FIXED_HEADER_LEN};

/// Where the header extension's data lives inside the parsed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtBlock {
    /// The 16-bit "defined by profile" field (0xBEDE, 0x100X, or anything else).
    pub profile: u16,
    /// Byte offset of the extension data (after the 4-byte extension header).
    pub offset: usize,
    /// Length of the extension data in bytes (a multiple of 4).
    pub len: usize,
}

/// A validated RTP header. Offsets refer to the buffer given to [`parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrc_count: u8,
    pub padding: bool,
    /// Fixed header + CSRC list + extension block: where the payload starts.
    pub header_len: usize,
    /// Payload bytes, excluding any padding.
    pub payload_len: usize,
    pub ext: Option<ExtBlock>,
}

#[inline]
fn be16(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

#[inline]
fn be32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Parses and bounds-checks an RTP packet header.
///
/// Checks version 2, that CSRCs and the extension fit, and that the padding
/// count (when P is set) is non-zero and leaves room for the header.
pub fn parse(buf: &[u8]) -> Result<RtpHeader, RtpError> {
    if buf.len() < FIXED_HEADER_LEN {
        return Err(RtpError::TooShort(buf.len()));
    }
    let b0 = buf[0];
    let version = b0 >> 6;
    if version != 2 {
        return Err(RtpError::BadVersion(version));
    }
    let padding = b0 & 0x20 != 0;
    let has_ext = b0 & 0x10 != 0;
    let csrc_count = b0 & 0x0f;
    let b1 = buf[1];

    let mut header_len = FIXED_HEADER_LEN + 4 * usize::from(csrc_count);
    if buf.len() < header_len {
        return Err(RtpError::TooShort(buf.len()));
    }
    let ext = if has_ext {
        let profile = be16(buf, header_len).ok_or(RtpError::BadExtension)?;
        let words = be16(buf, header_len + 2).ok_or(RtpError::BadExtension)?;
        let offset = header_len + 4;
        let len = 4 * usize::from(words);
        if buf.len() < offset + len {
            return Err(RtpError::BadExtension);
        }
        header_len = offset + len;
        Some(ExtBlock {
            profile,
            offset,
            len,
        })
    } else {
        None
    };

    let pad = if padding {
        // The count includes itself, so zero can only come from a broken sender.
        let count = buf[buf.len() - 1];
        if count == 0 || header_len + usize::from(count) > buf.len() {
            return Err(RtpError::BadPadding(count));
        }
        usize::from(count)
    } else {
        0
    };

    Ok(RtpHeader {
        marker: b1 & 0x80 != 0,
        payload_type: b1 & 0x7f,
        sequence: u16::from_be_bytes([buf[2], buf[3]]),
        timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        csrc_count,
        padding,
        header_len,
        payload_len: buf.len() - header_len - pad,
        ext,
    })
}

impl RtpHeader {
    /// The payload without padding. Empty if `buf` is not the parsed packet.
    pub fn payload<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.header_len..self.header_len + self.payload_len)
            .unwrap_or(&[])
    }

    /// The `i`-th contributing source, if present.
    pub fn csrc(&self, buf: &[u8], i: usize) -> Option<u32> {
        if i >= usize::from(self.csrc_count) {
            return None;
        }
        be32(buf, FIXED_HEADER_LEN + 4 * i)
    }

    /// Iterates the RFC 8285 extension elements (empty for other profiles).
    pub fn extensions<'a>(&self, buf: &'a [u8]) -> Extensions<'a> {
        match self.ext {
            Some(e) => Extensions::new(
                e.profile,
                buf.get(e.offset..e.offset + e.len).unwrap_or(&[]),
            ),
            None => Extensions::new(0, &[]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic() -> Vec<u8> {
        // V=2, M=1, PT=96, seq=0x1234, ts=0xdeadbeef, ssrc=0x01020304, payload "abc"
        hex::decode("80e01234deadbeef01020304616263").unwrap()
    }

    #[test]
    fn parses_fixed_header() {
        let p = basic();
        let h = parse(&p).unwrap();
        assert!(h.marker);
        assert_eq!(h.payload_type, 96);
        assert_eq!(h.sequence, 0x1234);
        assert_eq!(h.timestamp, 0xdeadbeef);
        assert_eq!(h.ssrc, 0x01020304);
        assert_eq!(h.header_len, 12);
        assert_eq!(h.payload(&p), b"abc");
        assert!(h.ext.is_none());
        assert!(!h.padding);
    }

    #[test]
    fn csrc_extension_and_padding() {
        // CC=2, X=1, P=1
        let mut p = hex::decode("b26f0001000000640000000a").unwrap();
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]); // CSRCs
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]); // one ext word
        p.extend_from_slice(b"payload");
        p.extend_from_slice(&[0, 0, 3]); // 3 padding bytes
        let h = parse(&p).unwrap();
        assert_eq!(h.csrc_count, 2);
        assert_eq!(h.csrc(&p, 1), Some(2));
        assert_eq!(h.csrc(&p, 2), None);
        assert_eq!(
            h.ext,
            Some(ExtBlock {
                profile: 0xBEDE,
                offset: 24,
                len: 4
            })
        );
        assert_eq!(h.header_len, 28);
        assert!(h.padding);
        assert_eq!(h.payload(&p), b"payload");
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse(&[0x80; 11]), Err(RtpError::TooShort(11)));
        let mut p = basic();
        p[0] = 0x40;
        assert_eq!(parse(&p), Err(RtpError::BadVersion(1)));
        let mut p = basic();
        p[0] = 0x81; // one CSRC, but only 3 bytes follow
        assert_eq!(parse(&p), Err(RtpError::TooShort(15)));
        let mut p = basic();
        p[0] = 0x90; // extension header needs 4 bytes; only 3 present
        assert_eq!(parse(&p), Err(RtpError::BadExtension));
        let mut p = basic();
        p[0] = 0xa0; // padding count 'c' = 99 > packet
        assert_eq!(parse(&p), Err(RtpError::BadPadding(b'c')));
        let mut p = basic();
        p[0] = 0xa0;
        *p.last_mut().unwrap() = 0;
        assert_eq!(parse(&p), Err(RtpError::BadPadding(0)));
        // extension length word claims more than the packet holds
        let p = hex::decode("900000010000000000000000bede0002").unwrap();
        assert_eq!(parse(&p), Err(RtpError::BadExtension));
    }

    #[test]
    fn padding_may_consume_whole_payload() {
        let p = hex::decode("a000000100000000000000000004").unwrap();
        assert_eq!(parse(&p), Err(RtpError::BadPadding(4)));
        let p = hex::decode("a0000001000000000000000000000002").unwrap();
        let h = parse(&p).unwrap();
        assert_eq!(h.payload_len, 2);
        let p = hex::decode("a0000001000000000000000000000004").unwrap();
        assert_eq!(parse(&p).unwrap().payload_len, 0);
    }

    #[test]
    fn payload_of_foreign_buffer_is_empty() {
        let p = basic();
        let h = parse(&p).unwrap();
        assert_eq!(h.payload(&p[..5]), b"");
    }
}
