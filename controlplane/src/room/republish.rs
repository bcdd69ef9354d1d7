//! A livestream outlives its encoder reconnecting. When a room's WHIP
//! publisher goes while WHEP viewers watch, its uptracks are detached, not
//! removed: the viewers' downtracks stay, with their SSRCs and sequence
//! state. A new publisher within the grace period whose codecs the viewers
//! can decode takes over those downtracks on the fly; otherwise the viewers
//! are ended cleanly (`Signal::End`) so their players notice and reconnect.

use std::time::Instant;

use dataplane::msg::Command;
use tracing::info;

use super::model::{Orphaned, ParticipantId, Protocol, Track};
use super::{RoomEvent, Rooms, Signal};
use crate::sdp::decodes_unchanged;

impl Rooms {
    fn viewers(&self, room: &str) -> Vec<ParticipantId> {
        let Some(r) = self.rooms.get(room) else { return Vec::new() };
        r.participants.iter().copied().filter(|p| self.participants.get(p).is_some_and(|p| p.protocol == Protocol::Whep)).collect()
    }

    /// The room's WHIP publisher is going. Returns whether its tracks were
    /// detached for its viewers.
    pub(super) fn detach_for_viewers(&mut self, room: &str, publisher: ParticipantId, now: Instant) -> bool {
        let grace = self.cfg.publisher_grace;
        let viewers = self.viewers(room).len();
        let Some(r) = self.rooms.get_mut(room) else { return false };
        if grace.is_zero() || viewers == 0 {
            return false;
        }
        let tracks: Vec<Track> = r.tracks.iter().filter(|t| t.owner == publisher).cloned().collect();
        for t in &tracks {
            self.out.commands.push(Command::DetachUptrack(t.id));
        }
        info!(room, viewers, grace_secs = grace.as_secs(), "publisher left; viewers wait for a new one");
        r.orphaned.get_or_insert_with(|| Orphaned { since: now, tracks: Vec::new() }).tracks.extend(tracks);
        true
    }

    /// A new WHIP publisher's `tracks`: viewers waiting in the room follow
    /// them where they can decode them, and end where they cannot.
    pub(super) fn resume_viewers(&mut self, room: &str, tracks: &[Track]) {
        let viewers = self.viewers(room);
        let Some(r) = self.rooms.get_mut(room) else { return };
        let Some(orphaned) = r.orphaned.take() else { return };
        let mut ended = Vec::new();
        let mut moves = Vec::new();
        for v in &viewers {
            let Some(p) = self.participants.get(v) else { continue };
            let Some(session) = p.subscriber else { continue };
            let mut plan = Vec::new();
            for s in &p.subscriptions {
                let Some(old) = orphaned.tracks.iter().find(|t| t.id == s.track) else { continue };
                match tracks.iter().find(|t| t.kind == old.kind && decodes_unchanged(&s.codec, &t.codec)) {
                    Some(new) => plan.push((s.track, new.id)),
                    None => {
                        plan.clear();
                        ended.push(*v);
                        break;
                    }
                }
            }
            moves.extend(plan.into_iter().map(|(from, to)| (*v, session, from, to)));
        }
        // A viewer that cannot follow all of its tracks ends: half a
        // stream (sound, no picture) would look like a bug, and its player
        // can reconnect and negotiate what the new publisher sends.
        for (v, session, from, to) in moves {
            self.out.commands.push(Command::MoveDowntrack { session, from, to });
            if let Some(s) = self.participants.get_mut(&v).and_then(|p| p.subscriptions.iter_mut().find(|s| s.track == from)) {
                s.track = to;
            }
        }
        let kept = viewers.len() - ended.len();
        info!(room, viewers_kept = kept, viewers_ended = ended.len(), "new publisher took over the room's viewers");
        let identity = tracks.first().and_then(|t| self.participants.get(&t.owner)).map(|p| p.identity.clone()).unwrap_or_default();
        self.out.events.push(RoomEvent::PublisherReplaced { room: room.to_string(), identity, kept });
        for participant in ended {
            self.out.signals.push(Signal::End { participant, why: "the new publisher's media cannot be decoded by this viewer".into() });
        }
    }

    /// Ends viewers whose publisher did not come back in time.
    pub fn tick(&mut self, now: Instant) {
        let grace = self.cfg.publisher_grace;
        let expired: Vec<String> = self
            .rooms
            .iter()
            .filter(|(_, r)| r.orphaned.as_ref().is_some_and(|o| now.saturating_duration_since(o.since) >= grace))
            .map(|(name, _)| name.clone())
            .collect();
        for room in expired {
            let Some(orphaned) = self.rooms.get_mut(&room).and_then(|r| r.orphaned.take()) else { continue };
            let waiting: Vec<ParticipantId> = self
                .viewers(&room)
                .into_iter()
                .filter(|v| {
                    self.participants.get(v).is_some_and(|p| p.subscriptions.iter().any(|s| orphaned.tracks.iter().any(|t| t.id == s.track)))
                })
                .collect();
            info!(room = %room, viewers = waiting.len(), "no publisher returned within room.publisher_grace_secs");
            for participant in waiting {
                self.out.signals.push(Signal::End { participant, why: "no publisher returned within room.publisher_grace_secs".into() });
            }
        }
    }
}
