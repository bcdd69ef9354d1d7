//! Operator views and actions for the admin API, the watchdog and the drain.

use std::time::Instant;

use dataplane::msg::Command;
use serde::Serialize;
use tracing::{info, warn};

use super::speakers::AudioLevelInfo;
use super::{Hub, HubError};
use crate::room::{track_label, ParticipantId, Protocol};

#[derive(Serialize)]
pub struct TrackDetail {
    pub sid: String,
    pub kind: &'static str,
    pub codec: String,
    pub muted: bool,
    /// The shards saw it marked as a screen share (video-content-type);
    /// subscribers' stream allocators serve it first.
    pub screen: bool,
}

#[derive(Serialize)]
pub struct ParticipantDetail {
    pub identity: String,
    /// "rtc" (a JSON-RPC room participant), "whip" or "whep".
    pub kind: &'static str,
    pub tracks: Vec<TrackDetail>,
}

/// An ion participant in the admin room view.
#[derive(Serialize)]
pub struct ParticipantInfo {
    pub uid: String,
    pub tracks: usize,
}

#[derive(Serialize)]
pub struct RoomInfo {
    pub name: String,
    /// ion (JSON-RPC) participants; WHIP and WHEP are counted below.
    pub participants: Vec<ParticipantInfo>,
    pub tracks: usize,
    pub whip_publisher: bool,
    pub whep_viewers: usize,
    /// Seconds the room's viewers have been waiting for a new publisher
    /// (`room.publisher_grace_secs`), when its publisher left.
    pub waiting_for_publisher_secs: Option<u64>,
    /// Stream ids speaking now, loudest first (what `audioLevels` last
    /// said), and the first of them.
    pub speakers: Vec<String>,
    pub dominant_speaker: Option<String>,
    /// Each audio stream's levels over its latest interval.
    pub audio_levels: Vec<AudioLevelInfo>,
}

#[derive(Serialize)]
pub struct ShardLoad {
    pub shard: usize,
    pub sessions: u64,
    pub uptracks: u64,
    pub downtracks: u64,
    pub busy_seconds: f64,
}

#[derive(Serialize)]
pub struct NodeInfo {
    pub version: &'static str,
    pub shards: usize,
    pub rooms: usize,
    pub participants: usize,
    pub sessions: usize,
    pub load: Vec<ShardLoad>,
}

impl Hub {
    pub fn participants_of(&self, room: &str) -> Result<Vec<ParticipantDetail>, HubError> {
        let r = self.rooms.room(room).ok_or_else(|| HubError::NoRoom(room.to_string()))?;
        let tracks_of = |owner: ParticipantId| {
            r.tracks
                .iter()
                .filter(|t| t.owner == owner)
                .map(|t| TrackDetail {
                    sid: track_label(t.id),
                    kind: t.kind.as_str(),
                    codec: t.codec.name.clone(),
                    muted: self.muted.contains(&t.id),
                    screen: t.screen,
                })
                .collect()
        };
        Ok(self
            .rooms
            .participants_in(room)
            .map(|p| ParticipantDetail {
                identity: p.identity.clone(),
                kind: match p.protocol {
                    Protocol::Ion => "rtc",
                    Protocol::Whip => "whip",
                    Protocol::Whep => "whep",
                },
                tracks: tracks_of(p.id),
            })
            .collect())
    }

    /// Removes a participant (every participant with that identity in the room).
    pub fn remove_participant(&mut self, room: &str, identity: &str) -> Result<(), HubError> {
        if self.rooms.room(room).is_none() {
            return Err(HubError::NoRoom(room.to_string()));
        }
        let pids: Vec<ParticipantId> =
            self.rooms.participants_in(room).filter(|p| p.identity == identity).map(|p| p.id).collect();
        if pids.is_empty() {
            return Err(HubError::NoParticipant(identity.to_string()));
        }
        for pid in pids {
            self.leave(pid, "removed by admin");
        }
        Ok(())
    }

