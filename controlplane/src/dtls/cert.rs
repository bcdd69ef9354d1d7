//! The DTLS identity: an ECDSA P-256 certificate and SDP fingerprints (RFC 8122).

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::{X509NameBuilder, X509Ref, X509};

use super::DtlsError;

/// Backdating covers peers whose clocks run a little behind ours.
const BACKDATE_DAYS: u32 = 1;
const VALIDITY_DAYS: u32 = 365;
const COMMON_NAME: &str = "sfud";

/// Certificate and private key. Cheap to clone (openssl reference counts).
#[derive(Clone)]
pub struct Certificate {
    x509: X509,
    key: PKey<Private>,
}

impl std::fmt::Debug for Certificate {
    // Keeps the private key out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("fingerprint_sha256", &self.fingerprint_sha256())
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// A fresh self-signed ECDSA P-256 certificate, CN "sfud", random serial, one year.
    pub fn generate() -> Result<Self, DtlsError> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)
            .map_err(DtlsError::openssl("load the P-256 group"))?;
        let ec = EcKey::generate(&group).map_err(DtlsError::openssl("generate a P-256 key"))?;
        let key = PKey::from_ec_key(ec).map_err(DtlsError::openssl("wrap the P-256 key"))?;

        let mut name = X509NameBuilder::new().map_err(DtlsError::openssl("build a name"))?;
        name.append_entry_by_nid(Nid::COMMONNAME, COMMON_NAME)
            .map_err(DtlsError::openssl("set the common name"))?;
        let name = name.build();

        // 63 random bits with the top one clear: a positive serial, as RFC 5280 wants.
        let mut serial = BigNum::new().map_err(DtlsError::openssl("allocate a serial"))?;
        serial
            .rand(63, MsbOption::MAYBE_ZERO, false)
            .map_err(DtlsError::openssl("draw a random serial"))?;
        let serial =
            Asn1Integer::from_bn(&serial).map_err(DtlsError::openssl("encode the serial"))?;

        let not_before = Asn1Time::from_unix(unix_now() - i64::from(BACKDATE_DAYS) * 86_400)
            .map_err(DtlsError::openssl("encode notBefore"))?;
        let not_after = Asn1Time::days_from_now(VALIDITY_DAYS)
            .map_err(DtlsError::openssl("encode notAfter"))?;

        let mut b = X509::builder().map_err(DtlsError::openssl("start a certificate"))?;
        b.set_version(2)
            .map_err(DtlsError::openssl("set the X.509 version"))?;
        b.set_serial_number(&serial)
            .map_err(DtlsError::openssl("set the serial"))?;
        b.set_subject_name(&name)
            .map_err(DtlsError::openssl("set the subject"))?;
        b.set_issuer_name(&name)
            .map_err(DtlsError::openssl("set the issuer"))?;
        b.set_pubkey(&key)
            .map_err(DtlsError::openssl("set the public key"))?;
        b.set_not_before(&not_before)
            .map_err(DtlsError::openssl("set notBefore"))?;
        b.set_not_after(&not_after)
            .map_err(DtlsError::openssl("set notAfter"))?;
        b.sign(&key, MessageDigest::sha256())
            .map_err(DtlsError::openssl("sign the certificate"))?;
        Ok(Self {
            x509: b.build(),
            key,
        })
    }

    /// Loads a certificate and its key, e.g. from configuration. The key must be
    /// an EC key (the cipher list only has ECDSA suites) matching the certificate.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, DtlsError> {
        let x509 =
            X509::from_pem(cert_pem).map_err(DtlsError::openssl("parse the certificate PEM"))?;
        let key = PKey::private_key_from_pem(key_pem)
            .map_err(DtlsError::openssl("parse the private key PEM"))?;
        if key.id() != Id::EC {
            return Err(DtlsError::InvalidCertificate("the key is not an ECDSA key"));
        }
        let public = x509
            .public_key()
            .map_err(DtlsError::openssl("read the certificate's public key"))?;
        if !public.public_eq(&key) {
            return Err(DtlsError::InvalidCertificate(
                "the private key does not match the certificate",
            ));
        }
        Ok(Self { x509, key })
    }

    pub fn cert_pem(&self) -> Result<Vec<u8>, DtlsError> {
        self.x509
            .to_pem()
            .map_err(DtlsError::openssl("encode the certificate PEM"))
    }

    pub fn key_pem(&self) -> Result<Vec<u8>, DtlsError> {
        self.key
            .private_key_to_pem_pkcs8()
            .map_err(DtlsError::openssl("encode the private key PEM"))
    }

    /// "AB:CD:..." as `a=fingerprint:sha-256` wants it.
    pub fn fingerprint_sha256(&self) -> String {
        // SHA-256 over a DER certificate cannot fail short of allocation failure.
        match fingerprint(&self.x509, FingerprintAlgorithm::Sha256) {
            Ok(fp) => format_fingerprint(&fp),
            Err(_) => String::new(),
        }
    }

    pub(crate) fn x509(&self) -> &X509 {
        &self.x509
    }

    pub(crate) fn key(&self) -> &PKey<Private> {
        &self.key
    }
}

