//! The subscriber PeerConnection of a room, where sfud is the offerer.
//!
//! Browsers require every later offer to keep the m-lines of the earlier ones,
//! in the same order (JSEP §5.2.2), so the m-lines are slots that outlive the
//! tracks in them: a removed track leaves its slot inactive, and the slot is
//! reused for a later track of the same kind only once the browser has
//! answered an offer that showed it inactive. Reusing it earlier would look
//! to the browser like the old track changing identity, not like a new one.
//!
//! Offers bundle every live slot and repeat the transport in each of them, so
//! it does not matter which slot ends up tagging the bundle.
//!
//! Each sending slot offers what loss recovery and congestion control need:
//! the publisher's nack/pli/fir feedback, transport-cc with its header
//! extension (never goog-remb: sfud estimates on the send side), the other
//! `ExtIds` extensions with sfud's fixed ids (see `extmap`), and on video an
//! rtx payload type for the codec with sfud's RTX SSRC in an FID group. The
//! answer says which of these the browser kept.

use dataplane::msg::{ExtIds, Feedback, RtxSpec};
use tracing::warn;

use super::answer::{
    codec_attributes, data_channel_attributes, data_channel_params, local_session,
    DataChannelParams,
};
use super::codec::{known_feedback, supported_feedback, Codec, MediaKind};
use super::error::NegotiationError;
use super::extmap;
use super::feedback;
use super::model::{Attribute, Direction, MediaDescription, SessionDescription};
use super::parse::MAX_MEDIA_SECTIONS;
use super::rtx::rtx_codec;
use super::subscribe::{sending_attributes, OfferedTrack};
use super::transport::{remote_params, LocalIce, RemoteParams};

/// A track a subscriber PeerConnection should receive; the same description
/// WHEP viewers get. `codec` is the publisher's, payload type included: sfud
/// keeps that payload type unless another codec already took it on this
/// PeerConnection (see `AnsweredTrack::pt`).
pub type SubscriberTrack = OfferedTrack;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotKind {
    Audio,
    Video,
    Application,
}

impl SlotKind {
    fn media(self) -> &'static str {
        match self {
            SlotKind::Audio => "audio",
            SlotKind::Video => "video",
            SlotKind::Application => "application",
        }
    }

    fn proto(self) -> &'static str {
        match self {
            SlotKind::Application => "UDP/DTLS/SCTP",
            _ => "UDP/TLS/RTP/SAVPF",
        }
    }

    fn media_kind(self) -> Option<MediaKind> {
        match self {
            SlotKind::Audio => Some(MediaKind::Audio),
            SlotKind::Video => Some(MediaKind::Video),
            SlotKind::Application => None,
        }
    }
}

impl From<MediaKind> for SlotKind {
    fn from(kind: MediaKind) -> Self {
        match kind {
            MediaKind::Audio => SlotKind::Audio,
            MediaKind::Video => SlotKind::Video,
        }
    }
}

/// One m-line slot of the subscriber PC, stable across renegotiations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferSlot {
    pub mid: String,
    pub kind: SlotKind,
    pub track: Option<SubscriberTrack>,
}

/// A track the browser accepted to receive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnsweredTrack {
    pub mid: String,
    /// As given to `set_tracks` (the publisher's payload type).
    pub track: SubscriberTrack,
    /// The payload type to send it with: the publisher's, unless it collided
    /// with another codec on this PeerConnection (RFC 8843 §9.1 forbids one
    /// payload type naming two codecs in a bundle). The downtrack rewrites
    /// the payload type when it differs from `track.codec.pt`.
    pub pt: u8,
    /// The feedback the browser accepted, a subset of what sfud offered.
    pub rtcp_fb: Vec<String>,
    /// sfud's repair stream, when the browser's answer kept the rtx
    /// payload type offered with the codec.
    pub rtx: Option<RtxSpec>,
    /// Header extensions as the browser answered them.
    pub ext: ExtIds,
    pub feedback: Feedback,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnswerResult {
    /// The browser's transport: on the first answer, and again only if a
    /// later answer changed its ICE credentials.
    pub remote: Option<RemoteParams>,
    /// Every offered track the browser will receive, in m-line order.
    pub tracks: Vec<AnsweredTrack>,
    /// Mids of offered tracks the browser refused (port 0 or inactive).
    /// A track refused with port 0 is not offered again.
    pub refused: Vec<String>,
    /// The data channel section, when offered and accepted.
    pub data_channel: Option<DataChannelParams>,
    /// The tracks changed since the answered offer: send a new one.
    pub needs_offer: bool,
}

