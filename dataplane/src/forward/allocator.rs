//! The stream allocator of one subscriber session: shares its downlink
//! estimate among its simulcast video downtracks.
//!
//! - Higher priority first (screen share, the active speaker): each gets
//!   its lowest layer, then, in the same order, the highest layers that fit.
//! - When not even a lowest layer fits, that video drops temporal layers,
//!   then pauses: the lowest priorities pause first, so the others are not
//!   starved. Audio and single-stream tracks are never paused; what they
//!   use is taken off the top.
//! - Hysteresis: a downgrade applies at once; an upgrade or a resume needs
//!   `UP_MARGIN` headroom over what is proven (the acknowledged rate, or a
//!   recent successful probe: an estimate grows past a policer, which
//!   drops without queuing) and `UP_HOLD` since the last downgrade.
//! - Probing: when a better layer is wanted than the estimate allows, the
//!   session sends RTX probes at up to twice the estimate for `PROBE_LEN`.
//!   If the subscriber acknowledges most of it without overuse, the
//!   estimate jumps to what was acknowledged (`ProbeOutcome::Success`).
//!   Failed probes back off, up to `MAX_BACKOFF`.
//!
//! Sans-IO: estimates, rates and time in; choices and probe requests out.

use std::time::{Duration, Instant};

use crate::forward::bwe::ProbeReport;
use crate::forward::layer_selector::ALL_TEMPORAL;
use crate::msg::MAX_LAYERS;

/// Share of the estimate the allocator plans with (the rest is for
/// retransmissions and estimate noise).
const USABLE: f64 = 0.9;
/// An upgrade needs this much more than it costs.
const UP_MARGIN: f64 = 1.2;
/// No upgrade this soon after a downgrade.
const UP_HOLD: Duration = Duration::from_secs(3);
/// A layer dropping its top temporal layer keeps about this share of its rate.
const TEMPORAL_SHARE: [(u8, f64); 2] = [(1, 0.75), (0, 0.5)];
/// Longer than a policer's usual burst allowance (about a second's worth
/// of its rate), which would otherwise pass a short probe whole.
const PROBE_LEN: Duration = Duration::from_millis(1200);
/// After a probe, the acknowledged-rate window (0.5 s) still holds its packets.
const PROBE_QUIET: Duration = Duration::from_millis(500);
/// Feedback for the end of a probe arrives this much later.
const PROBE_SETTLE: Duration = Duration::from_millis(400);
const MIN_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(6);
/// A downgrade this soon after an upgrade means the upgrade failed.
const FAILED_UPGRADE: Duration = Duration::from_secs(3);
/// A successful probe allows upgrades for this long.
const VERIFIED_FOR: Duration = Duration::from_secs(5);
/// A probe aims this much above what it needs to prove (senders fall short).
const PROBE_SUCCESS: f64 = 0.8;
/// A probe fails when the subscriber loses more than this of its packets.
const PROBE_MAX_LOSS: f64 = 0.05;
/// Fewer reported packets than this prove nothing.
const PROBE_MIN_PACKETS: u32 = 5;
/// A probe aims at most this far above the estimate.
const PROBE_MAX_STEP: f64 = 2.0;

/// One video downtrack as the allocator sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Demand {
    /// Higher goes first.
    pub priority: u8,
    /// Measured rate of each layer, lowest first; 0 when it is not
    /// arriving (the publisher may stop its top layers).
    pub layer_bps: [u64; MAX_LAYERS],
    /// Highest layer allowed (subscriber's or admin's cap).
    pub max_layer: Option<u8>,
    /// What the allocator chose last time.
    pub current: Choice,
}

/// A layer and the temporal layers kept; `layer` None is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub layer: Option<u8>,
    pub max_temporal: u8,
}

impl Choice {
    pub const PAUSED: Choice = Choice { layer: None, max_temporal: ALL_TEMPORAL };

