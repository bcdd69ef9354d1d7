//! State shared by the I/O tasks, and the relay sockets: one UDP socket per
//! allocation, each read by its own task that feeds the core.
//!
//! The core sits behind a std `Mutex` held only for the synchronous
//! `handle_*` call, never across an await.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::allocation::{ClientKey, Transport};
use super::framing::MAX_FRAME;
use super::server::{RelayPorts, Server};

/// Output buffers hold the largest frame plus a Data indication's overhead.
pub(crate) const OUT_BUF: usize = MAX_FRAME + 64;

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub(crate) struct Shared {
    core: Mutex<Server<TokioPorts>>,
    udp: Option<Arc<UdpSocket>>,
    /// Writers of TCP/TLS connections, by client.
    streams: Mutex<HashMap<ClientKey, mpsc::Sender<Vec<u8>>>>,
}

impl Shared {
    pub(crate) fn new(core: Server<TokioPorts>, udp: Option<Arc<UdpSocket>>) -> Arc<Self> {
        let shared = Arc::new(Self { core: Mutex::new(core), udp, streams: Mutex::new(HashMap::new()) });
        shared.lock().ports_mut().shared = Arc::downgrade(&shared);
        shared
    }

    /// A panic while holding the lock leaves the state as consistent as any
    /// single step leaves it, so poisoning is ignored rather than spread.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Server<TokioPorts>> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn register_stream(&self, key: ClientKey, tx: mpsc::Sender<Vec<u8>>) {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).insert(key, tx);
    }

    pub(crate) fn unregister_stream(&self, key: &ClientKey) {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        self.lock().client_closed(key);
    }

    /// Sends to a client on its transport. Stream clients get a copy queued
    /// to their writer task; a full queue (slow reader) drops the packet,
    /// as UDP would, rather than stalling the relay.
    pub(crate) async fn send_to_client(&self, client: ClientKey, data: &[u8]) {
        match client.transport {
            Transport::Udp => {
                if let Some(s) = &self.udp {
                    if let Err(e) = s.send_to(data, client.addr).await {
                        tracing::debug!(client = %client.addr, error = %e, "turn: udp send failed");
                    }
                }
            }
            Transport::Tcp | Transport::Tls => {
                let tx = self.streams.lock().unwrap_or_else(|e| e.into_inner()).get(&client).cloned();
                if let Some(tx) = tx {
                    let _ = tx.try_send(data.to_vec());
                }
            }
        }
    }

    /// Sends `data` out of relay socket `relay` to `peer`.
    pub(crate) async fn send_to_peer(&self, relay: SocketAddr, peer: SocketAddr, data: &[u8]) {
        let sock = self.lock().ports().socket(relay);
        if let Some(sock) = sock {
            if let Err(e) = sock.send_to(data, peer).await {
                tracing::debug!(%relay, %peer, error = %e, "turn: relay send failed");
            }
        }
    }

    pub(crate) fn close_all(&self) {
        self.lock().close_all();
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Binds relay sockets for the core and runs one receive task per socket.
#[derive(Default)]
pub(crate) struct TokioPorts {
    shared: Weak<Shared>,
    sockets: HashMap<SocketAddr, (Arc<UdpSocket>, JoinHandle<()>)>,
}

impl TokioPorts {
    pub(crate) fn socket(&self, addr: SocketAddr) -> Option<Arc<UdpSocket>> {
        self.sockets.get(&addr).map(|(s, _)| s.clone())
    }
}

impl RelayPorts for TokioPorts {
    fn open(&mut self, addr: SocketAddr) -> bool {
        // A std bind is a non-blocking syscall, so it is fine under the lock.
        let sock = match std::net::UdpSocket::bind(addr) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%addr, error = %e, "turn: relay port unavailable");
                return false;
            }
        };
        let sock = match sock.set_nonblocking(true).and_then(|()| UdpSocket::from_std(sock)) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::warn!(%addr, error = %e, "turn: relay socket setup failed");
                return false;
            }
        };
        let task = tokio::spawn(relay_loop(self.shared.clone(), addr, sock.clone()));
        self.sockets.insert(addr, (sock, task));
        true
    }

    fn close(&mut self, addr: SocketAddr) {
        if let Some((_, task)) = self.sockets.remove(&addr) {
            task.abort();
        }
    }
}

impl Drop for TokioPorts {
    fn drop(&mut self) {
        for (_, (_, task)) in self.sockets.drain() {
            task.abort();
        }
    }
}

async fn relay_loop(shared: Weak<Shared>, relay: SocketAddr, sock: Arc<UdpSocket>) {
    let mut buf = vec![0u8; MAX_FRAME];
    let mut out = vec![0u8; OUT_BUF];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            // ICMP errors from earlier sends surface here on Linux; the
            // socket is still fine.
            Err(_) => {
                tokio::task::yield_now().await;
                continue;
            }
        };
        let Some(shared) = shared.upgrade() else { return };
        let Some(data) = buf.get(..n) else { continue };
        let res = shared.lock().handle_peer(now_ms(), relay, peer, data, &mut out);
        if let Some((client, len)) = res {
            if let Some(msg) = out.get(..len) {
                shared.send_to_client(client, msg).await;
            }
        }
    }
}
