//! The rate at which the subscriber received what we sent, on its own clock:
//! bytes acknowledged per 50 ms bucket over the last half second.

const BUCKET_US: i64 = 50_000;
const BUCKETS: usize = 10;
/// Completed buckets needed before the rate means anything.
const MIN_BUCKETS: i64 = 2;

#[derive(Debug)]
pub(super) struct AckedRate {
    bytes: [u64; BUCKETS],
    /// The bucket period each slot currently counts.
    periods: [i64; BUCKETS],
    newest: Option<i64>,
    oldest: Option<i64>,
}

impl Default for AckedRate {
    fn default() -> Self {
        AckedRate {
            bytes: [0; BUCKETS],
            periods: [i64::MIN; BUCKETS],
            newest: None,
            oldest: None,
        }
    }
}

impl AckedRate {
    pub(super) fn on_acked(&mut self, arrival_us: i64, size: u32) {
        let period = arrival_us.div_euclid(BUCKET_US);
        if self.newest.is_some_and(|n| period <= n - BUCKETS as i64) {
            return;
        }
        let i = period.rem_euclid(BUCKETS as i64) as usize;
        if self.periods[i] != period {
            self.periods[i] = period;
            self.bytes[i] = 0;
        }
        self.bytes[i] += u64::from(size);
        self.newest = Some(self.newest.map_or(period, |n| n.max(period)));
        self.oldest = Some(self.oldest.map_or(period, |o| o.min(period)));
    }

    /// Bits per second over the completed buckets of the window, leaving out
    /// the first bucket ever seen (it started mid-way).
    pub(super) fn bps(&self) -> Option<u64> {
        let newest = self.newest?;
        let from = (self.oldest? + 1).max(newest - (BUCKETS as i64 - 1));
        let count = newest - from;
        if count < MIN_BUCKETS {
            return None;
        }
        let bytes: u64 = (0..BUCKETS)
            .filter(|&i| (from..newest).contains(&self.periods[i]))
            .map(|i| self.bytes[i])
            .sum();
        Some(bytes * 8 * 1_000_000 / (count as u64 * BUCKET_US as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_rate() {
        let mut r = AckedRate::default();
        assert_eq!(r.bps(), None);
        // 1200 bytes every 10 ms = 960 kbit/s, starting mid-bucket
        for i in 0..30 {
            r.on_acked(7_000 + i * 10_000, 1200);
        }
        assert_eq!(r.bps(), Some(960_000));
        for i in 30..200 {
            r.on_acked(7_000 + i * 10_000, 1200);
        }
        assert_eq!(r.bps(), Some(960_000));
    }

    #[test]
    fn idle_buckets_count_as_zero_and_stale_packets_are_dropped() {
        let mut r = AckedRate::default();
        for i in 0..100 {
            r.on_acked(i * 10_000, 1200);
        }
        // 300 ms of silence, then one packet: 6 of the 9 buckets are empty
        r.on_acked(1_300_000, 1200);
        assert_eq!(r.bps(), Some(960_000 * 3 / 9));
        r.on_acked(0, 1_000_000);
        assert_eq!(r.bps(), Some(960_000 * 3 / 9));
    }
}
