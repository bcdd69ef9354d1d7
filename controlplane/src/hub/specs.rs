//! The dataplane's track specs, from what the SDP layer negotiated: the
//! peer's own ids, payload types, RTX and feedback, nothing assumed.

use dataplane::msg::{CodecKind, DowntrackSpec, MediaKind, SessionId, TrackId, UptrackSpec};

use crate::sdp::{AnsweredTrack, PublishedMedia, SubscribedMedia};

/// sfud's RTX SSRC for a new downtrack: video only, as only video gets RTX.
/// Even, so it never equals a primary SSRC (those are odd), and never 0;
/// the SDP layer skips a track whose SSRCs collide with another's anyway.
pub(super) fn rtx_ssrc_for(kind: MediaKind) -> Option<u32> {
    (kind == MediaKind::Video).then(|| (rand::random::<u32>() | 2) & !1)
}

/// A publisher's section as an uptrack.
pub(super) fn uptrack(track: TrackId, session: SessionId, m: &PublishedMedia) -> UptrackSpec {
    UptrackSpec {
        track,
        session,
        kind: m.kind,
        codec: CodecKind::from_name(&m.codec.name),
        payload_type: m.codec.pt,
        clock_rate: m.codec.clock_rate,
        ssrc: m.ssrc,
        mid: m.mid.clone(),
        // The FID partner only carries repairs if the rtx payload type was answered.
        rtx_ssrc: m.rtx_pt.and(m.rtx_ssrc),
        rtx_payload_type: m.rtx_pt,
        red_payload_type: m.red_pt,
        ext: m.ext,
        feedback: m.feedback,
        layers: m.layers.clone(),
    }
}

/// A WHEP viewer's section carrying `track`.
pub(super) fn whep_downtrack(session: SessionId, track: TrackId, m: &SubscribedMedia) -> DowntrackSpec {
    DowntrackSpec {
        session,
        track,
        kind: m.kind,
        ssrc: m.ssrc,
        payload_type: m.codec.pt,
        clock_rate: m.codec.clock_rate,
        mid: m.mid.clone(),
        rtx: m.rtx,
        red_payload_type: m.red_pt,
        ext: m.ext,
        feedback: m.feedback,
        priority: 0,
    }
}

