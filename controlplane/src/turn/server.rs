//! The sans-IO TURN core (RFC 8656, RFC 5766 wire format): it turns one
//! client message or one peer datagram into at most one action, writing any
//! bytes into a caller-provided buffer. Binding relay sockets is delegated to
//! [`RelayPorts`] so the core stays testable without a network.
//!
//! Time is unix milliseconds passed by the caller: allocations, permissions,
//! channels, nonces and REST credentials all expire against it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use dataplane::stun::{attr, method, Class, IntegrityKey, Message, MessageWriter, StunError, MAGIC_COOKIE};

use super::allocation::{Allocation, BindConflict, ClientKey, TokenBucket};
use super::auth::{Credentials, KeyLookup, LongTermKey, NonceCheck, Nonces};
use super::denylist::PeerPolicy;
use super::framing::{is_channel_data, parse_channel_data, write_channel_data, CHANNEL_MAX, CHANNEL_MIN};
use super::stats::StatsCells;
use super::TurnError;
use crate::config::TurnConfig;

/// RFC 8656 §7.2 default and our cap; permissions and channels are fixed
/// by the RFC (§9, §12).
pub const DEFAULT_LIFETIME_SECS: u32 = 600;
pub const MAX_LIFETIME_SECS: u32 = 3600;
pub const PERMISSION_LIFETIME_MS: u64 = 300_000;
pub const CHANNEL_LIFETIME_MS: u64 = 600_000;
/// How long a nonce is accepted before 438 Stale Nonce.
pub const NONCE_LIFETIME_SECS: u64 = 600;
/// RFC 8656 §7.2: a reserved port is held about 30 seconds.
pub const RESERVATION_LIFETIME_MS: u64 = 30_000;
/// Failed binds tolerated per Allocate before 508: ports another process
/// holds are skipped, but a scan of the whole range is not done per request.
const MAX_BIND_ATTEMPTS: usize = 64;
/// REQUESTED-TRANSPORT value for UDP (IANA protocol number).
const PROTO_UDP: u8 = 17;
/// REQUESTED-ADDRESS-FAMILY values.
const FAMILY_V4: u8 = 0x01;
const FAMILY_V6: u8 = 0x02;

/// Attributes this server understands (RFC 8489 §14: any other type below
/// 0x8000 in a request earns 420 Unknown Attribute).
const KNOWN_ATTRS: &[u16] = &[
    attr::USERNAME,
    attr::MESSAGE_INTEGRITY,
    attr::REALM,
    attr::NONCE,
    attr::LIFETIME,
    attr::REQUESTED_TRANSPORT,
    attr::DONT_FRAGMENT,
    attr::EVEN_PORT,
    attr::RESERVATION_TOKEN,
    attr::REQUESTED_ADDRESS_FAMILY,
    attr::XOR_PEER_ADDRESS,
    attr::CHANNEL_NUMBER,
    attr::DATA,
    attr::PRIORITY,
    attr::USE_CANDIDATE,
    attr::ERROR_CODE,
    attr::FINGERPRINT,
];

/// The I/O side of relay ports.
pub trait RelayPorts {
    /// Binds a relay socket on `addr`; false when that port is unavailable.
    fn open(&mut self, addr: SocketAddr) -> bool;
    /// Releases a socket `open` bound. Called exactly once per open.
    fn close(&mut self, addr: SocketAddr);
}

/// What to do with a client's message.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientAction<'i> {
    /// Nothing to send (indications, malformed input, drops).
    None,
    /// Send `out[..n]` back to the client on the same transport.
    Reply(usize),
    /// Send `data` from relay socket `relay` to `peer`.
    Relay { relay: SocketAddr, peer: SocketAddr, data: &'i [u8] },
}

/// Server-wide settings derived from [`TurnConfig`].
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub relay_ip: IpAddr,
    pub port_min: u16,
    pub port_max: u16,
    /// 0 = no cap.
    pub max_allocations_per_user: u32,
    /// 0 = no cap.
    pub max_relay_bps: u64,
    pub policy: PeerPolicy,
    /// Allocations per client IP address; 0 = no cap.
    pub max_allocations_per_address: u32,
    /// A TCP/TLS client silent this long is disconnected.
    pub tcp_idle: std::time::Duration,
}

