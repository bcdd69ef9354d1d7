//! A shard's protocol core, sans I/O: datagrams, commands, peer messages and
//! time go in; datagrams, peer messages and events come out through the
//! `Outbox`. The glommio loop in `shard::run` only moves bytes.

use crate::forward::dependency_descriptor::DdContext;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, info, warn};

use crate::demux::{classify, PacketClass};
use crate::forward::layer_demand::{DemandAnnouncer, LayerDemand};
use crate::forward::audio_level::ReportClock;
use crate::forward::rate_meter::RateMeter;
use crate::forward::simulcast;
use crate::forward::bwe::{SentMedia, MAX_LOST_PER_FEEDBACK};
use crate::forward::retransmission_cache::RetransmissionCache;
use crate::forward::{Downtrack, Uptrack};
use crate::ice::IceLite;
use crate::msg::{Command, Event, SessionId, ShardId, TrackId};
use crate::rtcp;
use crate::shard::outbox::{ConnId, Dest, Outbox};
use crate::shard::peer::{MediaBatch, PeerMsg};
use crate::shard::registry::Registry;
use crate::shard::session::Session;
use crate::shard::session_table::{SessionTable, NO_SLOT};
use crate::srtp::{SrtpContext, SrtpError};
use crate::stats::{DropReason, ShardStats};
use crate::{dtls_record, stun};

/// How often RR/SR go out and consent is checked.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// How often `tick` scans downtracks for keyframe retries; well under the
/// downtracks' own retry spacing.
const KEYFRAME_SCAN_INTERVAL: Duration = Duration::from_millis(50);

/// What the I/O loop does with an ICE-TCP connection after a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpVerdict {
    /// Served here; read on.
    Keep,
    /// The first frame was not a valid Binding for a session we know.
    Close,
    /// The session lives on this shard: move the connection there, with
    /// the frame just read and everything after it.
    HandOver(ShardId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Local(SessionId),
    /// Another shard owns the session this 5-tuple belongs to. The session
    /// is kept so the entry is freed with it.
    Remote(ShardId, SessionId),
}

/// How often SRTP streams that went quiet and are no longer negotiated are
/// forgotten: a stream goes after one to two of these without a packet.
pub const SRTP_REAP_INTERVAL: Duration = Duration::from_secs(30);

/// SSRCs a subscriber's send context may hold: a primary and a repair
/// stream per forwarded track plus our RTCP SSRC. Past it a new SSRC is
/// refused rather than a live stream's rollover counter forgotten.
pub const MAX_SEND_STREAMS: usize = 1024;

/// Hard cap on the route table. Routes are only learnt from authenticated
/// checks and freed with their session, so this is a backstop: past it,
/// packets are still steered but no new entry is kept.
pub const MAX_ROUTES: usize = 1 << 16;

/// Claims from other shards that arrived before the session's AddSession
/// (the command and the peer message travel on different channels).
const MAX_EARLY_CLAIMS: usize = 1024;

pub struct ShardCore {
    pub id: ShardId,
    pub(super) registry: Registry,
    pub(super) sessions: SessionTable,
    /// UDP 5-tuples and TCP connections to the session they carry.
    routes: HashMap<Dest, Route>,
    pub(super) uptracks: HashMap<TrackId, Uptrack>,
    /// Local downtracks per source track.
    pub(super) downtracks: HashMap<TrackId, Vec<Downtrack>>,
    /// This shard's copy of recent packets of each track it has
    /// downtracks of, so NACKs are answered here.
    pub(super) caches: HashMap<TrackId, RetransmissionCache>,
    /// The dependency descriptor's latest template structure per track this
    /// shard has downtracks of (each shard reads the descriptors it fans
    /// out, so no structure crosses shards).
    pub(super) dd: HashMap<TrackId, DdContext>,
    /// The first instant the core saw: origin of abs-send-time.
    pub(super) origin: Option<Instant>,
    pub stats: ShardStats,
    pub(super) last_report: Option<Instant>,
    /// When `tick` next looks for downtracks still waiting for a keyframe.
    keyframe_scan_at: Option<Instant>,
    last_srtp_reap: Option<Instant>,
    /// Scratch for building RTCP before it is protected into the outbox.
    pub(super) scratch: Vec<u8>,
    pub(super) nack_scratch: Vec<u16>,
    /// Losses one subscriber feedback hands on for repair (reused).
    pub(super) lost_scratch: Vec<SentMedia>,
    /// Tracks whose new local downtracks need a keyframe at the next tick.
    pending_keyframes: Vec<TrackId>,
    /// Bounded, oldest first: see `MAX_EARLY_CLAIMS`.
    early_claims: Vec<(SessionId, ShardId)>,
    /// Honour `Command::TestPanic` (tests of panic containment only).
    pub test_hooks: bool,
    /// When the next `Event::AudioLevels` is due, and its settings.
    pub(super) audio_clock: ReportClock,
    /// Arrival rate of each track and simulcast layer with local
    /// subscribers (by cache key), for the stream allocators.
    pub(super) rates: HashMap<TrackId, RateMeter>,
    /// When the stream allocators run next.
    pub(super) alloc_at: Option<Instant>,
    /// When running probes are paced next (None: no probe runs).
    pub(super) probe_pace_at: Option<Instant>,
    /// Layers each shard's subscribers need of this shard's simulcast
    /// uptracks (`shard/layer_demand.rs`).
    pub(super) layer_demand: LayerDemand,
    /// What this shard last told publishers' shards it needs.
    pub(super) demand_announcer: DemandAnnouncer,
}

