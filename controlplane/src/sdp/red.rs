//! RFC 2198 redundant audio around Opus (`red/48000/2`, fmtp `111/111`), as
//! Chromium offers it. A publisher's RED is accepted and put first in the
//! answer, so the browser sends it; a WHEP viewer that offered RED around
//! its Opus gets it passed through, others get the primary Opus (the
//! dataplane reduces it).

use super::codec::Codec;
use super::model::MediaDescription;

/// The offered `red/48000/2` payload type whose blocks are all `opus`'s
/// payload type (fmtp `P/P`, RFC 2198 §5), if any.
pub(crate) fn offered_red(m: &MediaDescription, opus: &Codec) -> Option<u8> {
    m.rtpmaps()
        .into_iter()
        .filter(|r| r.name.eq_ignore_ascii_case("red") && r.clock_rate == 48000 && r.pt != opus.pt)
        .find(|r| {
            let blocks = m.fmtp(r.pt).unwrap_or("");
            !blocks.is_empty() && blocks.split('/').all(|b| b.trim().parse::<u8>().ok() == Some(opus.pt))
        })
        .map(|r| r.pt)
}

/// The RED format on `red_pt` around `opus`, as it is described to a peer.
pub(crate) fn red_codec(red_pt: u8, opus: &Codec) -> Codec {
    Codec {
        pt: red_pt,
        name: "red".to_owned(),
        clock_rate: 48000,
        channels: 2,
        fmtp: Some(format!("{0}/{0}", opus.pt)),
        rtcp_fb: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::SessionDescription;

    fn audio(formats: &str, body: &str) -> MediaDescription {
        let sdp = format!("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF {formats}\r\n{body}");
        SessionDescription::parse(&sdp).unwrap().media.remove(0)
    }

    fn opus(pt: u8) -> Codec {
        Codec { pt, name: "opus".into(), clock_rate: 48000, channels: 2, fmtp: None, rtcp_fb: vec![] }
    }

    #[test]
    fn chromium_red_around_opus() {
        let m = audio(
            "111 63 9",
            "a=rtpmap:111 opus/48000/2\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\na=rtpmap:9 G722/8000\r\n",
        );
        assert_eq!(offered_red(&m, &opus(111)), Some(63));
        assert_eq!(red_codec(63, &opus(111)).fmtp.as_deref(), Some("111/111"));
    }

    #[test]
    fn red_around_another_codec_or_without_fmtp_is_not_taken() {
        let m = audio("111 63", "a=rtpmap:111 opus/48000/2\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/9\r\n");
        assert_eq!(offered_red(&m, &opus(111)), None);
        let m = audio("111 63", "a=rtpmap:111 opus/48000/2\r\na=rtpmap:63 red/48000/2\r\n");
        assert_eq!(offered_red(&m, &opus(111)), None);
    }
}
