//! Codec identity and compatibility: which offered payload types sfud can
//! forward, and whether a publisher's stream can go to a viewer unchanged
//! (an SFU never transcodes, so "compatible" means "decodable as is").

use super::model::{MediaDescription, RtpMap};

/// The media kind is a domain type shared with the dataplane; SDP only names it.
pub use dataplane::msg::MediaKind;


#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codec {
    pub pt: u8,
    /// Canonical spelling: "opus", "VP8", "H264".
    pub name: String,
    pub clock_rate: u32,
    pub channels: u8,
    pub fmtp: Option<String>,
    pub rtcp_fb: Vec<String>,
}

/// The RTCP feedback sfud implements; anything else is left out of answers
/// and offers. transport-cc and goog-remb are further settled against the
/// header extensions (see `feedback::settle`).
pub(crate) const SUPPORTED_FEEDBACK: [&str; 5] =
    ["nack", "nack pli", "ccm fir", "goog-remb", "transport-cc"];

/// The offered feedback for a payload type that sfud supports, deduplicated,
/// in canonical spelling and offer order.
pub(crate) fn supported_feedback(m: &MediaDescription, pt: u8) -> Vec<String> {
    known_feedback(m.rtcp_fbs(pt))
}

/// The feedback types among `fbs` that sfud handles, canonically spelled,
/// deduplicated, in the given order.
pub(crate) fn known_feedback<'a>(fbs: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for fb in fbs {
        let normalized = fb.split_whitespace().collect::<Vec<_>>().join(" ");
        if let Some(known) = SUPPORTED_FEEDBACK
            .iter()
            .find(|k| k.eq_ignore_ascii_case(&normalized))
        {
            if !out.iter().any(|o| o == known) {
                out.push((*known).to_owned());
            }
        }
    }
    out
}

/// Value of `key` in an fmtp parameter list `a=1;b=2` (RFC 8866 §6.15).
pub(crate) fn fmtp_param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
    })
}

