//! Property tests: hostile input never panics, and valid models round-trip.

use proptest::prelude::*;

use super::fixtures::{
    CHROME_WHEP, CHROME_WHIP, CHROMIUM_WHEP_FULL, DATACHANNEL_ONLY, FIREFOX_WHIP,
};
use super::*;

fn local() -> LocalIce {
    LocalIce {
        ufrag: "abcd".into(),
        pwd: "0123456789abcdefghijkl".into(),
        fingerprint_sha256: vec!["AB"; 32].join(":"),
        udp_candidates: vec!["192.0.2.1:7882".parse().unwrap()],
        tcp_candidates: vec![],
    }
}

fn tracks() -> Vec<OfferedTrack> {
    let codec = |pt, name: &str, clock_rate, channels, fmtp: Option<&str>| Codec {
        pt,
        name: name.into(),
        clock_rate,
        channels,
        fmtp: fmtp.map(Into::into),
        rtcp_fb: vec![],
    };
    let track = |kind, codec, ssrc| OfferedTrack {
        kind,
        codec,
        ssrc,
        rtx_ssrc: (kind == MediaKind::Video).then_some(ssrc + 100),
        red: false,
        cname: "c".into(),
        stream_id: "s".into(),
        track_id: format!("t{ssrc}"),
    };
    vec![
        track(MediaKind::Audio, codec(111, "opus", 48000, 2, None), 1),
        track(MediaKind::Video, codec(96, "VP8", 90000, 1, None), 2),
        track(
            MediaKind::Video,
            codec(
                102,
                "H264",
                90000,
                1,
                Some("packetization-mode=1;profile-level-id=42e01f"),
            ),
            3,
        ),
    ]
}

/// Runs everything on the input; any outcome but a panic is fine, and every
/// answer produced must itself parse and round-trip.
fn exercise(s: &str) {
    let Ok(offer) = SessionDescription::parse(s) else {
        return;
    };
    assert_eq!(
        SessionDescription::parse(&offer.to_sdp()).as_ref(),
        Ok(&offer)
    );
    for m in &offer.media {
        let _ = (
            m.mid(),
            m.direction(&offer),
            m.ice_ufrag(&offer),
            m.fingerprint(&offer),
            m.setup(&offer),
        );
        let _ = (
            m.rtpmaps(),
            m.fmtp(96),
            m.rtcp_fbs(96),
            m.extmaps(&offer),
            m.extmap_entries(&offer),
            m.ssrcs(),
            m.ssrc_groups(),
            m.msid(),
        );
    }
    if let Ok(a) = answer_publish(&offer, &local()) {
        let answer = SessionDescription::parse(&a.sdp).expect("publish answer parses");
        assert_eq!(answer.media.len(), offer.media.len());
        for p in &a.media {
            let i = section_of(&answer, &p.mid);
            check_negotiated(&offer, &answer, i, p.codec.pt, p.rtx_pt, p.red_pt, &p.ext, p.feedback);
        }
    }
    if let Ok(a) = answer_subscribe(&offer, &local(), &tracks()) {
        let answer = SessionDescription::parse(&a.sdp).expect("subscribe answer parses");
        assert_eq!(answer.media.len(), offer.media.len());
        for s in &a.media {
            let i = section_of(&answer, &s.mid);
            let rtx_pt = s.rtx.map(|r| r.payload_type);
            check_negotiated(&offer, &answer, i, s.codec.pt, rtx_pt, s.red_pt, &s.ext, s.feedback);
            assert!(s.ext.rid.is_none() && s.ext.repaired_rid.is_none());
            if let Some(rtx) = s.rtx {
                assert_eq!(
                    answer.media[i].ssrc_groups()[0].ssrcs,
                    vec![s.ssrc, rtx.ssrc]
                );
            }
        }
    }
}

fn section_of(answer: &SessionDescription, mid: &str) -> usize {
    answer
        .media
        .iter()
        .position(|m| m.mid() == Some(mid))
        .expect("an accepted mid is in the answer")
}

