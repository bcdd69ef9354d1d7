//! WHEP: answering a viewer's offer with tracks sfud already receives. An SFU
//! cannot transcode, so a section gets a track only if the viewer offered that
//! track's codec; the viewer's payload type is used for it on the wire. A
//! video section also gets the viewer's rtx for that payload type, sent from
//! sfud's own RTX SSRC for the track (a=ssrc-group:FID). Header extensions
//! and feedback follow the rules in `extmap` and `feedback`, with the
//! viewer's ids.

use dataplane::msg::{ExtIds, Feedback, RtxSpec};
use tracing::info;

use super::answer::{
    accepted_section, answer_session, check_mids, codec_attributes, describe_offered, is_auxiliary,
    is_secure_rtp, offered_rtpmaps, rejected_section, rejection_summary, settle_bundle, Plan,
};
use super::codec::{supported_feedback, viewer_match, Codec, MediaKind};
use super::error::NegotiationError;
use super::extmap::{self, Flow};
use super::feedback;
use super::model::{Attribute, Direction, MediaDescription, SessionDescription};
use super::red::{offered_red, red_codec};
use super::rtx::{fid_group, offered_rtx, rtx_codec};
use super::transport::{remote_params, LocalIce, RemoteParams};

/// A track sfud can send to a viewer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferedTrack {
    pub kind: MediaKind,
    /// As the publisher negotiated it.
    pub codec: Codec,
    /// sfud's outgoing SSRC for this viewer.
    pub ssrc: u32,
    /// sfud's RTX SSRC for this viewer, used if the viewer negotiates rtx;
    /// None for audio, which gets no RTX.
    pub rtx_ssrc: Option<u32>,
    /// The publisher sends RED around this (Opus) codec.
    pub red: bool,
    pub cname: String,
    pub stream_id: String,
    pub track_id: String,
}

/// A section of the viewer's offer that will carry a track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribedMedia {
    pub mid: String,
    pub kind: MediaKind,
    /// Index into the `tracks` given to `answer_subscribe`.
    pub track_index: usize,
    /// The track's codec with the viewer's payload type and feedback.
    pub codec: Codec,
    pub ssrc: u32,
    /// sfud's repair stream, when the viewer offered rtx for `codec`.
    pub rtx: Option<RtxSpec>,
    /// The viewer's RED payload type, when the track carries RED and the
    /// viewer offered RED around its Opus: then RED passes through.
    pub red_pt: Option<u8>,
    /// Header extensions as answered, with the viewer's ids.
    pub ext: ExtIds,
    pub feedback: Feedback,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeAnswer {
    pub sdp: String,
    pub remote: RemoteParams,
    /// Sections that carry a track, in offer order.
    pub media: Vec<SubscribedMedia>,
}

/// A section kept in the bundle: it either gets a track or is answered inactive.
struct Kept {
    kind: MediaKind,
    receives: bool,
}

