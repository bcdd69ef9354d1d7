//! Downlink bandwidth estimate for one subscriber session, in the spirit of
//! Google Congestion Control (draft-ietf-rmcat-gcc-02).
//!
//! sfud stamps its own transport-wide sequence numbers on what it sends to
//! the subscriber; the subscriber's transport-cc feedback says which arrived
//! and when. Two estimates come out of that, and the result is the lower:
//! - delay-based: send bursts vs. their arrival spacing, a trendline over
//!   the accumulated delay variation, an overuse detector with an adaptive
//!   threshold, AIMD rate control from the acknowledged rate;
//! - loss-based: grow under 2% loss, hold to 10%, cut in proportion above.
//!
//! REMB, when the subscriber sends it, caps both. Without transport-cc, the
//! RR's fraction lost feeds the loss-based part alone. Sans-IO: time comes
//! in as `Instant`s, the send history is a fixed ring.

mod acked_rate;
mod aimd;
mod inter_arrival;
mod loss;
mod overuse;
mod probe_window;
mod send_history;
mod trendline;

use std::time::{Duration, Instant};

use crate::rtcp::twcc::{parse_twcc, REFERENCE_WRAP_US};
use crate::rtcp::RtcpError;

use acked_rate::AckedRate;
use aimd::AimdRateControl;
use inter_arrival::{GroupDelta, InterArrival};
use loss::LossBasedControl;
use overuse::OveruseDetector;
pub use probe_window::ProbeReport;
use probe_window::ProbeWindow;
use send_history::{Fate, SendHistory};
pub use send_history::SentMedia;
use trendline::Trendline;

/// Bounds of every estimate.
pub const MIN_BPS: u64 = 30_000;
pub const MAX_BPS: u64 = 50_000_000;

/// RR loss reports are ignored while transport-cc feedback came this recently:
/// it counts the same losses, per packet.
const TWCC_FRESH: Duration = Duration::from_secs(2);
/// A delay variation this large is a clock jump or a path change, not queuing.
const MAX_VARIATION_MS: f64 = 3000.0;

/// What the delay trend says about the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BandwidthUsage {
    #[default]
    Normal,
    /// Queues are building: we send more than the path carries.
    Overusing,
    /// Queues are draining.
    Underusing,
}

/// A snapshot of the estimator, for stats and the stream allocator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BweStats {
    pub estimate_bps: u64,
    /// The delay-based part; `None` until the first transport-cc feedback.
    pub delay_based_bps: Option<u64>,
    pub loss_based_bps: u64,
    pub remb_bps: Option<u64>,
    /// Rate the subscriber received over the last ~0.5 s, from feedback.
    pub acked_bps: Option<u64>,
    /// Loss ratio (0..=1) of the last loss update.
    pub loss_ratio: f64,
    /// Last modified delay trend and the detector's threshold, in ms.
    pub delay_trend_ms: f64,
    pub delay_threshold_ms: f64,
    pub usage: BandwidthUsage,
    /// Transport-cc feedback messages that reported at least one packet we still know.
    pub feedbacks: u64,
    /// Reported sequence numbers we have no record of (never sent, or aged out).
    pub unknown_seqs: u64,
    /// RR loss fractions ignored because transport-cc feedback is flowing.
    pub ignored_loss_reports: u64,
}

/// Losses one feedback may hand on for repair: a feedback reporting more
/// than this describes congestion or an outage, which resends would feed.
pub const MAX_LOST_PER_FEEDBACK: usize = 32;

pub struct BandwidthEstimator {
    /// First instant seen: time zero for send times.
    epoch: Option<Instant>,
    history: SendHistory,
    inter_arrival: InterArrival,
    trendline: Trendline,
    detector: OveruseDetector,
    acked: AckedRate,
    delay_based: AimdRateControl,
    /// Whether transport-cc feedback ever arrived (the delay part counts only then).
    delay_active: bool,
    loss_based: LossBasedControl,
    remb_bps: Option<u64>,
    /// Reference time of the last feedback, unwrapped from 24 bits.
    last_reference_us: Option<i64>,
    last_twcc: Option<Instant>,
    delay_trend_ms: f64,
    feedbacks: u64,
    unknown_seqs: u64,
    ignored_loss_reports: u64,
    /// The packets of the stream allocator's current probe.
    probe: Option<ProbeWindow>,
}

