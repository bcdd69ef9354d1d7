//! Prometheus metrics through the `metrics` facade and
//! `metrics-exporter-prometheus` (built without its HTTP listener and push
//! gateway, which would pull a TLS stack): the recorder is installed here
//! and `/metrics` is served by our own axum router on `[metrics] listen`.
//!
//! The dataplane never touches a shared counter: each shard keeps plain
//! integers and ships a cumulative `ShardStats` snapshot about once a
//! second; `record_shard_stats` turns it into absolute counter values.
//! Two families the facade cannot express (a float counter of busy seconds
//! and a histogram given as bucket counts) are kept in `shard.rs` and
//! appended to the exporter's text by `render`.
//!
//! - `shard.rs`: per-shard figures from `ShardStats`;
//! - `names.rs`: every metric name with its help text.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use ::metrics::{counter, gauge};
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

mod names;
mod shard;

pub use names::*;
pub use shard::{
    record_send_batch_sizes, record_shard_retransmissions, record_shard_stats, send_batch_bucket,
    SEND_BATCH_BOUNDS, SEND_BATCH_BUCKETS,
};

/// Prometheus text exposition format 0.0.4.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot install the Prometheus recorder: {0}")]
    Install(#[from] metrics_exporter_prometheus::BuildError),
}

/// Set once a recorder of ours is installed, so the recording helpers skip
/// their bookkeeping when metrics are disabled.
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// The one handle per process: `metrics` has a single global recorder.
static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

fn installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

#[derive(Clone, Debug)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// Installs the global recorder. Idempotent: a second call returns the
    /// same handle (tests and reloads call it more than once).
    pub fn install() -> Result<Self, MetricsError> {
        let mut slot = HANDLE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = slot.as_ref() {
            return Ok(Self { handle: h.clone() });
        }
        let handle = PrometheusBuilder::new().install_recorder()?;
        names::describe_all();
        // Present from the first scrape, so rate() has a starting point.
        counter!(DTLS_HANDSHAKES, "result" => "ok").increment(0);
        counter!(DTLS_HANDSHAKES, "result" => "failed").increment(0);
        counter!(DTLS_DATAGRAMS_DROPPED).increment(0);
        gauge!(ROOMS).set(0.0);
        gauge!(PARTICIPANTS).set(0.0);
        *slot = Some(handle.clone());
        INSTALLED.store(true, Ordering::Relaxed);
        Ok(Self { handle })
    }

    /// The whole exposition: the recorder's families, then ours.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        let mut out = self.handle.render();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        shard::render_custom(&mut out);
        out
    }

    /// `GET /metrics`, for the lead to serve on `[metrics] listen`.
    pub fn router(&self) -> Router {
        let m = self.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let m = m.clone();
                async move { ([(CONTENT_TYPE, CONTENT_TYPE_TEXT)], m.render()) }
            }),
        )
    }
}

/// One signaling request answered. `method` must come from a fixed set
/// chosen by the caller (e.g. `whip_offer`, `whep_offer`, `join`,
/// `admin_list_rooms`), never from request input: every distinct value is a
/// new time series.
pub fn record_request(method: &str, status: u16) {
    if !installed() {
        return;
    }
    counter!(SIGNALING_REQUESTS, "method" => method.to_string(), "status" => status.to_string())
        .increment(1);
}

/// A DTLS handshake finished, or failed (timeout, alert, bad fingerprint).
pub fn record_dtls_handshake(ok: bool) {
    if !installed() {
        return;
    }
    let result = if ok { "ok" } else { "failed" };
    counter!(DTLS_HANDSHAKES, "result" => result).increment(1);
}

/// A peer's DTLS datagram found its session's transport inbox full.
pub fn record_dtls_datagram_dropped() {
    if installed() {
        counter!(names::DTLS_DATAGRAMS_DROPPED).increment(1);
    }
}

/// A `[limits]` key refused something. `limit` is the key's name.
pub fn record_limit_refusal(limit: &'static str) {
    if installed() {
        counter!(names::LIMIT_REFUSALS, "limit" => limit).increment(1);
    }
}

/// A panic was caught in a long-lived controlplane task (`task`).
pub fn record_controlplane_panic(task: &'static str) {
    if installed() {
        counter!(names::CONTROLPLANE_PANICS, "task" => task).increment(1);
    }
}

/// A session was removed because it never connected.
pub fn record_session_reaped(reason: &'static str) {
    if installed() {
        counter!(names::SESSIONS_REAPED, "reason" => reason).increment(1);
    }
}

pub fn set_http_connections(n: usize) {
    if installed() {
        gauge!(names::HTTP_CONNECTIONS).set(n as f64);
    }
}

/// A connection closed for being too slow: "header" or "ws_idle".
pub fn record_http_timeout(kind: &'static str) {
    if installed() {
        counter!(names::HTTP_TIMEOUTS, "kind" => kind).increment(1);
    }
}

pub fn set_rooms(n: usize) {
    if installed() {
        gauge!(ROOMS).set(n as f64);
    }
}

/// The embedded TURN server's counters (cumulative snapshot).
pub fn record_turn_stats(t: &crate::turn::TurnStats) {
    if !installed() {
        return;
    }
    gauge!(names::TURN_ALLOCATIONS).set(t.allocations as f64);
    counter!(names::TURN_ALLOCATIONS_TOTAL).absolute(t.allocations_total);
    counter!(names::TURN_RELAYED_BYTES).absolute(t.relayed_bytes_total);
    counter!(names::TURN_RELAYED_PACKETS).absolute(t.relayed_packets_total);
    counter!(names::TURN_AUTH_FAILURES).absolute(t.auth_failures_total);
    counter!(names::TURN_REFUSED_PEERS).absolute(t.refused_peers_total);
    counter!(names::TURN_QUOTA_REJECTIONS).absolute(t.quota_rejections_total);
    counter!(names::TURN_RATE_LIMITED).absolute(t.rate_limited_packets_total);
}

/// The cluster registry's last refresh: whether Redis answered, and how
/// many live nodes it listed.
pub fn record_cluster(redis_up: bool, nodes: usize) {
    if installed() {
        gauge!(names::CLUSTER_REDIS_UP).set(if redis_up { 1.0 } else { 0.0 });
        if redis_up {
            gauge!(names::CLUSTER_NODES).set(nodes as f64);
        }
    }
}

/// The process's CPU use as the registry record reports it.
pub fn set_process_cpu(percent: f32) {
    if installed() {
        gauge!(names::PROCESS_CPU_PERCENT).set(f64::from(percent));
    }
}

/// A first join of a room this node does not host: `result` is one of
/// local, redirect, relay, unavailable, no_node.
pub fn record_placement(result: &'static str) {
    if installed() {
        counter!(names::CLUSTER_PLACEMENTS, "result" => result).increment(1);
    }
}

/// A relayed JSON-RPC message: `direction` out or in, or dropped.
pub fn record_relayed(direction: &'static str) {
    if installed() {
        counter!(names::CLUSTER_RELAYED, "direction" => direction).increment(1);
    }
}

pub fn set_participants(n: usize) {
    if installed() {
        gauge!(PARTICIPANTS).set(n as f64);
    }
}

#[cfg(test)]
mod tests;