impl CoreConfig {
    pub fn new(cfg: &TurnConfig, relay_ip: IpAddr, media_addrs: Vec<SocketAddr>) -> Self {
        Self {
            relay_ip,
            port_min: cfg.relay_port_min,
            port_max: cfg.relay_port_max,
            max_allocations_per_user: cfg.max_allocations_per_user,
            max_relay_bps: cfg.max_relay_bps,
            policy: PeerPolicy::new(cfg.allow_private_peers, media_addrs),
            max_allocations_per_address: 0,
            tcp_idle: std::time::Duration::from_secs(120),
        }
    }
}

pub struct Server<P: RelayPorts> {
    cfg: CoreConfig,
    creds: Credentials,
    nonces: Nonces,
    ports: P,
    allocations: HashMap<ClientKey, Allocation>,
    by_relay: HashMap<SocketAddr, ClientKey>,
    per_user: HashMap<String, u32>,
    /// Allocations per client IP (canonical form).
    per_addr: HashMap<IpAddr, u32>,
    /// EVEN-PORT(R) reservations: token -> (bound port, expiry).
    reservations: HashMap<[u8; 8], (SocketAddr, u64)>,
    reserved_addrs: HashMap<SocketAddr, [u8; 8]>,
    next_port: u16,
    stats: Arc<StatsCells>,
}

/// A request that passed authentication.
struct Authed {
    key: LongTermKey,
}

/// An error response to write; `auth` adds MESSAGE-INTEGRITY.
struct Reject {
    code: u16,
    reason: &'static str,
    /// 401 and 438 carry REALM and NONCE so the client can retry.
    challenge: bool,
    key: Option<LongTermKey>,
}

impl Reject {
    fn new(code: u16, reason: &'static str, key: Option<LongTermKey>) -> Self {
        Self { code, reason, challenge: false, key }
    }
    fn challenge(code: u16, reason: &'static str) -> Self {
        Self { code, reason, challenge: true, key: None }
    }
}

impl<P: RelayPorts> Server<P> {
    pub fn new(
        cfg: CoreConfig,
        creds: Credentials,
        nonce_secret: [u8; 16],
        ports: P,
        stats: Arc<StatsCells>,
    ) -> Result<Self, TurnError> {
        if cfg.port_min == 0 || cfg.port_min > cfg.port_max {
            return Err(TurnError::Config(format!(
                "turn.relay_port_min..=relay_port_max ({}..={}) is empty",
                cfg.port_min, cfg.port_max
            )));
        }
        let next_port = cfg.port_min;
        Ok(Self {
            cfg,
            creds,
            nonces: Nonces::new(nonce_secret, NONCE_LIFETIME_SECS),
            ports,
            allocations: HashMap::new(),
            by_relay: HashMap::new(),
            per_user: HashMap::new(),
            per_addr: HashMap::new(),
            reservations: HashMap::new(),
            reserved_addrs: HashMap::new(),
            next_port,
            stats,
        })
    }

    pub fn ports(&self) -> &P {
        &self.ports
    }

    pub fn ports_mut(&mut self) -> &mut P {
        &mut self.ports
    }

    pub fn tcp_idle(&self) -> std::time::Duration {
        self.cfg.tcp_idle
    }

    pub fn allocation_count(&self) -> usize {
        self.allocations.len()
    }

    pub fn allocation(&self, client: &ClientKey) -> Option<&Allocation> {
        self.allocations.get(client)
    }

