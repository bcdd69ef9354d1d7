//! STUN (RFC 8489) messages as the shard and the TURN server read them:
//! parse, walk every attribute, run every accessor and both integrity checks.
#![no_main]

use dataplane::stun::{self, IntegrityKey, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = stun::is_stun(data);
    let _ = stun::local_ufrag(data);
    let Ok(msg) = Message::parse(data) else { return };
    let _ = (msg.class(), msg.method(), msg.transaction_id(), msg.raw().len());
    for (typ, value) in msg.attrs() {
        let _ = msg.attr(typ);
        let _ = msg.xor_address(typ);
        let _ = (msg.u32_attr(typ), msg.u64_attr(typ), value.len());
    }
    let _ = (msg.username(), msg.realm(), msg.nonce(), msg.software());
    let _ = (msg.xor_mapped_address(), msg.error_code(), msg.priority());
    let _ = (msg.use_candidate(), msg.ice_controlling(), msg.ice_controlled(), msg.lifetime());
    let _ = (msg.has_integrity(), msg.has_fingerprint());
    let _ = msg.check_integrity(b"password-of-some-session");
    let _ = msg.check_integrity_keyed(&IntegrityKey::new(b"another-key"));
    let _ = msg.check_fingerprint();
});
