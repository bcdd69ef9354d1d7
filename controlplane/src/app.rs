//! Start-up: config in, both planes running, HTTP served until a signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use dataplane::shard::{self, DataplaneConfig};
use dataplane::topology::{memlock_limit, memlock_needed, Topology};
use tracing::{info, warn};

use tokio::signal::unix::{signal, SignalKind};

use crate::auth::Authenticator;
use crate::config::{self, Config};
use crate::metrics::Metrics;
use crate::sdnotify;
use crate::webhook::Webhooks;
use crate::dtls::{Certificate, DtlsContext};
use crate::http::{router, AppState};
use crate::hub::Hub;

/// Which CPU each shard runs on: `dataplane.cores` if set, else physical
/// cores first, on the NIC's NUMA node where known.
fn plan_cpus(cfg: &Config) -> anyhow::Result<Vec<Option<usize>>> {
    let topo = Topology::detect();
    info!(source = %topo.source, cpus = topo.cpus.len(), "CPU topology");
    let n = cfg.shard_count(topo.cpus.len());
    let node = topo.interfaces_numa_node(&cfg.rtc.interfaces);
    let cpus = topo.plan_shards(n, &cfg.dataplane.cores, node).context("dataplane.cores")?;
    Ok(cpus.into_iter().map(Some).collect())
}

fn check_memlock(shards: usize, io_memory: usize) {
    let lim = memlock_limit();
    let need = memlock_needed(shards, io_memory);
    if lim.allows(need) {
        info!(limit = %lim, needed_bytes = need, "locked-memory limit is sufficient");
    } else {
        warn!(
            limit = %lim,
            needed_bytes = need,
            "RLIMIT_MEMLOCK is below what the shards' io_uring buffers need; glommio falls back to unregistered buffers (raise LimitMEMLOCK= in the unit)"
        );
    }
}

pub fn run(cfg: Config, reload: Reload) -> anyhow::Result<()> {
    let cpus = plan_cpus(&cfg)?;
    check_memlock(cpus.len(), cfg.dataplane.io_memory);
    let cert = match (&cfg.dtls.cert_file, &cfg.dtls.key_file) {
        (Some(c), Some(k)) => {
            let cert_pem = std::fs::read(c).with_context(|| format!("reading dtls.cert_file {}", c.display()))?;
            let key_pem = std::fs::read(k).with_context(|| format!("reading dtls.key_file {}", k.display()))?;
            Certificate::from_pem(&cert_pem, &key_pem).context("loading the DTLS certificate")?
        }
        (None, None) => Certificate::generate().context("generating the DTLS certificate")?,
        _ => bail!("dtls.cert_file and dtls.key_file must be set together"),
    };
    let fingerprint = cert.fingerprint_sha256();
    let dtls = DtlsContext::new(&cert).context("building the DTLS context")?;

    let media_addr = SocketAddr::new(cfg.rtc.bind_address, cfg.rtc.udp_port);
    // ICE-TCP (RFC 6544 passive) on the same addresses, for clients without UDP.
    let tcp_addr = SocketAddr::new(cfg.rtc.bind_address, cfg.rtc.tcp_port);
    let dp = shard::start_with_tcp(DataplaneConfig {
        media_addr,
        cpus: cpus.clone(),
        io_memory: cfg.dataplane.io_memory,
        recv_batch: cfg.dataplane.recv_batch,
        socket_buffer: cfg.dataplane.socket_buffer,
        busy_poll: cfg.dataplane.busy_poll,
        test_hooks: cfg.dataplane.test_hooks,
        tcp_limits: shard::tcp::TcpLimits {
            max_connections: cfg.limits.ice_tcp_max_connections,
            first_frame_timeout: Duration::from_secs(cfg.limits.ice_tcp_first_frame_timeout_secs),
        },
    }, Some(tcp_addr))
    .context("starting the dataplane")?;
    let events = dp.events.clone();
    let candidates = crate::candidates::host_candidates(&cfg.rtc, dp.media_addr.port());
    let candidates_for_turn = candidates.clone();
    info!(shards = cpus.len(), ?cpus, media = %dp.media_addr, ice_tcp = ?dp.tcp_addr, ?candidates, "dataplane up");
    let (mut hub, transports) =
        Hub::new(dp, dtls, fingerprint, candidates, cfg.dataplane.allow_placement_hint, cfg.room.clone());
    if cfg.dataplane.test_hooks {
        hub.enable_test_hooks();
    }
    hub.set_limits(cfg.limits.clone());
    let hub = Arc::new(Mutex::new(hub));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sfud-control")
        .enable_all()
        .build()
        .context("starting the controlplane runtime")?;
    rt.block_on(serve(cfg, hub, events, transports, reload, candidates_for_turn))
}

