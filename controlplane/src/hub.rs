//! The controlplane's view of sessions and rooms. It owns the DTLS endpoints
//! and drives the dataplane only through `Command`s; it learns what happens
//! there only through `Event`s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use dataplane::msg::{
    CodecKind, Command, DowntrackSpec, Event, SessionId, SessionSpec, ShardId, TrackId, UptrackSpec,
};
use dataplane::shard::Dataplane;
use dataplane::srtp::{split_keying_material, SrtpProfile};
use dataplane::stats::ShardStats;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Serialize;
use thiserror::Error;
use tracing::{debug, info, warn};

use crate::dtls::{DtlsContext, DtlsEvent, DtlsServer};
use crate::sdp::{self, Codec, LocalIce, MediaKind, OfferedTrack, SessionDescription};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    Whip,
    Whep,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    /// Answer sent, waiting for ICE.
    New,
    /// ICE claimed by a shard, DTLS in progress.
    Connecting,
    /// SRTP keys installed.
    Connected,
}

struct SessionEntry {
    resource: String,
    kind: SessionKind,
    room: String,
    shard: Option<ShardId>,
    state: SessionState,
    dtls: DtlsServer,
    remote: Option<SocketAddr>,
    tracks: Vec<TrackId>,
}

/// A track published into a room, as viewers are offered it.
#[derive(Clone)]
struct RoomTrack {
    id: TrackId,
    kind: MediaKind,
    codec: Codec,
}

#[derive(Default)]
struct Room {
    publisher: Option<SessionId>,
    tracks: Vec<RoomTrack>,
    viewers: Vec<SessionId>,
}

#[derive(Debug, Error)]
pub enum HubError {
    #[error("{0}")]
    BadOffer(String),
    #[error("room '{0}' already has a publisher")]
    RoomBusy(String),
    #[error("room '{0}' has no publisher yet; retry when one is live")]
    NoPublisher(String),
    #[error("no such session")]
    UnknownSession,
    #[error("placement hint: {0}")]
    BadPlacement(String),
    #[error("DTLS setup failed: {0}")]
    Dtls(String),
}

#[derive(Serialize)]
pub struct SessionInfo {
    pub id: String,
    pub kind: SessionKind,
    pub room: String,
    pub shard: Option<ShardId>,
    pub state: SessionState,
}

pub struct Created {
    pub resource: String,
    pub answer: String,
}

pub struct Hub {
    dataplane: Dataplane,
    dtls: DtlsContext,
    fingerprint: String,
    candidates: Vec<SocketAddr>,
    allow_placement_hint: bool,
    sessions: HashMap<SessionId, SessionEntry>,
    resources: HashMap<String, SessionId>,
    rooms: HashMap<String, Room>,
    next_id: u64,
    stats: Vec<ShardStats>,
}

fn random_token(len: usize) -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

impl Hub {
    pub fn new(
        dataplane: Dataplane,
        dtls: DtlsContext,
        fingerprint: String,
        candidates: Vec<SocketAddr>,
        allow_placement_hint: bool,
    ) -> Self {
        let shards = dataplane.shards();
        Hub {
            dataplane,
            dtls,
            fingerprint,
            candidates,
            allow_placement_hint,
            sessions: HashMap::new(),
            resources: HashMap::new(),
            rooms: HashMap::new(),
            next_id: 1,
            stats: (0..shards).map(|shard| ShardStats { shard, ..Default::default() }).collect(),
        }
    }

    pub fn shards(&self) -> usize {
        self.dataplane.shards()
    }

    fn pinned(&self, hint: Option<usize>) -> Result<Option<ShardId>, HubError> {
        match hint {
            None => Ok(None),
            Some(_) if !self.allow_placement_hint => {
                Err(HubError::BadPlacement("disabled (set dataplane.allow_placement_hint for tests)".into()))
            }
            Some(s) if s >= self.shards() => {
                Err(HubError::BadPlacement(format!("shard {s} does not exist (there are {})", self.shards())))
            }
            Some(s) => Ok(Some(s)),
        }
    }

    fn local_ice(&self) -> LocalIce {
        LocalIce {
            ufrag: random_token(8),
            pwd: random_token(24),
            fingerprint_sha256: self.fingerprint.clone(),
            udp_candidates: self.candidates.clone(),
            tcp_candidates: Vec::new(),
        }
    }

