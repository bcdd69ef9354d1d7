//! SRTP and SRTCP (RFC 3711) for the two DTLS-SRTP profiles sfud negotiates:
//! SRTP_AEAD_AES_128_GCM (RFC 7714, preferred) and SRTP_AES128_CM_HMAC_SHA1_80.
//!
//! Sans-IO and in place: callers hand a buffer holding the packet with room for the
//! trailer; nothing is allocated per packet. Per-SSRC rollover counters and replay
//! windows live in a small table inside each [`SrtpContext`], and change only after a
//! packet authenticates.
//!
//! Not supported (never negotiated by browsers): MKI, key derivation rate other than 0,
//! header-extension encryption (RFC 6904 / cryptex), unencrypted SRTCP under GCM.

mod cm;
mod error;
mod gcm;
mod header;
mod kdf;
mod profile;
mod replay;
mod session;
mod streams;

#[cfg(test)]
mod tests;

pub use error::SrtpError;
pub use profile::{split_keying_material, MasterKey, SrtpProfile};
pub use session::SrtpContext;
pub use streams::DEFAULT_MAX_STREAMS;