/// What SIGHUP needs to re-read the configuration and apply what can change live.
pub struct Reload {
    pub config_path: Option<PathBuf>,
    pub set_log_level: Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>,
}

fn start_webhooks(cfg: &Config, auth: &Authenticator) -> Webhooks {
    if cfg.webhook.urls.is_empty() {
        return Webhooks::default();
    }
    let signer = match auth.signer(cfg.webhook.api_key.as_deref()) {
        Ok(s) => Some(s),
        Err(e) => {
            warn!(error = %e, "webhooks go out unsigned: configure [auth] keys (and webhook.api_key)");
            None
        }
    };
    Webhooks::start(&cfg.webhook, signer)
}

fn open_mode_warning(auth: &Authenticator) {
    if auth.is_open() {
        warn!("no [auth] keys configured: WHIP, WHEP, rooms and the admin API are open to anyone who can reach sfud");
    }
}

/// The embedded TURN server, when enabled; its counters go to Prometheus.
async fn start_turn(cfg: &Config, media: Vec<SocketAddr>) -> anyhow::Result<()> {
    if !cfg.turn.enabled {
        return Ok(());
    }
    // sfud's own media addresses are the one private destination a relay may reach.
    let media: Vec<SocketAddr> = media.into_iter().filter(|a| !a.ip().is_unspecified()).collect();
    let limits = crate::turn::TurnLimits {
        max_allocations_per_address: cfg.limits.turn_max_allocations_per_address,
        tcp_idle: Duration::from_secs(cfg.limits.turn_tcp_idle_timeout_secs),
        own_ips: cfg.rtc.nat_1to1.clone(),
    };
    let turn = crate::turn::run(cfg.turn.clone(), media, limits, std::future::pending::<()>())
        .await
        .context("starting the TURN server")?;
    info!(udp = ?turn.udp_addr(), tcp = ?turn.tcp_addr(), tls = ?turn.tls_addr(), relay_ip = %turn.relay_ip(), "TURN/STUN server up");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            crate::metrics::record_turn_stats(&turn.stats());
        }
    });
    Ok(())
}

