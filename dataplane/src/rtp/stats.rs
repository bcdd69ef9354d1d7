//! RFC 3550 receiver statistics for one source: sequence validation (A.1,
//! without probation: SRTP already vouches for the source), loss (A.3),
//! interarrival jitter (A.8) and the LSR/DLSR echo (§6.4.1).

use std::time::Instant;

use crate::rtcp::{ntp_middle32, ReportBlock};

/// A forward jump up to this many packets is loss, not a restart.
const MAX_DROPOUT: u16 = 3000;
/// A step back up to this many packets is reordering, not a restart.
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u32 = 1 << 16;
/// `bad_seq` value that no 16-bit sequence number can match.
const NO_BAD_SEQ: u32 = SEQ_MOD + 1;

/// Cumulative loss travels as a signed 24-bit field.
const LOST_MAX: i64 = 0x7f_ffff;
const LOST_MIN: i64 = -0x80_0000;

/// Receiver-side statistics of one RTP source, feeding RTCP report blocks.
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    clock_rate: u32,
    started: bool,
    max_seq: u16,
    /// Number of sequence wraps since the last (re)sync.
    cycles: u64,
    base_seq: u16,
    bad_seq: u32,
    /// Packets counted since the last (re)sync; pairs with `expected()`.
    received: u64,
    total_received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Arrival times are measured in RTP clock units from this instant.
    epoch: Option<Instant>,
    /// (rtp timestamp, transit) of the last jitter sample.
    last_transit: Option<(u32, i32)>,
    /// Jitter scaled by 16, as in RFC 3550 A.8, to keep the filter exact in integers.
    jitter_q4: u64,
    /// Middle 32 bits of the last SR's NTP time and when it arrived.
    last_sr: Option<(u32, Instant)>,
}

enum SeqVerdict {
    /// Advanced the highest sequence number (or started/resynced the stream).
    Newest,
    /// Counted, but not newer than the highest: duplicate or reordered.
    Old,
    /// A large jump, held back until the next packet confirms it.
    Rejected,
}

impl ReceiveStats {
    /// `clock_rate` is the RTP timestamp rate in Hz (90000 for video, 48000 for Opus).
    pub fn new(clock_rate: u32) -> Self {
        ReceiveStats {
            clock_rate: clock_rate.max(1),
            started: false,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: NO_BAD_SEQ,
            received: 0,
            total_received: 0,
            expected_prior: 0,
            received_prior: 0,
            epoch: None,
            last_transit: None,
            jitter_q4: 0,
            last_sr: None,
        }
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = seq;
        self.max_seq = seq;
        self.bad_seq = NO_BAD_SEQ;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    fn update_seq(&mut self, seq: u16) -> SeqVerdict {
        if !self.started {
            self.started = true;
            self.init_seq(seq);
            return SeqVerdict::Newest;
        }
        let udelta = seq.wrapping_sub(self.max_seq);
        if udelta == 0 {
            SeqVerdict::Old
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += 1;
            }
            self.max_seq = seq;
            SeqVerdict::Newest
        } else if u32::from(udelta) <= SEQ_MOD - u32::from(MAX_MISORDER) {
            // Two sequential packets after a big jump mean the sender restarted.
            if u32::from(seq) == self.bad_seq {
                self.init_seq(seq);
                SeqVerdict::Newest
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (SEQ_MOD - 1);
                SeqVerdict::Rejected
            }
        } else {
            SeqVerdict::Old
        }
    }

    /// Records one received packet.
    pub fn on_packet(&mut self, seq: u16, rtp_ts: u32, arrival: Instant) {
        let verdict = self.update_seq(seq);
        if matches!(verdict, SeqVerdict::Rejected) {
            return;
        }
        self.received += 1;
        self.total_received += 1;
        // Jitter from in-order packets only, and once per timestamp: packets of one
        // video frame share a timestamp, and their spacing is pacing, not network jitter.
        if matches!(verdict, SeqVerdict::Newest) {
            self.update_jitter(rtp_ts, arrival);
        }
    }

