//! One session's DTLS server: openssl's state machine driven by datagrams.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use openssl::srtp::SrtpProfileId;
use openssl::ssl::{ErrorCode, Ssl, SslStream, SslVerifyMode};

use super::cert::ExpectedFingerprint;
use super::ffi::{self, TimeoutOutcome};
use super::io::DatagramTransport;
use super::{DtlsContext, DtlsError, DtlsEvent, DTLS_MTU, SRTP_EXPORTER_LABEL};

/// Largest DTLS 1.2 record plaintext.
const MAX_PLAINTEXT: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshaking,
    Connected,
    Closed,
    Failed,
}

pub struct DtlsServer {
    stream: SslStream<DatagramTransport>,
    expected: Arc<ExpectedFingerprint>,
    /// Set by the verify callback, which can only answer yes or no to openssl,
    /// so the handshake error can be reported as the mismatch it is.
    mismatch: Arc<AtomicBool>,
    state: State,
    /// openssl buffers handshake messages that arrive ahead of the ClientHello
    /// and later splices them into the real handshake (a stale CertificateVerify
    /// then fails it). Nothing of a handshake can precede its ClientHello, so
    /// such datagrams are dropped before openssl sees them.
    seen_client_hello: bool,
    events: VecDeque<DtlsEvent>,
    read_buf: Box<[u8]>,
}

impl std::fmt::Debug for DtlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsServer")
            .field("state", &self.state)
            .field("ssl_state", &self.stream.ssl().state_string_long())
            .finish_non_exhaustive()
    }
}

impl DtlsServer {
    /// `remote_fingerprint`: (algorithm, value) from the peer's `a=fingerprint`,
    /// e.g. ("sha-256", "AB:CD:..").
    pub fn new(ctx: &DtlsContext, remote_fingerprint: (String, String)) -> Result<Self, DtlsError> {
        let (alg, value) = remote_fingerprint;
        let expected = Arc::new(ExpectedFingerprint::parse(&alg, &value)?);
        let mismatch = Arc::new(AtomicBool::new(false));

        let mut ssl =
            Ssl::new(ctx.ssl_context()).map_err(DtlsError::openssl("create a DTLS session"))?;
        ssl.set_accept_state();
        let mtu = u32::try_from(DTLS_MTU).unwrap_or(u32::MAX);
        ssl.set_mtu(mtu)
            .map_err(DtlsError::openssl("set the DTLS MTU"))?;
        ffi::install_timer_cb(&mut ssl);
        {
            let expected = Arc::clone(&expected);
            let mismatch = Arc::clone(&mismatch);
            // Rejecting inside the handshake makes openssl send a fatal alert,
            // so the peer learns of the failure instead of timing out.
            ssl.set_verify_callback(
                SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
                move |_preverify, store| {
                    if store.error_depth() != 0 {
                        return true;
                    }
                    match store.current_cert() {
                        Some(cert) if !expected.matches(cert) => {
                            mismatch.store(true, Ordering::Relaxed);
                            false
                        }
                        // A missing leaf is caught again after the handshake.
                        _ => true,
                    }
                },
            );
        }
        let stream = SslStream::new(ssl, DatagramTransport::new(DTLS_MTU))
            .map_err(DtlsError::openssl("attach the datagram transport"))?;
        Ok(Self {
            stream,
            expected,
            mismatch,
            state: State::Handshaking,
            seen_client_hello: false,
            events: VecDeque::new(),
            read_buf: vec![0u8; MAX_PLAINTEXT].into_boxed_slice(),
        })
    }

    /// Feeds one datagram (it may hold several records). Drives the handshake,
    /// then decrypts application data. An Err leaves the session failed; any
    /// alert openssl produced is still available from `poll_datagram`.
    pub fn handle_datagram(&mut self, datagram: &[u8], _now: Instant) -> Result<(), DtlsError> {
        match self.state {
            State::Failed => return Err(DtlsError::Failed),
            // Late retransmissions after close_notify are expected; drop them.
            State::Closed => return Ok(()),
            State::Handshaking | State::Connected => {}
        }
        if !self.seen_client_hello {
            if !starts_with_client_hello(datagram) {
                tracing::trace!(
                    len = datagram.len(),
                    "DTLS datagram before the ClientHello dropped"
                );
                return Ok(());
            }
            self.seen_client_hello = true;
        }
        self.stream.get_mut().push_incoming(datagram);
        let result = match self.state {
            State::Handshaking => self.drive_handshake(),
            _ => self.read_records(),
        };
        self.finish_call(result)
    }

