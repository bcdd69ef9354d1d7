//! A livestream outlives its encoder reconnecting. When a room's WHIP
//! publisher goes while WHEP viewers watch, its uptracks are detached, not
//! removed: the viewers' downtracks stay, with their SSRCs and sequence
//! state. A new publisher within `room.publisher_grace_secs` whose codecs
//! the viewers can decode takes over those downtracks on the fly; otherwise
//! the viewers' sessions end cleanly (RTCP BYE, DTLS close_notify) so their
//! players notice and reconnect.

use std::time::{Duration, Instant};

use dataplane::msg::{Command, SessionId, TrackId};
use tracing::info;

use super::{Hub, RoomTrack};
use crate::sdp::{decodes_unchanged, Codec};

/// A WHEP viewer's downtrack, as the hub needs it to move it.
#[derive(Clone)]
pub(super) struct ViewerDowntrack {
    pub viewer: SessionId,
    pub track: TrackId,
    /// What the viewer negotiated (its payload type and parameters).
    pub codec: Codec,
}

/// A room whose publisher left while viewers watched.
pub(super) struct Orphaned {
    pub since: Instant,
    /// The departed publisher's tracks; viewers' downtracks still name them.
    pub tracks: Vec<RoomTrack>,
}

impl Hub {
    fn grace(&self) -> Duration {
        Duration::from_secs(self.limits.publisher_grace_secs)
    }

    /// The room's WHIP publisher `publisher` is going. Returns whether its
    /// tracks were detached for its viewers (the caller then must not
    /// report them removed from the viewers' point of view).
    pub(super) fn detach_for_viewers(&mut self, room: &str, publisher: SessionId) -> bool {
        let grace = self.grace();
        let Some(r) = self.rooms.get_mut(room) else { return false };
        if grace.is_zero() || r.publisher != Some(publisher) || r.viewers.is_empty() {
            return false;
        }
        let tracks: Vec<RoomTrack> = r.tracks.iter().filter(|t| t.owner == publisher).cloned().collect();
        for t in &tracks {
            self.dataplane.broadcast(|| Command::DetachUptrack(t.id));
        }
        info!(room, viewers = r.viewers.len(), grace_secs = grace.as_secs(), "publisher left; viewers wait for a new one");
        let orphaned = r.orphaned.get_or_insert_with(|| Orphaned { since: Instant::now(), tracks: Vec::new() });
        orphaned.tracks.extend(tracks);
        true
    }

    /// A new WHIP publisher's `tracks` in `room`: viewers waiting there
    /// follow them where they can decode them, and end where they cannot.
    pub(super) fn resume_viewers(&mut self, room: &str, tracks: &[RoomTrack]) {
        let Some(r) = self.rooms.get_mut(room) else { return };
        let Some(orphaned) = r.orphaned.take() else { return };
        let mut moves = Vec::new();
        let mut dropped = Vec::new();
        for vd in r.viewer_downtracks.iter_mut() {
            let Some(old) = orphaned.tracks.iter().find(|t| t.id == vd.track) else { continue };
            match tracks.iter().find(|t| t.kind == old.kind && decodes_unchanged(&vd.codec, &t.codec)) {
                Some(new) => {
                    moves.push((vd.viewer, vd.track, new.id));
                    vd.track = new.id;
                }
                None => dropped.push((vd.viewer, vd.track)),
            }
        }
        // A viewer that cannot follow all of its tracks ends: half a
        // stream (sound, no picture) would look like a bug, and its player
        // can reconnect and negotiate what the new publisher sends.
        let mut ended: Vec<SessionId> = dropped.iter().map(|(v, _)| *v).collect();
        ended.sort();
        ended.dedup();
        let kept = r.viewers.iter().filter(|v| !ended.contains(v)).count();
        for (viewer, from, to) in moves.into_iter().filter(|(v, _, _)| !ended.contains(v)) {
            self.dataplane.broadcast(|| Command::MoveDowntrack { session: viewer, from, to });
        }
        info!(room, viewers_kept = kept, viewers_ended = ended.len(), "new publisher took over the room's viewers");
        let identity = tracks
            .first()
            .and_then(|t| self.sessions.get(&t.owner))
            .map(|s| s.identity.clone())
            .unwrap_or_default();
        self.emit(crate::webhook::WebhookEvent::publisher_replaced(room, &identity, kept));
        for viewer in ended {
            self.end_cleanly(viewer, "the new publisher's media cannot be decoded by this viewer");
        }
    }

    /// Ends viewers whose publisher did not come back in time.
    pub(super) fn expire_orphans(&mut self, now: Instant) {
        let grace = self.grace();
        let expired: Vec<String> = self
            .rooms
            .iter()
            .filter(|(_, r)| r.orphaned.as_ref().is_some_and(|o| now.saturating_duration_since(o.since) >= grace))
            .map(|(name, _)| name.clone())
            .collect();
        for room in expired {
            let Some(r) = self.rooms.get_mut(&room) else { continue };
            let Some(orphaned) = r.orphaned.take() else { continue };
            let waiting: Vec<SessionId> = r
                .viewer_downtracks
                .iter()
                .filter(|vd| orphaned.tracks.iter().any(|t| t.id == vd.track))
                .map(|vd| vd.viewer)
                .collect();
            info!(room = %room, viewers = waiting.len(), "no publisher returned within room.publisher_grace_secs");
            for viewer in waiting {
                self.end_cleanly(viewer, "no publisher returned within room.publisher_grace_secs");
            }
        }
    }

    /// Ends a session so its peer notices at once: close_notify goes out
    /// (ahead of the RemoveSession that sends RTCP BYE for its downtracks,
    /// on the same shard's queue), then the session is removed.
    pub(super) fn end_cleanly(&mut self, id: SessionId, why: &str) {
        if let Some(s) = self.sessions.get_mut(&id) {
            if let Some(dtls) = s.dtls.as_mut() {
                dtls.close();
                let mut datagrams = Vec::new();
                while let Some(d) = dtls.poll_datagram() {
                    datagrams.push(d);
                }
                if let (Some(shard), false) = (s.shard, datagrams.is_empty()) {
                    self.dataplane.send(shard, Command::SendDtls { session: id, datagrams });
                }
            }
        }
        self.remove(id, why);
    }

    /// Seconds a room has been waiting for a publisher, for the admin API.
    pub(super) fn waiting_secs(&self, room: &str, now: Instant) -> Option<u64> {
        let o = self.rooms.get(room)?.orphaned.as_ref()?;
        Some(now.saturating_duration_since(o.since).as_secs())
    }
}
