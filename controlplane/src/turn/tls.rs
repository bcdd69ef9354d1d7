//! TURN over TLS (RFC 8656 §3.1): the TCP framing inside an openssl
//! session, driven by tokio-openssl (sfackler's async wrapper of the
//! `openssl` crate sfud already uses, on the system libssl).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openssl::ssl::{Ssl, SslAcceptor, SslFiletype, SslMethod};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_openssl::SslStream;

use super::allocation::{ClientKey, Transport};
use super::tcp::{serve_stream, MAX_CONNECTIONS};
use super::relay::Shared;
use super::TurnError;
use crate::config::TurnConfig;

/// A handshake that has not finished by then is abandoned, so idle
/// half-open connections do not pin a connection slot.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn acceptor(cfg: &TurnConfig) -> Result<SslAcceptor, TurnError> {
    let (Some(cert), Some(key)) = (&cfg.tls_cert_file, &cfg.tls_key_file) else {
        return Err(TurnError::Tls("tls_port needs tls_cert_file and tls_key_file".into()));
    };
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_certificate_chain_file(cert)
        .map_err(|e| TurnError::Tls(format!("certificate {}: {e}", cert.display())))?;
    b.set_private_key_file(key, SslFiletype::PEM)
        .map_err(|e| TurnError::Tls(format!("private key {}: {e}", key.display())))?;
    b.check_private_key().map_err(|e| TurnError::Tls(format!("key does not match certificate: {e}")))?;
    Ok(b.build())
}

pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    acceptor: SslAcceptor,
    stop: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let acceptor = Arc::new(acceptor);
    let stopping = super::stopped(stop.clone());
    tokio::pin!(stopping);
    loop {
        let (tcp, from) = tokio::select! {
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "turn: tls accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stopping => return,
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%from, "turn: too many tls connections, closing");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (shared, acceptor, stop) = (shared.clone(), acceptor.clone(), stop.clone());
        tokio::spawn(async move {
            let stream = match Ssl::new(acceptor.context()).and_then(|ssl| SslStream::new(ssl, tcp)) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "turn: tls session setup failed");
                    return;
                }
            };
            let mut stream = stream;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, Pin::new(&mut stream).accept()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(%from, error = %e, "turn: tls handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%from, "turn: tls handshake timed out");
                    return;
                }
            }
            serve_stream(shared, stream, ClientKey { transport: Transport::Tls, addr: from }, stop).await;
            drop(permit);
        });
    }
}