impl ShardCore {
    pub fn new(id: ShardId) -> Self {
        ShardCore {
            id,
            registry: Registry::default(),
            sessions: SessionTable::default(),
            routes: HashMap::new(),
            uptracks: HashMap::new(),
            downtracks: HashMap::new(),
            stats: ShardStats { shard: id, ..Default::default() },
            caches: HashMap::new(),
            dd: HashMap::new(),
            origin: None,
            last_report: None,
            keyframe_scan_at: None,
            last_srtp_reap: None,
            scratch: vec![0; 1500],
            nack_scratch: Vec::new(),
            lost_scratch: Vec::with_capacity(MAX_LOST_PER_FEEDBACK),
            pending_keyframes: Vec::new(),
            early_claims: Vec::new(),
            test_hooks: false,
            audio_clock: ReportClock::default(),
            rates: HashMap::new(),
            alloc_at: None,
            probe_pace_at: None,
            layer_demand: LayerDemand::default(),
            demand_announcer: DemandAnnouncer::default(),
        }
    }

    /// A fresh core to carry on after this one panicked mid-call, when its
    /// state can no longer be trusted. The replicated registry (who owns
    /// what elsewhere, which tracks exist) and the counters carry over; the
    /// sessions this shard owned are dropped, and returned so the
    /// controlplane can end them. Nothing here may panic in turn: it only
    /// moves maps and removes keys.
    pub fn recover(&mut self) -> Vec<SessionId> {
        let mut lost: Vec<SessionId> = self.sessions.keys().copied().collect();
        lost.sort();
        let mut fresh = ShardCore::new(self.id);
        fresh.registry = std::mem::take(&mut self.registry);
        for sid in &lost {
            // Until the controlplane's RemoveSession arrives, a check for a
            // lost session is an unknown ufrag here, not a new claim.
            fresh.registry.remove_session(*sid);
        }
        fresh.stats = std::mem::take(&mut self.stats);
        fresh.stats.panics += 1;
        fresh.stats.sessions = 0;
        fresh.test_hooks = self.test_hooks;
        fresh.audio_clock = ReportClock::new(self.audio_clock.settings());
        *self = fresh;
        lost
    }

    pub fn owns(&self, session: SessionId) -> bool {
        self.sessions.contains_key(&session)
    }

    /// Who this shard believes owns `session`.
    pub fn owner_of(&self, session: SessionId) -> Option<ShardId> {
        self.registry.owner(session)
    }

    /// Entries in the route table (5-tuples and connections).
    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    // ---- datagrams -------------------------------------------------------

    /// One datagram from the socket (or steered here by another shard).
    /// `buf` is mutable so SRTP can decrypt in place.
    pub fn handle_datagram(&mut self, src: SocketAddr, buf: &mut [u8], now: Instant, out: &mut Outbox) {
        self.handle_packet(Dest::Udp(src), src, buf, false, now, out)
    }

    /// One RFC 4571 frame from ICE-TCP connection `conn`, whose peer is
    /// `peer`. A connection's first frame must be a valid STUN Binding for
    /// a known session (RFC 6544 §7.2: checks come first); anything else
    /// closes it. After that, frames go the way datagrams go.
    pub fn handle_tcp_frame(&mut self, conn: ConnId, peer: SocketAddr, buf: &mut [u8], now: Instant, out: &mut Outbox) -> TcpVerdict {
        let from = Dest::Tcp(conn);
        if self.routes.contains_key(&from) {
            self.stats.tcp_packets_in += 1;
            self.handle_packet(from, peer, buf, false, now, out);
            return TcpVerdict::Keep;
        }
        if classify(buf) != PacketClass::Stun {
            self.stats.tcp_packets_in += 1;
            self.stats.packets_in += 1;
            self.stats.bytes_in += buf.len() as u64;
            self.stats.drop(DropReason::UnknownSource);
            self.stats.tcp_rejected += 1;
            return TcpVerdict::Close;
        }
        let target = stun::local_ufrag(buf)
            .and_then(|u| self.registry.by_ufrag(u))
            .filter(|sid| !self.sessions.contains_key(sid))
            .and_then(|sid| self.registry.sessions.get(&sid))
            .and_then(|meta| meta.owner.or(meta.spec.pinned_shard));
        if let Some(shard) = target.filter(|s| *s != self.id && *s < out.media.len()) {
            // Not counted as input here: the owner counts it when it reads it.
            self.stats.tcp_handed_over += 1;
            return TcpVerdict::HandOver(shard);
        }
        self.stats.tcp_packets_in += 1;
        self.handle_packet(from, peer, buf, false, now, out);
        if self.routes.contains_key(&from) {
            TcpVerdict::Keep
        } else {
            self.stats.tcp_rejected += 1;
            TcpVerdict::Close
        }
    }

