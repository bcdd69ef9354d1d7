//! A browser stand-in for tests: an openssl DTLS client over the same
//! in-memory transport.

use openssl::ssl::{ErrorCode, Ssl, SslContext, SslMethod, SslStream, SslVerifyMode, SslVersion};

use super::ffi::{self, TimeoutOutcome};
use super::io::DatagramTransport;
use super::{Certificate, DTLS_MTU, SRTP_EXPORTER_LABEL};

pub(crate) struct TestClient {
    pub cert: Certificate,
    stream: SslStream<DatagramTransport>,
    pub connected: bool,
    pub failed: bool,
    pub received: Vec<Vec<u8>>,
    pub peer_closed: bool,
}

impl TestClient {
    pub fn new(srtp_profiles: &str) -> Self {
        Self::with_cert(srtp_profiles, Certificate::generate().unwrap())
    }

    pub fn with_cert(srtp_profiles: &str, cert: Certificate) -> Self {
        let mut b = SslContext::builder(SslMethod::dtls()).unwrap();
        b.set_min_proto_version(Some(SslVersion::DTLS1_2)).unwrap();
        b.set_max_proto_version(Some(SslVersion::DTLS1_2)).unwrap();
        b.set_tlsext_use_srtp(srtp_profiles).unwrap();
        b.set_certificate(cert.x509()).unwrap();
        b.set_private_key(cert.key()).unwrap();
        b.set_options(openssl::ssl::SslOptions::NO_QUERY_MTU);
        b.set_verify_callback(SslVerifyMode::PEER, |_, _| true);
        let ctx = b.build();
        let mut ssl = Ssl::new(&ctx).unwrap();
        ssl.set_connect_state();
        ssl.set_mtu(DTLS_MTU as u32).unwrap();
        ffi::install_timer_cb(&mut ssl);
        let stream = SslStream::new(ssl, DatagramTransport::new(DTLS_MTU)).unwrap();
        Self {
            cert,
            stream,
            connected: false,
            failed: false,
            received: Vec::new(),
            peer_closed: false,
        }
    }

    pub fn fingerprint(&self) -> (String, String) {
        ("sha-256".to_owned(), self.cert.fingerprint_sha256())
    }

    /// Emits the ClientHello.
    pub fn start(&mut self) {
        self.drive();
    }

    pub fn handle(&mut self, datagram: &[u8]) {
        self.stream.get_mut().push_incoming(datagram);
        self.drive();
        self.stream.get_mut().clear_incoming();
    }

    pub fn handle_timeout(&mut self) -> bool {
        let r = ffi::handle_timeout(self.stream.ssl());
        self.stream.get_mut().seal();
        r == TimeoutOutcome::Retransmitted
    }

    pub fn timeout(&self) -> Option<std::time::Duration> {
        ffi::get_timeout(self.stream.ssl())
    }

    pub fn poll(&mut self) -> Option<Vec<u8>> {
        self.stream.get_mut().pop_outgoing()
    }

    pub fn send(&mut self, data: &[u8]) {
        self.stream.ssl_write(data).unwrap();
        self.stream.get_mut().seal();
    }

    pub fn close(&mut self) {
        let _ = self.stream.shutdown();
        self.stream.get_mut().seal();
    }

    pub fn profile(&self) -> Option<&'static str> {
        self.stream.ssl().selected_srtp_profile().map(|p| p.name())
    }

    pub fn export(&self, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        self.stream
            .ssl()
            .export_keying_material(&mut out, SRTP_EXPORTER_LABEL, None)
            .unwrap();
        out
    }

    pub fn server_fingerprint(&self) -> Option<String> {
        let cert = self.stream.ssl().peer_certificate()?;
        let der = cert.digest(openssl::hash::MessageDigest::sha256()).ok()?;
        Some(
            der.iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":"),
        )
    }

    fn drive(&mut self) {
        if self.failed {
            return;
        }
        if !self.connected {
            match self.stream.do_handshake() {
                Ok(()) => self.connected = true,
                Err(e) if e.code() == ErrorCode::WANT_READ => {}
                Err(_) => self.failed = true,
            }
        }
        if self.connected {
            let mut buf = [0u8; 2048];
            loop {
                match self.stream.ssl_read(&mut buf) {
                    Ok(n) => self.received.push(buf[..n].to_vec()),
                    Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                        self.peer_closed = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        self.stream.get_mut().seal();
    }
}
