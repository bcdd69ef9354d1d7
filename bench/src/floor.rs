//! The floor: the least a forwarder must do for this load on this machine.
//! One UDP socket, recvmmsg, one AES-128-GCM SRTP protect (ring, through the
//! same SrtpContext sfud uses) per destination, sendmmsg. No ICE, DTLS,
//! header rewriting, RTCP, keyframe gating or per-track state: publishers
//! send plain RTP, destinations register with a JOIN datagram and share a
//! pre-shared key (each destination still has its own context and ROC
//! state, as in an SFU).
//!
//! For the loss runs it does the least NACK answering can: each room keeps
//! its last 512 video packets (the generator's RtxCache), and a plain-RTCP
//! NACK from a destination is answered by protecting the cached packets for
//! that destination and resending them on the primary SSRC. No RTX, no
//! resend limit, no NACKs toward publishers.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;

use anyhow::{bail, Result};
use dataplane::rtcp::{iter_compound, RtcpPacket};
use dataplane::srtp::SrtpContext;

use crate::media::RtxCache;
use crate::sdp::PT_VP8;
use crate::target::floor_key;

const RX_BATCH: usize = 32;
const TX_MAX: usize = 1024;
const SLOT: usize = 1536;

struct Dest {
    addr: libc::sockaddr_in,
    srtp: SrtpContext,
    /// livestream-simulcast: the one layer this destination gets (a static
    /// choice made at JOIN); None takes every stream.
    layer: Option<u8>,
}

/// A publisher: its room and, when it sends simulcast, its layers' SSRCs
/// lowest first (from PUBL).
struct Publisher {
    room: u32,
    layers: Vec<u32>,
}

fn to_sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*a.ip()).to_be() },
        sin_zero: [0; 8],
    }
}

fn from_sockaddr(s: &libc::sockaddr_in) -> SocketAddrV4 {
    SocketAddrV4::new(u32::from_be(s.sin_addr.s_addr).into(), u16::from_be(s.sin_port))
}

