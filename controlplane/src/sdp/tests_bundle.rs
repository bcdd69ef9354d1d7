//! RFC 8843 bundle-only sections (Firefox and GStreamer with max-bundle) and
//! the shape of really rejected sections.

use proptest::prelude::*;

use super::fixtures::{opus_track, vp8_track, CHROME_WHEP, CHROME_WHIP, FIREFOX_WHIP};
use super::*;

fn local() -> LocalIce {
    LocalIce {
        ufrag: "sfudUfrag".into(),
        pwd: "sfudPasswordThatIsLongEnough".into(),
        fingerprint_sha256: vec!["AB"; 32].join(":"),
        udp_candidates: vec!["203.0.113.7:7882".parse().unwrap()],
        tcp_candidates: vec![],
    }
}

fn parse(s: &str) -> SessionDescription {
    SessionDescription::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

/// What a max-bundle offerer does to section `i`: port 0 plus a=bundle-only.
fn bundle_only(offer: &SessionDescription, sections: &[usize]) -> SessionDescription {
    let mut o = offer.clone();
    for &i in sections {
        let m = &mut o.media[i];
        m.port = 0;
        m.attributes.insert(0, Attribute::flag("bundle-only"));
    }
    o
}

/// Every answered section, accepted or not, carries the transport strict
/// parsers look for (GStreamer: "No fingerprint lines in sdp for media N").
fn assert_every_section_has_transport(answer: &SessionDescription) {
    for (i, m) in answer.media.iter().enumerate() {
        assert!(m.fingerprint(answer).is_some(), "section {i} has no fingerprint");
        assert_eq!(m.setup(answer), Some("passive"), "section {i}");
        assert_eq!(m.ice_ufrag(answer), Some("sfudUfrag"), "section {i}");
        assert!(!m.has_attribute("bundle-only"), "answers never say bundle-only");
    }
}

#[test]
fn firefox_max_bundle_publish_keeps_video() {
    let offer = bundle_only(&parse(FIREFOX_WHIP), &[1, 2]);
    assert!(offer.media[1].is_bundle_only(&offer));
    assert!(!offer.media[1].is_disabled(&offer));
    let a = answer_publish(&offer, &local()).unwrap();
    assert_eq!(a.media.len(), 2);
    assert_eq!(a.media[1].mid, "1");
    assert_eq!(a.media[1].codec.name, "VP8");
    let answer = parse(&a.sdp);
    assert_eq!(answer.bundle_groups(), vec![vec!["0", "1"]]);
    assert_eq!(answer.media[1].port, 7882);
    // The data channel is still not taken by WHIP, and is rejected well-formed.
    assert!(answer.media[2].is_rejected());
    assert_every_section_has_transport(&answer);
}

#[test]
fn max_bundle_play_gets_both_tracks() {
    let offer = bundle_only(&parse(CHROME_WHEP), &[1]);
    let a = answer_subscribe(&offer, &local(), &[opus_track(), vp8_track(&[])]).unwrap();
    assert_eq!(a.media.len(), 2);
    assert_eq!(a.media[1].kind, MediaKind::Video);
    let answer = parse(&a.sdp);
    assert_eq!(answer.media[1].port, 7882);
    assert_every_section_has_transport(&answer);
}

#[test]
fn bundle_only_outside_any_group_is_disabled() {
    let mut offer = bundle_only(&parse(CHROME_WHIP), &[1]);
    offer.attributes.retain(|a| a.key != "group");
    offer
        .attributes
        .push(Attribute::with_value("group", "BUNDLE 0"));
    assert!(offer.media[1].is_disabled(&offer));
    let a = answer_publish(&offer, &local()).unwrap();
    assert_eq!(a.media.len(), 1);
    let answer = parse(&a.sdp);
    assert!(answer.media[1].is_rejected());
    assert_eq!(answer.media[1].mid(), Some("1"));
    assert_every_section_has_transport(&answer);
}

#[test]
fn plain_port_zero_is_still_rejected_with_reason() {
    let mut offer = parse(CHROME_WHIP);
    offer.media[0].port = 0;
    offer.media[1].port = 0;
    let err = answer_publish(&offer, &local()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("port 0"), "{msg}");
    assert!(msg.contains("m-line #1"), "{msg}");
}

#[test]
fn opus_without_channels_is_explained() {
    let sdp = CHROME_WHIP.replace("opus/48000/2", "opus/48000");
    let offer = parse(&sdp);
    let mut video_off = offer.clone();
    video_off.media[1].port = 0;
    let err = answer_publish(&video_off, &local()).unwrap_err().to_string();
    assert!(err.contains("opus/48000/2") && err.contains("opus/48000"), "{err}");
}

proptest! {
    /// Making any sections after the first bundle-only changes nothing about
    /// which sections are accepted or what they negotiate, except the ports
    /// of the offer itself.
    #[test]
    fn bundle_only_is_equivalent_to_bundled(mask in 0u8..8) {
        for base in [FIREFOX_WHIP, CHROME_WHIP] {
            let offer = parse(base);
            let chosen: Vec<usize> = (1..offer.media.len()).filter(|i| mask & (1 << i) != 0).collect();
            let bo = bundle_only(&offer, &chosen);
            let plain = answer_publish(&offer, &local()).unwrap();
            let got = answer_publish(&bo, &local()).unwrap();
            prop_assert_eq!(&plain.media, &got.media);
            prop_assert_eq!(&plain.remote, &got.remote);
            prop_assert_eq!(&plain.sdp, &got.sdp);
            assert_every_section_has_transport(&parse(&got.sdp));
        }
        let offer = parse(CHROME_WHEP);
        let chosen: Vec<usize> = (1..offer.media.len()).filter(|i| mask & (1 << i) != 0).collect();
        let tracks = [opus_track(), vp8_track(&[])];
        let plain = answer_subscribe(&offer, &local(), &tracks).unwrap();
        let got = answer_subscribe(&bundle_only(&offer, &chosen), &local(), &tracks).unwrap();
        prop_assert_eq!(plain.sdp, got.sdp);
    }

    /// Whatever subset of sections is disabled, every answer section carries
    /// the transport attributes.
    #[test]
    fn rejected_sections_are_well_formed(disable in 0u8..4) {
        let mut offer = parse(FIREFOX_WHIP);
        for i in 0..2 {
            if disable & (1 << i) != 0 {
                offer.media[i].port = 0;
            }
        }
        if let Ok(a) = answer_publish(&offer, &local()) {
            assert_every_section_has_transport(&parse(&a.sdp));
        }
    }
}
