//! What the rooms core asks of its shell: dataplane commands, signals for
//! participants, and lifecycle events.

use dataplane::msg::{Command, TrackId};

use super::model::{ParticipantId, Track};
use crate::sdp::MediaKind;

/// Something only the participant's signaling can carry out.
#[derive(Clone, Debug)]
pub enum Signal {
    /// The participant should now receive exactly these tracks: renegotiate
    /// its subscriber PC (downtracks already gone were removed).
    Offer { participant: ParticipantId, tracks: Vec<Track> },
    /// Tell the participant who speaks, loudest first.
    Speakers { participant: ParticipantId, speakers: Vec<String> },
    /// End the participant so its peer notices at once (DTLS close_notify
    /// first), then tell the core it left.
    End { participant: ParticipantId, why: String },
    /// The participant left: forget its sessions and close its signaling.
    Closed { participant: ParticipantId },
}

/// Room lifecycle, for webhooks, metrics and the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomEvent {
    RoomStarted { room: String },
    RoomFinished { room: String },
    ParticipantJoined { room: String, identity: String },
    ParticipantLeft { room: String, identity: String },
    TrackPublished { room: String, identity: String, track: TrackId, kind: MediaKind },
    TrackUnpublished { room: String, identity: String, track: TrackId, kind: MediaKind },
    /// A new WHIP publisher took over `kept` waiting viewers.
    PublisherReplaced { room: String, identity: String, kept: usize },
}

/// Everything one input produced, in order within each list. Commands go
/// to every shard.
#[derive(Debug, Default)]
pub struct Outputs {
    pub commands: Vec<Command>,
    pub signals: Vec<Signal>,
    pub events: Vec<RoomEvent>,
}

impl Outputs {
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.signals.is_empty() && self.events.is_empty()
    }
}
