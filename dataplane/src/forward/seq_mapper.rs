//! A downtrack's own sequence and timestamp space.
//!
//! The subscriber must see one contiguous stream, whatever sfud does upstream
//! of it: packets it drops on purpose (mute, waiting for a keyframe, an
//! unwanted layer) leave no hole, while holes the network made stay visible so
//! the subscriber NACKs them. Source switches (simulcast layer, publisher)
//! continue the same numbering. Late packets keep the number they would have
//! had in order, which needs a short per-seq history: the offset between
//! source and output changes at every deliberate skip.

/// Source positions (and output positions) remembered; a power of two.
/// About a second of video, as long as anything upstream can be late by.
const HISTORY: usize = 1024;
const MASK: u64 = HISTORY as u64 - 1;

/// The largest hole one source jump may open in the output. The subscriber
/// reads a forward step of 2^15 or more as a step back, so bigger jumps (which
/// only broken or hostile input produces) are shown as this many losses.
const MAX_SHOWN_GAP: u64 = 1 << 14;

/// What became of a source position of the current source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Unused = 0,
    /// Not seen yet (lost or late): `out` is kept for it.
    Missing = 1,
    Sent = 2,
    /// Dropped on purpose: it has no output position.
    Skipped = 3,
}

/// Bits of a 32-bit tag below the ring index: the index itself says them,
/// so a tag keeps only the bits above, and uses the low two for a flag.
const TAG_MASK: u32 = !(MASK as u32);

/// One source position, in 8 bytes: a fan-out touches one slot of every
/// downtrack for every packet, so eight slots to a cache line rather than
/// two and a half is what keeps the mapper out of the miss profile.
/// Positions are stored as their low 32 bits and widened against the run's
/// head, which is never more than `HISTORY * MAX_SHOWN_GAP` (2^24) ahead.
#[derive(Debug, Clone, Copy)]
struct SourceSlot {
    /// `ext_seq`'s bits above the ring index, and the `Fate` in bits 0..2.
    tag: u32,
    /// Low 32 bits of the output position (meaningful for `Missing` and `Sent`).
    out: u32,
}

impl SourceSlot {
    fn new(ext_seq: u64, out: u64, fate: Fate) -> Self {
        SourceSlot {
            tag: (ext_seq as u32 & TAG_MASK) | fate as u32,
            out: out as u32,
        }
    }

    fn holds(&self, ext_seq: u64) -> bool {
        self.tag & TAG_MASK == ext_seq as u32 & TAG_MASK
    }

    fn fate(&self) -> Fate {
        match self.tag & 3 {
            1 => Fate::Missing,
            2 => Fate::Sent,
            3 => Fate::Skipped,
            _ => Fate::Unused,
        }
    }

    fn set_fate(&mut self, fate: Fate) {
        self.tag = (self.tag & TAG_MASK) | fate as u32;
    }
}

/// One output position, in 8 bytes (see `SourceSlot`).
#[derive(Debug, Clone, Copy)]
struct OutputSlot {
    /// `out`'s bits above the ring index, and bit 0 set once written.
    tag: u32,
    /// Low 32 bits of the source ext seq sent at `out`.
    ext_seq: u32,
}

const WRITTEN: u32 = 1;

/// Widens a position stored as its low 32 bits, given a full position at or
/// after it and less than 2^32 ahead.
fn widen(low: u32, at_or_after: u64) -> Option<u64> {
    at_or_after.checked_sub(u64::from((at_or_after as u32).wrapping_sub(low)))
}

/// The current source, from its first mapped packet on.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// First mapped source ext seq: anything before it cannot be placed.
    start: u64,
    /// Highest source ext seq seen, mapped or skipped.
    highest: u64,
    /// Output position of `highest + 1` if it comes in order.
    next_out: u64,
    /// Output position of `start`: lower outputs belong to an earlier source.
    out_start: u64,
    ts_offset: u32,
}