/// Hash functions allowed in `a=fingerprint` that we can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FingerprintAlgorithm {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl FingerprintAlgorithm {
    /// Parses an RFC 8122 hash function token; the grammar is case-insensitive.
    pub fn from_sdp(name: &str) -> Result<Self, DtlsError> {
        let alg = match name.to_ascii_lowercase().as_str() {
            "sha-1" => Self::Sha1,
            "sha-224" => Self::Sha224,
            "sha-256" => Self::Sha256,
            "sha-384" => Self::Sha384,
            "sha-512" => Self::Sha512,
            _ => return Err(DtlsError::UnsupportedFingerprintAlgorithm(name.to_owned())),
        };
        Ok(alg)
    }

    fn digest(self) -> MessageDigest {
        match self {
            Self::Sha1 => MessageDigest::sha1(),
            Self::Sha224 => MessageDigest::sha224(),
            Self::Sha256 => MessageDigest::sha256(),
            Self::Sha384 => MessageDigest::sha384(),
            Self::Sha512 => MessageDigest::sha512(),
        }
    }

    fn len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha224 => 28,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// The fingerprint a peer announced in SDP, decoded for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpectedFingerprint {
    pub alg: FingerprintAlgorithm,
    pub bytes: Vec<u8>,
}

impl ExpectedFingerprint {
    pub fn parse(alg: &str, value: &str) -> Result<Self, DtlsError> {
        let alg = FingerprintAlgorithm::from_sdp(alg)?;
        let malformed = || DtlsError::MalformedFingerprint(value.to_owned());
        let mut bytes = Vec::with_capacity(alg.len());
        for pair in value.trim().split(':') {
            if pair.len() != 2 {
                return Err(malformed());
            }
            let byte = u8::from_str_radix(pair, 16).map_err(|_| malformed())?;
            bytes.push(byte);
        }
        if bytes.len() != alg.len() {
            return Err(malformed());
        }
        Ok(Self { alg, bytes })
    }

    pub fn matches(&self, cert: &X509Ref) -> bool {
        fingerprint(cert, self.alg).is_ok_and(|fp| fp.as_slice() == self.bytes.as_slice())
    }
}

fn fingerprint(cert: &X509Ref, alg: FingerprintAlgorithm) -> Result<Vec<u8>, DtlsError> {
    cert.digest(alg.digest())
        .map(|d| d.to_vec())
        .map_err(DtlsError::openssl("hash the certificate"))
}

