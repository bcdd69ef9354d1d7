//! The media socket and its batched syscalls. glommio 0.9 has no batched UDP
//! API, so the shard drives `recvmmsg`/`sendmmsg` on the raw fd itself and
//! only uses glommio to wait for readability.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

use crate::shard::outbox::{Dest, Outbox};

/// Largest datagram we accept; anything bigger is not WebRTC media.
pub const RECV_SLOT: usize = 2048;

/// One SO_REUSEPORT socket per shard, all on the same media port.
pub fn bind_media_socket(addr: SocketAddr, buffer_bytes: usize) -> io::Result<OwnedFd> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max (see tuning/).
    let _ = socket.set_recv_buffer_size(buffer_bytes);
    let _ = socket.set_send_buffer_size(buffer_bytes);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

pub fn local_addr(fd: &OwnedFd) -> io::Result<SocketAddr> {
    let socket = socket2::SockRef::from(fd);
    socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::Other, "not an inet socket"))
}

fn write_sockaddr(addr: &SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in.
            let sin = unsafe { &mut *(out as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(out as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr { s6_addr: a.ip().octets() };
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

fn read_sockaddr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in (family says so).
            let sin = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            // v4-mapped peers on a dual-stack socket are the same peer as plain v4.
            let ip = match ip.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(ip),
            };
            Some(match ip {
                IpAddr::V4(v4) => SocketAddr::V4(SocketAddrV4::new(v4, u16::from_be(sin6.sin6_port))),
                IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(
                    v6,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )),
            })
        }
        _ => None,
    }
}

