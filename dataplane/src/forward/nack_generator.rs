//! Which packets of an uptrack to NACK toward its publisher, and when.
//!
//! Holes in the received sequence become missing entries. Each is requested
//! once a short reorder allowance has passed (most "losses" on a real path
//! are packets a few ms late), then again every round trip, until it arrives,
//! runs out of retries or grows too old to matter. Recovery that fails ends
//! in one keyframe request instead: past that point only a keyframe repairs
//! the picture. A keyframe that does arrive makes every hole before it moot.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Missing entries held at most; a bigger hole is not worth NACKing piece
/// by piece (and NACKing it would itself be a burst toward the publisher).
const MAX_MISSING: usize = 500;

/// Requests per missing packet.
const MAX_REQUESTS: u8 = 10;

/// Age at which a hole is abandoned: a frame that late is useless to the
/// subscribers' jitter buffers.
const MAX_AGE: Duration = Duration::from_secs(1);

/// Wait before the first request: reordering on a path is usually a few ms.
const REORDER_ALLOWANCE: Duration = Duration::from_millis(5);

/// Added to the RTT before a request is repeated, so the retransmission
/// answering the previous one has a moment to arrive.
const RETRY_MARGIN: Duration = Duration::from_millis(10);

/// Recent sequence numbers remembered as received, to tell duplicates from
/// packets that come after their hole was abandoned.
const WINDOW: u64 = 1024;
const WORDS: usize = WINDOW as usize / 64;

/// What an arriving packet was to the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Newer than anything before (possibly after a hole).
    InOrder,
    /// Fills a hole: late, or the answer to a NACK.
    Recovered,
    /// Already received.
    Duplicate,
    /// Older than what is tracked, or its hole was abandoned or made moot
    /// by a keyframe.
    TooOld,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NackStats {
    /// Sequence numbers requested, counting retries.
    pub nacks_sent: u64,
    /// Holes filled, whether by a late packet or a retransmission.
    pub recovered: u64,
    /// Holes dropped unfilled: out of retries, too old, or pushed out by a
    /// flood of new ones.
    pub given_up: u64,
}

#[derive(Debug, Clone, Copy)]
struct Missing {
    ext_seq: u64,
    detected: Instant,
    last_request: Option<Instant>,
    requests: u8,
}

pub struct NackGenerator {
    highest: Option<u64>,
    /// Request-to-repair time of the last packet recovered after one NACK.
    rtt_sample: Option<Duration>,
    /// One bit per ext seq in (highest - WINDOW, highest].
    received: [u64; WORDS],
    /// Ascending by ext seq; never holds more than MAX_MISSING.
    missing: VecDeque<Missing>,
    keyframe_needed: bool,
    stats: NackStats,
}

impl Default for NackGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl NackGenerator {
    pub fn new() -> Self {
        NackGenerator {
            highest: None,
            rtt_sample: None,
            received: [0; WORDS],
            missing: VecDeque::with_capacity(MAX_MISSING),
            keyframe_needed: false,
            stats: NackStats::default(),
        }
    }

    /// Every received packet's extended seq (originals and retransmissions).
    pub fn on_packet(&mut self, ext_seq: u64, keyframe: bool, now: Instant) -> Arrival {
        let Some(highest) = self.highest else {
            self.highest = Some(ext_seq);
            self.set_received(ext_seq);
            return Arrival::InOrder;
        };
        if ext_seq > highest {
            if keyframe {
                // Everything before it is moot, and so is a pending request
                // for a keyframe: this one repairs whatever was lost.
                self.missing.clear();
                self.keyframe_needed = false;
            } else {
                self.add_hole(highest + 1, ext_seq, now);
            }
            self.advance(highest, ext_seq);
            return Arrival::InOrder;
        }
        if ext_seq == highest {
            return Arrival::Duplicate;
        }
        if let Ok(i) = self.missing.binary_search_by_key(&ext_seq, |m| m.ext_seq) {
            // Karn's rule: only a packet asked for once says unambiguously
            // how long a request took to be answered.
            if let Some(m) = self.missing.remove(i) {
                if let (1, Some(asked)) = (m.requests, m.last_request) {
                    self.rtt_sample = Some(now.saturating_duration_since(asked));
                }
            }
            self.stats.recovered += 1;
            if highest - ext_seq < WINDOW {
                self.set_received(ext_seq);
            }
            if keyframe {
                self.drop_before(ext_seq);
            }
            return Arrival::Recovered;
        }
        if highest - ext_seq < WINDOW && self.is_received(ext_seq) {
            Arrival::Duplicate
        } else {
            Arrival::TooOld
        }
    }

