//! The typed contract between the planes: commands go in, events come out.
//!
//! The controlplane never touches a shard's state; it sends these messages and
//! reacts to the events. Every shard receives every session/track command so
//! its replicated registry can route (ufrag demux, fan-out targets); only the
//! owning shard instantiates per-session state.

use std::net::SocketAddr;

use crate::srtp::MasterKey;

/// Index of a dataplane shard (0..N).
pub type ShardId = usize;

/// A WebRTC transport: one ICE/DTLS/SRTP association with one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// A published media stream (uptrack). Downtracks refer to it by this id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    /// The kind an SDP media token or a JSON "type" names.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "audio" => Some(MediaKind::Audio),
            "video" => Some(MediaKind::Video),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

/// Codecs the forwarding logic knows how to look inside (for keyframes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodecKind {
    Opus,
    Vp8,
    H264,
    Other,
}

impl CodecKind {
    pub fn from_name(name: &str) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "opus" => CodecKind::Opus,
            "vp8" => CodecKind::Vp8,
            "h264" => CodecKind::H264,
            _ => CodecKind::Other,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SessionSpec {
    pub id: SessionId,
    /// Our ICE ufrag: the demux key for STUN.
    pub ufrag: String,
    pub pwd: String,
    pub remote_ufrag: String,
    /// Test-only placement: the session must live on this shard.
    pub pinned_shard: Option<ShardId>,
}

#[derive(Clone, Debug)]
pub struct UptrackSpec {
    pub track: TrackId,
    pub session: SessionId,
    pub kind: MediaKind,
    pub codec: CodecKind,
    pub payload_type: u8,
    pub clock_rate: u32,
    /// Signalled SSRC, if the offer had one; otherwise bound from the MID extension.
    pub ssrc: Option<u32>,
    pub mid: String,
    pub mid_ext_id: Option<u8>,
}

#[derive(Clone, Debug)]
pub struct DowntrackSpec {
    /// The subscribing session.
    pub session: SessionId,
    /// The uptrack it forwards.
    pub track: TrackId,
    pub kind: MediaKind,
    /// SSRC announced to the subscriber.
    pub ssrc: u32,
    /// The subscriber's payload type for the codec.
    pub payload_type: u8,
    pub clock_rate: u32,
}

#[derive(Debug)]
pub enum Command {
    AddSession(SessionSpec),
    RemoveSession(SessionId),
    /// Datagrams produced by the controlplane's DTLS endpoint for this session.
    SendDtls { session: SessionId, datagrams: Vec<Vec<u8>> },
    /// Keys exported after the DTLS handshake (RFC 5764): `tx` protects what we send.
    SetSrtp { session: SessionId, tx: MasterKey, rx: MasterKey },
    AddUptrack(UptrackSpec),
    RemoveUptrack(TrackId),
    AddDowntrack(DowntrackSpec),
    RemoveDowntrack { session: SessionId, track: TrackId },
    /// Ask the publisher of a track for a keyframe.
    RequestKeyframe(TrackId),
    /// Stop (or resume) forwarding an uptrack to every subscriber.
    SetMuted { track: TrackId, muted: bool },
    /// Reply with `Event::Snapshot` (admin/stats pull).
    Snapshot,
}

#[derive(Debug)]
pub enum Event {
    /// A shard received the first valid STUN Binding for this session and owns it now.
    Claimed { session: SessionId, shard: ShardId, remote: SocketAddr },
    /// DTLS datagram from the session's peer, for the controlplane's DTLS endpoint.
    Dtls { session: SessionId, datagram: Vec<u8> },
    /// ICE consent expired (RFC 7675): the peer is gone.
    ConsentExpired { session: SessionId },
    /// The first SRTP media arrived on an uptrack.
    UptrackActive { track: TrackId, ssrc: u32 },
    /// Periodic per-shard counters.
    Stats(crate::stats::ShardStats),
}
