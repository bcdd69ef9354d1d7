//! The rooms core: the room model, protocol-neutral and sans-IO. It owns
//! rooms, their participants (WHIP publishers, WHEP viewers and ion
//! participants alike), their tracks and subscriptions.
//!
//! Inputs are method calls (join, publish, answer, leave, audio levels,
//! timer ticks with the time passed in); each leaves its outputs queued
//! for `take`: dataplane commands, signals for participants, and events.
//! No I/O, no clock reads, no locks: the hub (`crate::hub`) is the shell
//! that feeds it, speaks SDP and DTLS, and carries the outputs out.

mod membership;
mod model;
mod output;
mod priority;
mod publish;
mod republish;
mod speaking;
pub mod speakers;
#[cfg(test)]
mod tests;
mod views;
pub use views::RoomCounts;

use std::collections::HashMap;
use std::time::Duration;

use dataplane::msg::TrackId;
use thiserror::Error;

pub use membership::{Accepted, Join};
pub use model::{Orphaned, Participant, ParticipantId, Protocol, Room, Subscription, Track};
pub use output::{Outputs, RoomEvent, Signal};
pub use publish::Published;
pub use speaking::DominantSpeaker;

/// What the core needs of `[room]`.
#[derive(Clone, Debug)]
pub struct RoomsConfig {
    /// How long WHEP viewers wait for a departed WHIP publisher's successor.
    pub publisher_grace: Duration,
    /// Active packets a stream needs per interval to count as speaking.
    pub speaking_packets: u32,
}

impl RoomsConfig {
    pub fn from_config(c: &crate::config::RoomConfig) -> Self {
        RoomsConfig {
            publisher_grace: Duration::from_secs(c.publisher_grace_secs),
            speaking_packets: speakers::expected_packets(c.audio_level_interval_ms, c.audio_level_filter),
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RoomError {
    #[error("room '{0}' already has a publisher")]
    RoomBusy(String),
    #[error("no such participant")]
    UnknownParticipant,
}

/// The msid track id subscribers see for a track (and how it maps back).
pub fn track_label(id: TrackId) -> String {
    format!("sfud-track-{}", id.0)
}

pub fn parse_track_label(label: &str) -> Option<TrackId> {
    label.strip_prefix("sfud-track-")?.parse().ok().map(TrackId)
}

pub struct Rooms {
    cfg: RoomsConfig,
    rooms: HashMap<String, Room>,
    participants: HashMap<ParticipantId, Participant>,
    /// Participant and track ids (one counter: a number names one thing).
    next_id: u64,
    out: Outputs,
}

impl Rooms {
    pub fn new(cfg: RoomsConfig) -> Self {
        Rooms { cfg, rooms: HashMap::new(), participants: HashMap::new(), next_id: 1, out: Outputs::default() }
    }

    /// The outputs of the inputs since the last call, in order.
    pub fn take(&mut self) -> Outputs {
        std::mem::take(&mut self.out)
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}
