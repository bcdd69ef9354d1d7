//! The shell around the rooms core (`crate::room`): sessions, the handles
//! of their transport tasks (DTLS and SCTP run in `crate::transport`, off
//! this lock; `transport.rs` takes their reports), and the signaling of
//! each protocol (`whip.rs`, `ion.rs`). It feeds the core what clients and the dataplane
//! do, and carries out what the core asks (`outputs.rs`). It drives the
//! dataplane only through `Command`s and learns what happens there only
//! through `Event`s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use dataplane::msg::{Command, Event, SessionId, SessionSpec, ShardId, TrackId};
use dataplane::shard::Dataplane;
use dataplane::stats::ShardStats;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Serialize;
use thiserror::Error;
use tracing::{debug, info, warn};

use crate::dtls::DtlsContext;
use crate::sdp::{self, LocalIce};
use crate::transport::{Registry, Shards, Spawner, Transport, TransportHandle};

mod admin;
mod events;
mod ion;
mod layers;
mod limits;
mod outputs;
mod patch;
mod specs;
mod speakers;
mod transport;
mod whip;

pub use layers::LayerCapBody;
pub use admin::{NodeInfo, ParticipantDetail};
pub use patch::Patched;
pub use limits::{Client, LimitHit};
use limits::Role;
pub use admin::{ParticipantInfo, RoomInfo};
pub use crate::room::{DominantSpeaker, ParticipantId};
pub use transport::TransportReports;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    Whip,
    Whep,
    /// A room participant's publisher PeerConnection (the client offers).
    Publisher,
    /// A room participant's subscriber PeerConnection (sfud offers).
    Subscriber,
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
    /// Its transport task (DTLS, and SCTP for room sessions).
    transport: TransportHandle,
    /// End with close_notify ahead of the dataplane's `RemoveSession`
    /// (`end_cleanly`), rather than silently.
    close_first: bool,
    /// The participant it carries (set once the rooms core admitted it).
    participant: Option<ParticipantId>,
    /// Who: the token's identity, the room participant's uid, or the resource id.
    identity: String,
    remote: Option<SocketAddr>,
    /// The client's current ICE ufrag: a PATCH with another one restarts ICE.
    remote_ufrag: String,
    /// The WHIP/WHEP resource's entity tag; a new one per ICE restart.
    etag: String,
    /// When the offer was answered: the connect timeout runs from here.
    created: Instant,
    /// The signaling peer's address (pending sessions are limited per address).
    source: Option<std::net::IpAddr>,
    /// The verified token's identity, when auth is on.
    token_identity: Option<String>,
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
    #[error("no room '{0}'")]
    NoRoom(String),
    #[error("no participant '{0}' in this room")]
    NoParticipant(String),
    #[error("no track '{0}' in this room")]
    NoTrack(String),
    #[error("sfud is draining: it takes no new sessions; retry on another node")]
    Draining,
    #[error("If-Match {0} does not match the session's current ETag; fetch it again (ICE restarted?)")]
    PreconditionFailed(String),
    #[error("{}", .0.message)]
    Limit(LimitHit),
    #[error("test hooks are off (set dataplane.test_hooks for tests)")]
    TestHooksOff,
}

/// A session as the admin API lists it. `id` is the first characters of
/// the resource id only: the rest is the capability that ends the session,
/// and stays with the client that created it.
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
    /// For the `ETag` header (quoted).
    pub etag: String,
}

pub struct Hub {
    dataplane: Dataplane,
    /// Starts each session's transport task.
    transports: Spawner,
    /// Session → its task's DTLS inbox (shared with the event loop).
    registry: Registry,
    fingerprint: String,
    candidates: Vec<SocketAddr>,
    allow_placement_hint: bool,
    limits: crate::config::RoomConfig,
    node_limits: crate::config::LimitsConfig,
    sessions: HashMap<SessionId, SessionEntry>,
    resources: HashMap<String, SessionId>,
    /// The room model: rooms, participants, tracks, subscriptions.
    rooms: crate::room::Rooms,
    /// ion participants' signaling state (their SDP, their socket).
    ion: HashMap<ParticipantId, ion::IonPeer>,
    /// Session ids.
    next_id: u64,
    stats: Vec<ShardStats>,
    /// When each shard last reported (the watchdog's proof of life).
    stats_seen: Vec<Option<Instant>>,
    hooks: crate::webhook::Webhooks,
    /// Tracks an admin muted.
    muted: std::collections::HashSet<TrackId>,
    /// Test-only hooks (`dataplane.test_hooks`): a forced panic in the
    /// timer task, to show the controlplane contains it.
    test_hooks: bool,
    panic_next_timer: bool,
}

