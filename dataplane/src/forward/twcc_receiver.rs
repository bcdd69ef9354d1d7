//! Transport-wide congestion control feedback to a publisher.
//!
//! The publisher's browser runs its send-side bandwidth estimate on our
//! transport-cc feedback: each packet's transport-wide sequence number and
//! when it arrived. One `TwccReceiver` per publisher session records
//! arrivals in a fixed ring and reports the window not yet reported about
//! every 50 ms (sooner when it fills up).

use std::time::{Duration, Instant};

use crate::rtcp::twcc::{write_twcc_prefix, REFERENCE_TICK_US};
use crate::rtp::SeqUnwrapper;

/// Most sequence numbers a pending window spans, and how far back a late
/// packet can still be reported. About 50 ms of a 200 Mbit/s publisher.
pub const CAPACITY: usize = 1024;
/// Feedback period while packets arrive. libwebrtc's receivers use 50-250 ms;
/// the short end lets the publisher react quickly, at ~20 small packets a second.
const INTERVAL: Duration = Duration::from_millis(50);
/// This many pending statuses make feedback due at once, so each message
/// stays around an MTU and a burst is reported without waiting.
const EARLY_PENDING: u64 = 256;

#[derive(Debug, Clone, Copy)]
struct Arrival {
    /// Extended sequence number this slot holds; `u64::MAX` when empty.
    ext: u64,
    /// Microseconds since the first packet.
    at_us: i64,
}

const EMPTY: Arrival = Arrival {
    ext: u64::MAX,
    at_us: 0,
};

/// Counters for one publisher's feedback.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TwccReceiverStats {
    /// Packets recorded (first copies only).
    pub packets: u64,
    pub duplicates: u64,
    /// Packets arriving more than [`CAPACITY`] sequence numbers late: not reported.
    pub too_old: u64,
    /// Received packets pushed out of a full window before any feedback reported them.
    pub dropped: u64,
    pub feedbacks: u64,
    /// Polls that found feedback due but could not write it (`out` too small).
    pub write_errors: u64,
}

pub struct TwccReceiver {
    sender_ssrc: u32,
    /// Arrival of the first packet: time zero for every arrival we report.
    epoch: Option<Instant>,
    seqs: SeqUnwrapper,
    slots: Box<[Arrival]>,
    /// First extended sequence number the next feedback reports; the
    /// pending window is `start..=highest`.
    start: Option<u64>,
    /// Every sequence number below this was in some feedback.
    reported_to: u64,
    fb_count: u8,
    last_feedback: Option<Instant>,
    /// The last feedback did not fit the whole window: the rest is due at once.
    backlog: bool,
    stats: TwccReceiverStats,
}

impl TwccReceiver {
    /// `sender_ssrc` goes in the feedback's sender SSRC field.
    pub fn new(sender_ssrc: u32) -> Self {
        TwccReceiver {
            sender_ssrc,
            epoch: None,
            seqs: SeqUnwrapper::new(),
            slots: vec![EMPTY; CAPACITY].into_boxed_slice(),
            start: None,
            reported_to: 0,
            fb_count: 0,
            last_feedback: None,
            backlog: false,
            stats: TwccReceiverStats::default(),
        }
    }

    pub fn stats(&self) -> TwccReceiverStats {
        self.stats
    }

