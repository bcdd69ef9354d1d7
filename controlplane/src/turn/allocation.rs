//! One allocation's state (RFC 8656 §2.2): its relay address, lifetime,
//! permissions, channel bindings and bandwidth budget. Time is unix
//! milliseconds passed in by the caller, so tests control it.

use std::net::{IpAddr, SocketAddr};

use super::auth::LongTermKey;

/// How a client reaches us; part of the allocation's 5-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// Stream transports carry ChannelData padded to 4 bytes (RFC 8656 §12.5).
    pub fn is_stream(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

/// The client side of the 5-tuple. One listener per transport, so the
/// server half is implied by `transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey {
    pub transport: Transport,
    pub addr: SocketAddr,
}

/// Permissions and channels per allocation are capped so one client cannot
/// grow the server's memory without bound; real clients use a handful.
pub const MAX_PERMISSIONS: usize = 128;
pub const MAX_CHANNELS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel {
    pub number: u16,
    pub peer: SocketAddr,
    pub expires_ms: u64,
}

/// Why a channel could not be bound (both are 400 Bad Request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindConflict {
    /// The number is bound to another peer, or the peer to another number.
    InUse,
    Full,
}

#[derive(Debug)]
pub struct Allocation {
    pub client: ClientKey,
    pub relay: SocketAddr,
    pub username: String,
    pub key: LongTermKey,
    pub expires_ms: u64,
    /// Transaction id of the Allocate that created it, so a retransmitted
    /// request gets a success instead of 437 (RFC 8656 §7.2).
    pub allocate_tid: [u8; 12],
    permissions: Vec<(IpAddr, u64)>,
    channels: Vec<Channel>,
    pub bucket: TokenBucket,
}

impl Allocation {
    pub fn new(
        client: ClientKey,
        relay: SocketAddr,
        username: String,
        key: LongTermKey,
        expires_ms: u64,
        allocate_tid: [u8; 12],
        bucket: TokenBucket,
    ) -> Self {
        Self {
            client,
            relay,
            username,
            key,
            expires_ms,
            allocate_tid,
            permissions: Vec::new(),
            channels: Vec::new(),
            bucket,
        }
    }

    /// Installs or refreshes; false when the table is full.
    pub fn permit(&mut self, ip: IpAddr, expires_ms: u64) -> bool {
        let ip = ip.to_canonical();
        if let Some(p) = self.permissions.iter_mut().find(|(i, _)| *i == ip) {
            p.1 = expires_ms;
            return true;
        }
        if self.permissions.len() >= MAX_PERMISSIONS {
            return false;
        }
        self.permissions.push((ip, expires_ms));
        true
    }

    pub fn has_room_for_permissions(&self, ips: &[IpAddr]) -> bool {
        let new = ips
            .iter()
            .filter(|ip| !self.permissions.iter().any(|(i, _)| *i == ip.to_canonical()))
            .count();
        self.permissions.len() + new <= MAX_PERMISSIONS
    }

    pub fn is_permitted(&self, ip: IpAddr, now_ms: u64) -> bool {
        let ip = ip.to_canonical();
        self.permissions.iter().any(|&(i, exp)| i == ip && exp > now_ms)
    }

    /// Checks a ChannelBind against existing bindings without changing
    /// anything, so the caller can validate everything before acting.
    pub fn check_bind(&self, number: u16, peer: SocketAddr) -> Result<(), BindConflict> {
        for c in &self.channels {
            let same_num = c.number == number;
            let same_peer = c.peer == peer;
            if same_num != same_peer {
                return Err(BindConflict::InUse);
            }
            if same_num {
                return Ok(());
            }
        }
        if self.channels.len() >= MAX_CHANNELS {
            return Err(BindConflict::Full);
        }
        Ok(())
    }

    pub fn bind(&mut self, number: u16, peer: SocketAddr, expires_ms: u64) -> Result<(), BindConflict> {
        self.check_bind(number, peer)?;
        if let Some(c) = self.channels.iter_mut().find(|c| c.number == number) {
            c.expires_ms = expires_ms;
        } else {
            self.channels.push(Channel { number, peer, expires_ms });
        }
        Ok(())
    }

    pub fn channel_peer(&self, number: u16, now_ms: u64) -> Option<SocketAddr> {
        self.channels
            .iter()
            .find(|c| c.number == number && c.expires_ms > now_ms)
            .map(|c| c.peer)
    }

