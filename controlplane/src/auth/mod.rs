//! Access tokens, as LiveKit issues them: an HS256 JWT whose `iss` names an
//! API key from `[auth] keys`, `sub` is the participant identity, and a
//! `video` object carries the room and grants. A token minted by a LiveKit
//! server SDK with the same key and secret works against sfud unchanged.
//!
//! With no keys configured the authenticator is open: every check passes
//! with `Ok(None)`, and the caller logs once at start that sfud runs open.
//!
//! `jwt.rs` holds the HS256 encoding, shared with webhook signing.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;

pub mod jwt;

/// Clock skew tolerated on `exp` and `nbf`, between sfud and whichever
/// backend minted the token.
pub const LEEWAY_SECS: u64 = 30;

/// Secrets shorter than this are accepted but warned about: LiveKit itself
/// refuses them, and HS256 security is the secret's entropy.
const MIN_SECRET_LEN: usize = 32;

/// What a token allows. Mirrors LiveKit's `VideoGrant` subset sfud uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// The room the token is for; `None` = not bound to a room (only
    /// meaningful for node-wide admin tokens).
    pub room: Option<String>,
    pub room_join: bool,
    pub can_publish: bool,
    pub can_subscribe: bool,
    pub room_admin: bool,
    /// Listing rooms (LiveKit's `roomList`).
    pub room_list: bool,
}

/// A verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub identity: String,
    pub grants: Grants,
    /// Unix seconds.
    pub expires: u64,
    /// The API key that signed it (`iss`), for audit logs.
    pub api_key: String,
    /// sfud extension, the `ns` claim: the namespace (tenant) the token is
    /// confined to (docs/cluster.md); `None` = any.
    pub namespace: Option<String>,
}

