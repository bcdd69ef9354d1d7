//! Operator views and actions for the admin API, the watchdog and the drain.

use std::time::Instant;

use dataplane::msg::Command;
use serde::Serialize;
use tracing::{info, warn};

use super::{ion::track_label, Hub, HubError, SessionKind};

#[derive(Serialize)]
pub struct TrackDetail {
    pub sid: String,
    pub kind: &'static str,
    pub codec: String,
    pub muted: bool,
}

#[derive(Serialize)]
pub struct ParticipantDetail {
    pub identity: String,
    /// "rtc" (a JSON-RPC room participant), "whip" or "whep".
    pub kind: &'static str,
    pub tracks: Vec<TrackDetail>,
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
        let r = self.rooms.get(room).ok_or_else(|| HubError::NoRoom(room.to_string()))?;
        let tracks_of = |owner| {
            r.tracks
                .iter()
                .filter(|t| t.owner == owner)
                .map(|t| TrackDetail {
                    sid: track_label(t.id),
                    kind: t.kind.as_str(),
                    codec: t.codec.name.clone(),
                    muted: self.muted.contains(&t.id),
                })
                .collect()
        };
        let mut out: Vec<ParticipantDetail> = r
            .participants
            .iter()
            .filter_map(|pid| self.participants.get(pid))
            .map(|p| ParticipantDetail { identity: p.uid().to_string(), kind: "rtc", tracks: tracks_of(p.publisher()) })
            .collect();
        for (id, s) in &self.sessions {
            if s.room != room {
                continue;
            }
            let kind = match s.kind {
                SessionKind::Whip => "whip",
                SessionKind::Whep => "whep",
                _ => continue,
            };
            out.push(ParticipantDetail { identity: s.identity.clone(), kind, tracks: tracks_of(*id) });
        }
        Ok(out)
    }

    /// Removes a participant (every session with that identity in the room).
    pub fn remove_participant(&mut self, room: &str, identity: &str) -> Result<(), HubError> {
        let pids: Vec<_> = self
            .rooms
            .get(room)
            .ok_or_else(|| HubError::NoRoom(room.to_string()))?
            .participants
            .iter()
            .copied()
            .filter(|pid| self.participants.get(pid).is_some_and(|p| p.uid() == identity))
            .collect();
        let sessions: Vec<_> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.room == room && s.identity == identity && s.participant.is_none())
            .map(|(id, _)| *id)
            .collect();
        if pids.is_empty() && sessions.is_empty() {
            return Err(HubError::NoParticipant(identity.to_string()));
        }
        for pid in pids {
            self.leave(pid, "removed by admin");
        }
        for id in sessions {
            self.remove(id, "removed by admin");
        }
        Ok(())
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
        let r = self.rooms.get(room).ok_or_else(|| HubError::NoRoom(room.to_string()))?;
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
            rooms: self.rooms.len(),
            participants: self.participants.len(),
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
        self.rooms.contains_key(room)
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
