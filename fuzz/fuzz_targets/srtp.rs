//! SRTP/SRTCP unprotect (RFC 3711, RFC 7714) for both profiles: forged and
//! mangled packets must fail cleanly, and anything we protect ourselves
//! must unprotect to the same bytes (so the fuzzer also reaches the paths
//! after authentication: replay windows, rollover, decryption).
#![no_main]

use dataplane::srtp::{split_keying_material, SrtpContext, SrtpProfile};
use libfuzzer_sys::fuzz_target;

fn contexts(profile: SrtpProfile) -> (SrtpContext, SrtpContext) {
    let material: Vec<u8> = (0..profile.keying_material_len()).map(|i| i as u8).collect();
    let (tx, _) = split_keying_material(profile, &material, true).expect("material of the right length");
    let (_, rx) = split_keying_material(profile, &material, false).expect("material of the right length");
    (SrtpContext::with_max_streams(&tx, 8).unwrap(), SrtpContext::with_max_streams(&rx, 8).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else { return };
    let profile = if mode & 1 == 0 { SrtpProfile::AeadAes128Gcm } else { SrtpProfile::Aes128CmHmacSha1_80 };
    let (mut tx, mut rx) = contexts(profile);
    let rtcp = mode & 2 != 0;
    // The input as a stream of packets, each preceded by one length byte.
    let mut input = rest;
    while let [len, tail @ ..] = input {
        let len = usize::from(*len).min(tail.len());
        let (pkt, next) = tail.split_at(len);
        input = next;
        let mut buf = pkt.to_vec();
        buf.resize(pkt.len() + 64, 0);
        if mode & 4 == 0 {
            // Hostile: unprotect what the fuzzer wrote. Nothing may panic,
            // and a failure leaves no new stream behind.
            let before = rx.stream_count();
            let r = if rtcp { rx.unprotect_rtcp(&mut buf, pkt.len()) } else { rx.unprotect_rtp(&mut buf, pkt.len()) };
            match r {
                Ok(n) => assert!(n < pkt.len()),
                Err(_) => assert_eq!(rx.stream_count(), before),
            }
        } else {
            // Ours: protect, then the peer must get the same plaintext back.
            let r = if rtcp { tx.protect_rtcp(&mut buf, pkt.len()) } else { tx.protect_rtp(&mut buf, pkt.len()) };
            let Ok(n) = r else { continue };
            let mut wire = buf[..n].to_vec();
            wire.resize(n + 64, 0);
            let back = if rtcp { rx.unprotect_rtcp(&mut wire, n) } else { rx.unprotect_rtp(&mut wire, n) };
            match back {
                Ok(m) => assert_eq!(&wire[..m], pkt, "round trip"),
                // A repeated sequence number is a replay to the receiver.
                Err(e) => assert!(!rtcp && e == dataplane::srtp::SrtpError::Replay, "{e}"),
            }
        }
    }
});
