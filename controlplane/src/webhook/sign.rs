//! Webhook signatures as LiveKit makes them: the `Authorization` header is
//! an HS256 JWT from the API key and secret whose `sha256` claim is the
//! standard (padded) base64 of SHA-256 over the exact body bytes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::{jwt, LEEWAY_SECS};

/// How long a signature stays valid. Signing happens per attempt, so this
/// only needs to cover transit and the receiver's clock skew.
pub const SIGNATURE_TTL: Duration = Duration::from_secs(300);

#[derive(Serialize, Deserialize)]
struct WebhookClaims {
    #[serde(default)]
    iss: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    sha256: String,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn body_hash(body: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(body))
}

/// The `Authorization` header value for `body`.
pub fn sign_body(body: &[u8], api_key: &str, secret: &str) -> Option<String> {
    let now = now_secs();
    let claims = WebhookClaims {
        iss: api_key.to_string(),
        exp: now.saturating_add(SIGNATURE_TTL.as_secs()),
        nbf: Some(now),
        sha256: body_hash(body),
    };
    jwt::sign(&claims, secret.as_bytes()).ok()
}

/// Whether `auth_header` (with or without a `Bearer ` prefix) is a current
/// signature of exactly `body` by `secret`.
pub fn verify_signature(body: &[u8], auth_header: &str, secret: &str) -> bool {
    let token = crate::auth::bearer_from_header(auth_header).unwrap_or(auth_header.trim());
    let Ok(unverified) = jwt::decode::<WebhookClaims>(token) else {
        return false;
    };
    let Ok(claims) = unverified.verify(secret.as_bytes()) else {
        return false;
    };
    let now = now_secs();
    if now > claims.exp.saturating_add(LEEWAY_SECS) {
        return false;
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS))
    {
        return false;
    }
    claims.sha256 == body_hash(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "webhook-secret-webhook-secret-123";

    #[test]
    fn sign_then_verify() {
        let body = br#"{"event":"room_started"}"#;
        let h = sign_body(body, "APIkey", SECRET).unwrap();
        assert!(verify_signature(body, &h, SECRET));
        assert!(verify_signature(body, &format!("Bearer {h}"), SECRET));
        assert!(!verify_signature(body, &h, "other-secret"));
        assert!(!verify_signature(
            br#"{"event":"room_finished"}"#,
            &h,
            SECRET
        ));
        assert!(!verify_signature(body, "", SECRET));
    }

    #[test]
    fn claims_are_livekit_shaped() {
        let h = sign_body(b"x", "APIkey", SECRET).unwrap();
        let c = jwt::decode::<serde_json::Value>(&h).unwrap().claims;
        assert_eq!(c["iss"], "APIkey");
        // base64(SHA-256("x")), padded, as Go's StdEncoding produces.
        assert_eq!(c["sha256"], "LXEWQrcmsEQBYnyp+6wy9chTD7GQPMTbAiWHF5IaSIE=");
    }

    #[test]
    fn expired_signature_fails() {
        let body = b"{}";
        let claims = WebhookClaims {
            iss: "k".into(),
            exp: now_secs() - 3600,
            nbf: None,
            sha256: body_hash(body),
        };
        let h = jwt::sign(&claims, SECRET.as_bytes()).unwrap();
        assert!(!verify_signature(body, &h, SECRET));
    }

    proptest! {
        #[test]
        fn random_headers_never_panic(h in ".{0,200}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert!(!verify_signature(&body, &h, SECRET));
        }
    }
}