    /// Sequence numbers to NACK now (written into `out`, which the caller clears/reuses).
    /// A seq is first requested after a small reorder allowance, and re-requested only
    /// when `rtt` plus a margin has passed since the last request.
    pub fn poll(&mut self, now: Instant, rtt: Duration, out: &mut Vec<u16>) {
        let interval = rtt.saturating_add(RETRY_MARGIN);
        let mut requested = 0;
        let mut given_up = 0;
        self.missing.retain_mut(|m| {
            let due = match m.last_request {
                None => now.saturating_duration_since(m.detected) >= REORDER_ALLOWANCE,
                Some(t) => now.saturating_duration_since(t) >= interval,
            };
            if now.saturating_duration_since(m.detected) >= MAX_AGE
                || (due && m.requests >= MAX_REQUESTS)
            {
                given_up += 1;
                return false;
            }
            if due {
                out.push(m.ext_seq as u16);
                m.requests += 1;
                m.last_request = Some(now);
                requested += 1;
            }
            true
        });
        self.stats.nacks_sent += requested;
        self.give_up(given_up);
    }

    /// True once after recovery failed (a seq gave up after max retries/max age, or a gap too
    /// large to NACK): the caller asks the publisher for a keyframe.
    pub fn take_keyframe_needed(&mut self) -> bool {
        std::mem::take(&mut self.keyframe_needed)
    }

    /// When `poll` next has something to do (possibly already past).
    pub fn poll_timeout(&self, rtt: Duration) -> Option<Instant> {
        let interval = rtt.saturating_add(RETRY_MARGIN);
        self.missing
            .iter()
            .map(|m| {
                let next = match m.last_request {
                    None => m.detected + REORDER_ALLOWANCE,
                    Some(t) => t + interval,
                };
                next.min(m.detected + MAX_AGE)
            })
            .min()
    }

    /// How long the last repair took after a single NACK: a round-trip
    /// sample toward a publisher, which gives sfud no other one (it sends
    /// the publisher no media, so its RRs echo nothing of ours).
    pub fn take_rtt_sample(&mut self) -> Option<Duration> {
        self.rtt_sample.take()
    }

    pub fn stats(&self) -> NackStats {
        self.stats
    }

    /// Records the hole [from, to) as missing, or gives up on recovery when
    /// it cannot be held.
    fn add_hole(&mut self, from: u64, to: u64, now: Instant) {
        let size = to - from;
        if size == 0 {
            return;
        }
        if size > MAX_MISSING as u64 {
            self.give_up(self.missing.len() as u64);
            self.missing.clear();
            // Even with nothing held, this hole itself is a failed recovery.
            self.keyframe_needed = true;
            return;
        }
        let size = size as usize;
        let overflow = (self.missing.len() + size).saturating_sub(MAX_MISSING);
        if overflow > 0 {
            // The oldest holes are the least likely to still be useful.
            self.missing.drain(..overflow);
            self.give_up(overflow as u64);
        }
        for ext_seq in from..to {
            self.missing.push_back(Missing {
                ext_seq,
                detected: now,
                last_request: None,
                requests: 0,
            });
        }
    }