    pub fn layer(l: u8) -> Self {
        Choice { layer: Some(l), max_temporal: ALL_TEMPORAL }
    }

    /// Orders choices by what they cost.
    fn rank(self) -> u32 {
        self.layer.map_or(0, |l| 1 + u32::from(l) * 8 + u32::from(self.max_temporal))
    }
}

impl Demand {
    /// Layers that arrive and that the cap allows, lowest first.
    fn usable(&self) -> impl Iterator<Item = u8> + '_ {
        (0..MAX_LAYERS as u8)
            .filter(|l| self.layer_bps[usize::from(*l)] > 0)
            .filter(|l| self.max_layer.is_none_or(|m| *l <= m))
    }

    fn cost(&self, c: Choice) -> u64 {
        let Some(l) = c.layer else { return 0 };
        let full = self.layer_bps.get(usize::from(l)).copied().unwrap_or(0);
        let share = TEMPORAL_SHARE.iter().find(|(t, _)| *t == c.max_temporal).map_or(1.0, |(_, s)| *s);
        (full as f64 * share) as u64
    }
}

/// What became of a probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProbeOutcome {
    /// The subscriber took this rate: raise the estimate to it.
    Success(u64),
    Failure,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Probe {
    Idle { next_at: Option<Instant> },
    Running {
        target_bps: u64,
        start: Instant,
        /// Overuse seen meanwhile.
        overused: bool,
    },
}

#[derive(Debug)]
pub struct Allocator {
    last_downgrade: Option<Instant>,
    probe: Probe,
    backoff: Duration,
    /// The rate the last successful probe proved, and when.
    verified: Option<(u64, Instant)>,
    last_upgrade: Option<Instant>,
    /// No upgrade on the acknowledged rate before this (a probe just ended).
    quiet_until: Option<Instant>,
}

impl Default for Allocator {
    fn default() -> Self {
        Allocator { last_downgrade: None, probe: Probe::Idle { next_at: None }, backoff: MIN_BACKOFF, verified: None, last_upgrade: None, quiet_until: None }
    }
}

impl Allocator {
    /// New choices for `demands` (same order) from the estimate, after
    /// `fixed_bps` for what is never paused. `acked_bps` is what the
    /// subscriber acknowledges receiving now: upgrades are planned within
    /// what is proven (that, or a recent successful probe), since an
    /// estimate can grow past a policer that shows no delay.
    pub fn allocate(&mut self, estimate_bps: u64, acked_bps: Option<u64>, fixed_bps: u64, demands: &[Demand], now: Instant) -> Vec<Choice> {
        // An upgrade that held: probing may be eager again.
        if let Some(up) = self.last_upgrade {
            if now.saturating_duration_since(up) >= FAILED_UPGRADE && self.last_downgrade.is_none_or(|d| d < up) {
                self.backoff = MIN_BACKOFF;
                self.last_upgrade = None;
            }
        }
        let budget = (estimate_bps as f64 * USABLE - fixed_bps as f64).max(0.0);
        let proven = self.proven(estimate_bps, acked_bps, now);
        let down = fit(budget, demands);
        let up = fit((proven * USABLE - fixed_bps as f64).max(0.0) / UP_MARGIN, demands);
        let may_upgrade = self.last_downgrade.is_none_or(|t| now.saturating_duration_since(t) >= UP_HOLD);
        let mut out = Vec::with_capacity(demands.len());
        for (i, d) in demands.iter().enumerate() {
            let cur = d.current;
            // A layer that stopped arriving (or is now above the cap) cannot stay.
            let gone = cur.layer.is_some_and(|l| !d.usable().any(|u| u == l));
            let choice = if down[i].rank() < cur.rank() || gone {
                if down[i].rank() < cur.rank() {
                    self.last_downgrade = Some(now);
                    if self.last_upgrade.is_some_and(|t| now.saturating_duration_since(t) < FAILED_UPGRADE) {
                        // The link did not carry what a probe promised (a
                        // policer's burst allowance passes a short probe):
                        // back off like a failed probe.
                        self.verified = None;
                        self.back_off(now);
                    }
                }
                down[i]
            } else if may_upgrade && up[i].rank() > cur.rank() {
                self.last_upgrade = Some(now);
                up[i]
            } else {
                cur
            };
            out.push(choice);
        }
        out
    }

