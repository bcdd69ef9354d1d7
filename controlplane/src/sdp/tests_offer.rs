//! Subscriber-PC offers and their answers, and publisher offers as
//! ion-sdk-js sends them (data channel first, renegotiated to add and remove
//! tracks).

use proptest::prelude::*;

use super::*;

const FP: &str = "0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9";
const BROWSER_FP: &str = "1F:32:5E:7A:9C:AA:01:44:53:2B:8E:90:61:CF:D3:0B:7E:2A:48:11:95:C6:3D:EF:02:A4:17:68:B9:5C:40:E1";

fn local() -> LocalIce {
    LocalIce {
        ufrag: "sfudUfrag".into(),
        pwd: "sfudPasswordThatIsLongEnough".into(),
        fingerprint_sha256: FP.into(),
        udp_candidates: vec!["203.0.113.7:7882".parse().unwrap()],
        tcp_candidates: vec!["203.0.113.7:7881".parse().unwrap()],
    }
}

fn parse(s: &str) -> SessionDescription {
    SessionDescription::parse(s).unwrap_or_else(|e| panic!("{e}\n{s}"))
}

fn opus(pt: u8) -> Codec {
    Codec {
        pt,
        name: "opus".into(),
        clock_rate: 48000,
        channels: 2,
        fmtp: Some("minptime=10;useinbandfec=1".into()),
        rtcp_fb: vec![],
    }
}

fn vp8(pt: u8) -> Codec {
    Codec {
        pt,
        name: "VP8".into(),
        clock_rate: 90000,
        channels: 1,
        fmtp: None,
        rtcp_fb: vec![
            "nack".into(),
            "nack pli".into(),
            "goog-remb".into(),
            "transport-cc".into(),
        ],
    }
}

fn h264(pt: u8) -> Codec {
    Codec {
        pt,
        name: "H264".into(),
        clock_rate: 90000,
        channels: 1,
        fmtp: Some("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f".into()),
        rtcp_fb: vec!["nack".into(), "nack pli".into()],
    }
}

fn track(kind: MediaKind, codec: Codec, ssrc: u32) -> SubscriberTrack {
    SubscriberTrack {
        kind,
        codec,
        ssrc,
        rtx_ssrc: (kind == MediaKind::Video).then_some(ssrc | 0x8000_0000),
        red: false,
        cname: format!("cname{ssrc}"),
        stream_id: format!("stream{}", ssrc / 10),
        track_id: format!("track{ssrc}"),
    }
}

fn audio(ssrc: u32) -> SubscriberTrack {
    track(MediaKind::Audio, opus(111), ssrc)
}

fn video(ssrc: u32) -> SubscriberTrack {
    track(MediaKind::Video, vp8(96), ssrc)
}

fn values<'a>(m: &'a MediaDescription, key: &'a str) -> Vec<&'a str> {
    m.attributes
        .iter()
        .filter(|a| a.key == key)
        .map(|a| a.value.as_deref().unwrap_or(""))
        .collect()
}

/// What Chrome answers to an offer: recvonly for sendonly, inactive for
/// inactive, the data channel accepted, rejected sections echoed, except the
/// mids in `reject`, which it answers with port 0. Formats, extmaps and
/// feedback are all accepted.
fn browser_answer(offer: &str, reject: &[&str]) -> String {
    let offer = parse(offer);
    let mut s =
        String::from("v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n");
    let live: Vec<&str> = offer
        .media
        .iter()
        .filter(|m| !m.is_rejected() && !reject.contains(&m.mid().unwrap()))
        .map(|m| m.mid().unwrap())
        .collect();
    if !live.is_empty() {
        s.push_str(&format!("a=group:BUNDLE {}\r\n", live.join(" ")));
    }
    s.push_str("a=msid-semantic: WMS\r\n");
    for m in &offer.media {
        let mid = m.mid().unwrap();
        let fmt = m.formats.join(" ");
        if m.is_rejected() || reject.contains(&mid) {
            s.push_str(&format!(
                "m={} 0 {} {fmt}\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\n",
                m.kind, m.proto
            ));
            continue;
        }
        s.push_str(&format!(
            "m={} 9 {} {fmt}\r\nc=IN IP4 0.0.0.0\r\n",
            m.kind, m.proto
        ));
        s.push_str(
            "a=ice-ufrag:Vw3Z\r\na=ice-pwd:Ys3mBzQ0aJrT9mYw3t0dK8Lq\r\na=ice-options:trickle\r\n",
        );
        s.push_str(&format!(
            "a=fingerprint:sha-256 {BROWSER_FP}\r\na=setup:active\r\na=mid:{mid}\r\n"
        ));
        if m.kind == "application" {
            s.push_str("a=sctp-port:5000\r\na=max-message-size:262144\r\n");
            continue;
        }
        let dir = match m.direction(&offer) {
            Direction::SendOnly => "recvonly",
            _ => "inactive",
        };
        s.push_str(&format!("a={dir}\r\na=rtcp-mux\r\na=rtcp-rsize\r\n"));
        for a in &m.attributes {
            if ["extmap", "rtpmap", "fmtp", "rtcp-fb"].contains(&a.key.as_str()) {
                s.push_str(&format!(
                    "a={}:{}\r\n",
                    a.key,
                    a.value.as_deref().unwrap_or("")
                ));
            }
        }
    }
    s
}