pub struct SeqMapper {
    first_seq: u16,
    first_ts: u32,
    run: Option<Run>,
    /// Timestamp step from the previous source to the next run's first packet.
    ts_gap: u32,
    /// Highest extended output position sent, and its timestamp.
    last_out: Option<(u64, u32)>,
    by_source: Box<[SourceSlot; HISTORY]>,
    by_output: Box<[OutputSlot; HISTORY]>,
}

impl SeqMapper {
    /// `first_seq`/`first_ts`: where the subscriber's stream starts (random in production).
    pub fn new(first_seq: u16, first_ts: u32) -> Self {
        SeqMapper {
            first_seq,
            first_ts,
            run: None,
            ts_gap: 0,
            last_out: None,
            by_source: Box::new([SourceSlot { tag: 0, out: 0 }; HISTORY]),
            by_output: Box::new([OutputSlot { tag: 0, ext_seq: 0 }; HISTORY]),
        }
    }

    /// A source packet that will be sent: its output (seq, ts). None when it cannot be
    /// placed (older than the mapper's start or than the history it keeps).
    /// A late (reordered or retransmitted-upstream) packet gets exactly the output seq it
    /// would have had in order; the same ext_seq mapped twice gives the same output.
    /// A packet skipped earlier cannot be placed either: its number was given away.
    pub fn map(&mut self, ext_seq: u64, ts: u32) -> Option<(u16, u32)> {
        let Some(mut run) = self.run else {
            return Some(self.begin(ext_seq, ts));
        };
        let out = if ext_seq > run.highest {
            let out = self.advance(&mut run, ext_seq);
            self.record(ext_seq, out, Fate::Sent);
            run.next_out = out.saturating_add(1);
            self.run = Some(run);
            out
        } else {
            let slot = self.recent_slot(&run, ext_seq)?;
            let out = match slot.fate() {
                Fate::Missing => {
                    slot.set_fate(Fate::Sent);
                    slot.out
                }
                Fate::Sent => slot.out,
                Fate::Skipped | Fate::Unused => return None,
            };
            // Every held position is below the run's next output.
            widen(out, run.next_out)?
        };
        let out_ts = ts.wrapping_add(run.ts_offset);
        self.sent(out, ext_seq, out_ts);
        Some((out as u16, out_ts))
    }

    /// Asks for the slots mapping the next in-order packet will write (see
    /// `crate::prefetch`).
    pub fn warm(&self) {
        if let Some(run) = self.run {
            crate::prefetch::line(&self.by_source[(run.highest.wrapping_add(1) & MASK) as usize]);
            crate::prefetch::line(&self.by_output[(run.next_out & MASK) as usize]);
        }
    }

    /// A source packet sfud drops on purpose (mute, waiting for a keyframe, a dropped layer):
    /// the subscriber sees no gap for it. Before the source's first mapped packet there is
    /// nothing to hide. A late packet already counted as lost keeps its (visible) number.
    pub fn skip(&mut self, ext_seq: u64) {
        let Some(mut run) = self.run else {
            return;
        };
        if ext_seq > run.highest {
            let out = self.advance(&mut run, ext_seq);
            self.record(ext_seq, out, Fate::Skipped);
            // The skipped packet takes no output position.
            run.next_out = out;
            self.run = Some(run);
        } else if let Some(slot) = self.recent_slot(&run, ext_seq) {
            if slot.fate() == Fate::Missing {
                slot.set_fate(Fate::Skipped);
            }
        }
    }

    /// The source changes (simulcast layer switch, a new publisher): the next mapped packet
    /// continues at last output seq + 1, and its output ts = last output ts + `ts_gap`.
    /// Outputs of the earlier source are no longer answered by `source_of`: their ext seqs
    /// mean nothing in the new source's cache.
    pub fn switch_source(&mut self, ts_gap: u32) {
        self.run = None;
        self.ts_gap = ts_gap;
    }

    /// Output seq -> source ext seq, for recently mapped packets (answers NACKs). None if
    /// unknown or too old.
    pub fn source_of(&self, out_seq: u16) -> Option<u64> {
        let (last, _) = self.last_out?;
        let run = self.run?;
        let back = u64::from((last as u16).wrapping_sub(out_seq));
        if back >= HISTORY as u64 {
            return None;
        }
        let out = last.checked_sub(back)?;
        if out < run.out_start {
            return None;
        }
        let slot = self.by_output[(out & MASK) as usize];
        if slot.tag != (out as u32 & TAG_MASK) | WRITTEN {
            return None;
        }
        // Outputs from `out_start` on were all sent in this run, from source
        // positions at or below its head.
        widen(slot.ext_seq, run.highest)
    }

