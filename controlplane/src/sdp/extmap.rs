//! RTP header extensions (RFC 8285): the ones the dataplane reads or writes
//! (`ExtIds`), answered with the offerer's ids or offered with sfud's own.
//!
//! Only ids 1 to 14 are ever negotiated. sfud answers and offers
//! `a=extmap-allow-mixed` (RFC 8285 §6) at session level: Chromium sends a
//! dependency descriptor with its template structure (about 90 bytes, so
//! two-byte form) only to a peer that allows it, and the dataplane writes
//! that form only to a subscriber that allows it. Any other extension is
//! left out, and the dataplane drops it when forwarding.

use dataplane::msg::ExtIds;

use super::codec::MediaKind;
use super::model::{Attribute, Direction, MediaDescription, SessionDescription};

pub const SDES_MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
pub const ABS_SEND_TIME_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
pub const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
pub const VIDEO_ORIENTATION_URI: &str = "urn:3gpp:video-orientation";
pub const PLAYOUT_DELAY_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";
pub const DEPENDENCY_DESCRIPTOR_URI: &str =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";
pub const VIDEO_CONTENT_TYPE_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/video-content-type";
pub const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
pub const REPAIRED_RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";

/// The highest id of the one-byte header form (15 is its stop mark).
const MAX_ONE_BYTE_ID: u8 = 14;

/// An extension sfud knows, one per `ExtIds` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ext {
    Mid,
    AbsSendTime,
    TransportCc,
    AudioLevel,
    VideoOrientation,
    PlayoutDelay,
    DependencyDescriptor,
    VideoContentType,
    Rid,
    RepairedRid,
}

impl Ext {
    const ALL: [Ext; 10] = [
        Ext::Mid,
        Ext::AbsSendTime,
        Ext::TransportCc,
        Ext::AudioLevel,
        Ext::VideoOrientation,
        Ext::PlayoutDelay,
        Ext::DependencyDescriptor,
        Ext::VideoContentType,
        Ext::Rid,
        Ext::RepairedRid,
    ];

    pub(crate) fn uri(self) -> &'static str {
        match self {
            Ext::Mid => SDES_MID_URI,
            Ext::AbsSendTime => ABS_SEND_TIME_URI,
            Ext::TransportCc => TRANSPORT_CC_URI,
            Ext::AudioLevel => AUDIO_LEVEL_URI,
            Ext::VideoOrientation => VIDEO_ORIENTATION_URI,
            Ext::PlayoutDelay => PLAYOUT_DELAY_URI,
            Ext::DependencyDescriptor => DEPENDENCY_DESCRIPTOR_URI,
            Ext::VideoContentType => VIDEO_CONTENT_TYPE_URI,
            Ext::Rid => RID_URI,
            Ext::RepairedRid => REPAIRED_RID_URI,
        }
    }

    fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.uri() == uri)
    }

    /// Whether the extension means anything on media of `kind`.
    fn fits(self, kind: MediaKind) -> bool {
        match self {
            Ext::Mid | Ext::AbsSendTime | Ext::TransportCc => true,
            Ext::AudioLevel => kind == MediaKind::Audio,
            Ext::VideoOrientation
            | Ext::PlayoutDelay
            | Ext::DependencyDescriptor
            | Ext::VideoContentType
            | Ext::Rid
            | Ext::RepairedRid => kind == MediaKind::Video,
        }
    }

    fn field(self, ids: &mut ExtIds) -> &mut Option<u8> {
        match self {
            Ext::Mid => &mut ids.mid,
            Ext::AbsSendTime => &mut ids.abs_send_time,
            Ext::TransportCc => &mut ids.transport_cc,
            Ext::AudioLevel => &mut ids.audio_level,
            Ext::VideoOrientation => &mut ids.video_orientation,
            Ext::PlayoutDelay => &mut ids.playout_delay,
            Ext::DependencyDescriptor => &mut ids.dependency_descriptor,
            Ext::VideoContentType => &mut ids.video_content_type,
            Ext::Rid => &mut ids.rid,
            Ext::RepairedRid => &mut ids.repaired_rid,
        }
    }
}

/// Which way media goes on a section, seen from sfud.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// A publisher's section: sfud receives.
    Receive,
    /// A viewer's or subscriber's section: sfud sends.
    Send,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Negotiated {
    ext: Ext,
    id: u8,
    /// The qualifier sfud writes in its answer.
    direction: Option<Direction>,
}

/// The header extensions negotiated on one media section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Extensions {
    list: Vec<Negotiated>,
    /// Both sides allow one- and two-byte forms in one stream.
    allow_mixed: bool,
}

/// The session-level attribute that allows mixed forms.
pub(crate) const ALLOW_MIXED: &str = "extmap-allow-mixed";