/// What every answered media section must hold, whatever the offer was:
/// only offered formats; rtx only as the codec's repair format; one-byte
/// extension ids, each once, as reported; transport-cc with its extension.
fn check_negotiated(
    offer: &SessionDescription,
    answer: &SessionDescription,
    i: usize,
    pt: u8,
    rtx_pt: Option<u8>,
    red_pt: Option<u8>,
    ext: &ExtIds,
    feedback: Feedback,
) {
    let (o, m) = (&offer.media[i], &answer.media[i]);
    let mut expected: Vec<String> = red_pt.map(|p| p.to_string()).into_iter().collect();
    expected.push(pt.to_string());
    expected.extend(rtx_pt.map(|p| p.to_string()));
    assert_eq!(m.formats, expected);
    assert!(m.formats.iter().all(|f| o.formats.contains(f)));
    if let Some(rtx) = rtx_pt {
        assert!(m.rtpmap(rtx).unwrap().name.eq_ignore_ascii_case("rtx"));
        assert_eq!(m.fmtp(rtx), Some(format!("apt={pt}").as_str()));
    }
    let maps = m.extmaps(answer);
    for (n, (id, _)) in maps.iter().enumerate() {
        assert!((1..=14).contains(id));
        assert!(maps[n + 1..].iter().all(|(other, _)| other != id));
    }
    let reported = [
        (ext.mid, SDES_MID_URI),
        (ext.abs_send_time, ABS_SEND_TIME_URI),
        (ext.transport_cc, TRANSPORT_CC_URI),
        (ext.audio_level, AUDIO_LEVEL_URI),
        (ext.video_orientation, VIDEO_ORIENTATION_URI),
        (ext.playout_delay, PLAYOUT_DELAY_URI),
        (ext.dependency_descriptor, DEPENDENCY_DESCRIPTOR_URI),
        (ext.video_content_type, VIDEO_CONTENT_TYPE_URI),
        (ext.rid, RID_URI),
        (ext.repaired_rid, REPAIRED_RID_URI),
    ];
    let reported: Vec<(u8, &str)> = reported
        .iter()
        .filter_map(|(id, uri)| id.map(|id| (id, *uri)))
        .collect();
    assert_eq!(maps.len(), reported.len());
    assert!(reported.iter().all(|r| maps.contains(r)));
    for (id, uri) in &maps {
        assert!(
            o.extmaps(offer).contains(&(*id, *uri)),
            "echoed, not invented"
        );
    }
    let fbs = m.rtcp_fbs(pt);
    assert_eq!(feedback.transport_cc, ext.transport_cc.is_some());
    assert_eq!(feedback.transport_cc, fbs.contains(&"transport-cc"));
    assert_eq!(feedback.remb, fbs.contains(&"goog-remb"));
    assert_eq!(feedback.nack, fbs.contains(&"nack"));
    assert!(!(feedback.remb && feedback.transport_cc));
}

fn fixture() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        CHROME_WHIP,
        CHROME_WHEP,
        CHROMIUM_WHEP_FULL,
        FIREFOX_WHIP,
        DATACHANNEL_ONLY,
    ])
}

/// One edit to a real offer's lines.
#[derive(Clone, Debug)]
enum Edit {
    Delete(usize),
    Duplicate(usize),
    Replace(usize, String),
    Truncate(usize),
    Swap(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let line = "(a=|m=|c=|o=|v=|t=|s=)?[ -~]{0,40}";
    prop_oneof![
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Duplicate),
        (any::<usize>(), line).prop_map(|(i, s)| Edit::Replace(i, s)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Edit::Swap(i, j)),
    ]
}

fn apply(base: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = base.lines().map(str::to_owned).collect();
    for e in edits {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match e {
            Edit::Delete(i) => {
                lines.remove(i % n);
            }
            Edit::Duplicate(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Edit::Replace(i, s) => lines[i % n] = s.clone(),
            Edit::Truncate(i) => {
                let l = &mut lines[i % n];
                let mut cut = i % (l.len() + 1);
                while !l.is_char_boundary(cut) {
                    cut -= 1;
                }
                l.truncate(cut);
            }
            Edit::Swap(i, j) => lines.swap(i % n, j % n),
        }
    }
    lines.join("\r\n")
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.+-]{1,12}"
}

fn attribute() -> impl Strategy<Value = Attribute> {
    (token(), prop::option::of("[ -~]{0,30}")).prop_map(|(key, value)| Attribute {
        key,
        value: value.map(|v| v.trim().to_owned()),
    })
}

