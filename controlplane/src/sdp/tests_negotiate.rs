//! Browser-shaped offers through the parser and both answerers.

use super::fixtures::{
    vp8_track, CHROME_WHEP, CHROME_WHIP, CHROMIUM_WHEP_FULL, DATACHANNEL_ONLY, FIREFOX_WHIP,
};
use super::*;

const FP: &str = "0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9";

fn local() -> LocalIce {
    LocalIce {
        ufrag: "sfudUfrag".into(),
        pwd: "sfudPasswordThatIsLongEnough".into(),
        fingerprint_sha256: FP.into(),
        udp_candidates: vec![
            "203.0.113.7:7882".parse().unwrap(),
            "[2001:db8::7]:7882".parse().unwrap(),
        ],
        tcp_candidates: vec!["203.0.113.7:7881".parse().unwrap()],
    }
}

fn parse(s: &str) -> SessionDescription {
    SessionDescription::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

fn publish(s: &str) -> Result<PublishAnswer, NegotiationError> {
    answer_publish(&parse(s), &local())
}

fn values<'a>(m: &'a MediaDescription, key: &'a str) -> Vec<&'a str> {
    m.attributes
        .iter()
        .filter(|a| a.key == key)
        .map(|a| a.value.as_deref().unwrap_or(""))
        .collect()
}

/// Checks everything every answer must have, and returns it parsed.
fn check_answer_shape(sdp: &str, bundle: &str) -> SessionDescription {
    assert!(
        sdp.ends_with("\r\n") && !sdp.replace("\r\n", "").contains('\n'),
        "CRLF only"
    );
    let answer = parse(sdp);
    assert_eq!(SessionDescription::parse(&answer.to_sdp()).unwrap(), answer);
    assert!(answer.is_ice_lite());
    assert_eq!(answer.attribute("msid-semantic"), Some(" WMS *"));
    assert_eq!(
        answer.bundle_groups(),
        vec![bundle.split(' ').collect::<Vec<_>>()]
    );
    for m in answer.media.iter().filter(|m| !m.is_rejected()) {
        assert_eq!(m.port, 7882);
        assert_eq!(m.connection.as_deref(), Some("IN IP4 203.0.113.7"));
        assert_eq!(m.ice_ufrag(&answer), Some("sfudUfrag"));
        assert_eq!(m.ice_pwd(&answer), Some("sfudPasswordThatIsLongEnough"));
        assert_eq!(m.fingerprint(&answer), Some(("sha-256", FP)));
        assert_eq!(m.setup(&answer), Some("passive"));
        assert!(m.rtcp_mux());
        // The codec, and at most its rtx.
        assert!((1..=2).contains(&m.formats.len()), "{:?}", m.formats);
        assert_eq!(
            values(m, "candidate"),
            vec![
                "1 1 udp 2130706431 203.0.113.7 7882 typ host",
                "2 1 udp 2130706175 2001:db8::7 7882 typ host",
                "3 1 tcp 2124414975 203.0.113.7 7881 typ host tcptype passive",
            ]
        );
        assert_eq!(
            m.attributes.last(),
            Some(&Attribute::flag("end-of-candidates"))
        );
    }
    answer
}

#[test]
fn chrome_whip_offer_parses() {
    let offer = parse(CHROME_WHIP);
    assert_eq!(offer.media.len(), 2);
    assert_eq!(offer.bundle_groups(), vec![vec!["0", "1"]]);
    let (audio, video) = (&offer.media[0], &offer.media[1]);
    assert_eq!((audio.mid(), video.mid()), (Some("0"), Some("1")));
    assert_eq!(audio.direction(&offer), Direction::SendOnly);
    assert_eq!(audio.ice_ufrag(&offer), Some("Vw3Z"));
    assert_eq!(audio.setup(&offer), Some("actpass"));
    assert_eq!(audio.fingerprint(&offer).map(|f| f.0), Some("sha-256"));
    assert!(audio.rtcp_mux() && !audio.is_rejected());
    assert_eq!(
        audio.rtpmaps()[0],
        RtpMap {
            pt: 111,
            name: "opus".into(),
            clock_rate: 48000,
            channels: 2
        }
    );
    assert_eq!(audio.rtpmaps()[2].channels, 1);
    assert_eq!(audio.fmtp(111), Some("minptime=10;useinbandfec=1"));
    assert_eq!(video.rtpmaps().len(), 25);
    assert_eq!(
        video.rtcp_fbs(96),
        vec!["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"]
    );
    assert!(video.rtcp_fbs(97).is_empty());
    assert_eq!(video.extmaps(&offer).len(), 11);
    assert!(video.extmaps(&offer).contains(&(4, SDES_MID_URI)));
    assert_eq!(video.ssrcs(), vec![2813049416, 1150318231]);
    assert_eq!(
        video.ssrc_groups(),
        vec![SsrcGroup {
            semantics: "FID".into(),
            ssrcs: vec![2813049416, 1150318231]
        }]
    );
    assert_eq!(
        video.msid(),
        Some((
            "5fa2f3b0-5e5c-4f4e-9d38-3b3c4f5b6a70",
            Some("7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6")
        ))
    );
}

#[test]
fn firefox_offer_falls_back_to_session_level() {
    let offer = parse(FIREFOX_WHIP);
    let video = &offer.media[1];
    assert_eq!(video.fingerprint(&offer).map(|f| f.1.len()), Some(95));
    assert_eq!(
        offer.media[0].extmaps(&offer)[1],
        (2, "urn:ietf:params:rtp-hdrext:csrc-audio-level")
    );
    assert_eq!(offer.media[2].direction(&offer), Direction::SendRecv);
    let mut no_direction = offer.clone();
    no_direction.media[0]
        .attributes
        .retain(|a| a.key != "sendonly");
    no_direction.attributes.push(Attribute::flag("inactive"));
    assert_eq!(
        no_direction.media[0].direction(&no_direction),
        Direction::Inactive
    );
}

#[test]
fn fixtures_round_trip() {
    for s in [
        CHROME_WHIP,
        CHROME_WHEP,
        CHROMIUM_WHEP_FULL,
        FIREFOX_WHIP,
        DATACHANNEL_ONLY,
    ] {
        let x = parse(s);
        assert_eq!(parse(&x.to_sdp()), x);
    }
    // Verbatim for a CRLF offer in canonical order.
    assert_eq!(parse(CHROME_WHIP).to_sdp(), CHROME_WHIP);
    assert_eq!(parse(CHROMIUM_WHEP_FULL).to_sdp(), CHROMIUM_WHEP_FULL);
}

#[test]
fn chrome_whip_answer() {
    let a = publish(CHROME_WHIP).unwrap();
    let answer = check_answer_shape(&a.sdp, "0 1");
    assert_eq!(answer.media.len(), 2);
    let (audio, video) = (&answer.media[0], &answer.media[1]);
    for m in [audio, video] {
        assert_eq!(m.direction(&answer), Direction::RecvOnly);
        assert!(m.has_attribute("rtcp-rsize"));
        assert!(m.ssrcs().is_empty());
        assert!(m.ssrc_groups().is_empty());
    }
    // The offerer's ids echoed, for the known URIs only (no toffset,
    // video-timing, color-space).
    assert_eq!(
        audio.extmaps(&answer),
        vec![
            (1, AUDIO_LEVEL_URI),
            (2, ABS_SEND_TIME_URI),
            (3, TRANSPORT_CC_URI),
            (4, SDES_MID_URI)
        ]
    );
    assert_eq!(
        video.extmaps(&answer),
        vec![
            (2, ABS_SEND_TIME_URI),
            (13, VIDEO_ORIENTATION_URI),
            (3, TRANSPORT_CC_URI),
            (5, PLAYOUT_DELAY_URI),
            (6, VIDEO_CONTENT_TYPE_URI),
            (4, SDES_MID_URI),
            (10, RID_URI),
            (11, REPAIRED_RID_URI)
        ]
    );
    // RED around opus, first, so Chromium sends it.
    assert_eq!(audio.formats, vec!["63", "111"]);
    assert_eq!(values(audio, "rtpmap"), vec!["111 opus/48000/2", "63 red/48000/2"]);
    assert_eq!(audio.fmtp(63), Some("111/111"));
    assert_eq!(audio.fmtp(111), Some("minptime=10;useinbandfec=1"));
    assert_eq!(audio.rtcp_fbs(111), vec!["transport-cc"]);
    // VP8 and its rtx only: not the other codecs' rtx, not red/ulpfec.
    assert_eq!(video.formats, vec!["96", "97"]);
    assert_eq!(
        values(video, "rtpmap"),
        vec!["96 VP8/90000", "97 rtx/90000"]
    );
    assert_eq!(video.fmtp(97), Some("apt=96"));
    assert!(video.rtcp_fbs(97).is_empty());
    assert_eq!(
        video.rtcp_fbs(96),
        vec!["transport-cc", "ccm fir", "nack", "nack pli"],
        "transport-cc replaces goog-remb"
    );

    assert_eq!(
        a.remote,
        RemoteParams {
            ice_ufrag: "Vw3Z".into(),
            ice_pwd: "Ys3mBzQ0aJrT9mYw3t0dK8Lq".into(),
            fingerprint: (
                "sha-256".into(),
                "1F:32:5E:7A:9C:AA:01:44:53:2B:8E:90:61:CF:D3:0B:7E:2A:48:11:95:C6:3D:EF:02:A4:17:68:B9:5C:40:E1".into()
            ),
            setup: "actpass".into(),
        }
    );
    assert_eq!(a.media.len(), 2);
    let (pa, pv) = (&a.media[0], &a.media[1]);
    assert_eq!(
        (pa.mid.as_str(), pa.kind, pa.ssrc, pa.rtx_ssrc, pa.rtx_pt),
        ("0", MediaKind::Audio, Some(3735928559), None, None)
    );
    assert_eq!(pa.codec.name, "opus");
    assert_eq!((pa.codec.clock_rate, pa.codec.channels), (48000, 2));
    assert_eq!(
        pa.ext,
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
        pa.feedback,
        Feedback {
            nack: false,
            transport_cc: true,
            remb: false
        }
    );
    assert_eq!(
        pa.track_id.as_deref(),
        Some("0c3d8f0e-8a9b-4c44-b4b0-2f5a1e7d9c10")
    );
    assert_eq!((pv.mid.as_str(), pv.kind), ("1", MediaKind::Video));
    assert_eq!(
        (pv.ssrc, pv.rtx_ssrc, pv.rtx_pt),
        (Some(2813049416), Some(1150318231), Some(97))
    );
    assert_eq!(
        pv.ext,
        ExtIds {
            mid: Some(4),
            abs_send_time: Some(2),
            transport_cc: Some(3),
            audio_level: None,
            video_orientation: Some(13),
            playout_delay: Some(5),
            video_content_type: Some(6),
            dependency_descriptor: None,
            rid: Some(10),
            repaired_rid: Some(11),
            allow_mixed: true,
        }
    );
    assert_eq!(
        pv.feedback,
        Feedback {
            nack: true,
            transport_cc: true,
            remb: false
        }
    );
    assert_eq!(
        pv.codec,
        Codec {
            pt: 96,
            name: "VP8".into(),
            clock_rate: 90000,
            channels: 1,
            fmtp: None,
            rtcp_fb: vec![
                "transport-cc".into(),
                "ccm fir".into(),
                "nack".into(),
                "nack pli".into()
            ],
        }
    );
    assert_eq!(
        pv.stream_id.as_deref(),
        Some("5fa2f3b0-5e5c-4f4e-9d38-3b3c4f5b6a70")
    );
}

#[test]
fn publish_offer_without_rtx_or_extensions() {
    // An older client: no extmap at all, no rtx, goog-remb offered.
    let bare: String = CHROME_WHIP
        .lines()
        .filter(|l| !l.starts_with("a=extmap") && !l.contains("apt=") && !l.contains("rtx/"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let a = publish(&bare).unwrap();
    let answer = check_answer_shape(&a.sdp, "0 1");
    for m in &answer.media {
        assert!(m.extmaps(&answer).is_empty());
    }
    let video = &answer.media[1];
    assert_eq!(video.formats, vec!["96"]);
    // Without the extension, transport-cc is out and goog-remb stays.
    assert_eq!(
        video.rtcp_fbs(96),
        vec!["goog-remb", "ccm fir", "nack", "nack pli"]
    );
    assert!(answer.media[0].rtcp_fbs(111).is_empty());
    let pv = &a.media[1];
    assert_eq!((pv.rtx_pt, pv.ext), (None, ExtIds::default()));
    // The FID group is still reported: the SSRC is known to be the repair one.
    assert_eq!(pv.rtx_ssrc, Some(1150318231));
    assert_eq!(
        pv.feedback,
        Feedback {
            nack: true,
            transport_cc: false,
            remb: true
        }
    );
}

#[test]
fn publish_opus_fmtp_passes_fec_and_dtx_through_and_red_is_answered_first() {
    let dtx = CHROME_WHIP.replace(
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1",
    );
    let a = publish(&dtx).unwrap();
    let answer = parse(&a.sdp);
    let audio = &answer.media[0];
    assert_eq!(audio.fmtp(111), Some("minptime=10;useinbandfec=1;usedtx=1"));
    assert_eq!(audio.formats, vec!["63", "111"], "red/48000 (63) first");
    assert_eq!(a.media[0].red_pt, Some(63));
    assert_eq!(
        a.media[0].codec.fmtp.as_deref(),
        Some("minptime=10;useinbandfec=1;usedtx=1")
    );
    // RED around another payload type is not taken.
    let red_elsewhere = CHROME_WHIP.replace("a=fmtp:63 111/111", "a=fmtp:63 111/9");
    let a = publish(&red_elsewhere).unwrap();
    assert_eq!(parse(&a.sdp).media[0].formats, vec!["111"]);
    assert_eq!(a.media[0].red_pt, None);
}

#[test]
fn publish_renegotiation_keeps_the_offered_ids() {
    let first = publish(CHROME_WHIP).unwrap();
    // A renegotiated offer from the same browser: same mids and ids.
    let again = CHROME_WHIP.replace("o=- 4215775240449105457 2", "o=- 4215775240449105457 3");
    let second = publish(&again).unwrap();
    for (x, y) in first.media.iter().zip(&second.media) {
        assert_eq!((x.ext, x.rtx_pt, x.feedback), (y.ext, y.rtx_pt, y.feedback));
    }
    let (a, b) = (parse(&first.sdp), parse(&second.sdp));
    for (x, y) in a.media.iter().zip(&b.media) {
        assert_eq!(x.extmaps(&a), y.extmaps(&b));
        assert_eq!(x.formats, y.formats);
    }
}

/// Keeps only the listed payload types on the video m-line.
fn only_video_formats(sdp: &str, formats: &str) -> String {
    let line = sdp.lines().find(|l| l.starts_with("m=video")).unwrap();
    sdp.replace(line, &format!("m=video 9 UDP/TLS/RTP/SAVPF {formats}\r"))
}

#[test]
fn h264_only_offer_picks_constrained_baseline_mode_1() {
    let offer = only_video_formats(CHROME_WHIP, "104 105 127 125 106 107 102 103 112 113");
    let a = publish(&offer).unwrap();
    let v = &a.media[1];
    assert_eq!(v.codec.name, "H264");
    assert_eq!(
        v.codec.pt, 106,
        "first constrained-baseline, packetization-mode=1 in offer order"
    );
    let fmtp = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";
    assert_eq!(v.codec.fmtp.as_deref(), Some(fmtp));
    let answer = check_answer_shape(&a.sdp, "0 1");
    assert_eq!(answer.media[1].formats, vec!["106", "107"]);
    assert_eq!(answer.media[1].fmtp(106), Some(fmtp));
    assert_eq!(answer.media[1].fmtp(107), Some("apt=106"));
    assert_eq!(v.rtx_pt, Some(107));

    // With no baseline flavour at all, any packetization-mode=1 H264 will do.
    let a = publish(&only_video_formats(CHROME_WHIP, "104 112 39")).unwrap();
    assert_eq!(a.media[1].codec.pt, 112);
}

#[test]
fn unsupported_video_is_rejected_but_audio_kept() {
    // H264 with packetization-mode=0 first; VP9 and AV1 are taken only
    // when offered first (an SVC publisher's choice).
    let offer = only_video_formats(CHROME_WHIP, "104 99 98 45");
    let a = publish(&offer).unwrap();
    let answer = check_answer_shape(&a.sdp, "0");
    let video = &answer.media[1];
    assert!(video.is_rejected());
    assert_eq!(video.formats, vec!["104", "99", "98", "45"]);
    assert_eq!(video.mid(), Some("1"));
    assert_eq!(a.media.len(), 1);
}

#[test]
fn firefox_whip_answer() {
    let a = publish(FIREFOX_WHIP).unwrap();
    let answer = check_answer_shape(&a.sdp, "0 1");
    assert_eq!(answer.media.len(), 3);
    assert_eq!(answer.media[0].formats, vec!["109"]);
    assert_eq!(answer.media[1].formats, vec!["120", "124"]);
    let dc = &answer.media[2];
    assert!(dc.is_rejected());
    assert_eq!(
        (dc.kind.as_str(), dc.proto.as_str()),
        ("application", "UDP/DTLS/SCTP")
    );
    assert_eq!(dc.formats, vec!["webrtc-datachannel"]);
    assert_eq!(dc.mid(), Some("2"));
    assert_eq!(a.remote.fingerprint.1.get(..5), Some("5C:0E"));
    assert_eq!(a.remote.ice_ufrag, "8c2e4f1a");
    let v = &a.media[1];
    assert_eq!(
        (v.ssrc, v.rtx_ssrc, v.rtx_pt, v.ext.mid),
        (Some(3962342061), Some(2360540391), Some(124), Some(3))
    );
    assert_eq!(
        v.codec.rtcp_fb,
        vec!["nack", "nack pli", "ccm fir", "transport-cc"]
    );
    // playout-delay is a=extmap:6/recvonly: Firefox would only receive it,
    // and sfud sends nothing on a publisher's PeerConnection.
    assert_eq!(
        v.ext,
        ExtIds {
            mid: Some(3),
            abs_send_time: Some(4),
            transport_cc: Some(7),
            ..Default::default()
        }
    );
    assert_eq!(
        a.media[0].ext,
        ExtIds {
            mid: Some(3),
            audio_level: Some(1),
            ..Default::default()
        }
    );
    // No transport-cc on Firefox's audio: no feedback of that kind there.
    assert_eq!(a.media[0].feedback, Feedback::default());
    assert_eq!(
        a.media[0].codec.fmtp.as_deref(),
        Some("maxplaybackrate=48000;stereo=1;useinbandfec=1")
    );
}

#[test]
fn publish_errors() {
    let err = publish(DATACHANNEL_ONLY).unwrap_err();
    assert!(matches!(err, NegotiationError::NoUsableMedia(_)), "{err}");
    assert!(err.to_string().contains("application"), "{err}");

    let no_fp: String = CHROME_WHIP
        .lines()
        .filter(|l| !l.starts_with("a=fingerprint"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        publish(&no_fp).unwrap_err(),
        NegotiationError::MissingFingerprint { mid: "0".into() }
    );

    let sha1 = CHROME_WHIP.replace("a=fingerprint:sha-256", "a=fingerprint:sha-1");
    assert!(matches!(
        publish(&sha1).unwrap_err(),
        NegotiationError::UnsupportedFingerprint { .. }
    ));

    let short = CHROME_WHIP.replace("1F:32:5E:", "");
    assert!(matches!(
        publish(&short).unwrap_err(),
        NegotiationError::BadFingerprint { .. }
    ));

    let passive = CHROME_WHIP.replace("a=setup:actpass", "a=setup:passive");
    let err = publish(&passive).unwrap_err();
    assert_eq!(
        err,
        NegotiationError::BadSetup {
            mid: "0".into(),
            setup: "passive".into()
        }
    );
    assert!(err.to_string().contains("actpass"));

    let active = CHROME_WHIP.replace("a=setup:actpass", "a=setup:active");
    assert_eq!(publish(&active).unwrap().remote.setup, "active");

    let no_mux = CHROME_WHIP.replace("a=rtcp-mux\r\n", "");
    assert!(matches!(
        publish(&no_mux).unwrap_err(),
        NegotiationError::RtcpMuxRequired { .. }
    ));

    let no_ice = CHROME_WHIP.replace("a=ice-pwd:", "a=x-ice-pwd:");
    assert!(matches!(
        publish(&no_ice).unwrap_err(),
        NegotiationError::MissingIceCredentials { .. }
    ));

    let bad_ufrag = CHROME_WHIP.replace("a=ice-ufrag:Vw3Z", "a=ice-ufrag:Vw:3Z");
    assert!(matches!(
        publish(&bad_ufrag).unwrap_err(),
        NegotiationError::BadIceCredentials { .. }
    ));

    let no_bundle = CHROME_WHIP.replace("a=group:BUNDLE 0 1\r\n", "");
    assert_eq!(
        publish(&no_bundle).unwrap_err(),
        NegotiationError::BundleRequired
    );

    let recvonly = CHROME_WHIP.replace("a=sendonly", "a=recvonly");
    let err = publish(&recvonly).unwrap_err();
    assert!(err.to_string().contains("recvonly"), "{err}");

    let dup_mid = CHROME_WHIP.replace("a=mid:1", "a=mid:0");
    assert!(matches!(
        publish(&dup_mid).unwrap_err(),
        NegotiationError::InvalidOffer(_)
    ));

    let mut no_candidates = local();
    no_candidates.udp_candidates.clear();
    no_candidates.tcp_candidates.clear();
    assert_eq!(
        answer_publish(&parse(CHROME_WHIP), &no_candidates).unwrap_err(),
        NegotiationError::NoLocalCandidates
    );
}

#[test]
fn publish_single_unbundled_section_and_outside_group() {
    // One audio section and no BUNDLE at all: fine, and no group is written.
    let audio_only: String = CHROME_WHIP
        .split("m=video")
        .next()
        .unwrap()
        .replace("a=group:BUNDLE 0 1\r\n", "");
    let a = publish(&audio_only).unwrap();
    let answer = parse(&a.sdp);
    assert!(answer.bundle_groups().is_empty());
    assert_eq!(a.media.len(), 1);

    // Video left out of the group is rejected rather than given its own transport.
    let outside = CHROME_WHIP.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0");
    let a = publish(&outside).unwrap();
    let answer = check_answer_shape(&a.sdp, "0");
    assert!(answer.media[1].is_rejected());
}

fn tracks() -> Vec<OfferedTrack> {
    vec![
        OfferedTrack {
            kind: MediaKind::Video,
            codec: Codec {
                pt: 106,
                name: "H264".into(),
                clock_rate: 90000,
                channels: 1,
                fmtp: Some(
                    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f".into(),
                ),
                rtcp_fb: vec!["nack".into()],
            },
            ssrc: 0x1111_2222,
            rtx_ssrc: Some(0x1111_2224),
            red: false,
            cname: "sfud-cname".into(),
            stream_id: "room1-alice".into(),
            track_id: "alice-cam".into(),
        },
        OfferedTrack {
            kind: MediaKind::Audio,
            codec: Codec {
                pt: 109,
                name: "opus".into(),
                clock_rate: 48000,
                channels: 2,
                fmtp: Some("stereo=1".into()),
                rtcp_fb: vec![],
            },
            ssrc: 0x3333_4444,
            rtx_ssrc: None,
            red: false,
            cname: "sfud-cname".into(),
            stream_id: "room1-alice".into(),
            track_id: "alice-mic".into(),
        },
    ]
}

#[test]
fn chrome_whep_answer() {
    let offer = parse(CHROME_WHEP);
    let a = answer_subscribe(&offer, &local(), &tracks()).unwrap();
    let answer = check_answer_shape(&a.sdp, "0 1");
    let (audio, video) = (&answer.media[0], &answer.media[1]);
    for m in [audio, video] {
        assert_eq!(m.direction(&answer), Direction::SendOnly);
        assert_eq!(m.msid().map(|(s, _)| s), Some("room1-alice"));
    }
    assert_eq!(
        audio.extmaps(&answer),
        vec![
            (1, AUDIO_LEVEL_URI),
            (2, ABS_SEND_TIME_URI),
            (3, TRANSPORT_CC_URI),
            (4, SDES_MID_URI)
        ]
    );
    assert_eq!(video.extmaps(&answer), vec![(4, SDES_MID_URI)]);
    assert_eq!(audio.formats, vec!["111"]);
    assert_eq!(audio.rtcp_fbs(111), vec!["transport-cc"]);
    assert_eq!(audio.ssrcs(), vec![0x3333_4444]);
    assert!(audio.ssrc_groups().is_empty());
    assert_eq!(
        values(audio, "ssrc"),
        vec![
            "858997828 cname:sfud-cname",
            "858997828 msid:room1-alice alice-mic"
        ]
    );
    assert_eq!(audio.msid(), Some(("room1-alice", Some("alice-mic"))));
    // Viewer offered 42001f (102) before 42e01f (106); the exact profile
    // wins, with the rtx the viewer gave it (107, not 103).
    assert_eq!(video.formats, vec!["106", "107"]);
    assert_eq!(video.rtpmap(107).unwrap().name, "rtx");
    assert_eq!(video.fmtp(107), Some("apt=106"));
    assert_eq!(video.rtcp_fbs(106), vec!["nack", "nack pli"]);
    assert_eq!(video.ssrcs(), vec![0x1111_2222, 0x1111_2224]);
    assert_eq!(
        video.ssrc_groups(),
        vec![SsrcGroup {
            semantics: "FID".into(),
            ssrcs: vec![0x1111_2222, 0x1111_2224]
        }]
    );
    assert_eq!(
        values(video, "ssrc"),
        vec![
            "286335522 cname:sfud-cname",
            "286335522 msid:room1-alice alice-cam",
            "286335524 cname:sfud-cname",
            "286335524 msid:room1-alice alice-cam",
        ]
    );

    assert_eq!(a.remote.ice_ufrag, "kP0q");
    assert_eq!(a.media.len(), 2);
    let (sa, sv) = (&a.media[0], &a.media[1]);
    assert_eq!(
        (sa.mid.as_str(), sa.kind, sa.track_index, sa.ssrc, sa.rtx),
        ("0", MediaKind::Audio, 1, 0x3333_4444, None)
    );
    assert_eq!(sa.codec.pt, 111);
    // The viewer's opus fmtp is echoed: in-band FEC stays on.
    assert_eq!(sa.codec.fmtp.as_deref(), Some("minptime=10;useinbandfec=1"));
    assert_eq!(
        sa.ext,
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
        sa.feedback,
        Feedback {
            nack: false,
            transport_cc: true,
            remb: false
        }
    );
    assert_eq!(
        (sv.mid.as_str(), sv.track_index, sv.codec.pt),
        ("1", 0, 106)
    );
    assert_eq!(sv.codec.name, "H264");
    assert_eq!(
        sv.rtx,
        Some(RtxSpec {
            ssrc: 0x1111_2224,
            payload_type: 107
        })
    );
    assert_eq!(
        sv.ext,
        ExtIds {
            mid: Some(4),
            allow_mixed: true,
            ..Default::default()
        }
    );
    assert_eq!(
        sv.feedback,
        Feedback {
            nack: true,
            transport_cc: false,
            remb: false
        }
    );
}

#[test]
fn whep_remb_without_the_transport_cc_extension() {
    // CHROME_WHEP offers transport-cc feedback for VP8 but the extension
    // only on audio: the video section keeps goog-remb.
    let offer = parse(CHROME_WHEP);
    let a = answer_subscribe(&offer, &local(), &[vp8_track(&["nack"])]).unwrap();
    let answer = parse(&a.sdp);
    let video = &answer.media[1];
    assert_eq!(video.formats, vec!["96", "97"]);
    assert_eq!(
        video.rtcp_fbs(96),
        vec!["goog-remb", "ccm fir", "nack", "nack pli"]
    );
    assert!(!video
        .extmaps(&answer)
        .iter()
        .any(|(_, uri)| *uri == TRANSPORT_CC_URI));
    let sv = &a.media[0];
    assert_eq!(
        sv.feedback,
        Feedback {
            nack: true,
            transport_cc: false,
            remb: true
        }
    );
    assert_eq!(sv.ext.transport_cc, None);
}

#[test]
fn chromium_whep_with_every_extension() {
    let offer = parse(CHROMIUM_WHEP_FULL);
    let a = answer_subscribe(&offer, &local(), &[vp8_track(&["nack"]), tracks()[1].clone()]).unwrap();
    let answer = check_answer_shape(&a.sdp, "0 1");
    let video = &answer.media[1];
    assert_eq!(video.formats, vec!["96", "97"]);
    assert_eq!(
        video.rtcp_fbs(96),
        vec!["transport-cc", "ccm fir", "nack", "nack pli"]
    );
    // rid and repaired-rid are a publisher's business; the rest is echoed.
    assert_eq!(
        video.extmaps(&answer),
        vec![
            (2, ABS_SEND_TIME_URI),
            (13, VIDEO_ORIENTATION_URI),
            (3, TRANSPORT_CC_URI),
            (5, PLAYOUT_DELAY_URI),
            (6, VIDEO_CONTENT_TYPE_URI),
            (4, SDES_MID_URI),
            (9, DEPENDENCY_DESCRIPTOR_URI)
        ]
    );
    let sv = a.media.iter().find(|m| m.kind == MediaKind::Video).unwrap();
    assert_eq!(
        sv.ext,
        ExtIds {
            mid: Some(4),
            abs_send_time: Some(2),
            transport_cc: Some(3),
            audio_level: None,
            video_orientation: Some(13),
            playout_delay: Some(5),
            video_content_type: Some(6),
            dependency_descriptor: Some(9),
            rid: None,
            repaired_rid: None,
            allow_mixed: true,
        }
    );
    assert_eq!(
        sv.feedback,
        Feedback {
            nack: true,
            transport_cc: true,
            remb: false
        }
    );
    assert_eq!(
        sv.rtx,
        Some(RtxSpec {
            ssrc: 0x5555_6668,
            payload_type: 97
        })
    );
    // Opus with DTX and FEC as the viewer asked; no RED.
    let audio = &answer.media[0];
    assert_eq!(audio.formats, vec!["111"]);
    assert_eq!(audio.fmtp(111), Some("minptime=10;usedtx=1;useinbandfec=1"));
}

#[test]
fn whep_offer_without_rtx_or_extensions() {
    let bare: String = CHROME_WHEP
        .lines()
        .filter(|l| !l.starts_with("a=extmap") && !l.contains("apt=") && !l.contains("rtx/"))
        .map(|l| format!("{l}\n"))
        .collect();
    let a = answer_subscribe(&parse(&bare), &local(), &tracks()).unwrap();
    let answer = check_answer_shape(&a.sdp, "0 1");
    for m in &answer.media {
        assert!(m.extmaps(&answer).is_empty());
        assert!(m.ssrc_groups().is_empty());
        assert_eq!(m.formats.len(), 1);
    }
    assert_eq!(answer.media[1].ssrcs(), vec![0x1111_2222]);
    for m in &a.media {
        assert_eq!((m.rtx, m.ext), (None, ExtIds::default()));
    }
    // Audio offered transport-cc feedback, but without the extension it is not answered.
    assert!(answer.media[0].rtcp_fbs(111).is_empty());
    assert_eq!(a.media[0].feedback, Feedback::default());
}

#[test]
fn whep_audio_gets_no_rtx_even_if_offered() {
    let offer = CHROME_WHEP.replace(
        "a=rtpmap:63 red/48000/2",
        "a=rtpmap:63 rtx/48000\na=fmtp:63 apt=111",
    );
    let offer = offer.replace("a=fmtp:63 111/111\n", "");
    let mut t = tracks();
    t[1].rtx_ssrc = Some(77);
    let a = answer_subscribe(&parse(&offer), &local(), &t).unwrap();
    let answer = parse(&a.sdp);
    assert_eq!(answer.media[0].formats, vec!["111"]);
    assert_eq!(a.media[0].rtx, None);
}

#[test]
fn whep_sections_without_a_track_are_inactive() {
    let offer = parse(CHROME_WHEP);
    let audio_only = &tracks()[1..];
    let a = answer_subscribe(&offer, &local(), audio_only).unwrap();
    let answer = check_answer_shape(&a.sdp, "0 1");
    let video = &answer.media[1];
    assert!(!video.is_rejected());
    assert_eq!(video.direction(&answer), Direction::Inactive);
    assert_eq!(video.formats, vec!["96"]);
    assert_eq!(values(video, "rtpmap"), vec!["96 VP8/90000"]);
    assert!(video.ssrcs().is_empty());
    assert_eq!(a.media.len(), 1);
    assert_eq!(a.media[0].track_index, 0);
}

#[test]
fn whep_two_tracks_one_section() {
    let offer = parse(CHROME_WHEP);
    let mut two_audio = tracks();
    two_audio[0] = OfferedTrack {
        ssrc: 9,
        track_id: "bob-mic".into(),
        ..two_audio[1].clone()
    };
    let a = answer_subscribe(&offer, &local(), &two_audio).unwrap();
    assert_eq!(a.media.len(), 1);
    assert_eq!(
        (a.media[0].track_index, a.media[0].ssrc),
        (0, 9),
        "first unassigned track of the kind"
    );
}

#[test]
fn whep_errors() {
    let offer = parse(CHROME_WHEP);
    let err = answer_subscribe(&offer, &local(), &[]).unwrap_err();
    assert!(matches!(err, NegotiationError::NoUsableMedia(_)));

    // A viewer that cannot decode H264 and a stream that has only H264 video.
    let vp8_only = parse(&only_video_formats(CHROME_WHEP, "96 97"));
    let err = answer_subscribe(&vp8_only, &local(), &tracks()[..1]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, NegotiationError::NoUsableMedia(_)));
    assert!(
        msg.contains("VP8/90000") && msg.contains("H264/90000") && msg.contains("42e01f"),
        "{msg}"
    );

    let sendonly = parse(&CHROME_WHEP.replace("a=recvonly", "a=sendonly"));
    let err = answer_subscribe(&sendonly, &local(), &tracks()).unwrap_err();
    assert!(err.to_string().contains("recvonly or sendrecv"), "{err}");

    let dc = parse(DATACHANNEL_ONLY);
    assert!(matches!(
        answer_subscribe(&dc, &local(), &tracks()),
        Err(NegotiationError::NoUsableMedia(_))
    ));

    let no_fp = parse(&CHROME_WHEP.replace("a=fingerprint", "a=x-fingerprint"));
    assert!(matches!(
        answer_subscribe(&no_fp, &local(), &tracks()),
        Err(NegotiationError::MissingFingerprint { .. })
    ));
}

#[test]
fn whep_ids_cannot_break_lines() {
    let offer = parse(CHROME_WHEP);
    let mut t = tracks();
    t[1].stream_id = "evil\r\na=injected x".into();
    let a = answer_subscribe(&offer, &local(), &t).unwrap();
    assert!(!a.sdp.contains("\na=injected"));
    let answer = parse(&a.sdp);
    assert_eq!(
        answer.media[0].msid(),
        Some(("evila=injectedx", Some("alice-mic")))
    );
}

#[test]
fn whep_red_passes_through_only_when_the_track_and_the_viewer_have_it() {
    let offer = parse(CHROME_WHEP);
    let mut t = tracks();
    // The publisher sends plain opus: the viewer's RED offer is not used.
    let a = answer_subscribe(&offer, &local(), &t).unwrap();
    assert_eq!(parse(&a.sdp).media[0].formats, vec!["111"]);
    assert_eq!(a.media[0].red_pt, None);
    // The publisher sends RED and the viewer offered RED around its opus.
    t[1].red = true;
    let a = answer_subscribe(&offer, &local(), &t).unwrap();
    let answer = parse(&a.sdp);
    assert_eq!(answer.media[0].formats, vec!["63", "111"]);
    assert_eq!(answer.media[0].fmtp(63), Some("111/111"));
    assert_eq!(a.media[0].red_pt, Some(63));
    // A viewer without RED gets opus; the dataplane sends it the primary.
    let no_red = CHROME_WHEP.replace("a=rtpmap:63 red/48000/2\n", "").replace("a=fmtp:63 111/111\n", "");
    let a = answer_subscribe(&parse(&no_red), &local(), &t).unwrap();
    assert_eq!(a.media[0].red_pt, None);
}
