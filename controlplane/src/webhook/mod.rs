//! Webhooks: room, participant and track events POSTed as signed JSON to
//! the configured URLs.
//!
//! `notify` is synchronous and never waits: it serialises the event and
//! offers it to each URL's bounded queue; a full queue drops the event for
//! that URL and counts it. Each URL has its own tokio task delivering in
//! order with retries, so one dead endpoint neither blocks the controlplane
//! nor delays the other endpoints.
//!
//! Counters are per delivery (event x URL).
//!
//! - `event.rs`: the payload; `sign.rs`: LiveKit-style signatures;
//!   `deliver.rs`: the HTTP worker and retry policy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;

use crate::config::WebhookConfig;

mod deliver;
mod event;
mod sign;

pub use event::{EventKind, ParticipantInfo, RoomInfo, TrackInfo, WebhookEvent};
pub use sign::{sign_body, verify_signature, SIGNATURE_TTL};

/// Events waiting per URL before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 10_000;
/// First retry delay; doubles each attempt up to `BACKOFF_MAX`.
pub const BACKOFF_BASE: Duration = Duration::from_millis(500);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook URL {url:?}: {reason}")]
    BadUrl { url: String, reason: &'static str },
}

/// Checks one configured URL. For config validation as well as `start`.
pub fn validate_url(url: &str) -> Result<Uri, WebhookError> {
    let bad = |reason| WebhookError::BadUrl {
        url: url.to_string(),
        reason,
    };
    let uri: Uri = url.parse().map_err(|_| bad("not a valid URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(bad(
                "https is not supported by this build (TLS client not compiled in); use http",
            ))
        }
        _ => return Err(bad("scheme must be http")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(uri)
}

/// Delivery counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookStats {
    /// Accepted by the endpoint (2xx).
    pub sent: u64,
    /// Given up on: attempts exhausted or a non-retryable answer.
    pub failed: u64,
    /// Never attempted: the URL's queue was full (or shutting down).
    pub dropped: u64,
    /// Attempts beyond the first.
    pub retries: u64,
}

/// One serialised event, shared by every URL's queue.
struct Queued {
    kind: &'static str,
    id: String,
    body: Bytes,
}

type QueuedRef = Arc<Queued>;

#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    retries: AtomicU64,
    /// Deliveries queued or in flight, for `flush`.
    pending: AtomicU64,
}

/// Knobs tests shorten; production uses `Tuning::default()`.
#[derive(Debug, Clone, Copy)]
struct Tuning {
    queue_capacity: usize,
    backoff_base: Duration,
    backoff_max: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            queue_capacity: QUEUE_CAPACITY,
            backoff_base: BACKOFF_BASE,
            backoff_max: BACKOFF_MAX,
        }
    }
}

/// Handle to the delivery tasks. Cheap to clone; the tasks finish their
/// queues and stop when the last handle is dropped.
#[derive(Clone, Default)]
pub struct Webhooks {
    queues: Arc<Vec<mpsc::Sender<QueuedRef>>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("urls", &self.queues.len())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Webhooks {
    /// Spawns one delivery task per valid URL on the current tokio runtime.
    /// Invalid URLs are logged and skipped; with no URLs (or no runtime)
    /// the handle is a no-op. `signer` is `(api_key, secret)`; without it
    /// requests go unsigned, which receivers should refuse, so say so.
    pub fn start(cfg: &WebhookConfig, signer: Option<(String, String)>) -> Self {
        Self::start_tuned(cfg, signer, Tuning::default())
    }

    fn start_tuned(cfg: &WebhookConfig, signer: Option<(String, String)>, tuning: Tuning) -> Self {
        let shared = Arc::new(Shared::default());
        if cfg.urls.is_empty() {
            return Self {
                queues: Arc::new(Vec::new()),
                shared,
            };
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::error!("webhooks not started: no tokio runtime");
            return Self {
                queues: Arc::new(Vec::new()),
                shared,
            };
        };
        if signer.is_none() {
            tracing::warn!("webhooks are sent unsigned: no [auth] key to sign them with");
        }
        let client = Client::builder(TokioExecutor::new()).build_http();
        let mut queues = Vec::with_capacity(cfg.urls.len());
        for url in &cfg.urls {
            let uri = match validate_url(url) {
                Ok(u) => u,
                Err(e) => {
                    tracing::error!("{e}; this URL gets no webhooks");
                    continue;
                }
            };
            let (tx, rx) = mpsc::channel(tuning.queue_capacity.max(1));
            let worker = deliver::Worker {
                url: uri,
                client: client.clone(),
                signer: signer.clone(),
                timeout: Duration::from_millis(cfg.timeout_ms.max(1)),
                max_attempts: cfg.max_attempts,
                backoff_base: tuning.backoff_base,
                backoff_max: tuning.backoff_max,
                shared: shared.clone(),
            };
            rt.spawn(worker.run(rx));
            queues.push(tx);
        }
        Self {
            queues: Arc::new(queues),
            shared,
        }
    }

    /// Queues `ev` for every URL. Never blocks and never fails: a full
    /// queue drops the event for that URL and counts it.
    pub fn notify(&self, ev: WebhookEvent) {
        if self.queues.is_empty() {
            return;
        }
        let body = match serde_json::to_vec(&ev) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                tracing::error!(
                    event = ev.event.as_str(),
                    "webhook event does not serialise: {e}"
                );
                return;
            }
        };
        let queued = Arc::new(Queued {
            kind: ev.event.as_str(),
            id: ev.id,
            body,
        });
        for tx in self.queues.iter() {
            // Counted before the send so a fast worker's decrement cannot
            // run first and wrap the counter.
            self.shared.pending.fetch_add(1, Ordering::AcqRel);
            if tx.try_send(queued.clone()).is_err() {
                self.shared.pending.fetch_sub(1, Ordering::AcqRel);
                let n = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // The first drop and then every 1000th: a stuck endpoint
                // must not turn into a log flood.
                if n == 1 || n % 1000 == 0 {
                    tracing::warn!(
                        event = queued.kind,
                        dropped_total = n,
                        "webhook queue full; event dropped"
                    );
                }
            }
        }
    }

    pub fn stats(&self) -> WebhookStats {
        WebhookStats {
            sent: self.shared.sent.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            retries: self.shared.retries.load(Ordering::Relaxed),
        }
    }

    /// Deliveries queued or in flight.
    pub fn pending(&self) -> u64 {
        self.shared.pending.load(Ordering::Acquire)
    }

    /// Waits until every queued delivery finished (sent or given up), or
    /// `timeout` passed. For a drain: the last room_finished and
    /// participant_left events go out before exit. True if all finished.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.pending() == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests;
