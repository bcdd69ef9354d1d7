//! What WHIP and WHEP answers share: per-section plans, mid and BUNDLE rules
//! (RFC 8843), rejected sections, and the session-level skeleton.

use super::codec::{describe, Codec};
use super::error::NegotiationError;
use super::model::{Attribute, Direction, MediaDescription, RtpMap, SessionDescription};
use super::transport::LocalIce;

/// What the answer will do with one offered media section.
pub(crate) enum Plan<T> {
    /// Answered with port 0; the reason feeds NoUsableMedia messages and logs.
    Reject(String),
    Accept(T),
}

impl<T> Plan<T> {
    pub(crate) fn accepted(&self) -> Option<&T> {
        match self {
            Plan::Accept(t) => Some(t),
            Plan::Reject(_) => None,
        }
    }
}

/// Longer mids are legal SDP but cannot fit the RTP header extension that
/// carries them in practice (browsers use a few characters).
const MAX_MID_LEN: usize = 32;

pub(crate) fn section_label(index: usize, m: &MediaDescription) -> String {
    match m.mid() {
        Some(mid) => format!("m-line #{index} ({}, mid {mid})", m.kind),
        None => format!("m-line #{index} ({})", m.kind),
    }
}

/// BUNDLE names sections by mid, so every section we accept needs a usable
/// one, and no two sections may share one.
pub(crate) fn check_mids<T>(
    offer: &SessionDescription,
    plans: &[Plan<T>],
) -> Result<(), NegotiationError> {
    let mut seen: Vec<&str> = Vec::new();
    for (i, (m, plan)) in offer.media.iter().zip(plans).enumerate() {
        match m.mid() {
            Some(mid) => {
                let accepted = plan.accepted().is_some();
                if accepted
                    && (mid.is_empty()
                        || mid.len() > MAX_MID_LEN
                        || !mid.bytes().all(|b| b.is_ascii_graphic()))
                {
                    return Err(NegotiationError::InvalidOffer(format!(
                        "m-line #{i} has an unusable a=mid (1 to {MAX_MID_LEN} visible ASCII characters required)"
                    )));
                }
                if seen.contains(&mid) {
                    return Err(NegotiationError::InvalidOffer(format!(
                        "a=mid:{mid} appears on more than one m-line"
                    )));
                }
                seen.push(mid);
            }
            None if plan.accepted().is_some() => {
                return Err(NegotiationError::InvalidOffer(format!(
                    "{} has no a=mid; sfud needs mids to BUNDLE media",
                    section_label(i, m)
                )));
            }
            None => {}
        }
    }
    Ok(())
}

/// Keeps the accepted sections that share the first accepted one's BUNDLE
/// group and rejects the rest; returns the answer's group in offer order.
/// None means there is no group to write (a lone section offered unbundled).
pub(crate) fn settle_bundle<T>(
    offer: &SessionDescription,
    plans: &mut [Plan<T>],
) -> Result<Option<Vec<String>>, NegotiationError> {
    let accepted: Vec<usize> = plans
        .iter()
        .enumerate()
        .filter(|(_, p)| p.accepted().is_some())
        .map(|(i, _)| i)
        .collect();
    let Some(&first) = accepted.first() else {
        return Ok(None);
    };
    let mid_of = |i: usize| offer.media.get(i).and_then(|m| m.mid()).unwrap_or("");
    let groups = offer.bundle_groups();
    let Some(group) = groups.iter().find(|g| g.contains(&mid_of(first))) else {
        return if accepted.len() > 1 {
            Err(NegotiationError::BundleRequired)
        } else {
            Ok(None)
        };
    };
    let mut mids = Vec::with_capacity(accepted.len());
    for i in accepted {
        let mid = mid_of(i);
        if group.contains(&mid) {
            mids.push(mid.to_owned());
        } else if let Some(plan) = plans.get_mut(i) {
            *plan = Plan::Reject(format!(
                "mid {mid} is outside the BUNDLE group sfud answers"
            ));
        }
    }
    Ok(Some(mids))
}

/// "m-line #0 (application, mid 2): reason; ..." for NoUsableMedia.
pub(crate) fn rejection_summary<T>(offer: &SessionDescription, plans: &[Plan<T>]) -> String {
    let reasons: Vec<String> = offer
        .media
        .iter()
        .zip(plans)
        .enumerate()
        .filter_map(|(i, (m, p))| match p {
            Plan::Reject(reason) => Some(format!("{}: {reason}", section_label(i, m))),
            Plan::Accept(_) => None,
        })
        .collect();
    reasons.join("; ")
}