    /// An ICE-TCP connection is gone: its frames no longer route, and its
    /// path is not selected again. The session itself stays until its
    /// consent expires (the peer may come back over another path).
    pub fn tcp_closed(&mut self, conn: ConnId) {
        if let Some(Route::Local(sid)) = self.routes.remove(&Dest::Tcp(conn)) {
            if let Some(sess) = self.sessions.get_mut(&sid) {
                sess.forget_conn(conn);
            }
        }
    }

    /// `steered`: another shard sent it here. It is never steered again,
    /// so two shards that disagree cannot bounce a packet between them.
    fn handle_packet(&mut self, from: Dest, src: SocketAddr, buf: &mut [u8], steered: bool, now: Instant, out: &mut Outbox) {
        // The shard whose socket read a steered packet counted it already.
        if !steered {
            self.stats.packets_in += 1;
            self.stats.bytes_in += buf.len() as u64;
        }
        match classify(buf) {
            PacketClass::Stun => {
                self.stats.stun_in += 1;
                self.on_stun(from, src, buf, steered, now, out)
            }
            PacketClass::Dtls => {
                self.stats.dtls_in += 1;
                if let Some(sid) = self.route(from, buf, steered, out) {
                    self.on_dtls(sid, buf, out);
                }
            }
            class @ (PacketClass::Rtp | PacketClass::Rtcp) => {
                let Some(sid) = self.route(from, buf, steered, out) else { return };
                if class == PacketClass::Rtcp {
                    self.stats.rtcp_in += 1;
                    self.on_rtcp(sid, buf, now, out)
                } else {
                    self.stats.rtp_in += 1;
                    self.on_rtp(sid, buf, now, out)
                }
            }
            PacketClass::Unknown => self.stats.drop(DropReason::Malformed),
        }
    }

    /// The local session a non-STUN datagram belongs to; steers it to its
    /// owner or counts it dropped otherwise.
    fn route(&mut self, from: Dest, buf: &[u8], steered: bool, out: &mut Outbox) -> Option<SessionId> {
        match (self.routes.get(&from), from) {
            (Some(Route::Local(sid)), _) => Some(*sid),
            (Some(Route::Remote(..)), Dest::Udp(_)) if steered => {
                self.stats.drop(DropReason::SteerLoop);
                None
            }
            (Some(Route::Remote(shard, _)), Dest::Udp(src)) => {
                self.steer(*shard, src, buf, out);
                None
            }
            // Connections move whole to their owner, so never route remotely.
            (Some(Route::Remote(..)), Dest::Tcp(_)) => {
                self.stats.drop(DropReason::UnknownSource);
                None
            }
            (None, _) => {
                self.stats.drop(DropReason::UnknownSource);
                None
            }
        }
    }

    fn steer(&mut self, shard: ShardId, src: SocketAddr, buf: &[u8], out: &mut Outbox) {
        self.stats.steered += 1;
        out.peer.push((shard, PeerMsg::Steered { src, datagram: buf.to_vec() }));
    }

    /// `from` is the transport the request came over, `src` the peer's
    /// address on it (what XOR-MAPPED-ADDRESS reports).
    fn on_stun(&mut self, from: Dest, src: SocketAddr, buf: &[u8], steered: bool, now: Instant, out: &mut Outbox) {
        let Ok(msg) = stun::Message::parse(buf) else {
            self.stats.drop(DropReason::Malformed);
            return;
        };
        let Some(sid) = stun::local_ufrag(buf).and_then(|u| self.registry.by_ufrag(u)) else {
            self.stats.drop(DropReason::UnknownUfrag);
            return;
        };
        if !self.sessions.contains_key(&sid) {
            let Some(meta) = self.registry.sessions.get(&sid) else { return };
            // Nothing unauthenticated may change who owns a session or where
            // a 5-tuple goes: check before steering or claiming.
            if !authentic_binding(&msg, &meta.spec.pwd) {
                self.stats.drop(DropReason::StunAuth);
                return;
            }
            let target = meta.owner.or(meta.spec.pinned_shard);
            if let Some(shard) = target.filter(|s| *s != self.id) {
                let Dest::Udp(_) = from else {
                    // A connection serving another session cannot switch shards.
                    self.stats.drop(DropReason::UnknownUfrag);
                    return;
                };
                if steered {
                    self.stats.drop(DropReason::SteerLoop);
                    return;
                }
                // Owned (or pinned) elsewhere: that shard answers, from the same port.
                self.insert_route(from, Route::Remote(shard, sid));
                self.steer(shard, src, buf, out);
                return;
            }
            self.claim(sid, from, src, out);
        }
        let Some(sess) = self.sessions.get_mut(&sid) else { return };
        let slot = out.slot();
        match sess.ice.handle_stun(&msg, src, now, slot) {
            Ok(reply) => {
                if reply.len > 0 {
                    out.commit(reply.len, from);
                }
                if !reply.authenticated {
                    return;
                }
                if let Some(evicted) = sess.learn_path(src, from) {
                    if self.routes.get(&evicted) == Some(&Route::Local(sid)) {
                        self.routes.remove(&evicted);
                    }
                }
                if sess.reselect() {
                    debug!(session = sid.0, remote = ?sess.remote, "ICE path selected");
                }
                sess.consent_reported = false;
                self.insert_route(from, Route::Local(sid));
            }
            Err(e) => {
                debug!(session = sid.0, %src, error = %e, "STUN refused");
                self.stats.drop(DropReason::StunAuth);
            }
        }
    }

