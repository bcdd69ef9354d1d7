//! WHIP: answering a publisher's offer. sfud receives one codec per section,
//! plus that codec's RTX repair format on video (RFC 4588), and binds
//! incoming SSRCs to sections by the sdes:mid header extension or the offered
//! a=ssrc lines (the FID group names the repair SSRC). Audio RED around Opus
//! (RFC 2198) is answered, first, so browsers send it; FEC formats are not. The header extensions of `ExtIds` are accepted with the
//! publisher's ids, and transport-cc replaces goog-remb when both are
//! possible (see `feedback`). Rooms answer their publisher PeerConnections
//! with `answer_publish_with`, which can also keep the client's data channel
//! and answer removed tracks inactive.

use dataplane::msg::{ExtIds, Feedback, LayerSpec};
use tracing::info;

use super::answer::{
    accepted_section, answer_session, check_mids, codec_attributes, data_channel_params,
    data_channel_section, describe_offered, is_auxiliary, is_data_channel, is_secure_rtp, offered_rtpmaps,
    rejected_section, rejection_summary, settle_bundle, DataChannelParams, Plan,
};
use super::codec::{canonical_name, h264_publish_rank, supported_feedback, Codec, MediaKind};
use super::error::NegotiationError;
use super::extmap::{self, Extensions, Flow};
use super::feedback;
use super::model::{Direction, MediaDescription, RtpMap, SessionDescription};
use super::red::{offered_red, red_codec};
use super::rtx::{offered_rtx, rtx_codec};
use super::simulcast;
use super::transport::{remote_params, LocalIce, RemoteParams};

/// One media section sfud accepted from a publisher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedMedia {
    pub mid: String,
    pub kind: MediaKind,
    pub codec: Codec,
    /// Primary SSRC from a=ssrc (first of the FID group when there is one).
    pub ssrc: Option<u32>,
    /// The FID partner of `ssrc`: the SSRC of its repair stream, when signalled.
    pub rtx_ssrc: Option<u32>,
    /// The rtx payload type answered for `codec` (its apt); None for audio,
    /// and for video offered without one.
    pub rtx_pt: Option<u8>,
    /// The `red/48000/2` payload type answered around Opus (listed first,
    /// so the browser sends RED); None for video and offers without it.
    pub red_pt: Option<u8>,
    /// Header extensions as answered, with the publisher's ids.
    pub ext: ExtIds,
    /// What the answer's rtcp-fb lines for `codec` amount to.
    pub feedback: Feedback,
    pub stream_id: Option<String>,
    pub track_id: Option<String>,
    /// Simulcast layers, lowest first (`simulcast`); empty for one stream.
    pub layers: Vec<LayerSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishAnswer {
    pub sdp: String,
    pub remote: RemoteParams,
    /// Accepted sections, in offer order.
    pub media: Vec<PublishedMedia>,
    /// The client's data channel section, when accepted (see `PublishOptions`).
    pub data_channel: Option<DataChannelParams>,
}

/// What a publisher PeerConnection of a room needs beyond WHIP. The default
/// is exactly WHIP's behaviour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// Accept the client's data channel section (ion-sdk-js always opens one,
    /// labelled "ion-sfu", and it is the only section of its join offer).
    /// Only set it when sfud runs an SCTP endpoint on this transport.
    pub accept_data_channel: bool,
    /// Answer audio/video sections that stopped sending (a removed track
    /// comes back a=inactive, or recvonly) inactive instead of rejecting them,
    /// so a renegotiation keeps the m-line in the bundle and reusable.
    pub keep_inactive: bool,
}

/// Answers a WHIP offer. See the module docs of `sdp` for the rules.
pub fn answer_publish(
    offer: &SessionDescription,
    local: &LocalIce,
) -> Result<PublishAnswer, NegotiationError> {
    answer_publish_with(offer, local, PublishOptions::default())
}

