//! A session owned by this shard: its ICE-lite agent, SRTP contexts and the
//! addresses its peer sends from.

use std::net::SocketAddr;

use crate::ice::IceLite;
use crate::msg::{SessionId, TrackId};
use crate::shard::outbox::{ConnId, Dest};
use crate::srtp::SrtpContext;

/// Paths remembered per session; the ICE agent keeps as many (`ice.rs`).
const MAX_PATHS: usize = 8;

pub struct Session {
    pub id: SessionId,
    pub ice: IceLite,
    /// Where we send: the nominated (or latest valid) ICE path.
    pub remote: Dest,
    pub tx: Option<SrtpContext>,
    pub rx: Option<SrtpContext>,
    /// Our SSRC as an RTCP sender (RR, PLI) towards this peer.
    pub rtcp_ssrc: u32,
    /// Downtrack SSRCs announced to this peer, to map its PLI/FIR/NACK back.
    pub down_ssrcs: Vec<(u32, TrackId)>,
    /// SSRCs this peer publishes, bound to their uptracks on first sight.
    up_ssrcs: Vec<(u32, TrackId)>,
    pub consent_reported: bool,
    /// The ICE agent knows paths by address only; this maps each address
    /// that passed a check to its transport, so a selected TCP path is
    /// answered on its connection. Oldest first.
    paths: Vec<(SocketAddr, Dest)>,
}

impl Session {
    pub fn new(id: SessionId, ice: IceLite, remote: Dest) -> Self {
        Session {
            id,
            ice,
            remote,
            tx: None,
            rx: None,
            rtcp_ssrc: rand::random::<u32>() | 1,
            down_ssrcs: Vec::new(),
            up_ssrcs: Vec::new(),
            consent_reported: false,
            paths: Vec::with_capacity(2),
        }
    }

    pub fn track_for_ssrc(&self, ssrc: u32) -> Option<TrackId> {
        self.down_ssrcs.iter().find(|(s, _)| *s == ssrc).map(|(_, t)| *t)
    }

    pub fn uptrack_for_ssrc(&self, ssrc: u32) -> Option<TrackId> {
        self.up_ssrcs.iter().find(|(s, _)| *s == ssrc).map(|(_, t)| *t)
    }

    pub fn bind_uptrack_ssrc(&mut self, ssrc: u32, track: TrackId) {
        if self.uptrack_for_ssrc(ssrc).is_none() {
            self.up_ssrcs.push((ssrc, track));
        }
    }

    pub fn unbind_uptrack(&mut self, track: TrackId) {
        self.up_ssrcs.retain(|(_, t)| *t != track);
    }

    /// A valid check arrived from `addr` over `via`. Returns the transport
    /// of the path this evicted, if any, so its route can go too.
    pub fn learn_path(&mut self, addr: SocketAddr, via: Dest) -> Option<Dest> {
        if let Some(p) = self.paths.iter_mut().find(|(a, _)| *a == addr) {
            p.1 = via;
            return None;
        }
        let evicted = (self.paths.len() >= MAX_PATHS).then(|| self.paths.remove(0).1);
        self.paths.push((addr, via));
        evicted.filter(|d| *d != via)
    }

    /// The transport of a path the ICE agent selected; None if that path's
    /// connection has closed since (or it was never learnt).
    pub fn dest_for(&self, addr: SocketAddr) -> Option<Dest> {
        self.paths.iter().find(|(a, _)| *a == addr).map(|(_, d)| *d)
    }

    /// A TCP connection closed: forget its path so it is not selected again.
    pub fn forget_conn(&mut self, conn: ConnId) {
        self.paths.retain(|(_, d)| *d != Dest::Tcp(conn));
    }

    /// The ICE agent's choice, as a transport; keeps the current one when
    /// the agent's choice has no live transport.
    pub fn reselect(&mut self) -> bool {
        let Some(selected) = self.ice.selected() else { return false };
        match self.dest_for(selected) {
            Some(d) if d != self.remote => {
                self.remote = d;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_addresses_to_transports() {
        let a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "10.0.0.1:5001".parse().unwrap();
        let mut s = Session::new(SessionId(1), IceLite::new("u", "p"), Dest::Udp(a));
        s.learn_path(a, Dest::Udp(a));
        s.learn_path(b, Dest::Tcp(ConnId(3)));
        assert_eq!(s.dest_for(b), Some(Dest::Tcp(ConnId(3))));
        s.forget_conn(ConnId(3));
        assert_eq!(s.dest_for(b), None);
        for port in 0..20 {
            let p = SocketAddr::from(([10, 0, 0, 2], port));
            s.learn_path(p, Dest::Udp(p));
        }
        assert_eq!(s.paths.len(), MAX_PATHS, "bounded");
        assert_eq!(s.dest_for(a), None, "oldest evicted");
    }
}
