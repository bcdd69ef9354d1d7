//! `application/trickle-ice-sdpfrag` (RFC 8840 §9, used by WHIP/WHEP PATCH,
//! RFC 9725 §4.3): what a client trickles or restarts ICE with, and the
//! fragment sfud answers an ICE restart with.
//!
//! sfud is ICE-lite: it learns the client's addresses from its checks
//! (peer-reflexive), so trickled candidates are only validated and counted.
//! What matters is the ICE credentials: new ones mean an ICE restart.

use std::fmt::Write as _;

use super::error::SdpError;
use super::transport::LocalIce;

/// A fragment is a few lines; bound it like any request body.
pub const MAX_FRAG_BYTES: usize = 16 * 1024;
/// More candidate lines than any client gathers.
const MAX_FRAG_CANDIDATES: usize = 256;

/// What a client's fragment says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrickleFragment {
    /// The client's ICE credentials, when the fragment carries them
    /// (RFC 8840 requires them; a change means an ICE restart).
    pub ufrag: Option<String>,
    pub pwd: Option<String>,
    /// `(mid, candidate value)` for each a=candidate line, in order.
    pub candidates: Vec<(Option<String>, String)>,
    pub end_of_candidates: bool,
    /// The first a=mid: the section sfud's restart answer names.
    pub mid: Option<String>,
}

impl TrickleFragment {
    /// Parses a fragment. Strict about structure (only the line types RFC
    /// 8840 allows: a= and m=), lenient about line endings.
    pub fn parse(s: &str) -> Result<Self, SdpError> {
        if s.len() > MAX_FRAG_BYTES {
            return Err(SdpError::TooLarge { size: s.len(), max: MAX_FRAG_BYTES });
        }
        let mut frag = TrickleFragment::default();
        let mut mid: Option<String> = None;
        let mut any = false;
        for (i, raw) in s.split('\n').enumerate() {
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            any = true;
            let n = i + 1;
            let (kind, value) = line
                .split_once('=')
                .filter(|(k, _)| k.len() == 1)
                .ok_or_else(|| SdpError::BadLine { line: n, reason: "expected <type>=<value>".into() })?;
            match kind {
                // A new media section: its a=mid follows.
                "m" => mid = None,
                "a" => {
                    let (key, val) = value.split_once(':').unwrap_or((value, ""));
                    let val = val.trim();
                    match key {
                        "ice-ufrag" => frag.ufrag = Some(check_ice(n, "ice-ufrag", val)?),
                        "ice-pwd" => frag.pwd = Some(check_ice(n, "ice-pwd", val)?),
                        "mid" => {
                            mid = Some(val.to_owned());
                            if frag.mid.is_none() {
                                frag.mid = Some(val.to_owned());
                            }
                        }
                        "candidate" => {
                            if frag.candidates.len() >= MAX_FRAG_CANDIDATES {
                                return Err(SdpError::BadLine {
                                    line: n,
                                    reason: format!("more than {MAX_FRAG_CANDIDATES} candidates"),
                                });
                            }
                            check_candidate(n, val)?;
                            frag.candidates.push((mid.clone(), val.to_owned()));
                        }
                        "end-of-candidates" => frag.end_of_candidates = true,
                        // ice-options, group:BUNDLE and anything newer: not ours to judge.
                        _ => {}
                    }
                }
                other => {
                    return Err(SdpError::BadLine {
                        line: n,
                        reason: format!("'{other}=' lines do not belong in an sdpfrag (only a= and m=)"),
                    })
                }
            }
        }
        if !any {
            return Err(SdpError::Empty);
        }
        Ok(frag)
    }
}

/// RFC 8839 §5.4 ice-char, bounded.
fn check_ice(line: usize, what: &str, v: &str) -> Result<String, SdpError> {
    let ok = !v.is_empty()
        && v.len() <= 256
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    if ok {
        Ok(v.to_owned())
    } else {
        Err(SdpError::BadLine { line, reason: format!("{what} must be 1 to 256 characters of A-Z a-z 0-9 + /") })
    }
}

