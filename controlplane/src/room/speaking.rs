//! Active speakers in the rooms core. The shards measure (one window per
//! audio track per interval); each window is filed under its track's room,
//! the room's streams are ranked (`speakers`), and when the list changes
//! every participant hears it (`Signal::Speakers`) and subscribers' stream
//! allocators serve the dominant speaker's video first (`priority`).

use std::collections::HashMap;

use dataplane::msg::{AudioLevelWindow, SessionId, TrackId};
use tracing::debug;

use super::model::ParticipantId;
use super::{Protocol, Rooms, Signal};
use crate::sdp::MediaKind;

/// The room's dominant speaker: its stream, who publishes it, and its
/// tracks in the room (audio and video).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DominantSpeaker {
    pub stream_id: String,
    pub publisher: SessionId,
    pub tracks: Vec<TrackId>,
}

impl Rooms {
    /// A shard's windows: each goes to its track's room, and every room
    /// that got one ranks its speakers again.
    pub fn audio_levels(&mut self, windows: Vec<AudioLevelWindow>) {
        let mut by_track: HashMap<TrackId, AudioLevelWindow> = windows.into_iter().map(|w| (w.track, w)).collect();
        let mut touched = Vec::new();
        for (name, room) in self.rooms.iter_mut() {
            let before = by_track.len();
            for t in room.tracks.iter().filter(|t| t.kind == MediaKind::Audio) {
                if let Some(w) = by_track.remove(&t.id) {
                    room.speakers.update(w);
                }
            }
            if by_track.len() != before {
                touched.push(name.clone());
            }
            if by_track.is_empty() {
                break;
            }
        }
        for name in touched {
            let Some(room) = self.rooms.get_mut(&name) else { continue };
            let tracks = &room.tracks;
            let stream_of = |id: TrackId| tracks.iter().find(|t| t.id == id).map(|t| t.stream_id.clone());
            if let Some(list) = room.speakers.refresh(stream_of, self.cfg.speaking_packets) {
                self.speakers_changed(&name, list);
            }
        }
    }

    /// The one place a room's speakers change.
    fn speakers_changed(&mut self, room: &str, speakers: Vec<String>) {
        debug!(room, ?speakers, "active speakers changed");
        self.refresh_priorities(room);
        let Some(r) = self.rooms.get(room) else { return };
        for id in &r.participants {
            if self.participants.get(id).is_some_and(|p| p.protocol == Protocol::Ion) {
                self.out.signals.push(Signal::Speakers { participant: *id, speakers: speakers.clone() });
            }
        }
    }

    /// The participant's API channel just opened: it hears who speaks now
    /// rather than at the next change. (Its allocator already favours them:
    /// downtracks get their priority when installed.)
    pub fn api_opened(&mut self, id: ParticipantId) {
        let Some(p) = self.participants.get(&id) else { return };
        let Some(room) = self.rooms.get(&p.room) else { return };
        if room.speakers.current().is_empty() {
            return;
        }
        self.out.signals.push(Signal::Speakers { participant: id, speakers: room.speakers.current().to_vec() });
    }

    /// The room's dominant speaker now (the first of the last list sent).
    pub fn dominant_speaker(&self, room: &str) -> Option<DominantSpeaker> {
        let r = self.rooms.get(room)?;
        let stream_id = r.speakers.dominant()?;
        let tracks: Vec<_> = r.tracks.iter().filter(|t| t.stream_id == stream_id).collect();
        Some(DominantSpeaker {
            stream_id: stream_id.to_string(),
            publisher: tracks.first()?.session,
            tracks: tracks.iter().map(|t| t.id).collect(),
        })
    }
}
