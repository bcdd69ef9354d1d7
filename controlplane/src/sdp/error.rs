//! Error types. Their `Display` text ends up in HTTP 400 bodies, so every
//! message says in plain words what is wrong with the client's SDP.

use thiserror::Error;

/// A session description that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SdpError {
    #[error("the SDP is {size} bytes long; the limit is {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("the SDP has more than {max} media sections (m= lines)")]
    TooManyMedia { max: usize },
    #[error("the SDP is empty")]
    Empty,
    #[error("the SDP must start with a \"v=0\" line")]
    MissingVersion,
    #[error("unsupported SDP version \"v={0}\" (only v=0 exists)")]
    BadVersion(String),
    #[error("the SDP must have an o= (origin) line right after v=0")]
    MissingOrigin,
    #[error("the SDP has no media section (m= line)")]
    NoMedia,
    #[error("line {line}: the m= port \"{value}\" is not a number from 0 to 65535")]
    BadPort { line: usize, value: String },
    #[error("line {line}: unknown SDP line type '{kind}'")]
    UnknownLineType { line: usize, kind: char },
    #[error("line {line}: {reason}")]
    BadLine { line: usize, reason: String },
}

/// An offer that parsed but that sfud cannot (or will not) answer.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum NegotiationError {
    #[error("no usable media: {0}")]
    NoUsableMedia(String),
    #[error("the offer is not valid: {0}")]
    InvalidOffer(String),
    #[error(
        "media section mid={mid} has no a=ice-ufrag and a=ice-pwd (at media or session level)"
    )]
    MissingIceCredentials { mid: String },
    #[error("media section mid={mid} has invalid ICE credentials: {reason}")]
    BadIceCredentials { mid: String, reason: String },
    #[error("media section mid={mid} has no a=fingerprint (at media or session level); DTLS-SRTP needs one")]
    MissingFingerprint { mid: String },
    #[error("media section mid={mid} offers fingerprint algorithm(s) {offered}, but sfud requires sha-256")]
    UnsupportedFingerprint { mid: String, offered: String },
    #[error("media section mid={mid} has a malformed sha-256 fingerprint \"{value}\"")]
    BadFingerprint { mid: String, value: String },
    #[error(
        "media section mid={mid} lacks a=rtcp-mux; sfud only supports RTP and RTCP on one port"
    )]
    RtcpMuxRequired { mid: String },
    #[error("media section mid={mid} has a=setup:{setup}; sfud is always the DTLS server, so offer a=setup:actpass or a=setup:active")]
    BadSetup { mid: String, setup: String },
    #[error("the offer has several media sections but does not bundle them (a=group:BUNDLE); sfud only supports BUNDLE")]
    BundleRequired,
    #[error("sfud has no local ICE candidate to answer with (server configuration)")]
    NoLocalCandidates,
    #[error("the answer does not fit sfud's offer: {0}")]
    InvalidAnswer(String),
    #[error("no offer from sfud is waiting for an answer")]
    NoOfferPending,
}