/// RFC 8839 §5.1: foundation, component, transport, priority, address, port, "typ", type.
fn check_candidate(line: usize, v: &str) -> Result<(), SdpError> {
    let f: Vec<&str> = v.split_whitespace().collect();
    let ok = f.len() >= 8
        && f[1].parse::<u16>().is_ok()
        && f[3].parse::<u32>().is_ok()
        && f[5].parse::<u16>().is_ok()
        && f[6] == "typ";
    if ok {
        Ok(())
    } else {
        Err(SdpError::BadLine { line, reason: "malformed a=candidate".into() })
    }
}

/// sfud's answer to an ICE restart (RFC 9725 §4.3.2): its new credentials
/// and all its candidates, under the first bundled section's mid.
pub fn restart_answer(local: &LocalIce, mid: &str) -> String {
    let mut out = String::new();
    let _ = write!(out, "a=ice-lite\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\n", local.ufrag, local.pwd);
    let _ = write!(out, "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:{mid}\r\n");
    for a in local.candidate_attributes() {
        match a.value.as_deref() {
            Some(v) if !v.is_empty() => {
                let _ = write!(out, "a={}:{v}\r\n", a.key);
            }
            _ => {
                let _ = write!(out, "a={}\r\n", a.key);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CHROME_TRICKLE: &str = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\na=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n\
a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2\r\n\
a=end-of-candidates\r\n";

    #[test]
    fn parses_a_trickle_fragment() {
        let f = TrickleFragment::parse(CHROME_TRICKLE).unwrap();
        assert_eq!(f.ufrag.as_deref(), Some("EsAw"));
        assert_eq!(f.pwd.as_deref(), Some("P2uYro0UCOQ4zxjKXaWCBui1"));
        assert_eq!(f.candidates.len(), 2);
        assert_eq!(f.candidates[0].0.as_deref(), Some("0"));
        assert!(f.end_of_candidates);
    }

    #[test]
    fn refuses_what_is_not_a_fragment() {
        assert_eq!(TrickleFragment::parse(" \r\n"), Err(SdpError::Empty));
        assert!(TrickleFragment::parse("v=0\r\n").is_err());
        assert!(TrickleFragment::parse("a=ice-ufrag:bad ufrag!\r\n").is_err());
        assert!(TrickleFragment::parse("a=candidate:1 1 udp x 192.0.2.1 1 typ host\r\n").is_err());
        assert!(TrickleFragment::parse("hello").is_err());
        assert!(TrickleFragment::parse(&"a=x\r\n".repeat(5000)).is_err());
    }

    #[test]
    fn restart_answer_round_trips() {
        let local = LocalIce {
            ufrag: "newU".into(),
            pwd: "newPasswordOfTwentyFour0".into(),
            fingerprint_sha256: String::new(),
            udp_candidates: vec!["192.0.2.7:7882".parse().unwrap()],
            tcp_candidates: vec![],
        };
        let text = restart_answer(&local, "0");
        let f = TrickleFragment::parse(&text).unwrap();
        assert_eq!(f.ufrag.as_deref(), Some("newU"));
        assert_eq!(f.pwd.as_deref(), Some("newPasswordOfTwentyFour0"));
        assert_eq!(f.candidates.len(), 1);
        assert!(f.end_of_candidates);
        assert!(text.ends_with("a=end-of-candidates\r\n"));
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,400}") {
            let _ = TrickleFragment::parse(&s);
        }

        #[test]
        fn line_soup_never_panics(lines in proptest::collection::vec("[am]=[ -~]{0,60}", 0..30)) {
            let _ = TrickleFragment::parse(&lines.join("\r\n"));
        }

        /// Whatever credentials and candidate addresses go in come back out.
        #[test]
        fn generated_fragments_parse(ufrag in "[A-Za-z0-9+/]{4,32}", pwd in "[A-Za-z0-9+/]{22,64}",
                                     ports in proptest::collection::vec(1u16.., 0..8)) {
            let mut s = format!("a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n");
            for (i, p) in ports.iter().enumerate() {
                s.push_str(&format!("a=candidate:{i} 1 udp 2122260223 192.0.2.1 {p} typ host\r\n"));
            }
            let f = TrickleFragment::parse(&s).unwrap();
            prop_assert_eq!(f.ufrag, Some(ufrag));
            prop_assert_eq!(f.pwd, Some(pwd));
            prop_assert_eq!(f.candidates.len(), ports.len());
        }
    }
}