    /// Next datagram to send to the peer, if any.
    pub fn poll_datagram(&mut self) -> Option<Vec<u8>> {
        self.stream.get_mut().pop_outgoing()
    }

    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` is next due. openssl keeps the retransmission
    /// timer on its own clock, so this is "now plus what openssl has left".
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Handshaking | State::Connected => {
                ffi::get_timeout(self.stream.ssl()).map(|left| Instant::now() + left)
            }
            State::Closed | State::Failed => None,
        }
    }

    /// Retransmits the last flight if openssl's timer has expired (openssl
    /// judges expiry on its own clock; `now` is only the caller's hint).
    pub fn handle_timeout(&mut self, _now: Instant) -> Result<(), DtlsError> {
        if !matches!(self.state, State::Handshaking | State::Connected) {
            return Ok(());
        }
        let result = match ffi::handle_timeout(self.stream.ssl()) {
            TimeoutOutcome::NotDue => Ok(()),
            TimeoutOutcome::Retransmitted => {
                tracing::debug!(
                    state = self.stream.ssl().state_string_long(),
                    "DTLS flight retransmitted"
                );
                Ok(())
            }
            TimeoutOutcome::Failed => Err(DtlsError::Timeout),
        };
        self.finish_call(result)
    }

    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Encrypts one application-data record (SCTP for data channels).
    pub fn send_application_data(&mut self, data: &[u8]) -> Result<(), DtlsError> {
        match self.state {
            State::Connected => {}
            State::Handshaking => return Err(DtlsError::NotConnected),
            State::Closed => return Err(DtlsError::Closed),
            State::Failed => return Err(DtlsError::Failed),
        }
        let result = self
            .stream
            .ssl_write(data)
            .map(|_| ())
            .map_err(DtlsError::Record);
        self.finish_call(result)
    }

    /// Sends close_notify (best effort) and stops the session.
    pub fn close(&mut self) {
        if self.state == State::Connected {
            // Whether the alert could be written changes nothing for us.
            let _ = self.stream.shutdown();
            self.stream.get_mut().seal();
        }
        if self.state != State::Failed {
            self.state = State::Closed;
        }
    }

    fn finish_call(&mut self, result: Result<(), DtlsError>) -> Result<(), DtlsError> {
        let transport = self.stream.get_mut();
        transport.clear_incoming();
        transport.seal();
        if let Err(e) = &result {
            tracing::debug!(error = %e, "DTLS session failed");
            self.state = State::Failed;
        }
        result
    }

    fn drive_handshake(&mut self) -> Result<(), DtlsError> {
        match self.stream.do_handshake() {
            Ok(()) => {
                self.on_handshake_complete()?;
                // The datagram that finished the handshake may carry more records.
                self.read_records()
            }
            Err(e) if is_retry(e.code()) => Ok(()),
            Err(e) if self.mismatch.load(Ordering::Relaxed) => {
                tracing::debug!(error = %e, "DTLS peer certificate fingerprint mismatch");
                Err(DtlsError::FingerprintMismatch)
            }
            Err(e) => Err(DtlsError::Handshake(e)),
        }
    }

    fn on_handshake_complete(&mut self) -> Result<(), DtlsError> {
        let ssl = self.stream.ssl();
        // The verify callback already checked this; checking the certificate
        // openssl actually kept guards against a callback that never ran.
        let peer = ssl.peer_certificate().ok_or(DtlsError::NoPeerCertificate)?;
        if !self.expected.matches(&peer) {
            return Err(DtlsError::FingerprintMismatch);
        }
        let profile = ssl
            .selected_srtp_profile()
            .ok_or(DtlsError::NoSrtpProfile)?;
        let (name, id) = (profile.name(), profile.id());
        let key_len = srtp_keying_material_len(id)
            .ok_or_else(|| DtlsError::UnsupportedSrtpProfile(name.to_owned()))?;
        let mut keying_material = vec![0u8; key_len];
        ssl.export_keying_material(&mut keying_material, SRTP_EXPORTER_LABEL, None)
            .map_err(DtlsError::openssl("export the SRTP keying material"))?;
        tracing::debug!(
            srtp_profile = name,
            cipher = ssl.current_cipher().map(|c| c.name()).unwrap_or("?"),
            "DTLS connected"
        );
        self.state = State::Connected;
        self.events.push_back(DtlsEvent::Connected {
            srtp_profile: name.to_owned(),
            keying_material,
        });
        Ok(())
    }

    /// Reads until openssl wants more input. Also what lets openssl answer a
    /// retransmitted client Finished with our last flight after the handshake.
    fn read_records(&mut self) -> Result<(), DtlsError> {
        loop {
            match self.stream.ssl_read(&mut self.read_buf) {
                Ok(n) => {
                    let data = self.read_buf.get(..n).unwrap_or_default().to_vec();
                    self.events.push_back(DtlsEvent::ApplicationData(data));
                }
                Err(e) if is_retry(e.code()) => return Ok(()),
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                    // Answer with our close_notify, as RFC 5246 section 7.2.1 asks.
                    let _ = self.stream.shutdown();
                    self.state = State::Closed;
                    self.events.push_back(DtlsEvent::Closed);
                    return Ok(());
                }
                Err(e) => return Err(DtlsError::Record(e)),
            }
        }
    }
}

/// First record is a handshake record of epoch 0 carrying (a fragment of) a
/// ClientHello. Framing only; openssl validates the rest.
fn starts_with_client_hello(datagram: &[u8]) -> bool {
    const CONTENT_HANDSHAKE: u8 = 22;
    const CLIENT_HELLO: u8 = 1;
    // type, version(2), epoch(2) = 0, sequence(6), length(2), then the message type.
    matches!(
        datagram,
        [
            CONTENT_HANDSHAKE,
            _,
            _,
            0,
            0,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            CLIENT_HELLO,
            ..
        ]
    )
}

fn is_retry(code: ErrorCode) -> bool {
    code == ErrorCode::WANT_READ || code == ErrorCode::WANT_WRITE
}

/// 2 * (key + salt) per RFC 5764 section 4.2 with the lengths of RFC 3711 / RFC 7714.
fn srtp_keying_material_len(id: SrtpProfileId) -> Option<usize> {
    if id == SrtpProfileId::SRTP_AEAD_AES_128_GCM {
        Some(2 * (16 + 12))
    } else if id == SrtpProfileId::SRTP_AES128_CM_SHA1_80 {
        Some(2 * (16 + 14))
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