/// Answers a WHEP offer. See the module docs of `sdp` for the rules.
pub fn answer_subscribe(
    offer: &SessionDescription,
    local: &LocalIce,
    tracks: &[OfferedTrack],
) -> Result<SubscribeAnswer, NegotiationError> {
    let mut plans: Vec<Plan<Kept>> = offer.media.iter().map(|m| plan(offer, m)).collect();
    check_mids(offer, &plans)?;
    let bundle = settle_bundle(offer, &mut plans)?;

    let assignments = assign(offer, &plans, tracks);
    if assignments.iter().all(Option::is_none) {
        return Err(NegotiationError::NoUsableMedia(explain_no_match(
            offer, &plans, tracks,
        )));
    }
    let Some(tagged) = offer
        .media
        .iter()
        .zip(&plans)
        .find(|(_, p)| p.accepted().is_some())
    else {
        // Unreachable in practice: a match implies a kept section.
        return Err(NegotiationError::NoUsableMedia(rejection_summary(
            offer, &plans,
        )));
    };
    let remote = remote_params(offer, tagged.0, tagged.0.mid().unwrap_or(""))?;

    let mut sections = Vec::with_capacity(offer.media.len());
    let mut media = Vec::new();
    for (i, ((m, plan), assignment)) in offer.media.iter().zip(&plans).zip(assignments).enumerate()
    {
        let mid = m.mid().unwrap_or("");
        match (plan, assignment) {
            (Plan::Reject(reason), _) => {
                info!(section = i, %reason, "rejecting play media section");
                sections.push(rejected_section(m, local));
            }
            (Plan::Accept(kept), Some((track_index, mut codec))) => {
                let Some(track) = tracks.get(track_index) else {
                    continue;
                };
                let mut ext = extmap::answer(offer, m, kept.kind, Flow::Send);
                codec.rtcp_fb = feedback::settle(std::mem::take(&mut codec.rtcp_fb), &mut ext);
                let rtx = match kept.kind {
                    MediaKind::Video => track.rtx_ssrc.zip(offered_rtx(m, &codec)),
                    MediaKind::Audio => None,
                }
                .map(|(ssrc, payload_type)| RtxSpec { ssrc, payload_type });
                let mut body = ext.attributes();
                body.extend(sending_attributes(&codec, rtx, track));
                let red_pt = match kept.kind {
                    MediaKind::Audio if track.red => offered_red(m, &codec),
                    _ => None,
                };
                let mut formats = vec![codec.pt];
                if let Some(red_pt) = red_pt {
                    body.extend(codec_attributes(&red_codec(red_pt, &codec)));
                    formats.insert(0, red_pt);
                }
                formats.extend(rtx.map(|r| r.payload_type));
                sections.push(accepted_section(
                    m,
                    mid,
                    local,
                    Direction::SendOnly,
                    &formats,
                    body,
                )?);
                media.push(SubscribedMedia {
                    mid: mid.to_owned(),
                    kind: kept.kind,
                    track_index,
                    feedback: feedback::flags(&codec.rtcp_fb),
                    codec,
                    ssrc: track.ssrc,
                    rtx,
                    red_pt,
                    ext: ext.ids(),
                });
            }
            (Plan::Accept(kept), None) => {
                info!(
                    section = i,
                    reason = if kept.receives {
                        "no unassigned track of this kind in a codec the viewer offered"
                    } else {
                        "the viewer does not receive on it"
                    },
                    "answering play media section inactive"
                );
                let (pt, body) = inactive_format(m);
                sections.push(accepted_section(
                    m,
                    mid,
                    local,
                    Direction::Inactive,
                    &[pt],
                    body,
                )?);
            }
        }
    }
    let mixed = offer.attributes.iter().any(|a| a.key == super::extmap::ALLOW_MIXED);
    let sdp = answer_session(local, bundle, sections, mixed).to_sdp();
    Ok(SubscribeAnswer { sdp, remote, media })
}

fn plan(offer: &SessionDescription, m: &MediaDescription) -> Plan<Kept> {
    if m.is_disabled(offer) {
        return Plan::Reject("the offer itself disabled it (port 0 without a=bundle-only in a BUNDLE group)".to_owned());
    }
    let Some(kind) = MediaKind::from_name(&m.kind) else {
        return Plan::Reject(format!("sfud does not send {} media", m.kind));
    };
    if !is_secure_rtp(&m.proto) {
        return Plan::Reject(format!("transport {} is not DTLS-SRTP", m.proto));
    }
    Plan::Accept(Kept {
        kind,
        receives: m.direction(offer).receives(),
    })
}

/// For each section, in order: the first unassigned track of its kind that
/// the viewer can decode, with the codec rewritten to the viewer's terms.
fn assign(
    offer: &SessionDescription,
    plans: &[Plan<Kept>],
    tracks: &[OfferedTrack],
) -> Vec<Option<(usize, Codec)>> {
    let mut taken = vec![false; tracks.len()];
    let mut out = Vec::with_capacity(plans.len());
    for (m, plan) in offer.media.iter().zip(plans) {
        let mut found = None;
        if let Some(kept) = plan.accepted().filter(|k| k.receives) {
            let viewer = offered_rtpmaps(m);
            for (index, track) in tracks.iter().enumerate() {
                if taken.get(index).copied().unwrap_or(true) || track.kind != kept.kind {
                    continue;
                }
                let best = viewer
                    .iter()
                    .filter_map(|r| {
                        viewer_match(&track.codec, r, m.fmtp(r.pt)).map(|score| (score, r))
                    })
                    .min_by_key(|(score, _)| *score);
                let Some((_, map)) = best else {
                    continue;
                };
                if let Some(t) = taken.get_mut(index) {
                    *t = true;
                }
                let codec = Codec {
                    pt: map.pt,
                    // Echo the viewer's parameters: for H264 the answer must keep
                    // the offered profile (RFC 6184 §8.2.2), which the track fits.
                    fmtp: m.fmtp(map.pt).map(str::to_owned),
                    rtcp_fb: supported_feedback(m, map.pt),
                    ..track.codec.clone()
                };
                found = Some((index, codec));
                break;
            }
        }
        out.push(found);
    }
    out
}