pub(crate) fn is_secure_rtp(proto: &str) -> bool {
    proto.ends_with("RTP/SAVPF") || proto.ends_with("RTP/SAVP")
}

/// RFC 3264 §6: port 0, the offered formats echoed, and the mid kept so the
/// offerer can match the section (RFC 8843 §7.3.3). The ICE credentials,
/// fingerprint and setup are repeated because strict parsers (GStreamer's
/// webrtcbin) refuse a whole answer in which any section lacks them.
pub(crate) fn rejected_section(m: &MediaDescription, local: &LocalIce) -> MediaDescription {
    let mut attributes = Vec::new();
    if let Some(mid) = m.mid() {
        attributes.push(Attribute::with_value("mid", mid));
    }
    attributes.extend(local.ice_dtls_attributes("passive"));
    MediaDescription {
        kind: m.kind.clone(),
        port: 0,
        proto: m.proto.clone(),
        formats: m.formats.clone(),
        connection: Some("IN IP4 0.0.0.0".to_owned()),
        attributes,
    }
}

/// A stable, numeric sess-id (RFC 8866 §5.2) without needing randomness here:
/// the local ufrag is already random and unique per session.
pub(crate) fn session_id(ufrag: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in ufrag.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h & (i64::MAX as u64)
}

/// sfud's answer's session level; `allow_mixed` when the offer allowed
/// mixed extension forms (then sfud does too, RFC 8285 §6).
pub(crate) fn answer_session(
    local: &LocalIce,
    bundle: Option<Vec<String>>,
    media: Vec<MediaDescription>,
    allow_mixed: bool,
) -> SessionDescription {
    let mut sd = local_session(local, 2, bundle, media);
    if !allow_mixed {
        sd.attributes.retain(|a| a.key != super::extmap::ALLOW_MIXED);
    }
    sd
}

/// sfud's session level, offers and answers alike; `version` is the o= line's
/// sess-version, which must grow with every new offer (RFC 3264 §8).
pub(crate) fn local_session(
    local: &LocalIce,
    version: u64,
    bundle: Option<Vec<String>>,
    media: Vec<MediaDescription>,
) -> SessionDescription {
    let mut attributes = vec![Attribute::flag("ice-lite")];
    attributes.push(Attribute::with_value("msid-semantic", " WMS *"));
    attributes.push(Attribute::flag(super::extmap::ALLOW_MIXED));
    if let Some(mids) = bundle {
        let mut v = String::from("BUNDLE");
        for mid in mids {
            v.push(' ');
            v.push_str(&mid);
        }
        attributes.push(Attribute::with_value("group", v));
    }
    SessionDescription {
        origin: format!(
            "sfud {} {version} IN IP4 127.0.0.1",
            session_id(&local.ufrag)
        ),
        session_name: "-".to_owned(),
        connection: None,
        timing: "0 0".to_owned(),
        attributes,
        media,
    }
}

/// An accepted section: mid, direction, the shared transport, then the
/// caller's codec/stream attributes, then the candidates.
pub(crate) fn accepted_section(
    offered: &MediaDescription,
    mid: &str,
    local: &LocalIce,
    direction: Direction,
    formats: &[u8],
    body: Vec<Attribute>,
) -> Result<MediaDescription, NegotiationError> {
    let (connection, port) = local.connection_and_port()?;
    let mut attributes = vec![
        Attribute::with_value("mid", mid),
        Attribute::flag(direction.as_str()),
    ];
    attributes.extend(local.transport_attributes());
    if offered.has_attribute("rtcp-rsize") {
        attributes.push(Attribute::flag("rtcp-rsize"));
    }
    attributes.extend(body);
    attributes.extend(local.candidate_attributes());
    Ok(MediaDescription {
        kind: offered.kind.clone(),
        port,
        proto: offered.proto.clone(),
        formats: formats.iter().map(u8::to_string).collect(),
        connection: Some(connection),
        attributes,
    })
}

/// rtpmap, rtcp-fb and fmtp lines for one codec.
pub(crate) fn codec_attributes(codec: &Codec) -> Vec<Attribute> {
    let encoding = if codec.channels > 1 {
        format!(
            "{} {}/{}/{}",
            codec.pt, codec.name, codec.clock_rate, codec.channels
        )
    } else {
        format!("{} {}/{}", codec.pt, codec.name, codec.clock_rate)
    };
    let mut out = vec![Attribute::with_value("rtpmap", encoding)];
    for fb in &codec.rtcp_fb {
        out.push(Attribute::with_value(
            "rtcp-fb",
            format!("{} {fb}", codec.pt),
        ));
    }
    if let Some(fmtp) = &codec.fmtp {
        out.push(Attribute::with_value(
            "fmtp",
            format!("{} {fmtp}", codec.pt),
        ));
    }
    out
}

