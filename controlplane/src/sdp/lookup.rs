//! Typed views of the attributes WebRTC uses. Malformed individual attributes
//! are skipped rather than failing the whole lookup: the negotiation layer
//! decides what is required and reports its absence.
//!
//! Helpers whose attribute RFCs allow at session level (direction, ICE
//! credentials, fingerprint, setup, extmap) take the session and fall back to
//! it when the media section says nothing.

use super::model::{
    find_value, values, Direction, Extmap, MediaDescription, RtpMap, SessionDescription, SsrcGroup,
};

impl SessionDescription {
    /// First value of a session-level attribute ("" for a flag).
    pub fn attribute(&self, key: &str) -> Option<&str> {
        find_value(&self.attributes, key)
    }

    /// Every `a=group:BUNDLE` at session level, as lists of mids.
    pub fn bundle_groups(&self) -> Vec<Vec<&str>> {
        values(&self.attributes, "group")
            .filter_map(|v| {
                let mut it = v.split_whitespace();
                (it.next() == Some("BUNDLE")).then(|| it.collect())
            })
            .collect()
    }

    pub fn is_ice_lite(&self) -> bool {
        self.attributes.iter().any(|a| a.key == "ice-lite")
    }
}

impl MediaDescription {
    /// First value of a media-level attribute ("" for a flag).
    pub fn attribute(&self, key: &str) -> Option<&str> {
        find_value(&self.attributes, key)
    }

    pub fn has_attribute(&self, key: &str) -> bool {
        self.attributes.iter().any(|a| a.key == key)
    }

    fn or_session<'a>(&'a self, session: &'a SessionDescription, key: &str) -> Option<&'a str> {
        self.attribute(key).or_else(|| session.attribute(key))
    }

    pub fn mid(&self) -> Option<&str> {
        self.attribute("mid").map(str::trim)
    }

    /// sendrecv when neither level says otherwise (RFC 8866 §6.7).
    pub fn direction(&self, session: &SessionDescription) -> Direction {
        let find = |attrs: &[super::model::Attribute]| {
            attrs.iter().find_map(|a| Direction::from_attribute(&a.key))
        };
        find(&self.attributes)
            .or_else(|| find(&session.attributes))
            .unwrap_or(Direction::SendRecv)
    }

    pub fn ice_ufrag<'a>(&'a self, session: &'a SessionDescription) -> Option<&'a str> {
        self.or_session(session, "ice-ufrag").map(str::trim)
    }

    pub fn ice_pwd<'a>(&'a self, session: &'a SessionDescription) -> Option<&'a str> {
        self.or_session(session, "ice-pwd").map(str::trim)
    }

