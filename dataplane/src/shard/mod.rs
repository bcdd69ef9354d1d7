//! Shards: one pinned glommio executor per selected core, each with its own
//! SO_REUSEPORT socket on the media port (and, with ICE-TCP, its own
//! SO_REUSEPORT listener on the TCP media port). This file is the thin I/O
//! loop; the protocol work is in `core`, ICE-TCP connections in `tcp`.

mod allocation;
mod demand;
pub mod core;
pub mod framing;
mod media;
pub mod outbox;
pub mod peer;
pub mod registry;
pub mod session;
pub mod session_table;
pub mod socket;
pub mod tcp;
#[cfg(test)]
mod tcp_tests;
#[cfg(test)]
mod simulcast_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod claim_tests;
#[cfg(test)]
mod forward_tests;
#[cfg(test)]
mod repair_tests;
#[cfg(test)]
mod audio_level_tests;
#[cfg(test)]
mod content_type_tests;
#[cfg(test)]
mod panic_tests;

use std::any::Any;
use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use glommio::channels::channel_mesh::{MeshBuilder, Senders};
use glommio::{LocalExecutorBuilder, Placement};
use thiserror::Error;
use tracing::{error, info, warn};

use crate::msg::{Command, Event};
use crate::stats::DropReason;
use self::core::ShardCore;
use self::outbox::Outbox;
use self::peer::PeerMsg;
use self::socket::{RecvBatch, SendBatch};

/// Capacity of each shard-to-shard channel, in messages (batches, not packets).
const MESH_CAPACITY: usize = 1024;
/// Flush the send queue mid-batch past this many datagrams, bounding memory.
const FLUSH_THRESHOLD: usize = 1024;
/// Timer resolution for reports, keyframe retries and consent checks.
const TICK: Duration = Duration::from_millis(50);
/// Shortest timer sleep: deadlines closer than this are served together.
const MIN_WAIT: Duration = Duration::from_millis(2);

#[derive(Clone, Debug)]
pub struct DataplaneConfig {
    pub media_addr: SocketAddr,
    /// CPU per shard; `None` = unpinned.
    pub cpus: Vec<Option<usize>>,
    pub io_memory: usize,
    pub recv_batch: usize,
    pub socket_buffer: usize,
    /// Spin on the socket instead of sleeping in io_uring when idle.
    pub busy_poll: bool,
    /// Honour test-only commands (`Command::TestPanic`).
    pub test_hooks: bool,
    /// ICE-TCP connection cap and first-frame timeout.
    pub tcp_limits: tcp::TcpLimits,
}

#[derive(Debug, Error)]
pub enum DataplaneError {
    #[error("binding the media socket {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("listening on the ICE-TCP port {addr}: {source}")]
    BindTcp { addr: SocketAddr, source: io::Error },
    #[error("starting shard executor: {0}")]
    Spawn(String),
}

