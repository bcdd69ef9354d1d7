//! The single-threaded I/O loop: one non-blocking UDP socket per session
//! (the SFU tells sessions apart by 5-tuple), epoll for readiness,
//! recvmmsg to drain a socket in batches and one sendmmsg per socket per
//! burst. Sessions are sans-IO; this file owns every syscall.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::IntoRawFd;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use openssl::ssl::SslContext;

use crate::media::{MediaConfig, MAX_PACKET};
use crate::session::{Counters, Outq, Session, State, SLOT};

const RX_BATCH: usize = 32;
const TIMER_EVERY: Duration = Duration::from_millis(20);

pub struct Engine {
    ep: i32,
    pub sessions: Vec<Session>,
    pub c: Counters,
    pub cfg: MediaConfig,
    pub ctx: SslContext,
    out: Outq,
    dtls_out: Vec<Vec<u8>>,
    scratch: Box<[u8; MAX_PACKET]>,
    rx_buf: Vec<u8>,
    rx_iov: Vec<libc::iovec>,
    rx_hdr: Vec<libc::mmsghdr>,
    tx_iov: Vec<libc::iovec>,
    tx_hdr: Vec<libc::mmsghdr>,
    last_timer: Instant,
    publishers: Vec<usize>,
    /// Viewers with NACK work pending (their generators' holes); short
    /// under any sane loss, so a scan per loop costs nothing.
    nack_pending: Vec<usize>,
}

/// A bound, connected, non-blocking socket for a new session.
pub fn session_socket(remote: SocketAddr) -> Result<UdpSocket> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    s.connect(remote)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

