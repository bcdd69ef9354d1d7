//! Zero-copy, allocation-free STUN message view.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::consts::{attr, method, HEADER_LEN, MAGIC_COOKIE};
use super::error::StunError;
use super::integrity::{fingerprint, IntegrityKey, MI_LEN};
use super::msg_type::{self, Class};

/// Cheap demux test: could `buf` be exactly one STUN message?
///
/// Checks the two zero top bits, the magic cookie, and that the length
/// field is a multiple of 4 that accounts for every byte after the header.
pub fn is_stun(buf: &[u8]) -> bool {
    let (Some(&b0), Some(len), Some(cookie)) = (buf.first(), be16(buf, 2), be32(buf, 4)) else {
        return false;
    };
    b0 & 0xC0 == 0
        && cookie == MAGIC_COOKIE
        && len % 4 == 0
        && buf.len() >= HEADER_LEN
        && usize::from(len) == buf.len() - HEADER_LEN
}

/// For ufrag demux before any session is known: our half of the USERNAME
/// (the part before ':') of a Binding request. `None` for anything else.
pub fn local_ufrag(buf: &[u8]) -> Option<&[u8]> {
    let msg = Message::parse(buf).ok()?;
    if msg.class() != Class::Request || msg.method() != method::BINDING {
        return None;
    }
    let user = msg.username()?;
    let colon = user.iter().position(|&b| b == b':')?;
    user.get(..colon)
}

/// A validated view of one STUN message.
///
/// `parse` walks the attributes once to check every TLV stays in bounds;
/// lookups re-walk, which for the handful of attributes real messages carry
/// is cheaper than keeping an index.
#[derive(Clone, Copy)]
pub struct Message<'a> {
    buf: &'a [u8],
    class: Class,
    method: u16,
    tid: &'a [u8; 12],
    /// Offset of the first MESSAGE-INTEGRITY attribute header.
    mi_off: Option<usize>,
    /// Offset of FINGERPRINT, only when it is the last attribute (its only
    /// legal place).
    fp_off: Option<usize>,
    /// Attributes at or past this offset follow MESSAGE-INTEGRITY and must
    /// be ignored (RFC 8489 §14.5), FINGERPRINT excepted.
    visible_end: usize,
}

impl<'a> Message<'a> {
    /// `buf` must hold exactly one message (one UDP datagram); stream
    /// transports (TURN over TCP/TLS) must frame by the header length first.
    pub fn parse(buf: &'a [u8]) -> Result<Self, StunError> {
        if !is_stun(buf) {
            return Err(StunError::NotStun);
        }
        let typ = be16(buf, 0).ok_or(StunError::NotStun)?;
        let tid: &[u8; 12] = buf
            .get(8..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(StunError::NotStun)?;
        let (class, method) = msg_type::decode(typ);

        let end = buf.len();
        let mut off = HEADER_LEN;
        let mut mi: Option<(usize, usize)> = None;
        let mut last: Option<(usize, u16, u16)> = None;
        while off < end {
            let (t, len) = be16(buf, off)
                .zip(be16(buf, off + 2))
                .ok_or(StunError::AttrOverflow(off))?;
            let next = off + 4 + padded(len);
            if next > end {
                return Err(StunError::AttrOverflow(off));
            }
            if t == attr::MESSAGE_INTEGRITY && mi.is_none() {
                mi = Some((off, next));
            }
            last = Some((off, t, len));
            off = next;
        }
        let fp_off = match last {
            Some((o, attr::FINGERPRINT, 4)) => Some(o),
            _ => None,
        };
        Ok(Self {
            buf,
            class,
            method,
            tid,
            mi_off: mi.map(|(o, _)| o),
            fp_off,
            visible_end: mi.map_or(end, |(_, next)| next),
        })
    }

    pub fn class(&self) -> Class {
        self.class
    }

    pub fn method(&self) -> u16 {
        self.method
    }

    pub fn transaction_id(&self) -> &'a [u8; 12] {
        self.tid
    }

