//! Simulcast receive: which encodings a publisher's video section offers,
//! and how sfud answers them.
//!
//! Two forms exist:
//! - RID-based (RFC 8851 `a=rid`, RFC 8853 `a=simulcast`), what browsers
//!   send today: `a=rid:q send`, ..., `a=simulcast:send q;h;f`. The answer
//!   echoes the rids it accepts with `recv` and `a=simulcast:recv q;h;f`;
//!   without that echo Chromium sends only its first encoding. The SSRCs are
//!   not signalled; the dataplane binds them by the rtp-stream-id header
//!   extension (and repairs by repaired-rtp-stream-id).
//! - SSRC-based (`a=ssrc-group:SIM`, the older Chromium form, from SDP
//!   munging): the SSRCs are listed lowest layer first, each with its FID
//!   repair partner; nothing is answered for it.
//!
//! Layers go to the dataplane lowest first. The rids carry no order of
//! their own, so: the rids' `max-width`/`max-height` restrictions when every
//! rid has one; else the names everybody uses (`q`/`h`/`f` as in ion-sfu
//! and LiveKit, `low`/`mid`/`high`); else the offer's order, which is
//! the order of the browser's `sendEncodings` (lowest first by convention).

use dataplane::msg::{LayerSpec, MAX_LAYERS};

use super::model::{Attribute, MediaDescription};

/// RFC 8851 allows 255 characters; the one-byte header extension form
/// carries at most 16, and the dataplane compares them byte for byte.
const MAX_RID_LEN: usize = 16;

/// What the publisher's section asks for, once understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Offered {
    /// Lowest first, at most `MAX_LAYERS`.
    pub layers: Vec<LayerSpec>,
    /// Whether the answer needs `a=rid`/`a=simulcast` lines (RID form).
    pub by_rid: bool,
}

/// The section's simulcast, when it has at least two usable layers; None
/// means a single stream (malformed simulcast lines are ignored, so the
/// publisher falls back to sending one encoding).
pub(crate) fn offered(m: &MediaDescription) -> Option<Offered> {
    if let Some(layers) = by_rid(m) {
        return Some(Offered { layers, by_rid: true });
    }
    by_ssrc_group(m).map(|layers| Offered { layers, by_rid: false })
}

/// The answer's lines for the accepted `layers`: nothing for a single
/// stream or the SSRC form.
pub(crate) fn answer_attributes(layers: &[LayerSpec]) -> Vec<Attribute> {
    let rids: Vec<&str> = layers.iter().filter_map(|l| l.rid.as_deref()).collect();
    if rids.is_empty() {
        return Vec::new();
    }
    let mut attrs: Vec<Attribute> =
        rids.iter().map(|r| Attribute::with_value("rid", format!("{r} recv"))).collect();
    attrs.push(Attribute::with_value("simulcast", format!("recv {}", rids.join(";"))));
    attrs
}

/// A `a=rid:<id> send [params]` line: the id and its max-width/max-height.
struct Rid<'a> {
    id: &'a str,
    size: Option<u32>,
}

fn parse_rid(value: &str) -> Option<Rid<'_>> {
    let mut it = value.split_whitespace();
    let id = it.next()?;
    if it.next()? != "send" || !valid_rid(id) {
        return None;
    }
    // Restrictions are `;`-separated key=value pairs (RFC 8851 §10).
    let mut width = None;
    let mut height = None;
    for kv in it.flat_map(|p| p.split(';')) {
        match kv.split_once('=') {
            Some(("max-width", v)) => width = v.parse::<u32>().ok(),
            Some(("max-height", v)) => height = v.parse::<u32>().ok(),
            _ => {}
        }
    }
    Some(Rid { id, size: width.or(height) })
}

fn valid_rid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_RID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The rids `a=simulcast:send` lists, in its order: the first alternative
/// of each stream, paused (`~`) streams skipped (RFC 8853 §5.1).
fn simulcast_send(m: &MediaDescription) -> Option<Vec<&str>> {
    let value = m.attribute("simulcast")?;
    let mut it = value.split_whitespace();
    while let Some(dir) = it.next() {
        let list = it.next()?;
        if dir != "send" {
            continue;
        }
        let rids = list
            .split(';')
            .filter_map(|stream| stream.split(',').next())
            .filter(|r| !r.starts_with('~') && valid_rid(r))
            .collect();
        return Some(rids);
    }
    None
}

fn by_rid(m: &MediaDescription) -> Option<Vec<LayerSpec>> {
    let order = simulcast_send(m)?;
    let rids: Vec<Rid<'_>> = m
        .attributes
        .iter()
        .filter(|a| a.key == "rid")
        .filter_map(|a| parse_rid(a.value.as_deref()?))
        .collect();
    let mut chosen: Vec<&Rid<'_>> = Vec::new();
    for id in order {
        if let Some(r) = rids.iter().find(|r| r.id == id) {
            if !chosen.iter().any(|c| c.id == id) {
                chosen.push(r);
            }
        }
    }
    chosen.truncate(MAX_LAYERS);
    if chosen.len() < 2 {
        return None;
    }
    if chosen.iter().all(|r| r.size.is_some()) {
        chosen.sort_by_key(|r| r.size);
    } else if let Some(ranks) = chosen.iter().map(|r| name_rank(r.id)).collect::<Option<Vec<_>>>() {
        let mut ranked: Vec<_> = ranks.into_iter().zip(chosen).collect();
        ranked.sort_by_key(|(rank, _)| *rank);
        chosen = ranked.into_iter().map(|(_, r)| r).collect();
    }
    Some(
        chosen
            .into_iter()
            .map(|r| LayerSpec { rid: Some(r.id.to_owned()), ssrc: None, rtx_ssrc: None })
            .collect(),
    )
}