fn media() -> impl Strategy<Value = MediaDescription> {
    (
        prop::sample::select(vec!["audio", "video", "application"]),
        any::<u16>(),
        prop::sample::select(vec!["UDP/TLS/RTP/SAVPF", "UDP/DTLS/SCTP"]),
        prop::collection::vec(0u8..128, 1..5),
        prop::option::of(prop::sample::select(vec!["IN IP4 0.0.0.0", "IN IP6 ::1"])),
        prop::collection::vec(attribute(), 0..6),
    )
        .prop_map(
            |(kind, port, proto, pts, connection, attributes)| MediaDescription {
                kind: kind.into(),
                port,
                proto: proto.into(),
                formats: pts.iter().map(u8::to_string).collect(),
                connection: connection.map(Into::into),
                attributes,
            },
        )
}

fn session() -> impl Strategy<Value = SessionDescription> {
    (
        prop::collection::vec(token(), 6),
        token(),
        prop::collection::vec(attribute(), 0..6),
        prop::collection::vec(media(), 1..4),
    )
        .prop_map(
            |(origin, session_name, attributes, media)| SessionDescription {
                origin: origin.join(" "),
                session_name,
                connection: None,
                timing: "0 0".into(),
                attributes,
                media,
            },
        )
}

/// sfud's offer for an audio and a video track, turned into the answer a
/// browser accepting all of it would give.
fn offer_and_answer() -> (SubscriberOffer, String) {
    let mut sub = SubscriberOffer::new(local(), true);
    let t = tracks();
    sub.set_tracks(&t[..2]);
    let offer = sub.create_offer();
    let answer = offer
        .replace("a=ice-lite\r\n", "")
        .replace("a=sendonly", "a=recvonly")
        .replace("a=setup:actpass", "a=setup:active");
    (sub, answer)
}

proptest! {
    #[test]
    fn mutated_answers_to_sfud_offers_keep_the_rules(edits in prop::collection::vec(edit(), 0..6)) {
        let (mut sub, answer) = offer_and_answer();
        let Ok(answer) = SessionDescription::parse(&apply(&answer, &edits)) else {
            return Ok(());
        };
        let Ok(r) = sub.apply_answer(&answer) else {
            return Ok(());
        };
        for t in &r.tracks {
            let m = answer.media.iter().find(|m| m.mid() == Some(t.mid.as_str())).unwrap();
            prop_assert!(m.formats.contains(&t.pt.to_string()));
            if let Some(rtx) = t.rtx {
                prop_assert_eq!(t.track.kind, MediaKind::Video);
                prop_assert!(m.formats.contains(&rtx.payload_type.to_string()));
                prop_assert_eq!(Some(rtx.ssrc), t.track.rtx_ssrc);
            }
            prop_assert_eq!(t.feedback.transport_cc, t.ext.transport_cc.is_some());
            prop_assert!(!(t.feedback.transport_cc && t.feedback.remb));
            prop_assert!(t.ext.rid.is_none() && t.ext.repaired_rid.is_none());
            for id in [t.ext.mid, t.ext.abs_send_time, t.ext.transport_cc, t.ext.audio_level,
                       t.ext.video_orientation, t.ext.playout_delay, t.ext.dependency_descriptor]
                .into_iter()
                .flatten()
            {
                prop_assert!((1..=14).contains(&id));
            }
        }
        if edits.is_empty() {
            prop_assert_eq!(r.tracks.len(), 2);
            prop_assert!(r.tracks[1].rtx.is_some() && r.tracks[1].feedback.transport_cc);
        }
    }

    #[test]
    fn random_text_never_panics(s in "\\PC{0,400}") {
        exercise(&s);
    }

    #[test]
    fn sdp_shaped_noise_never_panics(lines in prop::collection::vec("(v=0|o=- 1 2 IN IP4 1.1.1.1|m=(audio|video) [0-9]{1,6} UDP/TLS/RTP/SAVPF [0-9 ]{1,10}|a=[a-z-]{1,12}(:[ -~]{0,20})?|[ -~]{0,20})", 0..30)) {
        exercise(&lines.join("\n"));
    }

    #[test]
    fn mutated_offers_never_panic(base in fixture(), edits in prop::collection::vec(edit(), 1..6)) {
        exercise(&apply(base, &edits));
    }

    #[test]
    fn generated_models_round_trip(x in session()) {
        prop_assert_eq!(SessionDescription::parse(&x.to_sdp()), Ok(x));
    }
}