    /// Handles one datagram (UDP) or one frame (TCP/TLS) from a client.
    pub fn handle_client<'i>(
        &mut self,
        now_ms: u64,
        client: ClientKey,
        input: &'i [u8],
        out: &mut [u8],
    ) -> ClientAction<'i> {
        if is_channel_data(input) {
            return self.client_channel_data(now_ms, client, input);
        }
        let Ok(msg) = Message::parse(input) else {
            return ClientAction::None;
        };
        if msg.has_fingerprint() && msg.check_fingerprint().is_err() {
            return ClientAction::None;
        }
        match (msg.class(), msg.method()) {
            (Class::Request, method::BINDING) => self.binding(&msg, client, out),
            (Class::Request, m @ (method::ALLOCATE | method::REFRESH | method::CREATE_PERMISSION | method::CHANNEL_BIND)) => {
                let result = self.authenticated_request(now_ms, client, &msg, m, out);
                match result {
                    Ok(n) => ClientAction::Reply(n),
                    Err(r) => self.reject(now_ms, &msg, r, out),
                }
            }
            (Class::Request, _) => self.reject(now_ms, &msg, Reject::new(400, "Bad Request", None), out),
            (Class::Indication, method::SEND) => self.send_indication(now_ms, client, &msg),
            // Responses and other indications from a client mean nothing here.
            _ => ClientAction::None,
        }
    }

    /// Handles a datagram that arrived on relay socket `relay` from `peer`;
    /// returns the client to forward `out[..n]` to.
    pub fn handle_peer(
        &mut self,
        now_ms: u64,
        relay: SocketAddr,
        peer: SocketAddr,
        data: &[u8],
        out: &mut [u8],
    ) -> Option<(ClientKey, usize)> {
        let client = *self.by_relay.get(&relay)?;
        let alloc = self.allocations.get_mut(&client)?;
        if now_ms >= alloc.expires_ms || !alloc.is_permitted(peer.ip(), now_ms) || !self.cfg.policy.permits_addr(peer) {
            return None;
        }
        if !alloc.bucket.take(data.len(), now_ms) {
            self.stats.rate_limited();
            return None;
        }
        let n = match alloc.channel_for_peer(peer, now_ms) {
            Some(ch) => write_channel_data(out, ch, data, client.transport.is_stream())?,
            None => write_data_indication(out, peer, data).ok()?,
        };
        self.stats.relayed(data.len());
        Some((client, n))
    }

    /// Expires allocations, permissions and channels. Call about once a
    /// second; nothing depends on finer timing.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let expired: Vec<ClientKey> = self
            .allocations
            .iter()
            .filter(|(_, a)| a.expires_ms <= now_ms)
            .map(|(k, _)| *k)
            .collect();
        for k in expired {
            tracing::debug!(client = %k.addr, "turn: allocation expired");
            self.remove(&k);
        }
        for a in self.allocations.values_mut() {
            a.sweep(now_ms);
        }
        self.expire_reservations(now_ms, false);
    }

    /// A TCP/TLS client went away: its allocation goes with the connection
    /// (RFC 8656 §3.1).
    pub fn client_closed(&mut self, client: &ClientKey) {
        self.remove(client);
    }

    /// Deletes every allocation, releasing the relay ports.
    pub fn close_all(&mut self) {
        let keys: Vec<ClientKey> = self.allocations.keys().copied().collect();
        for k in keys {
            self.remove(&k);
        }
        self.expire_reservations(0, true);
    }

    fn remove(&mut self, client: &ClientKey) {
        let Some(a) = self.allocations.remove(client) else { return };
        self.by_relay.remove(&a.relay);
        self.ports.close(a.relay);
        if let Some(n) = self.per_user.get_mut(&a.username) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_user.remove(&a.username);
            }
        }
        let ip = client.addr.ip().to_canonical();
        if let Some(n) = self.per_addr.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_addr.remove(&ip);
            }
        }
        self.stats.allocation_closed();
    }

    fn binding(&mut self, msg: &Message<'_>, client: ClientKey, out: &mut [u8]) -> ClientAction<'static> {
        let r = (|| -> Result<usize, StunError> {
            let mut w = MessageWriter::new(out, Class::Success, method::BINDING, msg.transaction_id())?;
            w.add_xor_address(attr::XOR_MAPPED_ADDRESS, client.addr)?;
            w.add_fingerprint()?;
            Ok(w.finish())
        })();
        r.map_or(ClientAction::None, ClientAction::Reply)
    }

    fn authenticated_request(
        &mut self,
        now_ms: u64,
        client: ClientKey,
        msg: &Message<'_>,
        m: u16,
        out: &mut [u8],
    ) -> Result<usize, Reject> {
        let auth = self.authenticate(now_ms, msg)?;
        let key = Some(auth.key);
        if first_unknown_attr(msg).is_some() {
            return Err(Reject::new(420, "Unknown Attribute", key));
        }
        let username = msg.username().and_then(|u| std::str::from_utf8(u).ok()).unwrap_or("");
        if m == method::ALLOCATE {
            return self.allocate(now_ms, client, msg, username, auth.key, out);
        }
        let alloc = self
            .allocations
            .get(&client)
            .ok_or_else(|| Reject::new(437, "Allocation Mismatch", key))?;
        if alloc.username != username {
            self.stats.auth_failure();
            return Err(Reject::new(441, "Wrong Credentials", key));
        }
        match m {
            method::REFRESH => self.refresh(now_ms, client, msg, auth.key, out),
            method::CREATE_PERMISSION => self.create_permission(now_ms, client, msg, auth.key, out),
            _ => self.channel_bind(now_ms, client, msg, auth.key, out),
        }
    }

    /// RFC 8489 §9.2.4, long-term credentials.
    fn authenticate(&mut self, now_ms: u64, msg: &Message<'_>) -> Result<Authed, Reject> {
        if !msg.has_integrity() {
            return Err(Reject::challenge(401, "Unauthorized"));
        }
        let (Some(user), Some(_realm), Some(nonce)) = (msg.username(), msg.realm(), msg.nonce()) else {
            return Err(Reject::new(400, "Bad Request", None));
        };
        let now_s = now_ms / 1000;
        if self.nonces.check(nonce, now_s) != NonceCheck::Valid {
            return Err(Reject::challenge(438, "Stale Nonce"));
        }
        let Ok(user) = std::str::from_utf8(user) else {
            self.stats.auth_failure();
            return Err(Reject::challenge(401, "Unauthorized"));
        };
        let key = match self.creds.lookup(user, now_s) {
            KeyLookup::Found(k) => k,
            KeyLookup::Unknown | KeyLookup::Expired => {
                self.stats.auth_failure();
                tracing::debug!(user, "turn: unknown or expired username");
                return Err(Reject::challenge(401, "Unauthorized"));
            }
        };
        if msg.check_integrity(&key).is_err() {
            self.stats.auth_failure();
            tracing::debug!(user, "turn: wrong password (MESSAGE-INTEGRITY mismatch)");
            return Err(Reject::challenge(401, "Unauthorized"));
        }
        Ok(Authed { key })
    }

    fn allocate(
        &mut self,
        now_ms: u64,
        client: ClientKey,
        msg: &Message<'_>,
        username: &str,
        key: LongTermKey,
        out: &mut [u8],
    ) -> Result<usize, Reject> {
        let k = Some(key);
        if let Some(a) = self.allocations.get(&client) {
            // A retransmission of the request that created it gets the same
            // answer; anything else on this 5-tuple is a mismatch.
            if &a.allocate_tid == msg.transaction_id() && a.username == username {
                let left = u32::try_from(a.expires_ms.saturating_sub(now_ms) / 1000).unwrap_or(MAX_LIFETIME_SECS);
                return self.allocate_success(msg, client, (a.relay, left, None), key, out);
            }
            return Err(Reject::new(437, "Allocation Mismatch", k));
        }
        let transport = msg.attr(attr::REQUESTED_TRANSPORT).ok_or_else(|| Reject::new(400, "Bad Request", k))?;
        match transport {
            [PROTO_UDP, _, _, _] => {}
            [_, _, _, _] => return Err(Reject::new(442, "Unsupported Transport Protocol", k)),
            _ => return Err(Reject::new(400, "Bad Request", k)),
        }
        if let Some(v) = msg.attr(attr::REQUESTED_ADDRESS_FAMILY) {
            let want_v6 = match v.first() {
                Some(&FAMILY_V4) => false,
                Some(&FAMILY_V6) => true,
                _ => return Err(Reject::new(400, "Bad Request", k)),
            };
            if want_v6 != self.cfg.relay_ip.is_ipv6() {
                return Err(Reject::new(440, "Address Family not Supported", k));
            }
        }
        let even_port = msg.attr(attr::EVEN_PORT);
        let token = msg.attr(attr::RESERVATION_TOKEN);
        if even_port.is_some() && token.is_some() {
            return Err(Reject::new(400, "Bad Request", k));
        }
        let cap = self.cfg.max_allocations_per_user;
        if cap != 0 && self.per_user.get(username).copied().unwrap_or(0) >= cap {
            self.stats.quota_rejection();
            tracing::info!(user = username, cap, "turn: allocation quota reached");
            return Err(Reject::new(486, "Allocation Quota Reached", k));
        }
        let ip = client.addr.ip().to_canonical();
        let cap = self.cfg.max_allocations_per_address;
        if cap != 0 && self.per_addr.get(&ip).copied().unwrap_or(0) >= cap {
            self.stats.quota_rejection();
            crate::metrics::record_limit_refusal("turn_max_allocations_per_address");
            tracing::info!(%ip, cap, "turn: allocation quota per address reached");
            return Err(Reject::new(486, "Allocation Quota Reached", k));
        }
        let (relay, new_token) = if let Some(tok) = token {
            let tok = <[u8; 8]>::try_from(tok).map_err(|_| Reject::new(400, "Bad Request", k))?;
            let addr = self
                .take_reservation(tok, now_ms)
                .ok_or_else(|| Reject::new(508, "Insufficient Capacity", k))?;
            (addr, None)
        } else {
            // EVEN-PORT's R bit asks us to hold the next port for a second
            // allocation (RTP/RTCP pairs, as coturn's uclient does).
            let reserve = even_port.and_then(|v| v.first()).is_some_and(|b| b & 0x80 != 0);
            let (addr, reserved) = self.pick_port(even_port.is_some(), reserve).ok_or_else(|| {
                tracing::warn!("turn: no relay port available");
                Reject::new(508, "Insufficient Capacity", k)
            })?;
            let tok = reserved.map(|r| {
                let tok: [u8; 8] = rand::random();
                self.reservations.insert(tok, (r, now_ms + RESERVATION_LIFETIME_MS));
                self.reserved_addrs.insert(r, tok);
                tok
            });
            (addr, tok)
        };
        let lifetime = clamp_lifetime(msg.lifetime());
        let alloc = Allocation::new(
            client,
            relay,
            username.to_string(),
            key,
            now_ms + u64::from(lifetime) * 1000,
            *msg.transaction_id(),
            TokenBucket::new(self.cfg.max_relay_bps, now_ms),
        );
        self.allocations.insert(client, alloc);
        self.by_relay.insert(relay, client);
        *self.per_user.entry(username.to_string()).or_insert(0) += 1;
        *self.per_addr.entry(ip).or_insert(0) += 1;
        self.stats.allocation_opened();
        tracing::debug!(client = %client.addr, %relay, user = username, lifetime, "turn: allocated");
        self.allocate_success(msg, client, (relay, lifetime, new_token), key, out)
    }

    /// Claims a reservation made by an earlier Allocate with EVEN-PORT(R);
    /// its port is already bound.
    fn take_reservation(&mut self, tok: [u8; 8], now_ms: u64) -> Option<SocketAddr> {
        let (addr, expires) = self.reservations.remove(&tok)?;
        self.reserved_addrs.remove(&addr);
        if expires <= now_ms {
            self.ports.close(addr);
            return None;
        }
        Some(addr)
    }

    fn expire_reservations(&mut self, now_ms: u64, all: bool) {
        let gone: Vec<[u8; 8]> =
            self.reservations.iter().filter(|(_, (_, e))| all || *e <= now_ms).map(|(t, _)| *t).collect();
        for t in gone {
            if let Some((addr, _)) = self.reservations.remove(&t) {
                self.reserved_addrs.remove(&addr);
                self.ports.close(addr);
            }
        }
    }

    fn allocate_success(
        &self,
        msg: &Message<'_>,
        client: ClientKey,
        (relay, lifetime, token): (SocketAddr, u32, Option<[u8; 8]>),
        key: LongTermKey,
        out: &mut [u8],
    ) -> Result<usize, Reject> {
        success(out, msg, key, |w| {
            w.add_xor_address(attr::XOR_RELAYED_ADDRESS, relay)?;
            w.add_u32(attr::LIFETIME, lifetime)?;
            if let Some(t) = token {
                w.add_attr(attr::RESERVATION_TOKEN, &t)?;
            }
            w.add_xor_address(attr::XOR_MAPPED_ADDRESS, client.addr)
        })
    }

    /// Next free port after the last one handed out, so a just-released
    /// port is not reused at once (late peer packets would reach a new
    /// allocation). With `reserve`, also binds the port above it and
    /// returns it as the second element.
    fn pick_port(&mut self, even: bool, reserve: bool) -> Option<(SocketAddr, Option<SocketAddr>)> {
        let (min, max) = (u32::from(self.cfg.port_min), u32::from(self.cfg.port_max));
        let span = max - min + 1;
        let mut attempts = 0;
        let start = u32::from(self.next_port).clamp(min, max) - min;
        for i in 0..span {
            let port = min + (start + i) % span;
            if (even || reserve) && port % 2 != 0 {
                continue;
            }
            if reserve && port + 1 > max {
                continue;
            }
            let (Ok(p0), Ok(p1)) = (u16::try_from(port), u16::try_from(port + u32::from(reserve))) else { continue };
            let addr = SocketAddr::new(self.cfg.relay_ip, p0);
            let next_addr = SocketAddr::new(self.cfg.relay_ip, p1);
            if self.in_use(addr) || (reserve && self.in_use(next_addr)) {
                continue;
            }
            if self.ports.open(addr) {
                if reserve && !self.ports.open(next_addr) {
                    self.ports.close(addr);
                } else {
                    let next = port + 1 + u32::from(reserve);
                    self.next_port = u16::try_from(if next > max { min } else { next }).unwrap_or(self.cfg.port_min);
                    return Some((addr, reserve.then_some(next_addr)));
                }
            }
            attempts += 1;
            if attempts >= MAX_BIND_ATTEMPTS {
                break;
            }
        }
        None
    }

    fn in_use(&self, addr: SocketAddr) -> bool {
        self.by_relay.contains_key(&addr) || self.reserved_addrs.contains_key(&addr)
    }

    fn refresh(
        &mut self,
        now_ms: u64,
        client: ClientKey,
        msg: &Message<'_>,
        key: LongTermKey,
        out: &mut [u8],
    ) -> Result<usize, Reject> {
        let lifetime = match msg.lifetime() {
            Some(0) => 0,
            other => clamp_lifetime(other),
        };
        if lifetime == 0 {
            self.remove(&client);
            tracing::debug!(client = %client.addr, "turn: allocation deleted by refresh");
        } else if let Some(a) = self.allocations.get_mut(&client) {
            a.expires_ms = now_ms + u64::from(lifetime) * 1000;
        }
        success(out, msg, key, |w| w.add_u32(attr::LIFETIME, lifetime))
    }

    fn create_permission(
        &mut self,
        now_ms: u64,
        client: ClientKey,
        msg: &Message<'_>,
        key: LongTermKey,
        out: &mut [u8],
    ) -> Result<usize, Reject> {
        let k = Some(key);
        let mut peers: Vec<IpAddr> = Vec::new();
        for (t, v) in msg.attrs() {
            if t == attr::XOR_PEER_ADDRESS {
                let a = decode_xor_address(v, msg.transaction_id()).ok_or_else(|| Reject::new(400, "Bad Request", k))?;
                peers.push(a.ip());
            }
        }
        if peers.is_empty() {
            return Err(Reject::new(400, "Bad Request", k));
        }
        for ip in &peers {
            self.check_peer(client, *ip, key)?;
        }
        let alloc = self.allocations.get_mut(&client).ok_or_else(|| Reject::new(437, "Allocation Mismatch", k))?;
        if !alloc.has_room_for_permissions(&peers) {
            return Err(Reject::new(508, "Insufficient Capacity", k));
        }
        for ip in peers {
            alloc.permit(ip, now_ms + PERMISSION_LIFETIME_MS);
        }
        success(out, msg, key, |_| Ok(()))
    }

    fn channel_bind(
        &mut self,
        now_ms: u64,
        client: ClientKey,
        msg: &Message<'_>,
        key: LongTermKey,
        out: &mut [u8],
    ) -> Result<usize, Reject> {
        let k = Some(key);
        let bad = || Reject::new(400, "Bad Request", k);
        let number = match msg.attr(attr::CHANNEL_NUMBER) {
            Some(&[a, b, _, _]) => u16::from_be_bytes([a, b]),
            _ => return Err(bad()),
        };
        if !(CHANNEL_MIN..=CHANNEL_MAX).contains(&number) {
            return Err(bad());
        }
        let peer = msg
            .attr(attr::XOR_PEER_ADDRESS)
            .and_then(|v| decode_xor_address(v, msg.transaction_id()))
            .ok_or_else(bad)?;
        self.check_peer(client, peer.ip(), key)?;
        if !self.cfg.policy.permits_addr(peer) {
            self.refused(client, peer.ip());
            return Err(Reject::new(403, "Forbidden", k));
        }
        let alloc = self.allocations.get_mut(&client).ok_or_else(|| Reject::new(437, "Allocation Mismatch", k))?;
        match alloc.check_bind(number, peer) {
            Ok(()) => {}
            Err(BindConflict::InUse) => return Err(bad()),
            Err(BindConflict::Full) => return Err(Reject::new(508, "Insufficient Capacity", k)),
        }
        if !alloc.has_room_for_permissions(&[peer.ip()]) {
            return Err(Reject::new(508, "Insufficient Capacity", k));
        }
        if alloc.bind(number, peer, now_ms + CHANNEL_LIFETIME_MS).is_err() {
            return Err(bad());
        }
        alloc.permit(peer.ip(), now_ms + PERMISSION_LIFETIME_MS);
        success(out, msg, key, |_| Ok(()))
    }

    /// Family match (443) and the no-open-relay rule (403).
    fn check_peer(&self, client: ClientKey, ip: IpAddr, key: LongTermKey) -> Result<(), Reject> {
        if ip.to_canonical().is_ipv6() != self.cfg.relay_ip.is_ipv6() {
            return Err(Reject::new(443, "Peer Address Family Mismatch", Some(key)));
        }
        if !self.cfg.policy.permits_ip(ip) {
            self.refused(client, ip);
            return Err(Reject::new(403, "Forbidden", Some(key)));
        }
        Ok(())
    }

    fn refused(&self, client: ClientKey, ip: IpAddr) {
        self.stats.refused_peer();
        tracing::warn!(client = %client.addr, peer = %ip, "turn: refused relay to a denied peer address");
    }

    fn send_indication<'i>(&mut self, now_ms: u64, client: ClientKey, msg: &Message<'i>) -> ClientAction<'i> {
        let (Some(peer), Some(data)) = (
            msg.attr(attr::XOR_PEER_ADDRESS).and_then(|v| decode_xor_address(v, msg.transaction_id())),
            msg.attr(attr::DATA),
        ) else {
            return ClientAction::None;
        };
        self.relay_out(now_ms, client, peer, data)
    }

    fn client_channel_data<'i>(&mut self, now_ms: u64, client: ClientKey, input: &'i [u8]) -> ClientAction<'i> {
        let Some((number, data)) = parse_channel_data(input) else {
            return ClientAction::None;
        };
        let Some(peer) = self.allocations.get(&client).and_then(|a| a.channel_peer(number, now_ms)) else {
            return ClientAction::None;
        };
        self.relay_out(now_ms, client, peer, data)
    }

    /// Client -> peer: permission, policy and budget checks shared by Send
    /// indications and ChannelData.
    fn relay_out<'i>(&mut self, now_ms: u64, client: ClientKey, peer: SocketAddr, data: &'i [u8]) -> ClientAction<'i> {
        let Some(alloc) = self.allocations.get_mut(&client) else {
            return ClientAction::None;
        };
        if now_ms >= alloc.expires_ms {
            return ClientAction::None;
        }
        if !self.cfg.policy.permits_addr(peer) {
            self.stats.refused_peer();
            tracing::debug!(client = %client.addr, %peer, "turn: dropped data to a denied peer");
            return ClientAction::None;
        }
        if !alloc.is_permitted(peer.ip(), now_ms) {
            return ClientAction::None;
        }
        if !alloc.bucket.take(data.len(), now_ms) {
            self.stats.rate_limited();
            return ClientAction::None;
        }
        self.stats.relayed(data.len());
        ClientAction::Relay { relay: alloc.relay, peer, data }
    }

    fn reject(&mut self, now_ms: u64, msg: &Message<'_>, r: Reject, out: &mut [u8]) -> ClientAction<'static> {
        let nonce = if r.challenge { self.nonces.issue(now_ms / 1000).ok() } else { None };
        let realm = self.creds.realm();
        let res = (|| -> Result<usize, StunError> {
            let mut w = MessageWriter::new(out, Class::Error, msg.method(), msg.transaction_id())?;
            w.add_error_code(r.code, r.reason)?;
            if r.code == 420 {
                let mut list = [0u8; 2 * MAX_UNKNOWN];
                let n = unknown_attrs(msg, &mut list);
                w.add_attr(attr::UNKNOWN_ATTRIBUTES, list.get(..n).unwrap_or(&[]))?;
            }
            if let Some(nonce) = &nonce {
                w.add_attr(attr::REALM, realm.as_bytes())?;
                w.add_attr(attr::NONCE, nonce)?;
            }
            if let Some(k) = r.key {
                w.add_message_integrity_keyed(&IntegrityKey::new(&k))?;
            }
            w.add_fingerprint()?;
            Ok(w.finish())
        })();
        res.map_or(ClientAction::None, ClientAction::Reply)
    }
}