/// Whether the peer's description allows mixed forms on section `m`: at
/// session level (where browsers write it) or on the section itself.
pub(crate) fn allows_mixed(sd: &SessionDescription, m: &MediaDescription) -> bool {
    sd.attributes.iter().chain(&m.attributes).any(|a| a.key == ALLOW_MIXED)
}

impl Extensions {
    /// Adds `ext` unless it, or `id`, is taken already: one id names one
    /// extension, and the first line for an extension wins.
    fn push(&mut self, ext: Ext, id: u8, direction: Option<Direction>) {
        if (1..=MAX_ONE_BYTE_ID).contains(&id)
            && !self.list.iter().any(|n| n.ext == ext || n.id == id)
        {
            self.list.push(Negotiated { ext, id, direction });
        }
    }

    pub(crate) fn ids(&self) -> ExtIds {
        let mut ids = ExtIds { allow_mixed: self.allow_mixed, ..ExtIds::default() };
        for n in &self.list {
            *n.ext.field(&mut ids) = Some(n.id);
        }
        ids
    }

    pub(crate) fn has(&self, ext: Ext) -> bool {
        self.list.iter().any(|n| n.ext == ext)
    }

    pub(crate) fn remove(&mut self, ext: Ext) {
        self.list.retain(|n| n.ext != ext);
    }

    /// The a=extmap lines, in negotiation order.
    pub(crate) fn attributes(&self) -> Vec<Attribute> {
        self.list
            .iter()
            .map(|n| {
                let id = match n.direction {
                    Some(d) => format!("{}/{}", n.id, d.as_str()),
                    None => n.id.to_string(),
                };
                Attribute::with_value("extmap", format!("{id} {}", n.ext.uri()))
            })
            .collect()
    }
}

/// The extensions sfud answers on the offered section `m`: the known ones
/// that fit its kind and that the offerer uses the way sfud needs (it sends
/// them when sfud receives, and the reverse), with the offerer's ids. rid
/// and repaired-rid only matter to a publisher.
pub(crate) fn answer(
    offer: &SessionDescription,
    m: &MediaDescription,
    kind: MediaKind,
    flow: Flow,
) -> Extensions {
    let mut out = Extensions { allow_mixed: allows_mixed(offer, m), ..Extensions::default() };
    for e in m.extmap_entries(offer) {
        let Some(ext) = Ext::from_uri(e.uri) else {
            continue;
        };
        if !ext.fits(kind) || (flow == Flow::Send && matches!(ext, Ext::Rid | Ext::RepairedRid)) {
            continue;
        }
        // RFC 8285 §6: the answer mirrors a one-way qualifier.
        let direction = match (flow, e.direction) {
            (_, None | Some(Direction::SendRecv)) => None,
            (Flow::Receive, Some(Direction::SendOnly)) => Some(Direction::RecvOnly),
            (Flow::Send, Some(Direction::RecvOnly)) => Some(Direction::SendOnly),
            _ => continue,
        };
        out.push(ext, e.id, direction);
    }
    out
}

/// sfud's ids in its own offers. One fixed table keeps every URI on the
/// same id across the m-lines of a bundle and across the renegotiations of
/// a PeerConnection, which browsers require (Firefox rejects a remote
/// description that remaps an id).
const OFFERED: [(Ext, u8); 8] = [
    (Ext::AudioLevel, 1),
    (Ext::AbsSendTime, 2),
    (Ext::TransportCc, 3),
    (Ext::Mid, 4),
    (Ext::PlayoutDelay, 5),
    (Ext::DependencyDescriptor, 6),
    (Ext::VideoContentType, 7),
    (Ext::VideoOrientation, 13),
];

/// The a=extmap lines sfud offers on a section of `kind` it sends.
pub(crate) fn offer_attributes(kind: MediaKind) -> Vec<Attribute> {
    let mut offered = Extensions::default();
    for (ext, id) in OFFERED.into_iter().filter(|(e, _)| e.fits(kind)) {
        offered.push(ext, id, None);
    }
    offered.attributes()
}