/// Preallocated `recvmmsg` state: buffers, addresses and headers, wired once.
pub struct RecvBatch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl RecvBatch {
    pub fn new(n: usize) -> Self {
        let n = n.max(1);
        let mut bufs = vec![0u8; n * RECV_SLOT];
        // SAFETY: all-zero is a valid sockaddr_storage / mmsghdr.
        let mut addrs: Vec<libc::sockaddr_storage> = (0..n).map(|_| unsafe { zeroed() }).collect();
        let mut iovecs: Vec<libc::iovec> = (0..n)
            .map(|i| libc::iovec { iov_base: bufs[i * RECV_SLOT..].as_mut_ptr() as *mut _, iov_len: RECV_SLOT })
            .collect();
        let hdrs = (0..n)
            .map(|i| {
                // SAFETY: zeroed mmsghdr, then the pointers we own are filled in.
                let mut h: libc::mmsghdr = unsafe { zeroed() };
                h.msg_hdr.msg_name = &mut addrs[i] as *mut _ as *mut _;
                h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_hdr.msg_iov = &mut iovecs[i];
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        // The Vecs' heap storage never moves after this point: they are never resized.
        RecvBatch { bufs, addrs, iovecs, hdrs }
    }

    /// Non-blocking `recvmmsg`: Ok(0) when nothing is queued.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for h in self.hdrs.iter_mut() {
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        let _ = &self.iovecs;
        // SAFETY: hdrs point at buffers/addresses owned by self, sized as declared.
        let n = unsafe {
            libc::recvmmsg(fd, self.hdrs.as_mut_ptr(), self.hdrs.len() as u32, libc::MSG_DONTWAIT, std::ptr::null_mut())
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock { Ok(0) } else { Err(e) };
        }
        Ok(n as usize)
    }

    /// Datagram `i` of the last `recv`: its source and its bytes (mutable, for in-place SRTP).
    pub fn get(&mut self, i: usize) -> Option<(SocketAddr, &mut [u8])> {
        let h = self.hdrs.get(i)?;
        let len = (h.msg_len as usize).min(RECV_SLOT);
        let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        let src = read_sockaddr(&self.addrs[i])?;
        if truncated {
            return None;
        }
        Some((src, &mut self.bufs[i * RECV_SLOT..i * RECV_SLOT + len]))
    }
}

/// Reusable `sendmmsg` headers.
#[derive(Default)]
pub struct SendBatch {
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

pub struct SendResult {
    pub sent: usize,
    pub bytes: usize,
    pub dropped: usize,
    pub syscalls: usize,
}

/// Linux caps one sendmmsg at UIO_MAXIOV messages.
const MAX_MMSG: usize = 1024;

impl SendBatch {
    /// Sends the UDP datagrams queued in `out` and clears the queue (the
    /// caller moves TCP entries to their connections first). Datagrams the
    /// kernel refuses (full socket buffer, ICMP errors) are counted as dropped.
    pub fn flush(&mut self, fd: &impl AsRawFd, out: &mut Outbox) -> SendResult {
        let total = out.len();
        let mut res = SendResult { sent: 0, bytes: 0, dropped: 0, syscalls: 0 };
        if total == 0 {
            return res;
        }
        if self.hdrs.len() < total {
            // SAFETY: zeroed values are valid for these C structs.
            self.addrs.resize_with(total, || unsafe { zeroed() });
            self.iovecs.resize_with(total, || libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 });
            self.hdrs.resize_with(total, || unsafe { zeroed() });
        }
        let mut n = 0;
        for i in 0..total {
            let (data, dst) = out.datagram(i);
            let Dest::Udp(dst) = dst else { continue };
            let namelen = write_sockaddr(&dst, &mut self.addrs[n]);
            self.iovecs[n] = libc::iovec { iov_base: data.as_ptr() as *mut _, iov_len: data.len() };
            let h = &mut self.hdrs[n];
            h.msg_hdr.msg_name = &mut self.addrs[n] as *mut _ as *mut _;
            h.msg_hdr.msg_namelen = namelen;
            h.msg_hdr.msg_iov = &mut self.iovecs[n];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_len = 0;
            n += 1;
        }
        let mut off = 0;
        while off < n {
            let count = (n - off).min(MAX_MMSG);
            // SAFETY: headers point at iovecs/addresses above and at `out`'s
            // buffer, which is not touched until this loop ends.
            let r = unsafe { libc::sendmmsg(fd.as_raw_fd(), self.hdrs[off..].as_mut_ptr(), count as u32, libc::MSG_DONTWAIT) };
            res.syscalls += 1;
            if r > 0 {
                off += r as usize;
                res.sent += r as usize;
            } else {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if e.kind() == io::ErrorKind::WouldBlock {
                    // Socket buffer full: what is left of this batch is lost.
                    res.dropped += n - off;
                    break;
                }
                // One destination failed (e.g. ICMP unreachable): skip it.
                res.dropped += 1;
                off += 1;
            }
        }
        // Bytes are only meaningful for what went out.
        res.bytes = self.iovecs[..res.sent.min(n)].iter().map(|v| v.iov_len).sum();
        out.clear_datagrams();
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        for a in ["127.0.0.1:7882", "[::1]:9", "[fe80::1%2]:443"] {
            let addr: SocketAddr = a.parse().unwrap();
            // SAFETY: zeroed storage.
            let mut s: libc::sockaddr_storage = unsafe { zeroed() };
            write_sockaddr(&addr, &mut s);
            assert_eq!(read_sockaddr(&s), Some(addr));
        }
    }

    #[test]
    fn batch_send_and_receive_on_loopback() {
        let rx = bind_media_socket("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
        let rx_addr = local_addr(&rx).unwrap();
        let tx = bind_media_socket("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
        let tx_addr = local_addr(&tx).unwrap();
        let mut out = Outbox::new(1);
        for i in 0..10u8 {
            assert!(out.push(&[0x80, 96, i], rx_addr));
        }
        let res = SendBatch::default().flush(&tx, &mut out);
        assert_eq!(res.sent, 10);
        assert_eq!(res.syscalls, 1);
        let mut batch = RecvBatch::new(32);
        let mut got = 0;
        for _ in 0..100 {
            let n = batch.recv(rx.as_raw_fd()).unwrap();
            for i in 0..n {
                let (src, data) = batch.get(i).unwrap();
                assert_eq!(src, tx_addr);
                assert_eq!(data[2], got as u8);
                got += 1;
            }
            if got == 10 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got, 10);
    }
}
