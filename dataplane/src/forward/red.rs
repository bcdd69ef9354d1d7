//! RFC 2198 redundant audio (Chromium's `red/48000/2` around Opus). sfud
//! forwards RED unchanged to subscribers that negotiated it, and hands the
//! others the primary encoding, which is the last block.

/// Errors reading a RED payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedError {
    #[error("RED payload ends inside its block headers")]
    TruncatedHeaders,
    #[error("RED block lengths run past the payload")]
    BlocksOverrun,
}

/// The primary block of a RED payload: its payload type and bytes.
///
/// Each redundant block has a 4-byte header (F=1, block PT, timestamp
/// offset, length); the primary block's header is 1 byte (F=0, PT), and
/// its data follows the redundant blocks' data.
pub fn primary(payload: &[u8]) -> Result<(u8, &[u8]), RedError> {
    let mut pos = 0;
    let mut redundant = 0usize;
    loop {
        let b = *payload.get(pos).ok_or(RedError::TruncatedHeaders)?;
        if b & 0x80 == 0 {
            let start = pos + 1 + redundant;
            let data = payload.get(start..).ok_or(RedError::BlocksOverrun)?;
            return Ok((b & 0x7f, data));
        }
        let h = payload.get(pos..pos + 4).ok_or(RedError::TruncatedHeaders)?;
        redundant += (usize::from(h[2] & 0x03) << 8) | usize::from(h[3]);
        pos += 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_after_redundant_blocks() {
        // One redundant block (PT 111, offset 960, 3 bytes), then primary PT 111.
        let offset: u16 = 960;
        let mut p = vec![0x80 | 111, (offset >> 6) as u8, (((offset & 0x3f) << 2) as u8) | 0, 3, 111];
        p.extend_from_slice(&[1, 2, 3]);
        p.extend_from_slice(b"primary");
        assert_eq!(primary(&p), Ok((111, &b"primary"[..])));
    }

    #[test]
    fn primary_only() {
        let p = [111u8, 9, 9];
        assert_eq!(primary(&p), Ok((111, &[9u8, 9][..])));
    }

    #[test]
    fn malformed_is_an_error() {
        assert_eq!(primary(&[]), Err(RedError::TruncatedHeaders));
        assert_eq!(primary(&[0x80 | 111, 0, 0]), Err(RedError::TruncatedHeaders));
        assert_eq!(primary(&[0x80 | 111, 0, 0, 200, 111, 1]), Err(RedError::BlocksOverrun));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            if let Ok((_, data)) = primary(&bytes) {
                proptest::prop_assert!(data.len() < bytes.len());
            }
        }
    }
}
