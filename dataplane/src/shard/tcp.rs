//! ICE-TCP on the media side (RFC 6544 passive candidates, RFC 4571
//! framing). Each shard listens on the TCP media port with SO_REUSEPORT, so
//! the kernel spreads connections over shards as it spreads UDP 5-tuples.
//! Frames go into the same core path as datagrams (`ShardCore::
//! handle_tcp_frame`); a connection whose session lives on another shard
//! is handed over whole (descriptor and bytes already read) through the
//! mesh. Sending goes through a bounded per-connection queue, flushed with
//! non-blocking sends: a slow reader loses its own packets (counted as
//! `tcp_queue_full`) and never blocks the shard.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tracing::{debug, info, warn};

use crate::msg::ShardId;
use crate::shard::core::TcpVerdict;
use crate::shard::framing::{FrameReader, SendQueue};
use crate::shard::outbox::{ConnId, Outbox};
use crate::shard::peer::{PeerMsg, TcpHandover};
use crate::shard::ShardIo;
use crate::stats::{DropReason, ShardStats};

/// Bytes queued per connection before packets are dropped: about a second
/// of a 2 Mbit/s stream, enough to ride out a congestion-window stall.
pub const SEND_QUEUE_BYTES: usize = 256 * 1024;
/// A connection moves at most this often; claims settle within one hop.
const MAX_HOPS: u8 = 2;
const LISTEN_BACKLOG: i32 = 1024;
/// Retry bounds for a connection whose socket buffer is full. glommio 0.9
/// offers write readiness only through the `AsyncWrite` trait of
/// `futures-lite`, which this crate does not depend on; a short backoff
/// timer costs nothing measurable and never spins.
const WRITE_RETRY_MIN: Duration = Duration::from_millis(1);
const WRITE_RETRY_MAX: Duration = Duration::from_millis(20);

/// Bounds on what unauthenticated TCP clients can hold on a shard.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Open connections per shard; past it a new one is closed at once.
    pub max_connections: usize,
    /// A connection that has not delivered one complete, accepted frame
    /// (its first STUN Binding) by then is closed: an idle socket costs a
    /// descriptor and a task, and proves nothing about its owner.
    pub first_frame_timeout: Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        Self { max_connections: 1024, first_frame_timeout: Duration::from_secs(10) }
    }
}

/// One SO_REUSEPORT listener per shard, all on the ICE-TCP port.
pub fn bind_listener(addr: SocketAddr) -> io::Result<OwnedFd> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_port(true)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// A v4-mapped peer on a dual-stack listener is the same peer as plain v4
/// (and must match what the ICE agent and UDP see).
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

pub(super) struct Conn {
    id: ConnId,
    peer: SocketAddr,
    fd: RawFd,
    /// Owns the descriptor (closed when the last task lets go of the
    /// connection); used to wait for readability in io_uring.
    stream: glommio::net::TcpStream,
    queue: RefCell<SendQueue>,
    /// A retry task owns the flushing while the socket buffer is full.
    writing: Cell<bool>,
    closed: Cell<bool>,
    /// Set once the core kept a frame of this connection.
    spoke: Cell<bool>,
}

impl Conn {
    /// Writes as much of the queue as the socket takes. Ok(true) when the
    /// queue is empty.
    fn write_some(&self) -> io::Result<bool> {
        let mut q = self.queue.borrow_mut();
        while !q.is_empty() {
            let p = q.pending();
            // SAFETY: p is a live slice; MSG_NOSIGNAL turns a reset peer into EPIPE.
            let r = unsafe { libc::send(self.fd, p.as_ptr().cast(), p.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
            if r > 0 {
                q.consume(r as usize);
                continue;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => return Ok(false),
                io::ErrorKind::Interrupted => continue,
                _ if r == 0 => return Err(io::ErrorKind::WriteZero.into()),
                _ => return Err(e),
            }
        }
        Ok(true)
    }

    /// Ends the connection; the read loop sees EOF and cleans up.
    fn close(&self) {
        if !self.closed.replace(true) {
            // SAFETY: the descriptor is owned by `stream`, alive as long as self.
            unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) };
        }
    }
}

