//! Encoder into a caller-provided buffer.

use std::net::{IpAddr, SocketAddr};

use super::consts::{attr, HEADER_LEN, MAGIC_COOKIE};
use super::error::StunError;
use super::integrity::{fingerprint, IntegrityKey, MI_LEN};
use super::message::padded;
use super::msg_type::{self, Class};

/// Builds one message in place. The header length is kept current after
/// every attribute, so MESSAGE-INTEGRITY and FINGERPRINT can be computed
/// over the buffer as it stands.
pub struct MessageWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    pad: u8,
    sealed: bool,
}

impl<'b> MessageWriter<'b> {
    pub fn new(buf: &'b mut [u8], class: Class, method: u16, tid: &[u8; 12]) -> Result<Self, StunError> {
        if method > 0x0FFF {
            return Err(StunError::InvalidMethod(method));
        }
        let hdr = buf.get_mut(..HEADER_LEN).ok_or(StunError::BufferTooSmall)?;
        hdr[0..2].copy_from_slice(&msg_type::encode(class, method).to_be_bytes());
        hdr[2..4].copy_from_slice(&[0, 0]);
        hdr[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        hdr[8..20].copy_from_slice(tid);
        Ok(Self { buf, len: HEADER_LEN, pad: 0, sealed: false })
    }

    /// Byte used to pad values to 4 bytes (receivers ignore it; default 0).
    /// Exists so test vectors that pad with spaces can be reproduced.
    pub fn set_padding(&mut self, byte: u8) {
        self.pad = byte;
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN
    }

    pub fn add_attr(&mut self, typ: u16, value: &[u8]) -> Result<(), StunError> {
        let dst = self.reserve(typ, value.len())?;
        dst[..value.len()].copy_from_slice(value);
        Ok(())
    }

    pub fn add_u32(&mut self, typ: u16, value: u32) -> Result<(), StunError> {
        self.add_attr(typ, &value.to_be_bytes())
    }

    pub fn add_u64(&mut self, typ: u16, value: u64) -> Result<(), StunError> {
        self.add_attr(typ, &value.to_be_bytes())
    }

    /// XOR-*-ADDRESS: port XOR the cookie's top half, IPv4 XOR the cookie,
    /// IPv6 XOR cookie || transaction id.
    pub fn add_xor_address(&mut self, typ: u16, addr: SocketAddr) -> Result<(), StunError> {
        let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
        let mut v = [0u8; 20];
        v[2..4].copy_from_slice(&port.to_be_bytes());
        let n = match addr.ip() {
            IpAddr::V4(ip) => {
                v[1] = 0x01;
                v[4..8].copy_from_slice(&(u32::from(ip) ^ MAGIC_COOKIE).to_be_bytes());
                8
            }
            IpAddr::V6(ip) => {
                v[1] = 0x02;
                let mut mask = [0u8; 16];
                mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
                // The header (with tid) was written by `new`.
                mask[4..].copy_from_slice(self.buf.get(8..HEADER_LEN).ok_or(StunError::BufferTooSmall)?);
                for ((o, a), m) in v[4..20].iter_mut().zip(ip.octets()).zip(mask) {
                    *o = a ^ m;
                }
                20
            }
        };
        self.add_attr(typ, &v[..n])
    }

    /// ERROR-CODE; `code` must be 300..=699.
    pub fn add_error_code(&mut self, code: u16, reason: &str) -> Result<(), StunError> {
        if !(300..=699).contains(&code) {
            return Err(StunError::InvalidErrorCode(code));
        }
        let r = reason.as_bytes();
        let dst = self.reserve(attr::ERROR_CODE, 4 + r.len())?;
        dst[..4].copy_from_slice(&[0, 0, (code / 100) as u8, (code % 100) as u8]);
        dst[4..4 + r.len()].copy_from_slice(r);
        Ok(())
    }

    pub fn add_message_integrity(&mut self, key: &[u8]) -> Result<(), StunError> {
        self.add_message_integrity_keyed(&IntegrityKey::new(key))
    }

    /// Signs everything written so far, with the length field already
    /// counting the MESSAGE-INTEGRITY attribute itself (RFC 8489 §14.5).
    pub fn add_message_integrity_keyed(&mut self, key: &IntegrityKey) -> Result<(), StunError> {
        let start = self.len;
        self.reserve(attr::MESSAGE_INTEGRITY, MI_LEN)?;
        let (covered, dst) = self.buf.split_at_mut(start);
        let header4 = [covered[0], covered[1], covered[2], covered[3]];
        let tag = key.sign(&header4, &covered[4..]);
        dst[4..4 + MI_LEN].copy_from_slice(&tag);
        Ok(())
    }

    /// Must be last: nothing can be added afterwards.
    pub fn add_fingerprint(&mut self) -> Result<(), StunError> {
        let start = self.len;
        self.reserve(attr::FINGERPRINT, 4)?;
        let (covered, dst) = self.buf.split_at_mut(start);
        dst[4..8].copy_from_slice(&fingerprint(covered).to_be_bytes());
        self.sealed = true;
        Ok(())
    }

    /// Total message length in bytes.
    pub fn finish(self) -> usize {
        self.len
    }

    /// Writes the TLV header, bumps the message length field, pre-fills the
    /// value + padding area with the padding byte, and returns that area
    /// for the caller to write the value into.
    fn reserve(&mut self, typ: u16, value_len: usize) -> Result<&mut [u8], StunError> {
        if self.sealed {
            return Err(StunError::AfterFingerprint);
        }
        let vlen = u16::try_from(value_len).map_err(|_| StunError::TooLong)?;
        let start = self.len;
        let end = start + 4 + padded(vlen);
        let body = u16::try_from(end - HEADER_LEN).map_err(|_| StunError::TooLong)?;
        let dst = self.buf.get_mut(start..end).ok_or(StunError::BufferTooSmall)?;
        dst[0..2].copy_from_slice(&typ.to_be_bytes());
        dst[2..4].copy_from_slice(&vlen.to_be_bytes());
        dst[4..].fill(self.pad);
        self.len = end;
        self.buf[2..4].copy_from_slice(&body.to_be_bytes());
        Ok(&mut self.buf[start + 4..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::{method, Message};

    const TID: [u8; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

    #[test]
    fn too_small_buffers_error() {
        let mut b = [0u8; 19];
        assert_eq!(
            MessageWriter::new(&mut b, Class::Request, method::BINDING, &TID).err(),
            Some(StunError::BufferTooSmall)
        );
        let mut b = [0u8; 40];
        let mut w = MessageWriter::new(&mut b, Class::Request, method::BINDING, &TID).unwrap();
        assert_eq!(w.add_message_integrity(b"k"), Err(StunError::BufferTooSmall));
        assert_eq!(w.add_attr(attr::USERNAME, &[0; 17]), Err(StunError::BufferTooSmall));
        w.add_attr(attr::USERNAME, &[0; 16]).unwrap();
        assert_eq!(w.add_fingerprint(), Err(StunError::BufferTooSmall));
        assert_eq!(w.finish(), 40);
    }

    #[test]
    fn rejects_bad_inputs() {
        let mut b = [0u8; 200];
        assert!(MessageWriter::new(&mut b, Class::Request, 0x1000, &TID).is_err());
        let mut w = MessageWriter::new(&mut b, Class::Error, method::BINDING, &TID).unwrap();
        assert_eq!(w.add_error_code(299, "x"), Err(StunError::InvalidErrorCode(299)));
        assert_eq!(w.add_error_code(700, "x"), Err(StunError::InvalidErrorCode(700)));
        w.add_fingerprint().unwrap();
        assert_eq!(w.add_u32(attr::PRIORITY, 1), Err(StunError::AfterFingerprint));
        let mut big = vec![0u8; 70_000];
        let mut w = MessageWriter::new(&mut big, Class::Request, method::SEND, &TID).unwrap();
        assert_eq!(w.add_attr(attr::DATA, &[0; 65_536]), Err(StunError::TooLong));
        assert_eq!(w.add_attr(attr::DATA, &[0; 65_532]), Err(StunError::TooLong));
        w.add_attr(attr::DATA, &[0; 65_528]).unwrap();
    }

    #[test]
    fn roundtrip_every_accessor() {
        let v4: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        let mut b = [0u8; 512];
        let mut w = MessageWriter::new(&mut b, Class::Error, method::ALLOCATE, &TID).unwrap();
        w.add_attr(attr::USERNAME, b"user").unwrap();
        w.add_error_code(438, "Stale Nonce").unwrap();
        w.add_xor_address(attr::XOR_MAPPED_ADDRESS, v4).unwrap();
        w.add_xor_address(attr::XOR_PEER_ADDRESS, v6).unwrap();
        w.add_u32(attr::PRIORITY, 0x6e0001ff).unwrap();
        w.add_u32(attr::LIFETIME, 600).unwrap();
        w.add_u64(attr::ICE_CONTROLLING, 0x0102030405060708).unwrap();
        w.add_attr(attr::USE_CANDIDATE, &[]).unwrap();
        w.add_message_integrity(b"secret").unwrap();
        w.add_fingerprint().unwrap();
        let n = w.finish();
        let m = Message::parse(&b[..n]).unwrap();
        assert_eq!(m.class(), Class::Error);
        assert_eq!(m.method(), method::ALLOCATE);
        assert_eq!(m.transaction_id(), &TID);
        assert_eq!(m.username(), Some(&b"user"[..]));
        assert_eq!(m.error_code(), Some((438, "Stale Nonce")));
        assert_eq!(m.xor_mapped_address(), Some(v4));
        assert_eq!(m.xor_address(attr::XOR_PEER_ADDRESS), Some(v6));
        assert_eq!(m.priority(), Some(0x6e0001ff));
        assert_eq!(m.lifetime(), Some(600));
        assert_eq!(m.ice_controlling(), Some(0x0102030405060708));
        assert_eq!(m.ice_controlled(), None);
        assert!(m.use_candidate());
        assert!(m.has_integrity() && m.has_fingerprint());
        m.check_integrity(b"secret").unwrap();
        assert_eq!(m.check_integrity(b"Secret"), Err(StunError::IntegrityMismatch));
        m.check_fingerprint().unwrap();
        assert_eq!(m.attrs().count(), 10);
        assert_eq!(m.raw().len(), n);
    }
}