/// What a slot is beyond what `OfferSlot` shows.
#[derive(Clone, Debug, Default)]
struct SlotState {
    /// The codec last offered in it, payload type remapped; an inactive slot
    /// keeps naming it so the browser's transceiver keeps its codec.
    codec: Option<Codec>,
    /// The rtx payload type offered with `codec` (video with an RTX SSRC).
    rtx_pt: Option<u8>,
    /// The browser answered port 0: it stays port 0 in every later offer.
    rejected: bool,
    /// Free, and the browser has answered an offer that showed it inactive.
    reusable: bool,
}

/// What one m-line of the offer in flight said.
#[derive(Clone, Debug)]
struct Offered {
    mid: String,
    kind: SlotKind,
    track: Option<SubscriberTrack>,
    codec: Option<Codec>,
    rtx_pt: Option<u8>,
    rejected: bool,
}

/// Identity of a codec for payload type allocation; rtcp-fb does not count.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CodecKey {
    name: String,
    clock_rate: u32,
    channels: u8,
    fmtp: String,
}

impl CodecKey {
    fn of(c: &Codec) -> Self {
        Self {
            name: c.name.to_ascii_lowercase(),
            clock_rate: c.clock_rate,
            channels: c.channels,
            fmtp: c
                .fmtp
                .as_deref()
                .unwrap_or("")
                .split(';')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join(";")
                .to_ascii_lowercase(),
        }
    }
}

/// Dynamic payload types, preferred range first. 64-95 would collide with
/// RTCP packet types under rtcp-mux (RFC 5761 §4).
fn dynamic_pts() -> impl Iterator<Item = u8> {
    (96..=127).chain(35..=63)
}

fn is_dynamic(pt: u8) -> bool {
    (96..=127).contains(&pt) || (35..=63).contains(&pt)
}

/// Tracks refused with port 0 are remembered so `set_tracks` does not offer
/// them forever; bounded because the hub may keep trying new ones.
const MAX_REFUSED: usize = 256;

/// The offer/answer state of one subscriber PeerConnection.
#[derive(Clone, Debug)]
pub struct SubscriberOffer {
    local: LocalIce,
    version: u64,
    next_mid: u32,
    slots: Vec<OfferSlot>,
    states: Vec<SlotState>,
    /// Payload type bindings; once bound, a payload type keeps its codec
    /// for the life of the PeerConnection.
    pts: Vec<(u8, CodecKey)>,
    refused: Vec<SubscriberTrack>,
    pending: Option<Vec<Offered>>,
    remote: Option<RemoteParams>,
    dirty: bool,
}

impl SubscriberOffer {
    /// The first m-line is the data channel (ion-sdk-js waits for sfud to
    /// open its "ion-sfu" channel on this PC) when `with_data_channel`.
    pub fn new(local: LocalIce, with_data_channel: bool) -> Self {
        let mut s = Self {
            local,
            version: 0,
            next_mid: 0,
            slots: Vec::new(),
            states: Vec::new(),
            pts: Vec::new(),
            refused: Vec::new(),
            pending: None,
            remote: None,
            dirty: false,
        };
        if with_data_channel {
            s.push_slot(SlotKind::Application, None, SlotState::default());
            s.dirty = true;
        }
        s
    }

    pub fn slots(&self) -> &[OfferSlot] {
        &self.slots
    }

    /// An offer was sent and its answer has not been applied yet; the hub
    /// sends no other offer meanwhile (no glare, and the browser's answer
    /// would not match).
    pub fn awaiting_answer(&self) -> bool {
        self.pending.is_some()
    }

    /// Something changed since the last offer (or nothing was offered yet).
    pub fn needs_offer(&self) -> bool {
        self.dirty
    }

    fn push_slot(&mut self, kind: SlotKind, track: Option<SubscriberTrack>, state: SlotState) {
        self.slots.push(OfferSlot {
            mid: self.next_mid.to_string(),
            kind,
            track,
        });
        self.states.push(state);
        self.next_mid = self.next_mid.saturating_add(1);
    }

