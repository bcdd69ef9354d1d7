//! The SDP this client writes (its own offers and answers) and the little it
//! reads back from the other side: ICE credentials, a host candidate, the
//! DTLS fingerprint/role and the SSRCs announced.

use std::fmt::Write as _;
use std::net::SocketAddr;

use anyhow::{anyhow, Result};

pub const PT_OPUS: u8 = 111;
pub const PT_VP8: u8 = 96;
/// RTX (RFC 4588) for VP8, offered to sfud with apt=96.
pub const PT_RTX: u8 = 97;

pub const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
pub const TWCC_URI: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Audio,
    Video,
}

/// One m= section we offer or answer.
#[derive(Clone, Debug)]
pub struct Section {
    pub kind: Kind,
    pub mid: String,
    /// "sendonly" for publishers, "recvonly" for viewers.
    pub direction: &'static str,
    /// Our sending SSRC for this section (announced with a=ssrc).
    pub ssrc: u32,
    /// Payload type to use (ours when offering; the offerer's when answering).
    pub pt: u8,
    /// Video only: offer RTX (payload type, and our repair SSRC when
    /// sending, announced with `a=ssrc-group:FID`).
    pub rtx: Option<(u8, u32)>,
    /// Publishers: simulcast RIDs, lowest first (`a=rid`/`a=simulcast` and
    /// the rtp-stream-id extension, as browsers offer; no `a=ssrc` lines).
    pub rids: Vec<&'static str>,
    /// Viewers: offer transport-wide-cc (extension and `rtcp-fb`), as browsers do.
    pub twcc: bool,
}

impl Section {
    /// A section with no simulcast and no transport-cc.
    pub fn plain(kind: Kind, mid: String, direction: &'static str, ssrc: u32, pt: u8, rtx: Option<(u8, u32)>) -> Self {
        Self { kind, mid, direction, ssrc, pt, rtx, rids: Vec::new(), twcc: false }
    }
}

pub struct LocalParams<'a> {
    pub ufrag: &'a str,
    pub pwd: &'a str,
    pub fingerprint: &'a str,
    /// "active" when we want to be the DTLS client.
    pub setup: &'a str,
    pub cname: &'a str,
}

/// A browser-like offer/answer body: BUNDLE, rtcp-mux, opus and VP8 with
/// the feedback sfud (and Janus) negotiate, no header extensions.
pub fn write(local: &LocalParams, sections: &[Section]) -> String {
    let mut s = String::with_capacity(1024);
    let sid: u64 = rand::random::<u64>() >> 2;
    let mids: Vec<&str> = sections.iter().map(|m| m.mid.as_str()).collect();
    let _ = write!(
        s,
        "v=0\r\no=- {sid} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE {}\r\na=msid-semantic: WMS bench\r\n",
        mids.join(" ")
    );
    for m in sections {
        let (media, pt) = match m.kind {
            Kind::Audio => ("audio", m.pt),
            Kind::Video => ("video", m.pt),
        };
        let rtx = m.rtx.filter(|_| m.kind == Kind::Video);
        let fmts = match rtx {
            Some((rpt, _)) => format!("{pt} {rpt}"),
            None => pt.to_string(),
        };
        let _ = write!(
            s,
            "m={media} 9 UDP/TLS/RTP/SAVPF {fmts}\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
             a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:sha-256 {}\r\na=setup:{}\r\na=mid:{}\r\na={}\r\na=rtcp-mux\r\n",
            local.ufrag, local.pwd, local.fingerprint, local.setup, m.mid, m.direction
        );
        match m.kind {
            Kind::Audio => {
                let _ = write!(s, "a=rtpmap:{pt} opus/48000/2\r\na=fmtp:{pt} minptime=10;useinbandfec=1\r\n");
            }
            Kind::Video => {
                let _ = write!(
                    s,
                    "a=rtpmap:{pt} VP8/90000\r\na=rtcp-fb:{pt} nack\r\na=rtcp-fb:{pt} nack pli\r\na=rtcp-fb:{pt} ccm fir\r\n"
                );
                if m.twcc {
                    let _ = write!(s, "a=rtcp-fb:{pt} transport-cc\r\na=extmap:{} {TWCC_URI}\r\n", crate::simulcast::TWCC_EXT_ID);
                }
                if let Some((rpt, _)) = rtx {
                    let _ = write!(s, "a=rtpmap:{rpt} rtx/90000\r\na=fmtp:{rpt} apt={pt}\r\n");
                }
            }
        }
        if !m.rids.is_empty() {
            let _ = write!(s, "a=extmap:{} {RID_URI}\r\n", crate::simulcast::RID_EXT_ID);
            for r in &m.rids {
                let _ = write!(s, "a=rid:{r} send\r\n");
            }
            let _ = write!(s, "a=simulcast:send {}\r\na=msid:bench {media}{}\r\n", m.rids.join(";"), m.ssrc);
            continue;
        }
        if m.direction == "sendonly" {
            if let Some((_, rssrc)) = rtx {
                let _ = write!(s, "a=ssrc-group:FID {} {rssrc}\r\n", m.ssrc);
            }
            let _ = write!(
                s,
                "a=msid:bench {media}{0}\r\na=ssrc:{0} cname:{1}\r\na=ssrc:{0} msid:bench {media}{0}\r\n",
                m.ssrc, local.cname
            );
            if let Some((_, rssrc)) = rtx {
                let _ = write!(s, "a=ssrc:{rssrc} cname:{}\r\na=ssrc:{rssrc} msid:bench {media}{}\r\n", local.cname, m.ssrc);
            }
        }
    }
    s
}

