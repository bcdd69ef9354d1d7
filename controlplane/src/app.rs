//! Start-up: config in, both planes running, HTTP served until a signal.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use dataplane::shard::{self, DataplaneConfig};
use dataplane::topology::{memlock_limit, memlock_needed, Topology};
use tracing::{info, warn};

use crate::config::Config;
use crate::dtls::{Certificate, DtlsContext};
use crate::http::{router, AppState};
use crate::hub::Hub;

/// Which CPU each shard runs on: `dataplane.cores` if set, else physical
/// cores first, on the NIC's NUMA node where known.
fn plan_cpus(cfg: &Config) -> anyhow::Result<Vec<Option<usize>>> {
    let topo = Topology::detect();
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

pub fn run(cfg: Config) -> anyhow::Result<()> {
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
    let dp = shard::start(DataplaneConfig {
        media_addr,
        cpus: cpus.clone(),
        io_memory: cfg.dataplane.io_memory,
        recv_batch: cfg.dataplane.recv_batch,
        socket_buffer: cfg.dataplane.socket_buffer,
        busy_poll: cfg.dataplane.busy_poll,
    })
    .context("starting the dataplane")?;
    let events = dp.events.clone();
    let candidates = crate::candidates::host_candidates(&cfg.rtc, dp.media_addr.port());
    info!(shards = cpus.len(), ?cpus, media = %dp.media_addr, ?candidates, "dataplane up");
    let hub = Arc::new(Mutex::new(Hub::new(dp, dtls, fingerprint, candidates, cfg.dataplane.allow_placement_hint, cfg.room.clone())));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sfud-control")
        .enable_all()
        .build()
        .context("starting the controlplane runtime")?;
    rt.block_on(async move {
        {
            let hub = hub.clone();
            tokio::spawn(async move {
                while let Ok(ev) = events.recv_async().await {
                    hub.lock().unwrap_or_else(|p| p.into_inner()).on_event(ev);
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
                    hub.lock().unwrap_or_else(|p| p.into_inner()).on_timer();
                }
            });
        }
        let listener = tokio::net::TcpListener::bind(cfg.http.listen)
            .await
            .with_context(|| format!("binding http.listen {}", cfg.http.listen))?;
        info!(url = %format!("http://{}/", cfg.http.listen), "HTTP signaling and demo page up");
        let app = router(AppState { hub, max_body: cfg.http.max_body_bytes });
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("HTTP server")?;
        info!("shutting down");
        Ok(())
    })
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
