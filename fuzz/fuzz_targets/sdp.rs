//! SDP offers (RFC 8866) through everything sfud does with them: parse,
//! write back and parse again to the same model, answer as a publisher
//! (WHIP, rooms) and as a viewer (WHEP), and parse our own answers.
#![no_main]

use controlplane::sdp::{answer_publish, answer_subscribe, LocalIce, OfferedTrack, SessionDescription};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(offer) = SessionDescription::parse(text) else { return };
    let written = offer.to_sdp();
    let again = SessionDescription::parse(&written).expect("what we write parses");
    assert_eq!(again, offer, "write/parse round trip");

    let local = LocalIce {
        ufrag: "fuzzufrag".into(),
        pwd: "fuzzpasswordfuzzpassword".into(),
        fingerprint_sha256: ["AB"; 32].join(":"),
        udp_candidates: vec!["192.0.2.1:7882".parse().unwrap()],
        tcp_candidates: vec!["192.0.2.1:7882".parse().unwrap()],
    };
    if let Ok(answer) = answer_publish(&offer, &local) {
        SessionDescription::parse(&answer.sdp).expect("our publish answer parses");
        let tracks: Vec<OfferedTrack> = answer
            .media
            .iter()
            .enumerate()
            .map(|(i, m)| OfferedTrack {
                kind: m.kind,
                codec: m.codec.clone(),
                ssrc: 1000 + i as u32,
                rtx_ssrc: Some(2000 + i as u32),
                red: false,
                cname: "fuzz".into(),
                stream_id: "stream".into(),
                track_id: format!("track{i}"),
            })
            .collect();
        if let Ok(sub) = answer_subscribe(&offer, &local, &tracks) {
            SessionDescription::parse(&sub.sdp).expect("our subscribe answer parses");
        }
    }
});