/// The shard's ICE-TCP connections.
#[derive(Default)]
pub(super) struct Conns {
    map: RefCell<HashMap<ConnId, Rc<Conn>>>,
    next: Cell<u64>,
    limits: TcpLimits,
}

impl Conns {
    pub(super) fn new(limits: TcpLimits) -> Self {
        Self { limits, ..Default::default() }
    }

    /// Moves the TCP packets the core queued to their connections and
    /// starts writing them; closes connections the core is done with.
    pub(super) fn flush(&self, out: &mut Outbox, stats: &mut ShardStats) {
        if out.has_tcp() {
            let map = self.map.borrow();
            let mut last: Option<ConnId> = None;
            for (data, c) in out.tcp_datagrams() {
                let Some(conn) = map.get(&c).filter(|c| !c.closed.get()) else {
                    // The connection is gone: nowhere to queue.
                    stats.drop(DropReason::TcpQueueFull);
                    continue;
                };
                if !conn.queue.borrow_mut().push(data) {
                    stats.drop(DropReason::TcpQueueFull);
                    continue;
                }
                stats.tcp_packets_out += 1;
                stats.packets_out += 1;
                stats.bytes_out += data.len() as u64;
                // Packets for one connection come in runs (a frame's packets,
                // a flight of DTLS): write once per run, not once per packet.
                if last.is_some_and(|l| l != c) {
                    if let Some(prev) = last.and_then(|l| map.get(&l)) {
                        kick(prev);
                    }
                }
                last = Some(c);
            }
            if let Some(conn) = last.and_then(|l| map.get(&l)) {
                kick(conn);
            }
        }
        for c in out.tcp_close.drain(..) {
            if let Some(conn) = self.map.borrow().get(&c) {
                debug!(conn = c.0, peer = %conn.peer, "closing ICE-TCP connection of a removed session");
                let _ = conn.write_some();
                conn.close();
            }
        }
    }

    fn next_id(&self, shard: ShardId) -> ConnId {
        let n = self.next.get() + 1;
        self.next.set(n);
        ConnId(((shard as u64) << 48) | (n & ((1 << 48) - 1)))
    }
}

/// Writes now if no retry task is already waiting on this connection.
fn kick(conn: &Rc<Conn>) {
    if conn.writing.get() {
        return;
    }
    match conn.write_some() {
        Ok(true) => {}
        Ok(false) => {
            conn.writing.set(true);
            glommio::spawn_local(retry_writes(conn.clone())).detach();
        }
        Err(e) => {
            debug!(conn = conn.id.0, error = %e, "ICE-TCP send failed");
            conn.close();
        }
    }
}

/// Flushes a connection whose socket buffer was full, backing off while it
/// stays full; new packets keep queueing (bounded) meanwhile.
async fn retry_writes(conn: Rc<Conn>) {
    let mut wait = WRITE_RETRY_MIN;
    while !conn.closed.get() {
        glommio::timer::sleep(wait).await;
        let before = conn.queue.borrow().len();
        match conn.write_some() {
            Ok(true) => break,
            Ok(false) => {
                let progressed = conn.queue.borrow().len() < before;
                wait = if progressed { WRITE_RETRY_MIN } else { (wait * 2).min(WRITE_RETRY_MAX) };
            }
            Err(e) => {
                debug!(conn = conn.id.0, error = %e, "ICE-TCP send failed");
                conn.close();
            }
        }
    }
    conn.writing.set(false);
}

