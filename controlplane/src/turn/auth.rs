//! Long-term credentials (RFC 8489 §9.2): static users, TURN REST API
//! time-limited credentials, nonces, and the `iceServers` entries signaling
//! hands out.
//!
//! Crypto comes from openssl (already a controlplane dependency) so the
//! TURN server adds no crates for MD5, HMAC-SHA1 or base64.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use openssl::hash::{hash, MessageDigest};
use openssl::pkey::PKey;
use openssl::sign::Signer;

use super::TurnError;
use crate::config::TurnConfig;

/// MD5(username ":" realm ":" password), the long-term key.
pub type LongTermKey = [u8; 16];

pub fn long_term_key(username: &str, realm: &str, password: &str) -> Result<LongTermKey, TurnError> {
    let mut input = Vec::with_capacity(username.len() + realm.len() + password.len() + 2);
    input.extend_from_slice(username.as_bytes());
    input.push(b':');
    input.extend_from_slice(realm.as_bytes());
    input.push(b':');
    input.extend_from_slice(password.as_bytes());
    let d = hash(MessageDigest::md5(), &input)?;
    let mut k = [0u8; 16];
    // MD5 output is always 16 bytes; a shorter slice would mean a broken
    // libcrypto, which we report rather than index into.
    k.copy_from_slice(d.get(..16).ok_or(TurnError::Crypto("md5 output"))?);
    Ok(k)
}

pub fn hmac_sha1(key: &[u8], data: &[u8]) -> Result<[u8; 20], TurnError> {
    let pkey = PKey::hmac(key)?;
    let mut s = Signer::new(MessageDigest::sha1(), &pkey)?;
    s.update(data)?;
    let v = s.sign_to_vec()?;
    <[u8; 20]>::try_from(v.as_slice()).map_err(|_| TurnError::Crypto("hmac-sha1 output"))
}

/// The TURN REST password for `username`: base64(HMAC-SHA1(secret, username)).
pub fn rest_password(secret: &str, username: &str) -> Result<String, TurnError> {
    Ok(openssl::base64::encode_block(&hmac_sha1(secret.as_bytes(), username.as_bytes())?))
}

/// Fresh TURN REST credentials for `identity`, valid for `ttl_secs`:
/// `("<unix expiry>:<identity>", base64(HMAC-SHA1(secret, username)))`,
/// what coturn's `use-auth-secret` accepts.
pub fn rest_credentials(secret: &str, identity: &str, ttl_secs: u64) -> Result<(String, String), TurnError> {
    rest_credentials_at(secret, identity, ttl_secs, unix_now())
}

/// [`rest_credentials`] at an explicit time, for tests.
pub fn rest_credentials_at(
    secret: &str,
    identity: &str,
    ttl_secs: u64,
    now_unix: u64,
) -> Result<(String, String), TurnError> {
    let username = format!("{}:{}", now_unix.saturating_add(ttl_secs), identity);
    let password = rest_password(secret, &username)?;
    Ok((username, password))
}

