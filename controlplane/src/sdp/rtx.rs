//! RTX (RFC 4588): the repair format that goes with a video codec. sfud
//! uses it both ways: publishers resend lost packets on it, and sfud resends
//! to subscribers on its own RTX SSRC. Audio gets none: a lost audio packet
//! is past its playout time before a resend could arrive.

use super::codec::{fmtp_param, Codec};
use super::model::{Attribute, MediaDescription};

/// The offered `rtx` payload type whose apt is `codec`'s (RFC 4588 §8.6),
/// at the codec's clock rate; the first one if several are.
pub(crate) fn offered_rtx(m: &MediaDescription, codec: &Codec) -> Option<u8> {
    let maps = m.rtpmaps();
    m.formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter(|pt| *pt != codec.pt)
        .find(|pt| {
            let is_rtx = maps.iter().any(|r| {
                r.pt == *pt
                    && r.name.eq_ignore_ascii_case("rtx")
                    && r.clock_rate == codec.clock_rate
            });
            is_rtx && apt(m, *pt) == Some(codec.pt)
        })
}

fn apt(m: &MediaDescription, rtx_pt: u8) -> Option<u8> {
    m.fmtp(rtx_pt)
        .and_then(|f| fmtp_param(f, "apt"))
        .and_then(|v| v.parse().ok())
}

/// The repair format of `codec` on payload type `rtx_pt`, as it is
/// described to its peer.
pub(crate) fn rtx_codec(rtx_pt: u8, codec: &Codec) -> Codec {
    Codec {
        pt: rtx_pt,
        name: "rtx".to_owned(),
        clock_rate: codec.clock_rate,
        channels: 1,
        fmtp: Some(format!("apt={}", codec.pt)),
        rtcp_fb: Vec::new(),
    }
}

/// `a=ssrc-group:FID <primary> <repair>` (RFC 5576 §4.2, RFC 4588 §8.4).
pub(crate) fn fid_group(primary: u32, repair: u32) -> Attribute {
    Attribute::with_value("ssrc-group", format!("FID {primary} {repair}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::SessionDescription;

    fn video(body: &str, formats: &str) -> MediaDescription {
        let sdp = format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF {formats}\r\n{body}"
        );
        SessionDescription::parse(&sdp).unwrap().media.remove(0)
    }

    fn vp8(pt: u8) -> Codec {
        Codec {
            pt,
            name: "VP8".into(),
            clock_rate: 90000,
            channels: 1,
            fmtp: None,
            rtcp_fb: vec![],
        }
    }

    const BODY: &str = "a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
        a=rtpmap:98 VP9/90000\r\na=rtpmap:99 rtx/90000\r\na=fmtp:99 apt=98\r\n\
        a=rtpmap:100 rtx/48000\r\na=fmtp:100 apt=102\r\na=rtpmap:102 H264/90000\r\n";

    #[test]
    fn finds_the_rtx_of_the_chosen_codec_only() {
        let m = video(BODY, "96 97 98 99 100 102");
        assert_eq!(offered_rtx(&m, &vp8(96)), Some(97));
        assert_eq!(offered_rtx(&m, &vp8(98)), Some(99));
        assert_eq!(offered_rtx(&m, &vp8(102)), None, "wrong clock rate");
        assert_eq!(offered_rtx(&m, &vp8(111)), None);
        // Not on the m-line: not offered.
        let m = video(BODY, "96 98 99");
        assert_eq!(offered_rtx(&m, &vp8(96)), None);
        // An apt that names itself is nonsense.
        let m = video("a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=97\r\n", "97");
        assert_eq!(offered_rtx(&m, &vp8(97)), None);
        let m = video("a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=x\r\n", "96 97");
        assert_eq!(offered_rtx(&m, &vp8(96)), None);
    }

    #[test]
    fn describes_the_repair_format() {
        let c = rtx_codec(97, &vp8(96));
        assert_eq!(
            (c.name.as_str(), c.clock_rate, c.fmtp.as_deref()),
            ("rtx", 90000, Some("apt=96"))
        );
        assert_eq!(
            fid_group(1, 2),
            Attribute::with_value("ssrc-group", "FID 1 2")
        );
    }
}