/// Accepts connections for as long as the shard runs.
pub(super) async fn accept_loop(io: Rc<ShardIo>, listener: glommio::net::TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                io.core.borrow_mut().stats.tcp_accepted += 1;
                let peer = match stream.peer_addr() {
                    Ok(p) => canonical(p),
                    Err(_) => continue, // reset before we looked
                };
                let open = io.tcp.map.borrow().len();
                if open >= io.tcp.limits.max_connections {
                    io.core.borrow_mut().stats.tcp_rejected += 1;
                    debug!(shard = io.id, %peer, open, "ICE-TCP connection over limits.ice_tcp_max_connections; closed");
                    drop(stream);
                    continue;
                }
                start(&io, stream, peer, Vec::new(), 0);
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning on them.
                warn!(shard = io.id, error = %e, "ICE-TCP accept failed");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A connection another shard accepted and handed to this one.
pub(super) fn adopt(io: &Rc<ShardIo>, h: TcpHandover) {
    let TcpHandover { fd, peer, pending, hops } = h;
    // SAFETY: the message owned this descriptor; the stream owns it now.
    let stream = unsafe { glommio::net::TcpStream::from_raw_fd(fd.into_raw_fd()) };
    debug!(shard = io.id, %peer, hops, "ICE-TCP connection handed over");
    start(io, stream, peer, pending, hops);
}

fn start(io: &Rc<ShardIo>, stream: glommio::net::TcpStream, peer: SocketAddr, pending: Vec<u8>, hops: u8) {
    // Small packets (audio, STUN) must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let conn = Rc::new(Conn {
        id: io.tcp.next_id(io.id),
        peer,
        fd: stream.as_raw_fd(),
        stream,
        queue: RefCell::new(SendQueue::new(SEND_QUEUE_BYTES)),
        writing: Cell::new(false),
        closed: Cell::new(false),
        // A handed-over connection already sent its Binding to another shard.
        spoke: Cell::new(hops > 0),
    });
    io.tcp.map.borrow_mut().insert(conn.id, conn.clone());
    io.core.borrow_mut().stats.tcp_connections += 1;
    if !conn.spoke.get() {
        glommio::spawn_local(first_frame_deadline(io.clone(), conn.clone())).detach();
    }
    glommio::spawn_local(serve(io.clone(), conn, pending, hops)).detach();
}

/// Closes a connection that stays silent (or sends only partial or refused
/// frames) past `first_frame_timeout`.
async fn first_frame_deadline(io: Rc<ShardIo>, conn: Rc<Conn>) {
    glommio::timer::sleep(io.tcp.limits.first_frame_timeout).await;
    if !conn.spoke.get() && !conn.closed.get() {
        io.core.borrow_mut().stats.tcp_rejected += 1;
        debug!(shard = io.id, peer = %conn.peer, "ICE-TCP connection sent no first frame in time; closed");
        conn.close();
    }
}

enum End {
    Eof,
    Error(io::Error),
    /// Bad framing, a first frame that is not a valid Binding, or too many hops.
    Rejected,
    HandedOver(ShardId),
}

async fn serve(io: Rc<ShardIo>, conn: Rc<Conn>, pending: Vec<u8>, hops: u8) {
    let mut reader = FrameReader::new();
    let end = match reader.extend(&pending) {
        Ok(()) => read_loop(&io, &conn, &mut reader, hops).await,
        Err(_) => End::Rejected,
    };
    match &end {
        End::HandedOver(to) => debug!(shard = io.id, to, peer = %conn.peer, "ICE-TCP connection moved"),
        End::Rejected => {
            io.core.borrow_mut().stats.tcp_rejected += 1;
            debug!(shard = io.id, peer = %conn.peer, "ICE-TCP connection rejected");
            conn.close();
        }
        End::Error(e) => {
            debug!(shard = io.id, peer = %conn.peer, error = %e, "ICE-TCP connection failed");
            conn.close();
        }
        End::Eof => {
            debug!(shard = io.id, peer = %conn.peer, "ICE-TCP connection closed");
            conn.close();
        }
    }
    io.tcp.map.borrow_mut().remove(&conn.id);
    {
        let mut core = io.core.borrow_mut();
        core.tcp_closed(conn.id);
        core.stats.tcp_connections = core.stats.tcp_connections.saturating_sub(1);
    }
}

