//! TURN over TCP (and, through `serve_stream`, TLS): STUN messages and
//! padded ChannelData back to back on one stream (RFC 8656 §12.5).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

use super::allocation::{ClientKey, Transport};
use super::framing::{frame_len, MAX_FRAME};
use super::relay::{now_ms, Shared, OUT_BUF};
use super::server::ClientAction;

/// Concurrent TCP+TLS connections per listener; past it new ones are closed
/// at once, so a connection flood cannot exhaust memory (each holds ~200 KiB
/// of buffers).
pub(crate) const MAX_CONNECTIONS: usize = 2048;
/// Frames queued to a slow stream reader before further ones are dropped.
const WRITE_QUEUE: usize = 256;

pub(crate) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, stop: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let stopping = super::stopped(stop.clone());
    tokio::pin!(stopping);
    loop {
        let (stream, from) = tokio::select! {
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "turn: tcp accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stopping => return,
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%from, "turn: too many tcp connections, closing");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            serve_stream(shared, stream, ClientKey { transport: Transport::Tcp, addr: from }, stop).await;
            drop(permit);
        });
    }
}

/// Serves one framed connection until EOF, a framing error or shutdown;
/// the client's allocation is deleted when it ends.
pub(crate) async fn serve_stream<S>(shared: Arc<Shared>, stream: S, key: ClientKey, stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    shared.register_stream(key, tx.clone());
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    read_frames(&shared, &mut rd, key, &tx, stop).await;
    shared.unregister_stream(&key);
    drop(tx);
    // The writer drains what is queued, then ends when the last sender goes.
    let _ = writer.await;
    tracing::debug!(client = %key.addr, transport = ?key.transport, "turn: stream closed");
}

async fn read_frames<R: AsyncRead + Unpin>(
    shared: &Shared,
    rd: &mut R,
    key: ClientKey,
    tx: &mpsc::Sender<Vec<u8>>,
    stop: watch::Receiver<bool>,
) {
    // Room for one maximal frame plus a partial next one.
    let mut buf = vec![0u8; 2 * MAX_FRAME];
    let mut out = vec![0u8; OUT_BUF];
    let (mut start, mut end) = (0usize, 0usize);
    let stopping = super::stopped(stop);
    tokio::pin!(stopping);
    let idle = shared.lock().tcp_idle();
    loop {
        loop {
            let Some(pending) = buf.get(start..end) else { return };
            let n = match frame_len(pending) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(client = %key.addr, error = %e, "turn: closing stream");
                    return;
                }
            };
            let Some(frame) = buf.get(start..start + n) else { return };
            handle_frame(shared, key, frame, &mut out, tx).await;
            start += n;
        }
        if start == end {
            start = 0;
            end = 0;
        } else if buf.len() - end < MAX_FRAME {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let Some(space) = buf.get_mut(end..) else { return };
        let n = tokio::select! {
            r = tokio::time::timeout(idle, rd.read(space)) => match r {
                Ok(Ok(0) | Err(_)) => return,
                Ok(Ok(n)) => n,
                Err(_) => {
                    crate::metrics::record_limit_refusal("turn_tcp_idle_timeout_secs");
                    tracing::debug!(client = %key.addr, "turn: stream idle past limits.turn_tcp_idle_timeout_secs; closing");
                    return;
                }
            },
            () = &mut stopping => return,
        };
        end += n;
    }
}

async fn handle_frame(shared: &Shared, key: ClientKey, frame: &[u8], out: &mut [u8], tx: &mpsc::Sender<Vec<u8>>) {
    let action = shared.lock().handle_client(now_ms(), key, frame, out);
    match action {
        ClientAction::None => {}
        ClientAction::Reply(len) => {
            if let Some(msg) = out.get(..len) {
                let _ = tx.try_send(msg.to_vec());
            }
        }
        ClientAction::Relay { relay, peer, data } => shared.send_to_peer(relay, peer, data).await,
    }
}