/// Resource ids are capabilities (whoever has one may DELETE the session):
/// 32 alphanumerics, of which the admin API shows only the first
/// `PUBLIC_ID_LEN`, leaving ~143 secret bits.
const RESOURCE_LEN: usize = 32;
const PUBLIC_ID_LEN: usize = 8;

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
        limits: crate::config::RoomConfig,
    ) -> (Self, TransportReports) {
        let shards = dataplane.shards();
        let audio = speakers::dataplane_settings(&limits);
        dataplane.broadcast(|| Command::SetAudioLevels(audio));
        let rooms = crate::room::Rooms::new(crate::room::RoomsConfig::from_config(&limits));
        let (transports, reports) = Spawner::new(dtls, Shards::new(&dataplane.commands));
        let registry = transports.registry();
        let hub = Hub {
            dataplane,
            transports,
            registry,
            fingerprint,
            candidates,
            allow_placement_hint,
            limits,
            node_limits: Default::default(),
            sessions: HashMap::new(),
            resources: HashMap::new(),
            rooms,
            ion: HashMap::new(),
            next_id: 1,
            stats: (0..shards).map(|shard| ShardStats { shard, ..Default::default() }).collect(),
            stats_seen: vec![None; shards],
            hooks: crate::webhook::Webhooks::default(),
            muted: Default::default(),
            test_hooks: false,
            panic_next_timer: false,
        };
        let reports = TransportReports { registry: hub.registry.clone(), reports };
        (hub, reports)
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
            // RFC 6544 passive candidates: the same addresses, on the ICE-TCP port.
            tcp_candidates: match self.dataplane.tcp_addr {
                Some(tcp) => self.candidates.iter().map(|a| SocketAddr::new(a.ip(), tcp.port())).collect(),
                None => Vec::new(),
            },
        }
    }

    /// Registers a session with every shard. `remote` is None for a
    /// subscriber PC, whose peer is only known once it answers.
    fn new_session(
        &mut self,
        kind: SessionKind,
        room: &str,
        local: &LocalIce,
        remote: Option<&sdp::RemoteParams>,
        pinned: Option<ShardId>,
        identity: Option<&str>,
        client: Client<'_>,
    ) -> Result<(SessionId, String), HubError> {
        let with_dc = matches!(kind, SessionKind::Publisher | SessionKind::Subscriber);
        let mut transport =
            Transport::new(self.transports.ctx(), remote.map(|r| r.fingerprint.clone()), with_dc, Instant::now())
                .map_err(|e| HubError::Dtls(e.to_string()))?;
        // ion-sdk-js's join() resolves when this channel opens on the subscriber PC.
        let api_channel = if kind == SessionKind::Subscriber { transport.open_channel(layers::API_CHANNEL) } else { None };
        let id = SessionId(self.next_id);
        self.next_id += 1;
        let transport = self.transports.spawn(id, transport, api_channel);
        let resource = random_token(RESOURCE_LEN);
        let identity = identity.map_or_else(|| resource.clone(), str::to_string);
        self.sessions.insert(
            id,
            SessionEntry {
                resource: resource.clone(),
                kind,
                room: room.to_string(),
                shard: None,
                state: SessionState::New,
                transport,
                close_first: false,
                participant: None,
                identity,
                remote: None,
                remote_ufrag: remote.map(|r| r.ice_ufrag.clone()).unwrap_or_default(),
                etag: patch::new_etag(),
                created: Instant::now(),
                source: client.source,
                token_identity: client.identity.map(str::to_string),
            },
        );
        self.resources.insert(resource.clone(), id);
        let spec = SessionSpec {
            id,
            ufrag: local.ufrag.clone(),
            pwd: local.pwd.clone(),
            remote_ufrag: remote.map(|r| r.ice_ufrag.clone()).unwrap_or_default(),
            pinned_shard: pinned,
        };
        self.dataplane.broadcast(|| Command::AddSession(spec.clone()));
        Ok((id, resource))
    }

    /// Ends a session. A session carrying a participant takes the whole
    /// participant with it (an ion participant's other PC too).
    fn remove(&mut self, id: SessionId, why: &str) {
        match self.sessions.get(&id).map(|s| s.participant) {
            Some(Some(pid)) => self.leave(pid, why),
            Some(None) => {
                // Never admitted by the core (refused half-way).
                self.forget_session(id);
                self.dataplane.broadcast(|| Command::RemoveSession(id));
                info!(session = id.0, why, "session ended");
            }
            None => {}
        }
    }

    /// A participant is gone (leave, socket closed, ICE consent or DTLS failure).
    pub fn leave(&mut self, pid: ParticipantId, why: &str) {
        self.rooms.leave(pid, why, Instant::now());
        self.drive();
    }

    /// Drops a session's state here (the dataplane is told by the caller).
    /// Its transport task ends with its handle, unless `finish` already
    /// asked it to close first.
    fn forget_session(&mut self, id: SessionId) {
        self.registry.remove(id);
        if let Some(entry) = self.sessions.remove(&id) {
            self.resources.remove(&entry.resource);
        }
    }

    pub fn sessions(&self) -> Vec<SessionInfo> {
        let mut v: Vec<_> = self
            .sessions
            .iter()
            .map(|(id, s)| (id.0, SessionInfo {
                id: s.resource.chars().take(PUBLIC_ID_LEN).collect(),
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

    /// Ends a session from outside the signaling paths (panic containment).
    pub fn end_session(&mut self, id: SessionId, why: &str) {
        self.remove(id, why);
    }

    pub fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Claimed { session, shard, remote } => {
                let Some(s) = self.sessions.get_mut(&session) else { return };
                // Same tie-break as the shards: the lowest claiming shard wins.
                if s.shard.is_none_or(|cur| shard < cur) {
                    s.shard = Some(shard);
                    s.transport.set_shard(shard);
                    s.remote = Some(remote);
                    if s.state == SessionState::New {
                        s.state = SessionState::Connecting;
                    }
                }
            }
            // The event loop hands these to the registry itself, without
            // this lock; one that reaches here goes the same way.
            Event::Dtls { session, datagram } => {
                self.registry.deliver(session, datagram);
            }
            Event::ConsentExpired { session } => self.remove(session, "ICE consent expired"),
            // The shard reset itself after a panic; what it owned is gone.
            Event::ShardFailed { shard, sessions } => {
                warn!(shard, sessions = sessions.len(), "shard failed; ending its sessions");
                for id in sessions {
                    self.remove(id, "its shard failed");
                }
            }
            Event::UptrackActive { track, ssrc } => debug!(track = track.0, ssrc, "uptrack active"),
            Event::UptrackContent { track, screen } => {
                self.rooms.content_type(track, screen);
                self.drive();
            }
            Event::AudioLevels { windows, .. } => {
                self.rooms.audio_levels(windows);
                self.drive();
            }
            Event::LayerChosen { session, track, layer } => self.on_layer_chosen(session, track, layer),
            Event::Stats(s) => {
                crate::metrics::record_shard_stats(&s);
                if let Some(seen) = self.stats_seen.get_mut(s.shard) {
                    *seen = Some(Instant::now());
                }
                if let Some(slot) = self.stats.get_mut(s.shard) {
                    *slot = s;
                }
            }
        }
    }

    /// Timeouts of the hub's own: unanswered offers, the rooms core's
    /// timers, unconnected sessions. (DTLS and SCTP timers run in each
    /// session's transport task.)
    pub fn on_timer(&mut self) {
        if std::mem::take(&mut self.panic_next_timer) {
            panic!("test hook: forced controlplane timer panic");
        }
        let now = Instant::now();
        self.expire_offers(now);
        self.rooms.tick(now);
        self.drive();
        self.reap_unconnected(now);
    }
}