/// What an answer to sfud's offer kept on section `m` of `kind`: the
/// extensions sfud offered there, with the ids the answerer wrote (those are
/// the ones it parses), as long as it receives them.
pub(crate) fn answered(
    answer: &SessionDescription,
    m: &MediaDescription,
    kind: MediaKind,
) -> Extensions {
    // sfud's offers allow mixed forms; the answer says whether the peer does.
    let mut out = Extensions { allow_mixed: allows_mixed(answer, m), ..Extensions::default() };
    for e in m.extmap_entries(answer) {
        let Some(ext) = Ext::from_uri(e.uri) else {
            continue;
        };
        let offered = OFFERED.iter().any(|(o, _)| *o == ext) && ext.fits(kind);
        let receives = matches!(
            e.direction,
            None | Some(Direction::SendRecv | Direction::RecvOnly)
        );
        if offered && receives {
            out.push(ext, e.id, None);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(extmaps: &str) -> (SessionDescription, usize) {
        let sdp = format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n{extmaps}"
        );
        (SessionDescription::parse(&sdp).unwrap(), 0)
    }

    fn answered_lines(extmaps: &str, kind: MediaKind, flow: Flow) -> (ExtIds, Vec<String>) {
        let (sd, i) = section(extmaps);
        let e = answer(&sd, &sd.media[i], kind, flow);
        let lines = e
            .attributes()
            .into_iter()
            .map(|a| a.value.unwrap_or_default())
            .collect();
        (e.ids(), lines)
    }

    #[test]
    fn offered_table_is_one_byte_and_unique() {
        for (i, (ext, id)) in OFFERED.iter().enumerate() {
            assert!((1..=MAX_ONE_BYTE_ID).contains(id));
            assert!(OFFERED[i + 1..].iter().all(|(e, d)| e != ext && d != id));
            assert!(!matches!(ext, Ext::Rid | Ext::RepairedRid));
        }
        let audio = offer_attributes(MediaKind::Audio);
        assert_eq!(
            audio
                .iter()
                .map(|a| a.value.clone().unwrap())
                .collect::<Vec<_>>(),
            vec![
                format!("1 {AUDIO_LEVEL_URI}"),
                format!("2 {ABS_SEND_TIME_URI}"),
                format!("3 {TRANSPORT_CC_URI}"),
                format!("4 {SDES_MID_URI}"),
            ]
        );
        assert_eq!(offer_attributes(MediaKind::Video).len(), 7);
    }

    #[test]
    fn answers_echo_ids_and_skip_what_does_not_fit() {
        let offer = format!(
            "a=extmap:9 {SDES_MID_URI}\r\n\
             a=extmap:1 {AUDIO_LEVEL_URI}\r\n\
             a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\n\
             a=extmap:3 {TRANSPORT_CC_URI}\r\n\
             a=extmap:10 {RID_URI}\r\n\
             a=extmap:16 {PLAYOUT_DELAY_URI}\r\n\
             a=extmap:7 {SDES_MID_URI}\r\n\
             a=extmap:3 {ABS_SEND_TIME_URI}\r\n"
        );
        let (ids, lines) = answered_lines(&offer, MediaKind::Video, Flow::Receive);
        assert_eq!(
            ids,
            ExtIds {
                mid: Some(9),
                transport_cc: Some(3),
                rid: Some(10),
                ..Default::default()
            },
            "audio-level is not video, 16 needs two bytes, and mid and id 3 are taken"
        );
        assert_eq!(
            lines,
            vec![
                format!("9 {SDES_MID_URI}"),
                format!("3 {TRANSPORT_CC_URI}"),
                format!("10 {RID_URI}"),
            ]
        );
        let (ids, _) = answered_lines(&offer, MediaKind::Video, Flow::Send);
        assert_eq!(ids.rid, None, "rid is for publishers");
        let (ids, _) = answered_lines(&offer, MediaKind::Audio, Flow::Send);
        assert_eq!(ids.audio_level, Some(1));
    }

    #[test]
    fn one_way_qualifiers_are_mirrored_or_refused() {
        let offer = format!(
            "a=extmap:5/recvonly {PLAYOUT_DELAY_URI}\r\n\
             a=extmap:13/sendonly {VIDEO_ORIENTATION_URI}\r\n\
             a=extmap:2/sendrecv {ABS_SEND_TIME_URI}\r\n\
             a=extmap:4/inactive {SDES_MID_URI}\r\n"
        );
        let (ids, lines) = answered_lines(&offer, MediaKind::Video, Flow::Receive);
        assert_eq!((ids.playout_delay, ids.mid), (None, None));
        assert_eq!(
            lines,
            vec![
                format!("13/recvonly {VIDEO_ORIENTATION_URI}"),
                format!("2 {ABS_SEND_TIME_URI}"),
            ]
        );
        let (ids, lines) = answered_lines(&offer, MediaKind::Video, Flow::Send);
        assert_eq!(ids.video_orientation, None);
        assert_eq!(lines[0], format!("5/sendonly {PLAYOUT_DELAY_URI}"));
    }

    #[test]
    fn answers_to_sfud_offers_keep_only_what_was_offered() {
        let answer = format!(
            "a=extmap:4 {SDES_MID_URI}\r\n\
             a=extmap:8 {TRANSPORT_CC_URI}\r\n\
             a=extmap:10 {RID_URI}\r\n\
             a=extmap:1 {AUDIO_LEVEL_URI}\r\n\
             a=extmap:2/sendonly {ABS_SEND_TIME_URI}\r\n"
        );
        let (sd, i) = section(&answer);
        let ids = answered(&sd, &sd.media[i], MediaKind::Video).ids();
        assert_eq!(
            ids,
            ExtIds {
                mid: Some(4),
                transport_cc: Some(8),
                ..Default::default()
            }
        );
    }
}