    /// Each received RTP packet's transport-wide seq (from the transport-cc
    /// header extension) and arrival time.
    pub fn on_packet(&mut self, tw_seq: u16, arrival: Instant) {
        let epoch = *self.epoch.get_or_insert(arrival);
        let at_us =
            i64::try_from(arrival.saturating_duration_since(epoch).as_micros()).unwrap_or(i64::MAX);
        let ext = self.seqs.unwrap(tw_seq);
        let highest = self.seqs.highest().unwrap_or(ext);
        if highest - ext >= CAPACITY as u64 {
            self.stats.too_old += 1;
            return;
        }
        let index = slot_index(ext);
        if self.slots[index].ext == ext {
            self.stats.duplicates += 1;
            return;
        }
        self.stats.packets += 1;
        // A late packet reopens the window back to itself: the sender accepts
        // a packet reported received after it was reported lost.
        let mut start = self.start.map_or(ext, |s| s.min(ext));
        let floor = (highest + 1).saturating_sub(CAPACITY as u64);
        if start < floor {
            self.evict(start, floor);
            start = floor;
        }
        self.start = Some(start);
        self.slots[index] = Arrival { ext, at_us };
        self.last_feedback.get_or_insert(arrival);
    }

    /// Writes one RTCP transport-cc feedback packet into `out` if one is due
    /// (every ~50 ms while packets arrive, or sooner when many are pending),
    /// returning its length. What does not fit in `out` stays pending and is
    /// due at once. `media_ssrc` is one of the publisher's SSRCs (browsers
    /// accept any).
    pub fn poll_feedback(
        &mut self,
        now: Instant,
        media_ssrc: u32,
        out: &mut [u8],
    ) -> Option<usize> {
        let (start, highest) = self.window()?;
        let pending = highest + 1 - start;
        let last = self.last_feedback?;
        if !self.due_now(pending) && now < last + INTERVAL {
            return None;
        }
        let slots = &self.slots;
        let arrival = move |e: u64| {
            let slot = slots[slot_index(e)];
            (slot.ext == e).then_some(slot.at_us)
        };
        // A 64 ms reference at or just before the first arrival keeps the
        // first delta in one byte.
        let reference = (start..=highest)
            .find_map(arrival)
            .map_or(0, |t| t.div_euclid(REFERENCE_TICK_US) * REFERENCE_TICK_US);
        let entries = (start..=highest).map(move |e| (e as u16, arrival(e)));
        let written = write_twcc_prefix(
            out,
            self.sender_ssrc,
            media_ssrc,
            start as u16,
            self.fb_count,
            reference,
            entries,
        );
        // Wait a period after a failure too, rather than have the caller spin.
        self.last_feedback = Some(now);
        let Ok(w) = written else {
            self.stats.write_errors += 1;
            return None;
        };
        let next = start + u64::from(w.statuses);
        self.backlog = u64::from(w.statuses) < pending;
        self.start = Some(next);
        self.reported_to = self.reported_to.max(next);
        self.fb_count = self.fb_count.wrapping_add(1);
        self.stats.feedbacks += 1;
        Some(w.len)
    }

    /// When to call [`poll_feedback`](Self::poll_feedback) next; `None` while nothing is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let (start, highest) = self.window()?;
        let last = self.last_feedback?;
        if self.due_now(highest + 1 - start) {
            Some(last)
        } else {
            Some(last + INTERVAL)
        }
    }

    fn due_now(&self, pending: u64) -> bool {
        self.backlog || pending >= EARLY_PENDING
    }

    /// The pending window `(start, highest)`, if it holds anything.
    fn window(&self) -> Option<(u64, u64)> {
        let start = self.start?;
        let highest = self.seqs.highest()?;
        (start <= highest).then_some((start, highest))
    }

    /// Moves the window's start from `from` up to `to`, counting received
    /// packets no feedback has reported yet.
    fn evict(&mut self, from: u64, to: u64) {
        // Only the last CAPACITY sequence numbers can still be in the ring.
        let from = from
            .max(to.saturating_sub(CAPACITY as u64))
            .max(self.reported_to);
        let lost = (from..to)
            .filter(|&e| self.slots[slot_index(e)].ext == e)
            .count();
        self.stats.dropped += lost as u64;
    }
}