    /// The whole message as received.
    pub fn raw(&self) -> &'a [u8] {
        self.buf
    }

    /// Attributes in wire order, excluding those that follow
    /// MESSAGE-INTEGRITY (other than FINGERPRINT).
    pub fn attrs(&self) -> Attrs<'a> {
        Attrs {
            buf: self.buf,
            off: HEADER_LEN,
            visible_end: self.visible_end,
            fp_off: self.fp_off.filter(|&o| o >= self.visible_end),
        }
    }

    /// First occurrence of `typ`: later duplicates are ignored, as RFC 8489
    /// §14 allows.
    pub fn attr(&self, typ: u16) -> Option<&'a [u8]> {
        self.attrs().find(|&(t, _)| t == typ).map(|(_, v)| v)
    }

    pub fn username(&self) -> Option<&'a [u8]> {
        self.attr(attr::USERNAME)
    }

    pub fn realm(&self) -> Option<&'a [u8]> {
        self.attr(attr::REALM)
    }

    pub fn nonce(&self) -> Option<&'a [u8]> {
        self.attr(attr::NONCE)
    }

    pub fn software(&self) -> Option<&'a [u8]> {
        self.attr(attr::SOFTWARE)
    }

    /// Decodes an XOR-*-ADDRESS attribute (XOR-MAPPED, XOR-PEER,
    /// XOR-RELAYED), IPv4 or IPv6.
    pub fn xor_address(&self, typ: u16) -> Option<SocketAddr> {
        let v = self.attr(typ)?;
        let port = be16(v, 2)? ^ (MAGIC_COOKIE >> 16) as u16;
        let ip = match (v.get(1)?, v.len()) {
            (0x01, 8) => {
                let x = be32(v, 4)? ^ MAGIC_COOKIE;
                IpAddr::V4(Ipv4Addr::from(x))
            }
            (0x02, 20) => {
                let mut mask = [0u8; 16];
                mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
                mask[4..].copy_from_slice(self.tid);
                let mut ip = [0u8; 16];
                for ((o, a), m) in ip.iter_mut().zip(v.get(4..20)?).zip(mask) {
                    *o = a ^ m;
                }
                IpAddr::V6(Ipv6Addr::from(ip))
            }
            _ => return None,
        };
        Some(SocketAddr::new(ip, port))
    }

    pub fn xor_mapped_address(&self) -> Option<SocketAddr> {
        self.xor_address(attr::XOR_MAPPED_ADDRESS)
    }

    /// ERROR-CODE as (code, reason). A reason that is not UTF-8 reads as "".
    pub fn error_code(&self) -> Option<(u16, &'a str)> {
        let v = self.attr(attr::ERROR_CODE)?;
        let class = u16::from(v.get(2)? & 0x07);
        let number = u16::from(*v.get(3)?);
        if !(3..=6).contains(&class) || number > 99 {
            return None;
        }
        let reason = std::str::from_utf8(v.get(4..)?).unwrap_or("");
        Some((class * 100 + number, reason))
    }

    pub fn priority(&self) -> Option<u32> {
        self.u32_attr(attr::PRIORITY)
    }

    pub fn use_candidate(&self) -> bool {
        self.attr(attr::USE_CANDIDATE).is_some()
    }

    pub fn ice_controlling(&self) -> Option<u64> {
        self.u64_attr(attr::ICE_CONTROLLING)
    }

    pub fn ice_controlled(&self) -> Option<u64> {
        self.u64_attr(attr::ICE_CONTROLLED)
    }

    pub fn lifetime(&self) -> Option<u32> {
        self.u32_attr(attr::LIFETIME)
    }

    pub fn u32_attr(&self, typ: u16) -> Option<u32> {
        self.attr(typ)
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(u32::from_be_bytes)
    }

    pub fn u64_attr(&self, typ: u16) -> Option<u64> {
        self.attr(typ)
            .and_then(|v| <[u8; 8]>::try_from(v).ok())
            .map(u64::from_be_bytes)
    }

    pub fn has_integrity(&self) -> bool {
        self.mi_off.is_some()
    }

    pub fn has_fingerprint(&self) -> bool {
        self.fp_off.is_some()
    }

    /// Verifies MESSAGE-INTEGRITY with a raw key. Prefer
    /// [`check_integrity_keyed`](Self::check_integrity_keyed) when the same
    /// key checks many messages.
    pub fn check_integrity(&self, key: &[u8]) -> Result<(), StunError> {
        self.check_integrity_keyed(&IntegrityKey::new(key))
    }

    /// The HMAC covers the message up to MESSAGE-INTEGRITY, with the header
    /// length rewritten to end just after MESSAGE-INTEGRITY (RFC 8489
    /// §14.5), so a trailing FINGERPRINT does not change it.
    pub fn check_integrity_keyed(&self, key: &IntegrityKey) -> Result<(), StunError> {
        let off = self.mi_off.ok_or(StunError::MissingIntegrity)?;
        if be16(self.buf, off + 2) != Some(MI_LEN as u16) {
            return Err(StunError::IntegrityMismatch);
        }
        let tag = self
            .buf
            .get(off + 4..off + 4 + MI_LEN)
            .ok_or(StunError::IntegrityMismatch)?;
        let covered = u16::try_from(off + 4 + MI_LEN - HEADER_LEN)
            .map_err(|_| StunError::IntegrityMismatch)?;
        let header4 = self.patched_header(covered)?;
        let rest = self.buf.get(4..off).ok_or(StunError::IntegrityMismatch)?;
        if key.verify(&header4, rest, tag) {
            Ok(())
        } else {
            Err(StunError::IntegrityMismatch)
        }
    }

    /// FINGERPRINT covers everything before it; being last, the header
    /// length already counts it.
    pub fn check_fingerprint(&self) -> Result<(), StunError> {
        let off = self.fp_off.ok_or(StunError::MissingFingerprint)?;
        let want = be32(self.buf, off + 4).ok_or(StunError::MissingFingerprint)?;
        let covered = self.buf.get(..off).ok_or(StunError::MissingFingerprint)?;
        if fingerprint(covered) == want {
            Ok(())
        } else {
            Err(StunError::FingerprintMismatch)
        }
    }

    fn patched_header(&self, len: u16) -> Result<[u8; 4], StunError> {
        let t = self.buf.get(..2).ok_or(StunError::NotStun)?;
        let l = len.to_be_bytes();
        Ok([t[0], t[1], l[0], l[1]])
    }
}