    /// Adds or replaces a route, within `MAX_ROUTES`.
    fn insert_route(&mut self, from: Dest, route: Route) {
        if self.routes.len() >= MAX_ROUTES && !self.routes.contains_key(&from) {
            self.stats.drop(DropReason::RouteTableFull);
            return;
        }
        self.routes.insert(from, route);
    }

    /// This shard saw the first valid Binding: it owns the session now.
    fn claim(&mut self, sid: SessionId, from: Dest, src: SocketAddr, out: &mut Outbox) {
        let Some(meta) = self.registry.sessions.get(&sid) else { return };
        let mut ice = IceLite::new(&meta.spec.ufrag, &meta.spec.pwd);
        if !meta.spec.remote_ufrag.is_empty() {
            ice.set_remote_credentials(&meta.spec.remote_ufrag, "");
        }
        let tcp = matches!(from, Dest::Tcp(_));
        info!(shard = self.id, session = sid.0, %src, tcp, "session claimed");
        self.sessions.insert(sid, Session::new(sid, ice, from));
        self.registry.set_owner(sid, self.id);
        self.instantiate_tracks(sid);
        out.events.push(Event::Claimed { session: sid, shard: self.id, remote: src });
        for shard in 0..out.media.len() {
            if shard != self.id {
                out.peer.push((shard, PeerMsg::Claimed { session: sid, shard: self.id }));
            }
        }
    }

    /// Create owned uptrack/downtrack state for a session this shard just got.
    fn instantiate_tracks(&mut self, sid: SessionId) {
        let ups: Vec<_> = self.registry.uptracks_of(sid).cloned().collect();
        for spec in ups {
            self.enable_twcc(sid, spec.ext.transport_cc, spec.feedback.transport_cc);
            self.add_local_uptrack(&spec);
        }
        let downs: Vec<_> = self.registry.downtracks_of(sid).cloned().collect();
        for spec in downs {
            self.add_local_downtrack(spec);
        }
    }

    /// The uptrack state for `spec`: one `Uptrack` per simulcast layer.
    fn add_local_uptrack(&mut self, spec: &crate::msg::UptrackSpec) {
        let muted = self.registry.muted.contains(&spec.track);
        for (layer, s) in simulcast::layer_specs(spec) {
            let id = s.track;
            self.uptracks.entry(id).or_insert_with(|| Uptrack::layer(s, spec.track, layer)).muted = muted;
        }
    }

    /// Forgets the local uptrack state of `track` (every layer), its SSRC
    /// bindings and its retransmission caches.
    fn remove_local_uptrack(&mut self, track: TrackId, layers: &[TrackId]) {
        for id in layers {
            if let Some(up) = self.uptracks.remove(id) {
                if let Some(sess) = self.sessions.get_mut(&up.spec.session) {
                    sess.unbind_uptrack(*id);
                }
            }
        }
        self.remove_caches(track);
        self.layer_demand.remove_track(track);
    }

    /// The retransmission caches of `track`, all layers.
    pub(super) fn remove_caches(&mut self, track: TrackId) {
        self.caches.retain(|k, _| simulcast::split(*k).0 != track);
        self.rates.retain(|k, _| simulcast::split(*k).0 != track);
        self.dd.remove(&track);
    }

    fn add_local_downtrack(&mut self, spec: crate::msg::DowntrackSpec) {
        let Some(sess) = self.sessions.get_mut(&spec.session) else { return };
        if !sess.down_ssrcs.iter().any(|(s, _)| *s == spec.ssrc) {
            sess.down_ssrcs.push((spec.ssrc, spec.track));
        }
        let list = self.downtracks.entry(spec.track).or_default();
        if !list.iter().any(|d| d.spec.session == spec.session) {
            let track = spec.track;
            let cap = self.registry.cap(spec.session, track);
            let slot = self.sessions.slot_of(&spec.session);
            let mut dt = Downtrack::new(spec);
            dt.cap = cap;
            dt.session_slot = slot.unwrap_or(NO_SLOT);
            list.push(dt);
            self.pending_keyframes.push(track);
            // Its first layer may be one this shard told the publisher's
            // shard it does not need: say otherwise at the next tick.
            self.alloc_at = None;
        }
    }

