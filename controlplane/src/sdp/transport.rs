//! The transport half of an answer: ICE-lite credentials and host candidates,
//! DTLS role and fingerprint, and the checks on the offerer's side of them.

use std::net::SocketAddr;

use super::error::NegotiationError;
use super::model::{Attribute, MediaDescription, SessionDescription};

/// sfud's own transport parameters for one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalIce {
    pub ufrag: String,
    pub pwd: String,
    /// Upper-case hex pairs joined by ':' ("AB:CD:..").
    pub fingerprint_sha256: String,
    pub udp_candidates: Vec<SocketAddr>,
    /// Passive ICE-TCP candidates; may be empty.
    pub tcp_candidates: Vec<SocketAddr>,
}

/// What the offerer said about its transport, as the ICE and DTLS layers need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteParams {
    pub ice_ufrag: String,
    pub ice_pwd: String,
    /// (algorithm, value): always ("sha-256", upper-case hex pairs).
    pub fingerprint: (String, String),
    /// "actpass" or "active"; "active" when the offer left it out (RFC 4145 §4).
    pub setup: String,
}

/// RFC 8445 §5.1.2.1 recommends 126 for host candidates.
const HOST_TYPE_PREFERENCE: u32 = 126;
/// RFC 6544 §4.2 direction preference for passive host TCP candidates.
const TCP_PASSIVE_DIRECTION_PREFERENCE: u32 = 4;

/// RFC 8445 §5.1.2.1 for component 1. UDP local preferences run from 65535
/// down to a floor of 40960 and TCP ones (RFC 6544 §4.2) top out at 40959, so
/// every UDP candidate outranks every TCP one, and earlier candidates outrank
/// later ones.
pub(crate) fn candidate_priority(tcp: bool, index: usize) -> u32 {
    let local_preference = if tcp {
        let other = 8191u32.saturating_sub(u32::try_from(index).unwrap_or(u32::MAX));
        (TCP_PASSIVE_DIRECTION_PREFERENCE << 13) + other
    } else {
        65535u32
            .saturating_sub(u32::try_from(index).unwrap_or(u32::MAX))
            .max(40960)
    };
    (HOST_TYPE_PREFERENCE << 24) + (local_preference << 8) + (256 - 1)
}

impl LocalIce {
    fn first_candidate(&self) -> Option<SocketAddr> {
        self.udp_candidates
            .first()
            .or(self.tcp_candidates.first())
            .copied()
    }

    /// c= value and m= port for accepted media sections.
    pub(crate) fn connection_and_port(&self) -> Result<(String, u16), NegotiationError> {
        let first = self
            .first_candidate()
            .ok_or(NegotiationError::NoLocalCandidates)?;
        Ok((connection_value(first), first.port()))
    }

    /// a=candidate lines then a=end-of-candidates. Candidates sharing protocol
    /// and address share a foundation (RFC 8445 §5.1.1.3).
    pub(crate) fn candidate_attributes(&self) -> Vec<Attribute> {
        let mut bases: Vec<(bool, std::net::IpAddr)> = Vec::new();
        let mut out = Vec::with_capacity(self.udp_candidates.len() + self.tcp_candidates.len() + 1);
        let all = self
            .udp_candidates
            .iter()
            .map(|a| (false, a))
            .enumerate()
            .chain(self.tcp_candidates.iter().map(|a| (true, a)).enumerate());
        for (index, (tcp, addr)) in all {
            let base = (tcp, addr.ip());
            let foundation = match bases.iter().position(|b| *b == base) {
                Some(i) => i + 1,
                None => {
                    bases.push(base);
                    bases.len()
                }
            };
            let priority = candidate_priority(tcp, index);
            let (proto, suffix) = if tcp {
                ("tcp", " tcptype passive")
            } else {
                ("udp", "")
            };
            out.push(Attribute::with_value(
                "candidate",
                format!(
                    "{foundation} 1 {proto} {priority} {} {} typ host{suffix}",
                    addr.ip(),
                    addr.port()
                ),
            ));
        }
        out.push(Attribute::flag("end-of-candidates"));
        out
    }

    /// The attributes every accepted media section of an answer carries.
    pub(crate) fn transport_attributes(&self) -> Vec<Attribute> {
        let mut out = self.ice_dtls_attributes("passive");
        out.push(Attribute::flag("rtcp-mux"));
        out
    }

    /// ICE credentials, fingerprint and DTLS role: what every section of the
    /// bundle repeats, RTP or data channel alike. `setup` is "passive" in
    /// answers and "actpass" in offers (RFC 5763 §5 requires it of offerers).
    pub(crate) fn ice_dtls_attributes(&self, setup: &str) -> Vec<Attribute> {
        vec![
            Attribute::with_value("ice-ufrag", self.ufrag.clone()),
            Attribute::with_value("ice-pwd", self.pwd.clone()),
            Attribute::with_value(
                "fingerprint",
                format!("sha-256 {}", self.fingerprint_sha256),
            ),
            Attribute::with_value("setup", setup),
        ]
    }
}

pub(crate) fn connection_value(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("IN IP4 {}", a.ip()),
        SocketAddr::V6(a) => format!("IN IP6 {}", a.ip()),
    }
}