pub fn serve(listen: SocketAddr) -> Result<()> {
    let sock = UdpSocket::bind(listen)?;
    let fd = sock.as_raw_fd();
    let bufsz: libc::c_int = 4 << 20;
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: setsockopt with a c_int value on our socket.
        unsafe {
            libc::setsockopt(fd, libc::SOL_SOCKET, opt, (&bufsz as *const libc::c_int).cast(), 4);
        }
    }
    let mut rooms: HashMap<u32, Vec<Dest>> = HashMap::new();
    let mut pubs: HashMap<SocketAddrV4, Publisher> = HashMap::new();
    // Where a NACK's sender is: room and index in its destination list.
    let mut dest_of: HashMap<SocketAddrV4, (u32, usize)> = HashMap::new();
    let mut caches: HashMap<u32, RtxCache> = HashMap::new();

    let mut rx_buf = vec![0u8; RX_BATCH * SLOT];
    // SAFETY: zeroed sockaddr_in / mmsghdr are valid initial values.
    let mut rx_names: Vec<libc::sockaddr_in> = vec![unsafe { std::mem::zeroed() }; RX_BATCH];
    let mut rx_iov: Vec<libc::iovec> = (0..RX_BATCH)
        .map(|i| libc::iovec { iov_base: rx_buf[i * SLOT..].as_mut_ptr().cast(), iov_len: SLOT })
        .collect();
    let mut rx_hdr: Vec<libc::mmsghdr> = (0..RX_BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();

    let mut tx_buf = vec![0u8; TX_MAX * SLOT];
    let mut tx_names: Vec<libc::sockaddr_in> = vec![unsafe { std::mem::zeroed() }; TX_MAX];
    let mut tx_iov: Vec<libc::iovec> = (0..TX_MAX)
        .map(|i| libc::iovec { iov_base: tx_buf[i * SLOT..].as_mut_ptr().cast(), iov_len: 0 })
        .collect();
    let mut tx_hdr: Vec<libc::mmsghdr> = (0..TX_MAX).map(|_| unsafe { std::mem::zeroed() }).collect();
    let mut ntx = 0usize;

    loop {
        for i in 0..RX_BATCH {
            let h = &mut rx_hdr[i].msg_hdr;
            h.msg_name = (&mut rx_names[i] as *mut libc::sockaddr_in).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            h.msg_iov = &mut rx_iov[i];
            h.msg_iovlen = 1;
        }
        // Blocks until at least one datagram, then takes what is queued.
        // SAFETY: headers point into buffers owned by this frame.
        let r = unsafe {
            libc::recvmmsg(fd, rx_hdr.as_mut_ptr(), RX_BATCH as u32, libc::MSG_WAITFORONE, std::ptr::null_mut())
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            bail!("recvmmsg: {e}");
        }
        for i in 0..r as usize {
            let n = (rx_hdr[i].msg_len as usize).min(SLOT);
            let src = from_sockaddr(&rx_names[i]);
            let d = &rx_buf[i * SLOT..i * SLOT + n];
            let room_of = |d: &[u8]| d.get(4..8).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
            if d.starts_with(b"JOIN") || d.starts_with(b"PUBL") {
                let Some(room) = room_of(d) else { continue };
                if d.starts_with(b"JOIN") {
                    let list = rooms.entry(room).or_default();
                    let sa = to_sockaddr(src);
                    if !list.iter().any(|x| from_sockaddr(&x.addr) == src) {
                        dest_of.insert(src, (room, list.len()));
                        let layer = d.get(8).copied();
                        list.push(Dest { addr: sa, srtp: SrtpContext::new(&floor_key())?, layer });
                    }
                } else {
                    let layers = d.get(8..).unwrap_or(&[]).chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect();
                    pubs.insert(src, Publisher { room, layers });
                }
                if ntx == TX_MAX {
                    flush(fd, &mut tx_hdr, &mut ntx);
                }
                tx_buf[ntx * SLOT..ntx * SLOT + 4].copy_from_slice(b"OKAY");
                tx_iov[ntx].iov_len = 4;
                tx_names[ntx] = to_sockaddr(src);
                set_hdr(&mut tx_hdr[ntx], &mut tx_names[ntx], &mut tx_iov[ntx]);
                ntx += 1;
                continue;
            }
            if d.get(1).is_some_and(|b| (192..=223).contains(b)) {
                // Plain RTCP from a destination: answer its NACKs.
                let Some(&(room, di)) = dest_of.get(&src) else { continue };
                let (Some(cache), Some(dst)) = (caches.get(&room), rooms.get_mut(&room).and_then(|l| l.get_mut(di))) else {
                    continue;
                };
                for p in iter_compound(d) {
                    let Ok(RtcpPacket::Nack { media_ssrc, items, .. }) = p else { continue };
                    for seq in items.lost_sequences() {
                        let Some(pkt) = cache.get(seq).filter(|p| p.get(8..12) == Some(&media_ssrc.to_be_bytes()[..])) else {
                            continue;
                        };
                        if ntx == TX_MAX {
                            flush(fd, &mut tx_hdr, &mut ntx);
                        }
                        let slot = &mut tx_buf[ntx * SLOT..(ntx + 1) * SLOT];
                        slot[..pkt.len()].copy_from_slice(pkt);
                        let Ok(m) = dst.srtp.protect_rtp(slot, pkt.len()) else { continue };
                        tx_iov[ntx].iov_len = m;
                        tx_names[ntx] = dst.addr;
                        set_hdr(&mut tx_hdr[ntx], &mut tx_names[ntx], &mut tx_iov[ntx]);
                        ntx += 1;
                    }
                }
                continue;
            }
            let Some(p) = pubs.get(&src) else { continue };
            let room = &p.room;
            if d.get(1).is_some_and(|b| b & 0x7f == PT_VP8) {
                if let Some(seq) = d.get(2..4) {
                    caches.entry(*room).or_insert_with(RtxCache::new).put(u16::from_be_bytes([seq[0], seq[1]]), d);
                }
            }
            // Which layer this is, for a simulcast publisher.
            let layer = match d.get(8..12) {
                Some(s) if !p.layers.is_empty() => {
                    let ssrc = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
                    p.layers.iter().position(|l| *l == ssrc).map(|i| i as u8)
                }
                _ => None,
            };
            let Some(dests) = rooms.get_mut(room) else { continue };
            for dst in dests.iter_mut() {
                if dst.layer.is_some() && layer.is_some() && dst.layer != layer {
                    continue;
                }
                if ntx == TX_MAX {
                    flush(fd, &mut tx_hdr, &mut ntx);
                }
                let slot = &mut tx_buf[ntx * SLOT..(ntx + 1) * SLOT];
                slot[..n].copy_from_slice(d);
                let Ok(m) = dst.srtp.protect_rtp(slot, n) else { continue };
                tx_iov[ntx].iov_len = m;
                tx_names[ntx] = dst.addr;
                set_hdr(&mut tx_hdr[ntx], &mut tx_names[ntx], &mut tx_iov[ntx]);
                ntx += 1;
            }
        }
        flush(fd, &mut tx_hdr, &mut ntx);
    }
}

fn set_hdr(h: &mut libc::mmsghdr, name: &mut libc::sockaddr_in, iov: &mut libc::iovec) {
    h.msg_hdr.msg_name = (name as *mut libc::sockaddr_in).cast();
    h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
    h.msg_hdr.msg_iov = iov;
    h.msg_hdr.msg_iovlen = 1;
}

fn flush(fd: i32, hdr: &mut [libc::mmsghdr], n: &mut usize) {
    let mut sent = 0;
    while sent < *n {
        // SAFETY: the first n headers are filled and point into live buffers.
        let r = unsafe { libc::sendmmsg(fd, hdr.as_mut_ptr().add(sent), (*n - sent) as u32, 0) };
        if r <= 0 {
            // A full socket buffer drops the rest, like sfud's queue-full drop.
            break;
        }
        sent += r as usize;
    }
    *n = 0;
}
