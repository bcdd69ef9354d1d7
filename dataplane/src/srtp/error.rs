//! Errors of the SRTP/SRTCP transforms.

/// Why a packet could not be protected or unprotected.
///
/// Every variant is cheap to return on the hot path: no payload, no allocation.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpError {
    /// Not a parseable RTP/RTCP/SRTP/SRTCP packet (too short, wrong version, bad lengths).
    #[error("malformed packet")]
    Malformed,
    /// The caller's buffer has no room for the tag (and SRTCP index) protect appends.
    #[error("buffer too small for the SRTP trailer")]
    BufferTooSmall,
    /// The authentication tag did not verify: forged, corrupted, or wrong key.
    #[error("authentication failed")]
    AuthFailed,
    /// The packet index was already seen or is older than the replay window.
    #[error("replayed or too old packet")]
    Replay,
    /// The DTLS-exported keying material has the wrong length for the profile.
    #[error("bad keying material")]
    BadKeyingMaterial,
    /// A valid but unsupported variant, e.g. unencrypted (E=0) SRTCP under AES-GCM.
    #[error("unsupported SRTP variant")]
    Unsupported,
    /// A sending context is full of streams and will not forget a live one's rollover
    /// counter to make room for a new SSRC.
    #[error("too many SRTP streams to send")]
    TooManyStreams,
}
