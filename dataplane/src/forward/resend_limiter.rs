//! Bounds how often a downtrack answers the subscriber's NACKs for the same
//! packet: a NACK storm (a broken or hostile receiver, or a loss burst NACKed
//! over and over) then costs at most `MAX_RESENDS` copies of each packet,
//! spaced by the round trip, instead of one copy per NACK.

use std::time::{Duration, Instant};

/// Slots in the ring; a power of two so a seq's slot is a mask. More than a
/// second of video, longer than the retransmission cache keeps packets.
const SLOTS: usize = 1024;

/// Resends of one packet in all.
const MAX_RESENDS: u8 = 8;

/// An entry older than this belongs to an earlier trip of the 16-bit seq
/// space around the ring: nothing that old is still in the retransmission
/// cache, so it must not count against the packet now holding the number.
const ENTRY_LIFETIME: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
struct Entry {
    seq: u16,
    last: Instant,
    resends: u8,
}

pub struct ResendLimiter {
    slots: Box<[Option<Entry>]>,
}

impl Default for ResendLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl ResendLimiter {
    pub fn new() -> Self {
        ResendLimiter {
            slots: vec![None; SLOTS].into_boxed_slice(),
        }
    }

    /// Whether output seq `seq` may be resent now: at most once per `rtt` per packet, and at
    /// most `MAX_RESENDS` times in all. Records the resend when it returns true.
    pub fn allow(&mut self, seq: u16, now: Instant, rtt: Duration) -> bool {
        if !self.permits(seq, now, rtt) {
            return false;
        }
        self.record(seq, now);
        true
    }

    /// `allow` without recording, for callers that have a second gate (the
    /// session's resend budget) to pass before the resend really happens.
    pub fn permits(&self, seq: u16, now: Instant, rtt: Duration) -> bool {
        match self.slots.get(usize::from(seq) & (SLOTS - 1)) {
            Some(Some(e)) if e.seq == seq && now.saturating_duration_since(e.last) < ENTRY_LIFETIME => {
                // Within one RTT the first copy may still be in flight: a
                // second NACK for it is a repeat, not news of a second loss.
                e.resends < MAX_RESENDS && now.saturating_duration_since(e.last) >= rtt
            }
            Some(_) => true,
            None => false,
        }
    }

    /// Whether `seq` may be repaired now: the copy reported lost was its
    /// `attempt`-th (0 for the original) and nothing was resent since. A
    /// report is evidence, so no round trip needs to pass, but the count
    /// bound holds.
    pub fn permits_repair(&self, seq: u16, attempt: u8, now: Instant) -> bool {
        let resends = match self.slots.get(usize::from(seq) & (SLOTS - 1)) {
            Some(Some(e)) if e.seq == seq && now.saturating_duration_since(e.last) < ENTRY_LIFETIME => e.resends,
            _ => 0,
        };
        resends == attempt && resends < MAX_RESENDS
    }

    /// Counts a resend of `seq` made now; returns how many there were.
    pub fn record(&mut self, seq: u16, now: Instant) -> u8 {
        let Some(slot) = self.slots.get_mut(usize::from(seq) & (SLOTS - 1)) else { return 0 };
        match slot {
            Some(e) if e.seq == seq && now.saturating_duration_since(e.last) < ENTRY_LIFETIME => {
                e.resends = e.resends.saturating_add(1);
                e.last = now;
                e.resends
            }
            _ => {
                *slot = Some(Entry { seq, last: now, resends: 1 });
                1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(50);
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn once_per_rtt() {
        let mut l = ResendLimiter::new();
        let t = Instant::now();
        assert!(l.allow(100, t, RTT));
        assert!(!l.allow(100, t, RTT));
        assert!(!l.allow(100, t + 49 * MS, RTT));
        assert!(l.allow(100, t + 50 * MS, RTT));
        assert!(!l.allow(100, t + 60 * MS, RTT));
        // Other packets are independent.
        assert!(l.allow(101, t + 60 * MS, RTT));
    }

    #[test]
    fn permits_spends_nothing_until_recorded() {
        let mut l = ResendLimiter::new();
        let t = Instant::now();
        // A resend another gate refused must not count against the packet.
        for _ in 0..20 {
            assert!(l.permits(5, t, RTT));
        }
        l.record(5, t);
        assert!(!l.permits(5, t + MS, RTT));
        assert!(l.permits(5, t + RTT, RTT));
    }

    #[test]
    fn capped_in_all() {
        let mut l = ResendLimiter::new();
        let t = Instant::now();
        let allowed = (0..20).filter(|&i| l.allow(7, t + i * RTT, RTT)).count();
        assert_eq!(allowed, usize::from(MAX_RESENDS));
    }

    #[test]
    fn wrap_keeps_neighbours_apart() {
        let mut l = ResendLimiter::new();
        let t = Instant::now();
        assert!(l.allow(65535, t, RTT));
        assert!(l.allow(0, t, RTT));
        assert!(!l.allow(65535, t, RTT));
        assert!(!l.allow(0, t, RTT));
    }

    #[test]
    fn another_seq_in_the_slot_resets_it() {
        let mut l = ResendLimiter::new();
        let t = Instant::now();
        for i in 0..u32::from(MAX_RESENDS) {
            assert!(l.allow(5, t + i * RTT, RTT));
        }
        assert!(!l.allow(5, t + 10 * RTT, RTT));
        // Same slot, another packet: a fresh budget, allowed at once.
        assert!(l.allow(5 + SLOTS as u16, t + 10 * RTT, RTT));
        // And seq 5 came back: also a fresh entry (the old one was replaced).
        assert!(l.allow(5, t + 10 * RTT, RTT));
    }

    #[test]
    fn same_seq_a_wrap_later_is_a_new_packet() {
        let mut l = ResendLimiter::new();
        let t = Instant::now();
        for i in 0..u32::from(MAX_RESENDS) {
            assert!(l.allow(9, t + i * RTT, RTT));
        }
        assert!(!l.allow(9, t + 20 * RTT, RTT));
        assert!(l.allow(9, t + 8 * RTT + ENTRY_LIFETIME, RTT));
    }

    #[test]
    fn a_repair_answers_the_copy_reported_lost_and_no_other() {
        let mut l = ResendLimiter::new();
        let t = Instant::now();
        // The original was lost and no NACK came: repair it, once.
        assert!(l.permits_repair(3, 0, t));
        assert_eq!(l.record(3, t), 1);
        assert!(!l.permits_repair(3, 0, t + MS));
        // A NACK answered the loss first: the original's report is old news,
        // but the resend's own loss is not, however soon it is reported.
        assert_eq!(l.record(4, t), 1);
        assert!(!l.permits_repair(4, 0, t + MS));
        assert!(l.permits_repair(4, 1, t + MS));
        // A later resend already went out: the report of the earlier one is moot.
        assert_eq!(l.record(4, t + RTT), 2);
        assert!(!l.permits_repair(4, 1, t + RTT + MS));
        // The count bound holds for repairs too.
        let mut n = 2;
        while l.permits_repair(4, n, t + RTT) {
            n = l.record(4, t + RTT);
        }
        assert_eq!(n, MAX_RESENDS);
    }

    #[test]
    fn zero_rtt_still_capped() {
        let mut l = ResendLimiter::new();
        let t = Instant::now();
        let allowed = (0..100).filter(|_| l.allow(1, t, Duration::ZERO)).count();
        assert_eq!(allowed, usize::from(MAX_RESENDS));
    }
}
