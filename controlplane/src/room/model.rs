//! What the rooms core keeps: rooms, their participants (one concept for a
//! WHIP publisher, a WHEP viewer and an ion participant) and tracks.

use std::time::Instant;

use dataplane::msg::{SessionId, TrackId};

use super::speakers::RoomSpeakers;
use crate::sdp::{Codec, MediaKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u64);

/// How a participant signals, which decides what it can do in its room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Publishes once (its offer), receives nothing.
    Whip,
    /// Receives the tracks present when it joined, publishes nothing.
    Whep,
    /// ion-sfu: publishes and renegotiates on its publisher PC, and is
    /// offered every other participant's tracks on its subscriber PC.
    Ion,
}

/// A track published into a room, as subscribers are offered it.
#[derive(Clone, Debug)]
pub struct Track {
    pub id: TrackId,
    pub kind: MediaKind,
    pub codec: Codec,
    pub owner: ParticipantId,
    /// The publishing session (the dataplane's uptrack owner).
    pub session: SessionId,
    /// The publisher's name for it (its mid), stable across renegotiations.
    pub key: String,
    /// The publisher's media stream id (msid), shared by its tracks.
    pub stream_id: String,
    /// The publisher sends RED around this (Opus) codec.
    pub red: bool,
    /// Simulcast layers (0 for a single stream).
    pub layers: usize,
    /// The shards saw it marked as a screen share (video-content-type).
    pub screen: bool,
}

/// A downtrack installed for a participant: the track it forwards and the
/// codec the participant negotiated for it.
#[derive(Clone, Debug)]
pub struct Subscription {
    pub track: TrackId,
    pub codec: Codec,
}

#[derive(Debug)]
pub struct Participant {
    pub id: ParticipantId,
    pub room: String,
    /// The token's identity, the ion uid, or the WHIP/WHEP resource id.
    pub identity: String,
    pub protocol: Protocol,
    /// The session its uptracks belong to (WHIP, ion publisher PC).
    pub publisher: Option<SessionId>,
    /// The session its downtracks belong to (WHEP, ion subscriber PC).
    pub subscriber: Option<SessionId>,
    /// ion's NoSubscribe/NoAutoSubscribe: offered nothing.
    pub subscribes: bool,
    /// Installed downtracks.
    pub subscriptions: Vec<Subscription>,
}

impl Participant {
    /// Whether the core decides what it receives as the room changes
    /// (WHEP keeps what it joined with: it has no renegotiation).
    pub(super) fn follows_room(&self) -> bool {
        self.protocol == Protocol::Ion && self.subscriber.is_some()
    }
}

/// A room whose WHIP publisher left while WHEP viewers watched.
#[derive(Debug)]
pub struct Orphaned {
    pub since: Instant,
    /// The departed publisher's tracks; viewers' downtracks still name them.
    pub tracks: Vec<Track>,
}

#[derive(Default)]
pub struct Room {
    /// In join order.
    pub participants: Vec<ParticipantId>,
    pub tracks: Vec<Track>,
    /// The WHIP publisher, if any (a room holds at most one).
    pub whip: Option<ParticipantId>,
    /// Set while viewers wait for a departed publisher's replacement.
    pub orphaned: Option<Orphaned>,
    /// Audio levels and the speakers last announced.
    pub speakers: RoomSpeakers,
    /// Videos subscribers' stream allocators serve first, with their
    /// priority (screen shares, then the dominant speaker's).
    pub priorities: Vec<(TrackId, u8)>,
}
