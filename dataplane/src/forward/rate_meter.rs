//! The rate a stream (a track, or one simulcast layer) arrives at on a
//! shard, for the stream allocator: bytes over one-second windows,
//! smoothed, and zero once it stops arriving (a publisher may stop its top
//! layers when its own uplink is short).

use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);
/// No packet for this long: the stream is not arriving.
const STALE: Duration = Duration::from_millis(1500);

#[derive(Debug, Default, Clone)]
pub struct RateMeter {
    window_start: Option<Instant>,
    bytes: u64,
    last_packet: Option<Instant>,
    bps: Option<f64>,
}

impl RateMeter {
    pub fn on_packet(&mut self, bytes: usize, now: Instant) {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= WINDOW {
            let rate = self.bytes as f64 * 8.0 / elapsed.as_secs_f64();
            self.bps = Some(self.bps.map_or(rate, |b| 0.5 * b + 0.5 * rate));
            self.window_start = Some(now);
            self.bytes = 0;
        }
        self.bytes += bytes as u64;
        self.last_packet = Some(now);
    }

    /// The smoothed rate; 0 until a window completed, or when stale.
    pub fn bps(&self, now: Instant) -> u64 {
        match self.last_packet {
            Some(t) if now.saturating_duration_since(t) < STALE => self.bps.unwrap_or(0.0) as u64,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_and_goes_stale() {
        let t0 = Instant::now();
        let mut m = RateMeter::default();
        // 100 packets of 1250 bytes a second: 1 Mbit/s.
        for i in 0..=200 {
            m.on_packet(1250, t0 + Duration::from_millis(i * 10));
        }
        let now = t0 + Duration::from_secs(2);
        let bps = m.bps(now);
        assert!((950_000..=1_050_000).contains(&bps), "{bps}");
        assert_eq!(m.bps(now + Duration::from_secs(2)), 0);
        assert_eq!(RateMeter::default().bps(now), 0);
    }
}