/// Where a conventional rid name sits, lowest first.
fn name_rank(id: &str) -> Option<u8> {
    match id.to_ascii_lowercase().as_str() {
        "q" | "low" | "l" => Some(0),
        "h" | "mid" | "medium" | "m" => Some(1),
        "f" | "high" | "hi" => Some(2),
        _ => None,
    }
}

fn by_ssrc_group(m: &MediaDescription) -> Option<Vec<LayerSpec>> {
    let groups = m.ssrc_groups();
    let sim = groups.iter().find(|g| g.semantics == "SIM")?;
    let mut layers = Vec::new();
    for &ssrc in &sim.ssrcs {
        if layers.iter().any(|l: &LayerSpec| l.ssrc == Some(ssrc)) {
            return None;
        }
        let rtx_ssrc = groups
            .iter()
            .find(|g| g.semantics == "FID" && g.ssrcs.len() >= 2 && g.ssrcs[0] == ssrc)
            .map(|g| g.ssrcs[1]);
        layers.push(LayerSpec { rid: None, ssrc: Some(ssrc), rtx_ssrc });
    }
    layers.truncate(MAX_LAYERS);
    (layers.len() >= 2).then_some(layers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::SessionDescription;

    fn video(body: &str) -> MediaDescription {
        let sdp = format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n{body}"
        );
        SessionDescription::parse(&sdp).unwrap().media.remove(0)
    }

    fn rids(o: &Offered) -> Vec<&str> {
        o.layers.iter().map(|l| l.rid.as_deref().unwrap()).collect()
    }

    #[test]
    fn chromium_rids_are_ordered_by_name_and_echoed() {
        let m = video("a=rid:f send\r\na=rid:h send\r\na=rid:q send\r\na=simulcast:send f;h;q\r\n");
        let o = offered(&m).unwrap();
        assert_eq!(rids(&o), ["q", "h", "f"]);
        let lines: Vec<String> = answer_attributes(&o.layers)
            .iter()
            .map(|a| format!("{}:{}", a.key, a.value.as_deref().unwrap()))
            .collect();
        assert_eq!(lines, ["rid:q recv", "rid:h recv", "rid:f recv", "simulcast:recv q;h;f"]);
    }

    #[test]
    fn sizes_order_unknown_names_and_offer_order_is_the_fallback() {
        let m = video(
            "a=rid:a send max-width=1280;max-height=720\r\na=rid:b send max-width=320\r\n\
             a=simulcast:send a;b\r\n",
        );
        assert_eq!(rids(&offered(&m).unwrap()), ["b", "a"]);
        let m = video("a=rid:x send\r\na=rid:y send\r\na=rid:z send\r\na=simulcast:send x;y;z\r\n");
        assert_eq!(rids(&offered(&m).unwrap()), ["x", "y", "z"]);
    }

    #[test]
    fn paused_unknown_and_malformed_rids_are_left_out() {
        let m = video(
            "a=rid:q send\r\na=rid:h send\r\na=rid:f recv\r\na=rid:bad! send\r\n\
             a=simulcast:send q;~h;f;bad!;zz\r\n",
        );
        // Only q is usable: a single stream.
        assert_eq!(offered(&m), None);
        let m = video("a=rid:q send\r\na=rid:h send\r\na=simulcast:send q,x;h\r\n");
        assert_eq!(rids(&offered(&m).unwrap()), ["q", "h"]);
        assert_eq!(offered(&video("a=simulcast:send\r\n")), None);
        assert_eq!(offered(&video("a=rid:q send\r\na=rid:h send\r\n")), None, "no a=simulcast");
    }

    #[test]
    fn sim_group_binds_ssrcs_and_their_repairs() {
        let m = video(
            "a=ssrc-group:SIM 10 20 30\r\na=ssrc-group:FID 10 11\r\na=ssrc-group:FID 20 21\r\n\
             a=ssrc-group:FID 30 31\r\n",
        );
        let o = offered(&m).unwrap();
        assert!(!o.by_rid);
        assert!(answer_attributes(&o.layers).is_empty());
        let got: Vec<_> = o.layers.iter().map(|l| (l.ssrc, l.rtx_ssrc)).collect();
        assert_eq!(got, [(Some(10), Some(11)), (Some(20), Some(21)), (Some(30), Some(31))]);
        assert_eq!(offered(&video("a=ssrc-group:SIM 10 10\r\n")), None, "duplicate ssrc");
    }

    #[test]
    fn at_most_three_layers() {
        let m = video(
            "a=rid:a send\r\na=rid:b send\r\na=rid:c send\r\na=rid:d send\r\na=simulcast:send a;b;c;d\r\n",
        );
        assert_eq!(rids(&offered(&m).unwrap()), ["a", "b", "c"]);
    }
}