/// The controlplane's handle: a command channel per shard and one event stream.
pub struct Dataplane {
    pub commands: Vec<flume::Sender<Command>>,
    pub events: flume::Receiver<Event>,
    pub media_addr: SocketAddr,
    /// The ICE-TCP listeners' address (port resolved), when enabled.
    pub tcp_addr: Option<SocketAddr>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Dataplane {
    pub fn shards(&self) -> usize {
        self.commands.len()
    }

    /// Send to one shard. Commands are never dropped: the channel is unbounded
    /// because they are rare (per session, not per packet).
    pub fn send(&self, shard: usize, cmd: Command) {
        if let Some(tx) = self.commands.get(shard) {
            let _ = tx.send(cmd);
        }
    }

    /// Send a command to every shard (registry replication).
    pub fn broadcast(&self, mut make: impl FnMut() -> Command) {
        for tx in &self.commands {
            let _ = tx.send(make());
        }
    }

    pub fn join(self) {
        drop(self.commands);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Binds every shard's socket (so a port conflict fails start-up, not a
/// thread) and starts the executors. UDP only; see `start_with_tcp`.
pub fn start(cfg: DataplaneConfig) -> Result<Dataplane, DataplaneError> {
    start_with_tcp(cfg, None)
}

/// As `start`, plus ICE-TCP (RFC 6544 passive, RFC 4571 framing): every
/// shard listens on `tcp_addr` with SO_REUSEPORT. Port 0 picks one port for
/// all shards (see `Dataplane::tcp_addr`).
pub fn start_with_tcp(cfg: DataplaneConfig, tcp_addr: Option<SocketAddr>) -> Result<Dataplane, DataplaneError> {
    let n = cfg.cpus.len().max(1);
    let mut sockets = Vec::with_capacity(n);
    let mut media_addr = cfg.media_addr;
    for _ in 0..n {
        let fd = socket::bind_media_socket(media_addr, cfg.socket_buffer)
            .map_err(|source| DataplaneError::Bind { addr: media_addr, source })?;
        // With port 0 the first bind picks the port and the rest join it.
        media_addr = socket::local_addr(&fd).map_err(|source| DataplaneError::Bind { addr: media_addr, source })?;
        sockets.push(fd);
    }
    let mut listeners: Vec<Option<OwnedFd>> = (0..n).map(|_| None).collect();
    let mut bound_tcp = tcp_addr;
    if let Some(mut addr) = tcp_addr {
        for l in listeners.iter_mut() {
            let fd = tcp::bind_listener(addr).map_err(|source| DataplaneError::BindTcp { addr, source })?;
            addr = socket::local_addr(&fd).map_err(|source| DataplaneError::BindTcp { addr, source })?;
            *l = Some(fd);
        }
        bound_tcp = Some(addr);
    }
    let (event_tx, event_rx) = flume::unbounded();
    let mut cmd_txs = Vec::with_capacity(n);
    let mut cmd_rxs = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = flume::unbounded();
        cmd_txs.push(tx);
        cmd_rxs.push(Some(rx));
    }
    // Shard ids are mesh peer ids (known only after joining), so each executor
    // picks up its command receiver by that id.
    let cmd_rxs = Arc::new(Mutex::new(cmd_rxs));
    let mesh = MeshBuilder::<PeerMsg, _>::full(n, MESH_CAPACITY);
    let mut threads = Vec::with_capacity(n);
    for (i, (fd, listener)) in sockets.into_iter().zip(listeners).enumerate() {
        let placement = match cfg.cpus.get(i).copied().flatten() {
            Some(cpu) => Placement::Fixed(cpu),
            None => Placement::Unbound,
        };
        let mesh = mesh.clone();
        let cmd_rxs = cmd_rxs.clone();
        let events = event_tx.clone();
        let io_memory = cfg.io_memory;
        let recv_batch = cfg.recv_batch;
        let busy_poll = cfg.busy_poll;
        let test_hooks = cfg.test_hooks;
        let tcp_limits = cfg.tcp_limits;
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("sfud-shard-{i}"))
            .io_memory(io_memory)
            .spawn(move || async move {
                if let Err(e) = run_shard(fd, listener, n, mesh, cmd_rxs, events, recv_batch, busy_poll, test_hooks, tcp_limits).await {
                    error!(error = %e, "shard stopped");
                }
            })
            .map_err(|e| DataplaneError::Spawn(e.to_string()))?;
        threads.push(std::thread::spawn(move || {
            let _ = handle.join();
        }));
    }
    Ok(Dataplane { commands: cmd_txs, events: event_rx, media_addr, tcp_addr: bound_tcp, threads })
}

struct ShardIo {
    id: usize,
    core: RefCell<ShardCore>,
    out: RefCell<Outbox>,
    send: RefCell<SendBatch>,
    socket: glommio::net::UdpSocket,
    mesh: Senders<PeerMsg>,
    events: flume::Sender<Event>,
    tcp: tcp::Conns,
}

impl ShardIo {
    /// Moves everything the core produced to the wire, the mesh and the
    /// controlplane. Called after each batch of input.
    fn flush(&self) {
        let mut out = self.out.borrow_mut();
        if out.has_tcp() || !out.tcp_close.is_empty() {
            self.tcp.flush(&mut out, &mut self.core.borrow_mut().stats);
        }
        if !out.is_empty() {
            let res = self.send.borrow_mut().flush(&self.socket, &mut out);
            let mut core = self.core.borrow_mut();
            core.stats.packets_out += res.sent as u64;
            core.stats.bytes_out += res.bytes as u64;
            core.stats.send_batches += res.syscalls as u64;
            if res.syscalls > 0 {
                core.stats.send_batch(res.sent);
            }
            for _ in 0..res.dropped {
                core.stats.drop(DropReason::QueueFull);
            }
        }
        if out.has_messages() {
            let mut core = self.core.borrow_mut();
            for shard in 0..out.media.len() {
                if let Some(batch) = out.media[shard].take() {
                    core.stats.peer_batches_out += 1;
                    if self.mesh.try_send_to(shard, PeerMsg::Media(batch)).is_err() {
                        core.stats.drop(DropReason::QueueFull);
                    }
                }
            }
            for (shard, msg) in out.peer.drain(..) {
                if self.mesh.try_send_to(shard, msg).is_err() {
                    core.stats.drop(DropReason::QueueFull);
                }
            }
        }
        for ev in out.events.drain(..) {
            let _ = self.events.send(ev);
        }
    }