    fn new_session(
        &mut self,
        kind: SessionKind,
        room: &str,
        local: &LocalIce,
        remote: &sdp::RemoteParams,
        pinned: Option<ShardId>,
    ) -> Result<(SessionId, String), HubError> {
        let dtls = DtlsServer::new(&self.dtls, remote.fingerprint.clone()).map_err(|e| HubError::Dtls(e.to_string()))?;
        let id = SessionId(self.next_id);
        self.next_id += 1;
        let resource = random_token(16);
        self.sessions.insert(
            id,
            SessionEntry {
                resource: resource.clone(),
                kind,
                room: room.to_string(),
                shard: None,
                state: SessionState::New,
                dtls,
                remote: None,
                tracks: Vec::new(),
            },
        );
        self.resources.insert(resource.clone(), id);
        let spec = SessionSpec {
            id,
            ufrag: local.ufrag.clone(),
            pwd: local.pwd.clone(),
            remote_ufrag: remote.ice_ufrag.clone(),
            pinned_shard: pinned,
        };
        self.dataplane.broadcast(|| Command::AddSession(spec.clone()));
        Ok((id, resource))
    }

    /// WHIP: a publisher's offer becomes the room's uptracks.
    pub fn publish(&mut self, room: &str, offer: &SessionDescription, hint: Option<usize>) -> Result<Created, HubError> {
        let pinned = self.pinned(hint)?;
        if self.rooms.get(room).is_some_and(|r| r.publisher.is_some()) {
            return Err(HubError::RoomBusy(room.to_string()));
        }
        let local = self.local_ice();
        let answer = sdp::answer_publish(offer, &local).map_err(|e| HubError::BadOffer(e.to_string()))?;
        let (id, resource) = self.new_session(SessionKind::Whip, room, &local, &answer.remote, pinned)?;
        let mut tracks = Vec::new();
        for m in &answer.media {
            let track = TrackId(self.next_id);
            self.next_id += 1;
            let spec = UptrackSpec {
                track,
                session: id,
                kind: m.kind,
                codec: CodecKind::from_name(&m.codec.name),
                payload_type: m.codec.pt,
                clock_rate: m.codec.clock_rate,
                ssrc: m.ssrc,
                mid: m.mid.clone(),
                mid_ext_id: m.mid_ext_id,
            };
            self.dataplane.broadcast(|| Command::AddUptrack(spec.clone()));
            tracks.push(RoomTrack { id: track, kind: m.kind, codec: m.codec.clone() });
        }
        if let Some(s) = self.sessions.get_mut(&id) {
            s.tracks = tracks.iter().map(|t| t.id).collect();
        }
        let r = self.rooms.entry(room.to_string()).or_default();
        r.publisher = Some(id);
        r.tracks = tracks;
        let codecs: Vec<&str> = r.tracks.iter().map(|t| t.codec.name.as_str()).collect();
        info!(session = id.0, room, ?codecs, "publisher joined");
        Ok(Created { resource, answer: answer.sdp })
    }

    /// WHEP: a viewer's offer gets the room's current tracks as downtracks.
    pub fn subscribe(&mut self, room: &str, offer: &SessionDescription, hint: Option<usize>) -> Result<Created, HubError> {
        let pinned = self.pinned(hint)?;
        let tracks = match self.rooms.get(room) {
            Some(r) if r.publisher.is_some() && !r.tracks.is_empty() => r.tracks.clone(),
            _ => return Err(HubError::NoPublisher(room.to_string())),
        };
        let offered: Vec<OfferedTrack> = tracks
            .iter()
            .map(|t| OfferedTrack {
                kind: t.kind,
                codec: t.codec.clone(),
                ssrc: rand::random::<u32>() | 1,
                cname: format!("sfud-{room}"),
                stream_id: format!("sfud-{room}"),
                track_id: format!("track-{}", t.id.0),
            })
            .collect();
        let local = self.local_ice();
        let answer =
            sdp::answer_subscribe(offer, &local, &offered).map_err(|e| HubError::BadOffer(e.to_string()))?;
        let (id, resource) = self.new_session(SessionKind::Whep, room, &local, &answer.remote, pinned)?;
        for m in &answer.media {
            let Some(t) = tracks.get(m.track_index) else { continue };
            let spec = DowntrackSpec {
                session: id,
                track: t.id,
                kind: t.kind,
                ssrc: m.ssrc,
                payload_type: m.codec.pt,
                clock_rate: m.codec.clock_rate,
            };
            self.dataplane.broadcast(|| Command::AddDowntrack(spec.clone()));
        }
        if let Some(r) = self.rooms.get_mut(room) {
            r.viewers.push(id);
        }
        info!(session = id.0, room, "viewer joined");
        Ok(Created { resource, answer: answer.sdp })
    }

    /// Ends a session by its resource id (WHIP/WHEP DELETE). `kind` and
    /// `room` must match the URL it was created under.
    pub fn delete(&mut self, kind: SessionKind, room: &str, resource: &str) -> Result<(), HubError> {
        let id = *self.resources.get(resource).ok_or(HubError::UnknownSession)?;
        let entry = self.sessions.get(&id).ok_or(HubError::UnknownSession)?;
        if entry.kind != kind || entry.room != room {
            return Err(HubError::UnknownSession);
        }
        self.remove(id, "deleted by client");
        Ok(())
    }

