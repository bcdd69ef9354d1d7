//! Joining, subscribing (an answer's downtracks) and leaving.

use std::time::Instant;

use dataplane::msg::{Command, DowntrackSpec, SessionId};
use tracing::info;

use super::model::{Participant, ParticipantId, Protocol, Room, Subscription};
use super::{RoomError, RoomEvent, Rooms, Signal};
use crate::sdp::Codec;

/// Who joins, and through which sessions.
#[derive(Clone, Debug)]
pub struct Join {
    pub room: String,
    pub identity: String,
    pub protocol: Protocol,
    pub publisher: Option<SessionId>,
    pub subscriber: Option<SessionId>,
    /// False for ion's NoSubscribe/NoAutoSubscribe.
    pub subscribes: bool,
}

/// A downtrack the participant's answer accepted, with the codec it
/// negotiated (a new WHIP publisher must match it to take the viewer over).
#[derive(Clone, Debug)]
pub struct Accepted {
    pub spec: DowntrackSpec,
    pub codec: Codec,
}

impl Rooms {
    /// A participant enters `j.room` (created if new). An ion participant
    /// is offered what the room publishes now.
    pub fn join(&mut self, j: Join) -> Result<ParticipantId, RoomError> {
        if j.protocol == Protocol::Whip && self.rooms.get(&j.room).is_some_and(|r| r.whip.is_some()) {
            return Err(RoomError::RoomBusy(j.room));
        }
        let id = ParticipantId(self.next_id());
        if !self.rooms.contains_key(&j.room) {
            info!(room = %j.room, "room started");
            self.rooms.insert(j.room.clone(), Room::default());
            self.out.events.push(RoomEvent::RoomStarted { room: j.room.clone() });
        }
        let room = self.rooms.get_mut(&j.room).expect("inserted above");
        room.participants.push(id);
        if j.protocol == Protocol::Whip {
            room.whip = Some(id);
        }
        info!(participant = id.0, identity = %j.identity, room = %j.room, protocol = ?j.protocol, "participant joined");
        self.out.events.push(RoomEvent::ParticipantJoined { room: j.room.clone(), identity: j.identity.clone() });
        self.participants.insert(
            id,
            Participant {
                id,
                room: j.room,
                identity: j.identity,
                protocol: j.protocol,
                publisher: j.publisher,
                subscriber: j.subscriber,
                subscribes: j.subscribes,
                subscriptions: Vec::new(),
            },
        );
        self.refresh_one(id);
        Ok(id)
    }

    /// The participant's answer accepted these downtracks. Tracks gone
    /// since the offer, and tracks it already receives, are skipped.
    pub fn answer(&mut self, id: ParticipantId, accepted: Vec<Accepted>) -> Result<(), RoomError> {
        let p = self.participants.get_mut(&id).ok_or(RoomError::UnknownParticipant)?;
        let Some(room) = self.rooms.get(&p.room) else { return Err(RoomError::UnknownParticipant) };
        for a in accepted {
            let live = room.tracks.iter().any(|t| t.id == a.spec.track && t.owner != id);
            if !live || p.subscriptions.iter().any(|s| s.track == a.spec.track) {
                continue;
            }
            p.subscriptions.push(Subscription { track: a.spec.track, codec: a.codec });
            let spec = DowntrackSpec { priority: room.priority(a.spec.track), ..a.spec };
            self.out.commands.push(Command::AddDowntrack(spec));
        }
        Ok(())
    }

    /// The participant is gone: its sessions end on every shard (which
    /// removes its uptracks and the downtracks they fed), the others stop
    /// receiving its tracks, and an empty room closes. A WHIP publisher's
    /// tracks are detached instead while viewers wait for a successor.
    pub fn leave(&mut self, id: ParticipantId, why: &str, now: Instant) {
        let Some(p) = self.participants.remove(&id) else { return };
        let Some(room) = self.rooms.get_mut(&p.room) else { return };
        room.participants.retain(|x| *x != id);
        let mut orphaned = false;
        if room.whip == Some(id) {
            room.whip = None;
            // Before RemoveSession, which would take the viewers' downtracks with it.
            orphaned = self.detach_for_viewers(&p.room, id, now);
        }
        for s in [p.subscriber, p.publisher].into_iter().flatten() {
            self.out.commands.push(Command::RemoveSession(s));
        }
        let Some(room) = self.rooms.get_mut(&p.room) else { return };
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut room.tracks).into_iter().partition(|t| t.owner == id);
        room.tracks = kept;
        info!(participant = id.0, identity = %p.identity, room = %p.room, why, "participant left");
        for t in &gone {
            self.out.events.push(RoomEvent::TrackUnpublished {
                room: p.room.clone(),
                identity: p.identity.clone(),
                track: t.id,
                kind: t.kind,
            });
        }
        self.out.events.push(RoomEvent::ParticipantLeft { room: p.room.clone(), identity: p.identity.clone() });
        self.out.signals.push(Signal::Closed { participant: id });
        if !gone.is_empty() {
            if !orphaned {
                // The dataplane dropped their downtracks with the session.
                for other in &room.participants {
                    if let Some(o) = self.participants.get_mut(other) {
                        o.subscriptions.retain(|s| !gone.iter().any(|t| t.id == s.track));
                    }
                }
            }
            self.refresh(&p.room);
        }
        self.close_if_empty(&p.room);
    }

    fn close_if_empty(&mut self, name: &str) {
        if self.rooms.get(name).is_some_and(|r| r.participants.is_empty()) {
            self.rooms.remove(name);
            info!(room = name, "room finished");
            self.out.events.push(RoomEvent::RoomFinished { room: name.to_string() });
        }
    }
}
