//! Active speakers per room. The shards measure (`Event::AudioLevels`, one
//! window per audio track per interval); this file files each window under
//! its room, ranks the room's streams (`room::speakers`), and when the
//! list changes sends it to every participant's `ion-sfu` data channel as
//! ion-sfu did. The admin room view shows it, and `Hub::dominant_speaker`
//! tells the rest of the controlplane (the stream allocator) who leads.

use std::collections::HashMap;

use dataplane::msg::{AudioLevelSettings, AudioLevelWindow, Command, SessionId, TrackId};
use serde::Serialize;
use tracing::debug;

use super::{Hub, Room};
use crate::config::RoomConfig;
use crate::room::speakers::{audio_levels_message, expected_packets};
use crate::sdp::MediaKind;

/// The active speaker's priority in subscribers' stream allocators (others
/// have 0; higher is served first).
const SPEAKER_PRIORITY: u8 = 1;

/// What the shards need of `[room]`'s audio level keys.
pub(super) fn dataplane_settings(cfg: &RoomConfig) -> AudioLevelSettings {
    AudioLevelSettings {
        interval: std::time::Duration::from_millis(cfg.audio_level_interval_ms),
        threshold: cfg.audio_level_threshold.min(127),
    }
}

/// The room's dominant speaker: its stream, who publishes it, and its
/// tracks in the room (audio and video), for whoever gives the speaker
/// priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DominantSpeaker {
    pub stream_id: String,
    pub publisher: SessionId,
    pub tracks: Vec<TrackId>,
}

/// One audio stream in the admin room view.
#[derive(Serialize)]
pub struct AudioLevelInfo {
    pub stream_id: String,
    /// The publishing participant's identity.
    pub participant: String,
    /// Mean RFC 6464 level over the latest interval, in dBov (0 loudest,
    /// -127 silence); null when no packet carried one.
    pub level_dbov: Option<f64>,
    pub packets: u32,
    /// Packets at or above `room.audio_level_threshold`'s loudness.
    pub active_packets: u32,
    pub speaking: bool,
}

impl Hub {
    /// A shard's windows: each goes to its track's room, and every room
    /// that got one ranks its speakers again.
    pub(super) fn on_audio_levels(&mut self, windows: Vec<AudioLevelWindow>) {
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
        let expected = expected_packets(self.limits.audio_level_interval_ms, self.limits.audio_level_filter);
        for name in touched {
            let Some(room) = self.rooms.get_mut(&name) else { continue };
            let tracks = &room.tracks;
            let stream_of = |id: TrackId| tracks.iter().find(|t| t.id == id).map(|t| t.stream_id.clone());
            if let Some(list) = room.speakers.refresh(stream_of, expected) {
                self.speakers_changed(&name, &list);
            }
        }
    }

    /// The one place a room's speakers change: participants are told (and
    /// the stream allocator will be, from here).
    fn speakers_changed(&mut self, room: &str, speakers: &[String]) {
        debug!(room, ?speakers, "active speakers changed");
        self.prioritize_speaker(room);
        let msg = audio_levels_message(speakers);
        let Some(r) = self.rooms.get(room) else { return };
        let targets: Vec<_> = r
            .participants
            .iter()
            .filter_map(|pid| self.participants.get(pid))
            .filter_map(|p| Some((p.subscriber(), p.api_channel()?)))
            .collect();
        for (session, channel) in targets {
            self.send_api(session, channel, &msg);
        }
    }

    /// A participant's `ion-sfu` channel just opened: it hears who speaks
    /// now rather than at the next change.
    pub(super) fn greet_speakers(&mut self, subscriber: SessionId) {
        let Some(pid) = self.sessions.get(&subscriber).and_then(|s| s.participant) else { return };
        let Some(p) = self.participants.get(&pid) else { return };
        let Some(channel) = p.api_channel() else { return };
        let Some(room) = self.rooms.get(p.room()) else { return };
        if room.speakers.current().is_empty() {
            return;
        }
        let msg = audio_levels_message(room.speakers.current());
        let prioritized = room.prioritized.clone();
        self.set_priority(subscriber, &prioritized, SPEAKER_PRIORITY);
        self.send_api(subscriber, channel, &msg);
    }

    /// The dominant speaker's video goes first in every subscriber's stream
    /// allocator; the previous speaker's goes back to the normal priority.
    fn prioritize_speaker(&mut self, room: &str) {
        let now = self.dominant_speaker(room).map(|d| d.tracks).unwrap_or_default();
        let Some(r) = self.rooms.get_mut(room) else { return };
        if r.prioritized == now {
            return;
        }
        let before = std::mem::replace(&mut r.prioritized, now.clone());
        let dropped: Vec<TrackId> = before.into_iter().filter(|t| !now.contains(t)).collect();
        let subscribers: Vec<SessionId> = r
            .participants
            .iter()
            .filter_map(|pid| self.participants.get(pid))
            .map(|p| p.subscriber())
            .chain(r.viewers.iter().copied())
            .collect();
        for sub in subscribers {
            self.set_priority(sub, &dropped, 0);
            self.set_priority(sub, &now, SPEAKER_PRIORITY);
        }
    }

    /// Shards without that subscriber's downtrack ignore the command.
    fn set_priority(&self, session: SessionId, tracks: &[TrackId], priority: u8) {
        for &track in tracks {
            self.dataplane.broadcast(|| Command::SetPriority { session, track, priority });
        }
    }

    /// Sends on a subscriber's API channel. A channel not open yet, or
    /// congested, misses this list: the next change or the greeting on
    /// open brings it up to date.
    fn send_api(&mut self, session: SessionId, channel: crate::datachannel::ChannelId, msg: &str) {
        let Some(dc) = self.sessions.get_mut(&session).and_then(|s| s.dc.as_mut()) else { return };
        match dc.send_text(channel, msg) {
            Ok(()) => self.pump_dtls(session),
            Err(e) => debug!(session = session.0, error = %e, "audioLevels not sent"),
        }
    }

    /// The room's dominant speaker now (the first of the last `audioLevels`).
    pub fn dominant_speaker(&self, room: &str) -> Option<DominantSpeaker> {
        let r = self.rooms.get(room)?;
        let stream_id = r.speakers.dominant()?;
        let tracks: Vec<&super::RoomTrack> = r.tracks.iter().filter(|t| t.stream_id == stream_id).collect();
        Some(DominantSpeaker {
            stream_id: stream_id.to_string(),
            publisher: tracks.first()?.owner,
            tracks: tracks.iter().map(|t| t.id).collect(),
        })
    }

    pub(super) fn audio_level_info(&self, r: &Room) -> Vec<AudioLevelInfo> {
        r.speakers
            .levels()
            .iter()
            .map(|l| {
                let owner = r.tracks.iter().find(|t| t.stream_id == l.stream_id).map(|t| t.owner);
                let participant = owner.and_then(|o| self.sessions.get(&o)).map(|s| s.identity.clone()).unwrap_or_default();
                AudioLevelInfo {
                    stream_id: l.stream_id.clone(),
                    participant,
                    level_dbov: l.mean_dbov(),
                    packets: l.packets,
                    active_packets: l.active_packets,
                    speaking: r.speakers.current().contains(&l.stream_id),
                }
            })
            .collect()
    }
}
