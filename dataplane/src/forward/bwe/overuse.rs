//! Overuse detector: compares the delay trend with a threshold that adapts
//! to it, so the detector neither starves against loss-based flows (which
//! keep queues full) nor stays deaf on jittery paths.

use super::BandwidthUsage;

const INITIAL_THRESHOLD_MS: f64 = 12.5;
const MIN_THRESHOLD_MS: f64 = 6.0;
const MAX_THRESHOLD_MS: f64 = 600.0;
/// Adaptation rates per ms when the trend is above / inside the threshold.
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
/// Trends this far past the threshold are spikes, not something to adapt to.
const MAX_ADAPT_OFFSET_MS: f64 = 15.0;
/// Adaptation steps longer than this are treated as this long.
const MAX_ADAPT_STEP_MS: f64 = 100.0;
/// The trend must stay over the threshold this long (in send time) to count.
const OVERUSE_TIME_MS: f64 = 10.0;

#[derive(Debug)]
pub(super) struct OveruseDetector {
    threshold_ms: f64,
    last_update_us: Option<i64>,
    /// Send time spent over the threshold; `None` when not over it.
    time_over_ms: Option<f64>,
    over_count: u32,
    prev_trend: f64,
    state: BandwidthUsage,
}

impl Default for OveruseDetector {
    fn default() -> Self {
        OveruseDetector {
            threshold_ms: INITIAL_THRESHOLD_MS,
            last_update_us: None,
            time_over_ms: None,
            over_count: 0,
            prev_trend: 0.0,
            state: BandwidthUsage::Normal,
        }
    }
}

impl OveruseDetector {
    /// Feeds one modified trend, for a group `send_delta_ms` after the last,
    /// arriving at `arrival_us`; returns the usage it now signals.
    pub(super) fn detect(
        &mut self,
        trend: f64,
        send_delta_ms: f64,
        arrival_us: i64,
    ) -> BandwidthUsage {
        if trend > self.threshold_ms {
            // Half a delta for the first: the crossing happened somewhere within it.
            let over = match self.time_over_ms {
                None => send_delta_ms / 2.0,
                Some(t) => t + send_delta_ms,
            };
            self.time_over_ms = Some(over);
            self.over_count += 1;
            // Still rising: a queue that is draining is not overuse.
            if over > OVERUSE_TIME_MS && self.over_count > 1 && trend >= self.prev_trend {
                self.time_over_ms = None;
                self.over_count = 0;
                self.state = BandwidthUsage::Overusing;
            }
        } else {
            self.time_over_ms = None;
            self.over_count = 0;
            self.state = if trend < -self.threshold_ms {
                BandwidthUsage::Underusing
            } else {
                BandwidthUsage::Normal
            };
        }
        self.prev_trend = trend;
        self.adapt(trend, arrival_us);
        self.state
    }

    pub(super) fn threshold_ms(&self) -> f64 {
        self.threshold_ms
    }

    pub(super) fn state(&self) -> BandwidthUsage {
        self.state
    }

    pub(super) fn reset(&mut self) {
        *self = OveruseDetector::default();
    }

    fn adapt(&mut self, trend: f64, arrival_us: i64) {
        let last = self
            .last_update_us
            .replace(arrival_us)
            .unwrap_or(arrival_us);
        let excess = trend.abs() - self.threshold_ms;
        if excess > MAX_ADAPT_OFFSET_MS {
            return;
        }
        let k = if excess < 0.0 { K_DOWN } else { K_UP };
        let step_ms = ((arrival_us - last) as f64 / 1000.0).clamp(0.0, MAX_ADAPT_STEP_MS);
        self.threshold_ms =
            (self.threshold_ms + k * excess * step_ms).clamp(MIN_THRESHOLD_MS, MAX_THRESHOLD_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sustained_rising_trend_is_overuse() {
        let mut d = OveruseDetector::default();
        assert_eq!(d.detect(20.0, 10.0, 0), BandwidthUsage::Normal);
        assert_eq!(d.detect(21.0, 10.0, 10_000), BandwidthUsage::Overusing);
        // stays signalled while the trend is over the threshold
        assert_eq!(d.detect(19.0, 10.0, 20_000), BandwidthUsage::Overusing);
        assert_eq!(d.detect(0.0, 10.0, 30_000), BandwidthUsage::Normal);
        assert_eq!(d.detect(-20.0, 10.0, 40_000), BandwidthUsage::Underusing);
    }

    #[test]
    fn a_falling_trend_over_the_threshold_is_not_overuse() {
        let mut d = OveruseDetector::default();
        for (i, t) in [30.0, 28.0, 26.0, 24.0].into_iter().enumerate() {
            assert_eq!(d.detect(t, 10.0, i as i64 * 10_000), BandwidthUsage::Normal);
        }
    }

    #[test]
    fn threshold_adapts_within_bounds() {
        let mut d = OveruseDetector::default();
        // a quiet path pulls it down to the floor
        for i in 0..1000 {
            d.detect(0.0, 10.0, i * 10_000);
        }
        assert!((d.threshold_ms() - MIN_THRESHOLD_MS).abs() < 1e-9);
        // a trend just above it pushes it up, slowly
        let mut d = OveruseDetector::default();
        for i in 0..1000 {
            d.detect(20.0, 10.0, i * 10_000);
        }
        assert!(
            d.threshold_ms() > 19.0 && d.threshold_ms() <= 20.0,
            "{}",
            d.threshold_ms()
        );
        // spikes far over it are ignored
        let mut d = OveruseDetector::default();
        d.detect(100.0, 10.0, 0);
        d.detect(100.0, 10.0, 100_000);
        assert_eq!(d.threshold_ms(), INITIAL_THRESHOLD_MS);
    }
}
