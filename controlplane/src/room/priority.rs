//! Which videos subscribers' stream allocators serve first. A screen share
//! carries text that is unreadable at a lower layer, so it outranks the
//! active speaker's camera, which outranks the other cameras. The shards
//! learn screen shares from the media (`Event::UptrackContent`, from the
//! video-content-type extension Chromium sends for screen capture and for
//! tracks hinted `detail`/`text`); speakers from the audio levels.
//!
//! Each subscriber's downtrack of a ranked track gets its priority once:
//! when the ranking changes, and when the downtrack is installed.

use dataplane::msg::{Command, TrackId};
use tracing::info;

use super::{Room, Rooms};
use crate::sdp::MediaKind;

/// A screen share's priority (the highest).
pub const SCREEN_PRIORITY: u8 = 2;
/// The active speaker's video.
pub const SPEAKER_PRIORITY: u8 = 1;

impl Rooms {
    /// A shard saw `track`'s content type: a screen share or a camera.
    /// Tracks of other rooms or gone meanwhile are ignored.
    pub fn content_type(&mut self, track: TrackId, screen: bool) {
        let Some((name, room)) = self.rooms.iter_mut().find(|(_, r)| r.tracks.iter().any(|t| t.id == track)) else { return };
        let Some(t) = room.tracks.iter_mut().find(|t| t.id == track) else { return };
        if t.screen == screen {
            return;
        }
        t.screen = screen;
        info!(track = track.0, room = %name, screen, "video content type");
        let name = name.clone();
        self.refresh_priorities(&name);
    }

    /// Ranks the room's videos again and tells every subscriber of a track
    /// whose priority changed.
    pub(super) fn refresh_priorities(&mut self, room: &str) {
        let speaker: Vec<TrackId> = self.dominant_speaker(room).map(|d| d.tracks).unwrap_or_default();
        let Some(r) = self.rooms.get_mut(room) else { return };
        let now: Vec<(TrackId, u8)> = r
            .tracks
            .iter()
            .filter(|t| t.kind == MediaKind::Video)
            .filter_map(|t| {
                let p = if t.screen {
                    SCREEN_PRIORITY
                } else if speaker.contains(&t.id) {
                    SPEAKER_PRIORITY
                } else {
                    0
                };
                (p > 0).then_some((t.id, p))
            })
            .collect();
        if r.priorities == now {
            return;
        }
        let before = std::mem::replace(&mut r.priorities, now.clone());
        let mut changed: Vec<(TrackId, u8)> = before.iter().filter(|(t, _)| !now.iter().any(|(n, _)| n == t)).map(|(t, _)| (*t, 0)).collect();
        changed.extend(now.iter().filter(|n| !before.contains(n)).copied());
        let participants = r.participants.clone();
        for id in participants {
            let Some(p) = self.participants.get(&id) else { continue };
            let Some(session) = p.subscriber else { continue };
            for &(track, priority) in &changed {
                if p.subscriptions.iter().any(|s| s.track == track) {
                    self.out.commands.push(Command::SetPriority { session, track, priority });
                }
            }
        }
    }
}

impl Room {
    /// The priority subscribers give `track` now.
    pub fn priority(&self, track: TrackId) -> u8 {
        self.priorities.iter().find(|(t, _)| *t == track).map_or(0, |(_, p)| *p)
    }
}