    /// What the subscriber is known to take: the acknowledged rate (with
    /// the upgrade margin), or a recent successful probe, within the estimate.
    fn proven(&self, estimate_bps: u64, acked_bps: Option<u64>, now: Instant) -> f64 {
        let probed = self.verified.filter(|(_, at)| now.saturating_duration_since(*at) < VERIFIED_FOR).map_or(0, |(b, _)| b);
        // A probe's own packets inflate the acknowledged rate while it runs
        // and for an acknowledged-rate window after: then only its outcome counts.
        let acked_counts = !self.is_probing() && self.quiet_until.is_none_or(|t| now >= t);
        let acked = if acked_counts { acked_bps.unwrap_or(0) as f64 * UP_MARGIN } else { 0.0 };
        acked.max(probed as f64).min(estimate_bps as f64)
    }

    /// Whether a probe should start now: some video wants more than what
    /// is proven. Returns the total rate to probe at.
    pub fn probe_wanted(&mut self, estimate_bps: u64, acked_bps: Option<u64>, fixed_bps: u64, demands: &[Demand], now: Instant) -> Option<u64> {
        if !matches!(self.probe, Probe::Idle { next_at } if next_at.is_none_or(|t| now >= t)) {
            return None;
        }
        let best: u64 = demands.iter().map(|d| d.usable().last().map_or(0, |l| d.layer_bps[usize::from(l)])).sum();
        let chosen: u64 = demands.iter().map(|d| d.cost(d.current)).sum();
        if best <= chosen {
            return None;
        }
        // Enough that a success clears the upgrade margin, at most a step
        // above what is known to work.
        let want = (best + fixed_bps) as f64 * UP_MARGIN / USABLE / PROBE_SUCCESS;
        // Up to the estimate, or a step above what is proven.
        let proven = self.proven(estimate_bps, acked_bps, now);
        let target = want.min((estimate_bps as f64).max(proven * PROBE_MAX_STEP)) as u64;
        if target as f64 <= proven {
            return None;
        }
        self.probe = Probe::Running { target_bps: target, start: now, overused: false };
        Some(target)
    }

    /// The rate to send at while a probe runs (media plus probes); None
    /// once `report` shows loss: the probe has failed, and more would
    /// only cost the subscriber media.
    pub fn probing_bps(&self, report: Option<ProbeReport>, now: Instant) -> Option<u64> {
        if report.is_some_and(|r| r.reported >= PROBE_MIN_PACKETS * 2 && r.loss > PROBE_MAX_LOSS) {
            return None;
        }
        match self.probe {
            Probe::Running { target_bps, start, .. } if now < start + PROBE_LEN => Some(target_bps),
            _ => None,
        }
    }

    /// The delay trend, and what feedback says of the probe's own packets
    /// (`BandwidthEstimator::probe_report`); at the end of a probe, its
    /// outcome. A probe succeeds when its packets arrived near its target
    /// rate with neither overuse nor loss: a policer passes a short burst,
    /// then drops.
    pub fn on_feedback(&mut self, report: Option<ProbeReport>, overusing: bool, now: Instant) -> Option<ProbeOutcome> {
        let Probe::Running { target_bps, start, overused } = &mut self.probe else { return None };
        *overused |= overusing;
        if now.saturating_duration_since(*start) < PROBE_LEN + PROBE_SETTLE {
            return None;
        }
        let r = report.unwrap_or(ProbeReport { received_bps: 0, loss: 1.0, reported: 0 });
        // A clean probe proves what arrived, even short of its target (the
        // sender may not have filled it); loss or overuse fails it.
        let success = !*overused && r.reported >= PROBE_MIN_PACKETS && r.loss <= PROBE_MAX_LOSS && r.received_bps > 0;
        let outcome = if success { ProbeOutcome::Success(r.received_bps.min(*target_bps)) } else { ProbeOutcome::Failure };
        let mean = r.received_bps.min(*target_bps);
        self.quiet_until = Some(now + PROBE_QUIET);
        if success {
            self.verified = Some((mean, now));
            self.probe = Probe::Idle { next_at: Some(now + Duration::from_millis(200)) };
        } else {
            self.back_off(now);
        }
        Some(outcome)
    }

