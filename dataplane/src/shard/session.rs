//! A session owned by this shard: its ICE-lite agent, SRTP contexts and the
//! addresses its peer sends from.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::forward::allocator::Allocator;
use crate::forward::bwe::{BandwidthEstimator, SentMedia};
use crate::forward::resend_budget::ResendBudget;
use crate::forward::twcc_receiver::TwccReceiver;
use crate::ice::IceLite;
use crate::msg::{SessionId, TrackId};
use crate::shard::outbox::{ConnId, Dest};
use crate::srtp::SrtpContext;

/// Paths remembered per session; the ICE agent keeps as many (`ice.rs`).
const MAX_PATHS: usize = 8;

/// Round-trip time assumed until RR/SR exchanges measure one.
const DEFAULT_RTT: Duration = Duration::from_millis(100);

/// Where a subscriber's estimate starts, before feedback moves it.
const INITIAL_ESTIMATE_BPS: u64 = 1_000_000;

/// Lines from a session's start that hold what a send reads of it: the
/// fields before `tx`, then `tx`'s own head.
const WARM_HEAD_LINES: usize = 1 + SrtpContext::HEAD_LINES;

/// Sender Reports remembered to match the LSR echoed in RRs.
const SR_HISTORY: usize = 4;

/// `repr(C)`: what every send reads leads, so the fan-out warms it as a
/// few consecutive lines (`warm_lines`, checked by the layout test).
#[repr(C)]
pub struct Session {
    pub id: SessionId,
    /// The next transport-wide sequence number we stamp on what we send
    /// this peer (its estimate of the peer's downlink is `bwe`).
    pub transport_seq: u16,
    /// RTP bytes sent to this peer (media, resends, probes).
    pub bytes_sent: u64,
    /// Where we send: the nominated (or latest valid) ICE path.
    pub remote: Dest,
    pub tx: Option<SrtpContext>,
    pub ice: IceLite,
    pub rx: Option<SrtpContext>,
    /// Our SSRC as an RTCP sender (RR, PLI) towards this peer.
    pub rtcp_ssrc: u32,
    /// Downtrack SSRCs announced to this peer, to map its PLI/FIR/NACK back.
    pub down_ssrcs: Vec<(u32, TrackId)>,
    /// SSRCs this peer publishes, bound to their uptracks on first sight;
    /// `true` marks a repair (RTX) stream.
    up_ssrcs: Vec<(u32, TrackId, bool)>,
    /// Transport-wide congestion feedback we owe this peer as a publisher,
    /// and the header extension id its sequence numbers come in.
    pub twcc: Option<(u8, TwccReceiver)>,
    pub bwe: BandwidthEstimator,
    /// Retransmissions to this peer, within a share of `bwe`'s estimate.
    pub resend_budget: ResendBudget,
    /// Shares `bwe`'s estimate among this subscriber's simulcast videos.
    pub allocator: Allocator,
    /// Probe pacing: bytes still owed, when last paced and `bytes_sent` then,
    /// and which recent packet the next probe repeats.
    pub probe_credit: f64,
    pub probe_paced: Option<(Instant, u64)>,
    pub probe_turn: u16,
    /// Measured from the LSR/DLSR in this peer's receiver reports.
    pub rtt: Duration,
    rtt_measured: bool,
    sr_sent: [(u32, Option<Instant>); SR_HISTORY],
    sr_next: usize,
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
            twcc: None,
            transport_seq: rand::random::<u16>(),
            bwe: BandwidthEstimator::new(INITIAL_ESTIMATE_BPS),
            resend_budget: ResendBudget::default(),
            allocator: Allocator::default(),
            bytes_sent: 0,
            probe_credit: 0.0,
            probe_paced: None,
            probe_turn: 0,
            rtt: DEFAULT_RTT,
            rtt_measured: false,
            sr_sent: [(0, None); SR_HISTORY],
            sr_next: 0,
            consent_reported: false,
            paths: Vec::with_capacity(2),
        }
    }

    pub fn track_for_ssrc(&self, ssrc: u32) -> Option<TrackId> {
        self.down_ssrcs.iter().find(|(s, _)| *s == ssrc).map(|(_, t)| *t)
    }

    /// The uptrack an SSRC of this peer belongs to, and whether it is
    /// that track's repair stream.
    pub fn uptrack_for_ssrc(&self, ssrc: u32) -> Option<(TrackId, bool)> {
        self.up_ssrcs.iter().find(|(s, _, _)| *s == ssrc).map(|(_, t, rtx)| (*t, *rtx))
    }

    pub fn bind_uptrack_ssrc(&mut self, ssrc: u32, track: TrackId, rtx: bool) {
        if self.uptrack_for_ssrc(ssrc).is_none() {
            self.up_ssrcs.push((ssrc, track, rtx));
        }
    }

    pub fn unbind_uptrack(&mut self, track: TrackId) {
        self.up_ssrcs.retain(|(_, t, _)| *t != track);
    }

    /// A media SSRC of this peer's, to name in feedback that is about the
    /// whole transport (browsers accept any of theirs).
    pub fn any_media_ssrc(&self) -> Option<u32> {
        self.up_ssrcs.iter().find(|(_, _, rtx)| !rtx).map(|(s, _, _)| *s)
    }

    /// Stage one of warming a send (see `crate::prefetch`): the lines of
    /// this session that `warm_send` and the send read, and with `stamped`
    /// the send history's. Address arithmetic only: nothing here loads
    /// from the session.
    #[inline]
    pub fn warm_lines(&self, stamped: bool) {
        crate::prefetch::head(self, WARM_HEAD_LINES);
        if stamped {
            self.bwe.warm_lines();
        }
    }

    /// Stage two: what sending this peer one packet touches beyond the
    /// session (its SRTP stream and key, and with `stamped`, the
    /// send-history slot). Reads only lines `warm_lines` asked for.
    #[inline]
    pub fn warm_send(&self, stamped: bool) {
        if let Some(tx) = &self.tx {
            tx.warm_protect();
        }
        if stamped {
            self.bwe.warm_send(self.transport_seq);
        }
    }

    /// We sent a packet stamped with `transport_seq`: the estimator learns
    /// of it and the next one gets a new number.
    pub fn sent_with_transport_seq(&mut self, size: usize, media: Option<SentMedia>, now: Instant) {
        self.bwe.on_sent(self.transport_seq, size, media, now);
        self.transport_seq = self.transport_seq.wrapping_add(1);
    }

    /// We sent an SR whose NTP time had these middle 32 bits.
    pub fn sr_sent(&mut self, ntp_middle: u32, now: Instant) {
        self.sr_sent[self.sr_next] = (ntp_middle, Some(now));
        self.sr_next = (self.sr_next + 1) % SR_HISTORY;
    }

    /// An RR block echoed one of our SRs: RTT = now - sent - DLSR.
    pub fn on_report_block(&mut self, lsr: u32, dlsr: u32, now: Instant) {
        if lsr == 0 {
            return;
        }
        let Some(sent) = self.sr_sent.iter().find(|(m, t)| *m == lsr && t.is_some()).and_then(|(_, t)| *t) else {
            return;
        };
        let held = Duration::from_micros(u64::from(dlsr) * 1_000_000 / 65_536);
        if let Some(rtt) = now.saturating_duration_since(sent).checked_sub(held) {
            // Smoothed like TCP's SRTT, so one late report does not swing
            // retries; the first sample replaces the guess outright, or a
            // 100 ms guess would hold resends back for many seconds.
            let rtt = rtt.max(Duration::from_millis(1));
            self.rtt = if self.rtt_measured { (self.rtt * 7 + rtt) / 8 } else { rtt };
            self.rtt_measured = true;
        }
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

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// `warm_lines` covers the leading fields and `tx`'s head: what
    /// `crate::prefetch::head` reaches from any start is at least
    /// 64 * (n - 1) + 1 bytes.
    #[test]
    fn what_a_send_reads_leads() {
        assert!(std::mem::offset_of!(Session, tx) <= 64);
        assert_eq!(std::mem::size_of::<Option<SrtpContext>>(), std::mem::size_of::<SrtpContext>());
    }
}