/// What an entry point requires of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// WHIP: join `room` and publish.
    Publish { room: &'a str },
    /// WHEP: join `room` and subscribe.
    Subscribe { room: &'a str },
    /// JSON-RPC `join`.
    Join { room: &'a str },
    /// Admin API. `None` for node-wide calls (list rooms, node info).
    Admin { room: Option<&'a str> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing access token")]
    MissingToken,
    #[error("malformed access token: {0}")]
    Malformed(&'static str),
    #[error("access token is signed with an unknown API key")]
    UnknownKey,
    #[error("access token signature is invalid")]
    BadSignature,
    #[error("access token has expired")]
    Expired,
    #[error("access token is not valid yet")]
    NotYetValid,
    #[error("access token is for another room")]
    WrongRoom,
    #[error("access token lacks the {0} grant")]
    MissingGrant(&'static str),
    /// `create_token` with no keys configured.
    #[error("no API keys are configured ([auth] keys)")]
    NoKeys,
    /// `create_token` naming a key that is not configured.
    #[error("API key {0:?} is not configured")]
    NoSuchKey(String),
}

impl AuthError {
    /// 401 when the caller is not authenticated (no, bad or stale token),
    /// 403 when the token is good but does not allow this request.
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::MissingToken
            | AuthError::Malformed(_)
            | AuthError::UnknownKey
            | AuthError::BadSignature
            | AuthError::Expired
            | AuthError::NotYetValid => 401,
            AuthError::WrongRoom | AuthError::MissingGrant(_) => 403,
            AuthError::NoKeys | AuthError::NoSuchKey(_) => 500,
        }
    }

    /// Stable machine-readable reason, for JSON error bodies and JSON-RPC
    /// error data.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::Malformed(_) => "malformed_token",
            AuthError::UnknownKey => "unknown_api_key",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::WrongRoom => "wrong_room",
            AuthError::MissingGrant(_) => "missing_grant",
            AuthError::NoKeys => "no_keys",
            AuthError::NoSuchKey(_) => "no_such_key",
        }
    }
}

/// The JWT claim set on the wire. Unknown claims (LiveKit's `metadata`,
/// `attributes`, `kind`, other grants) are ignored, not rejected.
#[derive(Debug, Serialize, Deserialize)]
struct WireClaims {
    #[serde(default)]
    iss: String,
    #[serde(default)]
    sub: String,
    /// Required: a token that never expires is a standing credential.
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    video: Option<VideoGrant>,
    /// sfud extension: the namespace the token is confined to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ns: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VideoGrant {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    room: String,
    #[serde(default, skip_serializing_if = "is_false")]
    room_join: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    room_admin: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    room_list: bool,
    /// Absent means allowed, as in LiveKit (`GetCanPublish` defaults true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    can_publish: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    can_subscribe: Option<bool>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl From<VideoGrant> for Grants {
    fn from(v: VideoGrant) -> Self {
        Grants {
            room: (!v.room.is_empty()).then_some(v.room),
            room_join: v.room_join,
            can_publish: v.can_publish.unwrap_or(true),
            can_subscribe: v.can_subscribe.unwrap_or(true),
            room_admin: v.room_admin,
            room_list: v.room_list,
        }
    }
}

impl From<&Grants> for VideoGrant {
    fn from(g: &Grants) -> Self {
        VideoGrant {
            room: g.room.clone().unwrap_or_default(),
            room_join: g.room_join,
            room_admin: g.room_admin,
            room_list: g.room_list,
            // Always explicit: a token sfud mints says exactly what it allows.
            can_publish: Some(g.can_publish),
            can_subscribe: Some(g.can_subscribe),
        }
    }
}

/// Verifies and mints access tokens with the configured API keys.
#[derive(Clone)]
pub struct Authenticator {
    /// API key -> secret. Empty = open.
    keys: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secrets.
        f.debug_struct("Authenticator")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Authenticator {
    pub fn new(cfg: &AuthConfig) -> Self {
        for (key, secret) in &cfg.keys {
            if secret.len() < MIN_SECRET_LEN {
                tracing::warn!(
                    api_key = %key,
                    "auth secret is shorter than {MIN_SECRET_LEN} characters; use a long random secret"
                );
            }
        }
        Self {
            keys: cfg
                .keys
                .iter()
                .map(|(k, s)| (k.clone(), s.as_bytes().to_vec()))
                .collect(),
        }
    }

    /// No keys: every request is allowed.
    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// The secret of `api_key`, or of the first configured key when `None`.
    /// Webhook signing uses this to pick its signer.
    pub fn signer(&self, api_key: Option<&str>) -> Result<(String, String), AuthError> {
        let (k, s) = self.pick_key(api_key)?;
        Ok((k.to_string(), String::from_utf8_lossy(s).into_owned()))
    }

    fn pick_key(&self, api_key: Option<&str>) -> Result<(&str, &[u8]), AuthError> {
        match api_key {
            Some(k) => self
                .keys
                .get_key_value(k)
                .map(|(k, s)| (k.as_str(), s.as_slice()))
                .ok_or_else(|| AuthError::NoSuchKey(k.to_string())),
            None => self
                .keys
                .iter()
                .next()
                .map(|(k, s)| (k.as_str(), s.as_slice()))
                .ok_or(AuthError::NoKeys),
        }
    }

    /// Mints a token valid from now for `ttl`, signed with `api_key` (or the
    /// first configured key).
    pub fn create_token(
        &self,
        api_key: Option<&str>,
        identity: &str,
        grants: Grants,
        ttl: Duration,
    ) -> Result<String, AuthError> {
        self.create_token_in(api_key, identity, grants, ttl, None)
    }

    /// `create_token`, confined to `namespace` (the `ns` claim) when given.
    pub fn create_token_in(
        &self,
        api_key: Option<&str>,
        identity: &str,
        grants: Grants,
        ttl: Duration,
        namespace: Option<&str>,
    ) -> Result<String, AuthError> {
        let (key, secret) = self.pick_key(api_key)?;
        let now = now_secs();
        let claims = WireClaims {
            iss: key.to_string(),
            sub: identity.to_string(),
            exp: now.saturating_add(ttl.as_secs()),
            nbf: Some(now),
            jti: Some(identity.to_string()),
            video: Some(VideoGrant::from(&grants)),
            ns: namespace.map(str::to_string),
        };
        jwt::sign(&claims, secret).map_err(|_| AuthError::Malformed("claims do not serialize"))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify_at(token, now_secs())
    }

    fn verify_at(&self, token: &str, now: u64) -> Result<Claims, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::MissingToken);
        }
        let unverified = jwt::decode::<WireClaims>(token).map_err(|e| match e {
            jwt::JwtError::Malformed(m) => AuthError::Malformed(m),
            jwt::JwtError::Algorithm => AuthError::Malformed("only HS256 tokens are accepted"),
            jwt::JwtError::Signature => AuthError::BadSignature,
        })?;
        let secret = self
            .keys
            .get(&unverified.claims.iss)
            .ok_or(AuthError::UnknownKey)?;
        // Signature before any claim check, so a forged token learns
        // nothing about which of its claims would have passed.
        let wire = unverified
            .verify(secret)
            .map_err(|_| AuthError::BadSignature)?;
        if now > wire.exp.saturating_add(LEEWAY_SECS) {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = wire.nbf {
            if nbf > now.saturating_add(LEEWAY_SECS) {
                return Err(AuthError::NotYetValid);
            }
        }
        Ok(Claims {
            identity: wire.sub,
            grants: wire.video.map(Grants::from).unwrap_or_default(),
            expires: wire.exp,
            api_key: wire.iss,
            namespace: wire.ns.filter(|n| !n.is_empty()),
        })
    }

    /// Checks `bearer` (the raw token, from `Authorization: Bearer` or
    /// `?access_token=`) against what an entry point needs. Open mode
    /// allows everything and returns `Ok(None)`.
    pub fn authorize(
        &self,
        bearer: Option<&str>,
        need: Need<'_>,
    ) -> Result<Option<Claims>, AuthError> {
        if self.is_open() {
            return Ok(None);
        }
        let token = bearer.ok_or(AuthError::MissingToken)?;
        let claims = self.verify(token)?;
        check(&claims, need)?;
        Ok(Some(claims))
    }
}