    fn on_dtls(&mut self, sid: SessionId, buf: &[u8], out: &mut Outbox) {
        if dtls_record::validate_datagram(buf).is_err() {
            self.stats.drop(DropReason::Malformed);
            return;
        }
        out.events.push(Event::Dtls { session: sid, datagram: buf.to_vec() });
    }

    // ---- keyframes and reports ------------------------------------------

    /// Asks the publisher of `track` for a keyframe: of one layer when
    /// `track` is a layer's id, of every layer when it is a simulcast
    /// track's own id.
    pub fn request_keyframe(&mut self, track: TrackId, now: Instant, out: &mut Outbox) {
        if let Some(up) = self.uptracks.get_mut(&track) {
            up.keyframes.request(now);
            self.flush_pli(track, now, out);
            return;
        }
        let (group, layer) = simulcast::split(track);
        let Some(spec) = self.registry.uptracks.get(&group) else { return };
        if layer.is_none() && !spec.layers.is_empty() {
            if self.owns(spec.session) {
                for id in simulcast::ids(spec) {
                    self.request_keyframe(id, now, out);
                }
                return;
            }
        }
        if let Some(owner) = self.registry.track_owner(group) {
            if owner != self.id {
                out.peer.push((owner, PeerMsg::KeyframeRequest(track)));
            }
        }
    }

    /// Internal ids of `track`'s layers (the track's own when single-stream
    /// or unknown).
    fn layer_ids(&self, track: TrackId) -> Vec<TrackId> {
        self.registry.uptracks.get(&track).map_or_else(|| vec![track], simulcast::ids)
    }

    pub(super) fn flush_pli(&mut self, track: TrackId, now: Instant, out: &mut Outbox) {
        let Some(up) = self.uptracks.get_mut(&track) else { return };
        let Some(media_ssrc) = up.ssrc else { return };
        if !up.keyframes.take_due(now) {
            return;
        }
        let Some(sess) = self.sessions.get_mut(&up.spec.session) else { return };
        let report = up.stats.report_block(media_ssrc, now);
        let mut n = match rtcp::write_rr(&mut self.scratch, sess.rtcp_ssrc, &[report]) {
            Ok(n) => n,
            Err(_) => return,
        };
        match rtcp::write_pli(&mut self.scratch[n..], sess.rtcp_ssrc, media_ssrc) {
            Ok(m) => n += m,
            Err(_) => return,
        }
        if send_rtcp(sess, &self.scratch[..n], out) {
            self.stats.plis_sent += 1;
        }
    }

    /// Periodic work: RR to publishers, SR to subscribers, consent, pending PLIs.
    pub fn tick(&mut self, now: Instant, out: &mut Outbox) {
        let pending: Vec<TrackId> = std::mem::take(&mut self.pending_keyframes);
        for t in pending {
            self.request_keyframe(t, now, out);
        }
        // Video downtracks with keys that still wait for their first
        // keyframe. Their retries are far apart, so the scan over every
        // downtrack runs on its own slow deadline, not at NACK-timer rate.
        let mut waiting: Vec<TrackId> = Vec::new();
        let scan_due = self.keyframe_scan_at.is_none_or(|t| now >= t);
        if scan_due {
            self.keyframe_scan_at = Some(now + KEYFRAME_SCAN_INTERVAL);
        }
        for list in self.downtracks.values_mut().filter(|_| scan_due) {
            for dt in list.iter_mut() {
                let keyed = self.sessions.get(&dt.spec.session).is_some_and(|s| s.tx.is_some());
                let track = dt.keyframe_track();
                if keyed && dt.keyframe_request_due(now) && !waiting.contains(&track) {
                    waiting.push(track);
                }
            }
        }
        for t in waiting {
            self.request_keyframe(t, now, out);
        }
        self.upstream_feedback(now, out);
        if self.audio_clock.due(now) {
            self.report_audio_levels(out);
        }
        self.allocate(now, out);
        self.pace_probes(now, out);
        if self.last_report.is_some_and(|t| now.duration_since(t) < REPORT_INTERVAL) {
            return;
        }
        self.last_report = Some(now);
        self.send_receiver_reports(now, out);
        self.send_sender_reports(now, out);
        self.send_remb(out);
        for sess in self.sessions.values_mut() {
            if !sess.consent_reported && sess.ice.consent_expired(now) {
                sess.consent_reported = true;
                warn!(shard = self.id, session = sess.id.0, "ICE consent expired");
                out.events.push(Event::ConsentExpired { session: sess.id });
            }
        }
        self.reap_srtp_streams(now);
        self.stats.sessions = self.sessions.len() as u64;
        self.stats.uptracks = self.uptracks.len() as u64;
        self.stats.downtracks = self.downtracks.values().map(|v| v.len() as u64).sum();
        self.stats.cache_bytes = super::media::cache_bytes(&self.caches);
        let mut estimates = std::mem::take(&mut self.stats.subscriber_estimates);
        self.estimates(&mut estimates);
        self.stats.subscriber_estimates = estimates;
        out.events.push(Event::Stats(self.stats.clone()));
    }

