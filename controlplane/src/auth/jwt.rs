//! Compact JWS with HS256 only (RFC 7515/7519), written against `hmac` and
//! `sha2` rather than the `jsonwebtoken` crate: HS256 is the only algorithm
//! LiveKit-style tokens use, and jsonwebtoken 10+ must pull a whole crypto
//! backend (aws-lc's C build, or RSA/ECDSA/EdDSA crates) to offer it, while
//! 9.x is affected by GHSA-h395-gr6q-cpjc. Accepting exactly one algorithm
//! also rules out `alg` confusion (`none`, RS256-with-HMAC-key) by construction.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longer tokens are refused before any decoding: a real one is a few
/// hundred bytes, and this bounds the work an unauthenticated caller causes.
pub const MAX_TOKEN_LEN: usize = 8192;

/// Base64url of `{"alg":"HS256","typ":"JWT"}`, the header every token we
/// issue carries (same bytes as LiveKit's SDKs emit).
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("unsupported algorithm (only HS256 is accepted)")]
    Algorithm,
    #[error("bad signature")]
    Signature,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

/// A token split and decoded but not yet verified: the caller must look up
/// the secret (usually by `iss`, which is why the payload is parsed first)
/// and call [`Unverified::verify`] before trusting anything in it.
pub struct Unverified<'a, T> {
    signing_input: &'a str,
    signature: Vec<u8>,
    pub claims: T,
}

impl<T> Unverified<'_, T> {
    pub fn verify(self, secret: &[u8]) -> Result<T, JwtError> {
        let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| JwtError::Signature)?;
        mac.update(self.signing_input.as_bytes());
        // verify_slice compares in constant time.
        mac.verify_slice(&self.signature)
            .map_err(|_| JwtError::Signature)?;
        Ok(self.claims)
    }
}

/// Signs `claims` as an HS256 JWT.
pub fn sign<T: Serialize>(claims: &T, secret: &[u8]) -> Result<String, JwtError> {
    let payload =
        serde_json::to_vec(claims).map_err(|_| JwtError::Malformed("claims do not serialize"))?;
    let mut token = String::with_capacity(HEADER_B64.len() + payload.len() * 4 / 3 + 48);
    token.push_str(HEADER_B64);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| JwtError::Signature)?;
    mac.update(token.as_bytes());
    let tag = mac.finalize().into_bytes();
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(tag, &mut token);
    Ok(token)
}

/// Splits and decodes a token; checks the header names HS256.
pub fn decode<T: DeserializeOwned>(token: &str) -> Result<Unverified<'_, T>, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed("too long"));
    }
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed("not three dot-separated parts"));
    };
    if s.contains('.') {
        return Err(JwtError::Malformed("too many parts"));
    }
    let header_json = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| JwtError::Malformed("header is not base64url"))?;
    let header: Header = serde_json::from_slice(&header_json)
        .map_err(|_| JwtError::Malformed("header is not JSON"))?;
    if header.alg != "HS256" {
        return Err(JwtError::Algorithm);
    }
    let payload_json = URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| JwtError::Malformed("payload is not base64url"))?;
    let claims: T = serde_json::from_slice(&payload_json)
        .map_err(|_| JwtError::Malformed("payload is not a valid claim set"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| JwtError::Malformed("signature is not base64url"))?;
    // `h.len() + 1 + p.len()` is within `token` since both came from it.
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .ok_or(JwtError::Malformed("not three dot-separated parts"))?;
    Ok(Unverified {
        signing_input,
        signature,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    #[test]
    fn header_constant_matches_its_json() {
        let h = URL_SAFE_NO_PAD.decode(HEADER_B64).unwrap();
        assert_eq!(h, br#"{"alg":"HS256","typ":"JWT"}"#);
    }

    #[test]
    fn rfc7515_a1_style_vector() {
        // Independent check of the HMAC input and encoding: a token produced
        // by `sign` verifies against a MAC computed here from its parts.
        let tok = sign(&serde_json::json!({"sub": "x"}), b"k").unwrap();
        let (input, sig) = tok.rsplit_once('.').unwrap();
        let mut mac = HmacSha256::new_from_slice(b"k").unwrap();
        mac.update(input.as_bytes());
        assert_eq!(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()), sig);
    }

    #[test]
    fn known_answer_jwt_io_example() {
        // The HS256 example token published on jwt.io, with its secret.
        let tok = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
                   eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.\
                   SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        let claims = decode::<Value>(tok)
            .unwrap()
            .verify(b"your-256-bit-secret")
            .unwrap();
        assert_eq!(claims["name"], "John Doe");
        assert_eq!(
            decode::<Value>(tok)
                .unwrap()
                .verify(b"another-secret")
                .err(),
            Some(JwtError::Signature)
        );
    }

    #[test]
    fn rejects_alg_none_and_others() {
        for alg in ["none", "HS512", "RS256", "hs256"] {
            let h = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#));
            let p = URL_SAFE_NO_PAD.encode("{}");
            let tok = format!("{h}.{p}.");
            assert_eq!(
                decode::<Value>(&tok).err(),
                Some(JwtError::Algorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn tampered_payload_fails() {
        let tok = sign(&serde_json::json!({"sub": "alice"}), b"secret").unwrap();
        let parts: Vec<&str> = tok.split('.').collect();
        let evil = URL_SAFE_NO_PAD.encode(r#"{"sub":"mallory"}"#);
        let forged = format!("{}.{}.{}", parts[0], evil, parts[2]);
        let u = decode::<Value>(&forged).unwrap();
        assert_eq!(u.verify(b"secret").err(), Some(JwtError::Signature));
    }

    proptest! {
        #[test]
        fn random_strings_never_panic(s in ".{0,300}") {
            let _ = decode::<Value>(&s).map(|u| u.verify(b"k"));
        }

        #[test]
        fn dotted_base64ish_never_panics(a in "[A-Za-z0-9_=-]{0,60}", b in "[A-Za-z0-9_=-]{0,60}", c in "[A-Za-z0-9_.=-]{0,60}") {
            let s = format!("{a}.{b}.{c}");
            let _ = decode::<Value>(&s).map(|u| u.verify(b"k"));
            let s = format!("{HEADER_B64}.{b}.{c}");
            let _ = decode::<Value>(&s).map(|u| u.verify(b"k"));
        }
    }
}