/// Whether verified `claims` satisfy `need`.
fn check(claims: &Claims, need: Need<'_>) -> Result<(), AuthError> {
    let g = &claims.grants;
    let in_room = |room: &str| -> Result<(), AuthError> {
        if !g.room_join {
            return Err(AuthError::MissingGrant("roomJoin"));
        }
        // A join token must name its room: LiveKit never lets roomJoin
        // without a room mean "any room".
        if g.room.as_deref() != Some(room) {
            return Err(AuthError::WrongRoom);
        }
        if claims.identity.is_empty() {
            return Err(AuthError::Malformed("no identity (sub)"));
        }
        Ok(())
    };
    match need {
        Need::Join { room } => in_room(room),
        Need::Publish { room } => {
            in_room(room)?;
            if g.can_publish {
                Ok(())
            } else {
                Err(AuthError::MissingGrant("canPublish"))
            }
        }
        Need::Subscribe { room } => {
            in_room(room)?;
            if g.can_subscribe {
                Ok(())
            } else {
                Err(AuthError::MissingGrant("canSubscribe"))
            }
        }
        // A roomAdmin token without a room administers the whole node;
        // with a room, only that room.
        Need::Admin { room: Some(room) } => {
            if !g.room_admin {
                return Err(AuthError::MissingGrant("roomAdmin"));
            }
            match g.room.as_deref() {
                None => Ok(()),
                Some(r) if r == room => Ok(()),
                Some(_) => Err(AuthError::WrongRoom),
            }
        }
        Need::Admin { room: None } => {
            if g.room_list || (g.room_admin && g.room.is_none()) {
                Ok(())
            } else if g.room_admin {
                Err(AuthError::WrongRoom)
            } else {
                Err(AuthError::MissingGrant("roomAdmin"))
            }
        }
    }
}

/// The namespace a request runs in: the token's `ns` claim when it has one
/// (a URL naming another is refused), else the URL's (`?ns=`), else the
/// default namespace "".
pub fn resolve_namespace(url_ns: &str, claims: Option<&Claims>) -> Result<String, String> {
    match claims.and_then(|c| c.namespace.as_deref()) {
        Some(claimed) if url_ns.is_empty() || url_ns == claimed => Ok(claimed.to_string()),
        Some(claimed) => Err(format!("the access token is for namespace '{claimed}', not '{url_ns}'")),
        None => Ok(url_ns.to_string()),
    }
}

/// The token in an `Authorization` header value: `Bearer <token>`, scheme
/// case-insensitive. `None` for other schemes or an empty token.
pub fn bearer_from_header(value: &str) -> Option<&str> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests;