    fn drop_before(&mut self, ext_seq: u64) {
        while self.missing.front().is_some_and(|m| m.ext_seq < ext_seq) {
            self.missing.pop_front();
        }
    }

    fn give_up(&mut self, count: u64) {
        if count > 0 {
            self.stats.given_up += count;
            self.keyframe_needed = true;
        }
    }

    /// Moves the head from `highest` to `ext_seq`, forgetting the bits the
    /// window slides past.
    fn advance(&mut self, highest: u64, ext_seq: u64) {
        if ext_seq - highest >= WINDOW {
            self.received = [0; WORDS];
        } else {
            for s in highest + 1..ext_seq {
                let (word, bit) = Self::bit(s);
                self.received[word] &= !bit;
            }
        }
        self.highest = Some(ext_seq);
        self.set_received(ext_seq);
    }

    fn bit(ext_seq: u64) -> (usize, u64) {
        let pos = ext_seq % WINDOW;
        ((pos / 64) as usize, 1 << (pos % 64))
    }

    fn set_received(&mut self, ext_seq: u64) {
        let (word, bit) = Self::bit(ext_seq);
        self.received[word] |= bit;
    }

    fn is_received(&self, ext_seq: u64) -> bool {
        let (word, bit) = Self::bit(ext_seq);
        self.received[word] & bit != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::SeqUnwrapper;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);
    const RTT: Duration = Duration::from_millis(40);

    fn polled(g: &mut NackGenerator, now: Instant, rtt: Duration) -> Vec<u16> {
        let mut out = Vec::new();
        g.poll(now, rtt, &mut out);
        out
    }

