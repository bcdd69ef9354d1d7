//! The HTTP accept loop. axum's own `serve` has no connection cap and no
//! header-read timeout, so a client could hold thousands of sockets open by
//! sending a request head one byte a minute (slowloris). Here:
//! - at most `limits.http_max_connections` connections are served at once;
//!   past it a new one gets a short 503 and is closed;
//! - hyper drops a connection whose request head is not complete within
//!   `limits.http_header_timeout_secs`;
//! - each request carries `ConnectInfo` (the peer address) for the
//!   per-address limits.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;
use tracing::{debug, warn};

#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// What an over-limit client reads before the close.
const BUSY_BODY: &str = "sfud has too many HTTP connections (limits.http_max_connections); retry later\n";

/// Serves `app` until `stop` turns true; then asks live connections to
/// finish and returns without waiting for them.
pub async fn serve(listener: TcpListener, app: Router, limits: ServeLimits, mut stop: watch::Receiver<bool>) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(error = %e, "http: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        if open.load(Ordering::Relaxed) >= limits.max_connections {
            crate::metrics::record_limit_refusal("http_max_connections");
            tokio::spawn(refuse(stream));
            continue;
        }
        let n = open.fetch_add(1, Ordering::Relaxed) + 1;
        crate::metrics::set_http_connections(n);
        let slot = ConnSlot { _held: Arc::new(OpenGuard(open.clone())) };
        let app = app.clone();
        let stop = stop.clone();
        tokio::spawn(serve_one(stream, peer, app, limits, stop, slot));
    }
}

struct OpenGuard(Arc<AtomicUsize>);

/// One counted connection slot. Every request carries a clone, so an
/// upgraded WebSocket, which outlives hyper's connection, keeps holding
/// its slot until it closes.
#[derive(Clone)]
pub struct ConnSlot {
    _held: Arc<OpenGuard>,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let n = self.0.fetch_sub(1, Ordering::Relaxed) - 1;
        crate::metrics::set_http_connections(n);
    }
}

async fn refuse(mut stream: TcpStream) {
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\nretry-after: 5\r\ncontent-length: {}\r\n\r\n{BUSY_BODY}",
        BUSY_BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(head.as_bytes())).await;
    let _ = stream.shutdown().await;
}

async fn serve_one(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ServeLimits,
    mut stop: watch::Receiver<bool>,
    slot: ConnSlot,
) {
    let _ = stream.set_nodelay(true);
    let svc = app.map_request(move |mut req: axum::http::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(slot.clone());
        req.map(axum::body::Body::new)
    });
    let svc = TowerToHyperService::new(svc);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), svc).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => return finished(peer, r),
        _ = stop.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
    }
    let r = conn.await;
    finished(peer, r);
}

fn finished(peer: SocketAddr, r: Result<(), hyper::Error>) {
    if let Err(e) = r {
        if e.is_timeout() {
            crate::metrics::record_http_timeout("header");
            debug!(%peer, "http: request head not received in time; closed");
        } else {
            debug!(%peer, error = %e, "http: connection ended");
        }
    }
}