    /// Bounds each session's SRTP state by what is negotiated now: streams
    /// that carried nothing for a reap interval and whose SSRC no track of
    /// the session names any more are forgotten. Live streams never are.
    fn reap_srtp_streams(&mut self, now: Instant) {
        if self.last_srtp_reap.is_some_and(|t| now.duration_since(t) < SRTP_REAP_INTERVAL) {
            return;
        }
        self.last_srtp_reap = Some(now);
        let mut sending: HashMap<SessionId, Vec<u32>> = HashMap::new();
        for dt in self.downtracks.values().flatten() {
            let ssrcs = sending.entry(dt.spec.session).or_default();
            ssrcs.push(dt.spec.ssrc);
            ssrcs.extend(dt.spec.rtx.map(|r| r.ssrc));
        }
        for sess in self.sessions.values_mut() {
            let ours = sending.get(&sess.id).map(Vec::as_slice).unwrap_or(&[]);
            let rtcp_ssrc = sess.rtcp_ssrc;
            if let Some(tx) = sess.tx.as_mut() {
                tx.reap_idle(|s| s == rtcp_ssrc || ours.contains(&s));
            }
            if let Some(mut rx) = sess.rx.take() {
                rx.reap_idle(|s| sess.uptrack_for_ssrc(s).is_some());
                sess.rx = Some(rx);
            }
        }
    }

    fn send_receiver_reports(&mut self, now: Instant, out: &mut Outbox) {
        for up in self.uptracks.values_mut() {
            let Some(ssrc) = up.ssrc else { continue };
            let Some(sess) = self.sessions.get_mut(&up.spec.session) else { continue };
            let block = up.stats.report_block(ssrc, now);
            if let Ok(n) = rtcp::write_rr(&mut self.scratch, sess.rtcp_ssrc, &[block]) {
                send_rtcp(sess, &self.scratch[..n], out);
            }
        }
    }

    fn send_sender_reports(&mut self, now: Instant, out: &mut Outbox) {
        let ntp = rtcp::ntp_from_system_time(SystemTime::now());
        for list in self.downtracks.values() {
            for dt in list {
                if !dt.has_sent() {
                    continue;
                }
                let Some(sess) = self.sessions.get_mut(&dt.spec.session) else { continue };
                let res = rtcp::write_sr(&mut self.scratch, dt.spec.ssrc, ntp, dt.rtp_time_at(now), dt.packets, dt.octets, &[]);
                if let Ok(n) = res {
                    if send_rtcp(sess, &self.scratch[..n], out) {
                        sess.sr_sent(rtcp::ntp_middle32(ntp), now);
                    }
                }
            }
        }
    }

    // ---- commands and peer messages --------------------------------------

