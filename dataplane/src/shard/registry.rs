//! The shard's replica of what the controlplane has set up: every session's
//! ICE credentials (the ufrag table), who owns each session, and every
//! uptrack/downtrack. It is metadata only; no packets touch it except for
//! lookups. Each shard applies the same commands in the same order, so the
//! replicas agree except for claims in flight.

use std::collections::HashMap;

use crate::msg::{DowntrackSpec, LayerCap, SessionId, SessionSpec, ShardId, TrackId, UptrackSpec};

pub struct SessionMeta {
    pub spec: SessionSpec,
    pub owner: Option<ShardId>,
    /// Layer caps set for the session's downtracks (`None`: all of them),
    /// kept so that a shard that owns the session only later, or a
    /// downtrack installed later, honours them. At most one entry per track
    /// the controlplane named; gone with the session.
    caps: HashMap<Option<TrackId>, LayerCap>,
}

#[derive(Default)]
pub struct Registry {
    pub sessions: HashMap<SessionId, SessionMeta>,
    ufrags: HashMap<Vec<u8>, SessionId>,
    pub uptracks: HashMap<TrackId, UptrackSpec>,
    /// Keyed by (subscriber, source track).
    pub downtracks: HashMap<(SessionId, TrackId), DowntrackSpec>,
    /// Uptracks an admin muted; kept here so a later claim honours it.
    pub muted: std::collections::HashSet<TrackId>,
    /// Bumped on every change that can alter fan-out targets, so uptracks can
    /// cache their remote shard list and revalidate with one compare per packet.
    pub epoch: u64,
}

impl Registry {
    pub fn add_session(&mut self, spec: SessionSpec) {
        self.ufrags.insert(spec.ufrag.as_bytes().to_vec(), spec.id);
        self.sessions.insert(spec.id, SessionMeta { spec, owner: None, caps: HashMap::new() });
        self.epoch += 1;
    }

    /// Removes the session and everything hanging off it: its uptracks, the
    /// downtracks fed by those, and its own downtracks. Returns the removed
    /// uptrack ids and downtrack keys so owned state can follow.
    pub fn remove_session(&mut self, id: SessionId) -> (Vec<TrackId>, Vec<(SessionId, TrackId)>) {
        if let Some(meta) = self.sessions.remove(&id) {
            self.ufrags.remove(meta.spec.ufrag.as_bytes());
        }
        let tracks: Vec<TrackId> = self
            .uptracks
            .iter()
            .filter(|(_, u)| u.session == id)
            .map(|(t, _)| *t)
            .collect();
        for t in &tracks {
            self.uptracks.remove(t);
            self.muted.remove(t);
        }
        let downs: Vec<(SessionId, TrackId)> = self
            .downtracks
            .keys()
            .filter(|(s, t)| *s == id || tracks.contains(t))
            .copied()
            .collect();
        for k in &downs {
            self.downtracks.remove(k);
        }
        self.epoch += 1;
        (tracks, downs)
    }

    pub fn remove_uptrack(&mut self, track: TrackId) -> Vec<(SessionId, TrackId)> {
        self.uptracks.remove(&track);
        self.muted.remove(&track);
        let downs: Vec<_> = self.downtracks.keys().filter(|(_, t)| *t == track).copied().collect();
        for k in &downs {
            self.downtracks.remove(k);
        }
        self.epoch += 1;
        downs
    }

    /// Removes an uptrack but keeps the downtracks it fed (see
    /// `Command::DetachUptrack`).
    pub fn detach_uptrack(&mut self, track: TrackId) {
        self.uptracks.remove(&track);
        self.muted.remove(&track);
        self.epoch += 1;
    }

    /// Points a subscriber's downtrack at another uptrack.
    pub fn move_downtrack(&mut self, session: SessionId, from: TrackId, to: TrackId) -> bool {
        let Some(mut spec) = self.downtracks.remove(&(session, from)) else { return false };
        spec.track = to;
        self.downtracks.insert((session, to), spec);
        if let Some(meta) = self.sessions.get_mut(&session) {
            if let Some(cap) = meta.caps.remove(&Some(from)) {
                meta.caps.insert(Some(to), cap);
            }
        }
        self.epoch += 1;
        true
    }

    /// New ICE credentials for a session: the old ufrag no longer finds it.
    pub fn restart_ice(&mut self, id: SessionId, ufrag: &str, pwd: &str, remote_ufrag: &str) -> bool {
        let Some(meta) = self.sessions.get_mut(&id) else { return false };
        self.ufrags.remove(meta.spec.ufrag.as_bytes());
        meta.spec.ufrag = ufrag.to_owned();
        meta.spec.pwd = pwd.to_owned();
        meta.spec.remote_ufrag = remote_ufrag.to_owned();
        self.ufrags.insert(ufrag.as_bytes().to_vec(), id);
        true
    }

    /// Records a `Command::SetLayerCap`. One for all tracks replaces every
    /// earlier cap of the session, as it does on live downtracks.
    pub fn set_cap(&mut self, session: SessionId, track: Option<TrackId>, cap: LayerCap) {
        let Some(meta) = self.sessions.get_mut(&session) else { return };
        if track.is_none() {
            meta.caps.clear();
        }
        meta.caps.insert(track, cap);
    }

    /// The cap a downtrack of `session` for `track` starts with.
    pub fn cap(&self, session: SessionId, track: TrackId) -> LayerCap {
        let Some(meta) = self.sessions.get(&session) else { return LayerCap::default() };
        meta.caps.get(&Some(track)).or_else(|| meta.caps.get(&None)).copied().unwrap_or_default()
    }

    pub fn by_ufrag(&self, ufrag: &[u8]) -> Option<SessionId> {
        self.ufrags.get(ufrag).copied()
    }

    pub fn owner(&self, id: SessionId) -> Option<ShardId> {
        self.sessions.get(&id).and_then(|m| m.owner)
    }

    pub fn set_owner(&mut self, id: SessionId, shard: ShardId) {
        if let Some(m) = self.sessions.get_mut(&id) {
            m.owner = Some(shard);
            self.epoch += 1;
        }
    }

    /// The shard that owns the publisher of `track`.
    pub fn track_owner(&self, track: TrackId) -> Option<ShardId> {
        self.uptracks.get(&track).and_then(|u| self.owner(u.session))
    }

    /// Shards other than `me` that own a subscriber of `track`.
    pub fn remote_subscriber_shards(&self, track: TrackId, me: ShardId, into: &mut Vec<ShardId>) {
        into.clear();
        for ((sub, t), _) in &self.downtracks {
            if *t != track {
                continue;
            }
            if let Some(owner) = self.owner(*sub) {
                if owner != me && !into.contains(&owner) {
                    into.push(owner);
                }
            }
        }
    }

    pub fn uptracks_of(&self, session: SessionId) -> impl Iterator<Item = &UptrackSpec> {
        self.uptracks.values().filter(move |u| u.session == session)
    }

    pub fn downtracks_of(&self, session: SessionId) -> impl Iterator<Item = &DowntrackSpec> {
        self.downtracks.values().filter(move |d| d.session == session)
    }
}
