//! What became of the packets sent during a bandwidth probe: bytes and
//! packets sent, then, as transport-cc feedback reports them, how many
//! arrived, how fast (spread of their arrival times) and how many were lost.
//! A policer passes a short burst and then drops; a rate from arrivals of
//! the probe's own packets, with their loss, shows that where a smoothed
//! acknowledged rate does not.

/// Sends of the window, by send time in microseconds.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct ProbeWindow {
    start_us: i64,
    end_us: Option<i64>,
    received: u32,
    lost: u32,
    acked_bytes: u64,
    first_arrival_us: Option<i64>,
    last_arrival_us: Option<i64>,
}

/// A probe window's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeReport {
    /// Rate the subscriber received the window's packets at.
    pub received_bps: u64,
    /// Share of the window's reported packets that were lost.
    pub loss: f64,
    pub reported: u32,
}

impl ProbeWindow {
    pub(super) fn new(start_us: i64) -> Self {
        ProbeWindow { start_us, ..Default::default() }
    }

    pub(super) fn close(&mut self, end_us: i64) {
        self.end_us.get_or_insert(end_us);
    }

    fn covers(&self, sent_us: i64) -> bool {
        sent_us >= self.start_us && self.end_us.is_none_or(|e| sent_us < e)
    }

    pub(super) fn on_received(&mut self, sent_us: i64, arrival_us: i64, size: u32) {
        if !self.covers(sent_us) {
            return;
        }
        self.received += 1;
        self.acked_bytes += u64::from(size);
        self.first_arrival_us = Some(self.first_arrival_us.map_or(arrival_us, |f| f.min(arrival_us)));
        self.last_arrival_us = Some(self.last_arrival_us.map_or(arrival_us, |l| l.max(arrival_us)));
    }

    pub(super) fn on_lost(&mut self, sent_us: i64) {
        if self.covers(sent_us) {
            self.lost += 1;
        }
    }

    pub(super) fn report(&self) -> ProbeReport {
        let reported = self.received + self.lost;
        let spread = match (self.first_arrival_us, self.last_arrival_us) {
            (Some(f), Some(l)) if l > f => (l - f) as f64 / 1e6,
            _ => 0.0,
        };
        let received_bps = if spread > 0.0 { (self.acked_bytes as f64 * 8.0 / spread) as u64 } else { 0 };
        let loss = if reported == 0 { 0.0 } else { f64::from(self.lost) / f64::from(reported) };
        ProbeReport { received_bps, loss, reported }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_from_arrivals_and_loss_of_the_windows_packets_only() {
        let mut w = ProbeWindow::new(1_000_000);
        // Before the window: ignored.
        w.on_received(999_999, 1_010_000, 1000);
        // 11 packets of 1000 bytes arriving over 100 ms: 880 kbit/s ...
        for i in 0..11 {
            w.on_received(1_000_000 + i * 10_000, 1_020_000 + i * 10_000, 1000);
        }
        // ... and 1 lost.
        w.on_lost(1_050_000);
        w.close(1_200_000);
        w.on_received(1_300_000, 1_310_000, 1000);
        let r = w.report();
        assert_eq!(r.received_bps, 880_000);
        assert_eq!(r.reported, 12);
        assert!((r.loss - 1.0 / 12.0).abs() < 1e-9);
        assert_eq!(ProbeWindow::new(0).report(), ProbeReport { received_bps: 0, loss: 0.0, reported: 0 });
    }
}