    /// Set the full list of tracks the subscriber should receive now; reuses
    /// free slots of the same kind, appends new ones, frees slots of removed
    /// tracks. Returns whether anything changed. Tracks are the same track
    /// when equal in every field; a duplicate SSRC, a track the browser
    /// refused, or one beyond the m-line or payload type limits is skipped.
    pub fn set_tracks(&mut self, tracks: &[SubscriberTrack]) -> bool {
        let mut wanted: Vec<&SubscriberTrack> = Vec::with_capacity(tracks.len());
        for t in tracks {
            if wanted
                .iter()
                .any(|w| ssrcs_of(w).any(|s| ssrcs_of(t).any(|u| u == s)))
            {
                warn!(ssrc = t.ssrc, "subscriber offer: duplicate SSRC skipped");
                continue;
            }
            if self.refused.contains(t) {
                continue;
            }
            wanted.push(t);
        }

        let mut changed = false;
        let mut placed = vec![false; wanted.len()];
        for (slot, state) in self.slots.iter_mut().zip(self.states.iter_mut()) {
            let Some(current) = &slot.track else { continue };
            let found = wanted
                .iter()
                .enumerate()
                .position(|(j, w)| *w == current && !placed.get(j).copied().unwrap_or(true));
            match found.and_then(|j| placed.get_mut(j)) {
                Some(p) => *p = true,
                None => {
                    slot.track = None;
                    state.reusable = false;
                    changed = true;
                }
            }
        }

        for (track, _) in wanted.iter().zip(&placed).filter(|(_, p)| !**p) {
            if self.place(track) {
                changed = true;
            }
        }
        self.dirty |= changed;
        changed
    }

    /// Puts a new track in a reusable slot of its kind or a new one.
    fn place(&mut self, track: &SubscriberTrack) -> bool {
        let kind = SlotKind::from(track.kind);
        let free =
            self.slots.iter().zip(&self.states).position(|(s, st)| {
                s.kind == kind && s.track.is_none() && st.reusable && !st.rejected
            });
        if free.is_none() && self.slots.len() >= MAX_MEDIA_SECTIONS {
            warn!(
                ssrc = track.ssrc,
                max = MAX_MEDIA_SECTIONS,
                "subscriber offer: no m-line left for track"
            );
            return false;
        }
        let Some(pt) = self.bind_pt(&CodecKey::of(&track.codec), Some(track.codec.pt)) else {
            warn!(
                ssrc = track.ssrc,
                "subscriber offer: no payload type left for track"
            );
            return false;
        };
        let codec = Codec {
            pt,
            rtcp_fb: offered_feedback(&track.codec),
            ..track.codec.clone()
        };
        let rtx_pt = match (track.kind, track.rtx_ssrc) {
            (MediaKind::Video, Some(_)) => {
                let rtx_pt = self.bind_pt(&CodecKey::of(&rtx_codec(pt, &codec)), None);
                if rtx_pt.is_none() {
                    warn!(
                        ssrc = track.ssrc,
                        "subscriber offer: no payload type left for rtx"
                    );
                }
                rtx_pt
            }
            _ => None,
        };
        match free {
            Some(i) => {
                if let (Some(slot), Some(state)) = (self.slots.get_mut(i), self.states.get_mut(i)) {
                    slot.track = Some(track.clone());
                    state.codec = Some(codec);
                    state.rtx_pt = rtx_pt;
                    state.reusable = false;
                }
            }
            None => self.push_slot(
                kind,
                Some(track.clone()),
                SlotState {
                    codec: Some(codec),
                    rtx_pt,
                    ..SlotState::default()
                },
            ),
        }
        true
    }

    /// The payload type a format goes out with on this PeerConnection: the
    /// one it was bound to before, else `preferred` if free and dynamic,
    /// else the first free dynamic one.
    fn bind_pt(&mut self, key: &CodecKey, preferred: Option<u8>) -> Option<u8> {
        if let Some((pt, _)) = self.pts.iter().find(|(_, k)| k == key) {
            return Some(*pt);
        }
        let taken = |pt: u8| self.pts.iter().any(|(p, _)| *p == pt);
        let pt = match preferred {
            Some(p) if is_dynamic(p) && !taken(p) => p,
            _ => dynamic_pts().find(|p| !taken(*p))?,
        };
        self.pts.push((pt, key.clone()));
        Some(pt)
    }

