//! The SDP data model: a faithful, loss-tolerant tree of the lines sfud cares
//! about. Lines that WebRTC never uses (i=, u=, e=, p=, b=, r=, z=, k=) are
//! accepted by the parser and dropped.

/// A whole session description (RFC 8866 §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDescription {
    /// The o= value, kept verbatim: `<user> <sess-id> <sess-version> IN IP4 <addr>`.
    pub origin: String,
    /// The s= value; "-" when the SDP left it empty.
    pub session_name: String,
    /// Session-level c= value, e.g. `IN IP4 0.0.0.0`.
    pub connection: Option<String>,
    /// The first t= value; "0 0" when absent.
    pub timing: String,
    pub attributes: Vec<Attribute>,
    pub media: Vec<MediaDescription>,
}

/// One `a=key[:value]` line. A flag attribute (`a=rtcp-mux`) has no value;
/// `a=key:` has an empty one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub key: String,
    pub value: Option<String>,
}

impl Attribute {
    pub fn flag(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            value: None,
        }
    }

    pub fn with_value(key: &str, value: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            value: Some(value.into()),
        }
    }
}

/// One media section: the m= line and everything up to the next m= line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaDescription {
    /// "audio", "video", "application", ...
    pub kind: String,
    pub port: u16,
    /// e.g. "UDP/TLS/RTP/SAVPF".
    pub proto: String,
    /// Payload types for RTP protocols, or e.g. "webrtc-datachannel".
    pub formats: Vec<String>,
    pub connection: Option<String>,
    pub attributes: Vec<Attribute>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    pub(crate) fn from_attribute(key: &str) -> Option<Self> {
        match key {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// Whether the side that wrote this direction will send media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the side that wrote this direction wants to receive media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// A parsed `a=rtpmap:<pt> <name>/<clock>[/<channels>]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpMap {
    pub pt: u8,
    pub name: String,
    pub clock_rate: u32,
    /// 1 when the rtpmap does not say (RFC 8866 §6.6).
    pub channels: u8,
}

/// A parsed `a=ssrc-group:<semantics> <ssrc>...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsrcGroup {
    pub semantics: String,
    pub ssrcs: Vec<u32>,
}

/// A parsed `a=extmap:<id>[/<direction>] <uri> [<attributes>]` (RFC 8285 §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extmap<'a> {
    pub id: u8,
    /// The qualifier, from the writer's point of view; None means the
    /// media section's own direction applies.
    pub direction: Option<Direction>,
    pub uri: &'a str,
}

pub(crate) fn find_value<'a>(attrs: &'a [Attribute], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| a.key == key)
        .map(|a| a.value.as_deref().unwrap_or(""))
}

pub(crate) fn values<'a>(
    attrs: &'a [Attribute],
    key: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    attrs
        .iter()
        .filter(move |a| a.key == key)
        .map(|a| a.value.as_deref().unwrap_or(""))
}