    /// Last output seq and ts sent (for SR / switching); None before the first packet.
    pub fn last_out(&self) -> Option<(u16, u32)> {
        self.last_out.map(|(out, ts)| (out as u16, ts))
    }

    /// The first mapped packet of a source.
    fn begin(&mut self, ext_seq: u64, ts: u32) -> (u16, u32) {
        let (out, out_ts) = match self.last_out {
            Some((out, out_ts)) => (out.saturating_add(1), out_ts.wrapping_add(self.ts_gap)),
            None => (u64::from(self.first_seq), self.first_ts),
        };
        self.run = Some(Run {
            start: ext_seq,
            highest: ext_seq,
            next_out: out.saturating_add(1),
            out_start: out,
            ts_offset: out_ts.wrapping_sub(ts),
        });
        self.record(ext_seq, out, Fate::Sent);
        self.sent(out, ext_seq, out_ts);
        (out as u16, out_ts)
    }

    /// Moves the run's head to `ext_seq` (> highest): the positions jumped
    /// over are network losses, kept as visible holes. Returns the output
    /// position `ext_seq` gets if sent.
    fn advance(&mut self, run: &mut Run, ext_seq: u64) -> u64 {
        let gap = ext_seq - run.highest - 1;
        let out = run.next_out.saturating_add(gap.min(MAX_SHOWN_GAP));
        // Only the last HISTORY - 1 holes can ever be looked up again.
        let kept = gap.min(MAX_SHOWN_GAP).min(HISTORY as u64 - 1);
        for back in 1..=kept {
            self.record(ext_seq - back, out - back, Fate::Missing);
        }
        run.highest = ext_seq;
        out
    }

    fn record(&mut self, ext_seq: u64, out: u64, fate: Fate) {
        self.by_source[(ext_seq & MASK) as usize] = SourceSlot::new(ext_seq, out, fate);
    }

    /// The slot of a source position at or below the run's head, if still held.
    fn recent_slot(&mut self, run: &Run, ext_seq: u64) -> Option<&mut SourceSlot> {
        if ext_seq < run.start || run.highest - ext_seq >= HISTORY as u64 {
            return None;
        }
        // Every position in the window was written during this run (mapped,
        // skipped or filled as a hole), so the tag tells stale slots apart.
        let slot = &mut self.by_source[(ext_seq & MASK) as usize];
        slot.holds(ext_seq).then_some(slot)
    }