async fn serve(
    cfg: Config,
    hub: Arc<Mutex<Hub>>,
    events: flume::Receiver<dataplane::msg::Event>,
    transports: crate::hub::TransportReports,
    reload: Reload,
    media: Vec<SocketAddr>,
) -> anyhow::Result<()> {
    let auth = Authenticator::new(&cfg.auth);
    open_mode_warning(&auth);
    hub.lock().unwrap_or_else(|p| p.into_inner()).set_webhooks(start_webhooks(&cfg, &auth));
    let state = AppState {
        hub: hub.clone(),
        max_body: cfg.http.max_body_bytes,
        auth: Arc::new(RwLock::new(auth)),
        draining: Arc::new(AtomicBool::new(false)),
        ready: Arc::new(AtomicBool::new(false)),
        turn: (cfg.turn.enabled && cfg.turn.shared_secret.is_some()).then(|| Arc::new(cfg.turn.clone())),
        cors: crate::http::CorsPolicy::new(&cfg.http.cors_allowed_origins),
        limits: Arc::new(cfg.limits.clone()),
        cluster: if cfg.cluster.enabled { Some(crate::cluster::Cluster::new(&cfg, &media).context("cluster")?) } else { None },
    };
    if let Some(cluster) = &state.cluster {
        cluster.spawn(state.clone());
    }
    let crate::hub::TransportReports { registry, mut reports } = transports;
    {
        let hub = hub.clone();
        tokio::spawn(async move {
            while let Ok(ev) = events.recv_async().await {
                // Straight to the session's transport task, without the
                // hub's lock (a full inbox drops and counts it).
                let ev = match ev {
                    dataplane::msg::Event::Dtls { session, datagram } => {
                        registry.deliver(session, datagram);
                        continue;
                    }
                    ev => ev,
                };
                let session = ev.session();
                let ok = crate::contain::step("events", || hub.lock().unwrap_or_else(|p| p.into_inner()).on_event(ev));
                if let (false, Some(id)) = (ok, session) {
                    crate::contain::step("events", || {
                        hub.lock().unwrap_or_else(|p| p.into_inner()).end_session(id, "controlplane panic while handling its event")
                    });
                }
            }
        });
    }
    {
        // What the transport tasks report (keys, data channel messages,
        // failures) enters the hub here.
        let hub = hub.clone();
        tokio::spawn(async move {
            while let Some(report) = reports.recv().await {
                let session = report.session;
                let ok = crate::contain::step("transport", || hub.lock().unwrap_or_else(|p| p.into_inner()).on_transport(report));
                if !ok {
                    crate::contain::step("transport", || {
                        hub.lock().unwrap_or_else(|p| p.into_inner()).end_session(session, "controlplane panic while handling its transport")
                    });
                }
            }
        });
    }
    {
        let hub = hub.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                crate::contain::step("timers", || hub.lock().unwrap_or_else(|p| p.into_inner()).on_timer());
            }
        });
    }
    if cfg.metrics.enabled {
        let metrics = Metrics::install().context("installing the Prometheus recorder")?;
        let listener = tokio::net::TcpListener::bind(cfg.metrics.listen)
            .await
            .with_context(|| format!("binding metrics.listen {}", cfg.metrics.listen))?;
        info!(url = %format!("http://{}/metrics", cfg.metrics.listen), "Prometheus metrics up");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, metrics.router()).await {
                warn!(error = %e, "metrics server stopped");
            }
        });
    }
    start_turn(&cfg, media).await?;
    let listener = tokio::net::TcpListener::bind(cfg.http.listen)
        .await
        .with_context(|| format!("binding http.listen {}", cfg.http.listen))?;
    info!(url = %format!("http://{}/", cfg.http.listen), "HTTP signaling and demo page up");
    state.ready.store(true, Ordering::Relaxed);
    let _ = sdnotify::notify_ready();
    let _ = sdnotify::notify_status(&format!("serving: {} shards", hub.lock().unwrap_or_else(|p| p.into_inner()).shards()));
    if let Some(interval) = sdnotify::watchdog_interval() {
        tokio::spawn(watchdog(hub.clone(), interval));
    }
    tokio::spawn(reload_on_sighup(state.clone(), reload));

    let drain_timeout = Duration::from_secs(cfg.node.drain_timeout_secs);
    // Flips to true when the drain is over: the server stops accepting, and
    // the select below stops waiting for it.
    let (drained_tx, drained_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(drain_on_sigterm(state.clone(), drain_timeout, drained_tx));
    let limits = crate::http::ServeLimits {
        max_connections: cfg.limits.http_max_connections,
        header_timeout: Duration::from_secs(cfg.limits.http_header_timeout_secs),
    };
    let server = crate::http::serve(listener, router(state), limits, drained_rx.clone());
    // Live WebSockets would hold a graceful shutdown open: once the drain is
    // over, give connections a moment and then exit regardless.
    let mut drained = drained_rx;
    tokio::select! {
        () = server => {}
        _ = async {
            let _ = drained.wait_for(|done| *done).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        } => {}
    }
    info!("drained; exiting");
    Ok(())
}

