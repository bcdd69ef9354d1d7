//! RFC 8285 header extension elements, one-byte and two-byte forms.

use super::{RtpHeader, ONE_BYTE_PROFILE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    OneByte,
    TwoByte,
    // Profiles other than RFC 8285 carry opaque data we cannot split.
    Unknown,
}

/// Iterator over `(id, data)` extension elements.
///
/// Padding bytes are skipped. A malformed element (or, in the one-byte form,
/// the reserved id 15) ends the iteration: elements seen before it stand.
#[derive(Debug, Clone)]
pub struct Extensions<'a> {
    form: Form,
    data: &'a [u8],
    pos: usize,
}

impl<'a> Extensions<'a> {
    pub(super) fn new(profile: u16, data: &'a [u8]) -> Self {
        let form = if profile == ONE_BYTE_PROFILE {
            Form::OneByte
        } else if profile & 0xfff0 == 0x1000 {
            Form::TwoByte
        } else {
            Form::Unknown
        };
        Extensions { form, data, pos: 0 }
    }

    fn stop(&mut self) -> Option<(u8, &'a [u8])> {
        self.pos = self.data.len();
        None
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let b = *self.data.get(self.pos)?;
            match self.form {
                Form::Unknown => return self.stop(),
                Form::OneByte => {
                    if b == 0 {
                        self.pos += 1;
                        continue;
                    }
                    let id = b >> 4;
                    // id 0 with a length is not padding and not an element; 15 is the RFC's stop mark.
                    if id == 0 || id == 15 {
                        return self.stop();
                    }
                    let start = self.pos + 1;
                    let end = start + usize::from(b & 0x0f) + 1;
                    let Some(data) = self.data.get(start..end) else {
                        return self.stop();
                    };
                    self.pos = end;
                    return Some((id, data));
                }
                Form::TwoByte => {
                    if b == 0 {
                        self.pos += 1;
                        continue;
                    }
                    let Some(&len) = self.data.get(self.pos + 1) else {
                        return self.stop();
                    };
                    let start = self.pos + 2;
                    let end = start + usize::from(len);
                    let Some(data) = self.data.get(start..end) else {
                        return self.stop();
                    };
                    self.pos = end;
                    return Some((b, data));
                }
            }
        }
    }
}

/// The data of the first extension element with `id`, if any.
pub fn extension<'a>(buf: &'a [u8], hdr: &RtpHeader, id: u8) -> Option<&'a [u8]> {
    hdr.extensions(buf).find(|&(i, _)| i == id).map(|(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::parse;

    fn packet(profile: u16, ext: &[u8]) -> Vec<u8> {
        assert_eq!(ext.len() % 4, 0);
        let mut p = hex::decode("900000010000000000000001").unwrap();
        p.extend_from_slice(&profile.to_be_bytes());
        p.extend_from_slice(&((ext.len() / 4) as u16).to_be_bytes());
        p.extend_from_slice(ext);
        p.extend_from_slice(b"pl");
        p
    }

    #[test]
    fn one_byte_form() {
        // id1 len1 [aa], padding, id3 len3 [01 02 03], id 14 len 1 [bb cc]... then pad
        let ext = [0x10, 0xaa, 0x00, 0x32, 1, 2, 3, 0xe1, 0xbb, 0xcc, 0, 0];
        let p = packet(0xBEDE, &ext);
        let h = parse(&p).unwrap();
        let got: Vec<_> = h.extensions(&p).collect();
        assert_eq!(
            got,
            vec![
                (1, &[0xaa][..]),
                (3, &[1, 2, 3][..]),
                (14, &[0xbb, 0xcc][..])
            ]
        );
        assert_eq!(extension(&p, &h, 3), Some(&[1u8, 2, 3][..]));
        assert_eq!(extension(&p, &h, 2), None);
        assert_eq!(h.payload(&p), b"pl");
    }

    #[test]
    fn one_byte_id15_stops() {
        let ext = [0x10, 0xaa, 0xf0, 0x20, 0xbb, 0, 0, 0];
        let p = packet(0xBEDE, &ext);
        let h = parse(&p).unwrap();
        let got: Vec<_> = h.extensions(&p).collect();
        assert_eq!(got, vec![(1, &[0xaa][..])]);
    }

    #[test]
    fn one_byte_truncated_element_stops() {
        // id 2 claims 16 bytes in a 4-byte block
        let ext = [0x10, 0xaa, 0x2f, 0x00];
        let p = packet(0xBEDE, &ext);
        let h = parse(&p).unwrap();
        assert_eq!(h.extensions(&p).count(), 1);
    }

    #[test]
    fn two_byte_form() {
        // padding, id 1 len 0, id 200 len 3 [1 2 3], id 7 len 1 [9], padding
        let ext = [0x00, 0x01, 0x00, 200, 3, 1, 2, 3, 7, 1, 9, 0];
        let p = packet(0x1003, &ext);
        let h = parse(&p).unwrap();
        let got: Vec<_> = h.extensions(&p).collect();
        assert_eq!(
            got,
            vec![(1, &[][..]), (200, &[1, 2, 3][..]), (7, &[9][..])]
        );
    }

    #[test]
    fn two_byte_truncated_stops() {
        let ext = [0x05, 0x01, 0xaa, 0x06, 0x09, 0, 0, 0];
        let p = packet(0x1000, &ext);
        let h = parse(&p).unwrap();
        let got: Vec<_> = h.extensions(&p).collect();
        assert_eq!(got, vec![(5, &[0xaa][..])]);
    }

    #[test]
    fn unknown_profile_yields_nothing() {
        let p = packet(0x1234, &[0x10, 0xaa, 0, 0]);
        let h = parse(&p).unwrap();
        assert_eq!(h.extensions(&p).count(), 0);
    }
}