/// What the answer does with a section it keeps.
enum Kept {
    /// Received media, and the extensions to answer on it.
    Media(PublishedMedia, Extensions),
    /// A publishing section that no longer sends; answered inactive with
    /// the codec it would use.
    Inactive(Codec),
    Data(DataChannelParams),
}

/// Answers a publisher's offer, first or renegotiated: a renegotiation
/// carries every m-line of the previous one with the same mids, so answering
/// it from scratch gives the same answer for the sections that did not change.
pub fn answer_publish_with(
    offer: &SessionDescription,
    local: &LocalIce,
    options: PublishOptions,
) -> Result<PublishAnswer, NegotiationError> {
    let mut plans: Vec<Plan<Kept>> = offer
        .media
        .iter()
        .map(|m| plan_with(offer, m, options))
        .collect();
    check_mids(offer, &plans)?;
    let bundle = settle_bundle(offer, &mut plans)?;

    let Some(tagged) = offer
        .media
        .iter()
        .zip(&plans)
        .find(|(_, p)| p.accepted().is_some())
    else {
        return Err(NegotiationError::NoUsableMedia(format!(
            "nothing in the offer can be published: {}",
            rejection_summary(offer, &plans)
        )));
    };
    let tagged_mid = tagged.0.mid().unwrap_or("");
    let remote = remote_params(offer, tagged.0, tagged_mid)?;
    // remote_params skips the rtcp-mux check for a data channel tag, so
    // make it on the first RTP section instead.
    if let Some((m, _)) = offer
        .media
        .iter()
        .zip(&plans)
        .find(|(_, p)| matches!(p.accepted(), Some(Kept::Media(..) | Kept::Inactive(_))))
    {
        if !m.rtcp_mux() {
            return Err(NegotiationError::RtcpMuxRequired {
                mid: m.mid().unwrap_or("").to_owned(),
            });
        }
    }

    let mut sections = Vec::with_capacity(offer.media.len());
    let mut media = Vec::new();
    let mut data_channel = None;
    for (i, (m, plan)) in offer.media.iter().zip(plans).enumerate() {
        let mid = m.mid().unwrap_or("");
        match plan {
            Plan::Reject(reason) => {
                info!(section = i, %reason, "rejecting publish media section");
                sections.push(rejected_section(m, local));
            }
            Plan::Accept(Kept::Media(p, ext)) => {
                let mut body = ext.attributes();
                body.extend(codec_attributes(&p.codec));
                body.extend(simulcast::answer_attributes(&p.layers));
                let mut formats = vec![p.codec.pt];
                if let Some(red_pt) = p.red_pt {
                    body.extend(codec_attributes(&red_codec(red_pt, &p.codec)));
                    formats.insert(0, red_pt);
                }
                if let Some(rtx_pt) = p.rtx_pt {
                    body.extend(codec_attributes(&rtx_codec(rtx_pt, &p.codec)));
                    formats.push(rtx_pt);
                }
                sections.push(accepted_section(
                    m,
                    &p.mid,
                    local,
                    Direction::RecvOnly,
                    &formats,
                    body,
                )?);
                media.push(p);
            }
            Plan::Accept(Kept::Inactive(codec)) => {
                sections.push(accepted_section(
                    m,
                    mid,
                    local,
                    Direction::Inactive,
                    &[codec.pt],
                    codec_attributes(&codec),
                )?);
            }
            Plan::Accept(Kept::Data(params)) => {
                sections.push(data_channel_section(&m.proto, mid, local, "passive")?);
                data_channel = Some(params);
            }
        }
    }
    let mixed = offer.attributes.iter().any(|a| a.key == super::extmap::ALLOW_MIXED);
    let sdp = answer_session(local, bundle, sections, mixed).to_sdp();
    Ok(PublishAnswer {
        sdp,
        remote,
        media,
        data_channel,
    })
}