    /// Produce the next offer SDP. Each call increments the o= line's
    /// session version and replaces any offer still waiting for its answer.
    pub fn create_offer(&mut self) -> String {
        self.version = self.version.saturating_add(1);
        // Without a local candidate the offer cannot work anyway; the same
        // configuration makes WHIP answers fail with NoLocalCandidates.
        let (connection, port) = self
            .local
            .connection_and_port()
            .unwrap_or_else(|_| ("IN IP4 0.0.0.0".to_owned(), 9));

        let mut media = Vec::with_capacity(self.slots.len());
        let mut bundle = Vec::with_capacity(self.slots.len());
        let mut offered = Vec::with_capacity(self.slots.len());
        for (slot, state) in self.slots.iter().zip(&self.states) {
            let pt = state.codec.as_ref().map(|c| c.pt);
            offered.push(Offered {
                mid: slot.mid.clone(),
                kind: slot.kind,
                track: slot.track.clone(),
                codec: state.codec.clone(),
                rtx_pt: state.rtx_pt,
                rejected: state.rejected,
            });
            if state.rejected {
                media.push(rejected_slot(slot, pt));
                continue;
            }
            bundle.push(slot.mid.clone());
            let attributes = match slot.kind {
                SlotKind::Application => data_channel_attributes(&slot.mid, &self.local, "actpass"),
                SlotKind::Audio | SlotKind::Video => self.rtp_attributes(slot, state),
            };
            let mut formats = vec![match (slot.kind, pt) {
                (SlotKind::Application, _) => "webrtc-datachannel".to_owned(),
                (_, Some(pt)) => pt.to_string(),
                // Unreachable: RTP slots are created with a codec.
                (_, None) => "0".to_owned(),
            }];
            formats.extend(state.rtx_pt.map(|p| p.to_string()));
            media.push(MediaDescription {
                kind: slot.kind.media().to_owned(),
                port,
                proto: slot.kind.proto().to_owned(),
                formats,
                connection: Some(connection.clone()),
                attributes,
            });
        }
        self.pending = Some(offered);
        self.dirty = false;
        let bundle = (!bundle.is_empty()).then_some(bundle);
        local_session(&self.local, self.version, bundle, media).to_sdp()
    }

    fn rtp_attributes(&self, slot: &OfferSlot, state: &SlotState) -> Vec<Attribute> {
        let direction = if slot.track.is_some() {
            Direction::SendOnly
        } else {
            Direction::Inactive
        };
        let mut attributes = vec![
            Attribute::with_value("mid", slot.mid.clone()),
            Attribute::flag(direction.as_str()),
        ];
        attributes.extend(self.local.ice_dtls_attributes("actpass"));
        attributes.push(Attribute::flag("rtcp-mux"));
        attributes.push(Attribute::flag("rtcp-rsize"));
        if let Some(kind) = slot.kind.media_kind() {
            attributes.extend(extmap::offer_attributes(kind));
        }
        match (&slot.track, state.codec.as_ref()) {
            (Some(track), Some(codec)) => {
                let rtx = track
                    .rtx_ssrc
                    .zip(state.rtx_pt)
                    .map(|(ssrc, payload_type)| RtxSpec { ssrc, payload_type });
                attributes.extend(sending_attributes(codec, rtx, track));
            }
            (None, Some(codec)) => {
                attributes.extend(codec_attributes(codec));
                if let Some(rtx_pt) = state.rtx_pt {
                    attributes.extend(codec_attributes(&rtx_codec(rtx_pt, codec)));
                }
            }
            _ => {}
        }
        attributes.extend(self.local.candidate_attributes());
        attributes
    }