    fn remove(&mut self, id: SessionId, why: &str) {
        let Some(entry) = self.sessions.remove(&id) else { return };
        self.resources.remove(&entry.resource);
        self.dataplane.broadcast(|| Command::RemoveSession(id));
        if let Some(room) = self.rooms.get_mut(&entry.room) {
            if room.publisher == Some(id) {
                room.publisher = None;
                room.tracks.clear();
            }
            room.viewers.retain(|v| *v != id);
            if room.publisher.is_none() && room.viewers.is_empty() {
                self.rooms.remove(&entry.room);
            }
        }
        info!(session = id.0, room = %entry.room, kind = ?entry.kind, why, "session ended");
    }

    pub fn sessions(&self) -> Vec<SessionInfo> {
        let mut v: Vec<_> = self
            .sessions
            .iter()
            .map(|(id, s)| (id.0, SessionInfo {
                id: s.resource.clone(),
                kind: s.kind,
                room: s.room.clone(),
                shard: s.shard,
                state: s.state,
            }))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        v.into_iter().map(|(_, s)| s).collect()
    }

    pub fn shard_stats(&self) -> &[ShardStats] {
        &self.stats
    }

    // ---- events from the dataplane ----------------------------------------

    pub fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Claimed { session, shard, remote } => {
                let Some(s) = self.sessions.get_mut(&session) else { return };
                // Same tie-break as the shards: the lowest claiming shard wins.
                if s.shard.is_none_or(|cur| shard < cur) {
                    s.shard = Some(shard);
                    s.remote = Some(remote);
                    if s.state == SessionState::New {
                        s.state = SessionState::Connecting;
                    }
                }
            }
            Event::Dtls { session, datagram } => self.on_dtls(session, &datagram),
            Event::ConsentExpired { session } => self.remove(session, "ICE consent expired"),
            Event::UptrackActive { track, ssrc } => debug!(track = track.0, ssrc, "uptrack active"),
            Event::Stats(s) => {
                if let Some(slot) = self.stats.get_mut(s.shard) {
                    *slot = s;
                }
            }
        }
    }

    fn on_dtls(&mut self, id: SessionId, datagram: &[u8]) {
        let now = Instant::now();
        let Some(s) = self.sessions.get_mut(&id) else { return };
        if let Err(e) = s.dtls.handle_datagram(datagram, now) {
            warn!(session = id.0, error = %e, "DTLS failed");
            self.remove(id, "DTLS failure");
            return;
        }
        self.pump_dtls(id);
    }

    /// Retransmission timers of handshakes in flight.
    pub fn on_timer(&mut self) {
        let now = Instant::now();
        let due: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.dtls.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(s) = self.sessions.get_mut(&id) {
                if let Err(e) = s.dtls.handle_timeout(now) {
                    warn!(session = id.0, error = %e, "DTLS timeout handling failed");
                    self.remove(id, "DTLS failure");
                    continue;
                }
            }
            self.pump_dtls(id);
        }
    }

    /// Moves DTLS output to the owning shard and installs keys once connected.
    fn pump_dtls(&mut self, id: SessionId) {
        let Some(s) = self.sessions.get_mut(&id) else { return };
        let mut datagrams = Vec::new();
        while let Some(d) = s.dtls.poll_datagram() {
            datagrams.push(d);
        }
        let shard = s.shard;
        let mut keys = None;
        let mut closed = false;
        while let Some(ev) = s.dtls.poll_event() {
            match ev {
                DtlsEvent::Connected { srtp_profile, keying_material } => keys = Some((srtp_profile, keying_material)),
                DtlsEvent::ApplicationData(_) => {}
                DtlsEvent::Closed => closed = true,
            }
        }
        let Some(shard) = shard else { return };
        if !datagrams.is_empty() {
            self.dataplane.send(shard, Command::SendDtls { session: id, datagrams });
        }
        if let Some((name, material)) = keys {
            let Some(profile) = SrtpProfile::from_openssl_name(&name) else {
                warn!(session = id.0, profile = %name, "DTLS negotiated an SRTP profile we do not support");
                self.remove(id, "no SRTP profile");
                return;
            };
            match split_keying_material(profile, &material, true) {
                Ok((tx, rx)) => {
                    info!(session = id.0, shard, ?profile, "DTLS connected");
                    self.dataplane.send(shard, Command::SetSrtp { session: id, tx, rx });
                    if let Some(s) = self.sessions.get_mut(&id) {
                        s.state = SessionState::Connected;
                    }
                }
                Err(e) => {
                    warn!(session = id.0, error = %e, "bad SRTP keying material");
                    self.remove(id, "bad keying material");
                }
            }
        }
        if closed {
            self.remove(id, "DTLS close_notify");
        }
    }
}
