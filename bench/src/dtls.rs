//! The DTLS 1.2 client side of a session (a=setup:active), on openssl, fed
//! datagrams by the event loop. Retransmission is done by resending the last
//! flight we wrote: on loopback that is all a lost handshake datagram needs,
//! and it keeps openssl's timer machinery out of a single-threaded loop.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use anyhow::{anyhow, Result};
use dataplane::srtp::{split_keying_material, MasterKey, SrtpProfile};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{ErrorCode, Ssl, SslContext, SslMethod, SslOptions, SslStream, SslVerifyMode, SslVersion};
use openssl::x509::{X509Name, X509};

const MTU: usize = 1200;

/// Our identity (one per process) and its sha-256 SDP fingerprint.
pub struct Identity {
    pub cert: X509,
    pub key: PKey<Private>,
    pub fingerprint: String,
}

impl Identity {
    pub fn generate() -> Result<Self> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
        let mut name = X509Name::builder()?;
        name.append_entry_by_text("CN", "sfu-bench")?;
        let name = name.build();
        let mut b = X509::builder()?;
        b.set_version(2)?;
        let mut serial = BigNum::new()?;
        serial.rand(64, MsbOption::MAYBE_ZERO, false)?;
        let serial = serial.to_asn1_integer()?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&key)?;
        let (nb, na) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(30)?);
        b.set_not_before(&nb)?;
        b.set_not_after(&na)?;
        b.sign(&key, MessageDigest::sha256())?;
        let cert = b.build();
        let fingerprint = cert
            .digest(MessageDigest::sha256())?
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        Ok(Self { cert, key, fingerprint })
    }

    /// `profiles` is an openssl use_srtp list, e.g. "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80".
    pub fn context(&self, profiles: &str) -> Result<SslContext> {
        let mut b = SslContext::builder(SslMethod::dtls())?;
        b.set_min_proto_version(Some(SslVersion::DTLS1_2))?;
        b.set_max_proto_version(Some(SslVersion::DTLS1_2))?;
        b.set_tlsext_use_srtp(profiles)?;
        b.set_certificate(&self.cert)?;
        b.set_private_key(&self.key)?;
        b.set_options(SslOptions::NO_QUERY_MTU);
        // A load generator trusts its target; the server checks our fingerprint.
        b.set_verify_callback(SslVerifyMode::PEER, |_, _| true);
        Ok(b.build())
    }
}

/// Datagram-preserving in-memory transport.
#[derive(Default)]
struct Mem {
    incoming: Option<Vec<u8>>,
    pending: Vec<u8>,
    out: VecDeque<Vec<u8>>,
}

impl Mem {
    fn seal(&mut self) {
        if !self.pending.is_empty() {
            self.out.push_back(std::mem::take(&mut self.pending));
        }
    }
}

impl Read for Mem {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.incoming.take() {
            Some(d) => {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                Ok(n)
            }
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for Mem {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.pending.is_empty() && self.pending.len() + buf.len() > MTU {
            self.seal();
        }
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.seal();
        Ok(())
    }
}

pub enum DtlsState {
    Handshaking,
    /// Keys: (ours to protect with, theirs to unprotect with).
    Connected(MasterKey, MasterKey),
    Failed,
}

pub struct DtlsClient {
    stream: SslStream<Mem>,
    /// The last flight written, resent on timeout.
    last_flight: Vec<Vec<u8>>,
    done: bool,
}

impl DtlsClient {
    /// `client` = true for a=setup:active (we connect), false when the peer
    /// chose active and we must accept.
    pub fn new(ctx: &SslContext, client: bool) -> Result<Self> {
        let mut ssl = Ssl::new(ctx)?;
        if client {
            ssl.set_connect_state();
        } else {
            ssl.set_accept_state();
        }
        ssl.set_mtu(MTU as u32)?;
        let stream = SslStream::new(ssl, Mem::default())?;
        Ok(Self { stream, last_flight: Vec::new(), done: false })
    }

    /// Drives the handshake (call once to emit the ClientHello, then per
    /// datagram). Returns the datagrams to send and the state.
    pub fn handle(&mut self, datagram: Option<&[u8]>, out: &mut Vec<Vec<u8>>) -> DtlsState {
        if let Some(d) = datagram {
            if d.is_empty() {
                return DtlsState::Handshaking;
            }
            self.stream.get_mut().incoming = Some(d.to_vec());
        }
        let r = if self.done {
            // After the handshake only alerts/retransmits arrive; read and drop.
            let mut b = [0u8; 2048];
            let _ = self.stream.ssl_read(&mut b);
            self.stream.get_mut().seal();
            self.collect(out);
            return DtlsState::Handshaking;
        } else {
            self.stream.do_handshake()
        };
        self.stream.get_mut().incoming = None;
        self.stream.get_mut().seal();
        self.collect(out);
        match r {
            Ok(()) => {
                self.done = true;
                match self.keys() {
                    Ok((tx, rx)) => DtlsState::Connected(tx, rx),
                    Err(_) => DtlsState::Failed,
                }
            }
            Err(e) if e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE => DtlsState::Handshaking,
            Err(_) => DtlsState::Failed,
        }
    }

    fn collect(&mut self, out: &mut Vec<Vec<u8>>) {
        let mem = self.stream.get_mut();
        if !mem.out.is_empty() {
            self.last_flight.clear();
            while let Some(d) = mem.out.pop_front() {
                self.last_flight.push(d.clone());
                out.push(d);
            }
        }
    }

    /// Resends the last flight (handshake timeout).
    pub fn retransmit(&self, out: &mut Vec<Vec<u8>>) {
        out.extend(self.last_flight.iter().cloned());
    }

    fn keys(&self) -> Result<(MasterKey, MasterKey)> {
        let ssl = self.stream.ssl();
        let name = ssl.selected_srtp_profile().ok_or_else(|| anyhow!("no SRTP profile negotiated"))?;
        let profile = SrtpProfile::from_openssl_name(name.name()).ok_or_else(|| anyhow!("unknown profile"))?;
        let mut material = vec![0u8; profile.keying_material_len()];
        ssl.export_keying_material(&mut material, "EXTRACTOR-dtls_srtp", None)?;
        Ok(split_keying_material(profile, &material, ssl.is_server())?)
    }
}