    /// Apply the browser's answer to the offer in flight: checks its
    /// transport (sha-256 fingerprint, ICE credentials, a=setup:active) and
    /// every m-line against what was offered. On error nothing changes.
    pub fn apply_answer(
        &mut self,
        answer: &SessionDescription,
    ) -> Result<AnswerResult, NegotiationError> {
        let offered = self
            .pending
            .as_ref()
            .ok_or(NegotiationError::NoOfferPending)?;
        let checked = check_answer(answer, offered, self.remote.as_ref())?;

        let remote_changed = self.remote.as_ref() != Some(&checked.remote);
        let mut result = AnswerResult {
            remote: remote_changed.then(|| checked.remote.clone()),
            tracks: Vec::new(),
            refused: Vec::new(),
            data_channel: checked.data_channel,
            needs_offer: false,
        };
        let mut displaced = Vec::new();
        for (o, verdict) in offered.iter().zip(&checked.verdicts) {
            let Some(i) = self.slots.iter().position(|s| s.mid == o.mid) else {
                continue;
            };
            let (Some(slot), Some(state)) = (self.slots.get_mut(i), self.states.get_mut(i)) else {
                continue;
            };
            match verdict {
                Verdict::Rejected => {
                    if !o.rejected {
                        state.rejected = true;
                        state.reusable = false;
                        if let Some(t) = &o.track {
                            result.refused.push(o.mid.clone());
                            push_bounded(&mut self.refused, t.clone());
                        }
                        // A track placed here after the offer went out has
                        // to move to a slot the browser still has.
                        if let Some(t) = slot.track.take() {
                            if o.track.as_ref() != Some(&t) {
                                displaced.push(t);
                            }
                        }
                    }
                }
                Verdict::Receiving {
                    pt,
                    rtcp_fb,
                    rtx_pt,
                    ext,
                } => {
                    if let Some(t) = &o.track {
                        result.tracks.push(AnsweredTrack {
                            mid: o.mid.clone(),
                            track: t.clone(),
                            pt: *pt,
                            rtcp_fb: rtcp_fb.clone(),
                            rtx: t
                                .rtx_ssrc
                                .zip(*rtx_pt)
                                .map(|(ssrc, payload_type)| RtxSpec { ssrc, payload_type }),
                            ext: *ext,
                            feedback: feedback::flags(rtcp_fb),
                        });
                    }
                }
                Verdict::NotReceiving => {
                    if o.track.is_some() {
                        result.refused.push(o.mid.clone());
                    } else if slot.track.is_none() && o.kind != SlotKind::Application {
                        state.reusable = true;
                    }
                }
            }
        }
        for t in displaced {
            if self.place(&t) {
                self.dirty = true;
            }
        }
        self.remote = Some(checked.remote);
        self.pending = None;
        result.needs_offer = self.dirty;
        Ok(result)
    }
}

fn push_bounded(list: &mut Vec<SubscriberTrack>, t: SubscriberTrack) {
    if list.len() >= MAX_REFUSED {
        list.remove(0);
    }
    list.push(t);
}

fn ssrcs_of(t: &SubscriberTrack) -> impl Iterator<Item = u32> {
    std::iter::once(t.ssrc).chain(t.rtx_ssrc)
}

/// What sfud offers a subscriber: the loss feedback the publisher's codec
/// negotiated (PLI and FIR are forwarded to it; NACKs are answered from
/// sfud's cache), and transport-cc for sfud's own send-side estimate,
/// which is why goog-remb is not offered (see `feedback`).
fn offered_feedback(codec: &Codec) -> Vec<String> {
    let mut fbs: Vec<String> = known_feedback(codec.rtcp_fb.iter().map(String::as_str))
        .into_iter()
        .filter(|f| f != "goog-remb" && f != "transport-cc")
        .collect();
    fbs.push("transport-cc".to_owned());
    fbs
}

/// A slot the browser rejected: port 0 forever, mid kept (RFC 8843 §7.3.3).
fn rejected_slot(slot: &OfferSlot, pt: Option<u8>) -> MediaDescription {
    let format = match (slot.kind, pt) {
        (SlotKind::Application, _) => "webrtc-datachannel".to_owned(),
        (_, Some(pt)) => pt.to_string(),
        (_, None) => "0".to_owned(),
    };
    MediaDescription {
        kind: slot.kind.media().to_owned(),
        port: 0,
        proto: slot.kind.proto().to_owned(),
        formats: vec![format],
        connection: Some("IN IP4 0.0.0.0".to_owned()),
        attributes: vec![Attribute::with_value("mid", slot.mid.clone())],
    }
}

enum Verdict {
    Rejected,
    Receiving {
        pt: u8,
        rtcp_fb: Vec<String>,
        rtx_pt: Option<u8>,
        ext: ExtIds,
    },
    /// Accepted but inactive (or the data channel): no media to send.
    NotReceiving,
}

struct Checked {
    remote: RemoteParams,
    verdicts: Vec<Verdict>,
    data_channel: Option<DataChannelParams>,
}

fn invalid(msg: impl Into<String>) -> NegotiationError {
    NegotiationError::InvalidAnswer(msg.into())
}

