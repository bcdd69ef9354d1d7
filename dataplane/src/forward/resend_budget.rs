//! How much a subscriber session may spend on retransmissions: a token
//! bucket filled at a share of its downlink estimate. Behind a bottleneck
//! every packet gets NACKed; resending them all would only deepen the
//! congestion that lost them (libwebrtc caps retransmissions by its
//! estimate for the same reason).

use std::time::{Duration, Instant};

/// Share of the estimate retransmissions may use.
const SHARE: f64 = 0.25;
/// The bucket holds this much time's worth, and never less than `MIN_BURST`.
const BURST: Duration = Duration::from_millis(250);
const MIN_BURST: f64 = 15_000.0;

#[derive(Debug, Default)]
pub struct ResendBudget {
    /// Bytes that may be resent now.
    tokens: f64,
    last: Option<Instant>,
}

impl ResendBudget {
    /// Whether `bytes` may be resent now for a subscriber estimated at
    /// `estimate_bps`; spends them when it may.
    pub fn allow(&mut self, bytes: usize, estimate_bps: u64, now: Instant) -> bool {
        let rate = estimate_bps as f64 * SHARE / 8.0;
        let cap = (rate * BURST.as_secs_f64()).max(MIN_BURST);
        let elapsed = self.last.map_or(BURST, |t| now.saturating_duration_since(t));
        self.last = Some(now);
        self.tokens = (self.tokens + rate * elapsed.as_secs_f64()).min(cap);
        if self.tokens < bytes as f64 {
            return false;
        }
        self.tokens -= bytes as f64;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resends_stay_within_a_share_of_the_estimate() {
        let t0 = Instant::now();
        let mut b = ResendBudget::default();
        let mut sent = 0usize;
        // A NACK storm: 1000 packets asked for every 10 ms for 2 s.
        for step in 0..200u64 {
            let now = t0 + Duration::from_millis(10 * step);
            for _ in 0..1000 {
                if b.allow(1200, 1_000_000, now) {
                    sent += 1200;
                }
            }
        }
        // 25% of 1 Mbit/s for 2 s is 62.5 kB, plus one burst.
        assert!(sent <= 62_500 + 15_000 + 1200, "sent {sent}");
        assert!(sent >= 50_000, "but it does resend: {sent}");
    }

    #[test]
    fn a_quiet_link_resends_at_once() {
        let mut b = ResendBudget::default();
        assert!(b.allow(1200, 300_000, Instant::now()));
    }
}
