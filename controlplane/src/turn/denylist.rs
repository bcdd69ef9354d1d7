//! Which peers a relay may talk to.
//!
//! A TURN server that relays anywhere lets any client with credentials reach
//! the operator's internal network (metadata services, admin ports). Like
//! coturn's `denied-peer-ip`, every special-purpose range of RFC 6890 (and
//! its updates) that is not globally reachable is refused by default, IPv4
//! carried in IPv6 (mapped, NAT64, 6to4, Teredo) is judged by the IPv4
//! address inside, and sfud's own addresses are refused but for its media
//! sockets, so relayed clients can still reach the SFU.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// True when `ip` lies in a range a relay must not reach: "this network",
/// RFC 1918, CGNAT, loopback, link-local, IETF protocol assignments,
/// documentation (TEST-NET-1..3), benchmarking (198.18.0.0/15), the 6to4
/// relay anycast, multicast, reserved and broadcast IPv4; unspecified,
/// loopback, discard-only, IETF protocol assignments (2001::/23 but for
/// Teredo), documentation, ULA, link-local, site-local, local-use NAT64
/// and multicast IPv6. IPv4-mapped, IPv4-compatible, NAT64, 6to4 and
/// Teredo addresses are judged by the IPv4 address they carry, so they
/// cannot smuggle a private target.
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
        || (o[0] == 192 && o[1] == 0 && o[2] == 2) // TEST-NET-1
        || (o[0] == 192 && o[1] == 88 && o[2] == 99) // 6to4 relay anycast (RFC 7526)
        || (o[0] == 198 && (o[1] & 0xFE) == 18) // 198.18.0.0/15 benchmarking
        || (o[0] == 198 && o[1] == 51 && o[2] == 100) // TEST-NET-2
        || (o[0] == 203 && o[1] == 0 && o[2] == 113) // TEST-NET-3
        || (o[0] & 0xF0) == 224 // multicast
        || o[0] >= 240 // reserved and broadcast
}

fn v4_of(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

fn denied_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return denied_v4(v4);
    }
    // 64:ff9b::/96: NAT64 well-known prefix (RFC 6052).
    if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return denied_v4(v4_of(s[6], s[7]));
    }
    // 2002::/16: 6to4 carries the IPv4 address in bits 16..48 (RFC 3056).
    if s[0] == 0x2002 {
        return denied_v4(v4_of(s[1], s[2]));
    }
    // 2001::/32: Teredo carries the server's IPv4 and the client's,
    // obfuscated by inversion (RFC 4380); either one may be the target.
    if s[0] == 0x2001 && s[1] == 0 {
        return denied_v4(v4_of(s[2], s[3])) || denied_v4(v4_of(!s[6], !s[7]));
    }
    ip.is_unspecified()
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001) // 64:ff9b:1::/48 local-use NAT64 (RFC 8215)
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // 100::/64 discard-only
        || (s[0] == 0x2001 && s[1] < 0x0200) // 2001::/23 IETF protocol assignments
        || (s[0] == 0x2001 && s[1] == 0x0db8) // 2001:db8::/32 documentation
        || (s[0] == 0x3fff && s[1] < 0x1000) // 3fff::/20 documentation (RFC 9637)
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
    /// sfud's own addresses: only the `exempt` sockets on them are reachable.
    own: Vec<IpAddr>,
}

impl PeerPolicy {
    pub fn new(allow_private: bool, exempt: Vec<SocketAddr>) -> Self {
        Self { allow_private, exempt, own: Vec::new() }
    }

    /// Adds sfud's own addresses (public ones included): on them only the
    /// media sockets may be reached. `allow_private` (test-only) lifts this
    /// too, as tests relay to peers on loopback beside sfud.
    pub fn with_own(mut self, own: Vec<IpAddr>) -> Self {
        self.own = own.into_iter().filter(|ip| !ip.is_unspecified()).map(|ip| ip.to_canonical()).collect();
        self
    }

    fn is_own(&self, ip: IpAddr) -> bool {
        self.own.contains(&ip.to_canonical())
    }

    fn is_exempt_ip(&self, ip: IpAddr) -> bool {
        self.exempt.iter().any(|a| same_ip(a.ip(), ip))
    }

    /// May a permission be installed for `ip`? Permissions are per IP
    /// (RFC 8656 §9), so an exempt media IP passes here and the port is
    /// checked per packet by [`permits_addr`](Self::permits_addr).
    pub fn permits_ip(&self, ip: IpAddr) -> bool {
        if self.allow_private {
            return true;
        }
        if self.is_exempt_ip(ip) {
            return true;
        }
        !is_denied(ip) && !self.is_own(ip)
    }

    /// May a packet go to `addr`? On sfud's own or a private IP only the
    /// media sockets are reachable, so the exemption opens one socket, not
    /// a host.
    pub fn permits_addr(&self, addr: SocketAddr) -> bool {
        if self.allow_private {
            return true;
        }
        if self.exempt.iter().any(|a| same_ip(a.ip(), addr.ip()) && a.port() == addr.port()) {
            return true;
        }
        !is_denied(addr.ip()) && !self.is_own(addr.ip()) && !self.is_exempt_ip(addr.ip())
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
            // RFC 6890 special-purpose ranges that are not global.
            "192.0.2.1", "198.18.0.1", "198.19.255.254", "198.51.100.7", "203.0.113.9",
            "192.88.99.1", "2001:db8::1", "100::1", "2001:2::1", "2001:10::1", "64:ff9b:1::1",
            "3fff::1",
            // IPv4 inside 6to4 (2002:AABB:CCDD::) and Teredo (server, !client).
            "2002:7f00:1::1", "2002:a00:1::", "2002:c612:1::1",
            "2001:0:808:808::f5ff:fffe", // Teredo, client 10.0.0.1
            "2001:0:a00:1::f7f7:f7f7",   // Teredo, server 10.0.0.1
        ] {
            assert!(is_denied(ip(s)), "{s} should be denied");
        }
    }

    #[test]
    fn allowed_ranges() {
        for s in [
            "8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.0", "172.15.255.255",
            "172.32.0.0", "192.169.0.1", "198.17.255.255", "198.20.0.1", "223.255.255.255",
            "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
            "2001:0:808:808::f7f7:f7f7", // Teredo, server and client 8.8.8.8
            "2001:200::1",
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
        // sfud's own public address: only the media socket is reachable.
        let public: SocketAddr = "8.8.4.4:7882".parse().unwrap();
        let p = PeerPolicy::new(false, vec![public]).with_own(vec![ip("8.8.4.4"), ip("9.9.9.9")]);
        assert!(p.permits_ip(ip("8.8.4.4")));
        assert!(p.permits_addr(public));
        assert!(!p.permits_addr("8.8.4.4:7880".parse().unwrap()));
        assert!(!p.permits_addr("8.8.4.4:3478".parse().unwrap()));
        assert!(!p.permits_ip(ip("9.9.9.9")));
        assert!(!p.permits_addr("[::ffff:9.9.9.9]:53".parse().unwrap()));
        assert!(p.permits_addr("8.8.8.8:53".parse().unwrap()));
        let open = PeerPolicy::new(true, vec![]);
        assert!(open.permits_ip(ip("127.0.0.1")));
        assert!(open.permits_addr("127.0.0.1:3480".parse().unwrap()));
    }
}