    /// The rooms, as the admin API lists them.
    pub fn rooms(&self) -> Vec<RoomInfo> {
        let now = Instant::now();
        let mut v: Vec<RoomInfo> = self
            .rooms
            .rooms()
            .map(|(name, r)| {
                let counts = self.rooms.counts(name);
                RoomInfo {
                    name: name.clone(),
                    participants: self
                        .rooms
                        .participants_in(name)
                        .filter(|p| p.protocol == Protocol::Ion)
                        .map(|p| ParticipantInfo {
                            uid: p.identity.clone(),
                            tracks: r.tracks.iter().filter(|t| t.owner == p.id).count(),
                        })
                        .collect(),
                    tracks: r.tracks.len(),
                    whip_publisher: counts.whip > 0,
                    whep_viewers: counts.whep,
                    waiting_for_publisher_secs: r.orphaned.as_ref().map(|o| now.saturating_duration_since(o.since).as_secs()),
                    speakers: r.speakers.current().to_vec(),
                    dominant_speaker: r.speakers.dominant().map(str::to_string),
                    audio_levels: self.audio_level_info(r),
                }
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Stops (or resumes) forwarding a published track to everyone.
    /// Test-only: makes `shard` panic, to test containment. The shard
    /// ignores it unless sfud runs with `dataplane.test_hooks`.
    pub fn test_panic(&self, shard: usize) -> Result<(), HubError> {
        if shard >= self.dataplane.shards() {
            return Err(HubError::BadPlacement(format!("no shard {shard}")));
        }
        warn!(shard, "test hook: forcing a shard panic");
        self.dataplane.send(shard, Command::TestPanic);
        Ok(())
    }

    /// Lets the test-only hooks act (`dataplane.test_hooks`).
    pub fn enable_test_hooks(&mut self) {
        self.test_hooks = true;
    }

    /// Test-only: the controlplane's timer task panics at its next step,
    /// to test that it is contained. Refused unless test hooks are on.
    pub fn test_controlplane_panic(&mut self) -> Result<(), HubError> {
        if !self.test_hooks {
            return Err(HubError::TestHooksOff);
        }
        warn!("test hook: forcing a controlplane timer panic");
        self.panic_next_timer = true;
        Ok(())
    }

    pub fn set_muted(&mut self, room: &str, track_sid: &str, muted: bool) -> Result<(), HubError> {
        let r = self.rooms.room(room).ok_or_else(|| HubError::NoRoom(room.to_string()))?;
        let track = r
            .tracks
            .iter()
            .find(|t| track_label(t.id) == track_sid)
            .map(|t| t.id)
            .ok_or_else(|| HubError::NoTrack(track_sid.to_string()))?;
        if muted {
            self.muted.insert(track);
        } else {
            self.muted.remove(&track);
        }
        self.dataplane.broadcast(|| Command::SetMuted { track, muted });
        info!(room, track = track_sid, muted, "track mute changed by admin");
        Ok(())
    }

    pub fn node_info(&self) -> NodeInfo {
        NodeInfo {
            version: env!("CARGO_PKG_VERSION"),
            shards: self.shards(),
            rooms: self.rooms.room_count(),
            participants: self.rooms.participant_count(),
            sessions: self.sessions.len(),
            load: self
                .stats
                .iter()
                .map(|s| ShardLoad {
                    shard: s.shard,
                    sessions: s.sessions,
                    uptracks: s.uptracks,
                    downtracks: s.downtracks,
                    busy_seconds: s.busy_ns as f64 / 1e9,
                })
                .collect(),
        }
    }

    /// Whether this node hosts `room` now (cluster placement skips Redis then).
    pub fn has_room(&self, room: &str) -> bool {
        self.rooms.room(room).is_some()
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Asks every shard for a stats snapshot (the watchdog's liveness probe).
    pub fn request_snapshots(&self) {
        self.dataplane.broadcast(|| Command::Snapshot);
    }

    /// Whether every shard has reported since `t`.
    pub fn all_shards_reported_since(&self, t: Instant) -> bool {
        self.stats_seen.iter().all(|s| s.is_some_and(|seen| seen >= t))
    }
}
