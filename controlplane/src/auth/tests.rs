use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use sha2::Sha256;

const KEY: &str = "APIdevkey";
const SECRET: &str = "0123456789abcdef0123456789abcdef-secret";

fn auth() -> Authenticator {
    let mut keys = BTreeMap::new();
    keys.insert(KEY.to_string(), SECRET.to_string());
    keys.insert(
        "APIother".to_string(),
        "another-secret-another-secret-xx".to_string(),
    );
    Authenticator::new(&AuthConfig { keys })
}

fn grants(room: &str) -> Grants {
    Grants {
        room: Some(room.to_string()),
        room_join: true,
        can_publish: true,
        can_subscribe: true,
        ..Grants::default()
    }
}

fn token(a: &Authenticator, g: Grants) -> String {
    a.create_token(Some(KEY), "alice", g, Duration::from_secs(600))
        .unwrap()
}

/// Signs an arbitrary payload by hand, independent of `jwt::sign`.
fn hand_signed(payload: &str, secret: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[test]
fn round_trip() {
    let a = auth();
    let t = token(&a, grants("r1"));
    let c = a.verify(&t).unwrap();
    assert_eq!(c.identity, "alice");
    assert_eq!(c.api_key, KEY);
    assert_eq!(c.grants, grants("r1"));
    assert!(c.expires > now_secs());
    let c2 = a
        .authorize(Some(&t), Need::Publish { room: "r1" })
        .unwrap()
        .unwrap();
    assert_eq!(c2, c);
    a.authorize(Some(&t), Need::Subscribe { room: "r1" })
        .unwrap();
    a.authorize(Some(&t), Need::Join { room: "r1" }).unwrap();
}

#[test]
fn default_key_is_first_configured() {
    let a = auth();
    let t = a
        .create_token(None, "bob", grants("r"), Duration::from_secs(60))
        .unwrap();
    // BTreeMap order: "APIdevkey" < "APIother".
    assert_eq!(a.verify(&t).unwrap().api_key, KEY);
    assert_eq!(
        a.create_token(Some("nope"), "bob", grants("r"), Duration::from_secs(60)),
        Err(AuthError::NoSuchKey("nope".into()))
    );
    let open = Authenticator::new(&AuthConfig::default());
    assert_eq!(
        open.create_token(None, "bob", grants("r"), Duration::from_secs(60)),
        Err(AuthError::NoKeys)
    );
}

#[test]
fn wrong_secret_is_bad_signature() {
    let a = auth();
    let mut keys = BTreeMap::new();
    keys.insert(
        KEY.to_string(),
        "a-different-secret-of-enough-length!".to_string(),
    );
    let other = Authenticator::new(&AuthConfig { keys });
    let t = token(&other, grants("r1"));
    let e = a.verify(&t).unwrap_err();
    assert_eq!(e, AuthError::BadSignature);
    assert_eq!(e.http_status(), 401);
}

#[test]
fn unknown_key() {
    let a = auth();
    let mut keys = BTreeMap::new();
    keys.insert("APIstranger".to_string(), SECRET.to_string());
    let t = Authenticator::new(&AuthConfig { keys })
        .create_token(None, "a", grants("r1"), Duration::from_secs(60))
        .unwrap();
    assert_eq!(a.verify(&t), Err(AuthError::UnknownKey));
    assert_eq!(AuthError::UnknownKey.http_status(), 401);
}

#[test]
fn expired_and_not_yet_valid() {
    let a = auth();
    let now = now_secs();
    let expired = hand_signed(
        &format!(
            r#"{{"iss":"{KEY}","sub":"alice","exp":{},"video":{{"room":"r","roomJoin":true}}}}"#,
            now - 3600
        ),
        SECRET,
    );
    let e = a.verify(&expired).unwrap_err();
    assert_eq!(e, AuthError::Expired);
    assert_eq!(e.http_status(), 401);
    // Within the leeway it still passes.
    let just = hand_signed(
        &format!(
            r#"{{"iss":"{KEY}","sub":"alice","exp":{}}}"#,
            now - LEEWAY_SECS / 2
        ),
        SECRET,
    );
    a.verify(&just).unwrap();
    let early = hand_signed(
        &format!(
            r#"{{"iss":"{KEY}","sub":"alice","exp":{},"nbf":{}}}"#,
            now + 7200,
            now + 3600
        ),
        SECRET,
    );
    assert_eq!(a.verify(&early), Err(AuthError::NotYetValid));
    // verify_at lets the boundary be exact.
    let t = token(&a, grants("r"));
    let exp = a.verify(&t).unwrap().expires;
    assert!(a.verify_at(&t, exp + LEEWAY_SECS).is_ok());
    assert_eq!(
        a.verify_at(&t, exp + LEEWAY_SECS + 1),
        Err(AuthError::Expired)
    );
}

#[test]
fn wrong_room_is_403() {
    let a = auth();
    let t = token(&a, grants("r1"));
    for need in [
        Need::Publish { room: "r2" },
        Need::Subscribe { room: "r2" },
        Need::Join { room: "r2" },
    ] {
        let e = a.authorize(Some(&t), need).unwrap_err();
        assert_eq!(e, AuthError::WrongRoom, "{need:?}");
        assert_eq!(e.http_status(), 403);
    }
    // A join token without a room is not "any room".
    let mut g = grants("x");
    g.room = None;
    let t = token(&a, g);
    assert_eq!(
        a.authorize(Some(&t), Need::Join { room: "r1" }),
        Err(AuthError::WrongRoom)
    );
}

#[test]
fn missing_grant_is_403() {
    let a = auth();
    let sub_only = Grants {
        can_publish: false,
        ..grants("r1")
    };
    let t = token(&a, sub_only);
    let e = a
        .authorize(Some(&t), Need::Publish { room: "r1" })
        .unwrap_err();
    assert_eq!(e, AuthError::MissingGrant("canPublish"));
    assert_eq!(e.http_status(), 403);
    a.authorize(Some(&t), Need::Subscribe { room: "r1" })
        .unwrap();

    let pub_only = Grants {
        can_subscribe: false,
        ..grants("r1")
    };
    let t = token(&a, pub_only);
    assert_eq!(
        a.authorize(Some(&t), Need::Subscribe { room: "r1" }),
        Err(AuthError::MissingGrant("canSubscribe"))
    );

    let no_join = Grants {
        room_join: false,
        ..grants("r1")
    };
    let t = token(&a, no_join);
    assert_eq!(
        a.authorize(Some(&t), Need::Join { room: "r1" }),
        Err(AuthError::MissingGrant("roomJoin"))
    );
    // A participant token is not an admin token.
    let t = token(&a, grants("r1"));
    let e = a
        .authorize(Some(&t), Need::Admin { room: Some("r1") })
        .unwrap_err();
    assert_eq!(e, AuthError::MissingGrant("roomAdmin"));
    assert_eq!(e.http_status(), 403);
}

#[test]
fn admin_scopes() {
    let a = auth();
    let node_admin = token(
        &a,
        Grants {
            room_admin: true,
            ..Grants::default()
        },
    );
    a.authorize(Some(&node_admin), Need::Admin { room: None })
        .unwrap();
    a.authorize(Some(&node_admin), Need::Admin { room: Some("any") })
        .unwrap();

    let room_admin = token(
        &a,
        Grants {
            room: Some("r1".into()),
            room_admin: true,
            ..Grants::default()
        },
    );
    a.authorize(Some(&room_admin), Need::Admin { room: Some("r1") })
        .unwrap();
    assert_eq!(
        a.authorize(Some(&room_admin), Need::Admin { room: Some("r2") }),
        Err(AuthError::WrongRoom)
    );
    assert_eq!(
        a.authorize(Some(&room_admin), Need::Admin { room: None }),
        Err(AuthError::WrongRoom)
    );

    let lister = token(
        &a,
        Grants {
            room_list: true,
            ..Grants::default()
        },
    );
    a.authorize(Some(&lister), Need::Admin { room: None })
        .unwrap();
    assert_eq!(
        a.authorize(Some(&lister), Need::Admin { room: Some("r1") }),
        Err(AuthError::MissingGrant("roomAdmin"))
    );
}

#[test]
fn missing_token_is_401_and_open_mode_allows() {
    let a = auth();
    let e = a.authorize(None, Need::Publish { room: "r" }).unwrap_err();
    assert_eq!(e, AuthError::MissingToken);
    assert_eq!(e.http_status(), 401);
    assert_eq!(
        a.authorize(Some("  "), Need::Join { room: "r" }),
        Err(AuthError::MissingToken)
    );

    let open = Authenticator::new(&AuthConfig::default());
    assert!(open.is_open());
    assert_eq!(open.authorize(None, Need::Admin { room: None }), Ok(None));
    assert_eq!(
        open.authorize(Some("garbage"), Need::Publish { room: "r" }),
        Ok(None)
    );
}

#[test]
fn malformed_tokens_are_401() {
    let a = auth();
    let cases = [
        "abc".to_string(),
        "a.b".to_string(),
        "a.b.c.d".to_string(),
        "....".to_string(),
        // alg none with a valid-looking payload.
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":"{KEY}","exp":99999999999}}"#))
        ),
        // exp as a string: must not slip past the expiry check.
        hand_signed(
            &format!(r#"{{"iss":"{KEY}","sub":"a","exp":"99999999999"}}"#),
            SECRET,
        ),
        // nbf as a string (GHSA-h395-gr6q-cpjc shape).
        hand_signed(
            &format!(r#"{{"iss":"{KEY}","sub":"a","exp":99999999999,"nbf":"99999999999"}}"#),
            SECRET,
        ),
        // no exp at all.
        hand_signed(&format!(r#"{{"iss":"{KEY}","sub":"a"}}"#), SECRET),
        "x".repeat(jwt::MAX_TOKEN_LEN + 1),
    ];
    for t in &cases {
        let e = a.verify(t).unwrap_err();
        assert!(matches!(e, AuthError::Malformed(_)), "{t:.60}: {e:?}");
        assert_eq!(e.http_status(), 401);
    }
}

#[test]
fn livekit_format_token_verifies() {
    // The claim layout LiveKit's server SDKs emit (AccessToken.toJwt):
    // extra claims (name, metadata, jti) and extra grants (canPublishData)
    // are present and must be ignored.
    let a = auth();
    let now = now_secs();
    let payload = format!(
        r#"{{"exp":{},"iss":"{KEY}","nbf":{},"sub":"alice","name":"Alice","metadata":"","jti":"alice","video":{{"room":"my-room","roomJoin":true,"canPublish":true,"canSubscribe":true,"canPublishData":true}}}}"#,
        now + 600,
        now
    );
    let t = hand_signed(&payload, SECRET);
    let c = a
        .authorize(Some(&t), Need::Publish { room: "my-room" })
        .unwrap()
        .unwrap();
    assert_eq!(c.identity, "alice");
    assert_eq!(c.grants.room.as_deref(), Some("my-room"));

    // LiveKit treats an absent canPublish/canSubscribe as allowed.
    let payload = format!(
        r#"{{"exp":{},"iss":"{KEY}","sub":"bob","video":{{"room":"my-room","roomJoin":true}}}}"#,
        now + 600
    );
    let t = hand_signed(&payload, SECRET);
    a.authorize(Some(&t), Need::Publish { room: "my-room" })
        .unwrap();
    a.authorize(Some(&t), Need::Subscribe { room: "my-room" })
        .unwrap();

    // And an explicit false is honoured.
    let payload = format!(
        r#"{{"exp":{},"iss":"{KEY}","sub":"carol","video":{{"room":"my-room","roomJoin":true,"canPublish":false}}}}"#,
        now + 600
    );
    let t = hand_signed(&payload, SECRET);
    assert_eq!(
        a.authorize(Some(&t), Need::Publish { room: "my-room" }),
        Err(AuthError::MissingGrant("canPublish"))
    );
}

#[test]
fn minted_token_has_livekit_claim_names() {
    let a = auth();
    let t = token(&a, grants("r1"));
    let payload = t.split('.').nth(1).unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(v["iss"], KEY);
    assert_eq!(v["sub"], "alice");
    assert!(v["exp"].is_u64() && v["nbf"].is_u64());
    assert_eq!(v["video"]["room"], "r1");
    assert_eq!(v["video"]["roomJoin"], true);
    assert_eq!(v["video"]["canPublish"], true);
    assert_eq!(v["video"]["canSubscribe"], true);
    assert!(v["video"].get("roomAdmin").is_none());
}

#[test]
fn bearer_header_parsing() {
    assert_eq!(
        bearer_from_header("Bearer abc.def.ghi"),
        Some("abc.def.ghi")
    );
    assert_eq!(bearer_from_header("bearer   tok  "), Some("tok"));
    assert_eq!(bearer_from_header("BEARER tok"), Some("tok"));
    assert_eq!(bearer_from_header("Bearer "), None);
    assert_eq!(bearer_from_header("Bearer"), None);
    assert_eq!(bearer_from_header("Basic dXNlcjpwYXNz"), None);
    assert_eq!(bearer_from_header(""), None);
}

#[test]
fn debug_hides_secrets() {
    let s = format!("{:?}", auth());
    assert!(s.contains(KEY));
    assert!(!s.contains(SECRET));
}

proptest! {
    #[test]
    fn random_tokens_never_panic(s in ".{0,400}") {
        let a = auth();
        let r = a.authorize(Some(&s), Need::Publish { room: "r" });
        prop_assert!(r.is_err());
        let _ = bearer_from_header(&s);
    }

    #[test]
    fn corrupted_valid_tokens_are_rejected(pos in 0usize..400, byte in any::<u8>()) {
        let a = auth();
        let t = token(&a, grants("r"));
        let mut b = t.clone().into_bytes();
        let i = pos % b.len();
        prop_assume!(b[i] != byte);
        b[i] = byte;
        if let Ok(s) = String::from_utf8(b) {
            // Base64 tail bits can make two encodings decode alike; what
            // must never happen is a panic or a changed claim set.
            match a.verify(&s) {
                Ok(c) => prop_assert_eq!(c, a.verify(&t).unwrap()),
                Err(e) => prop_assert!(e.http_status() == 401),
            }
        }
    }
}

#[test]
fn the_ns_claim_confines_a_token_to_its_namespace() {
    let auth = auth();
    let wire = serde_json::json!({ "iss": KEY, "sub": "alice", "exp": u64::MAX / 2, "ns": "acme",
        "video": { "room": "r", "roomJoin": true } });
    let token = jwt::sign(&wire, SECRET.as_bytes()).unwrap();
    let claims = auth.authorize(Some(&token), Need::Join { room: "r" }).unwrap().unwrap();
    assert_eq!(claims.namespace.as_deref(), Some("acme"));
    assert_eq!(resolve_namespace("", Some(&claims)).unwrap(), "acme");
    assert_eq!(resolve_namespace("acme", Some(&claims)).unwrap(), "acme");
    assert!(resolve_namespace("globex", Some(&claims)).unwrap_err().contains("'acme'"));
    assert_eq!(resolve_namespace("globex", None).unwrap(), "globex");
}

#[test]
fn minted_tokens_carry_the_namespace() {
    let a = auth();
    let t = a.create_token_in(Some(KEY), "alice", grants("r"), Duration::from_secs(60), Some("acme")).unwrap();
    assert_eq!(a.verify(&t).unwrap().namespace.as_deref(), Some("acme"));
    let t = a.create_token(Some(KEY), "alice", grants("r"), Duration::from_secs(60)).unwrap();
    assert_eq!(a.verify(&t).unwrap().namespace, None);
}