/// The offered payload types that have an rtpmap, in the m-line's preference order.
pub(crate) fn offered_rtpmaps(m: &MediaDescription) -> Vec<RtpMap> {
    let maps = m.rtpmaps();
    m.formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter_map(|pt| maps.iter().find(|r| r.pt == pt).cloned())
        .collect()
}

/// "VP9/90000, AV1/90000" for messages.
pub(crate) fn describe_offered(m: &MediaDescription) -> String {
    let list: Vec<String> = offered_rtpmaps(m)
        .iter()
        .filter(|r| !is_auxiliary(&r.name))
        .map(|r| describe(&r.name, r.clock_rate, r.channels, m.fmtp(r.pt)))
        .collect();
    if list.is_empty() {
        "no codec".to_owned()
    } else {
        list.join(", ")
    }
}

/// Payload types that are not media codecs of their own.
pub(crate) fn is_auxiliary(name: &str) -> bool {
    [
        "rtx",
        "red",
        "ulpfec",
        "flexfec-03",
        "CN",
        "telephone-event",
    ]
    .iter()
    .any(|a| a.eq_ignore_ascii_case(name))
}

/// The SCTP port sfud's data channel endpoint listens on inside DTLS
/// (RFC 8841 §5; browsers use 5000 too).
pub const SCTP_PORT: u16 = 5000;
/// The largest data channel message sfud accepts (RFC 8841 §6).
pub const MAX_MESSAGE_SIZE: u64 = 262_144;
/// RFC 8841 §6.1: a peer that omits a=max-message-size takes 64 KiB.
const DEFAULT_MAX_MESSAGE_SIZE: u64 = 65_536;

/// What the SCTP association needs from the other side's data channel section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataChannelParams {
    pub mid: String,
    /// The peer's a=sctp-port; 5000 when absent (RFC 8841 §5.2).
    pub remote_sctp_port: u16,
    /// The peer's a=max-message-size; 65536 when absent, 0 means no limit.
    pub remote_max_message_size: u64,
}

/// Whether a section is the WebRTC data channel in its current form
/// (RFC 8841): the pre-standard "DTLS/SCTP 5000" + a=sctpmap form is not.
pub(crate) fn is_data_channel(m: &MediaDescription) -> bool {
    m.kind == "application"
        && (m.proto == "UDP/DTLS/SCTP" || m.proto == "TCP/DTLS/SCTP")
        && m.formats.iter().any(|f| f == "webrtc-datachannel")
}

/// The peer's SCTP parameters, or None when a present value is malformed.
pub(crate) fn data_channel_params(m: &MediaDescription, mid: &str) -> Option<DataChannelParams> {
    let remote_sctp_port = match m.attribute("sctp-port") {
        Some(v) => v.trim().parse().ok().filter(|p| *p != 0)?,
        None => SCTP_PORT,
    };
    let remote_max_message_size = match m.attribute("max-message-size") {
        Some(v) => v.trim().parse().ok()?,
        None => DEFAULT_MAX_MESSAGE_SIZE,
    };
    Some(DataChannelParams {
        mid: mid.to_owned(),
        remote_sctp_port,
        remote_max_message_size,
    })
}

/// An accepted data channel section: no direction and no rtcp-mux (neither
/// applies to SCTP), the bundle transport, sfud's SCTP parameters, candidates.
pub(crate) fn data_channel_section(
    proto: &str,
    mid: &str,
    local: &LocalIce,
    setup: &str,
) -> Result<MediaDescription, NegotiationError> {
    let (connection, port) = local.connection_and_port()?;
    Ok(MediaDescription {
        kind: "application".to_owned(),
        port,
        proto: proto.to_owned(),
        formats: vec!["webrtc-datachannel".to_owned()],
        connection: Some(connection),
        attributes: data_channel_attributes(mid, local, setup),
    })
}

pub(crate) fn data_channel_attributes(mid: &str, local: &LocalIce, setup: &str) -> Vec<Attribute> {
    let mut attributes = vec![Attribute::with_value("mid", mid)];
    attributes.extend(local.ice_dtls_attributes(setup));
    attributes.push(Attribute::with_value("sctp-port", SCTP_PORT.to_string()));
    attributes.push(Attribute::with_value(
        "max-message-size",
        MAX_MESSAGE_SIZE.to_string(),
    ));
    attributes.extend(local.candidate_attributes());
    attributes
}
