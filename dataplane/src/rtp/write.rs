//! Header writers for rewritten packets (downtracks build a fresh header and copy the payload after it).

use super::{RtpError, FIXED_HEADER_LEN, ONE_BYTE_PROFILE};

/// RFC 8285 §4.3: 0x100 and 4 bits the application may use (sfud writes 0).
const TWO_BYTE_PROFILE: u16 = 0x1000;

/// The fields a forwarded packet's header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeaderFields {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

fn need(out: &[u8], need: usize) -> Result<(), RtpError> {
    if out.len() < need {
        return Err(RtpError::BufferTooSmall {
            need,
            have: out.len(),
        });
    }
    Ok(())
}

fn put_fixed(out: &mut [u8], f: &HeaderFields, has_ext: bool) {
    out[0] = 0x80 | if has_ext { 0x10 } else { 0 };
    out[1] = (u8::from(f.marker) << 7) | (f.payload_type & 0x7f);
    out[2..4].copy_from_slice(&f.sequence.to_be_bytes());
    out[4..8].copy_from_slice(&f.timestamp.to_be_bytes());
    out[8..12].copy_from_slice(&f.ssrc.to_be_bytes());
}

/// Writes a 12-byte header: V=2, no padding, no CSRC, no extension.
pub fn write_header(out: &mut [u8], f: &HeaderFields) -> Result<usize, RtpError> {
    need(out, FIXED_HEADER_LEN)?;
    put_fixed(out, f, false);
    Ok(FIXED_HEADER_LEN)
}

/// Writes a header with an extension block holding the given `(id, data)`
/// elements, zero-padded to a 32-bit boundary (RFC 8285).
///
/// The one-byte form when every element fits it (ids 1..=14, data 1..=16
/// bytes), else the two-byte form (ids 1..=255, data 1..=255 bytes). A
/// caller that must not switch forms mid-stream (the peer did not negotiate
/// `a=extmap-allow-mixed`) leaves long elements out. With no elements the
/// extension block is omitted entirely, as [`write_header`] would.
pub fn write_header_with_extensions(
    out: &mut [u8],
    f: &HeaderFields,
    exts: &[(u8, &[u8])],
) -> Result<usize, RtpError> {
    if exts.is_empty() {
        return write_header(out, f);
    }
    let one_byte = exts.iter().all(|(id, d)| *id <= 14 && d.len() <= 16);
    let head = if one_byte { 1 } else { 2 };
    let mut data_len = 0usize;
    for &(id, data) in exts {
        if id == 0 || data.is_empty() || data.len() > usize::from(u8::MAX) {
            return Err(RtpError::BadExtensionElement {
                id,
                len: data.len(),
            });
        }
        data_len += head + data.len();
    }
    let padded = data_len.next_multiple_of(4);
    // At most 255 * 257 bytes, but the caller controls the slice length.
    let words = u16::try_from(padded / 4).map_err(|_| RtpError::BadExtensionElement {
        id: 0,
        len: data_len,
    })?;
    let total = FIXED_HEADER_LEN + 4 + padded;
    need(out, total)?;

    put_fixed(out, f, true);
    let profile = if one_byte { ONE_BYTE_PROFILE } else { TWO_BYTE_PROFILE };
    out[12..14].copy_from_slice(&profile.to_be_bytes());
    out[14..16].copy_from_slice(&words.to_be_bytes());
    let mut pos = 16;
    for &(id, data) in exts {
        if one_byte {
            out[pos] = (id << 4) | (data.len() as u8 - 1);
        } else {
            out[pos] = id;
            out[pos + 1] = data.len() as u8;
        }
        out[pos + head..pos + head + data.len()].copy_from_slice(data);
        pos += head + data.len();
    }
    out[pos..total].fill(0);
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::parse;

    const F: HeaderFields = HeaderFields {
        marker: true,
        payload_type: 111,
        sequence: 0xfffe,
        timestamp: 0x11223344,
        ssrc: 0xcafebabe,
    };

    #[test]
    fn fixed_header_known_bytes() {
        let mut out = [0u8; 12];
        assert_eq!(write_header(&mut out, &F), Ok(12));
        assert_eq!(hex::encode(out), "80effffe11223344cafebabe");
    }

    #[test]
    fn fixed_header_round_trip() {
        let mut out = [0u8; 12];
        write_header(&mut out, &F).unwrap();
        let h = parse(&out).unwrap();
        assert_eq!(
            HeaderFields {
                marker: h.marker,
                payload_type: h.payload_type,
                sequence: h.sequence,
                timestamp: h.timestamp,
                ssrc: h.ssrc
            },
            F
        );
        assert_eq!(h.payload_len, 0);
    }

    #[test]
    fn short_buffer_is_an_error() {
        let mut out = [0u8; 11];
        assert_eq!(
            write_header(&mut out, &F),
            Err(RtpError::BufferTooSmall { need: 12, have: 11 })
        );
        let mut out = [0u8; 19];
        assert_eq!(
            write_header_with_extensions(&mut out, &F, &[(1, &[1, 2, 3, 4])]),
            Err(RtpError::BufferTooSmall { need: 24, have: 19 })
        );
    }

    #[test]
    fn extensions_known_bytes_and_round_trip() {
        let mut out = [0xffu8; 64];
        let n =
            write_header_with_extensions(&mut out, &F, &[(1, &[0xaa]), (5, &[1, 2, 3])]).unwrap();
        assert_eq!(n, 24);
        assert_eq!(
            hex::encode(&out[..n]),
            "90effffe11223344cafebabebede000210aa520102030000"
        );
        let h = parse(&out[..n]).unwrap();
        let got: Vec<_> = h.extensions(&out[..n]).collect();
        assert_eq!(got, vec![(1, &[0xaa][..]), (5, &[1, 2, 3][..])]);
        assert_eq!(h.header_len, n);
    }

    #[test]
    fn invalid_elements_rejected() {
        let mut out = [0u8; 64];
        assert!(write_header_with_extensions(&mut out, &F, &[(0, &[1])]).is_err());
        assert!(write_header_with_extensions(&mut out, &F, &[(3, &[])]).is_err());
        assert!(write_header_with_extensions(&mut out, &F, &[(3, &[0; 256])]).is_err());
        assert_eq!(write_header_with_extensions(&mut out, &F, &[]), Ok(12));
    }

    /// A long element (a dependency descriptor with its structure) or an id
    /// over 14 needs the two-byte form, for the whole packet.
    #[test]
    fn two_byte_form_when_an_element_needs_it() {
        let mut out = [0xffu8; 128];
        let long = [7u8; 17];
        let n = write_header_with_extensions(&mut out, &F, &[(1, &[0xaa]), (9, &long)]).unwrap();
        // 2+1 and 2+17 bytes of elements, padded to 24.
        assert_eq!(n, 12 + 4 + 24);
        assert_eq!(hex::encode(&out[12..19]), "10000006" .to_owned() + "0101aa");
        let h = parse(&out[..n]).unwrap();
        let got: Vec<_> = h.extensions(&out[..n]).collect();
        assert_eq!(got, vec![(1, &[0xaa][..]), (9, &long[..])]);
        let n = write_header_with_extensions(&mut out, &F, &[(15, &[1])]).unwrap();
        assert_eq!(parse(&out[..n]).unwrap().extensions(&out[..n]).collect::<Vec<_>>(), vec![(15, &[1][..])]);
    }
}