    /// The first `a=fingerprint:<alg> <value>`.
    pub fn fingerprint<'a>(
        &'a self,
        session: &'a SessionDescription,
    ) -> Option<(&'a str, &'a str)> {
        self.fingerprints(session).into_iter().next()
    }

    /// All fingerprints: the media-level ones if there are any, else the
    /// session-level ones (RFC 8122 §5 allows several algorithms).
    pub fn fingerprints<'a>(&'a self, session: &'a SessionDescription) -> Vec<(&'a str, &'a str)> {
        let parse = |v: &'a str| {
            let mut it = v.split_whitespace();
            match (it.next(), it.next(), it.next()) {
                (Some(alg), Some(value), None) => Some((alg, value)),
                _ => None,
            }
        };
        let media: Vec<_> = values(&self.attributes, "fingerprint")
            .filter_map(parse)
            .collect();
        if !media.is_empty() {
            return media;
        }
        values(&session.attributes, "fingerprint")
            .filter_map(parse)
            .collect()
    }

    pub fn setup<'a>(&'a self, session: &'a SessionDescription) -> Option<&'a str> {
        self.or_session(session, "setup").map(str::trim)
    }

    pub fn rtcp_mux(&self) -> bool {
        self.has_attribute("rtcp-mux")
    }

    /// Port 0, whatever the reason: see `is_disabled` for what it means.
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }

    /// RFC 8843 §6: port 0 plus `a=bundle-only` asks to be bundled, not to be
    /// disabled, as long as the section's mid is in an offered BUNDLE group.
    /// Firefox and GStreamer (max-bundle) offer every section but the first
    /// this way.
    pub fn is_bundle_only(&self, session: &SessionDescription) -> bool {
        self.port == 0
            && self.has_attribute("bundle-only")
            && self
                .mid()
                .is_some_and(|mid| session.bundle_groups().iter().any(|g| g.contains(&mid)))
    }

    /// Whether the section is really switched off: port 0 without being a
    /// bundle-only member of a BUNDLE group.
    pub fn is_disabled(&self, session: &SessionDescription) -> bool {
        self.port == 0 && !self.is_bundle_only(session)
    }

    /// Every well-formed rtpmap, in attribute order.
    pub fn rtpmaps(&self) -> Vec<RtpMap> {
        values(&self.attributes, "rtpmap")
            .filter_map(parse_rtpmap)
            .collect()
    }

    pub fn rtpmap(&self, pt: u8) -> Option<RtpMap> {
        values(&self.attributes, "rtpmap")
            .filter_map(parse_rtpmap)
            .find(|r| r.pt == pt)
    }

    /// The format parameters of `pt`, without the payload type prefix.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        values(&self.attributes, "fmtp").find_map(|v| {
            let (p, params) = v.split_once(' ')?;
            (p.parse::<u8>().ok()? == pt).then(|| params.trim())
        })
    }

    /// The rtcp-fb values that apply to `pt`, including `a=rtcp-fb:*` ones.
    pub fn rtcp_fbs(&self, pt: u8) -> Vec<&str> {
        values(&self.attributes, "rtcp-fb")
            .filter_map(|v| {
                let (p, fb) = v.split_once(' ')?;
                let applies = p == "*" || p.parse::<u8>().ok() == Some(pt);
                (applies && !fb.trim().is_empty()).then(|| fb.trim())
            })
            .collect()
    }

    /// `(id, uri)` of each `a=extmap:<id>[/<direction>] <uri>`, media level
    /// if present there, else session level (RFC 8285 §8).
    pub fn extmaps<'a>(&'a self, session: &'a SessionDescription) -> Vec<(u8, &'a str)> {
        self.extmap_entries(session)
            .into_iter()
            .map(|e| (e.id, e.uri))
            .collect()
    }

    /// Every well-formed extmap with its direction qualifier, media level if
    /// present there, else session level (RFC 8285 §8). Ids are 1 to 255
    /// except 15: 0 is padding and 15 is reserved in the one-byte form
    /// (RFC 8285 §4.2); an unknown direction makes the line malformed.
    pub fn extmap_entries<'a>(&'a self, session: &'a SessionDescription) -> Vec<Extmap<'a>> {
        let media: Vec<_> = values(&self.attributes, "extmap")
            .filter_map(parse_extmap)
            .collect();
        if !media.is_empty() {
            return media;
        }
        values(&session.attributes, "extmap")
            .filter_map(parse_extmap)
            .collect()
    }

    /// Distinct SSRCs of `a=ssrc` lines, in order of first appearance.
    pub fn ssrcs(&self) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        for v in values(&self.attributes, "ssrc") {
            if let Some(ssrc) = v.split_whitespace().next().and_then(|s| s.parse().ok()) {
                if !out.contains(&ssrc) {
                    out.push(ssrc);
                }
            }
        }
        out
    }

    pub fn ssrc_groups(&self) -> Vec<SsrcGroup> {
        values(&self.attributes, "ssrc-group")
            .filter_map(|v| {
                let mut it = v.split_whitespace();
                let semantics = it.next()?.to_owned();
                let ssrcs: Option<Vec<u32>> = it.map(|s| s.parse().ok()).collect();
                let ssrcs = ssrcs?;
                (!ssrcs.is_empty()).then_some(SsrcGroup { semantics, ssrcs })
            })
            .collect()
    }

    /// `(stream id, track id)` from `a=msid` (RFC 8830), falling back to the
    /// legacy `a=ssrc:<n> msid:<stream> <track>` older clients still send.
    pub fn msid(&self) -> Option<(&str, Option<&str>)> {
        self.attribute("msid").and_then(split_msid).or_else(|| {
            values(&self.attributes, "ssrc").find_map(|v| {
                let (_, rest) = v.split_once(' ')?;
                split_msid(rest.trim().strip_prefix("msid:")?)
            })
        })
    }
}

fn parse_extmap(v: &str) -> Option<Extmap<'_>> {
    let mut it = v.split_whitespace();
    let id = it.next()?;
    let (id, direction) = match id.split_once('/') {
        Some((id, dir)) => (id, Some(Direction::from_attribute(dir)?)),
        None => (id, None),
    };
    let id: u8 = id.parse().ok()?;
    if id == 0 || id == 15 {
        return None;
    }
    Some(Extmap {
        id,
        direction,
        uri: it.next()?,
    })
}

fn split_msid(v: &str) -> Option<(&str, Option<&str>)> {
    let mut it = v.split_whitespace();
    let stream = it.next()?;
    Some((stream, it.next()))
}

fn parse_rtpmap(v: &str) -> Option<RtpMap> {
    let (pt, enc) = v.trim().split_once(' ')?;
    let pt: u8 = pt.parse().ok()?;
    if pt > 127 {
        return None;
    }
    let mut parts = enc.trim().split('/');
    let name = parts.next()?.trim();
    let clock_rate: u32 = parts.next()?.trim().parse().ok()?;
    let channels: u8 = match parts.next() {
        Some(c) => c.trim().parse().ok()?,
        None => 1,
    };
    if name.is_empty() || clock_rate == 0 || channels == 0 || parts.next().is_some() {
        return None;
    }
    Some(RtpMap {
        pt,
        name: name.to_owned(),
        clock_rate,
        channels,
    })
}
