//! Malformed input must give `Err`/`None`, never a panic.

use super::*;
use proptest::prelude::*;
use std::net::SocketAddr;

/// Every accessor, so that any panic path in them is exercised.
fn poke(buf: &[u8]) {
    let _ = is_stun(buf);
    let _ = local_ufrag(buf);
    if let Ok(m) = Message::parse(buf) {
        let _ = (m.class(), m.method(), m.transaction_id(), m.raw());
        for (t, val) in m.attrs() {
            assert!(val.len() <= buf.len());
            let _ = m.attr(t);
            let _ = m.xor_address(t);
        }
        let _ = (m.username(), m.realm(), m.nonce(), m.software());
        let _ = (m.xor_mapped_address(), m.error_code(), m.priority(), m.use_candidate());
        let _ = (m.ice_controlling(), m.ice_controlled(), m.lifetime());
        let _ = (m.has_integrity(), m.has_fingerprint());
        let _ = m.check_integrity(b"pwd");
        let _ = m.check_fingerprint();
    }
}

fn valid_message(attrs: &[(u16, Vec<u8>)], mi: bool, fp: bool) -> Vec<u8> {
    let mut out = vec![0u8; 2048];
    let mut w = MessageWriter::new(&mut out, Class::Request, method::BINDING, &[9; 12]).unwrap();
    for (t, v) in attrs {
        w.add_attr(*t, v).unwrap();
    }
    w.add_xor_address(attr::XOR_MAPPED_ADDRESS, SocketAddr::from(([10, 0, 0, 1], 5000))).unwrap();
    if mi {
        w.add_message_integrity(b"pwd").unwrap();
    }
    if fp {
        w.add_fingerprint().unwrap();
    }
    let n = w.finish();
    out.truncate(n);
    out
}

fn attr_strategy() -> impl Strategy<Value = (u16, Vec<u8>)> {
    (
        prop_oneof![
            Just(attr::USERNAME),
            Just(attr::ERROR_CODE),
            Just(attr::PRIORITY),
            Just(attr::XOR_PEER_ADDRESS),
            Just(attr::ICE_CONTROLLING),
            any::<u16>()
        ],
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        // These would change what the roundtrip test expects.
        .prop_filter("reserved for the test", |(t, _)| {
            ![attr::MESSAGE_INTEGRITY, attr::FINGERPRINT, attr::XOR_MAPPED_ADDRESS].contains(t)
        })
}

proptest! {
    #[test]
    fn random_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..200)) {
        poke(&buf);
    }

    #[test]
    fn random_body_with_valid_header_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..50),
        typ in 0u16..0x4000,
    ) {
        // Pad to a multiple of 4 so the header check passes and the TLV walk
        // gets exercised.
        let mut body = body;
        body.resize((body.len() + 3) & !3, 0);
        let mut buf = Vec::new();
        buf.extend_from_slice(&typ.to_be_bytes());
        buf.extend_from_slice(&(body.len() as u16).to_be_bytes());
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&[1; 12]);
        buf.extend_from_slice(&body);
        poke(&buf);
    }

    #[test]
    fn valid_messages_roundtrip(attrs in proptest::collection::vec(attr_strategy(), 0..6), mi: bool, fp: bool) {
        let buf = valid_message(&attrs, mi, fp);
        let m = Message::parse(&buf).unwrap();
        prop_assert_eq!(m.has_integrity(), mi);
        prop_assert_eq!(m.has_fingerprint(), fp);
        if mi { prop_assert!(m.check_integrity(b"pwd").is_ok()); }
        if fp { prop_assert!(m.check_fingerprint().is_ok()); }
        prop_assert_eq!(m.xor_mapped_address(), Some(SocketAddr::from(([10, 0, 0, 1], 5000))));
        poke(&buf);
    }

    #[test]
    fn mutated_messages_never_panic(
        attrs in proptest::collection::vec(attr_strategy(), 0..6),
        mi: bool,
        fp: bool,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate: bool,
    ) {
        let mut buf = valid_message(&attrs, mi, fp);
        for (i, x) in flips {
            let i = i.index(buf.len());
            buf[i] ^= x;
        }
        if truncate {
            buf.truncate(cut.index(buf.len() + 1));
        }
        poke(&buf);
    }

    #[test]
    fn truncation_is_rejected(attrs in proptest::collection::vec(attr_strategy(), 0..6), cut in any::<prop::sample::Index>()) {
        let buf = valid_message(&attrs, true, true);
        let n = cut.index(buf.len());
        prop_assert!(Message::parse(&buf[..n]).is_err());
        prop_assert!(!is_stun(&buf[..n]));
    }
}
