//! Which addresses sfud announces as ICE host candidates.

use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::config::RtcConfig;

struct Iface {
    name: String,
    ip: IpAddr,
    up: bool,
    loopback: bool,
}

fn interfaces() -> Vec<Iface> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a linked list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: cur is a valid node of the list returned by getifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points at a sockaddr of the stated family.
        let family = unsafe { (*ifa.ifa_addr).sa_family } as libc::c_int;
        let ip = match family {
            libc::AF_INET => {
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                IpAddr::V4(Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()))
            }
            _ => continue, // IPv4 only for now; see docs/architecture.md
        };
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }.to_string_lossy().into_owned();
        let flags = ifa.ifa_flags as libc::c_int;
        out.push(Iface { name, ip, up: flags & libc::IFF_UP != 0, loopback: flags & libc::IFF_LOOPBACK != 0 });
    }
    // SAFETY: head came from getifaddrs.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// nat_1to1 wins; else a specific bind address; else every up, non-loopback
/// IPv4 interface (optionally filtered), plus 127.0.0.1 when configured or
/// when nothing else exists (a private network namespace).
pub fn host_candidates(rtc: &RtcConfig, media_port: u16) -> Vec<SocketAddr> {
    let mut ips: Vec<IpAddr> = Vec::new();
    if !rtc.nat_1to1.is_empty() {
        ips.extend(rtc.nat_1to1.iter().copied());
    } else if !rtc.bind_address.is_unspecified() {
        ips.push(rtc.bind_address);
    } else {
        for i in interfaces() {
            if i.up && !i.loopback && (rtc.interfaces.is_empty() || rtc.interfaces.contains(&i.name)) && !ips.contains(&i.ip) {
                ips.push(i.ip);
            }
        }
    }
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let bound_any_or_lo = rtc.bind_address.is_unspecified() || rtc.bind_address.is_loopback();
    if (rtc.include_loopback || ips.is_empty()) && bound_any_or_lo && !ips.contains(&lo) {
        ips.push(lo);
    }
    ips.into_iter().map(|ip| SocketAddr::new(ip, media_port)).collect()
}
