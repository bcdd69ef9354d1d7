//! Active speakers, the shell's side. The rooms core ranks them
//! (`room::speaking`); here its `Signal::Speakers` goes out as ion-sfu's
//! `audioLevels` on the participant's `ion-sfu` data channel, and the admin
//! room view shows the levels.

use dataplane::msg::AudioLevelSettings;
use serde::Serialize;

use super::Hub;
use crate::config::RoomConfig;
use crate::room::speakers::audio_levels_message;
use crate::room::{DominantSpeaker, ParticipantId, Room};

/// What the shards need of `[room]`'s audio level keys.
pub(super) fn dataplane_settings(cfg: &RoomConfig) -> AudioLevelSettings {
    AudioLevelSettings {
        interval: std::time::Duration::from_millis(cfg.audio_level_interval_ms),
        threshold: cfg.audio_level_threshold.min(127),
    }
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
    /// Sends the list on the participant's API channel. A channel not open
    /// yet, or congested, misses this list: the next change or the
    /// greeting on open brings it up to date.
    pub(super) fn tell_speakers(&mut self, pid: ParticipantId, speakers: &[String]) {
        let Some((session, channel)) = self.ion.get(&pid).and_then(|p| Some((p.subscriber(), p.api_channel()?))) else { return };
        let msg = audio_levels_message(speakers);
        self.send_text(session, channel, msg);
    }

    /// The room's dominant speaker now (the first of the last `audioLevels`).
    pub fn dominant_speaker(&self, room: &str) -> Option<DominantSpeaker> {
        self.rooms.dominant_speaker(room)
    }

    pub(super) fn audio_level_info(&self, r: &Room) -> Vec<AudioLevelInfo> {
        r.speakers
            .levels()
            .iter()
            .map(|l| {
                let owner = r.tracks.iter().find(|t| t.stream_id == l.stream_id).map(|t| t.owner);
                let participant = owner.and_then(|o| self.rooms.participant(o)).map(|p| p.identity.clone()).unwrap_or_default();
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