/// RFC 6184 §8.1: absent means single NAL unit mode.
fn packetization_mode(fmtp: Option<&str>) -> u8 {
    fmtp.and_then(|f| fmtp_param(f, "packetization-mode"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// H.264 profiles as decoders care about them (RFC 6184 §8.1, and H.264 A.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum H264Profile {
    ConstrainedBaseline,
    Baseline,
    Main,
    ConstrainedHigh,
    High,
    Other(u8),
}

fn h264_profile(fmtp: Option<&str>) -> Option<H264Profile> {
    // RFC 6184 §8.1: absent means 42000A, Baseline level 1.0.
    let id = fmtp
        .and_then(|f| fmtp_param(f, "profile-level-id"))
        .unwrap_or("42000a");
    if id.len() != 6 {
        return None;
    }
    let idc = u8::from_str_radix(id.get(0..2)?, 16).ok()?;
    let iop = u8::from_str_radix(id.get(2..4)?, 16).ok()?;
    u8::from_str_radix(id.get(4..6)?, 16).ok()?;
    let set0 = iop & 0x80 != 0;
    let set1 = iop & 0x40 != 0;
    let set4_5 = iop & 0x0c == 0x0c;
    Some(match idc {
        0x42 if set1 => H264Profile::ConstrainedBaseline,
        0x42 => H264Profile::Baseline,
        0x4d if set0 => H264Profile::ConstrainedBaseline,
        0x4d => H264Profile::Main,
        0x58 if set0 && set1 => H264Profile::ConstrainedBaseline,
        0x64 if set4_5 => H264Profile::ConstrainedHigh,
        0x64 => H264Profile::High,
        other => H264Profile::Other(other),
    })
}

/// Whether a viewer that offered `viewer` can decode a stream encoded as `track`.
fn h264_profile_compatible(track: H264Profile, viewer: H264Profile) -> bool {
    use H264Profile::*;
    // WebRTC encoders never use the Baseline-only tools (FMO, ASO), so the two
    // baseline flavours are interchangeable in practice, as libwebrtc treats them.
    let baseline = |p| matches!(p, ConstrainedBaseline | Baseline);
    track == viewer
        || (baseline(track) && baseline(viewer))
        || (track == ConstrainedHigh && viewer == High)
}

/// Ranks an offered H264 payload type for a publisher: None if sfud cannot
/// forward it, lower is better.
pub(crate) fn h264_publish_rank(fmtp: Option<&str>) -> Option<u8> {
    if packetization_mode(fmtp) != 1 {
        return None;
    }
    let id = fmtp
        .and_then(|f| fmtp_param(f, "profile-level-id"))
        .unwrap_or("42000a");
    if id.eq_ignore_ascii_case("42e01f") || id.eq_ignore_ascii_case("42001f") {
        return Some(0);
    }
    match h264_profile(fmtp)? {
        H264Profile::ConstrainedBaseline | H264Profile::Baseline => Some(1),
        _ => Some(2),
    }
}

/// How well a viewer's offered rtpmap/fmtp fits `track`: None if the viewer
/// cannot decode it unchanged, else lower is better (0 = same H264 profile,
/// 1 = a compatible one).
pub(crate) fn viewer_match(
    track: &Codec,
    viewer: &RtpMap,
    viewer_fmtp: Option<&str>,
) -> Option<u8> {
    if !track.name.eq_ignore_ascii_case(&viewer.name) || track.clock_rate != viewer.clock_rate {
        return None;
    }
    if track.name.eq_ignore_ascii_case("opus") && track.channels != viewer.channels {
        return None;
    }
    if !track.name.eq_ignore_ascii_case("H264") {
        return Some(0);
    }
    let track_fmtp = track.fmtp.as_deref();
    if packetization_mode(track_fmtp) != packetization_mode(viewer_fmtp) {
        return None;
    }
    let (t, v) = (h264_profile(track_fmtp)?, h264_profile(viewer_fmtp)?);
    if t == v {
        Some(0)
    } else if h264_profile_compatible(t, v) {
        Some(1)
    } else {
        None
    }
}

/// Whether a viewer that negotiated `viewer` (the codec its answer holds,
/// with the viewer's payload type) can go on decoding a new source encoded
/// as `source`, with no renegotiation: a WHEP viewer following a
/// republished livestream.
pub fn decodes_unchanged(viewer: &Codec, source: &Codec) -> bool {
    let as_rtpmap = RtpMap {
        pt: viewer.pt,
        name: viewer.name.clone(),
        clock_rate: viewer.clock_rate,
        channels: viewer.channels,
    };
    viewer_match(source, &as_rtpmap, viewer.fmtp.as_deref()).is_some()
}

/// Canonical name for the codecs sfud forwards, so comparisons and answers
/// do not depend on the offerer's capitalisation.
pub(crate) fn canonical_name(name: &str) -> String {
    for known in ["opus", "VP8", "VP9", "H264", "AV1"] {
        if name.eq_ignore_ascii_case(known) {
            return known.to_owned();
        }
    }
    name.to_owned()
}

/// "H264/90000 (packetization-mode=1, profile-level-id=42e01f)" for messages.
pub(crate) fn describe(name: &str, clock_rate: u32, channels: u8, fmtp: Option<&str>) -> String {
    let mut s = format!("{name}/{clock_rate}");
    if channels > 1 {
        s.push_str(&format!("/{channels}"));
    }
    if name.eq_ignore_ascii_case("H264") {
        let plid = fmtp
            .and_then(|f| fmtp_param(f, "profile-level-id"))
            .unwrap_or("42000a");
        s.push_str(&format!(
            " (packetization-mode={}, profile-level-id={plid})",
            packetization_mode(fmtp)
        ));
    }
    s
}

impl Codec {
    pub(crate) fn describe(&self) -> String {
        describe(
            &self.name,
            self.clock_rate,
            self.channels,
            self.fmtp.as_deref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h264(fmtp: &str) -> Codec {
        Codec {
            pt: 102,
            name: "H264".into(),
            clock_rate: 90000,
            channels: 1,
            fmtp: Some(fmtp.into()),
            rtcp_fb: vec![],
        }
    }

    fn map(name: &str, clock_rate: u32, channels: u8) -> RtpMap {
        RtpMap {
            pt: 100,
            name: name.into(),
            clock_rate,
            channels,
        }
    }

    #[test]
    fn fmtp_params() {
        let f = "level-asymmetry-allowed=1; packetization-mode=1;profile-level-id=42e01f";
        assert_eq!(fmtp_param(f, "packetization-mode"), Some("1"));
        assert_eq!(fmtp_param(f, "PROFILE-LEVEL-ID"), Some("42e01f"));
        assert_eq!(fmtp_param(f, "x"), None);
        assert_eq!(packetization_mode(None), 0);
    }

    #[test]
    fn h264_profiles() {
        assert_eq!(
            h264_profile(Some("profile-level-id=42e01f")),
            Some(H264Profile::ConstrainedBaseline)
        );
        assert_eq!(
            h264_profile(Some("profile-level-id=42001f")),
            Some(H264Profile::Baseline)
        );
        assert_eq!(
            h264_profile(Some("profile-level-id=4d001f")),
            Some(H264Profile::Main)
        );
        assert_eq!(
            h264_profile(Some("profile-level-id=640c1f")),
            Some(H264Profile::ConstrainedHigh)
        );
        assert_eq!(
            h264_profile(Some("profile-level-id=64001f")),
            Some(H264Profile::High)
        );
        assert_eq!(h264_profile(Some("profile-level-id=zz")), None);
        assert_eq!(h264_profile(None), Some(H264Profile::Baseline));
    }

    #[test]
    fn publish_rank_prefers_constrained_baseline_mode_1() {
        assert_eq!(
            h264_publish_rank(Some("packetization-mode=1;profile-level-id=42e01f")),
            Some(0)
        );
        assert_eq!(
            h264_publish_rank(Some("packetization-mode=1;profile-level-id=42001f")),
            Some(0)
        );
        assert_eq!(
            h264_publish_rank(Some("packetization-mode=1;profile-level-id=42e034")),
            Some(1)
        );
        assert_eq!(
            h264_publish_rank(Some("packetization-mode=1;profile-level-id=64001f")),
            Some(2)
        );
        assert_eq!(
            h264_publish_rank(Some("packetization-mode=0;profile-level-id=42e01f")),
            None
        );
        assert_eq!(h264_publish_rank(None), None);
    }

    #[test]
    fn viewer_compatibility() {
        let cb = h264("packetization-mode=1;profile-level-id=42e01f");
        let h = map("H264", 90000, 1);
        assert_eq!(
            viewer_match(
                &cb,
                &h,
                Some("packetization-mode=1;profile-level-id=42e034")
            ),
            Some(0)
        );
        assert_eq!(
            viewer_match(
                &cb,
                &map("h264", 90000, 1),
                Some("packetization-mode=1;profile-level-id=42001f")
            ),
            Some(1)
        );
        assert_eq!(
            viewer_match(
                &cb,
                &h,
                Some("packetization-mode=0;profile-level-id=42e01f")
            ),
            None
        );
        assert_eq!(
            viewer_match(
                &cb,
                &h,
                Some("packetization-mode=1;profile-level-id=64001f")
            ),
            None
        );
        assert_eq!(viewer_match(&cb, &map("VP8", 90000, 1), None), None);
        let opus = Codec {
            pt: 111,
            name: "opus".into(),
            clock_rate: 48000,
            channels: 2,
            fmtp: None,
            rtcp_fb: vec![],
        };
        assert_eq!(viewer_match(&opus, &map("OPUS", 48000, 2), None), Some(0));
        assert_eq!(viewer_match(&opus, &map("opus", 48000, 1), None), None);
    }
}