    /// Flushes mid-batch once the send queue passes `FLUSH_THRESHOLD`,
    /// bounding memory under a large fan-out; the caller keeps its borrows.
    fn relieve<'a>(
        &'a self,
        core: std::cell::RefMut<'a, ShardCore>,
        out: std::cell::RefMut<'a, Outbox>,
    ) -> (std::cell::RefMut<'a, ShardCore>, std::cell::RefMut<'a, Outbox>) {
        if out.len() < FLUSH_THRESHOLD {
            return (core, out);
        }
        drop(out);
        drop(core);
        self.flush();
        (self.core.borrow_mut(), self.out.borrow_mut())
    }

    fn with_core(&self, f: impl FnOnce(&mut ShardCore, &mut Outbox)) {
        let started = Instant::now();
        self.guard(|| {
            let mut core = self.core.borrow_mut();
            let mut out = self.out.borrow_mut();
            f(&mut core, &mut out);
        });
        self.flush();
        self.core.borrow_mut().stats.busy_ns += started.elapsed().as_nanos() as u64;
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_shard(
    fd: OwnedFd,
    listener: Option<OwnedFd>,
    nshards: usize,
    mesh: MeshBuilder<PeerMsg, glommio::channels::channel_mesh::Full>,
    cmd_rxs: Arc<Mutex<Vec<Option<flume::Receiver<Command>>>>>,
    events: flume::Sender<Event>,
    recv_batch: usize,
    busy_poll: bool,
    test_hooks: bool,
    tcp_limits: tcp::TcpLimits,
) -> io::Result<()> {
    let (senders, mut receivers) = mesh
        .join()
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::Other, "channel mesh join failed"))?;
    let id = senders.peer_id();
    let cmd_rx = cmd_rxs
        .lock()
        .ok()
        .and_then(|mut v| v.get_mut(id).and_then(Option::take))
        .ok_or_else(|| io::Error::new(io::ErrorKind::Other, "no command channel for shard"))?;
    let raw = fd.into_raw_fd();
    // SAFETY: we own this fd and hand it to glommio, which closes it on drop.
    let socket = unsafe { <glommio::net::UdpSocket as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    info!(shard = id, "shard started");
    let mut core = ShardCore::new(id);
    core.test_hooks = test_hooks;
    let io = Rc::new(ShardIo {
        id,
        core: RefCell::new(core),
        out: RefCell::new(Outbox::new(nshards)),
        send: RefCell::new(SendBatch::default()),
        socket,
        mesh: senders,
        events,
        tcp: tcp::Conns::new(tcp_limits),
    });
    if let Some(listener) = listener {
        // SAFETY: we own this listening socket and hand it to glommio.
        let listener = unsafe { glommio::net::TcpListener::from_raw_fd(listener.into_raw_fd()) };
        glommio::spawn_local(tcp::accept_loop(io.clone(), listener)).detach();
    }

    // Commands from the controlplane.
    {
        let io = io.clone();
        glommio::spawn_local(async move {
            while let Ok(cmd) = cmd_rx.recv_async().await {
                let now = Instant::now();
                io.with_core(|core, out| core.handle_command(cmd, now, out));
            }
        })
        .detach();
    }
    // Batches and control from the other shards.
    for (peer, rx) in receivers.streams() {
        let io = io.clone();
        glommio::spawn_local(async move {
            while let Some(msg) = rx.recv().await {
                let now = Instant::now();
                match msg {
                    // Sockets belong to the I/O loop, not the core.
                    PeerMsg::TcpHandover(h) => tcp::adopt(&io, h),
                    msg => io.with_core(|core, out| core.handle_peer(peer, msg, now, out)),
                }
            }
        })
        .detach();
    }
    // Timers the core reports: NACK retries, merged PLIs, congestion
    // feedback, reports, consent. TICK bounds the sleep, since work that
    // arrives meanwhile can bring the deadline forward.
    {
        let io = io.clone();
        glommio::spawn_local(async move {
            loop {
                let now = Instant::now();
                let next = io.core.borrow().poll_timeout().unwrap_or(now + TICK);
                let wait = next.saturating_duration_since(now).clamp(MIN_WAIT, TICK);
                glommio::timer::sleep(wait).await;
                let now = Instant::now();
                io.with_core(|core, out| core.tick(now, out));
            }
        })
        .detach();
    }

    // The receive loop: drain with recvmmsg, then wait in io_uring for more.
    let mut batch = RecvBatch::new(recv_batch);
    let mut peek = [0u8; 1];
    loop {
        let n = match batch.recv(raw) {
            Ok(n) => n,
            Err(e) => {
                warn!(shard = id, error = %e, "recvmmsg failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if n == 0 && busy_poll {
            // Lowest latency at the price of a full core: poll again after
            // letting the other tasks run.
            glommio::executor().yield_now().await;
            continue;
        }
        if n == 0 {
            // Wakes when a datagram is queued, without consuming it.
            if let Err(e) = io.socket.peek_from(&mut peek).await {
                warn!(shard = id, error = %e, "waiting for the media socket failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
            continue;
        }
        let started = Instant::now();
        io.guard(|| {
            let mut core = io.core.borrow_mut();
            let mut out = io.out.borrow_mut();
            for i in 0..n {
                match batch.get(i) {
                    Some((src, data)) => core.handle_datagram(src, data, started, &mut out),
                    None => core.stats.drop(DropReason::Malformed),
                }
                (core, out) = io.relieve(core, out);
            }
        });
        io.flush();
        io.core.borrow_mut().stats.busy_ns += started.elapsed().as_nanos() as u64;
        // Deadlines that fell due while receiving (a NACK to send) are not
        // left for the timer task.
        let due = io.core.borrow().poll_timeout().is_some_and(|t| t <= started);
        if due {
            io.with_core(|core, out| core.tick(started, out));
        }
        // Let commands, peer batches and the timer in between receive batches.
        glommio::executor().yield_now().await;
    }
}

impl ShardIo {
    /// Runs `f`, which works on the core; a panic inside it is contained.
    ///
    /// Why restart in place rather than exit for systemd: one shard's bug
    /// (one hostile packet, one bad session) would otherwise end every
    /// session on every shard, and a restart takes seconds. The shard's
    /// thread, sockets and mesh channels carry no per-session state and
    /// stay; only the core, whose state a panic may have left half-updated,
    /// is replaced, so only this shard's sessions are lost.
    fn guard(&self, f: impl FnOnce()) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
            self.recover(payload.as_ref());
        }
    }

    /// Resets the core after a panic: counted, logged, and the sessions it
    /// owned are reported to the controlplane, which ends them.
    fn recover(&self, payload: &(dyn Any + Send)) {
        let reason = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        // Unwinding dropped the borrows taken inside `guard`. If one is
        // still held, this shard cannot be trusted to carry on at all: let
        // the process exit and systemd restart it.
        let (Ok(mut core), Ok(mut out)) = (self.core.try_borrow_mut(), self.out.try_borrow_mut()) else {
            error!(shard = self.id, panic = %reason, "shard panicked with its state still borrowed; aborting");
            std::process::abort();
        };
        let lost = core.recover();
        *out = Outbox::new(out.media.len());
        error!(
            shard = self.id,
            panic = %reason,
            lost_sessions = lost.len(),
            panics = core.stats.panics,
            "shard panicked: core reset, its sessions end"
        );
        let _ = self.events.send(Event::ShardFailed { shard: self.id, sessions: lost });
    }
}

impl AsRawFd for ShardIo {
    fn as_raw_fd(&self) -> i32 {
        self.socket.as_raw_fd()
    }
}
