//! Embedded STUN/TURN server (RFC 8656 / RFC 5766, long-term credentials
//! per RFC 8489 §9.2, TURN REST shared-secret credentials as coturn's
//! `use-auth-secret`). UDP relays only; no RFC 6062 TCP relays.
//!
//! - `server.rs`: the sans-IO core (every message type, auth, quotas, expiry);
//! - `allocation.rs`: one allocation's permissions, channels and bandwidth;
//! - `auth.rs`: keys, nonces, REST credentials, `iceServers`/`Link` helpers;
//! - `denylist.rs`: the no-open-relay rule;
//! - `framing.rs`: ChannelData and TCP/TLS stream framing;
//! - `stats.rs`: counters for metrics;
//! - `relay.rs`, `udp.rs`, `tcp.rs`, `tls.rs`: thin tokio I/O around the core.
//!
//! Entry point: [`run`]. It binds everything before returning, so a bind
//! error surfaces at start-up, then serves until `shutdown` resolves.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use crate::config::TurnConfig;

pub mod allocation;
pub mod auth;
pub mod denylist;
pub mod framing;
mod relay;
pub mod server;
mod stats;
mod tcp;
mod tls;
mod udp;

pub use allocation::{ClientKey, Transport};
pub use auth::{ice_server_entry, link_header_values, rest_credentials, IceServer};
pub use denylist::{is_denied, PeerPolicy};
pub use server::{ClientAction, CoreConfig, RelayPorts, Server};
pub use stats::{StatsCells, TurnStats};

#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error("turn config: {0}")]
    Config(String),
    #[error("turn: cannot bind {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("turn tls: {0}")]
    Tls(String),
    #[error("turn: crypto failure: {0}")]
    Crypto(&'static str),
    #[error("turn: openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    #[error("turn: no turn.shared_secret configured, so no credentials can be handed out")]
    NoSharedSecret,
}

/// A running server. Dropping it does not stop the server; `shutdown`
/// (passed to [`run`]) or [`TurnHandle::stop`] does.
#[derive(Clone)]
pub struct TurnHandle {
    stats: Arc<StatsCells>,
    stop: Arc<watch::Sender<bool>>,
    udp_addr: Option<SocketAddr>,
    tcp_addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    relay_ip: IpAddr,
}

impl TurnHandle {
    pub fn stats(&self) -> TurnStats {
        self.stats.snapshot()
    }

    /// Bound addresses (useful with port 0 in tests); `None` when disabled.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp_addr
    }

    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    pub fn relay_ip(&self) -> IpAddr {
        self.relay_ip
    }

    /// Stops every listener and deletes every allocation.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// Cross-field checks on `[turn]`; `run` calls it, and config validation can
/// call it too. `media_addrs` are sfud's media sockets (their ports must stay
/// outside the relay range).
pub fn check_config(cfg: &TurnConfig, media_addrs: &[SocketAddr]) -> Result<(), TurnError> {
    let bad = |m: String| Err(TurnError::Config(m));
    let (min, max) = (cfg.relay_port_min, cfg.relay_port_max);
    if min == 0 || min > max {
        return bad(format!("turn.relay_port_min ({min}) must be >= 1 and <= turn.relay_port_max ({max})"));
    }
    let in_range = |p: u16| p != 0 && (min..=max).contains(&p);
    for a in media_addrs {
        if in_range(a.port()) {
            return bad(format!("relay port range {min}..={max} overlaps the media port {}", a.port()));
        }
    }
    for (key, p) in [("turn.udp_port", cfg.udp_port), ("turn.tcp_port", cfg.tcp_port), ("turn.tls_port", cfg.tls_port)] {
        if in_range(p) {
            return bad(format!("{key} ({p}) lies inside the relay port range {min}..={max}"));
        }
    }
    if cfg.udp_port == 0 && cfg.tcp_port == 0 && cfg.tls_port == 0 {
        return bad("turn is enabled but udp_port, tcp_port and tls_port are all 0".into());
    }
    if cfg.tls_port != 0 && (cfg.tls_cert_file.is_none() || cfg.tls_key_file.is_none()) {
        return bad("turn.tls_port needs turn.tls_cert_file and turn.tls_key_file".into());
    }
    if cfg.realm.is_empty() {
        return bad("turn.realm must not be empty".into());
    }
    if cfg.static_users.is_empty() && cfg.shared_secret.as_deref().is_none_or(str::is_empty) {
        return bad("turn needs turn.static_users or turn.shared_secret: nobody could authenticate".into());
    }
    Ok(())
}

/// The address relays bind and announce: `turn.relay_address`, else the
/// first specified media address.
pub fn relay_ip(cfg: &TurnConfig, media_addrs: &[SocketAddr]) -> Result<IpAddr, TurnError> {
    cfg.relay_address
        .or_else(|| media_addrs.iter().map(SocketAddr::ip).find(|ip| !ip.is_unspecified()))
        .ok_or_else(|| TurnError::Config("set turn.relay_address: no media address to derive it from".into()))
}