fn success(
    out: &mut [u8],
    msg: &Message<'_>,
    key: LongTermKey,
    attrs: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), StunError>,
) -> Result<usize, Reject> {
    let res = (|| -> Result<usize, StunError> {
        let mut w = MessageWriter::new(out, Class::Success, msg.method(), msg.transaction_id())?;
        attrs(&mut w)?;
        w.add_message_integrity_keyed(&IntegrityKey::new(&key))?;
        w.add_fingerprint()?;
        Ok(w.finish())
    })();
    // Only a too-small output buffer gets here; 500 tells the client
    // something is wrong on our side rather than leaving it to time out.
    res.map_err(|_| Reject::new(500, "Server Error", Some(key)))
}

/// Allocation and refresh lifetimes: absent means the default, and values
/// are clamped into default..=max (RFC 8656 §7.2: a shorter request than the
/// default gets the default).
fn clamp_lifetime(requested: Option<u32>) -> u32 {
    requested.unwrap_or(DEFAULT_LIFETIME_SECS).clamp(DEFAULT_LIFETIME_SECS, MAX_LIFETIME_SECS)
}

const MAX_UNKNOWN: usize = 8;

fn is_unknown(t: u16) -> bool {
    t < 0x8000 && !KNOWN_ATTRS.contains(&t)
}