    pub fn handle_command(&mut self, cmd: Command, now: Instant, out: &mut Outbox) {
        match cmd {
            Command::AddSession(spec) => {
                let sid = spec.id;
                self.registry.add_session(spec);
                let early: Vec<ShardId> =
                    self.early_claims.iter().filter(|(s, _)| *s == sid).map(|(_, shard)| *shard).collect();
                self.early_claims.retain(|(s, _)| *s != sid);
                for shard in early {
                    self.on_remote_claim(sid, shard, out);
                }
            }
            Command::RemoveSession(sid) => self.remove_session(sid, out),
            Command::SendDtls { session, datagrams } => match self.sessions.get(&session) {
                Some(sess) => {
                    for d in &datagrams {
                        if !out.push(d, sess.remote) {
                            self.stats.drop(DropReason::Malformed);
                        }
                    }
                }
                None => debug!(shard = self.id, session = session.0, "DTLS for a session this shard does not own"),
            },
            Command::SetSrtp { session, tx, rx } => {
                let Some(sess) = self.sessions.get_mut(&session) else { return };
                match (SrtpContext::with_max_streams(&tx, MAX_SEND_STREAMS), SrtpContext::new(&rx)) {
                    (Ok(tx), Ok(rx)) => {
                        sess.tx = Some(tx);
                        sess.rx = Some(rx);
                        info!(shard = self.id, session = session.0, "SRTP ready");
                        // Subscribers that just got keys need a keyframe now.
                        let tracks: Vec<TrackId> = sess.down_ssrcs.iter().map(|(_, t)| *t).collect();
                        for t in tracks {
                            self.request_keyframe(t, now, out);
                        }
                    }
                    _ => warn!(session = session.0, "SRTP keys rejected"),
                }
            }
            Command::AddUptrack(spec) => {
                let owned = self.sessions.contains_key(&spec.session);
                self.registry.uptracks.insert(spec.track, spec.clone());
                self.registry.epoch += 1;
                if owned {
                    self.enable_twcc(spec.session, spec.ext.transport_cc, spec.feedback.transport_cc);
                    self.add_local_uptrack(&spec);
                }
            }
            Command::RemoveUptrack(track) => {
                let layers = self.layer_ids(track);
                let downs = self.registry.remove_uptrack(track);
                self.remove_local_uptrack(track, &layers);
                self.drop_downtracks(&downs, out);
            }
            Command::AddDowntrack(spec) => {
                self.registry.downtracks.insert((spec.session, spec.track), spec.clone());
                self.registry.epoch += 1;
                self.add_local_downtrack(spec);
            }
            Command::RemoveDowntrack { session, track } => {
                self.registry.downtracks.remove(&(session, track));
                self.registry.epoch += 1;
                self.drop_downtracks(&[(session, track)], out);
            }
            Command::DetachUptrack(track) => {
                let layers = self.layer_ids(track);
                self.registry.detach_uptrack(track);
                self.remove_local_uptrack(track, &layers);
            }
            Command::MoveDowntrack { session, from, to } => {
                if self.registry.move_downtrack(session, from, to) {
                    self.move_local_downtrack(session, from, to, now);
                }
            }
            Command::RequestKeyframe(track) => self.request_keyframe(track, now, out),
            Command::SetAudioLevels(settings) => self.audio_clock.configure(settings),
            Command::SetMuted { track, muted } => {
                if muted {
                    self.registry.muted.insert(track);
                } else {
                    self.registry.muted.remove(&track);
                }
                for id in self.layer_ids(track) {
                    if let Some(up) = self.uptracks.get_mut(&id) {
                        up.muted = muted;
                    }
                }
                // Video resumes on a keyframe, or viewers decode garbage.
                if !muted {
                    self.request_keyframe(track, now, out);
                }
            }
            Command::Snapshot => out.events.push(Event::Stats(self.stats.clone())),
            Command::RestartIce { session, ufrag, pwd, remote_ufrag } => {
                self.registry.restart_ice(session, &ufrag, &pwd, &remote_ufrag);
                if let Some(sess) = self.sessions.get_mut(&session) {
                    sess.ice.restart(&ufrag, &pwd, &remote_ufrag);
                    info!(shard = self.id, session = session.0, "ICE restarted");
                }
            }
            Command::SetPriority { session, track, priority } => self.set_priority(session, track, priority),
            Command::SetLayerCap { session, track, cap } => self.set_layer_cap(session, track, cap),
            Command::TestPanic if self.test_hooks => panic!("shard {}: panic forced by Command::TestPanic", self.id),
            Command::TestPanic => warn!(shard = self.id, "TestPanic ignored: dataplane test hooks are off"),
        }
    }

    fn remove_session(&mut self, sid: SessionId, out: &mut Outbox) {
        let layers: Vec<(TrackId, Vec<TrackId>)> =
            self.registry.uptracks_of(sid).map(|u| (u.track, simulcast::ids(u))).collect();
        let (_, downs) = self.registry.remove_session(sid);
        for (t, ids) in &layers {
            self.remove_local_uptrack(*t, ids);
        }
        self.drop_downtracks(&downs, out);
        if self.sessions.remove(&sid).is_some() {
            info!(shard = self.id, session = sid.0, "session removed");
        }
        self.forget_routes(sid, None, out);
    }

    /// Drops the routes to `sid`: UDP 5-tuples go to `to` (if the session
    /// moved there) or nowhere; TCP connections are closed, since a
    /// connection serves one session (the I/O loop closes them).
    fn forget_routes(&mut self, sid: SessionId, to: Option<ShardId>, out: &mut Outbox) {
        let close = &mut out.tcp_close;
        self.routes.retain(|dest, r| {
            if let Route::Remote(_, s) = *r {
                // A steering entry for a session that is gone or moved.
                return s != sid || to.is_some_and(|shard| *r == Route::Remote(shard, sid));
            }
            if *r != Route::Local(sid) {
                return true;
            }
            match (dest, to) {
                (Dest::Udp(_), Some(shard)) => {
                    *r = Route::Remote(shard, sid);
                    true
                }
                (Dest::Udp(_), None) => false,
                (Dest::Tcp(c), _) => {
                    close.push(*c);
                    false
                }
            }
        });
    }

    fn move_local_downtrack(&mut self, session: SessionId, from: TrackId, to: TrackId, now: Instant) {
        let Some(list) = self.downtracks.get_mut(&from) else { return };
        let Some(pos) = list.iter().position(|d| d.spec.session == session) else { return };
        let mut dt = list.swap_remove(pos);
        if list.is_empty() {
            self.downtracks.remove(&from);
            self.remove_caches(from);
        }
        dt.switch_source(to, now);
        if let Some(sess) = self.sessions.get_mut(&session) {
            for entry in sess.down_ssrcs.iter_mut().filter(|(s, _)| *s == dt.spec.ssrc) {
                entry.1 = to;
            }
        }
        info!(shard = self.id, session = session.0, from = from.0, to = to.0, "downtrack follows a new source");
        self.downtracks.entry(to).or_default().push(dt);
        self.pending_keyframes.push(to);
    }