impl std::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("class", &self.class)
            .field("method", &format_args!("{:#05x}", self.method))
            .field("len", &self.buf.len())
            .finish_non_exhaustive()
    }
}

/// Iterator over `(type, value)` pairs; see [`Message::attrs`].
#[derive(Clone)]
pub struct Attrs<'a> {
    buf: &'a [u8],
    off: usize,
    visible_end: usize,
    fp_off: Option<usize>,
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.off >= self.visible_end {
            let fp = self.fp_off.take()?;
            return tlv(self.buf, fp).map(|(t, v, _)| (t, v));
        }
        match tlv(self.buf, self.off) {
            Some((t, v, next)) => {
                self.off = next;
                Some((t, v))
            }
            None => {
                // Unreachable for a parsed message; stop rather than loop.
                self.off = self.visible_end;
                self.fp_off = None;
                None
            }
        }
    }
}

/// (type, value, offset of next attribute) of the TLV at `off`.
fn tlv(buf: &[u8], off: usize) -> Option<(u16, &[u8], usize)> {
    let t = be16(buf, off)?;
    let len = be16(buf, off + 2)?;
    let v = buf.get(off + 4..off + 4 + usize::from(len))?;
    Some((t, v, off + 4 + padded(len)))
}

pub(crate) fn padded(len: u16) -> usize {
    (usize::from(len) + 3) & !3
}

fn be16(buf: &[u8], off: usize) -> Option<u16> {
    let b = buf.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(buf: &[u8], off: usize) -> Option<u32> {
    let b = buf.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(typ: u16, len: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&typ.to_be_bytes());
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        v.extend_from_slice(&[7u8; 12]);
        v
    }

    #[test]
    fn is_stun_checks() {
        assert!(is_stun(&header(0x0001, 0)));
        assert!(!is_stun(&header(0x0001, 0)[..19]));
        assert!(!is_stun(&header(0x4001, 0)));
        assert!(!is_stun(&header(0x0001, 4)));
        let mut b = header(0x0001, 4);
        b.extend_from_slice(&[0; 4]);
        assert!(is_stun(&b));
        b[4] = 0;
        assert!(!is_stun(&b));
        let mut b = header(0x0001, 2);
        b.extend_from_slice(&[0; 2]);
        assert!(!is_stun(&b));
    }

    #[test]
    fn attr_overflow_rejected() {
        let mut b = header(0x0001, 8);
        b.extend_from_slice(&[0x00, 0x06, 0x00, 0x05, b'a', b'b', b'c', b'd']);
        assert_eq!(Message::parse(&b).unwrap_err(), StunError::AttrOverflow(20));
        let mut b = header(0x0001, 8);
        b.extend_from_slice(&[0x00, 0x06, 0x00, 0x04, b'a', b'b', b'c', b'd']);
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.username(), Some(&b"abcd"[..]));
    }

    #[test]
    fn attributes_after_integrity_ignored() {
        let mut b = header(0x0001, 0);
        // MI (zeros), then USERNAME which must be invisible.
        b.extend_from_slice(&[0x00, 0x08, 0x00, 0x14]);
        b.extend_from_slice(&[0; 20]);
        b.extend_from_slice(&[0x00, 0x06, 0x00, 0x04, b'a', b'b', b'c', b'd']);
        let len = (b.len() - 20) as u16;
        b[2..4].copy_from_slice(&len.to_be_bytes());
        let m = Message::parse(&b).unwrap();
        assert!(m.has_integrity());
        assert_eq!(m.username(), None);
        assert_eq!(m.attrs().count(), 1);
    }

    #[test]
    fn local_ufrag_only_binding_requests() {
        let mut b = header(0x0001, 12);
        b.extend_from_slice(&[0x00, 0x06, 0x00, 0x07]);
        b.extend_from_slice(b"abc:xyz\0");
        assert_eq!(local_ufrag(&b), Some(&b"abc"[..]));
        b[1] = 0x11; // error response
        assert_eq!(local_ufrag(&b), None);
        b[1] = 0x01;
        b[24..31].copy_from_slice(b"abcdxyz");
        assert_eq!(local_ufrag(&b), None, "no colon");
    }
}