    #[test]
    fn repairs_after_one_request_sample_the_rtt() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new();
        let mut out = Vec::new();
        g.on_packet(100, false, t0);
        g.on_packet(102, false, t0);
        let t1 = t0 + Duration::from_millis(10);
        g.poll(t1, Duration::from_millis(50), &mut out);
        assert_eq!(out, vec![101]);
        assert_eq!(g.take_rtt_sample(), None);
        assert_eq!(g.on_packet(101, false, t1 + Duration::from_millis(7)), Arrival::Recovered);
        assert_eq!(g.take_rtt_sample(), Some(Duration::from_millis(7)));
        assert_eq!(g.take_rtt_sample(), None, "taken once");
    }

    #[test]
    fn in_order_asks_for_nothing() {
        let mut g = NackGenerator::new();
        let t = Instant::now();
        for s in 100..200 {
            assert_eq!(g.on_packet(s, false, t), Arrival::InOrder);
        }
        assert!(polled(&mut g, t + MS * 100, RTT).is_empty());
        assert_eq!(g.poll_timeout(RTT), None);
        assert_eq!(g.stats(), NackStats::default());
    }

    #[test]
    fn a_hole_is_requested_after_the_reorder_allowance() {
        let mut g = NackGenerator::new();
        let t = Instant::now();
        g.on_packet(10, false, t);
        g.on_packet(13, false, t);
        assert!(polled(&mut g, t, RTT).is_empty());
        assert_eq!(g.poll_timeout(RTT), Some(t + REORDER_ALLOWANCE));
        assert_eq!(polled(&mut g, t + REORDER_ALLOWANCE, RTT), vec![11, 12]);
        assert_eq!(g.stats().nacks_sent, 2);
    }

    #[test]
    fn reordering_within_the_allowance_is_not_nacked() {
        let mut g = NackGenerator::new();
        let t = Instant::now();
        g.on_packet(10, false, t);
        g.on_packet(12, false, t);
        assert_eq!(g.on_packet(11, false, t + 2 * MS), Arrival::Recovered);
        assert!(polled(&mut g, t + 10 * MS, RTT).is_empty());
        assert_eq!(g.poll_timeout(RTT), None);
        assert_eq!(
            g.stats(),
            NackStats {
                nacks_sent: 0,
                recovered: 1,
                given_up: 0
            }
        );
    }

    #[test]
    fn retries_are_spaced_by_the_rtt() {
        let mut g = NackGenerator::new();
        let t = Instant::now();
        g.on_packet(1, false, t);
        g.on_packet(3, false, t);
        let first = t + REORDER_ALLOWANCE;
        assert_eq!(polled(&mut g, first, RTT), vec![2]);
        assert!(polled(&mut g, first + RTT, RTT).is_empty());
        assert_eq!(g.poll_timeout(RTT), Some(first + RTT + RETRY_MARGIN));
        assert_eq!(polled(&mut g, first + RTT + RETRY_MARGIN, RTT), vec![2]);
        // The retransmission arrives: nothing more to ask.
        assert_eq!(g.on_packet(2, false, first + 2 * RTT), Arrival::Recovered);
        assert!(polled(&mut g, first + 5 * RTT, RTT).is_empty());
        assert_eq!(
            g.stats(),
            NackStats {
                nacks_sent: 2,
                recovered: 1,
                given_up: 0
            }
        );
    }

    #[test]
    fn out_of_retries_gives_up_and_wants_a_keyframe() {
        let mut g = NackGenerator::new();
        let t = Instant::now();
        let rtt = 10 * MS;
        g.on_packet(1, false, t);
        g.on_packet(3, false, t);
        let mut requests = 0;
        let mut now = t;
        while now < t + MAX_AGE / 2 {
            requests += polled(&mut g, now, rtt).len();
            now += MS;
        }
        assert_eq!(requests, usize::from(MAX_REQUESTS));
        assert_eq!(g.poll_timeout(rtt), None);
        assert!(g.take_keyframe_needed());
        assert!(!g.take_keyframe_needed());
        assert_eq!(g.stats().given_up, 1);
        assert_eq!(g.on_packet(2, false, now), Arrival::TooOld);
    }

    #[test]
    fn too_old_gives_up_and_wants_a_keyframe() {
        let mut g = NackGenerator::new();
        let t = Instant::now();
        let rtt = Duration::from_millis(400);
        g.on_packet(1, false, t);
        g.on_packet(3, false, t);
        assert_eq!(polled(&mut g, t + REORDER_ALLOWANCE, rtt), vec![2]);
        assert_eq!(polled(&mut g, t + 500 * MS, rtt), vec![2]);
        assert_eq!(g.poll_timeout(rtt), Some(t + 500 * MS + rtt + RETRY_MARGIN));
        assert!(polled(&mut g, t + MAX_AGE, rtt).is_empty());
        assert!(g.take_keyframe_needed());
        assert_eq!(g.stats().given_up, 1);
        assert_eq!(g.stats().nacks_sent, 2);
    }

    #[test]
    fn a_hole_too_large_clears_the_list_and_wants_a_keyframe() {
        let mut g = NackGenerator::new();
        let t = Instant::now();
        g.on_packet(1, false, t);
        g.on_packet(5, false, t); // 2, 3, 4 missing
        g.on_packet(5 + MAX_MISSING as u64 + 2, false, t);
        assert!(g.take_keyframe_needed());
        assert!(polled(&mut g, t + 10 * MS, RTT).is_empty());
        assert_eq!(g.stats().given_up, 3);
    }

    #[test]
    fn a_full_list_drops_its_oldest() {
        let mut g = NackGenerator::new();
        let t = Instant::now();
        g.on_packet(0, false, t);
        // Every other packet lost: 300 holes, then 300 more.
        for s in 1..=600u64 {
            g.on_packet(2 * s, false, t);
        }
        assert!(g.take_keyframe_needed());
        assert_eq!(g.stats().given_up, 100);
        let asked = polled(&mut g, t + REORDER_ALLOWANCE, RTT);
        assert_eq!(asked.len(), MAX_MISSING);
        assert_eq!(asked.first(), Some(&201));
        assert_eq!(asked.last(), Some(&1199));
    }

    #[test]
    fn a_keyframe_makes_older_holes_moot() {
        let mut g = NackGenerator::new();
        let t = Instant::now();
        g.on_packet(1, false, t);
        g.on_packet(4, false, t); // 2, 3 missing
        g.on_packet(10, false, t); // 5..=9 missing
        g.on_packet(600, false, t); // too big: keyframe needed
        assert_eq!(g.on_packet(601, true, t), Arrival::InOrder);
        // The keyframe also answers the pending keyframe request.
        assert!(!g.take_keyframe_needed());
        g.on_packet(603, false, t); // 602 missing
                                    // A late keyframe start drops only what is older than it.
        g.on_packet(607, false, t); // 604..=606 missing
        assert_eq!(g.on_packet(605, true, t), Arrival::Recovered);
        assert_eq!(polled(&mut g, t + REORDER_ALLOWANCE, RTT), vec![606]);
    }

    #[test]
    fn a_keyframe_after_a_hole_does_not_nack_it() {
        let mut g = NackGenerator::new();
        let t = Instant::now();
        g.on_packet(1, false, t);
        g.on_packet(5, true, t);
        assert!(polled(&mut g, t + REORDER_ALLOWANCE, RTT).is_empty());
        assert_eq!(g.on_packet(3, false, t), Arrival::TooOld);
    }

    #[test]
    fn duplicates_and_stragglers() {
        let mut g = NackGenerator::new();
        let t = Instant::now();
        assert_eq!(g.on_packet(5000, false, t), Arrival::InOrder);
        assert_eq!(g.on_packet(5000, false, t), Arrival::Duplicate);
        assert_eq!(g.on_packet(4999, false, t), Arrival::TooOld); // before the first
        g.on_packet(5002, false, t);
        assert_eq!(g.on_packet(5001, false, t), Arrival::Recovered);
        assert_eq!(g.on_packet(5001, false, t), Arrival::Duplicate);
        for s in 5003..5003 + WINDOW {
            g.on_packet(s, false, t);
        }
        assert_eq!(g.on_packet(5002, false, t), Arrival::TooOld);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut g = NackGenerator::new();
        let mut u = SeqUnwrapper::new();
        let t = Instant::now();
        for s in [65533u16, 65534, 1, 2] {
            assert_eq!(g.on_packet(u.unwrap(s), false, t), Arrival::InOrder);
        }
        assert_eq!(polled(&mut g, t + REORDER_ALLOWANCE, RTT), vec![65535, 0]);
        assert_eq!(g.on_packet(u.unwrap(0), false, t), Arrival::Recovered);
        assert_eq!(
            polled(&mut g, t + REORDER_ALLOWANCE + RTT + RETRY_MARGIN, RTT),
            vec![65535]
        );
    }

    proptest! {
        #[test]
        fn random_arrivals_stay_bounded(
            steps in prop::collection::vec((0u64..1200, any::<bool>(), any::<bool>(), 0u64..30), 0..400),
        ) {
            let mut g = NackGenerator::new();
            let t = Instant::now();
            let mut now = t;
            let mut base = 1u64 << 20;
            let mut out = Vec::new();
            for (delta, back, keyframe, ms) in steps {
                let s = if back { base.saturating_sub(delta) } else { base + delta };
                base = base.max(s);
                g.on_packet(s, keyframe, now);
                now += Duration::from_millis(ms);
                out.clear();
                g.poll(now, RTT, &mut out);
                prop_assert!(out.len() <= MAX_MISSING);
                prop_assert!(g.missing.len() <= MAX_MISSING);
                prop_assert!(g.missing.iter().zip(g.missing.iter().skip(1)).all(|(a, b)| a.ext_seq < b.ext_seq));
                prop_assert!(g.missing.iter().all(|m| m.requests <= MAX_REQUESTS));
                if let Some(at) = g.poll_timeout(RTT) {
                    prop_assert!(at <= now + MAX_AGE);
                }
            }
        }
    }
}