/// Everything apply_answer checks, without touching the state.
fn check_answer(
    answer: &SessionDescription,
    offered: &[Offered],
    known: Option<&RemoteParams>,
) -> Result<Checked, NegotiationError> {
    if answer.media.len() != offered.len() {
        return Err(invalid(format!(
            "it has {} m-lines, the offer had {}",
            answer.media.len(),
            offered.len()
        )));
    }
    let mut accepted: Vec<&MediaDescription> = Vec::new();
    for (i, (m, o)) in answer.media.iter().zip(offered).enumerate() {
        if m.kind != o.kind.media() {
            return Err(invalid(format!(
                "m-line #{i} is {}, the offer had {}",
                m.kind,
                o.kind.media()
            )));
        }
        if let Some(mid) = m.mid() {
            if mid != o.mid {
                return Err(invalid(format!(
                    "m-line #{i} has a=mid:{mid}, the offer had {}",
                    o.mid
                )));
            }
        }
        if !m.is_disabled(answer) {
            if o.rejected {
                return Err(invalid(format!(
                    "mid {} was offered with port 0 and must be answered with port 0",
                    o.mid
                )));
            }
            accepted.push(m);
        }
    }
    let Some(first) = accepted.first() else {
        return Err(invalid("every m-line is rejected"));
    };
    if accepted.len() > 1 {
        let groups = answer.bundle_groups();
        let first_mid = first.mid().unwrap_or("");
        let group = groups
            .iter()
            .find(|g| g.contains(&first_mid))
            .ok_or(NegotiationError::BundleRequired)?;
        if let Some(m) = accepted
            .iter()
            .find(|m| !group.contains(&m.mid().unwrap_or("")))
        {
            return Err(invalid(format!(
                "mid {} is accepted but outside the BUNDLE group",
                m.mid().unwrap_or("?")
            )));
        }
    }

    let first_mid = first.mid().unwrap_or("");
    match first.setup(answer) {
        None => {}
        Some(s) if s.eq_ignore_ascii_case("active") => {}
        Some(other) => {
            return Err(invalid(format!(
                "a=setup:{}; sfud offers actpass and is always the DTLS server, so the answer must say a=setup:active",
                other.chars().take(20).collect::<String>()
            )))
        }
    }
    let remote = remote_params(answer, first, first_mid)?;
    if let Some(known) = known {
        if known.fingerprint != remote.fingerprint {
            return Err(invalid(
                "the DTLS fingerprint changed; a new DTLS session needs a new PeerConnection",
            ));
        }
    }

    let mut verdicts = Vec::with_capacity(offered.len());
    let mut data_channel = None;
    for (m, o) in answer.media.iter().zip(offered) {
        if m.is_disabled(answer) {
            verdicts.push(Verdict::Rejected);
            continue;
        }
        if o.kind == SlotKind::Application {
            let params = data_channel_params(m, &o.mid).ok_or_else(|| {
                invalid(format!(
                    "mid {} has a malformed a=sctp-port or a=max-message-size",
                    o.mid
                ))
            })?;
            data_channel = Some(params);
            verdicts.push(Verdict::NotReceiving);
            continue;
        }
        if !m.rtcp_mux() {
            return Err(NegotiationError::RtcpMuxRequired { mid: o.mid.clone() });
        }
        let pt = o.codec.as_ref().map(|c| c.pt);
        let formats: Vec<Option<u8>> = m.formats.iter().map(|f| f.parse().ok()).collect();
        if let Some(f) = m
            .formats
            .iter()
            .zip(&formats)
            .find(|(_, p)| p.is_none() || (**p != pt && **p != o.rtx_pt))
            .map(|(f, _)| f)
        {
            return Err(invalid(format!(
                "mid {} answers payload type {f}, which sfud did not offer there",
                o.mid
            )));
        }
        if pt.is_none() || !formats.contains(&pt) {
            return Err(invalid(format!(
                "mid {} does not answer the codec's payload type",
                o.mid
            )));
        }
        let direction = m.direction(answer);
        let verdict = match (&o.track, &o.codec, o.kind.media_kind()) {
            (Some(_), Some(codec), Some(kind)) => match direction {
                Direction::RecvOnly => {
                    let mut ext = extmap::answered(answer, m, kind);
                    // Only what sfud offered counts, whatever the answer adds.
                    let kept: Vec<String> = supported_feedback(m, codec.pt)
                        .into_iter()
                        .filter(|f| codec.rtcp_fb.contains(f))
                        .collect();
                    let rtcp_fb = feedback::settle(kept, &mut ext);
                    Verdict::Receiving {
                        pt: codec.pt,
                        rtcp_fb,
                        rtx_pt: o.rtx_pt.filter(|p| formats.contains(&Some(*p))),
                        ext: ext.ids(),
                    }
                }
                Direction::Inactive => Verdict::NotReceiving,
                d => {
                    return Err(invalid(format!(
                    "mid {} answers a={}; sfud offered sendonly, so only recvonly or inactive fit",
                    o.mid,
                    d.as_str()
                )))
                }
            },
            _ => Verdict::NotReceiving,
        };
        verdicts.push(verdict);
    }
    Ok(Checked {
        remote,
        verdicts,
        data_channel,
    })
}