async fn read_loop(io: &ShardIo, conn: &Conn, reader: &mut FrameReader, hops: u8) -> End {
    let mut peek = [0u8; 1];
    loop {
        if let Some(end) = process(io, conn, reader, hops) {
            return end;
        }
        if conn.closed.get() {
            return End::Eof;
        }
        let spare = reader.spare();
        // SAFETY: spare is a live, writable slice of its stated length.
        let r = unsafe { libc::recv(conn.fd, spare.as_mut_ptr().cast(), spare.len(), libc::MSG_DONTWAIT) };
        if r > 0 {
            reader.filled(r as usize);
            // Let the UDP loop, commands and peers in between reads.
            glommio::yield_if_needed().await;
            continue;
        }
        if r == 0 {
            return End::Eof;
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            // Sleep in io_uring until a byte is there (or the peer hangs up).
            io::ErrorKind::WouldBlock => match conn.stream.peek(&mut peek).await {
                Ok(0) => return End::Eof,
                Ok(_) => {}
                Err(e) => return End::Error(e.into()),
            },
            io::ErrorKind::Interrupted => {}
            _ => return End::Error(e),
        }
    }
}

/// Runs every complete frame through the core, then flushes once.
fn process(io: &ShardIo, conn: &Conn, reader: &mut FrameReader, hops: u8) -> Option<End> {
    let now = Instant::now();
    let mut end = None;
    {
        let mut core = io.core.borrow_mut();
        let mut out = io.out.borrow_mut();
        loop {
            let f = match reader.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    debug!(conn = conn.id.0, peer = %conn.peer, error = %e, "ICE-TCP framing error");
                    end = Some(End::Rejected);
                    break;
                }
            };
            match core.handle_tcp_frame(conn.id, conn.peer, reader.frame_mut(f), now, &mut out) {
                TcpVerdict::Keep => conn.spoke.set(true),
                TcpVerdict::Close => {
                    // Counted by the core (tcp_rejected and a drop reason).
                    end = Some(End::Eof);
                    break;
                }
                TcpVerdict::HandOver(shard) => {
                    end = Some(hand_over(io, conn, reader.rest_from(f), shard, hops, &mut core.stats));
                    break;
                }
            }
            (core, out) = io.relieve(core, out);
        }
    }
    io.flush();
    io.core.borrow_mut().stats.busy_ns += now.elapsed().as_nanos() as u64;
    end
}

fn hand_over(io: &ShardIo, conn: &Conn, pending: Vec<u8>, shard: ShardId, hops: u8, stats: &mut ShardStats) -> End {
    if hops >= MAX_HOPS {
        warn!(shard = io.id, peer = %conn.peer, "ICE-TCP connection bounced between shards; closing");
        return End::Rejected;
    }
    // The socket outlives this shard's descriptor through a duplicate.
    // SAFETY: fcntl on a descriptor we own; the result is checked.
    let dup = unsafe { libc::fcntl(conn.fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        warn!(shard = io.id, error = %io::Error::last_os_error(), "dup for ICE-TCP hand-over failed");
        return End::Rejected;
    }
    // SAFETY: dup is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(dup) };
    let msg = PeerMsg::TcpHandover(TcpHandover { fd, peer: conn.peer, pending, hops: hops + 1 });
    if io.mesh.try_send_to(shard, msg).is_err() {
        // The message (and the duplicate) is dropped: the peer sees a reset.
        stats.drop(DropReason::QueueFull);
        return End::Rejected;
    }
    info!(from = io.id, to = shard, peer = %conn.peer, "ICE-TCP connection handed to the session's shard");
    End::HandedOver(shard)
}
