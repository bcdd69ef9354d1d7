//! Publishing, and what each participant should receive as a room's tracks
//! change: every other participant's tracks, for participants that follow
//! the room (ion); WHEP viewers keep what they joined with.

use dataplane::msg::{Command, TrackId, UptrackSpec};
use tracing::info;

use super::model::{ParticipantId, Track};
use super::{RoomError, RoomEvent, Rooms, Signal};
use crate::sdp::{Codec, MediaKind};

/// One track as the participant's latest offer publishes it.
#[derive(Clone, Debug)]
pub struct Published {
    /// The publisher's name for it (its mid): the same key in a later
    /// offer is the same track.
    pub key: String,
    pub kind: MediaKind,
    pub codec: Codec,
    pub stream_id: String,
    pub red: bool,
    /// The uptrack for the dataplane; the core fills in `track` and `session`.
    pub spec: UptrackSpec,
}

impl Rooms {
    /// The participant now publishes exactly `tracks`: new keys become
    /// uptracks, missing ones are removed, and subscribers follow. A new
    /// WHIP publisher takes over viewers waiting in its room.
    pub fn publish(&mut self, id: ParticipantId, tracks: Vec<Published>) -> Result<(), RoomError> {
        let p = self.participants.get(&id).ok_or(RoomError::UnknownParticipant)?;
        let session = p.publisher.ok_or(RoomError::UnknownParticipant)?;
        let (room_name, identity) = (p.room.clone(), p.identity.clone());
        let mut added = Vec::new();
        let old: Vec<(String, TrackId)> = self
            .rooms
            .get(&room_name)
            .map(|r| r.tracks.iter().filter(|t| t.owner == id).map(|t| (t.key.clone(), t.id)).collect())
            .unwrap_or_default();
        for t in tracks.iter().filter(|t| !old.iter().any(|(k, _)| *k == t.key)) {
            let track = TrackId(self.next_id());
            let mut spec = t.spec.clone();
            spec.track = track;
            spec.session = session;
            let layers = spec.layers.len();
            self.out.commands.push(Command::AddUptrack(spec));
            info!(participant = id.0, track = track.0, kind = t.kind.as_str(), codec = %t.codec.name, "track published");
            self.out.events.push(RoomEvent::TrackPublished { room: room_name.clone(), identity: identity.clone(), track, kind: t.kind });
            added.push(Track {
                id: track,
                kind: t.kind,
                codec: t.codec.clone(),
                owner: id,
                session,
                key: t.key.clone(),
                stream_id: t.stream_id.clone(),
                red: t.red,
                layers,
                screen: false,
            });
        }
        let Some(room) = self.rooms.get_mut(&room_name) else { return Err(RoomError::UnknownParticipant) };
        let removed: Vec<Track> = room.tracks.iter().filter(|t| t.owner == id && !tracks.iter().any(|n| n.key == t.key)).cloned().collect();
        room.tracks.retain(|t| !removed.iter().any(|r| r.id == t.id));
        room.tracks.extend(added.iter().cloned());
        let is_whip = room.whip == Some(id);
        for t in &removed {
            self.out.commands.push(Command::RemoveUptrack(t.id));
            info!(participant = id.0, track = t.id.0, "track unpublished");
            self.out.events.push(RoomEvent::TrackUnpublished { room: room_name.clone(), identity: identity.clone(), track: t.id, kind: t.kind });
        }
        if !added.is_empty() || !removed.is_empty() {
            self.refresh(&room_name);
        }
        if is_whip && !added.is_empty() {
            self.resume_viewers(&room_name, &added);
        }
        Ok(())
    }

    /// Recomputes what every participant following the room receives.
    pub(super) fn refresh(&mut self, room: &str) {
        let Some(r) = self.rooms.get(room) else { return };
        for id in r.participants.clone() {
            self.refresh_one(id);
        }
    }

    /// Stops forwarding what the participant should no longer receive (at
    /// once; the offer that tells its client follows) and asks for an offer
    /// of what it should.
    pub(super) fn refresh_one(&mut self, id: ParticipantId) {
        let Some(p) = self.participants.get_mut(&id) else { return };
        if !p.follows_room() {
            return;
        }
        let Some(r) = self.rooms.get(&p.room) else { return };
        let wanted: Vec<Track> = r.tracks.iter().filter(|t| p.subscribes && t.owner != id).cloned().collect();
        let subscriber = p.subscriber.expect("follows_room needs a subscriber");
        let out = &mut self.out;
        p.subscriptions.retain(|s| {
            let keep = wanted.iter().any(|t| t.id == s.track);
            if !keep {
                out.commands.push(Command::RemoveDowntrack { session: subscriber, track: s.track });
            }
            keep
        });
        out.signals.push(Signal::Offer { participant: id, tracks: wanted });
    }
}