/// A room subscriber's answered section carrying `track`.
pub(super) fn room_downtrack(session: SessionId, track: TrackId, t: &AnsweredTrack) -> DowntrackSpec {
    DowntrackSpec {
        session,
        track,
        kind: t.track.kind,
        ssrc: t.track.ssrc,
        payload_type: t.pt,
        clock_rate: t.track.codec.clock_rate,
        mid: t.mid.clone(),
        rtx: t.rtx,
        // sfud's room offers carry no RED: room subscribers get the primary.
        red_payload_type: None,
        ext: t.ext,
        feedback: t.feedback,
        priority: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::{
        answer_publish, answer_subscribe, ExtIds, Feedback, LocalIce, OfferedTrack, RtxSpec,
        SessionDescription, SubscriberOffer, TRANSPORT_CC_URI,
    };

    const FP: &str = "0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9";

    fn local() -> LocalIce {
        LocalIce {
            ufrag: "sfud".into(),
            pwd: "sfudPasswordThatIsLongEnough".into(),
            fingerprint_sha256: FP.into(),
            udp_candidates: vec!["203.0.113.7:7882".parse().unwrap()],
            tcp_candidates: vec![],
        }
    }

    /// A browser-shaped video section: VP8 with rtx 97, mid on 4 and
    /// transport-cc on 3, sending (publish) or receiving (play).
    fn video_offer(direction: &str, ssrcs: &str) -> SessionDescription {
        let sdp = format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\n\
             a=ice-ufrag:Vw3Z\r\na=ice-pwd:Ys3mBzQ0aJrT9mYw3t0dK8Lq\r\n\
             a=fingerprint:sha-256 {FP}\r\na=setup:actpass\r\na=mid:0\r\n\
             a=extmap:3 {TRANSPORT_CC_URI}\r\na=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
             a={direction}\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n\
             a=rtcp-fb:96 goog-remb\r\na=rtcp-fb:96 transport-cc\r\na=rtcp-fb:96 nack\r\n\
             a=rtcp-fb:96 nack pli\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n{ssrcs}"
        );
        SessionDescription::parse(&sdp).unwrap()
    }

    fn negotiated_ext() -> ExtIds {
        ExtIds { mid: Some(4), transport_cc: Some(3), ..Default::default() }
    }

    fn twcc_and_nack() -> Feedback {
        Feedback { nack: true, transport_cc: true, remb: false }
    }

    #[test]
    fn uptrack_carries_what_the_publisher_negotiated() {
        let offer = video_offer("sendonly", "a=ssrc-group:FID 1000 2000\r\na=ssrc:1000 cname:c\r\na=ssrc:2000 cname:c\r\n");
        let a = answer_publish(&offer, &local()).unwrap();
        let spec = uptrack(TrackId(7), SessionId(1), &a.media[0]);
        assert_eq!((spec.payload_type, spec.ssrc, spec.codec), (96, Some(1000), CodecKind::Vp8));
        assert_eq!((spec.rtx_ssrc, spec.rtx_payload_type), (Some(2000), Some(97)));
        assert_eq!(spec.ext, negotiated_ext());
        assert_eq!(spec.feedback, twcc_and_nack());

        // Without an rtx format answered, the FID partner is no repair stream.
        let no_rtx = video_offer("sendonly", "a=ssrc-group:FID 1000 2000\r\n");
        let mut no_rtx = no_rtx.clone();
        no_rtx.media[0].formats = vec!["96".into()];
        let a = answer_publish(&no_rtx, &local()).unwrap();
        let spec = uptrack(TrackId(7), SessionId(1), &a.media[0]);
        assert_eq!((spec.rtx_ssrc, spec.rtx_payload_type), (None, None));
    }

    fn vp8_track(ssrc: u32) -> OfferedTrack {
        OfferedTrack {
            kind: MediaKind::Video,
            codec: crate::sdp::Codec {
                pt: 100,
                name: "VP8".into(),
                clock_rate: 90000,
                channels: 1,
                fmtp: None,
                rtcp_fb: vec!["nack".into(), "nack pli".into()],
            },
            ssrc,
            rtx_ssrc: Some(ssrc + 1),
            red: false,
            cname: "c".into(),
            stream_id: "s".into(),
            track_id: "sfud-track-7".into(),
        }
    }

    #[test]
    fn whep_downtrack_carries_what_the_viewer_negotiated() {
        let offer = video_offer("recvonly", "");
        let a = answer_subscribe(&offer, &local(), &[vp8_track(501)]).unwrap();
        let spec = whep_downtrack(SessionId(2), TrackId(7), &a.media[0]);
        assert_eq!((spec.ssrc, spec.payload_type, spec.mid.as_str()), (501, 96, "0"));
        assert_eq!(spec.rtx, Some(RtxSpec { ssrc: 502, payload_type: 97 }));
        assert_eq!(spec.ext, negotiated_ext());
        assert_eq!(spec.feedback, twcc_and_nack());
    }

    #[test]
    fn room_downtrack_carries_what_the_browser_answered() {
        let mut sub = SubscriberOffer::new(local(), false);
        sub.set_tracks(&[vp8_track(601)]);
        let offer = SessionDescription::parse(&sub.create_offer()).unwrap();
        let m = &offer.media[0];
        assert_eq!(m.formats, vec!["100", "96"], "VP8 keeps the publisher's 100; rtx takes 96");
        // The browser keeps rtx and transport-cc, with sfud's ids.
        let answer = format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 100 96\r\nc=IN IP4 0.0.0.0\r\n\
             a=ice-ufrag:Vw3Z\r\na=ice-pwd:Ys3mBzQ0aJrT9mYw3t0dK8Lq\r\n\
             a=fingerprint:sha-256 {FP}\r\na=setup:active\r\na=mid:0\r\n\
             a=extmap:3 {TRANSPORT_CC_URI}\r\na=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
             a=recvonly\r\na=rtcp-mux\r\na=rtpmap:100 VP8/90000\r\na=rtcp-fb:100 transport-cc\r\n\
             a=rtcp-fb:100 nack\r\na=rtpmap:96 rtx/90000\r\na=fmtp:96 apt=100\r\n"
        );
        let r = sub.apply_answer(&SessionDescription::parse(&answer).unwrap()).unwrap();
        let spec = room_downtrack(SessionId(3), TrackId(7), &r.tracks[0]);
        assert_eq!((spec.ssrc, spec.payload_type), (601, 100));
        assert_eq!(spec.rtx, Some(RtxSpec { ssrc: 602, payload_type: 96 }));
        assert_eq!(spec.ext, negotiated_ext());
        assert_eq!(spec.feedback, twcc_and_nack());
    }

    #[test]
    fn rtx_ssrcs_are_video_only_even_and_nonzero() {
        assert_eq!(rtx_ssrc_for(MediaKind::Audio), None);
        for _ in 0..64 {
            let s = rtx_ssrc_for(MediaKind::Video).unwrap();
            assert!(s != 0 && s % 2 == 0);
        }
    }
}