/// What we need from the remote description.
#[derive(Clone, Debug, Default)]
pub struct Remote {
    pub ufrag: String,
    pub pwd: String,
    pub fingerprint: String,
    pub setup: String,
    /// UDP host candidates, IPv4 first as they appear.
    pub candidates: Vec<SocketAddr>,
    pub media: Vec<RemoteMedia>,
}

#[derive(Clone, Debug)]
pub struct RemoteMedia {
    pub kind: Option<Kind>,
    pub mid: String,
    pub direction: String,
    /// First payload type of the m= line.
    pub pt: Option<u8>,
    pub ssrcs: Vec<u32>,
    /// The `rtx` payload type the other side described, if any.
    pub rtx_pt: Option<u8>,
    /// `a=ssrc-group:FID primary repair` pairs.
    pub fid: Vec<(u32, u32)>,
    /// `a=extmap:<id> <uri>` lines.
    pub extmap: Vec<(u8, String)>,
    /// The RIDs `a=simulcast:recv` accepted (sfud's answer to a simulcast offer).
    pub simulcast_recv: Vec<String>,
}

impl RemoteMedia {
    pub fn ext_id(&self, uri: &str) -> Option<u8> {
        self.extmap.iter().find(|(_, u)| u == uri).map(|(i, _)| *i)
    }
}

pub fn parse(sdp: &str) -> Result<Remote> {
    let mut r = Remote::default();
    for line in sdp.lines().map(str::trim_end) {
        if let Some(rest) = line.strip_prefix("m=") {
            let mut f = rest.split_whitespace();
            let kind = match f.next() {
                Some("audio") => Some(Kind::Audio),
                Some("video") => Some(Kind::Video),
                _ => None,
            };
            let pt = f.nth(2).and_then(|p| p.parse().ok());
            r.media.push(RemoteMedia { kind, mid: String::new(), direction: "sendrecv".into(), pt, ssrcs: vec![], rtx_pt: None, fid: vec![], extmap: vec![], simulcast_recv: vec![] });
            continue;
        }
        let Some(a) = line.strip_prefix("a=") else { continue };
        let (key, val) = a.split_once(':').unwrap_or((a, ""));
        match key {
            "ice-ufrag" if r.ufrag.is_empty() => r.ufrag = val.to_owned(),
            "ice-pwd" if r.pwd.is_empty() => r.pwd = val.to_owned(),
            "fingerprint" if r.fingerprint.is_empty() => r.fingerprint = val.to_owned(),
            "setup" if r.setup.is_empty() => r.setup = val.to_owned(),
            "candidate" => {
                // foundation component transport priority addr port typ host
                let f: Vec<&str> = val.split_whitespace().collect();
                if f.len() >= 8 && f[1] == "1" && f[2].eq_ignore_ascii_case("udp") && f[7] == "host" {
                    if let Ok(sa) = format!("{}:{}", f[4], f[5]).parse::<SocketAddr>() {
                        if !r.candidates.contains(&sa) {
                            r.candidates.push(sa);
                        }
                    }
                }
            }
            "mid" => {
                if let Some(m) = r.media.last_mut() {
                    m.mid = val.to_owned();
                }
            }
            "sendonly" | "recvonly" | "sendrecv" | "inactive" => {
                if let Some(m) = r.media.last_mut() {
                    m.direction = key.to_owned();
                }
            }
            "rtpmap" => {
                // a=rtpmap:97 rtx/90000
                let mut f = val.split_whitespace();
                let (pt, enc) = (f.next().and_then(|p| p.parse::<u8>().ok()), f.next().unwrap_or(""));
                if let (Some(m), Some(pt)) = (r.media.last_mut(), pt) {
                    if enc.to_ascii_lowercase().starts_with("rtx/") && m.rtx_pt.is_none() {
                        m.rtx_pt = Some(pt);
                    }
                }
            }
            "extmap" => {
                // a=extmap:3 uri (an id may carry "/direction")
                let mut f = val.split_whitespace();
                let id = f.next().and_then(|i| i.split('/').next()).and_then(|i| i.parse::<u8>().ok());
                if let (Some(m), Some(id), Some(uri)) = (r.media.last_mut(), id, f.next()) {
                    m.extmap.push((id, uri.to_owned()));
                }
            }
            "simulcast" => {
                if let (Some(m), Some(("recv", list))) = (r.media.last_mut(), val.split_once(' ')) {
                    m.simulcast_recv = list.split(';').filter_map(|x| x.split(',').next()).map(str::to_owned).collect();
                }
            }
            "ssrc-group" => {
                let f: Vec<&str> = val.split_whitespace().collect();
                if let (Some(m), ["FID", p, r2, ..]) = (r.media.last_mut(), f.as_slice()) {
                    if let (Ok(p), Ok(r2)) = (p.parse(), r2.parse()) {
                        m.fid.push((p, r2));
                    }
                }
            }
            "ssrc" => {
                if let (Some(m), Some(ssrc)) = (r.media.last_mut(), val.split_whitespace().next().and_then(|s| s.parse().ok())) {
                    if !m.ssrcs.contains(&ssrc) {
                        m.ssrcs.push(ssrc);
                    }
                }
            }
            _ => {}
        }
    }
    if r.ufrag.is_empty() || r.pwd.is_empty() {
        return Err(anyhow!("remote SDP has no ICE credentials"));
    }
    Ok(r)
}