fn format_fingerprint(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&hex::encode_upper([*b]));
    }
    out
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_fingerprint_format(s: &str, pairs: usize) -> bool {
        let parts: Vec<&str> = s.split(':').collect();
        parts.len() == pairs
            && parts.iter().all(|p| {
                p.len() == 2
                    && p.chars()
                        .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c))
            })
    }

    #[test]
    fn generated_certificate_shape() {
        let cert = Certificate::generate().unwrap();
        let x = cert.x509();
        let cn = x
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .unwrap();
        assert_eq!(cn.data().as_slice(), b"sfud");
        assert_eq!(x.version(), 2);
        let ec = cert.key().ec_key().unwrap();
        assert_eq!(ec.group().curve_name(), Some(Nid::X9_62_PRIME256V1));
        assert!(x.verify(cert.key()).unwrap(), "self-signed");
        let serial = x.serial_number().to_bn().unwrap();
        assert!(!serial.is_negative());
        assert!(is_fingerprint_format(&cert.fingerprint_sha256(), 32));
        // Two certificates must not share a serial or key.
        let other = Certificate::generate().unwrap();
        assert_ne!(cert.fingerprint_sha256(), other.fingerprint_sha256());
    }

    #[test]
    fn fingerprint_matches_openssl_cli() {
        let cert = Certificate::generate().unwrap();
        let dir = std::env::temp_dir().join(format!("sfud-dtls-fp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cert.pem");
        std::fs::write(&path, cert.cert_pem().unwrap()).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(&path)
            .output();
        let _ = std::fs::remove_dir_all(&dir);
        let Ok(out) = out else {
            eprintln!("openssl CLI not available; skipping");
            return;
        };
        assert!(out.status.success());
        // "sha256 Fingerprint=AB:CD:..." (older releases say "SHA256 Fingerprint=").
        let text = String::from_utf8(out.stdout).unwrap();
        let cli = text.trim().split_once('=').unwrap().1;
        assert_eq!(cli, cert.fingerprint_sha256());
    }

    #[test]
    fn pem_round_trip_and_mismatch() {
        let a = Certificate::generate().unwrap();
        let b = Certificate::generate().unwrap();
        let back = Certificate::from_pem(&a.cert_pem().unwrap(), &a.key_pem().unwrap()).unwrap();
        assert_eq!(back.fingerprint_sha256(), a.fingerprint_sha256());
        assert!(matches!(
            Certificate::from_pem(&a.cert_pem().unwrap(), &b.key_pem().unwrap()),
            Err(DtlsError::InvalidCertificate(_))
        ));
        assert!(matches!(
            Certificate::from_pem(b"nope", &a.key_pem().unwrap()),
            Err(DtlsError::OpenSsl { .. })
        ));
        let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let rsa_pem = rsa.private_key_to_pem_pkcs8().unwrap();
        assert!(matches!(
            Certificate::from_pem(&a.cert_pem().unwrap(), &rsa_pem),
            Err(DtlsError::InvalidCertificate(_))
        ));
    }

    #[test]
    fn expected_fingerprint_parsing() {
        let cert = Certificate::generate().unwrap();
        let fp = cert.fingerprint_sha256();
        let exp = ExpectedFingerprint::parse("sha-256", &fp).unwrap();
        assert!(exp.matches(cert.x509()));
        let lower = ExpectedFingerprint::parse("SHA-256", &fp.to_lowercase()).unwrap();
        assert!(lower.matches(cert.x509()));
        let other = Certificate::generate().unwrap();
        assert!(!exp.matches(other.x509()));

        let sha1 = hex::encode_upper(cert.x509().digest(MessageDigest::sha1()).unwrap());
        let sha1 = sha1
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        assert!(ExpectedFingerprint::parse("sha-1", &sha1)
            .unwrap()
            .matches(cert.x509()));

        assert!(matches!(
            ExpectedFingerprint::parse("md5", &fp),
            Err(DtlsError::UnsupportedFingerprintAlgorithm(_))
        ));
        for bad in [
            "",
            "AB",
            &fp[..fp.len() - 3],
            "ZZ:",
            &fp.replace(':', ""),
            &format!("{fp}:00"),
        ] {
            assert!(
                matches!(
                    ExpectedFingerprint::parse("sha-256", bad),
                    Err(DtlsError::MalformedFingerprint(_))
                ),
                "{bad:?}"
            );
        }
    }
}