    fn update_jitter(&mut self, rtp_ts: u32, arrival: Instant) {
        if matches!(self.last_transit, Some((ts, _)) if ts == rtp_ts) {
            return;
        }
        let epoch = *self.epoch.get_or_insert(arrival);
        let elapsed = arrival.saturating_duration_since(epoch);
        // Truncating to u32 is the RTP clock's own wrap; differences stay right.
        let arrival_units =
            (elapsed.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000) as u32;
        let transit = arrival_units.wrapping_sub(rtp_ts) as i32;
        if let Some((_, last)) = self.last_transit {
            let d = i64::from(transit.wrapping_sub(last).unsigned_abs());
            let j = self.jitter_q4 as i64;
            self.jitter_q4 = (j + d - ((j + 8) >> 4)).max(0) as u64;
        }
        self.last_transit = Some((rtp_ts, transit));
    }

    /// Records an SR from this source, to echo as LSR with DLSR later.
    pub fn on_sender_report(&mut self, ntp: u64, arrival: Instant) {
        self.last_sr = Some((ntp_middle32(ntp), arrival));
    }

    fn extended_max(&self) -> u64 {
        (self.cycles << 16) | u64::from(self.max_seq)
    }

    fn expected(&self) -> u64 {
        if !self.started {
            return 0;
        }
        (self.extended_max() + 1).saturating_sub(u64::from(self.base_seq))
    }