    /// The next probe waits, longer after each failure in a row.
    fn back_off(&mut self, now: Instant) {
        self.probe = Probe::Idle { next_at: Some(now + self.backoff) };
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    pub fn is_probing(&self) -> bool {
        matches!(self.probe, Probe::Running { .. })
    }
}

/// The best choices `budget` pays for: every video its lowest layer (or
/// less) by priority, then upgrades in the same order.
fn fit(budget: f64, demands: &[Demand]) -> Vec<Choice> {
    let mut order: Vec<usize> = (0..demands.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(demands[*i].priority));
    let mut left = budget;
    let mut out = vec![Choice::PAUSED; demands.len()];
    for &i in &order {
        let d = &demands[i];
        let Some(lowest) = d.usable().next() else {
            // Nothing measured yet: start on the lowest layer.
            out[i] = Choice::layer(0);
            continue;
        };
        let options = std::iter::once(Choice::layer(lowest))
            .chain(TEMPORAL_SHARE.iter().map(|(t, _)| Choice { layer: Some(lowest), max_temporal: *t }));
        for c in options {
            let cost = d.cost(c) as f64;
            if cost <= left {
                out[i] = c;
                left -= cost;
                break;
            }
        }
    }
    for &i in &order {
        let d = &demands[i];
        let Some(cur) = out[i].layer else { continue };
        if out[i].max_temporal != ALL_TEMPORAL {
            continue;
        }
        for l in d.usable().filter(|l| *l > cur) {
            let step = d.cost(Choice::layer(l)) as f64 - d.cost(out[i]) as f64;
            if step <= left {
                left -= step;
                out[i] = Choice::layer(l);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATES: [u64; 3] = [150_000, 500_000, 1_500_000];

    fn report(received_bps: u64, loss: f64) -> Option<ProbeReport> {
        Some(ProbeReport { received_bps, loss, reported: 50 })
    }

    fn demand(priority: u8, current: Choice) -> Demand {
        Demand { priority, layer_bps: RATES, max_layer: None, current }
    }

    fn layers(c: &[Choice]) -> Vec<Option<u8>> {
        c.iter().map(|c| c.layer).collect()
    }

    /// Runs the allocator until it settles at `estimate`.
    fn settle(a: &mut Allocator, estimate: u64, ds: &mut [Demand], now: Instant) -> Vec<Choice> {
        let out = a.allocate(estimate, Some(estimate), 0, ds, now);
        for (d, c) in ds.iter_mut().zip(&out) {
            d.current = *c;
        }
        out
    }

    #[test]
    fn bandwidth_steps_down_at_once_and_up_after_the_hold() {
        let t0 = Instant::now();
        let mut a = Allocator::default();
        let mut ds = [demand(0, Choice::layer(0))];
        assert_eq!(layers(&settle(&mut a, 3_000_000, &mut ds, t0)), [Some(2)]);
        assert_eq!(layers(&settle(&mut a, 800_000, &mut ds, t0 + Duration::from_secs(1))), [Some(1)]);
        assert_eq!(layers(&settle(&mut a, 300_000, &mut ds, t0 + Duration::from_secs(2))), [Some(0)]);
        // Bandwidth is back, but the hold is not over.
        assert_eq!(layers(&settle(&mut a, 3_000_000, &mut ds, t0 + Duration::from_secs(3))), [Some(0)]);
        assert_eq!(layers(&settle(&mut a, 3_000_000, &mut ds, t0 + Duration::from_secs(6))), [Some(2)]);
    }

    #[test]
    fn upgrades_need_headroom() {
        let t0 = Instant::now();
        let mut a = Allocator::default();
        let mut ds = [demand(0, Choice::layer(0))];
        // 0.9 * 600k = 540k pays for layer 1 (500k), but not with 20% headroom ...
        assert_eq!(layers(&settle(&mut a, 600_000, &mut ds, t0)), [Some(0)]);
        // ... 0.9 * 700k = 630k does.
        assert_eq!(layers(&settle(&mut a, 700_000, &mut ds, t0)), [Some(1)]);
        // Once there, it stays while it fits without the margin.
        assert_eq!(layers(&settle(&mut a, 570_000, &mut ds, t0)), [Some(1)]);
    }

    #[test]
    fn priorities_decide_who_gets_the_better_layers() {
        let t0 = Instant::now();
        let mut a = Allocator::default();
        let mut ds = [demand(0, Choice::layer(0)), demand(5, Choice::layer(0))];
        // 2.2M usable * 0.9 / 1.2 = 1.65M: the speaker gets layer 2, the other its lowest.
        assert_eq!(layers(&settle(&mut a, 2_200_000, &mut ds, t0)), [Some(0), Some(2)]);
    }

    #[test]
    fn lowest_priorities_pause_first_and_resume_with_hysteresis() {
        let t0 = Instant::now();
        let mut a = Allocator::default();
        let mut ds = [demand(0, Choice::layer(0)), demand(1, Choice::layer(0)), demand(2, Choice::layer(0))];
        // 200k * 0.9 = 180k: the top one keeps its layer 0, the next drops
        // to its base temporal layer? 150k + 75k > 180k: no, it pauses.
        let out = settle(&mut a, 200_000, &mut ds, t0);
        assert_eq!(layers(&out), [None, None, Some(0)]);
        assert_eq!(out[2].max_temporal, ALL_TEMPORAL);
        // Less still: the top one drops temporal layers rather than pause.
        let out = settle(&mut a, 100_000, &mut ds, t0);
        assert_eq!((out[2].layer, out[2].max_temporal), (Some(0), 0));
        assert_eq!(layers(&settle(&mut a, 20_000, &mut ds, t0)), [None, None, None]);
        // Enough for all three at layer 0 (450k) comes back: nothing before the hold ...
        let out = settle(&mut a, 700_000, &mut ds, t0 + Duration::from_secs(1));
        assert_eq!(layers(&out), [None, None, None]);
        // ... then every one resumes.
        let out = settle(&mut a, 700_000, &mut ds, t0 + Duration::from_secs(4));
        assert_eq!(layers(&out), [Some(0), Some(0), Some(0)]);
    }

    #[test]
    fn caps_and_missing_layers_are_respected() {
        let t0 = Instant::now();
        let mut a = Allocator::default();
        let mut ds = [Demand { max_layer: Some(1), ..demand(0, Choice::layer(0)) }];
        assert_eq!(layers(&settle(&mut a, 10_000_000, &mut ds, t0)), [Some(1)]);
        // The publisher stops its top layer: the subscriber leaves it at once.
        let mut ds = [Demand { layer_bps: [150_000, 500_000, 0], ..demand(0, Choice::layer(2)) }];
        assert_eq!(layers(&settle(&mut a, 10_000_000, &mut ds, t0)), [Some(1)]);
    }

    #[test]
    fn probes_before_upgrading_and_backs_off_on_failure() {
        let t0 = Instant::now();
        let mut a = Allocator::default();
        let ds = [demand(0, Choice::layer(0))];
        // 300k: only layer 0 fits; the best wants far more, so probe at twice the estimate.
        let target = a.probe_wanted(300_000, Some(300_000), 0, &ds, t0).unwrap();
        assert_eq!(target, 600_000);
        assert_eq!(a.probing_bps(None, t0 + Duration::from_millis(100)), Some(600_000));
        // Loss ends the sending early.
        assert_eq!(a.probing_bps(report(300_000, 0.3), t0 + Duration::from_millis(100)), None);
        assert_eq!(a.probe_wanted(300_000, Some(300_000), 0, &ds, t0), None, "one at a time");
        assert_eq!(a.on_feedback(None, false, t0 + Duration::from_millis(300)), None);
        let end = t0 + PROBE_LEN + PROBE_SETTLE;
        assert_eq!(a.on_feedback(report(580_000, 0.0), false, end), Some(ProbeOutcome::Success(580_000)));
        // Success: the next probe may follow quickly.
        let t1 = end + Duration::from_millis(200);
        let target = a.probe_wanted(590_000, Some(590_000), 0, &ds, t1).unwrap();
        // Twice what the probe proved (the acked rate still holds probe packets).
        assert_eq!(target, 1_160_000);
        a.on_feedback(None, false, t1 + PROBE_LEN);
        assert_eq!(a.on_feedback(report(600_000, 0.1), false, t1 + PROBE_LEN + PROBE_SETTLE), Some(ProbeOutcome::Failure));
        let t2 = t1 + PROBE_LEN + PROBE_SETTLE;
        assert_eq!(a.probe_wanted(590_000, Some(590_000), 0, &ds, t2 + Duration::from_secs(1)), None, "backing off");
        assert!(a.probe_wanted(590_000, Some(590_000), 0, &ds, t2 + MIN_BACKOFF).is_some());
        // Overuse fails a probe whatever was acknowledged ...
        let t3 = t2 + MIN_BACKOFF;
        a.on_feedback(None, true, t3 + PROBE_LEN);
        assert_eq!(a.on_feedback(report(2_000_000, 0.0), false, t3 + PROBE_LEN + PROBE_SETTLE), Some(ProbeOutcome::Failure));
        // ... and so does loss (a policer passes bursts, then drops).
        let t4 = t3 + PROBE_LEN + PROBE_SETTLE + MAX_BACKOFF;
        assert!(a.probe_wanted(590_000, Some(590_000), 0, &ds, t4).is_some());
        assert_eq!(a.on_feedback(report(2_000_000, 0.2), false, t4 + PROBE_LEN + PROBE_SETTLE), Some(ProbeOutcome::Failure));
    }

    #[test]
    fn upgrades_wait_for_proof_beyond_the_estimate() {
        let t0 = Instant::now();
        let mut a = Allocator::default();
        let ds = [demand(0, Choice::layer(0))];
        // The estimate says 3M, but only 200k is acknowledged: no upgrade.
        assert_eq!(layers(&a.allocate(3_000_000, Some(200_000), 0, &ds, t0)), [Some(0)]);
        // A probe acknowledged at 2.4M proves enough for layer 2.
        assert_eq!(a.probe_wanted(3_000_000, Some(200_000), 0, &ds, t0), Some(2_500_000));
        let end = t0 + PROBE_LEN + PROBE_SETTLE;
        assert_eq!(a.on_feedback(report(2_400_000, 0.0), false, end), Some(ProbeOutcome::Success(2_400_000)));
        assert_eq!(layers(&a.allocate(3_000_000, Some(200_000), 0, &ds, end)), [Some(2)]);
    }

    #[test]
    fn no_probe_when_everything_wanted_is_sent() {
        let mut a = Allocator::default();
        let ds = [demand(0, Choice::layer(2))];
        assert_eq!(a.probe_wanted(300_000, Some(300_000), 0, &ds, Instant::now()), None);
    }
}
