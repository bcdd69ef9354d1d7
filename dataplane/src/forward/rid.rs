//! The RtpStreamId and RepairedRtpStreamId header extensions (RFC 8852):
//! the RID of a simulcast encoding, as US-ASCII, in the extension's data.
//! sfud binds a layer's SSRC by it, once, on an authenticated packet.

use thiserror::Error;

/// What the one-byte extension form can carry, and what the SDP layer accepts.
pub const MAX_RID_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RidError {
    #[error("empty RID")]
    Empty,
    #[error("RID of {0} bytes; at most 16")]
    TooLong(usize),
    #[error("RID byte {0:#04x} is not alphanumeric, '-' or '_' (RFC 8851 rid-id)")]
    BadByte(u8),
}

/// The RID an extension element carries. Trailing NULs (some senders pad
/// to a word) are not part of it.
pub fn parse(data: &[u8]) -> Result<&[u8], RidError> {
    let end = data.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    let rid = &data[..end];
    if rid.is_empty() {
        return Err(RidError::Empty);
    }
    if rid.len() > MAX_RID_LEN {
        return Err(RidError::TooLong(rid.len()));
    }
    if let Some(b) = rid.iter().find(|b| !(b.is_ascii_alphanumeric() || **b == b'-' || **b == b'_')) {
        return Err(RidError::BadByte(*b));
    }
    Ok(rid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_rids_and_strips_padding() {
        assert_eq!(parse(b"q"), Ok(&b"q"[..]));
        assert_eq!(parse(b"hi-1_x\0\0"), Ok(&b"hi-1_x"[..]));
        assert_eq!(parse(b""), Err(RidError::Empty));
        assert_eq!(parse(b"\0"), Err(RidError::Empty));
        assert_eq!(parse(b"a b"), Err(RidError::BadByte(b' ')));
        assert_eq!(parse(&[b'a'; 17]), Err(RidError::TooLong(17)));
    }

    proptest! {
        #[test]
        fn never_panics_and_accepts_only_rid_ids(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(rid) = parse(&data) {
                prop_assert!(!rid.is_empty() && rid.len() <= MAX_RID_LEN);
                prop_assert!(rid.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'));
                prop_assert!(data.starts_with(rid));
            }
        }

        #[test]
        fn valid_ids_round_trip(id in "[A-Za-z0-9_-]{1,16}") {
            prop_assert_eq!(parse(id.as_bytes()), Ok(id.as_bytes()));
        }
    }
}
