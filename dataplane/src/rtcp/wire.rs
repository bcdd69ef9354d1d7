//! Byte-level helpers shared by the parser and the writers.

use super::RtcpError;

#[inline]
pub(super) fn be32(b: &[u8], at: usize) -> Option<u32> {
    let c = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

#[inline]
pub(super) fn put32(out: &mut [u8], at: usize, v: u32) {
    out[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Fails unless `out` holds `need` bytes; writers call it before touching `out`.
pub(super) fn reserve(out: &[u8], need: usize) -> Result<(), RtcpError> {
    if out.len() < need {
        return Err(RtcpError::BufferTooSmall {
            need,
            have: out.len(),
        });
    }
    Ok(())
}

/// Writes the common header for a packet of `total` bytes (a multiple of 4,
/// at most 2^18, already checked by the caller against `out`).
pub(super) fn put_header(out: &mut [u8], count_or_fmt: u8, packet_type: u8, total: usize) {
    debug_assert!(total & 3 == 0 && total >= 4 && total / 4 <= 1 << 16);
    out[0] = 0x80 | (count_or_fmt & 0x1f);
    out[1] = packet_type;
    let words = (total / 4 - 1) as u16;
    out[2..4].copy_from_slice(&words.to_be_bytes());
}

/// Largest packet the 16-bit length field can describe.
pub(super) const MAX_PACKET_LEN: usize = 4 << 16;