/// The codec lines (and the repair format's, with `rtx`), then msid and the
/// legacy a=ssrc lines some receivers still need to bind the SSRCs to their
/// track before the first packet arrives, the FID group first (RFC 5576 §4.2).
pub(crate) fn sending_attributes(
    codec: &Codec,
    rtx: Option<RtxSpec>,
    track: &OfferedTrack,
) -> Vec<Attribute> {
    let stream = sanitize(&track.stream_id);
    let track_id = sanitize(&track.track_id);
    let cname = sanitize(&track.cname);
    let mut body = codec_attributes(codec);
    if let Some(rtx) = rtx {
        body.extend(codec_attributes(&rtx_codec(rtx.payload_type, codec)));
    }
    body.push(Attribute::with_value(
        "msid",
        format!("{stream} {track_id}"),
    ));
    let mut ssrcs = vec![track.ssrc];
    if let Some(rtx) = rtx {
        body.push(fid_group(track.ssrc, rtx.ssrc));
        ssrcs.push(rtx.ssrc);
    }
    for ssrc in ssrcs {
        body.push(Attribute::with_value(
            "ssrc",
            format!("{ssrc} cname:{cname}"),
        ));
        body.push(Attribute::with_value(
            "ssrc",
            format!("{ssrc} msid:{stream} {track_id}"),
        ));
    }
    body
}

/// Ids can come from a publisher's SDP; whitespace would change the meaning of
/// the line they go in.
fn sanitize(id: &str) -> String {
    let s: String = id
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .take(64)
        .collect();
    if s.is_empty() {
        "-".to_owned()
    } else {
        s
    }
}

/// An inactive section still has to name one offered format (RFC 3264 §6.1);
/// echo a real codec the viewer offered, so its transceiver stays reusable.
fn inactive_format(m: &MediaDescription) -> (u8, Vec<Attribute>) {
    let maps = offered_rtpmaps(m);
    let known = |name: &str| {
        ["opus", "VP8", "H264"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(name))
    };
    let pick = maps
        .iter()
        .find(|r| known(&r.name))
        .or_else(|| maps.iter().find(|r| !is_auxiliary(&r.name)))
        .or(maps.first());
    match pick {
        Some(r) => {
            let codec = Codec {
                pt: r.pt,
                name: r.name.clone(),
                clock_rate: r.clock_rate,
                channels: r.channels,
                fmtp: m.fmtp(r.pt).map(str::to_owned),
                rtcp_fb: Vec::new(),
            };
            (r.pt, codec_attributes(&codec))
        }
        // A static payload type without rtpmap (e.g. 0 for PCMU); the parser
        // has checked that RTP formats are numbers.
        None => (
            m.formats.first().and_then(|f| f.parse().ok()).unwrap_or(0),
            Vec::new(),
        ),
    }
}

fn explain_no_match(
    offer: &SessionDescription,
    plans: &[Plan<Kept>],
    tracks: &[OfferedTrack],
) -> String {
    if tracks.is_empty() {
        return "there is nothing to play yet (the stream has no tracks)".to_owned();
    }
    let receiving: Vec<String> = offer
        .media
        .iter()
        .zip(plans)
        .filter(|(_, p)| p.accepted().is_some_and(|k| k.receives))
        .map(|(m, _)| format!("{} [{}]", m.kind, describe_offered(m)))
        .collect();
    if receiving.is_empty() {
        let mut s = "the offer has no audio or video m-line that receives (recvonly or sendrecv)"
            .to_owned();
        let rejected = rejection_summary(offer, plans);
        if !rejected.is_empty() {
            s.push_str(&format!("; {rejected}"));
        }
        return s;
    }
    let needed: Vec<String> = tracks
        .iter()
        .map(|t| format!("{} {}", t.kind.as_str(), t.codec.describe()))
        .collect();
    format!(
        "the viewer offered {}, but the stream's tracks need {}",
        receiving.join(", "),
        needed.join(", ")
    )
}