fn answer(sub: &mut SubscriberOffer, offer: &str) -> AnswerResult {
    sub.apply_answer(&parse(&browser_answer(offer, &[])))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn mids(offer: &SessionDescription) -> Vec<(String, String)> {
    offer
        .media
        .iter()
        .map(|m| (m.mid().unwrap().to_owned(), m.kind.clone()))
        .collect()
}

#[test]
fn first_offer_shape() {
    let mut sub = SubscriberOffer::new(local(), true);
    assert!(sub.needs_offer());
    assert!(sub.set_tracks(&[audio(10), video(11)]));
    let sdp = sub.create_offer();
    assert!(sdp.ends_with("\r\n") && !sdp.replace("\r\n", "").contains('\n'));
    let offer = parse(&sdp);
    assert_eq!(parse(&offer.to_sdp()), offer);
    assert!(offer.is_ice_lite());
    assert!(
        offer.origin.ends_with(" 1 IN IP4 127.0.0.1"),
        "{}",
        offer.origin
    );
    assert_eq!(offer.bundle_groups(), vec![vec!["0", "1", "2"]]);
    assert_eq!(
        mids(&offer),
        vec![
            ("0".into(), "application".into()),
            ("1".into(), "audio".into()),
            ("2".into(), "video".into())
        ]
    );
    for m in &offer.media {
        assert_eq!(m.port, 7882);
        assert_eq!(m.connection.as_deref(), Some("IN IP4 203.0.113.7"));
        assert_eq!(m.ice_ufrag(&offer), Some("sfudUfrag"));
        assert_eq!(m.ice_pwd(&offer), Some("sfudPasswordThatIsLongEnough"));
        assert_eq!(m.fingerprint(&offer), Some(("sha-256", FP)));
        assert_eq!(m.setup(&offer), Some("actpass"));
        assert_eq!(values(m, "candidate").len(), 2);
        assert!(m.has_attribute("end-of-candidates"));
    }
    let dc = &offer.media[0];
    assert_eq!(dc.proto, "UDP/DTLS/SCTP");
    assert_eq!(dc.formats, vec!["webrtc-datachannel"]);
    assert_eq!(dc.attribute("sctp-port"), Some("5000"));
    assert_eq!(dc.attribute("max-message-size"), Some("262144"));
    assert!(!dc.rtcp_mux());

    let (a, v) = (&offer.media[1], &offer.media[2]);
    for m in [a, v] {
        assert_eq!(m.proto, "UDP/TLS/RTP/SAVPF");
        assert_eq!(m.direction(&offer), Direction::SendOnly);
        assert!(m.rtcp_mux());
    }
    assert_eq!(a.formats, vec!["111"]);
    assert_eq!(a.rtpmap(111).unwrap().name, "opus");
    assert_eq!(a.fmtp(111), Some("minptime=10;useinbandfec=1"));
    assert_eq!(a.msid(), Some(("stream1", Some("track10"))));
    assert_eq!(a.ssrcs(), vec![10]);
    assert!(values(a, "ssrc").contains(&"10 cname:cname10"));
    assert!(a.ssrc_groups().is_empty(), "audio gets no RTX");
    assert_eq!(
        a.extmaps(&offer),
        vec![
            (1, AUDIO_LEVEL_URI),
            (2, ABS_SEND_TIME_URI),
            (3, TRANSPORT_CC_URI),
            (4, SDES_MID_URI)
        ]
    );
    assert_eq!(a.rtcp_fbs(111), vec!["transport-cc"]);
    // The codec, then its rtx on the next free payload type.
    assert_eq!(v.formats, vec!["96", "97"]);
    assert_eq!(v.rtpmap(97).unwrap().name, "rtx");
    assert_eq!(v.fmtp(97), Some("apt=96"));
    // Send-side estimation: transport-cc instead of the publisher's goog-remb.
    assert_eq!(v.rtcp_fbs(96), vec!["nack", "nack pli", "transport-cc"]);
    assert!(v.rtcp_fbs(97).is_empty());
    assert_eq!(
        v.extmaps(&offer),
        vec![
            (2, ABS_SEND_TIME_URI),
            (3, TRANSPORT_CC_URI),
            (4, SDES_MID_URI),
            (5, PLAYOUT_DELAY_URI),
            (6, DEPENDENCY_DESCRIPTOR_URI),
            (7, VIDEO_CONTENT_TYPE_URI),
            (13, VIDEO_ORIENTATION_URI)
        ]
    );
    let rtx = 11 | 0x8000_0000;
    assert_eq!(
        v.ssrc_groups(),
        vec![SsrcGroup {
            semantics: "FID".into(),
            ssrcs: vec![11, rtx]
        }]
    );
    assert_eq!(v.ssrcs(), vec![11, rtx]);
    assert!(values(v, "ssrc").contains(&format!("{rtx} cname:cname11").as_str()));
    assert!(values(v, "ssrc").contains(&format!("{rtx} msid:stream1 track11").as_str()));

    let second = parse(&sub.create_offer());
    assert!(second.origin.ends_with(" 2 IN IP4 127.0.0.1"));
    let sess = |o: &SessionDescription| o.origin.split(' ').nth(1).unwrap().to_owned();
    assert_eq!(sess(&offer), sess(&second));
}

#[test]
fn slots_stay_stable_and_are_reused_after_the_browser_saw_them_inactive() {
    let mut sub = SubscriberOffer::new(local(), true);
    sub.set_tracks(&[audio(10), video(11), audio(20), video(21)]);
    let o1 = sub.create_offer();
    answer(&mut sub, &o1);
    let before = mids(&parse(&o1));
    assert_eq!(before.len(), 5);

    // Participant 1 leaves: its two slots go inactive, nothing shrinks.
    assert!(sub.set_tracks(&[audio(20), video(21)]));
    assert!(
        !sub.set_tracks(&[audio(20), video(21)]),
        "same tracks, no change"
    );
    let o2 = sub.create_offer();
    let p2 = parse(&o2);
    assert_eq!(mids(&p2), before);
    assert_eq!(p2.bundle_groups(), vec![vec!["0", "1", "2", "3", "4"]]);
    assert_eq!(p2.media[1].direction(&p2), Direction::Inactive);
    assert_eq!(p2.media[2].direction(&p2), Direction::Inactive);
    assert!(p2.media[1].msid().is_none() && p2.media[1].ssrcs().is_empty());
    assert_eq!(
        p2.media[1].formats,
        vec!["111"],
        "an inactive slot keeps its codec"
    );

    // A newcomer before the browser answered: the free slots are not reused yet.
    sub.set_tracks(&[audio(20), video(21), audio(30)]);
    assert_eq!(sub.slots().len(), 6);
    assert_eq!(sub.slots()[5].mid, "5");
    let r = answer(&mut sub, &o2);
    assert!(r.needs_offer, "the newcomer arrived during the offer");
    assert_eq!(
        r.tracks.iter().map(|t| t.track.ssrc).collect::<Vec<_>>(),
        vec![20, 21]
    );

    // Now they are reusable: the next audio and video land in mids 1 and 2,
    // and only a third new audio track needs a new m-line.
    sub.set_tracks(&[audio(20), video(21), audio(30), video(31), audio(40)]);
    let slots = sub.slots();
    assert_eq!(slots.len(), 6);
    assert_eq!(slots[2].track.as_ref().unwrap().ssrc, 31);
    assert_eq!(slots[1].track.as_ref().unwrap().ssrc, 40);
    sub.set_tracks(&[
        audio(20),
        video(21),
        audio(30),
        video(31),
        audio(40),
        audio(50),
    ]);
    assert_eq!(sub.slots().len(), 7);
    assert_eq!(sub.slots()[6].mid, "6");
    assert_eq!(sub.slots()[6].kind, SlotKind::Audio);
    let o3 = parse(&sub.create_offer());
    assert_eq!(mids(&o3)[..5], before[..]);
    assert_eq!(o3.media[2].ssrcs(), vec![31, 31 | 0x8000_0000]);
    assert_eq!(o3.media[1].ssrcs(), vec![40]);
}

#[test]
fn payload_types_never_name_two_codecs() {
    let mut sub = SubscriberOffer::new(local(), false);
    // Two publishers used 96 for different codecs, and 111 twice for opus.
    sub.set_tracks(&[
        track(MediaKind::Video, vp8(96), 1),
        track(MediaKind::Video, h264(96), 2),
        track(MediaKind::Audio, opus(111), 3),
        track(MediaKind::Audio, opus(111), 4),
    ]);
    let sdp = sub.create_offer();
    let offer = parse(&sdp);
    let pts: Vec<Vec<&str>> = offer
        .media
        .iter()
        .map(|m| m.formats.iter().map(String::as_str).collect())
        .collect();
    // VP8's rtx took 97, so H264 moves to 98 and its rtx to 99.
    assert_eq!(
        pts,
        vec![vec!["96", "97"], vec!["98", "99"], vec!["111"], vec!["111"]]
    );
    assert_eq!(offer.media[1].rtpmap(98).unwrap().name, "H264");
    assert_eq!(offer.media[1].fmtp(99), Some("apt=98"));
    let r = answer(&mut sub, &sdp);
    let got: Vec<(u32, u8, u8)> = r
        .tracks
        .iter()
        .map(|t| (t.track.ssrc, t.track.codec.pt, t.pt))
        .collect();
    assert_eq!(
        got,
        vec![(1, 96, 96), (2, 96, 98), (3, 111, 111), (4, 111, 111)]
    );
    assert_eq!(
        r.tracks[1].rtcp_fb,
        vec!["nack", "nack pli", "transport-cc"]
    );
    let rtx: Vec<Option<u8>> = r
        .tracks
        .iter()
        .map(|t| t.rtx.map(|x| x.payload_type))
        .collect();
    assert_eq!(rtx, vec![Some(97), Some(99), None, None]);
}

/// Chrome's answer to the first offer of `first_offer_shape`, by hand: it
/// keeps rtx, transport-cc and every offered extension.
const CHROME_ANSWER: &str = "v=0\r
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r
s=-\r
t=0 0\r
a=group:BUNDLE 0 1 2\r
a=extmap-allow-mixed\r
a=msid-semantic: WMS\r
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r
c=IN IP4 0.0.0.0\r
a=ice-ufrag:Vw3Z\r
a=ice-pwd:Ys3mBzQ0aJrT9mYw3t0dK8Lq\r
a=ice-options:trickle\r
a=fingerprint:sha-256 1F:32:5E:7A:9C:AA:01:44:53:2B:8E:90:61:CF:D3:0B:7E:2A:48:11:95:C6:3D:EF:02:A4:17:68:B9:5C:40:E1\r
a=setup:active\r
a=mid:0\r
a=sctp-port:5000\r
a=max-message-size:262144\r
m=audio 9 UDP/TLS/RTP/SAVPF 111\r
c=IN IP4 0.0.0.0\r
a=rtcp:9 IN IP4 0.0.0.0\r
a=ice-ufrag:Vw3Z\r
a=ice-pwd:Ys3mBzQ0aJrT9mYw3t0dK8Lq\r
a=ice-options:trickle\r
a=fingerprint:sha-256 1F:32:5E:7A:9C:AA:01:44:53:2B:8E:90:61:CF:D3:0B:7E:2A:48:11:95:C6:3D:EF:02:A4:17:68:B9:5C:40:E1\r
a=setup:active\r
a=mid:1\r
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r
a=recvonly\r
a=rtcp-mux\r
a=rtcp-rsize\r
a=rtpmap:111 opus/48000/2\r
a=rtcp-fb:111 transport-cc\r
a=fmtp:111 minptime=10;useinbandfec=1\r
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r
c=IN IP4 0.0.0.0\r
a=rtcp:9 IN IP4 0.0.0.0\r
a=ice-ufrag:Vw3Z\r
a=ice-pwd:Ys3mBzQ0aJrT9mYw3t0dK8Lq\r
a=ice-options:trickle\r
a=fingerprint:sha-256 1F:32:5E:7A:9C:AA:01:44:53:2B:8E:90:61:CF:D3:0B:7E:2A:48:11:95:C6:3D:EF:02:A4:17:68:B9:5C:40:E1\r
a=setup:active\r
a=mid:2\r
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r
a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r
a=extmap:6 https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension\r
a=extmap:13 urn:3gpp:video-orientation\r
a=recvonly\r
a=rtcp-mux\r
a=rtcp-rsize\r
a=rtpmap:96 VP8/90000\r
a=rtcp-fb:96 nack\r
a=rtcp-fb:96 nack pli\r
a=rtcp-fb:96 transport-cc\r
a=rtpmap:97 rtx/90000\r
a=fmtp:97 apt=96\r
";

/// An answer from a client that knows neither rtx nor header extensions.
fn plain_answer() -> String {
    CHROME_ANSWER
        .replace("SAVPF 96 97", "SAVPF 96")
        .lines()
        .filter(|l| !l.starts_with("a=extmap:") && !l.contains(":97"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn offered() -> SubscriberOffer {
    let mut sub = SubscriberOffer::new(local(), true);
    sub.set_tracks(&[audio(10), video(11)]);
    sub.create_offer();
    sub
}

#[test]
fn chrome_answer_applies() {
    let mut sub = offered();
    assert!(sub.awaiting_answer());
    let r = sub.apply_answer(&parse(CHROME_ANSWER)).unwrap();
    assert!(!sub.awaiting_answer());
    let remote = r.remote.unwrap();
    assert_eq!(remote.ice_ufrag, "Vw3Z");
    assert_eq!(remote.ice_pwd, "Ys3mBzQ0aJrT9mYw3t0dK8Lq");
    assert_eq!(
        remote.fingerprint,
        ("sha-256".to_owned(), BROWSER_FP.to_owned())
    );
    assert_eq!(remote.setup, "active");
    assert_eq!(
        r.data_channel,
        Some(DataChannelParams {
            mid: "0".into(),
            remote_sctp_port: 5000,
            remote_max_message_size: 262_144
        })
    );
    assert_eq!(r.tracks.len(), 2);
    let (a, v) = (&r.tracks[0], &r.tracks[1]);
    assert_eq!((a.mid.as_str(), a.pt, a.rtx), ("1", 111, None));
    assert_eq!(a.rtcp_fb, vec!["transport-cc"]);
    assert_eq!(
        a.ext,
        ExtIds {
            mid: Some(4),
            abs_send_time: Some(2),
            transport_cc: Some(3),
            audio_level: Some(1),
            allow_mixed: true,
            ..Default::default()
        }
    );
    assert_eq!(
        a.feedback,
        Feedback {
            nack: false,
            transport_cc: true,
            remb: false
        }
    );
    assert_eq!((v.mid.as_str(), v.pt), ("2", 96));
    assert_eq!(
        v.rtx,
        Some(RtxSpec {
            ssrc: 11 | 0x8000_0000,
            payload_type: 97
        })
    );
    assert_eq!(v.rtcp_fb, vec!["nack", "nack pli", "transport-cc"]);
    assert_eq!(
        v.ext,
        ExtIds {
            mid: Some(4),
            abs_send_time: Some(2),
            transport_cc: Some(3),
            audio_level: None,
            video_orientation: Some(13),
            playout_delay: Some(5),
            video_content_type: None,
            dependency_descriptor: Some(6),
            rid: None,
            repaired_rid: None,
            allow_mixed: true,
        }
    );
    assert_eq!(
        v.feedback,
        Feedback {
            nack: true,
            transport_cc: true,
            remb: false
        }
    );
    assert!(r.refused.is_empty() && !r.needs_offer);

    // The same transport again is not news.
    sub.create_offer();
    let r2 = sub.apply_answer(&parse(CHROME_ANSWER)).unwrap();
    assert_eq!(r2.remote, None);
}

#[test]
fn an_answer_without_rtx_or_extensions() {
    let mut sub = offered();
    let r = sub.apply_answer(&parse(&plain_answer())).unwrap();
    let v = &r.tracks[1];
    // The plain answer keeps the session level of a browser's: mixed forms allowed.
    assert_eq!((v.pt, v.rtx, v.ext), (96, None, ExtIds { allow_mixed: true, ..ExtIds::default() }));
    // transport-cc without its extension is no transport-cc.
    assert_eq!(v.rtcp_fb, vec!["nack", "nack pli"]);
    assert_eq!(
        v.feedback,
        Feedback {
            nack: true,
            transport_cc: false,
            remb: false
        }
    );
    assert_eq!(r.tracks[0].feedback, Feedback::default());
}

#[test]
fn answered_feedback_and_extensions_are_limited_to_the_offer() {
    let mut sub = offered();
    // goog-remb was not offered; an unknown URI and a one-way extension the
    // browser would only send are not sfud's to use.
    let a = CHROME_ANSWER
        .replace(
            "a=rtcp-fb:96 nack\r\n",
            "a=rtcp-fb:96 nack\r\na=rtcp-fb:96 goog-remb\r\n",
        )
        .replace(
            "a=extmap:13 urn:3gpp:video-orientation",
            "a=extmap:13/sendonly urn:3gpp:video-orientation\r\na=extmap:14 urn:ietf:params:rtp-hdrext:toffset",
        )
        .replace(
            "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\na=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=extmap:5",
            "a=extmap:7 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\na=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=extmap:5",
        );
    let r = sub.apply_answer(&parse(&a)).unwrap();
    let v = &r.tracks[1];
    assert_eq!(v.rtcp_fb, vec!["nack", "nack pli", "transport-cc"]);
    assert!(!v.feedback.remb);
    assert_eq!(v.ext.video_orientation, None);
    assert_eq!(
        v.ext.transport_cc,
        Some(7),
        "the answerer's id is what it parses"
    );
}

#[test]
fn rtx_is_kept_only_if_the_answer_lists_it() {
    let mut sub = offered();
    let only_rtx = CHROME_ANSWER.replace("SAVPF 96 97", "SAVPF 97");
    let e = sub.apply_answer(&parse(&only_rtx)).unwrap_err();
    assert!(e.to_string().contains("codec's payload type"), "{e}");
    let no_rtx = CHROME_ANSWER.replace("SAVPF 96 97", "SAVPF 96");
    let r = sub.apply_answer(&parse(&no_rtx)).unwrap();
    assert_eq!(r.tracks[1].rtx, None);
    assert_eq!(r.tracks[1].ext.mid, Some(4));
}

#[test]
fn extension_ids_hold_across_m_lines_and_renegotiations() {
    let mut sub = SubscriberOffer::new(local(), true);
    sub.set_tracks(&[audio(10), video(11)]);
    let o1 = sub.create_offer();
    answer(&mut sub, &o1);
    sub.set_tracks(&[audio(10), video(11), video(21), audio(20)]);
    let o2 = sub.create_offer();
    answer(&mut sub, &o2);
    sub.set_tracks(&[video(21)]);
    let o3 = sub.create_offer();
    let mut ids: Vec<(u8, String)> = Vec::new();
    for o in [&o1, &o2, &o3] {
        let offer = parse(o);
        for m in offer.media.iter().filter(|m| m.kind != "application") {
            assert!(
                !m.extmaps(&offer).is_empty(),
                "inactive slots keep them too"
            );
            for (id, uri) in m.extmaps(&offer) {
                assert!((1..=14).contains(&id));
                match ids.iter().find(|(i, u)| *i == id || u == uri) {
                    Some(seen) => assert_eq!(seen, &(id, uri.to_owned())),
                    None => ids.push((id, uri.to_owned())),
                }
            }
        }
    }
    assert_eq!(ids.len(), 8);
}

#[test]
fn a_reused_slot_gets_the_rtx_of_its_new_codec() {
    let mut sub = SubscriberOffer::new(local(), false);
    sub.set_tracks(&[video(11)]);
    let o1 = sub.create_offer();
    answer(&mut sub, &o1);
    sub.set_tracks(&[]);
    let o2 = sub.create_offer();
    let inactive = parse(&o2);
    assert_eq!(inactive.media[0].formats, vec!["96", "97"]);
    assert!(inactive.media[0].ssrc_groups().is_empty());
    answer(&mut sub, &o2);
    sub.set_tracks(&[track(MediaKind::Video, h264(102), 31)]);
    let o3 = parse(&sub.create_offer());
    let m = &o3.media[0];
    assert_eq!(m.mid(), Some("0"));
    assert_eq!(m.formats, vec!["102", "98"]);
    assert_eq!(m.fmtp(98), Some("apt=102"));
    assert_eq!(m.ssrc_groups()[0].ssrcs, vec![31, 31 | 0x8000_0000]);
}

#[test]
fn tracks_sharing_an_rtx_ssrc_are_skipped() {
    let mut sub = SubscriberOffer::new(local(), false);
    let mut clash = video(12);
    clash.rtx_ssrc = Some(11);
    sub.set_tracks(&[video(11), clash]);
    assert_eq!(sub.slots().len(), 1);
}

fn answer_err(edit: impl Fn(&str) -> String) -> NegotiationError {
    let mut sub = offered();
    let a = SessionDescription::parse(&edit(CHROME_ANSWER)).unwrap();
    let err = sub.apply_answer(&a).unwrap_err();
    assert!(
        sub.awaiting_answer(),
        "a failed answer leaves the offer pending"
    );
    err
}

#[test]
fn bad_answers_are_refused_clearly() {
    let mut fresh = SubscriberOffer::new(local(), true);
    assert_eq!(
        fresh.apply_answer(&parse(CHROME_ANSWER)).unwrap_err(),
        NegotiationError::NoOfferPending
    );

    let e = answer_err(|a| a.replace("a=setup:active", "a=setup:passive"));
    assert!(e.to_string().contains("a=setup:active"), "{e}");
    let e = answer_err(|a| a.replace("a=setup:active", "a=setup:actpass"));
    assert!(matches!(e, NegotiationError::InvalidAnswer(_)), "{e}");

    let e = answer_err(|a| a.replace("sha-256 1F", "sha-1 1F"));
    assert!(
        matches!(e, NegotiationError::UnsupportedFingerprint { .. }),
        "{e}"
    );
    let e = answer_err(|a| a.replace("a=ice-ufrag:Vw3Z\r\n", ""));
    assert!(
        matches!(e, NegotiationError::MissingIceCredentials { .. }),
        "{e}"
    );

    let e = answer_err(|a| a.split("m=video").next().unwrap().to_owned());
    assert!(
        e.to_string().contains("has 2 m-lines, the offer had 3"),
        "{e}"
    );
    let e = answer_err(|a| a.replace("a=mid:2", "a=mid:7"));
    assert!(e.to_string().contains("a=mid:7"), "{e}");
    let e = answer_err(|a| {
        a.replace("SAVPF 96", "SAVPF 100")
            .replace("rtpmap:96", "rtpmap:100")
    });
    assert!(e.to_string().contains("payload type 100"), "{e}");
    let e = answer_err(|a| a.replacen("a=recvonly", "a=sendrecv", 1));
    assert!(e.to_string().contains("a=sendrecv"), "{e}");
    let e = answer_err(|a| a.replace("a=group:BUNDLE 0 1 2\r\n", ""));
    assert_eq!(e, NegotiationError::BundleRequired);
    let e = answer_err(|a| a.replace("a=group:BUNDLE 0 1 2", "a=group:BUNDLE 0 1"));
    assert!(e.to_string().contains("outside the BUNDLE"), "{e}");
    let e = answer_err(|a| a.replace("a=sctp-port:5000", "a=sctp-port:x"));
    assert!(e.to_string().contains("sctp-port"), "{e}");

    // The DTLS identity cannot change under an established session.
    let mut sub = offered();
    sub.apply_answer(&parse(CHROME_ANSWER)).unwrap();
    sub.create_offer();
    let other = CHROME_ANSWER.replace("1F:32", "2F:32");
    let e = sub.apply_answer(&parse(&other)).unwrap_err();
    assert!(e.to_string().contains("fingerprint changed"), "{e}");
}

#[test]
fn a_rejected_slot_stays_rejected_and_its_track_is_not_offered_again() {
    let mut sub = SubscriberOffer::new(local(), true);
    let h = track(MediaKind::Video, h264(102), 7);
    sub.set_tracks(&[audio(10), h.clone()]);
    let o = sub.create_offer();
    // A browser without H264 rejects the video m-line.
    let r = sub
        .apply_answer(&parse(&browser_answer(&o, &["2"])))
        .unwrap();
    assert_eq!(r.refused, vec!["2"]);
    assert_eq!(r.tracks.len(), 1);
    assert!(sub.slots()[2].track.is_none());
    assert!(
        !sub.set_tracks(&[audio(10), h]),
        "the refused track is not retried"
    );

    sub.set_tracks(&[audio(10), video(11)]);
    let o2 = parse(&sub.create_offer());
    assert_eq!(o2.media.len(), 4);
    assert_eq!(o2.media[2].port, 0);
    assert_eq!(o2.media[2].mid(), Some("2"));
    assert_eq!(o2.media[3].ssrcs(), vec![11, 11 | 0x8000_0000]);
    assert_eq!(o2.bundle_groups(), vec![vec!["0", "1", "3"]]);
    // The browser must keep answering it with port 0.
    let ok = browser_answer(&o2.to_sdp(), &[]);
    sub.apply_answer(&parse(&ok)).unwrap();
}

#[test]
fn without_data_channel_and_with_inactive_answers() {
    let mut sub = SubscriberOffer::new(local(), false);
    assert!(!sub.needs_offer());
    sub.set_tracks(&[video(11)]);
    let o = sub.create_offer();
    assert_eq!(mids(&parse(&o)), vec![("0".into(), "video".into())]);
    // The browser stopped its transceiver's receiving side.
    let a = browser_answer(&o, &[]).replace("a=recvonly", "a=inactive");
    let r = sub.apply_answer(&parse(&a)).unwrap();
    assert!(r.tracks.is_empty());
    assert_eq!(r.refused, vec!["0"]);
    assert_eq!(r.data_channel, None);
}

// ---- publisher offers as ion-sdk-js sends them ----

const PUB_HEAD: &str = "v=0\r
o=- 7166284424093441046 2 IN IP4 127.0.0.1\r
s=-\r
t=0 0\r
";

fn transport(mid: &str) -> String {
    format!(
        "c=IN IP4 0.0.0.0\r\na=ice-ufrag:Vw3Z\r\na=ice-pwd:Ys3mBzQ0aJrT9mYw3t0dK8Lq\r\na=ice-options:trickle\r\na=fingerprint:sha-256 {BROWSER_FP}\r\na=setup:actpass\r\na=mid:{mid}\r\n"
    )
}

fn pub_app() -> String {
    format!(
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n{}a=sctp-port:5000\r\na=max-message-size:262144\r\n",
        transport("0")
    )
}

fn pub_audio(mid: &str, port: u16, dir: &str) -> String {
    format!(
        "m=audio {port} UDP/TLS/RTP/SAVPF 111 0\r\n{}a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na={dir}\r\na=msid:s1 a1\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\na=ssrc:1001 cname:c\r\n",
        transport(mid)
    )
}

fn pub_video(mid: &str, dir: &str) -> String {
    format!(
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n{}a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na={dir}\r\na=msid:s1 v1\r\na=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=ssrc-group:FID 2001 2002\r\na=ssrc:2001 cname:c\r\na=ssrc:2002 cname:c\r\n",
        transport(mid)
    )
}

fn pub_offer(bundle: &str, sections: &[String]) -> SessionDescription {
    parse(&format!(
        "{PUB_HEAD}a=group:BUNDLE {bundle}\r\na=msid-semantic: WMS s1\r\n{}",
        sections.concat()
    ))
}

const ROOM: PublishOptions = PublishOptions {
    accept_data_channel: true,
    keep_inactive: true,
};

#[test]
fn join_offer_with_only_the_api_data_channel() {
    let join = pub_offer("0", &[pub_app()]);
    // WHIP behaviour is unchanged: a data channel alone is nothing to publish.
    assert!(matches!(
        answer_publish(&join, &local()),
        Err(NegotiationError::NoUsableMedia(_))
    ));
    let a = answer_publish_with(&join, &local(), ROOM).unwrap();
    assert!(a.media.is_empty());
    assert_eq!(
        a.data_channel,
        Some(DataChannelParams {
            mid: "0".into(),
            remote_sctp_port: 5000,
            remote_max_message_size: 262_144
        })
    );
    assert_eq!(a.remote.ice_ufrag, "Vw3Z");
    let ans = parse(&a.sdp);
    assert_eq!(ans.bundle_groups(), vec![vec!["0"]]);
    let m = &ans.media[0];
    assert_eq!(
        (m.kind.as_str(), m.port, m.proto.as_str()),
        ("application", 7882, "UDP/DTLS/SCTP")
    );
    assert_eq!(m.formats, vec!["webrtc-datachannel"]);
    assert_eq!(m.attribute("sctp-port"), Some("5000"));
    assert_eq!(m.attribute("max-message-size"), Some("262144"));
    assert_eq!(m.setup(&ans), Some("passive"));
    assert_eq!(m.fingerprint(&ans), Some(("sha-256", FP)));
    assert!(!m.rtcp_mux() && m.has_attribute("end-of-candidates"));
    assert!(!m
        .attributes
        .iter()
        .any(|a| Direction::from_attribute(&a.key).is_some()));
}

#[test]
fn renegotiated_publisher_offers_add_then_remove_tracks() {
    // publish(): two transceivers appended after the data channel.
    let add = pub_offer(
        "0 1 2",
        &[
            pub_app(),
            pub_audio("1", 9, "sendonly"),
            pub_video("2", "sendonly"),
        ],
    );
    let a = answer_publish_with(&add, &local(), ROOM).unwrap();
    let ans = parse(&a.sdp);
    assert_eq!(ans.bundle_groups(), vec![vec!["0", "1", "2"]]);
    assert_eq!(
        a.media.iter().map(|m| m.mid.as_str()).collect::<Vec<_>>(),
        vec!["1", "2"]
    );
    assert_eq!(a.media[1].ssrc, Some(2001));
    assert_eq!(
        (a.media[1].rtx_ssrc, a.media[1].rtx_pt),
        (Some(2002), Some(97))
    );
    assert_eq!(a.media[0].ext.mid, Some(4));
    assert_eq!(ans.media[2].formats, vec!["96", "97"]);
    assert!(a.data_channel.is_some());
    assert_eq!(ans.media[1].direction(&ans), Direction::RecvOnly);

    // unpublish(): removeTrack leaves the audio transceiver inactive; a
    // stopped video transceiver comes back with port 0.
    let remove = pub_offer(
        "0 1",
        &[
            pub_app(),
            pub_audio("1", 9, "inactive"),
            pub_video("2", "sendonly").replacen("m=video 9", "m=video 0", 1),
        ],
    );
    let a = answer_publish_with(&remove, &local(), ROOM).unwrap();
    assert!(a.media.is_empty());
    let ans = parse(&a.sdp);
    assert_eq!(ans.media.len(), 3);
    assert_eq!(ans.bundle_groups(), vec![vec!["0", "1"]]);
    assert_eq!(ans.media[1].port, 7882);
    assert_eq!(ans.media[1].direction(&ans), Direction::Inactive);
    assert_eq!(ans.media[1].formats, vec!["111"]);
    assert_eq!(ans.media[2].port, 0);
    assert_eq!(ans.media[2].mid(), Some("2"));

    // Without keep_inactive the removed track's section is rejected, as WHIP would.
    let whip_like = PublishOptions {
        accept_data_channel: true,
        keep_inactive: false,
    };
    let a = answer_publish_with(&remove, &local(), whip_like).unwrap();
    assert_eq!(parse(&a.sdp).media[1].port, 0);
}

#[test]
fn data_channel_tag_still_needs_rtcp_mux_on_media() {
    let offer = pub_offer(
        "0 1",
        &[
            pub_app(),
            pub_audio("1", 9, "sendonly").replace("a=rtcp-mux\r\n", ""),
        ],
    );
    assert!(matches!(
        answer_publish_with(&offer, &local(), ROOM),
        Err(NegotiationError::RtcpMuxRequired { .. })
    ));
    let legacy = pub_offer(
        "0 1",
        &[
            pub_app().replace("UDP/DTLS/SCTP webrtc-datachannel", "DTLS/SCTP 5000"),
            pub_audio("1", 9, "sendonly"),
        ],
    );
    let a = answer_publish_with(&legacy, &local(), ROOM).unwrap();
    assert_eq!(a.data_channel, None, "pre-standard SCTP syntax is rejected");
    assert_eq!(a.media.len(), 1);
}

// ---- properties ----

#[derive(Clone, Debug)]
enum Op {
    Set(Vec<usize>),
    Offer,
    Answer(Option<usize>),
}

fn pool() -> Vec<SubscriberTrack> {
    let mut v = Vec::new();
    for i in 0..6u32 {
        v.push(audio(100 + i));
        v.push(track(
            MediaKind::Video,
            if i % 2 == 0 { vp8(96) } else { h264(96) },
            200 + i,
        ));
    }
    v
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        prop::collection::vec(0usize..12, 0..8).prop_map(Op::Set),
        Just(Op::Offer),
        prop::option::of(0usize..20).prop_map(Op::Answer),
    ]
}

proptest! {
    #[test]
    fn set_tracks_sequences_never_shrink_or_break(dc in any::<bool>(), ops in prop::collection::vec(op(), 1..40)) {
        let pool = pool();
        let mut sub = SubscriberOffer::new(local(), dc);
        let mut last_offer: Option<String> = None;
        let mut seen: Vec<(String, SlotKind)> = Vec::new();
        for op in ops {
            match op {
                Op::Set(idx) => {
                    let tracks: Vec<SubscriberTrack> = idx.iter().map(|i| pool[*i].clone()).collect();
                    sub.set_tracks(&tracks);
                }
                Op::Offer => {
                    let sdp = sub.create_offer();
                    let offer = SessionDescription::parse(&sdp);
                    if sub.slots().is_empty() {
                        prop_assert!(offer.is_err());
                    } else {
                        let offer = offer.unwrap();
                        prop_assert_eq!(offer.media.len(), sub.slots().len());
                        // One payload type never names two codecs.
                        let mut maps: Vec<(u8, String)> = Vec::new();
                        for m in &offer.media {
                            for r in m.rtpmaps() {
                                let d = format!("{}/{} {:?}", r.name, r.clock_rate, m.fmtp(r.pt));
                                if let Some((_, other)) = maps.iter().find(|(p, _)| *p == r.pt) {
                                    prop_assert_eq!(other, &d);
                                }
                                maps.push((r.pt, d));
                            }
                        }
                        // No SSRC is sent in two m-lines.
                        let mut ssrcs: Vec<u32> = offer.media.iter().flat_map(|m| m.ssrcs()).collect();
                        let n = ssrcs.len();
                        ssrcs.dedup();
                        ssrcs.sort_unstable();
                        ssrcs.dedup();
                        prop_assert_eq!(ssrcs.len(), n);
                        last_offer = Some(sdp);
                    }
                }
                Op::Answer(reject) => {
                    if let Some(o) = last_offer.take() {
                        let reject: Vec<String> = reject.map(|r| r.to_string()).into_iter().collect();
                        let reject: Vec<&str> = reject.iter().map(String::as_str).collect();
                        let a = SessionDescription::parse(&browser_answer(&o, &reject)).unwrap();
                        // Rejecting everything is an error; anything else applies.
                        let all = a.media.iter().all(|m| m.is_rejected());
                        let result = sub.apply_answer(&a);
                        prop_assert_eq!(result.is_ok(), !all);
                        // A browser that accepts everything keeps rtx on video and
                        // transport-cc with its extension everywhere.
                        for t in result.iter().flat_map(|r| &r.tracks) {
                            let video = t.track.kind == MediaKind::Video;
                            prop_assert_eq!(t.rtx.is_some(), video);
                            if let Some(rtx) = t.rtx {
                                prop_assert_eq!(Some(rtx.ssrc), t.track.rtx_ssrc);
                                prop_assert_ne!(rtx.payload_type, t.pt);
                            }
                            prop_assert!(t.feedback.transport_cc && !t.feedback.remb);
                            prop_assert_eq!(t.ext.transport_cc, Some(3));
                            prop_assert_eq!(t.ext.mid, Some(4));
                        }
                    } else {
                        let a = parse(CHROME_ANSWER);
                        let _ = sub.apply_answer(&a);
                    }
                }
            }
            let now: Vec<(String, SlotKind)> = sub.slots().iter().map(|s| (s.mid.clone(), s.kind)).collect();
            prop_assert!(now.len() >= seen.len());
            prop_assert_eq!(&now[..seen.len()], &seen[..]);
            prop_assert!(now.len() <= MAX_MEDIA_SECTIONS);
            seen = now;
        }
    }

    #[test]
    fn arbitrary_answers_never_panic(s in "\\PC{0,600}", dc in any::<bool>()) {
        let mut sub = SubscriberOffer::new(local(), dc);
        sub.set_tracks(&[audio(1), video(2)]);
        sub.create_offer();
        if let Ok(a) = SessionDescription::parse(&s) {
            let _ = sub.apply_answer(&a);
        }
        let mutated = CHROME_ANSWER.replace("a=recvonly", &s);
        if let Ok(a) = SessionDescription::parse(&mutated) {
            let _ = sub.apply_answer(&a);
        }
    }
}