fn first_unknown_attr(msg: &Message<'_>) -> Option<u16> {
    msg.attrs().map(|(t, _)| t).find(|&t| is_unknown(t))
}

fn unknown_attrs(msg: &Message<'_>, out: &mut [u8; 2 * MAX_UNKNOWN]) -> usize {
    let mut n = 0;
    for t in msg.attrs().map(|(t, _)| t).filter(|&t| is_unknown(t)).take(MAX_UNKNOWN) {
        out[n..n + 2].copy_from_slice(&t.to_be_bytes());
        n += 2;
    }
    n
}

/// Decodes one XOR-PEER-ADDRESS value. `Message::xor_address` returns only
/// the first occurrence; CreatePermission may carry several.
fn decode_xor_address(v: &[u8], tid: &[u8; 12]) -> Option<SocketAddr> {
    let port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]) ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match (v.get(1)?, v.len()) {
        (0x01, 8) => {
            let x = u32::from_be_bytes(v.get(4..8)?.try_into().ok()?) ^ MAGIC_COOKIE;
            IpAddr::from(x.to_be_bytes())
        }
        (0x02, 20) => {
            let mut mask = [0u8; 16];
            mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            mask[4..].copy_from_slice(tid);
            let mut ip = [0u8; 16];
            for ((o, a), m) in ip.iter_mut().zip(v.get(4..20)?).zip(mask) {
                *o = a ^ m;
            }
            IpAddr::from(ip)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Data indication (RFC 8656 §11.4): no integrity, a fresh transaction id.
fn write_data_indication(out: &mut [u8], peer: SocketAddr, data: &[u8]) -> Result<usize, StunError> {
    let tid: [u8; 12] = rand::random();
    let mut w = MessageWriter::new(out, Class::Indication, method::DATA, &tid)?;
    w.add_xor_address(attr::XOR_PEER_ADDRESS, peer)?;
    w.add_attr(attr::DATA, data)?;
    Ok(w.finish())
}