/// The candidate to use: 127.0.0.1 when offered (benchmarks run on
/// loopback), else the first IPv4 one.
pub fn pick_candidate(r: &Remote) -> Option<SocketAddr> {
    let v4 = r.candidates.iter().filter(|c| c.is_ipv4());
    v4.clone()
        .find(|c| c.ip().is_loopback())
        .or_else(|| v4.clone().next())
        .copied()
}

pub fn random_token(n: usize) -> String {
    use rand::Rng;
    const CH: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..n).map(|_| CH[rng.gen_range(0..CH.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_own_offer() {
        let lp = LocalParams { ufrag: "abcd", pwd: "p".repeat(24).leak(), fingerprint: "AA:BB", setup: "active", cname: "c" };
        let offer = write(
            &lp,
            &[
                Section::plain(Kind::Audio, "0".into(), "sendonly", 11, PT_OPUS, None),
                Section::plain(Kind::Video, "1".into(), "sendonly", 22, PT_VP8, Some((PT_RTX, 23))),
            ],
        );
        let with_cand = format!("{offer}a=candidate:1 1 udp 2130706431 127.0.0.1 7882 typ host\r\n");
        let r = parse(&with_cand).unwrap();
        assert_eq!(r.ufrag, "abcd");
        assert_eq!(r.media.len(), 2);
        assert_eq!(r.media[1].ssrcs, vec![22, 23]);
        assert_eq!(r.media[1].rtx_pt, Some(PT_RTX));
        assert_eq!(r.media[1].fid, vec![(22, 23)]);
        assert_eq!(r.media[0].rtx_pt, None);
        assert_eq!(r.media[1].pt, Some(PT_VP8));
        assert_eq!(pick_candidate(&r), Some("127.0.0.1:7882".parse().unwrap()));
        assert!(parse("v=0\r\n").is_err());
    }

    #[test]
    fn simulcast_offer_and_twcc_viewer() {
        let lp = LocalParams { ufrag: "abcd", pwd: "p".repeat(24).leak(), fingerprint: "AA:BB", setup: "active", cname: "c" };
        let mut v = Section::plain(Kind::Video, "0".into(), "sendonly", 22, PT_VP8, None);
        v.rids = vec!["q", "h", "f"];
        let offer = write(&lp, &[v]);
        assert!(offer.contains("a=rid:q send\r\na=rid:h send\r\na=rid:f send\r\na=simulcast:send q;h;f\r\n"));
        assert!(!offer.contains("a=ssrc:"), "RID simulcast signals no SSRCs");
        let r = parse(&offer).unwrap();
        assert_eq!(r.media[0].ext_id(RID_URI), Some(crate::simulcast::RID_EXT_ID));
        let answer = offer.replace("a=simulcast:send", "a=simulcast:recv");
        assert_eq!(parse(&answer).unwrap().media[0].simulcast_recv, vec!["q", "h", "f"]);
        let mut w = Section::plain(Kind::Video, "0".into(), "recvonly", 7, PT_VP8, Some((PT_RTX, 0)));
        w.twcc = true;
        let r = parse(&write(&lp, &[w])).unwrap();
        assert_eq!(r.media[0].ext_id(TWCC_URI), Some(crate::simulcast::TWCC_EXT_ID));
    }
}
