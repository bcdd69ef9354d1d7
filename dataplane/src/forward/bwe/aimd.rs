//! Delay-based rate control: additive/multiplicative increase while the
//! path is fine, a multiplicative decrease from the acknowledged rate on
//! overuse, a hold while queues drain.

use std::time::{Duration, Instant};

use super::BandwidthUsage;

/// Multiplicative increase per second far from the last known capacity.
const GROWTH_PER_S: f64 = 1.08;
/// Additive increase near it: about one 1200-byte packet per response time,
/// taking 200 ms for it (we keep no RTT).
const ADDITIVE_BPS_PER_S: f64 = 1200.0 * 8.0 / 0.2;
/// New estimate on overuse, as a share of the acknowledged rate.
const BETA: f64 = 0.85;
/// Decreases at most this often: the effect of one takes about an RTT to show.
const MIN_DECREASE_INTERVAL: Duration = Duration::from_millis(200);
/// Never run more than this far ahead of what the subscriber acknowledges:
/// an application-limited sender proves nothing about the path above it.
const ACKED_HEADROOM: f64 = 1.5;
const ACKED_HEADROOM_BPS: f64 = 10_000.0;
/// Longest step an increase integrates over.
const MAX_STEP: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Hold,
    Increase,
    Decrease,
}

#[derive(Debug)]
pub(super) struct AimdRateControl {
    bps: f64,
    phase: Phase,
    last_update: Option<Instant>,
    last_decrease: Option<Instant>,
    /// Smoothed acknowledged rate at past overuses: where the path's
    /// capacity seems to be. Near it, increase additively.
    link_capacity_bps: Option<f64>,
    min_bps: f64,
    max_bps: f64,
}

impl AimdRateControl {
    pub(super) fn new(initial_bps: u64, min_bps: u64, max_bps: u64) -> Self {
        AimdRateControl {
            bps: initial_bps as f64,
            phase: Phase::Increase,
            last_update: None,
            last_decrease: None,
            link_capacity_bps: None,
            min_bps: min_bps as f64,
            max_bps: max_bps as f64,
        }
    }

    pub(super) fn bps(&self) -> u64 {
        self.bps as u64
    }

    /// A probe showed the path carries `bps`: start from there, and
    /// search afresh above it.
    pub(super) fn raise_to(&mut self, bps: u64) {
        if bps as f64 > self.bps {
            self.bps = (bps as f64).min(self.max_bps);
            self.link_capacity_bps = None;
        }
    }

    pub(super) fn update(&mut self, usage: BandwidthUsage, acked_bps: Option<u64>, now: Instant) {
        let step = self.last_update.replace(now).map_or(Duration::ZERO, |t| {
            now.saturating_duration_since(t).min(MAX_STEP)
        });
        let acked = acked_bps.map(|b| b as f64);
        // After a decrease, a normal signal first holds: the queue drains.
        self.phase = match (usage, self.phase) {
            (BandwidthUsage::Overusing, _) => Phase::Decrease,
            (BandwidthUsage::Underusing, _) => Phase::Hold,
            (BandwidthUsage::Normal, Phase::Decrease) => Phase::Hold,
            (BandwidthUsage::Normal, _) => Phase::Increase,
        };
        match self.phase {
            Phase::Hold => {}
            Phase::Increase => self.increase(step.as_secs_f64(), acked),
            Phase::Decrease => self.decrease(acked, now),
        }
        self.bps = self.bps.clamp(self.min_bps, self.max_bps);
    }

    fn increase(&mut self, step_s: f64, acked: Option<f64>) {
        if let (Some(cap), Some(a)) = (self.link_capacity_bps, acked) {
            // The path carries well above what we thought: search afresh.
            if a > cap * ACKED_HEADROOM {
                self.link_capacity_bps = None;
            }
        }
        let grown = if self.link_capacity_bps.is_some() {
            self.bps + ADDITIVE_BPS_PER_S * step_s
        } else {
            self.bps * GROWTH_PER_S.powf(step_s)
        };
        let limit = acked.map_or(f64::INFINITY, |a| a * ACKED_HEADROOM + ACKED_HEADROOM_BPS);
        // The limit stops growth; it does not pull the estimate down.
        self.bps = grown.min(limit.max(self.bps));
    }

    fn decrease(&mut self, acked: Option<f64>, now: Instant) {
        if self
            .last_decrease
            .is_some_and(|t| now.saturating_duration_since(t) < MIN_DECREASE_INTERVAL)
        {
            return;
        }
        self.last_decrease = Some(now);
        // From what got through, not from the estimate: repeated overuse at
        // the same acknowledged rate does not compound.
        let target = acked.unwrap_or(self.bps) * BETA;
        self.bps = self.bps.min(target);
        if let Some(a) = acked {
            self.link_capacity_bps = Some(match self.link_capacity_bps {
                // Far below what we had: the path changed, start over from here.
                Some(cap) if a > cap * 0.5 => 0.95 * cap + 0.05 * a,
                _ => a,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn multiplicative_increase_capped_by_acked_rate() {
        let t0 = Instant::now();
        let mut c = AimdRateControl::new(1_000_000, 30_000, 50_000_000);
        c.update(BandwidthUsage::Normal, None, t0);
        assert_eq!(c.bps(), 1_000_000);
        c.update(BandwidthUsage::Normal, None, t0 + S);
        assert_eq!(c.bps(), 1_080_000);
        // with 500 kbit/s acknowledged, no growth past 760 kbit/s, and no drop to it either
        c.update(BandwidthUsage::Normal, Some(500_000), t0 + S * 2);
        assert_eq!(c.bps(), 1_080_000);
    }

    #[test]
    fn overuse_decreases_from_the_acked_rate_then_holds() {
        let t0 = Instant::now();
        let mut c = AimdRateControl::new(2_000_000, 30_000, 50_000_000);
        c.update(BandwidthUsage::Overusing, Some(1_000_000), t0);
        assert_eq!(c.bps(), 850_000);
        // persistent overuse does not compound within the interval, nor below beta * acked
        c.update(BandwidthUsage::Overusing, Some(1_000_000), t0 + S / 10);
        c.update(BandwidthUsage::Overusing, Some(1_000_000), t0 + S);
        assert_eq!(c.bps(), 850_000);
        // normal after a decrease: hold one round, then additive increase near capacity
        c.update(BandwidthUsage::Normal, Some(850_000), t0 + S * 2);
        assert_eq!(c.bps(), 850_000);
        c.update(BandwidthUsage::Normal, Some(850_000), t0 + S * 3);
        assert_eq!(c.bps(), 850_000 + ADDITIVE_BPS_PER_S as u64);
    }

    #[test]
    fn clamped_to_bounds() {
        let t0 = Instant::now();
        let mut c = AimdRateControl::new(40_000, 30_000, 50_000_000);
        c.update(BandwidthUsage::Overusing, Some(10_000), t0);
        assert_eq!(c.bps(), 30_000);
    }
}