impl BandwidthEstimator {
    pub fn new(initial_bps: u64) -> Self {
        let initial = initial_bps.clamp(MIN_BPS, MAX_BPS);
        BandwidthEstimator {
            epoch: None,
            history: SendHistory::new(),
            inter_arrival: InterArrival::default(),
            trendline: Trendline::default(),
            detector: OveruseDetector::default(),
            acked: AckedRate::default(),
            delay_based: AimdRateControl::new(initial, MIN_BPS, MAX_BPS),
            delay_active: false,
            loss_based: LossBasedControl::new(initial),
            remb_bps: None,
            last_reference_us: None,
            last_twcc: None,
            delay_trend_ms: 0.0,
            feedbacks: 0,
            unknown_seqs: 0,
            ignored_loss_reports: 0,
            probe: None,
        }
    }

    /// Packets sent from now on belong to a probe (until `end_probe`).
    pub fn start_probe(&mut self, now: Instant) {
        let at = self.micros(now);
        self.probe = Some(ProbeWindow::new(at));
    }

    /// The probe's packets have all been sent.
    pub fn end_probe(&mut self, now: Instant) {
        let at = self.micros(now);
        if let Some(p) = self.probe.as_mut() {
            p.close(at);
        }
    }

    /// What feedback has said so far about the probe's packets.
    pub fn probe_report(&self) -> Option<ProbeReport> {
        self.probe.map(|p| p.report())
    }

    /// A packet sfud sent to this subscriber with transport-wide seq `tw_seq` and `size` bytes.
    /// Asks for what `on_sent(tw_seq, ..)` will touch (see `crate::prefetch`).
    pub fn warm_send(&self, tw_seq: u16) {
        self.history.warm(tw_seq);
    }

    /// Asks for the lines `warm_send` reads, a stage before it.
    pub fn warm_lines(&self) {
        crate::prefetch::value(&self.history);
    }

    /// `media` names the packet for a repair should the subscriber report it lost.
    pub fn on_sent(&mut self, tw_seq: u16, size: usize, media: Option<SentMedia>, now: Instant) {
        let sent_us = self.micros(now);
        self.history.on_sent(tw_seq, size, media, sent_us);
    }

    /// The subscriber's transport-cc feedback (the fci of `RtcpPacket::TransportCc`).
    /// Statuses of sequence numbers not in the send history are ignored.
    /// Media packets this feedback is the first to report lost are pushed to
    /// `lost`, at most [`MAX_LOST_PER_FEEDBACK`] of them.
    pub fn on_twcc(&mut self, fci: &[u8], now: Instant, lost_media: &mut Vec<SentMedia>) -> Result<(), RtcpError> {
        let fb = parse_twcc(fci)?;
        let shift = self.unwrap_reference(fb.reference_time_us) - fb.reference_time_us;
        let (mut lost, mut received, mut recovered) = (0u32, 0u32, 0u32);
        for (seq, arrival) in fb.arrivals() {
            let Some(sent) = self.history.get_mut(seq) else {
                self.unknown_seqs += 1;
                continue;
            };
            match (arrival, sent.fate) {
                // Feedback repeats itself (windows overlap): count each packet once.
                (_, Fate::Received) | (None, Fate::Lost) => {}
                (None, Fate::Unreported) => {
                    sent.fate = Fate::Lost;
                    lost += 1;
                    if let Some(m) = sent.media() {
                        if lost_media.len() < MAX_LOST_PER_FEEDBACK {
                            lost_media.push(m);
                        }
                    }
                    if let Some(p) = self.probe.as_mut() {
                        p.on_lost(sent.sent_us);
                    }
                }
                (Some(at), fate) => {
                    if fate == Fate::Lost {
                        // Late, not lost.
                        recovered += 1;
                    }
                    sent.fate = Fate::Received;
                    received += 1;
                    let (sent_us, size) = (sent.sent_us, sent.size);
                    let at = at + shift;
                    self.acked.on_acked(at, size);
                    if let Some(p) = self.probe.as_mut() {
                        p.on_received(sent_us, at, size);
                    }
                    if let Some(delta) = self.inter_arrival.on_packet(sent_us, at) {
                        self.on_group_delta(delta);
                    }
                }
            }
        }
        if lost == 0 && received == 0 {
            // Nothing we could place: no evidence either way.
            return Ok(());
        }
        self.feedbacks += 1;
        self.last_twcc = Some(now);
        if !self.delay_active {
            self.delay_active = true;
            self.delay_based = AimdRateControl::new(self.estimate_bps(), MIN_BPS, MAX_BPS);
        }
        self.delay_based
            .update(self.detector.state(), self.acked.bps(), now);
        self.loss_based.on_counts(lost, received, recovered, now);
        self.cap_loss_based();
        Ok(())
    }