    /// Builds the report block for `ssrc` and starts a new reporting interval.
    pub fn report_block(&mut self, ssrc: u32, now: Instant) -> ReportBlock {
        let (lsr, dlsr) = match self.last_sr {
            Some((lsr, at)) => {
                let d = now.saturating_duration_since(at);
                let units = (d.as_nanos() << 16) / 1_000_000_000;
                (lsr, u32::try_from(units).unwrap_or(u32::MAX))
            }
            None => (0, 0),
        };
        if !self.started {
            return ReportBlock {
                ssrc,
                lsr,
                dlsr,
                ..ReportBlock::default()
            };
        }
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        let lost_interval = expected_interval as i64 - received_interval as i64;
        self.expected_prior = expected;
        self.received_prior = self.received;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            // All lost gives 256, which the 8-bit field cannot hold.
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: self.packets_lost().clamp(LOST_MIN, LOST_MAX) as i32,
            ext_highest_seq: self.extended_max() as u32,
            jitter: u32::try_from(self.jitter_q4 >> 4).unwrap_or(u32::MAX),
            lsr,
            dlsr,
        }
    }

    /// Packets counted since the stream started (duplicates included, as in RFC 3550).
    pub fn packets_received(&self) -> u64 {
        self.total_received
    }

    /// Expected minus received since the last resync; negative with duplicates.
    pub fn packets_lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Current interarrival jitter in RTP timestamp units.
    pub fn jitter(&self) -> u32 {
        u32::try_from(self.jitter_q4 >> 4).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const RATE: u32 = 90_000;

    #[test]
    fn empty_report() {
        let mut s = ReceiveStats::new(RATE);
        let rb = s.report_block(7, Instant::now());
        assert_eq!(
            rb,
            ReportBlock {
                ssrc: 7,
                ..Default::default()
            }
        );
        assert_eq!(s.packets_lost(), 0);
    }

    #[test]
    fn loss_and_fraction_with_gaps_across_wrap() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(RATE);
        // 100 sequence numbers from 65500, dropping every 10th (10 lost).
        for i in 0..100u32 {
            if i % 10 == 5 {
                continue;
            }
            let seq = (65500 + i) as u16;
            s.on_packet(seq, i * 3000, t0 + Duration::from_millis(u64::from(i) * 33));
        }
        assert_eq!(s.packets_received(), 90);
        assert_eq!(s.packets_lost(), 10);
        let rb = s.report_block(42, t0 + Duration::from_secs(4));
        assert_eq!(rb.ssrc, 42);
        assert_eq!(rb.cumulative_lost, 10);
        assert_eq!(rb.fraction_lost, (10 * 256 / 100) as u8); // 25
        assert_eq!(
            rb.ext_highest_seq,
            (1 << 16) | u32::from((65500u32 + 99) as u16)
        );

        // next interval: 20 packets, 5 lost in one burst
        for i in 100..120u32 {
            if (105..110).contains(&i) {
                continue;
            }
            s.on_packet(
                (65500 + i) as u16,
                i * 3000,
                t0 + Duration::from_millis(u64::from(i) * 33),
            );
        }
        let rb = s.report_block(42, t0 + Duration::from_secs(5));
        assert_eq!(rb.cumulative_lost, 15);
        assert_eq!(rb.fraction_lost, (5 * 256 / 20) as u8); // 64

        // an interval with nothing lost reports zero
        s.on_packet(
            (65500 + 120u32) as u16,
            120 * 3000,
            t0 + Duration::from_secs(5),
        );
        assert_eq!(
            s.report_block(42, t0 + Duration::from_secs(6))
                .fraction_lost,
            0
        );
    }

    #[test]
    fn reordering_and_duplicates_are_not_loss() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(RATE);
        for &seq in &[10u16, 12, 11, 13, 13, 14] {
            s.on_packet(seq, u32::from(seq) * 3000, t0);
        }
        assert_eq!(s.packets_received(), 6);
        assert_eq!(s.packets_lost(), -1); // the duplicate
        let rb = s.report_block(1, t0);
        assert_eq!(rb.cumulative_lost, -1);
        assert_eq!(rb.fraction_lost, 0);
        assert_eq!(rb.ext_highest_seq, 14);
    }

    #[test]
    fn large_jump_resyncs_after_two_sequential_packets() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(RATE);
        for seq in 0..10u16 {
            s.on_packet(seq, 0, t0);
        }
        s.on_packet(40_000, 0, t0); // held back
        assert_eq!(s.packets_received(), 10);
        s.on_packet(40_001, 0, t0); // confirms the restart
        assert_eq!(s.packets_lost(), 0);
        let rb = s.report_block(1, t0);
        assert_eq!(rb.ext_highest_seq, 40_001);
        assert_eq!(rb.cumulative_lost, 0);
    }

    #[test]
    fn fraction_after_a_long_gap() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(RATE);
        s.on_packet(0, 0, t0);
        s.report_block(1, t0);
        // the next packet arrives after a gap of 50: 50 expected, 1 received in this interval
        s.on_packet(50, 0, t0);
        let rb = s.report_block(1, t0);
        assert_eq!(rb.fraction_lost, (49 * 256 / 50) as u8);
        assert_eq!(rb.cumulative_lost, 49);
    }

    #[test]
    fn cumulative_lost_clamps_to_24_bits() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(RATE);
        // Steps of 2999 wrap the 16-bit space many times, losing 2998 per step.
        let mut seq = 0u16;
        s.on_packet(seq, 0, t0);
        for _ in 0..3000 {
            seq = seq.wrapping_add(2999);
            s.on_packet(seq, 0, t0);
        }
        assert_eq!(s.packets_lost(), 3000 * 2998);
        assert_eq!(s.report_block(1, t0).cumulative_lost, 0x7f_ffff);
    }

    #[test]
    fn constant_delay_has_zero_jitter() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(RATE);
        for i in 0..50u32 {
            // 20 ms frames: 1800 ticks at 90 kHz
            s.on_packet(
                i as u16,
                1000 + i * 1800,
                t0 + Duration::from_millis(u64::from(i) * 20),
            );
        }
        assert_eq!(s.jitter(), 0);
    }

    #[test]
    fn alternating_delay_converges_to_its_swing() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(RATE);
        for i in 0..400u32 {
            // every other packet 10 ms late: |D| = 900 ticks each step
            let late = if i % 2 == 1 { 10 } else { 0 };
            let at = t0 + Duration::from_millis(u64::from(i) * 20 + late);
            s.on_packet(i as u16, i * 1800, at);
        }
        let j = s.report_block(1, t0 + Duration::from_secs(9)).jitter;
        assert!((880..=900).contains(&j), "jitter {j}");
    }

    #[test]
    fn same_timestamp_packets_are_one_jitter_sample() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(RATE);
        let mut seq = 0u16;
        for frame in 0..50u32 {
            // three packets per frame, paced 2 ms apart, frames every 33 ms exactly
            for k in 0..3u64 {
                let at = t0 + Duration::from_millis(u64::from(frame) * 33 + k * 2);
                s.on_packet(seq, frame * 2970, at);
                seq += 1;
            }
        }
        assert_eq!(s.jitter(), 0);
    }

    #[test]
    fn lsr_and_dlsr() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(RATE);
        s.on_packet(1, 0, t0);
        let ntp = 0x1234_5678_9abc_def0u64;
        s.on_sender_report(ntp, t0);
        let rb = s.report_block(1, t0 + Duration::from_millis(1500));
        assert_eq!(rb.lsr, 0x5678_9abc);
        assert_eq!(rb.dlsr, 98_304); // 1.5 * 65536
    }
}