impl Engine {
    pub fn new(ctx: SslContext, cfg: MediaConfig) -> Result<Self> {
        // SAFETY: plain syscall; the fd is owned by the engine.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ep < 0 {
            bail!("epoll_create1: {}", std::io::Error::last_os_error());
        }
        let mut e = Self {
            ep,
            sessions: Vec::new(),
            c: Counters::new(),
            cfg,
            ctx,
            out: Outq::new(),
            dtls_out: Vec::new(),
            scratch: Box::new([0u8; MAX_PACKET]),
            rx_buf: vec![0u8; RX_BATCH * SLOT],
            rx_iov: Vec::with_capacity(RX_BATCH),
            rx_hdr: Vec::with_capacity(RX_BATCH),
            tx_iov: Vec::with_capacity(Outq::CAP),
            tx_hdr: Vec::with_capacity(Outq::CAP),
            last_timer: Instant::now(),
            publishers: Vec::new(),
            nack_pending: Vec::new(),
        };
        // The iovecs point into rx_buf's heap block, which never moves.
        let base = e.rx_buf.as_mut_ptr();
        for i in 0..RX_BATCH {
            // SAFETY: i * SLOT stays inside rx_buf.
            let p = unsafe { base.add(i * SLOT) };
            e.rx_iov.push(libc::iovec { iov_base: p.cast(), iov_len: SLOT });
        }
        let iov = e.rx_iov.as_mut_ptr();
        for i in 0..RX_BATCH {
            // SAFETY: zeroed mmsghdr is a valid "no name, no control" header.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            // SAFETY: i < RX_BATCH = rx_iov.len().
            h.msg_hdr.msg_iov = unsafe { iov.add(i) };
            h.msg_hdr.msg_iovlen = 1;
            e.rx_hdr.push(h);
        }
        Ok(e)
    }

    /// Takes ownership of the socket; the session starts its handshake on
    /// the next timer tick.
    pub fn add(&mut self, sock: UdpSocket, make: impl FnOnce(i32) -> Session) -> Result<usize> {
        let fd = sock.into_raw_fd();
        let idx = self.sessions.len();
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: idx as u64 };
        // SAFETY: fd is a valid socket we own; ev lives across the call.
        if unsafe { libc::epoll_ctl(self.ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            // SAFETY: closing the fd we own.
            unsafe { libc::close(fd) };
            bail!("epoll_ctl: {}", std::io::Error::last_os_error());
        }
        let mut s = make(fd);
        s.set_loss(&self.cfg, idx as u64);
        if s.is_publisher() {
            self.publishers.push(idx);
        }
        self.sessions.push(s);
        let now = Instant::now();
        self.sessions[idx].on_timer(now, &self.ctx, &mut self.out, &mut self.dtls_out);
        self.flush(idx);
        Ok(idx)
    }

    fn flush(&mut self, idx: usize) {
        if self.out.lens.is_empty() {
            return;
        }
        let fd = self.sessions[idx].fd;
        self.tx_iov.clear();
        self.tx_hdr.clear();
        let base = self.out.buf.as_mut_ptr();
        for (i, &n) in self.out.lens.iter().enumerate() {
            // SAFETY: slot i lies inside out.buf.
            let p = unsafe { base.add(i * SLOT) };
            self.tx_iov.push(libc::iovec { iov_base: p.cast(), iov_len: n });
        }
        let iov = self.tx_iov.as_mut_ptr();
        for i in 0..self.out.lens.len() {
            // SAFETY: as in `new`.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_iov = unsafe { iov.add(i) };
            h.msg_hdr.msg_iovlen = 1;
            self.tx_hdr.push(h);
        }
        let mut sent = 0usize;
        let total = self.tx_hdr.len();
        let mut spins = 0;
        while sent < total && spins < 4 {
            // SAFETY: headers and iovecs point into buffers alive for the call.
            let r = unsafe {
                libc::sendmmsg(fd, self.tx_hdr.as_mut_ptr().add(sent), (total - sent) as u32, libc::MSG_DONTWAIT)
            };
            if r <= 0 {
                // EAGAIN on a full send buffer or ECONNREFUSED from a dead
                // target: the datagram is lost, as it would be on a network.
                spins += 1;
                if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECONNREFUSED) {
                    continue;
                }
                break;
            }
            sent += r as usize;
        }
        self.out.lens.clear();
    }

    /// Runs the loop until `deadline`.
    pub fn run_until(&mut self, deadline: Instant) {
        let mut events: Vec<libc::epoll_event> = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            let next_media = self.publish(now);
            if now.duration_since(self.last_timer) >= TIMER_EVERY {
                self.last_timer = now;
                for i in 0..self.sessions.len() {
                    self.sessions[i].on_timer(now, &self.ctx, &mut self.out, &mut self.dtls_out);
                    self.flush(i);
                }
            }
            let mut wake = deadline.min(self.last_timer + TIMER_EVERY);
            if let Some(t) = next_media {
                wake = wake.min(t);
            }
            if let Some(t) = self.nacks(now) {
                wake = wake.min(t);
            }
            let wait_ms = wake.saturating_duration_since(Instant::now()).as_micros().div_ceil(1000) as i32;
            // SAFETY: events has room for its length.
            let n = unsafe { libc::epoll_wait(self.ep, events.as_mut_ptr(), events.len() as i32, wait_ms) };
            for ev in events.iter().take(n.max(0) as usize) {
                let idx = ev.u64 as usize;
                self.drain(idx);
            }
        }
    }

    fn publish(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for k in 0..self.publishers.len() {
            let idx = self.publishers[k];
            if let Some(t) = self.sessions[idx].publish_due(now, &self.cfg, &mut self.out, &mut self.scratch, &mut self.c) {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
            self.flush(idx);
        }
        next
    }

    fn drain(&mut self, idx: usize) {
        let Some(fd) = self.sessions.get(idx).map(|s| s.fd) else { return };
        for _round in 0..4 {
            for h in self.rx_hdr.iter_mut() {
                h.msg_len = 0;
            }
            // SAFETY: rx_hdr's iovecs point into rx_buf.
            let r = unsafe {
                libc::recvmmsg(fd, self.rx_hdr.as_mut_ptr(), RX_BATCH as u32, libc::MSG_DONTWAIT, std::ptr::null_mut())
            };
            if r <= 0 {
                break;
            }
            let now = Instant::now();
            for i in 0..r as usize {
                let n = (self.rx_hdr[i].msg_len as usize).min(SLOT);
                let d = &mut self.rx_buf[i * SLOT..i * SLOT + n];
                self.sessions[idx].on_datagram(d, now, &self.ctx, &self.cfg, &mut self.out, &mut self.dtls_out, &mut self.c);
                if self.out.is_full() {
                    self.flush(idx);
                }
            }
            self.flush(idx);
            if (r as usize) < RX_BATCH {
                break;
            }
        }
        let s = &mut self.sessions[idx];
        if s.nack_due().is_some() {
            if let Some(q) = s.nack_queued().filter(|q| !**q) {
                *q = true;
                self.nack_pending.push(idx);
            }
        }
    }

    /// Sends the viewers' NACKs that are due; returns the next due time.
    fn nacks(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut i = 0;
        while i < self.nack_pending.len() {
            let idx = self.nack_pending[i];
            if self.sessions[idx].nack_due().is_some_and(|t| t <= now) {
                self.sessions[idx].poll_nacks(now, &mut self.out, &mut self.c);
                self.flush(idx);
            }
            match self.sessions[idx].nack_due() {
                Some(t) => {
                    next = Some(next.map_or(t, |n: Instant| n.min(t)));
                    i += 1;
                }
                None => {
                    if let Some(q) = self.sessions[idx].nack_queued() {
                        *q = false;
                    }
                    self.nack_pending.swap_remove(i);
                }
            }
        }
        next
    }

    pub fn count(&self, st: State) -> usize {
        self.sessions.iter().filter(|s| s.state == st).count()
    }

    /// Sum of (expected, received) packets over all viewers.
    pub fn loss_totals(&self) -> (u64, u64) {
        self.sessions.iter().map(Session::loss_totals).fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        for s in &self.sessions {
            // SAFETY: each fd was handed to us by `add`.
            unsafe { libc::close(s.fd) };
        }
        // SAFETY: our epoll fd.
        unsafe { libc::close(self.ep) };
    }
}

/// Raises RLIMIT_NOFILE to the hard limit: a socket per session.
pub fn raise_nofile() {
    // SAFETY: get/setrlimit on our own process with a valid struct.
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}