    /// REMB from the subscriber (an upper bound).
    pub fn on_remb(&mut self, bitrate_bps: u64, _now: Instant) {
        self.remb_bps = Some(bitrate_bps.clamp(MIN_BPS, MAX_BPS));
        self.cap_loss_based();
    }

    /// A probe (the stream allocator's) was acknowledged at `bps` without
    /// overuse: the path carries at least that, whatever the estimate's
    /// slow growth says. REMB still caps it.
    pub fn on_probe_result(&mut self, bps: u64) {
        let bps = bps.clamp(MIN_BPS, MAX_BPS);
        if self.delay_active {
            self.delay_based.raise_to(bps);
        }
        self.loss_based.raise_to(bps);
        self.cap_loss_based();
    }

    /// RR fraction lost (0..=255) from the subscriber, used while it sends no transport-cc.
    pub fn on_loss_fraction(&mut self, fraction_lost: u8, now: Instant) {
        if self
            .last_twcc
            .is_some_and(|t| now.saturating_duration_since(t) < TWCC_FRESH)
        {
            self.ignored_loss_reports += 1;
            return;
        }
        self.loss_based
            .on_ratio(f64::from(fraction_lost) / 256.0, now);
        self.cap_loss_based();
    }

    pub fn estimate_bps(&self) -> u64 {
        self.upper_bps()
            .min(self.loss_based.bps())
            .clamp(MIN_BPS, MAX_BPS)
    }

    /// Whether the subscriber's own REMB is what holds the estimate down:
    /// then no probe can raise it, and probing would only spend bandwidth
    /// the subscriber said it lacks.
    pub fn held_by_remb(&self) -> bool {
        self.remb_bps.is_some_and(|remb| self.estimate_bps() >= remb)
    }

    pub fn stats(&self) -> BweStats {
        BweStats {
            estimate_bps: self.estimate_bps(),
            delay_based_bps: self.delay_active.then(|| self.delay_based.bps()),
            loss_based_bps: self.loss_based.bps(),
            remb_bps: self.remb_bps,
            acked_bps: self.acked.bps(),
            loss_ratio: self.loss_based.last_ratio(),
            delay_trend_ms: self.delay_trend_ms,
            delay_threshold_ms: self.detector.threshold_ms(),
            usage: self.detector.state(),
            feedbacks: self.feedbacks,
            unknown_seqs: self.unknown_seqs,
            ignored_loss_reports: self.ignored_loss_reports,
        }
    }

    /// The limits other than loss: delay-based (once active), REMB, the maximum.
    fn upper_bps(&self) -> u64 {
        let mut upper = MAX_BPS;
        if self.delay_active {
            upper = upper.min(self.delay_based.bps());
        }
        if let Some(remb) = self.remb_bps {
            upper = upper.min(remb);
        }
        upper
    }

    fn cap_loss_based(&mut self) {
        self.loss_based.cap(self.upper_bps());
        self.loss_based.clamp(MIN_BPS, MAX_BPS);
    }

    fn on_group_delta(&mut self, delta: GroupDelta) {
        let variation = delta.arrival_ms - delta.send_ms;
        if variation.abs() > MAX_VARIATION_MS {
            self.inter_arrival.reset();
            self.trendline.reset();
            self.detector.reset();
            return;
        }
        if let Some(trend) = self.trendline.update(variation, delta.arrival_us) {
            self.delay_trend_ms = trend;
            self.detector.detect(trend, delta.send_ms, delta.arrival_us);
        }
    }

    /// Places a feedback's reference time after the previous one's, across
    /// the 24-bit wrap, so arrivals from all feedbacks share one clock.
    fn unwrap_reference(&mut self, reference_us: i64) -> i64 {
        let unwrapped = match self.last_reference_us {
            None => reference_us,
            Some(last) => {
                let mut step = (reference_us - last).rem_euclid(REFERENCE_WRAP_US);
                if step >= REFERENCE_WRAP_US / 2 {
                    step -= REFERENCE_WRAP_US;
                }
                last + step
            }
        };
        self.last_reference_us = Some(unwrapped);
        unwrapped
    }

    fn micros(&mut self, now: Instant) -> i64 {
        let epoch = *self.epoch.get_or_insert(now);
        i64::try_from(now.saturating_duration_since(epoch).as_micros()).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests;