/// The expiry a REST username carries. Accepts both `expiry:identity` and a
/// bare `expiry` (coturn allows either), and nothing else.
pub fn rest_expiry(username: &str) -> Option<u64> {
    let head = username.split(':').next()?;
    if head.is_empty() || head.len() > 20 || !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    head.parse().ok()
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Why a username got no key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLookup {
    Found(LongTermKey),
    Unknown,
    Expired,
}

/// Resolves usernames to long-term keys. Static users are keyed once at
/// start; REST users cost one HMAC and one MD5 per request, which only
/// authenticated control requests pay (never relayed data).
pub struct Credentials {
    realm: String,
    static_keys: BTreeMap<String, LongTermKey>,
    shared_secret: Option<String>,
}

impl Credentials {
    pub fn new(cfg: &TurnConfig) -> Result<Self, TurnError> {
        let mut static_keys = BTreeMap::new();
        for (u, p) in &cfg.static_users {
            static_keys.insert(u.clone(), long_term_key(u, &cfg.realm, p)?);
        }
        Ok(Self {
            realm: cfg.realm.clone(),
            static_keys,
            shared_secret: cfg.shared_secret.clone().filter(|s| !s.is_empty()),
        })
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    pub fn is_empty(&self) -> bool {
        self.static_keys.is_empty() && self.shared_secret.is_none()
    }

    /// Static users win over REST parsing, so an operator can name a static
    /// user `1700000000:bob` without it being treated as expired.
    pub fn lookup(&self, username: &str, now_unix: u64) -> KeyLookup {
        if let Some(k) = self.static_keys.get(username) {
            return KeyLookup::Found(*k);
        }
        let Some(secret) = &self.shared_secret else {
            return KeyLookup::Unknown;
        };
        let Some(expiry) = rest_expiry(username) else {
            return KeyLookup::Unknown;
        };
        if expiry <= now_unix {
            return KeyLookup::Expired;
        }
        match rest_password(secret, username).and_then(|p| long_term_key(username, &self.realm, &p)) {
            Ok(k) => KeyLookup::Found(k),
            Err(e) => {
                tracing::warn!(error = %e, "turn: deriving REST key failed");
                KeyLookup::Unknown
            }
        }
    }
}

/// Stateless nonces: `hex(expiry) || hex(HMAC(secret, expiry)[..8])`, so the
/// server remembers nothing per client and a nonce cannot be forged or
/// extended.
pub struct Nonces {
    secret: [u8; 16],
    lifetime_secs: u64,
}

/// Hex digits of a nonce: 16 for the expiry, 16 for the tag.
pub const NONCE_LEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    Valid,
    Stale,
    Invalid,
}

impl Nonces {
    pub fn new(secret: [u8; 16], lifetime_secs: u64) -> Self {
        Self { secret, lifetime_secs }
    }

    pub fn issue(&self, now_unix: u64) -> Result<[u8; NONCE_LEN], TurnError> {
        let expiry = now_unix.saturating_add(self.lifetime_secs);
        let tag = hmac_sha1(&self.secret, &expiry.to_be_bytes())?;
        let mut s = String::with_capacity(NONCE_LEN);
        let _ = write!(s, "{expiry:016x}");
        for b in tag.iter().take(8) {
            let _ = write!(s, "{b:02x}");
        }
        let mut out = [0u8; NONCE_LEN];
        let bytes = s.as_bytes();
        if bytes.len() != NONCE_LEN {
            return Err(TurnError::Crypto("nonce length"));
        }
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub fn check(&self, nonce: &[u8], now_unix: u64) -> NonceCheck {
        let (Some(exp_hex), Some(tag_hex), true) = (nonce.get(..16), nonce.get(16..), nonce.len() == NONCE_LEN) else {
            return NonceCheck::Invalid;
        };
        let Some(expiry) = std::str::from_utf8(exp_hex).ok().and_then(|s| u64::from_str_radix(s, 16).ok()) else {
            return NonceCheck::Invalid;
        };
        let Ok(tag) = hmac_sha1(&self.secret, &expiry.to_be_bytes()) else {
            return NonceCheck::Invalid;
        };
        let mut want = [0u8; 16];
        for (i, b) in tag.iter().take(8).enumerate() {
            let hi = b >> 4;
            let lo = b & 0xF;
            want[2 * i] = hex_digit(hi);
            want[2 * i + 1] = hex_digit(lo);
        }
        if !openssl::memcmp::eq(&want, tag_hex) {
            return NonceCheck::Invalid;
        }
        if expiry <= now_unix {
            NonceCheck::Stale
        } else {
            NonceCheck::Valid
        }
    }
}

fn hex_digit(n: u8) -> u8 {
    if n < 10 {
        b'0' + n
    } else {
        b'a' + (n - 10)
    }
}

/// One `iceServers` entry (W3C RTCIceServer) with fresh credentials; it
/// serializes to the JSON shape browsers take (`urls`, `username`,
/// `credential`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: String,
    pub credential: String,
}

/// The entry signaling hands a client: TURN over UDP and TCP, and TURNS when
/// a TLS port is configured, with REST credentials for `identity`.
/// `host` is a DNS name or an IP (IPv6 gets bracketed). Needs
/// `turn.shared_secret`: static passwords are never handed out.
pub fn ice_server_entry(cfg: &TurnConfig, host: &str, identity: &str) -> Result<IceServer, TurnError> {
    let secret = cfg.shared_secret.as_deref().filter(|s| !s.is_empty()).ok_or(TurnError::NoSharedSecret)?;
    let (username, credential) = rest_credentials(secret, identity, cfg.credential_ttl_secs)?;
    let h = if host.parse::<std::net::Ipv6Addr>().is_ok() { format!("[{host}]") } else { host.to_string() };
    let mut urls = Vec::with_capacity(3);
    if cfg.udp_port != 0 {
        urls.push(format!("turn:{h}:{}?transport=udp", cfg.udp_port));
    }
    if cfg.tcp_port != 0 {
        urls.push(format!("turn:{h}:{}?transport=tcp", cfg.tcp_port));
    }
    if cfg.tls_port != 0 {
        urls.push(format!("turns:{h}:{}?transport=tcp", cfg.tls_port));
    }
    Ok(IceServer { urls, username, credential })
}

/// WHIP/WHEP `Link` header values, one per URL (RFC 9725 §4.6).
pub fn link_header_values(s: &IceServer) -> Vec<String> {
    s.urls
        .iter()
        .map(|u| {
            format!(
                "<{u}>; rel=\"ice-server\"; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                quote(&s.username),
                quote(&s.credential)
            )
        })
        .collect()
}

/// RFC 9110 quoted-string escaping; control characters are dropped because
/// they cannot appear in a header at all.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_term_key_is_md5_of_user_realm_password() {
        // echo -n a:b:c | md5sum
        assert_eq!(hex::encode(long_term_key("a", "b", "c").unwrap()), "02cc8f08398a4f3113b554e8105ebe4c");
    }

    #[test]
    fn rest_credentials_match_coturn_scheme() {
        let (u, p) = rest_credentials_at("north", "alice", 3600, 1_700_000_000).unwrap();
        assert_eq!(u, "1700003600:alice");
        // echo -n 1700003600:alice | openssl dgst -sha1 -hmac north -binary | base64
        let tag = hmac_sha1(b"north", u.as_bytes()).unwrap();
        assert_eq!(p, openssl::base64::encode_block(&tag));
        assert_eq!(p.len(), 28);
        assert_eq!(rest_expiry(&u), Some(1_700_003_600));
        assert_eq!(rest_expiry("1700003600"), Some(1_700_003_600));
        assert_eq!(rest_expiry("alice:1700003600"), None);
        assert_eq!(rest_expiry(":x"), None);
        assert_eq!(rest_expiry("99999999999999999999999:x"), None);
    }

    #[test]
    fn credentials_lookup() {
        let mut cfg = TurnConfig::default();
        cfg.static_users.insert("bob".into(), "pw".into());
        cfg.shared_secret = Some("s3cret".into());
        let c = Credentials::new(&cfg).unwrap();
        assert_eq!(c.lookup("bob", 0), KeyLookup::Found(long_term_key("bob", "sfud", "pw").unwrap()));
        assert_eq!(c.lookup("eve", 0), KeyLookup::Unknown);
        let (u, p) = rest_credentials_at("s3cret", "x", 60, 1000).unwrap();
        assert_eq!(c.lookup(&u, 1000), KeyLookup::Found(long_term_key(&u, "sfud", &p).unwrap()));
        assert_eq!(c.lookup(&u, 1060), KeyLookup::Expired);
        cfg.shared_secret = None;
        let c = Credentials::new(&cfg).unwrap();
        assert_eq!(c.lookup(&u, 1000), KeyLookup::Unknown);
    }

    #[test]
    fn nonces() {
        let n = Nonces::new([7; 16], 600);
        let nonce = n.issue(1000).unwrap();
        assert_eq!(n.check(&nonce, 1000), NonceCheck::Valid);
        assert_eq!(n.check(&nonce, 1599), NonceCheck::Valid);
        assert_eq!(n.check(&nonce, 1600), NonceCheck::Stale);
        let mut bad = nonce;
        bad[31] = if bad[31] == b'0' { b'1' } else { b'0' };
        assert_eq!(n.check(&bad, 1000), NonceCheck::Invalid);
        // Extending the expiry invalidates the tag.
        let mut ext = nonce;
        ext[0] = b'f';
        assert_eq!(n.check(&ext, 1000), NonceCheck::Invalid);
        assert_eq!(n.check(b"short", 1000), NonceCheck::Invalid);
        assert_eq!(Nonces::new([8; 16], 600).check(&nonce, 1000), NonceCheck::Invalid);
    }

    #[test]
    fn ice_server_and_link_headers() {
        let mut cfg = TurnConfig::default();
        assert!(matches!(ice_server_entry(&cfg, "h", "id"), Err(TurnError::NoSharedSecret)));
        cfg.shared_secret = Some("k".into());
        cfg.tls_port = 5349;
        let s = ice_server_entry(&cfg, "::1", "pub-1").unwrap();
        assert_eq!(
            s.urls,
            vec!["turn:[::1]:3478?transport=udp", "turn:[::1]:3478?transport=tcp", "turns:[::1]:5349?transport=tcp"]
        );
        assert!(s.username.ends_with(":pub-1"));
        let links = link_header_values(&s);
        assert_eq!(links.len(), 3);
        assert_eq!(
            links[0],
            format!(
                "<turn:[::1]:3478?transport=udp>; rel=\"ice-server\"; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                s.username, s.credential
            )
        );
        assert_eq!(quote("a\"b\\c\n"), "a\\\"b\\\\c");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["urls"][0], "turn:[::1]:3478?transport=udp");
        assert_eq!(json["username"], s.username.as_str());
        assert_eq!(json["credential"], s.credential.as_str());
    }
}
