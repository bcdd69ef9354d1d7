use thiserror::Error;

/// Everything that can go wrong decoding, verifying or encoding a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum StunError {
    #[error("not a STUN message (header bits, magic cookie or length)")]
    NotStun,
    #[error("attribute at offset {0} runs past the end of the message")]
    AttrOverflow(usize),
    #[error("no MESSAGE-INTEGRITY attribute")]
    MissingIntegrity,
    #[error("MESSAGE-INTEGRITY does not match")]
    IntegrityMismatch,
    #[error("no FINGERPRINT attribute")]
    MissingFingerprint,
    #[error("FINGERPRINT does not match")]
    FingerprintMismatch,
    #[error("output buffer too small")]
    BufferTooSmall,
    #[error("message or attribute longer than 65535 bytes")]
    TooLong,
    #[error("method {0:#x} does not fit in 12 bits")]
    InvalidMethod(u16),
    #[error("error code {0} outside 300..=699")]
    InvalidErrorCode(u16),
    #[error("attribute added after FINGERPRINT")]
    AfterFingerprint,
}
