//! ChannelData (RFC 8656 §12.4) and stream framing (§12.5, RFC 5766 §2.1):
//! over TCP/TLS, STUN messages and ChannelData messages run back to back,
//! each self-delimiting by its length field.

use dataplane::stun::{HEADER_LEN, MAGIC_COOKIE};

/// The first two bits of a ChannelData message are 01: channels 0x4000..=0x7FFF.
pub const CHANNEL_MIN: u16 = 0x4000;
pub const CHANNEL_MAX: u16 = 0x7FFF;
pub const CHANNEL_HEADER: usize = 4;

/// Largest frame either kind can be: a STUN header plus a 16-bit length.
pub const MAX_FRAME: usize = HEADER_LEN + 0xFFFF;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The stream is not TURN (or lost sync); the connection must close,
    /// because there is no way to find the next frame boundary.
    #[error("stream is not STUN/ChannelData framed")]
    Garbage,
}

/// Length of the first complete frame in `buf`: `Ok(None)` until enough
/// bytes have arrived.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let Some(&b0) = buf.first() else { return Ok(None) };
    match b0 >> 6 {
        0b00 => {
            let Some(len) = be16(buf, 2) else { return Ok(None) };
            if len % 4 != 0 {
                return Err(FrameError::Garbage);
            }
            if let Some(c) = buf.get(4..8) {
                if c != MAGIC_COOKIE.to_be_bytes() {
                    return Err(FrameError::Garbage);
                }
            }
            let total = HEADER_LEN + usize::from(len);
            Ok((buf.len() >= total).then_some(total))
        }
        0b01 => {
            let Some(len) = be16(buf, 2) else { return Ok(None) };
            // Streams pad ChannelData to 4 bytes so the next frame stays aligned.
            let total = CHANNEL_HEADER + ((usize::from(len) + 3) & !3);
            Ok((buf.len() >= total).then_some(total))
        }
        _ => Err(FrameError::Garbage),
    }
}

pub fn is_channel_data(buf: &[u8]) -> bool {
    buf.first().is_some_and(|b| b >> 6 == 0b01)
}

/// (channel number, application data). Trailing bytes past the length
/// field are padding and are ignored, on UDP too (RFC 8656 §12.5).
pub fn parse_channel_data(buf: &[u8]) -> Option<(u16, &[u8])> {
    let number = be16(buf, 0)?;
    if !(CHANNEL_MIN..=CHANNEL_MAX).contains(&number) {
        return None;
    }
    let len = usize::from(be16(buf, 2)?);
    let data = buf.get(CHANNEL_HEADER..CHANNEL_HEADER + len)?;
    Some((number, data))
}

/// Writes a ChannelData message; `pad` rounds it to 4 bytes for streams.
/// `None` when `out` is too small or `data` exceeds 65535 bytes.
pub fn write_channel_data(out: &mut [u8], number: u16, data: &[u8], pad: bool) -> Option<usize> {
    let len = u16::try_from(data.len()).ok()?;
    let total = if pad {
        CHANNEL_HEADER + ((data.len() + 3) & !3)
    } else {
        CHANNEL_HEADER + data.len()
    };
    let dst = out.get_mut(..total)?;
    dst[0..2].copy_from_slice(&number.to_be_bytes());
    dst[2..4].copy_from_slice(&len.to_be_bytes());
    dst[CHANNEL_HEADER..CHANNEL_HEADER + data.len()].copy_from_slice(data);
    dst[CHANNEL_HEADER + data.len()..].fill(0);
    Some(total)
}

fn be16(buf: &[u8], off: usize) -> Option<u16> {
    let b = buf.get(off..off + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn channel_data_roundtrip_and_padding() {
        let mut out = [0xAAu8; 32];
        let n = write_channel_data(&mut out, 0x4001, b"hello", true).unwrap();
        assert_eq!(n, 12);
        assert_eq!(&out[..12], b"\x40\x01\x00\x05hello\0\0\0");
        assert_eq!(parse_channel_data(&out[..n]), Some((0x4001, &b"hello"[..])));
        let n = write_channel_data(&mut out, 0x7FFF, b"hello", false).unwrap();
        assert_eq!(n, 9);
        assert_eq!(frame_len(&out[..12]), Ok(Some(12)));
        assert_eq!(write_channel_data(&mut out[..8], 0x4000, b"hello", false), None);
        assert_eq!(parse_channel_data(b"\x40\x00\x00\x06hello"), None, "short");
        assert_eq!(parse_channel_data(b"\x80\x00\x00\x00"), None);
        assert_eq!(parse_channel_data(b"\x3f\xff\x00\x00"), None);
    }

    #[test]
    fn stream_framing() {
        let mut stream = Vec::new();
        // A Binding request header with no attributes.
        stream.extend_from_slice(&[0x00, 0x01, 0x00, 0x00]);
        stream.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        stream.extend_from_slice(&[1; 12]);
        let mut cd = [0u8; 16];
        let n = write_channel_data(&mut cd, 0x4000, b"abcde", true).unwrap();
        stream.extend_from_slice(&cd[..n]);
        assert_eq!(frame_len(&stream[..3]), Ok(None));
        assert_eq!(frame_len(&stream[..19]), Ok(None));
        assert_eq!(frame_len(&stream), Ok(Some(20)));
        assert_eq!(frame_len(&stream[20..31]), Ok(None));
        assert_eq!(frame_len(&stream[20..]), Ok(Some(12)));
        assert_eq!(frame_len(&[0x80, 0, 0, 0]), Err(FrameError::Garbage));
        assert_eq!(frame_len(&[0x00, 1, 0, 3]), Err(FrameError::Garbage));
        assert_eq!(frame_len(&[0x00, 1, 0, 0, 1, 2, 3, 4]), Err(FrameError::Garbage));
    }

    proptest! {
        #[test]
        fn framing_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(Some(n)) = frame_len(&buf) {
                prop_assert!(n <= buf.len() && (4..=MAX_FRAME).contains(&n));
            }
            let _ = parse_channel_data(&buf);
        }
    }
}
