//! RFC 5769 test vectors, decoded and re-encoded byte for byte.

use super::*;
use std::net::SocketAddr;

const PWD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";
const TID: [u8; 12] = [0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae];

fn v(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

fn req_2_1() -> Vec<u8> {
    v("00010058 2112a442 b7e7a701 bc34d686 fa87dfae
       80220010 5354554e 20746573 7420636c 69656e74
       00240004 6e0001ff
       80290008 932ff9b1 51263b36
       00060009 6576746a 3a683676 59202020
       00080014 9aeaa70c bfd8cb56 781ef2b5 b2d3f249 c1b571a2
       80280004 e57a3bcf")
}

fn resp_2_2() -> Vec<u8> {
    v("0101003c 2112a442 b7e7a701 bc34d686 fa87dfae
       8022000b 74657374 20766563 746f7220
       00200008 0001a147 e112a643
       00080014 2b91f599 fd9e90c3 8c7489f9 2af9ba53 f06be7d7
       80280004 c07d4c96")
}

fn resp_2_3() -> Vec<u8> {
    v("01010048 2112a442 b7e7a701 bc34d686 fa87dfae
       8022000b 74657374 20766563 746f7220
       00200014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9
       00080014 a382954e 4be67bf1 1784c97c 8292c275 bfe3ed41
       80280004 c8fb0b4c")
}

fn req_2_4() -> Vec<u8> {
    v("00010060 2112a442 78ad3433 c6ad72c0 29da412e
       00060012 e3839ee3 8388e383 aae38383 e382afe3 82b90000
       0015001c 662f2f34 39396b39 35346436 4f4c3334 6f4c3946 53547679 36347341
       0014000b 6578616d 706c652e 6f726700
       00080014 f6702465 6dd64a3e 02b8e071 2e85c9a2 8ca89666")
}

/// MD5("<username>:example.org:TheMatrIX"), username and password already
/// SASLprep'd; checked against an MD5 implementation in the scratch crate.
const LONG_TERM_KEY: &str = "e8ca7ad59d5eb0518e312911d2dab2a9";

#[test]
fn sample_request() {
    let raw = req_2_1();
    assert!(is_stun(&raw));
    let m = Message::parse(&raw).unwrap();
    assert_eq!(m.class(), Class::Request);
    assert_eq!(m.method(), method::BINDING);
    assert_eq!(m.transaction_id(), &TID);
    assert_eq!(m.software(), Some(&b"STUN test client"[..]));
    assert_eq!(m.priority(), Some(0x6e0001ff));
    assert_eq!(m.ice_controlled(), Some(0x932ff9b151263b36));
    assert_eq!(m.username(), Some(&b"evtj:h6vY"[..]));
    assert_eq!(local_ufrag(&raw), Some(&b"evtj"[..]));
    m.check_integrity(PWD).unwrap();
    m.check_integrity_keyed(&IntegrityKey::new(PWD)).unwrap();
    m.check_fingerprint().unwrap();

    let mut out = [0u8; 256];
    let mut w = MessageWriter::new(&mut out, Class::Request, method::BINDING, &TID).unwrap();
    w.set_padding(b' ');
    w.add_attr(attr::SOFTWARE, m.software().unwrap()).unwrap();
    w.add_u32(attr::PRIORITY, 0x6e0001ff).unwrap();
    w.add_u64(attr::ICE_CONTROLLED, 0x932ff9b151263b36).unwrap();
    w.add_attr(attr::USERNAME, b"evtj:h6vY").unwrap();
    w.add_message_integrity(PWD).unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    assert_eq!(hex::encode(&out[..n]), hex::encode(&raw));
}

fn check_response(raw: &[u8], mapped: SocketAddr) {
    assert!(is_stun(raw));
    let m = Message::parse(raw).unwrap();
    assert_eq!(m.class(), Class::Success);
    assert_eq!(m.method(), method::BINDING);
    assert_eq!(m.software(), Some(&b"test vector"[..]));
    assert_eq!(m.xor_mapped_address(), Some(mapped));
    m.check_integrity(PWD).unwrap();
    m.check_fingerprint().unwrap();
    assert_eq!(local_ufrag(raw), None);

    let mut out = [0u8; 256];
    let mut w = MessageWriter::new(&mut out, Class::Success, method::BINDING, &TID).unwrap();
    w.set_padding(b' ');
    w.add_attr(attr::SOFTWARE, b"test vector").unwrap();
    w.add_xor_address(attr::XOR_MAPPED_ADDRESS, mapped).unwrap();
    w.add_message_integrity_keyed(&IntegrityKey::new(PWD)).unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    assert_eq!(hex::encode(&out[..n]), hex::encode(raw));
}

#[test]
fn sample_ipv4_response() {
    check_response(&resp_2_2(), "192.0.2.1:32853".parse().unwrap());
}

#[test]
fn sample_ipv6_response() {
    check_response(
        &resp_2_3(),
        "[2001:db8:1234:5678:11:2233:4455:6677]:32853".parse().unwrap(),
    );
}

#[test]
fn sample_long_term_request() {
    let raw = req_2_4();
    let key = hex::decode(LONG_TERM_KEY).unwrap();
    let user = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
    let m = Message::parse(&raw).unwrap();
    assert_eq!(m.transaction_id(), &[0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e]);
    assert_eq!(m.username(), Some(user.as_bytes()));
    assert_eq!(m.nonce(), Some(&b"f//499k954d6OL34oL9FSTvy64sA"[..]));
    assert_eq!(m.realm(), Some(&b"example.org"[..]));
    m.check_integrity(&key).unwrap();
    assert_eq!(m.check_fingerprint(), Err(StunError::MissingFingerprint));
    assert!(!m.has_fingerprint());

    let mut out = [0u8; 256];
    let mut w = MessageWriter::new(&mut out, Class::Request, method::BINDING, m.transaction_id()).unwrap();
    w.add_attr(attr::USERNAME, user.as_bytes()).unwrap();
    w.add_attr(attr::NONCE, m.nonce().unwrap()).unwrap();
    w.add_attr(attr::REALM, b"example.org").unwrap();
    w.add_message_integrity(&key).unwrap();
    let n = w.finish();
    assert_eq!(hex::encode(&out[..n]), hex::encode(&raw));
}

#[test]
fn any_flipped_bit_breaks_integrity_or_fingerprint() {
    let raw = req_2_1();
    let mi_end = raw.len() - 8;
    for i in 0..raw.len() {
        for bit in 0..8 {
            let mut b = raw.clone();
            b[i] ^= 1 << bit;
            let Ok(m) = Message::parse(&b) else { continue };
            if i < mi_end {
                // Padding bytes are covered by the HMAC too.
                assert!(m.check_integrity(PWD).is_err() || m.check_fingerprint().is_err(), "byte {i} bit {bit}");
            }
            assert!(m.check_fingerprint().is_err(), "byte {i} bit {bit}");
        }
    }
}