    pub fn channel_for_peer(&self, peer: SocketAddr, now_ms: u64) -> Option<u16> {
        self.channels
            .iter()
            .find(|c| c.peer == peer && c.expires_ms > now_ms)
            .map(|c| c.number)
    }

    /// Drops expired permissions and channels.
    pub fn sweep(&mut self, now_ms: u64) {
        self.permissions.retain(|&(_, exp)| exp > now_ms);
        self.channels.retain(|c| c.expires_ms > now_ms);
    }

    pub fn permission_count(&self) -> usize {
        self.permissions.len()
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }
}

/// Relay bandwidth cap. Holds up to one second of traffic so short bursts
/// (a keyframe) pass while the average stays under the rate.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Bytes per second; 0 = unlimited.
    rate: u64,
    tokens: u64,
    last_ms: u64,
}

impl TokenBucket {
    pub fn new(bits_per_sec: u64, now_ms: u64) -> Self {
        let rate = bits_per_sec / 8;
        Self { rate, tokens: rate, last_ms: now_ms }
    }

    /// Takes `len` bytes if the budget allows.
    pub fn take(&mut self, len: usize, now_ms: u64) -> bool {
        if self.rate == 0 {
            return true;
        }
        let elapsed = now_ms.saturating_sub(self.last_ms);
        if elapsed > 0 {
            let add = self.rate.saturating_mul(elapsed) / 1000;
            // Only advance the clock by what was credited, so sub-byte
            // fractions at low rates are not lost between calls.
            if add > 0 {
                self.tokens = self.tokens.saturating_add(add).min(self.rate);
                self.last_ms = now_ms;
            }
        }
        let len = len as u64;
        if self.tokens >= len {
            self.tokens -= len;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc() -> Allocation {
        let client = ClientKey { transport: Transport::Udp, addr: "192.0.2.1:5000".parse().unwrap() };
        Allocation::new(client, "203.0.113.1:30000".parse().unwrap(), "u".into(), [0; 16], 600_000, [0; 12], TokenBucket::new(0, 0))
    }

    #[test]
    fn permissions_expire_and_refresh() {
        let mut a = alloc();
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        assert!(!a.is_permitted(ip, 0));
        assert!(a.permit(ip, 300_000));
        assert!(a.is_permitted(ip, 299_999));
        assert!(a.is_permitted("::ffff:198.51.100.7".parse().unwrap(), 0));
        assert!(!a.is_permitted(ip, 300_000));
        assert!(a.permit(ip, 600_000));
        assert_eq!(a.permission_count(), 1);
        a.sweep(600_000);
        assert_eq!(a.permission_count(), 0);
    }

    #[test]
    fn permission_cap() {
        let mut a = alloc();
        for i in 0..MAX_PERMISSIONS {
            assert!(a.permit(IpAddr::from([198, 51, (i >> 8) as u8, i as u8]), 1));
        }
        assert!(!a.permit("8.8.8.8".parse().unwrap(), 1));
        assert!(a.permit(IpAddr::from([198, 51, 0, 0]), 2), "refresh still works when full");
        assert!(!a.has_room_for_permissions(&["8.8.8.8".parse().unwrap()]));
    }

    #[test]
    fn channel_rules() {
        let mut a = alloc();
        let p1: SocketAddr = "198.51.100.1:1000".parse().unwrap();
        let p2: SocketAddr = "198.51.100.1:1001".parse().unwrap();
        a.bind(0x4000, p1, 10).unwrap();
        a.bind(0x4000, p1, 20).unwrap();
        assert_eq!(a.channel_count(), 1);
        assert_eq!(a.bind(0x4000, p2, 20), Err(BindConflict::InUse));
        assert_eq!(a.bind(0x4001, p1, 20), Err(BindConflict::InUse));
        a.bind(0x4001, p2, 20).unwrap();
        assert_eq!(a.channel_peer(0x4001, 19), Some(p2));
        assert_eq!(a.channel_for_peer(p1, 19), Some(0x4000));
        assert_eq!(a.channel_peer(0x4001, 20), None);
        a.sweep(20);
        assert_eq!(a.channel_count(), 0);
    }

    #[test]
    fn token_bucket() {
        let mut b = TokenBucket::new(8000, 0); // 1000 B/s
        assert!(b.take(1000, 0));
        assert!(!b.take(1, 0));
        assert!(b.take(500, 500));
        assert!(!b.take(1, 500));
        assert!(b.take(1000, 10_000), "refill caps at one second");
        assert!(!b.take(1, 10_000));
        let mut u = TokenBucket::new(0, 0);
        assert!(u.take(usize::MAX, 0));
    }
}