fn plan_with(
    offer: &SessionDescription,
    m: &MediaDescription,
    options: PublishOptions,
) -> Plan<Kept> {
    if options.accept_data_channel && !m.is_disabled(offer) && is_data_channel(m) {
        return match data_channel_params(m, m.mid().unwrap_or("")) {
            Some(params) => Plan::Accept(Kept::Data(params)),
            None => Plan::Reject("malformed a=sctp-port or a=max-message-size".to_owned()),
        };
    }
    if options.keep_inactive && !m.is_disabled(offer) && is_secure_rtp(&m.proto) {
        if let Some(kind) = MediaKind::from_name(&m.kind) {
            if !m.direction(offer).sends() {
                let chosen = match kind {
                    MediaKind::Audio => choose_audio(m),
                    MediaKind::Video => choose_video(m),
                };
                if let Some(rtpmap) = chosen {
                    let codec = codec_of(m, &rtpmap, &mut Extensions::default());
                    return Plan::Accept(Kept::Inactive(codec));
                }
            }
        }
    }
    match plan(offer, m) {
        Plan::Accept((p, ext)) => Plan::Accept(Kept::Media(p, ext)),
        Plan::Reject(reason) => Plan::Reject(reason),
    }
}

/// The codec as answered: the offered fmtp kept (for opus that carries
/// useinbandfec and usedtx, so FEC and DTX pass through sfud untouched), and
/// the feedback settled against the section's extensions `ext`.
fn codec_of(m: &MediaDescription, rtpmap: &RtpMap, ext: &mut Extensions) -> Codec {
    Codec {
        pt: rtpmap.pt,
        name: canonical_name(&rtpmap.name),
        clock_rate: rtpmap.clock_rate,
        channels: rtpmap.channels,
        fmtp: m.fmtp(rtpmap.pt).map(str::to_owned),
        rtcp_fb: feedback::settle(supported_feedback(m, rtpmap.pt), ext),
    }
}

fn plan(offer: &SessionDescription, m: &MediaDescription) -> Plan<(PublishedMedia, Extensions)> {
    if m.is_disabled(offer) {
        return Plan::Reject("the offer itself disabled it (port 0 without a=bundle-only in a BUNDLE group)".to_owned());
    }
    let Some(kind) = MediaKind::from_name(&m.kind) else {
        return Plan::Reject(format!("sfud does not take {} media", m.kind));
    };
    if !is_secure_rtp(&m.proto) {
        return Plan::Reject(format!("transport {} is not DTLS-SRTP", m.proto));
    }
    let direction = m.direction(offer);
    if !direction.sends() {
        return Plan::Reject(format!(
            "direction {} publishes nothing",
            direction.as_str()
        ));
    }
    let chosen = match kind {
        MediaKind::Audio => choose_audio(m),
        MediaKind::Video => choose_video(m),
    };
    let Some(rtpmap) = chosen else {
        let needed = match kind {
            MediaKind::Audio => "opus/48000/2",
            MediaKind::Video => "VP8/90000, or H264/90000 with packetization-mode=1 (or VP9/AV1 offered first)",
        };
        return Plan::Reject(format!(
            "sfud needs {needed}; the offer has {}",
            describe_offered(m)
        ));
    };
    let mut ext = extmap::answer(offer, m, kind, Flow::Receive);
    let codec = codec_of(m, &rtpmap, &mut ext);
    let rtx_pt = match kind {
        MediaKind::Video => offered_rtx(m, &codec),
        MediaKind::Audio => None,
    };
    let red_pt = match kind {
        MediaKind::Audio => offered_red(m, &codec),
        MediaKind::Video => None,
    };
    let (ssrc, rtx_ssrc) = primary_ssrcs(m);
    let msid = m.msid();
    let ids = ext.ids();
    // RID layers bind by the rtp-stream-id extension: without it answered
    // they could not be told apart, so the publisher gets a single stream.
    let layers = match (kind, simulcast::offered(m)) {
        (MediaKind::Video, Some(o)) if !o.by_rid || ids.rid.is_some() => o.layers,
        _ => Vec::new(),
    };
    // With simulcast the layers own the SSRCs.
    let (ssrc, rtx_ssrc) = if layers.is_empty() { (ssrc, rtx_ssrc) } else { (None, None) };
    let media = PublishedMedia {
        mid: m.mid().unwrap_or("").to_owned(),
        kind,
        feedback: feedback::flags(&codec.rtcp_fb),
        codec,
        ssrc,
        rtx_ssrc,
        rtx_pt,
        red_pt,
        ext: ids,
        layers,
        stream_id: msid.map(|(s, _)| s.to_owned()),
        track_id: msid.and_then(|(_, t)| t).map(str::to_owned),
    };
    Plan::Accept((media, ext))
}

