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
    /// VP9, SVC read from its payload descriptor (`forward::vp9`).
    Vp9,
    Av1,
    Other,
}

impl CodecKind {
    pub fn from_name(name: &str) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "opus" => CodecKind::Opus,
            "vp8" => CodecKind::Vp8,
            "h264" => CodecKind::H264,
            "vp9" => CodecKind::Vp9,
            "av1" => CodecKind::Av1,
            _ => CodecKind::Other,
        }
    }
}

/// The RTP header extensions sfud reads or writes, by the ids one peer
/// negotiated (RFC 8285): a publisher's on an uptrack, a subscriber's on a
/// downtrack. `None` means not negotiated with that peer. Anything not
/// listed here is dropped when forwarding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtIds {
    /// urn:ietf:params:rtp-hdrext:sdes:mid
    pub mid: Option<u8>,
    /// http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
    pub abs_send_time: Option<u8>,
    /// http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
    pub transport_cc: Option<u8>,
    /// urn:ietf:params:rtp-hdrext:ssrc-audio-level (RFC 6464)
    pub audio_level: Option<u8>,
    /// urn:3gpp:video-orientation
    pub video_orientation: Option<u8>,
    /// http://www.webrtc.org/experiments/rtp-hdrext/playout-delay
    pub playout_delay: Option<u8>,
    /// https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension
    pub dependency_descriptor: Option<u8>,
    /// http://www.webrtc.org/experiments/rtp-hdrext/video-content-type:
    /// marks a screen share.
    pub video_content_type: Option<u8>,
    /// urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id (RFC 8852)
    pub rid: Option<u8>,
    /// urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id (RFC 8852)
    pub repaired_rid: Option<u8>,
    /// `a=extmap-allow-mixed` (RFC 8285 §6) was negotiated: packets may use
    /// the two-byte form when an element needs it (a dependency descriptor
    /// with its template structure, about 90 bytes).
    pub allow_mixed: bool,
}

/// A downtrack's RFC 4588 repair stream: NACKed packets are resent on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtxSpec {
    pub ssrc: u32,
    pub payload_type: u8,
}

/// RTCP feedback a peer negotiated for a track (RFC 4585 a=rtcp-fb).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Feedback {
    /// Generic NACK: the peer retransmits (publisher) or accepts
    /// retransmissions (subscriber).
    pub nack: bool,
    /// Transport-wide congestion control feedback (with `ExtIds::transport_cc`).
    pub transport_cc: bool,
    /// Receiver estimated max bitrate (goog-remb).
    pub remb: bool,
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

/// One simulcast encoding of a video uptrack (RFC 8853). Layers are listed
/// lowest first; a layer's SSRCs are signalled (`a=ssrc-group:SIM`) or bound
/// on its first authenticated packet by RID (and the repair stream by
/// repaired RID).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSpec {
    pub rid: Option<String>,
    pub ssrc: Option<u32>,
    pub rtx_ssrc: Option<u32>,
}

/// What a subscriber (ion-sfu's `setRemoteMedia`) or an admin allows a
/// downtrack. The default allows everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerCap {
    /// Nothing at all (audio or video off for this subscriber).
    pub off: bool,
    /// Highest simulcast layer (0 lowest).
    pub max_layer: Option<u8>,
    /// Highest VP8 temporal layer (frame rate).
    pub max_temporal: Option<u8>,
}

/// Most simulcast layers one video track may have.
pub const MAX_LAYERS: usize = 3;

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
    /// The publisher's RFC 4588 repair stream: its SSRC when signalled
    /// (a=ssrc-group:FID), and the rtx payload type whose apt is ours.
    pub rtx_ssrc: Option<u32>,
    pub rtx_payload_type: Option<u8>,
    /// The publisher's `red/48000/2` payload type around this (Opus) codec,
    /// when it negotiated RFC 2198 redundancy.
    pub red_payload_type: Option<u8>,
    /// Extension ids as the publisher negotiated them.
    pub ext: ExtIds,
    pub feedback: Feedback,
    /// Simulcast layers, lowest first (2 to `MAX_LAYERS`); empty for a
    /// single stream, which `ssrc`/`rtx_ssrc` describe.
    pub layers: Vec<LayerSpec>,
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
    /// The subscriber's mid for this section (written in the mid extension).
    pub mid: String,
    /// Set when the subscriber negotiated rtx for this codec.
    pub rtx: Option<RtxSpec>,
    /// The subscriber's `red/48000/2` payload type, when it negotiated RED
    /// too: RED passes through. Without it, RED is reduced to its primary.
    pub red_payload_type: Option<u8>,
    /// Extension ids as the subscriber negotiated them.
    pub ext: ExtIds,
    pub feedback: Feedback,
    /// Its priority in the subscriber's stream allocator when installed
    /// (`Command::SetPriority` changes it later). Part of the spec so that
    /// a shard that learns of the session only at its claim has it too.
    pub priority: u8,
}

