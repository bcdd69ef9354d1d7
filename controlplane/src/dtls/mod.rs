//! DTLS 1.2 server for WebRTC sessions (RFC 5763/5764), on the system openssl.
//!
//! sfud answers offers with `a=setup:passive`, so it is always the DTLS
//! server. Every handshake step is openssl's; this module only moves
//! datagrams in and out of an in-memory transport (sans-IO), checks the
//! peer's certificate against the fingerprint from its SDP, and exports the
//! SRTP keying material for the dataplane.
//!
//! - [`Certificate`]: the process-wide ECDSA P-256 identity and its SDP fingerprint.
//! - [`DtlsContext`]: the shared openssl configuration (versions, ciphers, use_srtp).
//! - [`DtlsServer`]: one per session, fed datagrams, polled for datagrams, events and timers.

mod cert;
mod context;
mod ffi;
mod io;
mod server;

#[cfg(test)]
pub(crate) mod test_client;

pub use cert::{Certificate, FingerprintAlgorithm};
pub use context::DtlsContext;
pub use server::DtlsServer;

use openssl::error::ErrorStack;

/// MTU handed to openssl: flights are fragmented so no datagram exceeds it,
/// which keeps them under a typical 1280-byte IPv6 path with TURN overhead.
pub const DTLS_MTU: usize = 1200;

/// Label for the SRTP key export (RFC 5764 section 4.2).
pub const SRTP_EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsEvent {
    /// The handshake finished and the peer's certificate matched its SDP fingerprint.
    /// Emitted once per session.
    Connected {
        /// openssl's profile name, e.g. "SRTP_AEAD_AES_128_GCM" or "SRTP_AES128_CM_SHA1_80".
        srtp_profile: String,
        /// client key, server key, client salt, server salt (RFC 5764 section 4.2).
        keying_material: Vec<u8>,
    },
    /// One decrypted application-data record (SCTP for data channels).
    ApplicationData(Vec<u8>),
    /// The peer sent close_notify.
    Closed,
}

#[derive(thiserror::Error, Debug)]
pub enum DtlsError {
    #[error("openssl failed to {context}")]
    OpenSsl {
        context: &'static str,
        #[source]
        source: ErrorStack,
    },
    #[error("DTLS handshake failed")]
    Handshake(#[source] openssl::ssl::Error),
    #[error("DTLS handshake timed out after repeated retransmissions")]
    Timeout,
    #[error("DTLS record processing failed")]
    Record(#[source] openssl::ssl::Error),
    #[error("peer certificate does not match the fingerprint from its SDP")]
    FingerprintMismatch,
    #[error("unsupported fingerprint algorithm {0:?}")]
    UnsupportedFingerprintAlgorithm(String),
    #[error("malformed fingerprint value {0:?}")]
    MalformedFingerprint(String),
    #[error("peer presented no certificate")]
    NoPeerCertificate,
    #[error("peer negotiated no SRTP protection profile")]
    NoSrtpProfile,
    #[error("unsupported SRTP protection profile {0}")]
    UnsupportedSrtpProfile(String),
    #[error("invalid certificate: {0}")]
    InvalidCertificate(&'static str),
    #[error("the DTLS session has already failed")]
    Failed,
    #[error("the DTLS session is closed")]
    Closed,
    #[error("the DTLS handshake has not completed")]
    NotConnected,
}

impl DtlsError {
    pub(crate) fn openssl(context: &'static str) -> impl FnOnce(ErrorStack) -> Self {
        move |source| DtlsError::OpenSsl { context, source }
    }
}