/// Opus; RED around it is settled by `offered_red`.
fn choose_audio(m: &MediaDescription) -> Option<RtpMap> {
    offered_rtpmaps(m)
        .into_iter()
        .find(|r| r.name.eq_ignore_ascii_case("opus") && r.clock_rate == 48000 && r.channels == 2)
}

/// VP8 first; else the best-ranked H264, earliest in the offer among equals.
fn choose_video(m: &MediaDescription) -> Option<RtpMap> {
    let maps = offered_rtpmaps(m);
    // A publisher that puts VP9 or AV1 first asked for it (for SVC, say):
    // it gets it. Otherwise VP8 first, as browsers offer by default.
    if let Some(first) = maps.iter().find(|r| !is_auxiliary(&r.name)) {
        if (first.name.eq_ignore_ascii_case("VP9") || first.name.eq_ignore_ascii_case("AV1")) && first.clock_rate == 90000 {
            return Some(first.clone());
        }
    }
    if let Some(vp8) = maps
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case("VP8") && r.clock_rate == 90000)
    {
        return Some(vp8.clone());
    }
    maps.into_iter()
        .filter(|r| r.name.eq_ignore_ascii_case("H264") && r.clock_rate == 90000)
        .filter_map(|r| h264_publish_rank(m.fmtp(r.pt)).map(|rank| (rank, r)))
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, r)| r)
}

fn primary_ssrcs(m: &MediaDescription) -> (Option<u32>, Option<u32>) {
    let fid = m
        .ssrc_groups()
        .into_iter()
        .find(|g| g.semantics == "FID" && g.ssrcs.len() >= 2);
    match fid {
        Some(g) => (g.ssrcs.first().copied(), g.ssrcs.get(1).copied()),
        None => (m.ssrcs().first().copied(), None),
    }
}

#[cfg(test)]
mod choose_tests {
    use super::*;

    fn video(formats: &str, maps: &str) -> (SessionDescription, MediaDescription) {
        let sdp = format!("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF {formats}\r\n{maps}");
        let sd = SessionDescription::parse(&sdp).unwrap();
        let m = sd.media[0].clone();
        (sd, m)
    }

    /// SVC publishers put VP9 or AV1 first (setCodecPreferences); anyone
    /// else gets VP8 as before, wherever it is in the list.
    #[test]
    fn vp9_or_av1_offered_first_is_chosen() {
        let maps = "a=rtpmap:96 VP8/90000\r\na=rtpmap:98 VP9/90000\r\na=rtpmap:45 AV1/90000\r\na=rtpmap:99 rtx/90000\r\n";
        let pick = |formats: &str| choose_video(&video(formats, maps).1).map(|r| r.name);
        assert_eq!(pick("99 98 96").as_deref(), Some("VP9"), "rtx does not count as first");
        assert_eq!(pick("45 96").as_deref(), Some("AV1"));
        assert_eq!(pick("96 98 45").as_deref(), Some("VP8"));
        assert_eq!(pick("98 96").as_deref(), Some("VP9"));
    }
}
