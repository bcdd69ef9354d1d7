//! The controlplane's view of sessions and rooms. It owns the DTLS endpoints
//! and drives the dataplane only through `Command`s; it learns what happens
//! there only through `Event`s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use dataplane::msg::{Command, Event, SessionId, SessionSpec, ShardId, TrackId};
use dataplane::shard::Dataplane;
use dataplane::srtp::{split_keying_material, SrtpProfile};
use dataplane::stats::ShardStats;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Serialize;
use thiserror::Error;
use tracing::{debug, info, warn};

use crate::datachannel::{DataChannelEvent, DataChannels, MessageData};
use crate::dtls::{DtlsContext, DtlsEvent, DtlsServer};
use crate::sdp::{self, Codec, LocalIce, MediaKind, OfferedTrack, SessionDescription};

mod admin;
mod events;
mod patch;
mod republish;
mod layers;
mod limits;
mod ion;
mod specs;
mod speakers;

pub use layers::LayerCapBody;
pub use admin::{NodeInfo, ParticipantDetail};
pub use patch::Patched;
pub use limits::{Client, LimitHit};
use limits::Role;
pub use ion::{ParticipantId, ParticipantInfo, RoomInfo};
pub use speakers::DominantSpeaker;

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
    /// None until the peer's fingerprint is known (a subscriber PC learns it
    /// from the browser's answer); DTLS that arrives earlier waits in `early_dtls`.
    dtls: Option<DtlsServer>,
    early_dtls: Vec<Vec<u8>>,
    /// SCTP data channels (room sessions only).
    dc: Option<DataChannels>,
    participant: Option<ParticipantId>,
    /// Who: the token's identity, the room participant's uid, or the resource id.
    identity: String,
    remote: Option<SocketAddr>,
    tracks: Vec<TrackId>,
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

/// A track published into a room, as subscribers are offered it.
#[derive(Clone)]
struct RoomTrack {
    id: TrackId,
    kind: MediaKind,
    codec: Codec,
    /// The publishing session.
    owner: SessionId,
    /// The publisher's media stream id (msid), shared by its tracks.
    stream_id: String,
    /// The publisher sends RED around this (Opus) codec.
    red: bool,
    /// Simulcast layers (0 for a single stream).
    layers: usize,
}

#[derive(Default)]
struct Room {
    /// The WHIP publisher, if any.
    publisher: Option<SessionId>,
    tracks: Vec<RoomTrack>,
    viewers: Vec<SessionId>,
    participants: Vec<ParticipantId>,
    /// WHEP viewers' downtracks, so they can follow a new publisher.
    viewer_downtracks: Vec<republish::ViewerDowntrack>,
    /// Set while viewers wait for a departed publisher's replacement.
    orphaned: Option<republish::Orphaned>,
    /// Audio levels and the speakers last announced (`hub/speakers.rs`).
    speakers: crate::room::speakers::RoomSpeakers,
    /// The dominant speaker's tracks, which subscribers' stream allocators
    /// serve first (`Command::SetPriority`).
    prioritized: Vec<TrackId>,
}