/// Starts the server: validates `cfg`, binds the UDP, TCP and (if
/// configured) TLS listeners, and serves until `shutdown` resolves.
/// `media_addrs` are sfud's own media sockets: the relay may reach them even
/// when they are private, and the relay port range must avoid them.
pub async fn run<F>(cfg: TurnConfig, media_addrs: Vec<SocketAddr>, limits: TurnLimits, shutdown: F) -> Result<TurnHandle, TurnError>
where
    F: Future<Output = ()> + Send + 'static,
{
    check_config(&cfg, &media_addrs)?;
    let relay_ip = relay_ip(&cfg, &media_addrs)?;
    let mut core_cfg = CoreConfig::new(&cfg, relay_ip, media_addrs.clone());
    core_cfg.max_allocations_per_address = limits.max_allocations_per_address;
    core_cfg.tcp_idle = limits.tcp_idle;
    // Every address sfud answers on is off limits to the relay but for the
    // media sockets: a relay to its own HTTP, TURN or relay ports would let
    // a client reach the admin API or loop the relay into itself.
    let mut own = limits.own_ips;
    own.push(relay_ip);
    own.extend(media_addrs.iter().map(|a| a.ip()));
    core_cfg.policy = core_cfg.policy.with_own(own);
    let listen_ip = if relay_ip.is_ipv6() { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
    let creds = auth::Credentials::new(&cfg)?;
    let stats = Arc::new(StatsCells::default());
    let core = Server::new(
        core_cfg,
        creds,
        rand::random(),
        relay::TokioPorts::default(),
        stats.clone(),
    )?;

    let udp = if cfg.udp_port != 0 {
        let addr = SocketAddr::new(listen_ip, cfg.udp_port);
        let s = UdpSocket::bind(addr).await.map_err(|source| TurnError::Bind { what: "turn udp", addr, source })?;
        Some(Arc::new(s))
    } else {
        None
    };
    let tcp = if cfg.tcp_port != 0 {
        let addr = SocketAddr::new(listen_ip, cfg.tcp_port);
        Some(TcpListener::bind(addr).await.map_err(|source| TurnError::Bind { what: "turn tcp", addr, source })?)
    } else {
        None
    };
    let tls = if cfg.tls_port != 0 {
        let acceptor = tls::acceptor(&cfg)?;
        let addr = SocketAddr::new(listen_ip, cfg.tls_port);
        let l = TcpListener::bind(addr).await.map_err(|source| TurnError::Bind { what: "turn tls", addr, source })?;
        Some((l, acceptor))
    } else {
        None
    };

    let shared = relay::Shared::new(core, udp.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let handle = TurnHandle {
        stats,
        stop: stop_tx.clone(),
        udp_addr: udp.as_ref().and_then(|s| s.local_addr().ok()),
        tcp_addr: tcp.as_ref().and_then(|l| l.local_addr().ok()),
        tls_addr: tls.as_ref().and_then(|(l, _)| l.local_addr().ok()),
        relay_ip,
    };

    if let Some(sock) = udp {
        tokio::spawn(udp::serve(shared.clone(), sock, stop_rx.clone()));
    }
    if let Some(l) = tcp {
        tokio::spawn(tcp::accept_loop(shared.clone(), l, stop_rx.clone()));
    }
    if let Some((l, acceptor)) = tls {
        tokio::spawn(tls::accept_loop(shared.clone(), l, acceptor, stop_rx.clone()));
    }
    tokio::spawn(timer(shared.clone(), stop_rx.clone()));
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown => { let _ = stop_tx.send(true); }
            () = stopped(stop_rx) => {}
        }
        shared.close_all();
        tracing::info!("turn: stopped");
    });
    tracing::info!(
        udp = ?handle.udp_addr, tcp = ?handle.tcp_addr, tls = ?handle.tls_addr, %relay_ip,
        relay_ports = %format!("{}..={}", cfg.relay_port_min, cfg.relay_port_max),
        allow_private_peers = cfg.allow_private_peers,
        "turn: listening"
    );
    Ok(handle)
}

/// Bounds from `[limits]` and the addresses that belong to this node.
#[derive(Debug, Clone)]
pub struct TurnLimits {
    /// Allocations per client IP; 0 = no cap.
    pub max_allocations_per_address: u32,
    /// TCP/TLS clients silent this long are disconnected.
    pub tcp_idle: Duration,
    /// sfud's own addresses (announced, NAT 1:1), besides the relay and
    /// media addresses `run` knows already.
    pub own_ips: Vec<IpAddr>,
}

impl Default for TurnLimits {
    fn default() -> Self {
        Self { max_allocations_per_address: 0, tcp_idle: Duration::from_secs(120), own_ips: Vec::new() }
    }
}

/// Resolves once the stop flag is set (or its sender is gone).
pub(crate) async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn timer(shared: Arc<relay::Shared>, stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = stopped(stop);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => shared.lock().handle_timeout(relay::now_ms()),
            () = &mut stop => return,
        }
    }
}

#[cfg(test)]
mod tests;