fn slot_index(ext: u64) -> usize {
    (ext % CAPACITY as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtcp::twcc::parse_twcc;
    use crate::rtcp::twcc::tests::fci_of;

    const MS: Duration = Duration::from_millis(1);

    /// `(base_seq, fb_count, [(seq, arrival in us since the first packet)])` of a written feedback.
    type Decoded = (u16, u8, Vec<(u16, Option<i64>)>);

    fn decode(buf: &[u8]) -> Decoded {
        let (sender_ssrc, media_ssrc, fci) = fci_of(buf);
        assert_eq!((sender_ssrc, media_ssrc), (0xaaaa, 0xbbbb));
        let fb = parse_twcc(fci).unwrap();
        (fb.base_seq, fb.fb_count, fb.arrivals().collect())
    }

    fn poll(rx: &mut TwccReceiver, now: Instant) -> Option<Decoded> {
        let mut out = [0u8; 1500];
        let n = rx.poll_feedback(now, 0xbbbb, &mut out)?;
        Some(decode(&out[..n]))
    }

    #[test]
    fn in_order_packets_are_reported_every_interval() {
        let t0 = Instant::now();
        let mut rx = TwccReceiver::new(0xaaaa);
        assert_eq!(rx.poll_timeout(), None);
        for i in 0..10u16 {
            rx.on_packet(100 + i, t0 + MS * 5 * u32::from(i));
        }
        assert_eq!(rx.poll_timeout(), Some(t0 + INTERVAL));
        assert!(poll(&mut rx, t0 + MS * 49).is_none());
        let (base, count, got) = poll(&mut rx, t0 + INTERVAL).unwrap();
        assert_eq!((base, count), (100, 0));
        let want: Vec<_> = (0..10)
            .map(|i| (100 + i, Some(5000 * i64::from(i))))
            .collect();
        assert_eq!(got, want);
        // Nothing pending: no feedback, no timer.
        assert!(poll(&mut rx, t0 + INTERVAL * 3).is_none());
        assert_eq!(rx.poll_timeout(), None);
        // The next one continues after it, with the next feedback count.
        rx.on_packet(110, t0 + MS * 130);
        assert_eq!(rx.poll_timeout(), Some(t0 + INTERVAL * 2));
        let (base, count, got) = poll(&mut rx, t0 + MS * 130).unwrap();
        assert_eq!((base, count, got), (110, 1, vec![(110, Some(130_000))]));
        assert_eq!(rx.stats().feedbacks, 2);
    }

    #[test]
    fn losses_are_reported_not_received() {
        let t0 = Instant::now();
        let mut rx = TwccReceiver::new(0xaaaa);
        for (i, seq) in [0u16, 1, 2, 5, 6].into_iter().enumerate() {
            rx.on_packet(seq, t0 + MS * 3 * i as u32 + Duration::from_micros(100));
        }
        // The first packet (at 100 us) started the period.
        assert!(poll(&mut rx, t0 + INTERVAL).is_none());
        let (base, _, got) = poll(&mut rx, t0 + INTERVAL + MS).unwrap();
        assert_eq!(base, 0);
        // 100 us rounds down to 0, 3.1 ms to 3 ms: the 250 us grid.
        assert_eq!(
            got,
            vec![
                (0, Some(0)),
                (1, Some(3000)),
                (2, Some(6000)),
                (3, None),
                (4, None),
                (5, Some(9000)),
                (6, Some(12_000)),
            ]
        );
    }

    #[test]
    fn reordered_and_late_packets() {
        let t0 = Instant::now();
        let mut rx = TwccReceiver::new(0xaaaa);
        rx.on_packet(0, t0);
        rx.on_packet(2, t0 + MS * 2);
        rx.on_packet(1, t0 + MS * 3); // reordered: a negative delta after 2
        rx.on_packet(4, t0 + MS * 4);
        let (_, _, got) = poll(&mut rx, t0 + INTERVAL).unwrap();
        assert_eq!(
            got,
            vec![
                (0, Some(0)),
                (1, Some(3000)),
                (2, Some(2000)),
                (3, None),
                (4, Some(4000))
            ]
        );
        // 3 arrives after it was reported lost: the next feedback goes back for it.
        rx.on_packet(3, t0 + MS * 60);
        rx.on_packet(5, t0 + MS * 61);
        let (base, count, got) = poll(&mut rx, t0 + INTERVAL * 2).unwrap();
        assert_eq!((base, count), (3, 1));
        assert_eq!(
            got,
            vec![(3, Some(60_000)), (4, Some(4000)), (5, Some(61_000))]
        );
        // Duplicates are ignored.
        rx.on_packet(5, t0 + MS * 70);
        assert_eq!(rx.stats().duplicates, 1);
        assert_eq!(rx.poll_timeout(), None);
    }

    #[test]
    fn sequence_wrap() {
        let t0 = Instant::now();
        let mut rx = TwccReceiver::new(0xaaaa);
        let seqs = [65533u16, 65534, 65535, 0, 1, 2];
        for (i, &s) in seqs.iter().enumerate() {
            rx.on_packet(s, t0 + MS * i as u32);
        }
        let (base, _, got) = poll(&mut rx, t0 + INTERVAL).unwrap();
        assert_eq!(base, 65533);
        let want: Vec<_> = seqs
            .iter()
            .enumerate()
            .map(|(i, &s)| (s, Some(1000 * i as i64)))
            .collect();
        assert_eq!(got, want);
        // after the wrap the window continues at 3
        rx.on_packet(3, t0 + MS * 80);
        assert_eq!(poll(&mut rx, t0 + INTERVAL * 2).unwrap().0, 3);
    }

    #[test]
    fn flood_is_bounded_and_drained_in_mtu_sized_messages() {
        let t0 = Instant::now();
        let mut rx = TwccReceiver::new(0xaaaa);
        let total = 5000u32;
        for i in 0..total {
            rx.on_packet(i as u16, t0 + Duration::from_micros(20 * u64::from(i)));
        }
        assert_eq!(rx.stats().dropped, u64::from(total) - CAPACITY as u64);
        // Due at once, however recent the last feedback.
        let now = t0 + MS * 100;
        assert!(rx.poll_timeout().unwrap() <= now);
        let mut next = (total - CAPACITY as u32) as u16;
        // 350 bytes take about 330 statuses: the last message carries fewer
        // than EARLY_PENDING, and is still due at once.
        let mut sizes = Vec::new();
        let mut out = [0u8; 350];
        while let Some(n) = rx.poll_feedback(now, 0xbbbb, &mut out) {
            assert!(n <= 350);
            let (base, _, got) = decode(&out[..n]);
            assert_eq!(base, next);
            for (k, &(seq, at)) in got.iter().enumerate() {
                let i = i64::from(next) + k as i64;
                assert_eq!((seq, at), (i as u16, Some(20 * i / 250 * 250)));
            }
            next = next.wrapping_add(got.len() as u16);
            sizes.push(got.len());
        }
        assert_eq!(next, total as u16);
        assert!(sizes.len() >= 2, "{sizes:?}");
        assert!((*sizes.last().unwrap() as u64) < EARLY_PENDING, "{sizes:?}");
        assert_eq!(rx.poll_timeout(), None);
        // Far too late to report.
        rx.on_packet(0, now);
        assert_eq!(rx.stats().too_old, 1);
    }

    #[test]
    fn a_buffer_too_small_backs_off() {
        let t0 = Instant::now();
        let mut rx = TwccReceiver::new(0xaaaa);
        rx.on_packet(1, t0);
        let mut tiny = [0u8; 16];
        assert_eq!(rx.poll_feedback(t0 + INTERVAL, 0xbbbb, &mut tiny), None);
        assert_eq!(rx.stats().write_errors, 1);
        assert_eq!(rx.poll_timeout(), Some(t0 + INTERVAL * 2));
        assert!(poll(&mut rx, t0 + INTERVAL * 2).is_some());
    }
}