/// RFC 8839 §5.4 ice-char, and a length bound so a STUN USERNAME stays sane.
fn check_ice_chars(what: &str, v: &str, mid: &str) -> Result<(), NegotiationError> {
    let ok = !v.is_empty()
        && v.len() <= 256
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    if ok {
        Ok(())
    } else {
        Err(NegotiationError::BadIceCredentials {
            mid: mid.to_owned(),
            reason: format!("{what} must be 1 to 256 characters of A-Z a-z 0-9 + /"),
        })
    }
}

/// 32 bytes as colon-separated hex pairs.
fn is_sha256_fingerprint(v: &str) -> bool {
    let parts: Vec<&str> = v.split(':').collect();
    parts.len() == 32
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Checks the offerer's transport on the bundle-tagged media section (the
/// whole bundle shares it) and extracts what ICE and DTLS need.
pub(crate) fn remote_params(
    offer: &SessionDescription,
    m: &MediaDescription,
    mid: &str,
) -> Result<RemoteParams, NegotiationError> {
    let (Some(ufrag), Some(pwd)) = (m.ice_ufrag(offer), m.ice_pwd(offer)) else {
        return Err(NegotiationError::MissingIceCredentials {
            mid: mid.to_owned(),
        });
    };
    check_ice_chars("ice-ufrag", ufrag, mid)?;
    check_ice_chars("ice-pwd", pwd, mid)?;

    let fingerprints = m.fingerprints(offer);
    if fingerprints.is_empty() {
        return Err(NegotiationError::MissingFingerprint {
            mid: mid.to_owned(),
        });
    }
    let Some((_, value)) = fingerprints
        .iter()
        .find(|(alg, _)| alg.eq_ignore_ascii_case("sha-256"))
    else {
        let offered: Vec<&str> = fingerprints.iter().map(|(alg, _)| *alg).collect();
        return Err(NegotiationError::UnsupportedFingerprint {
            mid: mid.to_owned(),
            offered: offered.join(", "),
        });
    };
    if !is_sha256_fingerprint(value) {
        return Err(NegotiationError::BadFingerprint {
            mid: mid.to_owned(),
            value: value.chars().take(100).collect(),
        });
    }

    // SCTP sections carry no RTCP, so only RTP ones can lack rtcp-mux.
    if m.kind != "application" && !m.rtcp_mux() {
        return Err(NegotiationError::RtcpMuxRequired {
            mid: mid.to_owned(),
        });
    }

    let setup = match m.setup(offer) {
        None => "active",
        Some(s) if s.eq_ignore_ascii_case("actpass") => "actpass",
        Some(s) if s.eq_ignore_ascii_case("active") => "active",
        Some(other) => {
            return Err(NegotiationError::BadSetup {
                mid: mid.to_owned(),
                setup: other.chars().take(20).collect(),
            })
        }
    };

    Ok(RemoteParams {
        ice_ufrag: ufrag.to_owned(),
        ice_pwd: pwd.to_owned(),
        fingerprint: ("sha-256".to_owned(), value.to_ascii_uppercase()),
        setup: setup.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_priorities() {
        // The classic value browsers show for their first host UDP candidate.
        assert_eq!(candidate_priority(false, 0), 2_130_706_431);
        assert!(candidate_priority(false, 1) < candidate_priority(false, 0));
        assert!(candidate_priority(true, 0) < candidate_priority(false, 63));
        assert!(candidate_priority(true, 1) < candidate_priority(true, 0));
        assert!(candidate_priority(true, usize::MAX) > 0);
        assert_eq!(candidate_priority(false, usize::MAX) >> 24, 126);
    }

    #[test]
    fn candidate_lines() {
        let local = LocalIce {
            ufrag: "abcd".into(),
            pwd: "p".repeat(24),
            fingerprint_sha256: "AB".into(),
            udp_candidates: vec![
                "192.0.2.1:7882".parse().unwrap(),
                "[2001:db8::1]:7882".parse().unwrap(),
            ],
            tcp_candidates: vec!["192.0.2.1:7881".parse().unwrap()],
        };
        let lines: Vec<String> = local
            .candidate_attributes()
            .iter()
            .map(|a| format!("{}:{}", a.key, a.value.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            lines[0],
            "candidate:1 1 udp 2130706431 192.0.2.1 7882 typ host"
        );
        assert_eq!(
            lines[1],
            "candidate:2 1 udp 2130706175 2001:db8::1 7882 typ host"
        );
        assert_eq!(
            lines[2],
            "candidate:3 1 tcp 2124414975 192.0.2.1 7881 typ host tcptype passive"
        );
        assert_eq!(lines[3], "end-of-candidates:");
        assert_eq!(
            local.connection_and_port().unwrap(),
            ("IN IP4 192.0.2.1".into(), 7882)
        );
    }

    #[test]
    fn fingerprint_shape() {
        let good = vec!["aB"; 32].join(":");
        assert!(is_sha256_fingerprint(&good));
        assert!(!is_sha256_fingerprint(&vec!["AB"; 31].join(":")));
        assert!(!is_sha256_fingerprint(&vec!["ABC"; 32].join(":")));
        assert!(!is_sha256_fingerprint(&vec!["GG"; 32].join(":")));
    }
}
