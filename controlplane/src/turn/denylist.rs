//! Which peers a relay may talk to.
//!
//! A TURN server that relays anywhere lets any client with credentials reach
//! the operator's internal network (metadata services, admin ports). Like
//! coturn's `denied-peer-ip`, every non-global range is refused by default;
//! sfud's own media address stays reachable so relayed clients can still
//! reach the SFU when it listens on a private address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// True when `ip` lies in a range a relay must not reach: loopback,
/// RFC 1918, CGNAT, link-local, multicast, broadcast, unspecified and
/// reserved IPv4; loopback, ULA, link-local, site-local, multicast and
/// unspecified IPv6. IPv4-mapped and NAT64 IPv6 forms are judged by the
/// IPv4 address they carry, so they cannot smuggle a private target.
pub fn is_denied(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => denied_v4(v4),
        IpAddr::V6(v6) => denied_v6(v6),
    }
}

fn denied_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_unspecified()
        || o[0] == 0 // 0.0.0.0/8 "this network"
        || o[0] == 10
        || (o[0] == 100 && (o[1] & 0xC0) == 64) // 100.64.0.0/10 CGNAT
        || o[0] == 127
        || (o[0] == 169 && o[1] == 254)
        || (o[0] == 172 && (o[1] & 0xF0) == 16)
        || (o[0] == 192 && o[1] == 168)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] & 0xF0) == 224 // multicast
        || o[0] >= 240 // reserved and broadcast
}

fn denied_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return denied_v4(v4);
    }
    // 64:ff9b::/96: NAT64 well-known prefix.
    if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return denied_v4(Ipv4Addr::new(a, b, c, d));
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || (s[0] & 0xFE00) == 0xFC00 // fc00::/7 ULA
        || (s[0] & 0xFFC0) == 0xFE80 // fe80::/10 link-local
        || (s[0] & 0xFFC0) == 0xFEC0 // fec0::/10 deprecated site-local
        || (s[0] & 0xFF00) == 0xFF00 // multicast
        // ::/96 IPv4-compatible (deprecated) never routes to a real peer.
        || (s[0..6] == [0, 0, 0, 0, 0, 0])
}

/// The relay policy of one server: the denylist, the exemption for sfud's
/// own media sockets, and the test override.
#[derive(Debug, Clone, Default)]
pub struct PeerPolicy {
    allow_private: bool,
    exempt: Vec<SocketAddr>,
}

impl PeerPolicy {
    pub fn new(allow_private: bool, exempt: Vec<SocketAddr>) -> Self {
        Self { allow_private, exempt }
    }

    /// May a permission be installed for `ip`? Permissions are per IP
    /// (RFC 8656 §9), so an exempt media IP passes here and the port is
    /// checked per packet by [`permits_addr`](Self::permits_addr).
    pub fn permits_ip(&self, ip: IpAddr) -> bool {
        self.allow_private || !is_denied(ip) || self.exempt.iter().any(|a| same_ip(a.ip(), ip))
    }

    /// May a packet go to `addr`? On an exempt private IP only the media
    /// ports are reachable, so the exemption opens one socket, not a host.
    pub fn permits_addr(&self, addr: SocketAddr) -> bool {
        self.allow_private
            || !is_denied(addr.ip())
            || self.exempt.iter().any(|a| same_ip(a.ip(), addr.ip()) && a.port() == addr.port())
    }
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn denied_ranges() {
        for s in [
            "0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.254",
            "127.0.0.1", "127.8.9.10", "169.254.169.254", "172.16.0.1", "172.31.255.255",
            "192.168.1.1", "192.0.0.8", "224.0.0.251", "239.255.255.250", "240.0.0.1",
            "255.255.255.255", "::", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1",
            "fec0::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.1.2.3", "64:ff9b::a00:1",
            "::127.0.0.1",
        ] {
            assert!(is_denied(ip(s)), "{s} should be denied");
        }
    }

    #[test]
    fn allowed_ranges() {
        for s in [
            "8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.0", "172.15.255.255",
            "172.32.0.0", "192.169.0.1", "192.0.2.1", "203.0.113.9", "223.255.255.255",
            "2001:db8::1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808",
        ] {
            assert!(!is_denied(ip(s)), "{s} should be allowed");
        }
    }

    #[test]
    fn policy_exemption_is_per_socket() {
        let media: SocketAddr = "10.0.0.5:7882".parse().unwrap();
        let p = PeerPolicy::new(false, vec![media]);
        assert!(p.permits_ip(ip("10.0.0.5")));
        assert!(p.permits_ip(ip("::ffff:10.0.0.5")));
        assert!(!p.permits_ip(ip("10.0.0.6")));
        assert!(p.permits_addr(media));
        assert!(!p.permits_addr("10.0.0.5:22".parse().unwrap()));
        assert!(p.permits_addr("8.8.8.8:53".parse().unwrap()));
        let open = PeerPolicy::new(true, vec![]);
        assert!(open.permits_ip(ip("127.0.0.1")));
        assert!(open.permits_addr("127.0.0.1:3480".parse().unwrap()));
    }
}
