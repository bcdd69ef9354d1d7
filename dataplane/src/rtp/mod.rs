//! Sans-IO RTP (RFC 3550) parsing and writing for the packet path.
//!
//! Parsing borrows the caller's buffer and never allocates; writers fill a
//! caller-provided buffer and report how many bytes they used.

pub mod codec;
mod demux;
mod ext;
mod header;
mod seq;
mod stats;
mod write;

pub use demux::is_rtcp;
pub use ext::{extension, Extensions};
pub use header::{parse, ExtBlock, RtpHeader};
pub use seq::SeqUnwrapper;
pub use stats::ReceiveStats;
pub use write::{write_header, write_header_with_extensions, HeaderFields};

/// Size of the fixed RTP header (no CSRC, no extension).
pub const FIXED_HEADER_LEN: usize = 12;

/// Extension profile of the one-byte element form (RFC 8285 §4.2).
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;

/// Errors from RTP parsing and writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("packet shorter than its RTP header ({0} bytes)")]
    TooShort(usize),
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    #[error("header extension runs past the end of the packet")]
    BadExtension,
    #[error("padding count {0} does not fit the packet")]
    BadPadding(u8),
    #[error("output buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall { need: usize, have: usize },
    #[error("extension element id {id} / length {len} not encodable in the one-byte form")]
    BadExtensionElement { id: u8, len: usize },
}

#[cfg(test)]
mod proptests;
