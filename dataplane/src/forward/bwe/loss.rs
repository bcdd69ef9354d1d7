//! Loss-based control: under 2% loss grow, 2-10% hold, over 10% cut in
//! proportion to the loss.

use std::time::{Duration, Instant};

const LOW_LOSS: f64 = 0.02;
const HIGH_LOSS: f64 = 0.10;
const GROWTH_PER_S: f64 = 1.08;
/// Plus a little, so a very low estimate still climbs.
const GROWTH_BPS_PER_S: f64 = 1000.0;
/// Decreases at most this often, so one burst of loss is not counted twice.
const MIN_DECREASE_INTERVAL: Duration = Duration::from_millis(300);
/// Loss ratios from fewer packets than this are noise: accumulate first.
const MIN_PACKETS: u32 = 20;
const MAX_STEP: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(super) struct LossBasedControl {
    bps: f64,
    lost: u32,
    received: u32,
    last_ratio: f64,
    last_update: Option<Instant>,
    last_decrease: Option<Instant>,
}

impl LossBasedControl {
    pub(super) fn new(initial_bps: u64) -> Self {
        LossBasedControl {
            bps: initial_bps as f64,
            lost: 0,
            received: 0,
            last_ratio: 0.0,
            last_update: None,
            last_decrease: None,
        }
    }

    pub(super) fn bps(&self) -> u64 {
        self.bps as u64
    }

    pub(super) fn last_ratio(&self) -> f64 {
        self.last_ratio
    }

    /// Packets newly reported lost and received by transport-cc feedback;
    /// `recovered` of the received were reported lost before, and take
    /// back that loss if it is still waiting to be counted.
    pub(super) fn on_counts(&mut self, lost: u32, received: u32, recovered: u32, now: Instant) {
        self.lost = self.lost.saturating_add(lost).saturating_sub(recovered);
        self.received = self.received.saturating_add(received);
        let total = self.lost.saturating_add(self.received);
        if total >= MIN_PACKETS {
            let ratio = f64::from(self.lost) / f64::from(total);
            self.lost = 0;
            self.received = 0;
            self.update(ratio, now);
        }
    }

    /// A loss ratio measured elsewhere (an RR's fraction lost).
    pub(super) fn on_ratio(&mut self, ratio: f64, now: Instant) {
        self.update(ratio.clamp(0.0, 1.0), now);
    }

    /// Keeps the estimate under the other limits, so it does not grow far
    /// past them while they hold it down and then lag behind when they lift.
    pub(super) fn cap(&mut self, upper_bps: u64) {
        self.bps = self.bps.min(upper_bps as f64);
    }

    /// A probe showed the path carries `bps`.
    pub(super) fn raise_to(&mut self, bps: u64) {
        self.bps = self.bps.max(bps as f64);
    }

    pub(super) fn clamp(&mut self, min_bps: u64, max_bps: u64) {
        self.bps = self.bps.clamp(min_bps as f64, max_bps as f64);
    }

    fn update(&mut self, ratio: f64, now: Instant) {
        let step = self
            .last_update
            .replace(now)
            .map_or(Duration::ZERO, |t| {
                now.saturating_duration_since(t).min(MAX_STEP)
            })
            .as_secs_f64();
        self.last_ratio = ratio;
        if ratio < LOW_LOSS {
            self.bps = self.bps * GROWTH_PER_S.powf(step) + GROWTH_BPS_PER_S * step;
        } else if ratio > HIGH_LOSS
            && self
                .last_decrease
                .is_none_or(|t| now.saturating_duration_since(t) >= MIN_DECREASE_INTERVAL)
        {
            self.last_decrease = Some(now);
            self.bps *= 1.0 - 0.5 * ratio;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn low_loss_grows_mid_holds_high_cuts() {
        let t0 = Instant::now();
        let mut c = LossBasedControl::new(1_000_000);
        c.on_ratio(0.0, t0);
        c.on_ratio(0.01, t0 + S);
        assert_eq!(c.bps(), 1_081_000);
        c.on_ratio(0.05, t0 + S * 2);
        assert_eq!(c.bps(), 1_081_000);
        c.on_ratio(0.20, t0 + S * 3);
        assert_eq!(c.bps(), 972_900);
        // not again within 300 ms
        c.on_ratio(0.20, t0 + S * 3 + MIN_DECREASE_INTERVAL / 2);
        assert_eq!(c.bps(), 972_900);
    }

    #[test]
    fn counts_accumulate_to_a_ratio() {
        let t0 = Instant::now();
        let mut c = LossBasedControl::new(1_000_000);
        c.on_counts(3, 7, 0, t0); // only 10 packets: no update yet
        assert_eq!(c.last_ratio(), 0.0);
        // one of the three turns up late, with 10 new ones
        c.on_counts(0, 11, 1, t0);
        assert!((c.last_ratio() - 0.1).abs() < 1e-12);
    }
}