    /// Removes local downtracks and tells their subscribers with an RTCP BYE,
    /// so players end the track instead of waiting on silence.
    fn drop_downtracks(&mut self, keys: &[(SessionId, TrackId)], out: &mut Outbox) {
        for (sub, track) in keys {
            let Some(list) = self.downtracks.get_mut(track) else { continue };
            let Some(pos) = list.iter().position(|d| d.spec.session == *sub) else { continue };
            let dt = list.swap_remove(pos);
            if list.is_empty() {
                self.downtracks.remove(track);
                self.remove_caches(*track);
            }
            if let Some(sess) = self.sessions.get_mut(sub) {
                sess.down_ssrcs.retain(|(s, _)| *s != dt.spec.ssrc);
                if let Ok(n) = rtcp::write_bye(&mut self.scratch, &[dt.spec.ssrc]) {
                    send_rtcp(sess, &self.scratch[..n], out);
                }
            }
        }
    }

    pub fn handle_peer(&mut self, from: ShardId, msg: PeerMsg, now: Instant, out: &mut Outbox) {
        match msg {
            PeerMsg::Claimed { session, shard } => self.on_remote_claim(session, shard, out),
            PeerMsg::Steered { src, mut datagram } => {
                self.handle_packet(Dest::Udp(src), src, &mut datagram, true, now, out);
            }
            PeerMsg::Media(batch) => {
                self.stats.peer_batches_in += 1;
                self.on_media_batch(&batch, now, out);
            }
            PeerMsg::KeyframeRequest(track) => self.request_keyframe(track, now, out),
            PeerMsg::LayerDemand { track, mask } => self.layer_demand.report(track, from, mask, now),
            PeerMsg::TcpHandover(h) => {
                // Sockets are the I/O loop's; it takes these before the core.
                // Dropping it closes the connection.
                warn!(shard = self.id, peer = %h.peer, "TCP hand-over reached the core; closing");
                self.stats.tcp_rejected += 1;
            }
        }
    }

    fn on_media_batch(&mut self, batch: &MediaBatch, now: Instant, out: &mut Outbox) {
        for item in &batch.items {
            self.fanout(item, batch.carried(item), batch.payload(item), now, out);
        }
    }

    fn on_remote_claim(&mut self, sid: SessionId, shard: ShardId, out: &mut Outbox) {
        if !self.registry.sessions.contains_key(&sid) {
            // Our AddSession is still on its way: apply the claim with it.
            if self.early_claims.len() >= MAX_EARLY_CLAIMS {
                self.early_claims.remove(0);
            }
            self.early_claims.push((sid, shard));
            return;
        }
        // The lowest claiming shard wins on every shard, whatever order
        // the claims arrive in (and in the controlplane, by the same rule).
        if self.registry.owner(sid).is_some_and(|cur| cur < shard) {
            return;
        }
        if self.sessions.contains_key(&sid) {
            // Both claimed at once: the lower shard id wins everywhere,
            // including in the controlplane, so no round trip is needed.
            if shard > self.id {
                return;
            }
            warn!(shard = self.id, session = sid.0, winner = shard, "claim race lost; steering to winner");
            self.sessions.remove(&sid);
            let (ups, downs): (Vec<TrackId>, Vec<(SessionId, TrackId)>) = (
                self.registry.uptracks_of(sid).flat_map(simulcast::ids).collect(),
                self.registry.downtracks_of(sid).map(|d| (d.session, d.track)).collect(),
            );
            for t in ups {
                self.uptracks.remove(&t);
            }
            for (s, t) in downs {
                if let Some(list) = self.downtracks.get_mut(&t) {
                    list.retain(|d| d.spec.session != s);
                }
            }
            self.forget_routes(sid, Some(shard), out);
        }
        self.registry.set_owner(sid, shard);
        for r in self.routes.values_mut() {
            if let Route::Remote(_, s) = *r {
                if s == sid {
                    *r = Route::Remote(shard, sid);
                }
            }
        }
    }
}

pub(super) fn send_rtcp(sess: &mut Session, plain: &[u8], out: &mut Outbox) -> bool {
    let Some(tx) = sess.tx.as_mut() else { return false };
    let slot = out.slot();
    if plain.len() + 32 > slot.len() {
        return false;
    }
    slot[..plain.len()].copy_from_slice(plain);
    match tx.protect_rtcp(slot, plain.len()) {
        Ok(n) => {
            out.commit(n, sess.remote);
            true
        }
        Err(_) => false,
    }
}

/// A Binding request that passes FINGERPRINT (when present) and
/// MESSAGE-INTEGRITY with the session's password.
fn authentic_binding(msg: &stun::Message, pwd: &str) -> bool {
    msg.method() == stun::method::BINDING
        && msg.class() == stun::Class::Request
        && (!msg.has_fingerprint() || msg.check_fingerprint().is_ok())
        && msg.check_integrity(pwd.as_bytes()).is_ok()
}

pub(super) fn srtp_drop_reason(e: SrtpError) -> DropReason {
    match e {
        SrtpError::AuthFailed => DropReason::SrtpAuth,
        SrtpError::Replay => DropReason::Replay,
        _ => DropReason::Malformed,
    }
}