/// How shards measure speech (ion-sfu's audio observer): each audio
/// uptrack's RFC 6464 levels are summed over `interval` and reported as one
/// `Event::AudioLevels` per shard. A packet counts as active when its level
/// is at or under `threshold` (-dBov: 0 is the loudest, 127 silence).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioLevelSettings {
    pub interval: std::time::Duration,
    pub threshold: u8,
}

impl Default for AudioLevelSettings {
    /// ion-sfu's defaults.
    fn default() -> Self {
        AudioLevelSettings { interval: std::time::Duration::from_millis(1000), threshold: 40 }
    }
}

/// One audio uptrack's levels over one interval (authenticated packets
/// carrying ssrc-audio-level only). Levels are RFC 6464's -dBov.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioLevelWindow {
    pub track: TrackId,
    /// Packets with a level.
    pub packets: u32,
    /// Sum of those packets' levels.
    pub level_sum: u32,
    /// Packets at or above the threshold's loudness.
    pub active: u32,
    /// Sum of the active packets' levels (ion-sfu ranks by it).
    pub active_level_sum: u32,
}

#[derive(Clone, Debug)]
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
    /// The uptrack goes, but its downtracks stay, idle, keeping their SSRC,
    /// sequence and timestamp state for a new source: a livestream's
    /// encoder reconnecting must not cost its viewers their sessions.
    DetachUptrack(TrackId),
    /// Moves a subscriber's downtrack to another uptrack of the same codec.
    /// The subscriber's stream continues: same SSRC, contiguous sequence
    /// numbers, a timestamp jump for the gap, video from the new source's
    /// next keyframe (which is requested).
    MoveDowntrack { session: SessionId, from: TrackId, to: TrackId },
    /// Ask the publisher of a track for a keyframe.
    RequestKeyframe(TrackId),
    /// Stop (or resume) forwarding an uptrack to every subscriber.
    SetMuted { track: TrackId, muted: bool },
    /// Reply with `Event::Snapshot` (admin/stats pull).
    Snapshot,
    /// ICE restart (WHIP/WHEP PATCH, RFC 9725 §4.3.2): the session's checks
    /// now use these credentials. Its paths and media carry on meanwhile.
    RestartIce { session: SessionId, ufrag: String, pwd: String, remote_ufrag: String },
    /// Audio level interval and threshold (sent once at start-up).
    SetAudioLevels(AudioLevelSettings),
    /// A subscriber's priority for one of its video downtracks in its
    /// stream allocator (higher first: screen share, the active speaker).
    SetPriority { session: SessionId, track: TrackId, priority: u8 },
    /// An upper bound on what a subscriber gets of one track or (`track`
    /// None) all of them: the stream allocator chooses within it.
    SetLayerCap { session: SessionId, track: Option<TrackId>, cap: LayerCap },
    /// Test-only: panic inside the shard core, to exercise containment.
    /// Ignored (and logged) unless the dataplane was started with
    /// `test_hooks`.
    TestPanic,
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
    /// A video uptrack's content type, from the video-content-type header
    /// extension: the first one seen and each change (per simulcast layer,
    /// so a track may report the same value more than once).
    UptrackContent { track: TrackId, screen: bool },
    /// Periodic per-shard counters.
    Stats(crate::stats::ShardStats),
    /// Audio levels of this shard's audio uptracks over the last interval:
    /// every track that carried levels in it or in the interval before (so
    /// a track that fell silent reports one empty window).
    AudioLevels { shard: ShardId, windows: Vec<AudioLevelWindow> },
    /// A subscriber's stream allocator chose another layer for a simulcast
    /// track (None: paused).
    LayerChosen { session: SessionId, track: TrackId, layer: Option<u8> },
    /// A shard panicked: its core was reset and the sessions it owned are
    /// gone from the dataplane. The controlplane ends them.
    ShardFailed { shard: ShardId, sessions: Vec<SessionId> },
}

impl Event {
    /// The one session an event is about, if it is about one.
    pub fn session(&self) -> Option<SessionId> {
        match self {
            Event::Claimed { session, .. } | Event::Dtls { session, .. } | Event::ConsentExpired { session } => Some(*session),
            _ => None,
        }
    }
}
