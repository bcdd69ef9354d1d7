//! One delivery worker per URL: POSTs queued events in order, retrying with
//! exponential backoff. A slow or dead endpoint only delays its own queue.
//!
//! The client is hyper-util's pooled HTTP/1 client over plain TCP; `https`
//! URLs are refused at start (see `validate_url`), because TLS would need
//! hyper-rustls and a crypto provider the build does not carry yet.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use tokio::sync::mpsc;

use super::sign::sign_body;
use super::{Queued, QueuedRef, Shared};

pub(super) type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub(super) const CONTENT_TYPE_WEBHOOK: &str = "application/webhook+json";

/// Response bodies are read (so the connection can be reused) up to this.
const MAX_RESPONSE_BODY: usize = 64 * 1024;

pub(super) struct Worker {
    pub url: Uri,
    pub client: HttpClient,
    pub signer: Option<(String, String)>,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub shared: Arc<Shared>,
}

enum Outcome {
    Delivered,
    /// Worth another attempt: network error, timeout, 5xx, 429.
    Retry(String),
    /// Another attempt would get the same answer (other 4xx).
    Fatal(String),
}

impl Worker {
    pub async fn run(self, mut rx: mpsc::Receiver<QueuedRef>) {
        while let Some(ev) = rx.recv().await {
            self.deliver(&ev).await;
            self.shared.pending.fetch_sub(1, Ordering::AcqRel);
        }
        tracing::debug!(url = %self.url, "webhook worker stopped");
    }

    async fn deliver(&self, ev: &Queued) {
        let attempts = self.max_attempts.max(1);
        let mut backoff = self.backoff_base;
        for attempt in 1..=attempts {
            match self.post_once(&ev.body).await {
                Outcome::Delivered => {
                    self.shared.sent.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(url = %self.url, event = ev.kind, id = %ev.id, attempt, "webhook delivered");
                    return;
                }
                Outcome::Fatal(why) => {
                    self.shared.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(url = %self.url, event = ev.kind, id = %ev.id, %why, "webhook rejected; not retrying");
                    return;
                }
                Outcome::Retry(why) if attempt == attempts => {
                    self.shared.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(url = %self.url, event = ev.kind, id = %ev.id, attempts, %why, "webhook dropped after retries");
                    return;
                }
                Outcome::Retry(why) => {
                    self.shared.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(url = %self.url, event = ev.kind, id = %ev.id, attempt, %why, ?backoff, "webhook attempt failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.backoff_max);
                }
            }
        }
    }

    async fn post_once(&self, body: &Bytes) -> Outcome {
        let mut req = Request::post(self.url.clone()).header(CONTENT_TYPE, CONTENT_TYPE_WEBHOOK);
        if let Some((key, secret)) = &self.signer {
            // Signed per attempt so a retry late in the backoff still
            // carries a fresh expiry.
            if let Some(sig) = sign_body(body, key, secret) {
                req = req.header(AUTHORIZATION, sig);
            }
        }
        let req = match req.body(Full::new(body.clone())) {
            Ok(r) => r,
            Err(e) => return Outcome::Fatal(format!("building request: {e}")),
        };
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            // Drain a bounded body so the pooled connection stays usable;
            // a body error does not change the verdict.
            let _ = Limited::new(resp.into_body(), MAX_RESPONSE_BODY)
                .collect()
                .await;
            Ok::<StatusCode, String>(status)
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Outcome::Retry(format!("no response within {:?}", self.timeout)),
            Ok(Err(e)) => Outcome::Retry(e),
            Ok(Ok(s)) if s.is_success() => Outcome::Delivered,
            Ok(Ok(s))
                if s.is_server_error()
                    || s == StatusCode::TOO_MANY_REQUESTS
                    || s == StatusCode::REQUEST_TIMEOUT =>
            {
                Outcome::Retry(format!("HTTP {s}"))
            }
            Ok(Ok(s)) => Outcome::Fatal(format!("HTTP {s}")),
        }
    }
}