impl Room {
    fn is_empty(&self) -> bool {
        self.publisher.is_none() && self.viewers.is_empty() && self.participants.is_empty()
    }
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
    dtls: DtlsContext,
    fingerprint: String,
    candidates: Vec<SocketAddr>,
    allow_placement_hint: bool,
    limits: crate::config::RoomConfig,
    node_limits: crate::config::LimitsConfig,
    sessions: HashMap<SessionId, SessionEntry>,
    resources: HashMap<String, SessionId>,
    rooms: HashMap<String, Room>,
    participants: HashMap<ParticipantId, ion::Participant>,
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
    ) -> Self {
        let shards = dataplane.shards();
        let audio = speakers::dataplane_settings(&limits);
        dataplane.broadcast(|| Command::SetAudioLevels(audio));
        Hub {
            dataplane,
            dtls,
            fingerprint,
            candidates,
            allow_placement_hint,
            limits,
            node_limits: Default::default(),
            sessions: HashMap::new(),
            resources: HashMap::new(),
            rooms: HashMap::new(),
            participants: HashMap::new(),
            next_id: 1,
            stats: (0..shards).map(|shard| ShardStats { shard, ..Default::default() }).collect(),
            stats_seen: vec![None; shards],
            hooks: crate::webhook::Webhooks::default(),
            muted: Default::default(),
            test_hooks: false,
            panic_next_timer: false,
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
        let dtls = match remote {
            Some(r) => Some(DtlsServer::new(&self.dtls, r.fingerprint.clone()).map_err(|e| HubError::Dtls(e.to_string()))?),
            None => None,
        };
        let with_dc = matches!(kind, SessionKind::Publisher | SessionKind::Subscriber);
        let id = SessionId(self.next_id);
        self.next_id += 1;
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
                dtls,
                early_dtls: Vec::new(),
                dc: with_dc.then(|| DataChannels::new(Instant::now())),
                participant: None,
                identity,
                remote: None,
                tracks: Vec::new(),
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

    /// WHIP: a publisher's offer becomes the room's uptracks.
    pub fn publish(
        &mut self,
        room: &str,
        offer: &SessionDescription,
        hint: Option<usize>,
        client: Client<'_>,
    ) -> Result<Created, HubError> {
        let pinned = self.pinned(hint)?;
        let identity = client.identity;
        if self.rooms.get(room).is_some_and(|r| r.publisher.is_some()) {
            return Err(HubError::RoomBusy(room.to_string()));
        }
        self.admit(room, Role::Publisher, client)?;
        let local = self.local_ice();
        let answer = sdp::answer_publish(offer, &local).map_err(|e| HubError::BadOffer(e.to_string()))?;
        let (id, resource) = self.new_session(SessionKind::Whip, room, &local, Some(&answer.remote), pinned, identity, client)?;
        let mut tracks = Vec::new();
        for m in &answer.media {
            let track = self.add_uptrack(id, m);
            tracks.push(RoomTrack {
                id: track,
                kind: m.kind,
                codec: m.codec.clone(),
                owner: id,
                stream_id: format!("sfud-{room}"),
                red: m.red_pt.is_some(),
                layers: m.layers.len(),
            });
        }
        if let Some(s) = self.sessions.get_mut(&id) {
            s.tracks = tracks.iter().map(|t| t.id).collect();
        }
        let announced: Vec<(TrackId, MediaKind)> = tracks.iter().map(|t| (t.id, t.kind)).collect();
        let r = self.room_entry(room);
        r.publisher = Some(id);
        r.tracks.extend(tracks.iter().cloned());
        let codecs: Vec<&str> = r.tracks.iter().filter(|t| t.owner == id).map(|t| t.codec.name.as_str()).collect();
        info!(session = id.0, room, ?codecs, "publisher joined");
        let who = self.sessions.get(&id).map(|s| s.identity.clone()).unwrap_or_default();
        self.participant_joined(room, &who);
        for (t, kind) in announced {
            self.track_published(room, &who, t, kind);
        }
        self.refresh_room(room);
        self.resume_viewers(room, &tracks);
        let etag = self.sessions.get(&id).map(|s| s.etag.clone()).unwrap_or_default();
        Ok(Created { resource, answer: answer.sdp, etag })
    }

    /// A new uptrack for what a publisher's answer accepted, on every shard.
    fn add_uptrack(&mut self, session: SessionId, m: &sdp::PublishedMedia) -> TrackId {
        let track = TrackId(self.next_id);
        self.next_id += 1;
        let spec = specs::uptrack(track, session, m);
        self.dataplane.broadcast(|| Command::AddUptrack(spec.clone()));
        track
    }

    /// WHEP: a viewer's offer gets the room's current tracks as downtracks.
    pub fn subscribe(
        &mut self,
        room: &str,
        offer: &SessionDescription,
        hint: Option<usize>,
        client: Client<'_>,
    ) -> Result<Created, HubError> {
        let pinned = self.pinned(hint)?;
        let identity = client.identity;
        let tracks = match self.rooms.get(room) {
            Some(r) if !r.tracks.is_empty() => r.tracks.clone(),
            _ => return Err(HubError::NoPublisher(room.to_string())),
        };
        self.admit(room, Role::Viewer, client)?;
        let offered: Vec<OfferedTrack> = tracks
            .iter()
            .map(|t| OfferedTrack {
                kind: t.kind,
                codec: t.codec.clone(),
                ssrc: rand::random::<u32>() | 1,
                rtx_ssrc: specs::rtx_ssrc_for(t.kind),
                red: t.red,
                cname: format!("sfud-{room}"),
                stream_id: t.stream_id.clone(),
                track_id: ion::track_label(t.id),
            })
            .collect();
        let local = self.local_ice();
        let answer =
            sdp::answer_subscribe(offer, &local, &offered).map_err(|e| HubError::BadOffer(e.to_string()))?;
        let (id, resource) = self.new_session(SessionKind::Whep, room, &local, Some(&answer.remote), pinned, identity, client)?;
        for m in &answer.media {
            let Some(t) = tracks.get(m.track_index) else { continue };
            let spec = specs::whep_downtrack(id, t.id, m);
            self.dataplane.broadcast(|| Command::AddDowntrack(spec.clone()));
        }
        if let Some(r) = self.rooms.get_mut(room) {
            r.viewers.push(id);
            for m in &answer.media {
                let Some(t) = tracks.get(m.track_index) else { continue };
                r.viewer_downtracks.push(republish::ViewerDowntrack { viewer: id, track: t.id, codec: m.codec.clone() });
            }
        }
        info!(session = id.0, room, "viewer joined");
        let who = self.sessions.get(&id).map(|s| s.identity.clone()).unwrap_or_default();
        self.participant_joined(room, &who);
        let etag = self.sessions.get(&id).map(|s| s.etag.clone()).unwrap_or_default();
        Ok(Created { resource, answer: answer.sdp, etag })
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

    /// Ends a session. A room session takes its whole participant with it.
    fn remove(&mut self, id: SessionId, why: &str) {
        if let Some(pid) = self.sessions.get(&id).and_then(|s| s.participant) {
            self.leave(pid, why);
            return;
        }
        self.drop_session(id, why);
    }

    /// Forgets one session here and on every shard (which removes its
    /// uptracks and the downtracks they fed), and prunes the room.
    fn drop_session(&mut self, id: SessionId, why: &str) {
        let Some(entry) = self.sessions.remove(&id) else { return };
        self.resources.remove(&entry.resource);
        // Before RemoveSession, which would take the viewers' downtracks with it.
        if entry.kind == SessionKind::Whip {
            self.detach_for_viewers(&entry.room, id);
        }
        self.dataplane.broadcast(|| Command::RemoveSession(id));
        let mut removed = Vec::new();
        if let Some(room) = self.rooms.get_mut(&entry.room) {
            if room.publisher == Some(id) {
                room.publisher = None;
            }
            removed = room.tracks.iter().filter(|t| t.owner == id).map(|t| (t.id, t.kind)).collect();
            room.tracks.retain(|t| t.owner != id);
            room.viewers.retain(|v| *v != id);
            room.viewer_downtracks.retain(|vd| vd.viewer != id);
        }
        info!(session = id.0, room = %entry.room, kind = ?entry.kind, why, "session ended");
        for (t, kind) in &removed {
            self.track_unpublished(&entry.room, &entry.identity, *t, *kind);
        }
        if matches!(entry.kind, SessionKind::Whip | SessionKind::Whep) {
            self.participant_left(&entry.room, &entry.identity);
        }
        if !removed.is_empty() {
            self.refresh_room(&entry.room);
        }
        self.close_room_if_empty(&entry.room);
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
                    s.remote = Some(remote);
                    if s.state == SessionState::New {
                        s.state = SessionState::Connecting;
                    }
                }
            }
            Event::Dtls { session, datagram } => self.on_dtls(session, &datagram),
            Event::ConsentExpired { session } => self.remove(session, "ICE consent expired"),
            // The shard reset itself after a panic; what it owned is gone.
            Event::ShardFailed { shard, sessions } => {
                warn!(shard, sessions = sessions.len(), "shard failed; ending its sessions");
                for id in sessions {
                    self.remove(id, "its shard failed");
                }
            }
            Event::UptrackActive { track, ssrc } => debug!(track = track.0, ssrc, "uptrack active"),
            Event::AudioLevels { windows, .. } => self.on_audio_levels(windows),
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

    fn on_dtls(&mut self, id: SessionId, datagram: &[u8]) {
        let now = Instant::now();
        let Some(s) = self.sessions.get_mut(&id) else { return };
        let Some(dtls) = s.dtls.as_mut() else {
            // The peer's answer (with its fingerprint) is still on its way.
            if s.early_dtls.len() < 16 {
                s.early_dtls.push(datagram.to_vec());
            }
            return;
        };
        if let Err(e) = dtls.handle_datagram(datagram, now) {
            warn!(session = id.0, error = %e, "DTLS failed");
            crate::metrics::record_dtls_handshake(false);
            self.remove(id, "DTLS failure");
            return;
        }
        self.pump_dtls(id);
    }

    /// Retransmission timers of handshakes in flight.
    pub fn on_timer(&mut self) {
        if std::mem::take(&mut self.panic_next_timer) {
            panic!("test hook: forced controlplane timer panic");
        }
        let now = Instant::now();
        self.expire_offers(now);
        self.expire_orphans(now);
        self.reap_unconnected(now);
        let due: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                s.dtls.as_ref().and_then(|d| d.poll_timeout()).is_some_and(|t| t <= now)
                    || s.dc.as_ref().and_then(|d| d.poll_timeout()).is_some_and(|t| t <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(s) = self.sessions.get_mut(&id) {
                if let Some(dc) = s.dc.as_mut() {
                    if dc.poll_timeout().is_some_and(|t| t <= now) {
                        dc.handle_timeout(now);
                    }
                }
                let Some(dtls) = s.dtls.as_mut() else { continue };
                if dtls.poll_timeout().is_some_and(|t| t <= now) {
                    if let Err(e) = dtls.handle_timeout(now) {
                        warn!(session = id.0, error = %e, "DTLS timeout handling failed");
                        self.remove(id, "DTLS failure");
                        continue;
                    }
                }
            }
            self.pump_dtls(id);
        }
    }

    /// Moves DTLS output to the owning shard and installs keys once connected.
    fn pump_dtls(&mut self, id: SessionId) {
        let now = Instant::now();
        let Some(s) = self.sessions.get_mut(&id) else { return };
        let Some(dtls) = s.dtls.as_mut() else { return };
        let mut keys = None;
        let mut closed = false;
        let mut api_messages = Vec::new();
        while let Some(ev) = dtls.poll_event() {
            match ev {
                DtlsEvent::Connected { srtp_profile, keying_material } => keys = Some((srtp_profile, keying_material)),
                DtlsEvent::ApplicationData(packet) => {
                    if let Some(dc) = s.dc.as_mut() {
                        dc.handle_sctp(&packet, now);
                    }
                }
                DtlsEvent::Closed => closed = true,
            }
        }
        // SCTP rides on DTLS application data (RFC 8261).
        let mut api_opened = false;
        if let Some(dc) = s.dc.as_mut() {
            if dtls.is_connected() {
                while let Some(packet) = dc.poll_transmit() {
                    if let Err(e) = dtls.send_application_data(&packet) {
                        debug!(session = id.0, error = %e, "SCTP packet not sent");
                    }
                }
            }
            while let Some(ev) = dc.poll_event() {
                match ev {
                    DataChannelEvent::Opened { label, .. } => {
                        info!(session = id.0, %label, "data channel open");
                        api_opened |= s.kind == SessionKind::Subscriber && label == "ion-sfu";
                    }
                    DataChannelEvent::Message { data: MessageData::Text(text), .. } if api_messages.len() < 16 => {
                        api_messages.push(text);
                    }
                    other => debug!(session = id.0, event = ?other, "data channel event"),
                }
            }
        }
        let mut datagrams = Vec::new();
        while let Some(d) = dtls.poll_datagram() {
            datagrams.push(d);
        }
        for text in api_messages {
            self.on_api_message(id, &text);
        }
        let Some(s) = self.sessions.get_mut(&id) else { return };
        let shard = s.shard;
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
                    crate::metrics::record_dtls_handshake(true);
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
        if api_opened {
            // A late joiner learns who is speaking now, not at the next change.
            self.greet_speakers(id);
        }
    }
}