    fn sent(&mut self, out: u64, ext_seq: u64, out_ts: u32) {
        let slot = &mut self.by_output[(out & MASK) as usize];
        let tag = out as u32 & TAG_MASK;
        // A late packet never takes the slot of a newer output (the signed
        // difference of the tags orders them: both are within 2^31).
        if slot.tag & WRITTEN == 0 || (tag.wrapping_sub(slot.tag & TAG_MASK) as i32) >= 0 {
            *slot = OutputSlot {
                tag: tag | WRITTEN,
                ext_seq: ext_seq as u32,
            };
        }
        if self.last_out.is_none_or(|(last, _)| out > last) {
            self.last_out = Some((out, out_ts));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::SeqUnwrapper;
    use proptest::prelude::*;

    #[test]
    fn slots_stay_eight_bytes() {
        // The fan-out cost depends on it: see `SourceSlot`.
        assert_eq!(std::mem::size_of::<SourceSlot>(), 8);
        assert_eq!(std::mem::size_of::<OutputSlot>(), 8);
    }

    #[test]
    fn in_order_from_the_given_start() {
        let mut m = SeqMapper::new(1000, 5000);
        assert_eq!(m.last_out(), None);
        assert_eq!(m.map(10, 90_000), Some((1000, 5000)));
        assert_eq!(m.map(11, 93_000), Some((1001, 8000)));
        assert_eq!(m.last_out(), Some((1001, 8000)));
    }

    #[test]
    fn network_gaps_stay_visible() {
        let mut m = SeqMapper::new(1000, 0);
        m.map(10, 0);
        assert_eq!(m.map(13, 0), Some((1003, 0)));
        // The lost ones, when they come late, fill exactly their holes.
        assert_eq!(m.map(12, 0), Some((1002, 0)));
        assert_eq!(m.map(11, 0), Some((1001, 0)));
        assert_eq!(m.last_out(), Some((1003, 0)));
    }

    #[test]
    fn skips_are_invisible() {
        let mut m = SeqMapper::new(1000, 0);
        m.map(10, 0);
        m.skip(11);
        assert_eq!(m.map(12, 0), Some((1001, 0)));
        // A skipped packet has no number to come back to.
        assert_eq!(m.map(11, 0), None);
    }

    #[test]
    fn a_mute_is_a_run_of_skips() {
        let mut m = SeqMapper::new(1000, 0);
        m.map(10, 100);
        for s in 11..=900 {
            m.skip(s);
        }
        // Timestamps keep the source's clock: the pause is real time.
        assert_eq!(m.map(901, 100 + 891 * 960), Some((1001, 891 * 960)));
        assert_eq!(m.source_of(1001), Some(901));
        assert_eq!(m.source_of(1000), Some(10));
    }

    #[test]
    fn skips_before_the_first_packet_do_nothing() {
        let mut m = SeqMapper::new(7, 70);
        m.skip(1);
        m.skip(2);
        assert_eq!(m.last_out(), None);
        assert_eq!(m.map(3, 1000), Some((7, 70)));
        assert_eq!(m.map(2, 1000), None);
    }

    #[test]
    fn a_skip_after_a_loss_keeps_the_loss() {
        let mut m = SeqMapper::new(1000, 0);
        m.map(10, 0);
        // 11 lost, 12 skipped.
        m.skip(12);
        assert_eq!(m.map(13, 0), Some((1002, 0)));
        assert_eq!(m.map(11, 0), Some((1001, 0)));
        assert_eq!(m.map(12, 0), None);
    }

    #[test]
    fn a_late_packet_past_the_last_sent_moves_last_out() {
        let mut m = SeqMapper::new(1000, 0);
        m.map(10, 0);
        m.skip(12); // 11 is a hole at 1001
        assert_eq!(m.last_out(), Some((1000, 0)));
        assert_eq!(m.map(11, 3000), Some((1001, 3000)));
        assert_eq!(m.last_out(), Some((1001, 3000)));
        assert_eq!(m.map(13, 6000), Some((1002, 6000)));
    }

    #[test]
    fn a_late_skip_of_a_hole_leaves_it_visible() {
        let mut m = SeqMapper::new(1000, 0);
        m.map(10, 0);
        m.map(12, 0);
        m.skip(11);
        assert_eq!(m.map(11, 0), None);
        assert_eq!(m.map(13, 0), Some((1003, 0)));
        assert_eq!(m.source_of(1001), None);
    }

    #[test]
    fn reordering_and_duplicates() {
        let mut m = SeqMapper::new(1000, 10);
        m.map(10, 10);
        assert_eq!(m.map(12, 12), Some((1002, 12)));
        m.skip(13);
        assert_eq!(m.map(14, 14), Some((1003, 14)));
        // 11 comes after a skip that shifted everything behind it: it still
        // gets its in-order number.
        assert_eq!(m.map(11, 11), Some((1001, 11)));
        assert_eq!(m.map(11, 11), Some((1001, 11)));
        assert_eq!(m.map(14, 14), Some((1003, 14)));
        assert_eq!(m.map(10, 10), Some((1000, 10)));
        assert_eq!(m.last_out(), Some((1003, 14)));
    }

    #[test]
    fn too_old_or_before_the_start() {
        let mut m = SeqMapper::new(0, 0);
        m.map(5000, 0);
        assert_eq!(m.map(4999, 0), None);
        for s in 5001..5001 + HISTORY as u64 {
            m.map(s, 0);
        }
        let highest = 5000 + HISTORY as u64;
        assert_eq!(m.map(highest - HISTORY as u64, 0), None);
        assert_eq!(m.map(highest - HISTORY as u64 + 1, 0), Some((1, 0)));
    }

    #[test]
    fn a_lost_packet_late_beyond_the_history_is_refused() {
        let mut m = SeqMapper::new(0, 0);
        m.map(1, 0);
        assert_eq!(m.map(5000, 0), Some((4999, 0)));
        assert_eq!(m.map(2, 0), None);
        assert_eq!(m.map(5000 - HISTORY as u64, 0), None);
        assert_eq!(m.map(5000 - 1023, 0), Some((4999 - 1023, 0)));
    }

    #[test]
    fn source_and_output_both_wrap() {
        let mut m = SeqMapper::new(65534, u32::MAX - 1000);
        let mut u = SeqUnwrapper::new();
        let raw = [65533u16, 65534, 65535, 0, 1];
        let got: Vec<(u16, u32)> = raw
            .iter()
            .enumerate()
            .map(|(i, &s)| m.map(u.unwrap(s), 3000 * i as u32).unwrap())
            .collect();
        assert_eq!(
            got,
            vec![
                (65534, u32::MAX - 1000),
                (65535, 1999),
                (0, 4999),
                (1, 7999),
                (2, 10999)
            ]
        );
        assert_eq!(m.source_of(65535), Some(u.peek(65534)));
        assert_eq!(m.source_of(1), Some(u.peek(0)));
        // A wrapped skip and a late packet across the wrap.
        m.skip(u.unwrap(2));
        m.map(u.unwrap(4), 0);
        assert_eq!(m.map(u.unwrap(3), 0).map(|o| o.0), Some(3));
    }

    #[test]
    fn switching_sources_keeps_seq_and_jumps_ts() {
        let mut m = SeqMapper::new(1000, 5000);
        m.map(10, 90_000);
        m.map(11, 93_000);
        m.switch_source(3000);
        // The new source has its own numbers and clock.
        assert_eq!(m.map(500, 777), Some((1002, 11_000)));
        assert_eq!(m.map(501, 777 + 3000), Some((1003, 14_000)));
        // Late packets of the new source from before its first one: no place.
        assert_eq!(m.map(499, 0), None);
        // Old outputs are not answered with the new source's numbers.
        assert_eq!(m.source_of(1001), None);
        assert_eq!(m.source_of(1002), Some(500));
    }

    #[test]
    fn a_switch_hides_holes_past_the_last_sent() {
        let mut m = SeqMapper::new(1000, 0);
        m.map(10, 0);
        m.skip(12); // 11 lost: a hole at 1001, not yet shown to anyone
        m.switch_source(90);
        m.skip(40); // before the new source's first mapped packet
        assert_eq!(m.map(41, 7), Some((1001, 90)));
    }

    #[test]
    fn switch_before_anything_was_sent() {
        let mut m = SeqMapper::new(7, 70);
        m.switch_source(5);
        assert_eq!(m.map(3, 1), Some((7, 70)));
    }

    #[test]
    fn reverse_lookup() {
        let mut m = SeqMapper::new(1000, 0);
        m.map(10, 0);
        m.skip(11);
        m.map(12, 0);
        assert_eq!(m.source_of(1000), Some(10));
        assert_eq!(m.source_of(1001), Some(12));
        assert_eq!(m.source_of(1002), None); // not sent yet
        m.map(20, 0); // 13..=19 lost: holes at 1002..=1008
        assert_eq!(m.source_of(1009), Some(20));
        assert_eq!(m.source_of(1004), None);
        m.map(15, 0);
        assert_eq!(m.source_of(1004), Some(15));
        for s in 21..21 + HISTORY as u64 {
            m.map(s, 0);
        }
        assert_eq!(m.source_of(1009), None); // too old
        assert_eq!(m.source_of(1010), Some(21));
    }

    #[test]
    fn huge_jumps_show_a_bounded_hole() {
        let mut m = SeqMapper::new(0, 0);
        m.map(1, 0);
        assert_eq!(m.map(1 << 40, 0), Some(((MAX_SHOWN_GAP + 1) as u16, 0)));
        assert_eq!(m.map((1 << 40) - 1, 0), Some((MAX_SHOWN_GAP as u16, 0)));
        assert_eq!(
            m.map(u64::MAX, 0).map(|o| o.0),
            Some((2 * MAX_SHOWN_GAP + 2) as u16)
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Map(u64, u32),
        Skip(u64),
        Switch(u32),
        Lookup(u16),
    }

    fn any_op() -> impl Strategy<Value = Op> {
        // Mostly near one another, sometimes anywhere in u64.
        let seq = prop_oneof![4 => 0u64..3000, 1 => any::<u64>()];
        prop_oneof![
            5 => (seq.clone(), any::<u32>()).prop_map(|(s, t)| Op::Map(s, t)),
            3 => seq.prop_map(Op::Skip),
            1 => any::<u32>().prop_map(Op::Switch),
            1 => any::<u16>().prop_map(Op::Lookup),
        ]
    }

    #[derive(Debug, Clone, Copy)]
    enum InOrder {
        Send,
        Drop,
        Switch(u64, u32),
    }

    fn in_order_op() -> impl Strategy<Value = InOrder> {
        prop_oneof![
            6 => Just(InOrder::Send),
            3 => Just(InOrder::Drop),
            1 => (any::<u64>(), any::<u32>()).prop_map(|(b, g)| InOrder::Switch(b >> 1, g)),
        ]
    }

    proptest! {
        #[test]
        fn random_operations_never_panic(
            first_seq: u16,
            first_ts: u32,
            ops in prop::collection::vec(any_op(), 0..400),
        ) {
            let mut m = SeqMapper::new(first_seq, first_ts);
            for op in ops {
                match op {
                    Op::Map(s, t) => {
                        if let Some((out, _)) = m.map(s, t) {
                            // Whatever got a number can be looked up while recent.
                            let back = m.last_out().unwrap().0.wrapping_sub(out);
                            if usize::from(back) < HISTORY {
                                prop_assert_eq!(m.source_of(out), Some(s));
                            }
                        }
                    }
                    Op::Skip(s) => m.skip(s),
                    Op::Switch(g) => m.switch_source(g),
                    Op::Lookup(o) => {
                        m.source_of(o);
                    }
                }
                m.last_out();
            }
        }

        #[test]
        fn in_order_sends_are_contiguous(
            first_seq: u16,
            first_ts: u32,
            start: u64,
            ops in prop::collection::vec(in_order_op(), 1..3000),
        ) {
            let mut m = SeqMapper::new(first_seq, first_ts);
            let mut next_src = start >> 1;
            let mut want_gap: Option<u32> = None;
            let mut prev: Option<(u16, u32, u32)> = None; // out seq, out ts, source ts
            for op in ops {
                match op {
                    InOrder::Send => {
                        let src_ts = (next_src as u32).wrapping_mul(3000);
                        let (seq, ts) = m.map(next_src, src_ts).unwrap();
                        match prev {
                            None => prop_assert_eq!((seq, ts), (first_seq, first_ts)),
                            Some((pseq, pts, psrc)) => {
                                prop_assert_eq!(seq, pseq.wrapping_add(1));
                                let want_ts = match want_gap {
                                    Some(g) => pts.wrapping_add(g),
                                    None => pts.wrapping_add(src_ts.wrapping_sub(psrc)),
                                };
                                prop_assert_eq!(ts, want_ts);
                            }
                        }
                        prop_assert_eq!(m.last_out(), Some((seq, ts)));
                        prop_assert_eq!(m.source_of(seq), Some(next_src));
                        prev = Some((seq, ts, src_ts));
                        want_gap = None;
                        next_src += 1;
                    }
                    InOrder::Drop => {
                        m.skip(next_src);
                        next_src += 1;
                    }
                    InOrder::Switch(base, gap) => {
                        m.switch_source(gap);
                        if prev.is_some() {
                            want_gap = Some(gap);
                        }
                        next_src = base;
                    }
                }
            }
        }
    }
}
