//! The openssl configuration shared by every session.

use openssl::ssl::{
    SslContext, SslMethod, SslOptions, SslSessionCacheMode, SslVerifyMode, SslVersion,
};

use super::{Certificate, DtlsError};

/// ECDSA suites only (our key is P-256). GCM first; CHACHA20 and CBC are what
/// older Chromium/Firefox builds and constrained peers fall back to.
const CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA";

/// GCM first: the dataplane seals it faster than CM+HMAC-SHA1. openssl picks
/// by the server's order among what the client offers.
pub(crate) const SRTP_PROFILES: &str = "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80";

const GROUPS: &str = "X25519:P-256:P-384";

/// Built once per process; cheap to clone (openssl reference counts).
#[derive(Clone)]
pub struct DtlsContext {
    ctx: SslContext,
}

impl std::fmt::Debug for DtlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsContext").finish_non_exhaustive()
    }
}

impl DtlsContext {
    pub fn new(cert: &Certificate) -> Result<Self, DtlsError> {
        let mut b = SslContext::builder(SslMethod::dtls())
            .map_err(DtlsError::openssl("create a DTLS context"))?;
        b.set_min_proto_version(Some(SslVersion::DTLS1_2))
            .map_err(DtlsError::openssl("require DTLS 1.2"))?;
        b.set_max_proto_version(Some(SslVersion::DTLS1_2))
            .map_err(DtlsError::openssl("cap at DTLS 1.2"))?;
        b.set_cipher_list(CIPHERS)
            .map_err(DtlsError::openssl("set the cipher list"))?;
        b.set_groups_list(GROUPS)
            .map_err(DtlsError::openssl("set the key exchange groups"))?;
        b.set_tlsext_use_srtp(SRTP_PROFILES)
            .map_err(DtlsError::openssl("enable use_srtp"))?;
        b.set_certificate(cert.x509())
            .map_err(DtlsError::openssl("load the certificate"))?;
        b.set_private_key(cert.key())
            .map_err(DtlsError::openssl("load the private key"))?;
        b.check_private_key()
            .map_err(DtlsError::openssl("match the key to the certificate"))?;
        // NO_QUERY_MTU: the MTU set per session is the truth, there is no socket
        // to ask. No tickets, no session cache, no renegotiation: every WebRTC
        // handshake is a fresh full one and nothing else is expected.
        b.set_options(
            SslOptions::CIPHER_SERVER_PREFERENCE
                | SslOptions::NO_QUERY_MTU
                | SslOptions::NO_TICKET
                | SslOptions::NO_RENEGOTIATION
                | SslOptions::SINGLE_ECDH_USE,
        );
        b.set_session_cache_mode(SslSessionCacheMode::OFF);
        // The chain is self-signed and anchored nowhere: the peer is
        // authenticated by the SDP fingerprint, checked per session.
        b.set_verify_callback(
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
            |_preverify, _store| true,
        );
        Ok(Self { ctx: b.build() })
    }

    pub(crate) fn ssl_context(&self) -> &SslContext {
        &self.ctx
    }
}