/// SIGTERM (or Ctrl-C): stop taking sessions, let live ones finish (up to
/// `timeout`), then shut down. A second signal skips the wait.
async fn drain_on_sigterm(state: AppState, timeout: Duration, drained: tokio::sync::watch::Sender<bool>) {
    let Ok(mut term) = signal(SignalKind::terminate()) else { return };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    state.draining.store(true, Ordering::Relaxed);
    let _ = sdnotify::notify_stopping();
    let live = state.hub.lock().unwrap_or_else(|p| p.into_inner()).session_count();
    info!(live_sessions = live, timeout_secs = timeout.as_secs(), "SIGTERM: draining");
    if timeout > Duration::from_secs(80) {
        let _ = sdnotify::notify_extend_timeout(timeout + Duration::from_secs(10));
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = usize::MAX;
    loop {
        let live = state.hub.lock().unwrap_or_else(|p| p.into_inner()).session_count();
        if live == 0 {
            info!("all sessions ended");
            break;
        }
        if live != last {
            let _ = sdnotify::notify_status(&format!("draining: {live} sessions"));
            last = live;
        }
        if tokio::time::Instant::now() >= deadline {
            warn!(live_sessions = live, "drain timeout reached; exiting with sessions still live");
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {},
            _ = term.recv() => { warn!("second SIGTERM: skipping the rest of the drain"); break; }
            _ = tokio::signal::ctrl_c() => { warn!("second interrupt: skipping the rest of the drain"); break; }
        }
    }
    let hooks = state.hub.lock().unwrap_or_else(|p| p.into_inner()).webhooks();
    hooks.flush(Duration::from_secs(2)).await;
    let _ = drained.send(true);
}

/// SIGHUP re-reads the config and applies what can change live: log level,
/// auth keys and webhooks. An invalid config is rejected and nothing changes.
async fn reload_on_sighup(state: AppState, reload: Reload) {
    let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
    while hup.recv().await.is_some() {
        let _ = sdnotify::notify_reloading();
        let loaded = config::load(reload.config_path.as_deref(), config::env_vars()).and_then(|c| c.validate().map(|_| c));
        match loaded {
            Ok(cfg) => {
                // The log filter is the one setting only parsing can check:
                // if it fails, nothing of this config is applied.
                if let Err(e) = (reload.set_log_level)(&cfg.log.level) {
                    warn!(error = %e, "reload refused: log.level is invalid; keeping the running configuration");
                    let _ = sdnotify::notify_ready();
                    continue;
                }
                let auth = Authenticator::new(&cfg.auth);
                open_mode_warning(&auth);
                let hooks = start_webhooks(&cfg, &auth);
                *state.auth.write().unwrap_or_else(|p| p.into_inner()) = auth;
                state.hub.lock().unwrap_or_else(|p| p.into_inner()).set_webhooks(hooks);
                info!("configuration reloaded (log level, auth keys, webhooks; other keys need a restart)");
            }
            Err(e) => warn!(error = %e, "reload refused: invalid configuration; keeping the running one"),
        }
        let _ = sdnotify::notify_ready();
    }
}

/// Pets systemd's watchdog only when both planes answer: the controlplane
/// runs this task and takes the hub lock, and every shard must have sent a
/// stats snapshot since the probe went out.
async fn watchdog(hub: Arc<Mutex<Hub>>, interval: Duration) {
    let period = interval / 2;
    loop {
        let probe = Instant::now();
        hub.lock().unwrap_or_else(|p| p.into_inner()).request_snapshots();
        tokio::time::sleep(period / 2).await;
        if hub.lock().unwrap_or_else(|p| p.into_inner()).all_shards_reported_since(probe) {
            let _ = sdnotify::notify_watchdog();
        } else {
            warn!("watchdog: a shard did not answer in time; not notifying systemd");
        }
        tokio::time::sleep(period / 2).await;
    }
}
