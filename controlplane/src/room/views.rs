//! Read-only views of the core, for the shell's signaling, limits and the
//! admin API.

use dataplane::msg::TrackId;

use super::model::{Participant, ParticipantId, Protocol, Room, Track};
use super::Rooms;

/// How many of each kind of participant a room holds (what limits count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoomCounts {
    pub ion: usize,
    pub whip: usize,
    pub whep: usize,
}

impl Rooms {
    pub fn room(&self, name: &str) -> Option<&Room> {
        self.rooms.get(name)
    }

    /// Rooms by name, in no particular order.
    pub fn rooms(&self) -> impl Iterator<Item = (&String, &Room)> {
        self.rooms.iter()
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    pub fn participant(&self, id: ParticipantId) -> Option<&Participant> {
        self.participants.get(&id)
    }

    /// Every participant in every room.
    pub fn participant_count(&self) -> usize {
        self.participants.len()
    }

    /// The room's participants, in join order.
    pub fn participants_in<'a>(&'a self, room: &str) -> impl Iterator<Item = &'a Participant> + 'a {
        self.rooms.get(room).into_iter().flat_map(|r| r.participants.iter()).filter_map(|id| self.participants.get(id))
    }

    pub fn counts(&self, room: &str) -> RoomCounts {
        let mut c = RoomCounts::default();
        for p in self.participants_in(room) {
            match p.protocol {
                Protocol::Ion => c.ion += 1,
                Protocol::Whip => c.whip += 1,
                Protocol::Whep => c.whep += 1,
            }
        }
        c
    }

    pub fn track(&self, room: &str, id: TrackId) -> Option<&Track> {
        self.rooms.get(room)?.tracks.iter().find(|t| t.id == id)
    }

    /// The tracks published in the room now.
    pub fn tracks(&self, room: &str) -> &[Track] {
        self.rooms.get(room).map_or(&[], |r| r.tracks.as_slice())
    }
}
