//! Speech measurement for active speaker detection, sans I/O. Each audio
//! uptrack keeps a few counters of the RFC 6464 levels its publisher wrote
//! (ssrc-audio-level: one byte, the voice-activity flag and the level in
//! -dBov, 0 loudest, 127 silence); every interval the shard takes them as
//! one `AudioLevelWindow` per track and reports them together. The
//! controlplane ranks the speakers of each room from those windows, as
//! ion-sfu's audio observer did: a packet is "active" when its level is at
//! or under the threshold, and a stream speaks when enough of an interval's
//! packets were active.
//!
//! Per packet this is four additions on the uptrack: no allocation, no
//! lookup.

use std::time::{Duration, Instant};

use crate::msg::{AudioLevelSettings, AudioLevelWindow, TrackId};

/// Shortest interval a shard reports at, whatever it is told: ranking at a
/// finer grain than a few 20 ms packets is noise.
pub const MIN_INTERVAL: Duration = Duration::from_millis(20);

/// The level (-dBov, 0..=127) in an ssrc-audio-level element. RFC 6464
/// defines one byte; an element padded longer is read by its first byte,
/// an empty one is no level.
pub fn level(data: &[u8]) -> Option<u8> {
    data.first().map(|b| b & 0x7f)
}

/// One uptrack's counters for the interval in progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AudioLevelMeter {
    packets: u32,
    level_sum: u32,
    active: u32,
    active_level_sum: u32,
    /// The last window taken carried packets: the next one is reported even
    /// if empty, so a track that stops sending falls silent upstairs.
    last_had_packets: bool,
}

impl AudioLevelMeter {
    /// One authenticated packet's ssrc-audio-level element.
    pub fn observe(&mut self, data: &[u8], threshold: u8) {
        let Some(level) = level(data) else { return };
        // Saturating: an interval long enough to overflow is misconfigured,
        // not a reason to wrap into nonsense.
        self.packets = self.packets.saturating_add(1);
        self.level_sum = self.level_sum.saturating_add(u32::from(level));
        if level <= threshold {
            self.active = self.active.saturating_add(1);
            self.active_level_sum = self.active_level_sum.saturating_add(u32::from(level));
        }
    }

    /// Ends the interval: the window to report for `track`, or None when
    /// this one and the one before were both empty.
    pub fn take(&mut self, track: TrackId) -> Option<AudioLevelWindow> {
        let had = self.packets > 0;
        let report = had || self.last_had_packets;
        let w = AudioLevelWindow {
            track,
            packets: self.packets,
            level_sum: self.level_sum,
            active: self.active,
            active_level_sum: self.active_level_sum,
        };
        *self = AudioLevelMeter { last_had_packets: had, ..Default::default() };
        report.then_some(w)
    }
}

/// When a shard's next report is due.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReportClock {
    settings: AudioLevelSettings,
    next: Option<Instant>,
}

impl ReportClock {
    pub fn new(settings: AudioLevelSettings) -> Self {
        let mut c = ReportClock::default();
        c.configure(settings);
        c
    }

    pub fn configure(&mut self, settings: AudioLevelSettings) {
        self.settings = AudioLevelSettings { interval: settings.interval.max(MIN_INTERVAL), ..settings };
        // The new interval starts from the next tick.
        self.next = None;
    }

    pub fn settings(&self) -> AudioLevelSettings {
        self.settings
    }

    /// Whether a report is due at `now`; if so the next one is scheduled.
    /// The first call only starts the clock.
    pub fn due(&mut self, now: Instant) -> bool {
        match self.next {
            None => {
                self.next = Some(now + self.settings.interval);
                false
            }
            Some(t) if now >= t => {
                // Keep the cadence; after a long stall start afresh rather
                // than fire a burst of catch-up reports.
                let next = t + self.settings.interval;
                self.next = Some(if next <= now { now + self.settings.interval } else { next });
                true
            }
            Some(_) => false,
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: TrackId = TrackId(7);

    #[test]
    fn level_is_the_low_seven_bits() {
        assert_eq!(level(&[0x80 | 30]), Some(30), "voice-activity flag ignored");
        assert_eq!(level(&[127]), Some(127));
        assert_eq!(level(&[5, 0]), Some(5), "padded element");
        assert_eq!(level(&[]), None);
    }

    #[test]
    fn counts_active_packets_against_the_threshold() {
        let mut m = AudioLevelMeter::default();
        for l in [10u8, 40, 41, 127] {
            m.observe(&[l], 40);
        }
        m.observe(&[], 40);
        let w = m.take(T).unwrap();
        assert_eq!(w, AudioLevelWindow { track: T, packets: 4, level_sum: 218, active: 2, active_level_sum: 50 });
    }

    #[test]
    fn a_silent_track_reports_one_empty_window_then_nothing() {
        let mut m = AudioLevelMeter::default();
        assert_eq!(m.take(T), None, "never carried levels");
        m.observe(&[20], 40);
        assert_eq!(m.take(T).map(|w| w.packets), Some(1));
        assert_eq!(m.take(T).map(|w| w.packets), Some(0), "the drop to silence is reported");
        assert_eq!(m.take(T), None);
    }

    #[test]
    fn counters_saturate() {
        let mut m = AudioLevelMeter { packets: u32::MAX, level_sum: u32::MAX - 1, ..Default::default() };
        m.observe(&[100], 40);
        let w = m.take(T).unwrap();
        assert_eq!((w.packets, w.level_sum), (u32::MAX, u32::MAX));
    }

    #[test]
    fn clock_keeps_its_cadence_and_skips_stalls() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut c = ReportClock::new(AudioLevelSettings { interval: ms(1000), threshold: 40 });
        assert!(!c.due(t0), "the first call starts the clock");
        assert_eq!(c.poll_timeout(), Some(t0 + ms(1000)));
        assert!(!c.due(t0 + ms(999)));
        assert!(c.due(t0 + ms(1010)));
        assert_eq!(c.poll_timeout(), Some(t0 + ms(2000)), "late ticks do not drift");
        assert!(c.due(t0 + ms(9000)));
        assert_eq!(c.poll_timeout(), Some(t0 + ms(10000)), "no burst after a stall");
    }

    #[test]
    fn interval_has_a_floor() {
        let c = ReportClock::new(AudioLevelSettings { interval: Duration::ZERO, threshold: 40 });
        assert_eq!(c.settings().interval, MIN_INTERVAL);
    }

    proptest::proptest! {
        #[test]
        fn any_element_is_counted_without_panic(
            elems in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..20), 0..100),
            threshold in proptest::num::u8::ANY,
        ) {
            let mut m = AudioLevelMeter::default();
            for e in &elems {
                m.observe(e, threshold);
            }
            let nonempty = elems.iter().filter(|e| !e.is_empty()).count() as u32;
            match m.take(T) {
                Some(w) => {
                    proptest::prop_assert_eq!(w.packets, nonempty);
                    proptest::prop_assert!(w.active <= w.packets);
                    proptest::prop_assert!(w.active_level_sum <= w.level_sum);
                    proptest::prop_assert!(w.level_sum <= 127 * w.packets);
                }
                None => proptest::prop_assert_eq!(nonempty, 0),
            }
        }

        #[test]
        fn any_packet_is_read_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300), id in 0u8..16) {
            let mut m = AudioLevelMeter::default();
            if let Ok(h) = crate::rtp::parse(&bytes) {
                if let Some(d) = crate::rtp::extension(&bytes, &h, id) {
                    m.observe(d, 40);
                }
            }
            let _ = m.take(T);
        }
    }
}
