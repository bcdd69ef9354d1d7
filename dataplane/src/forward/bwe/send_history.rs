//! What sfud sent to one subscriber, by transport-wide sequence number: a
//! fixed ring, so recording a packet never allocates and old ones age out.

use crate::rtp::SeqUnwrapper;

/// Packets remembered: at 50 Mbit/s of 1200-byte packets about 0.8 s, far
/// more than the feedback delay.
pub(super) const HISTORY: usize = 4096;

/// What the subscriber has said about a packet so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    Unreported,
    Lost,
    Received,
}

/// Which media packet a transport-wide seq carried, so a loss the
/// subscriber reports can be repaired (`forward::downtrack::ResendAsk::Repair`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentMedia {
    /// The downtrack's primary SSRC, as the subscriber's NACKs name it.
    pub ssrc: u32,
    /// Output sequence number of the packet (the OSN for a resend).
    pub seq: u16,
    /// 0 for the original; the n-th resend of `seq` otherwise.
    pub attempt: u8,
}

/// 32 bytes, aligned so that one never straddles two cache lines: the
/// fan-out prefetches one line per send (`SendHistory::warm`).
#[derive(Debug, Clone, Copy)]
#[repr(align(32))]
pub(super) struct Sent {
    /// Extended sequence number held; `u64::MAX` for an empty slot.
    ext: u64,
    pub(super) sent_us: i64,
    pub(super) size: u32,
    pub(super) fate: Fate,
    /// Whether `media` means anything: not for what no one would repair
    /// (probes, media of subscribers that take no resends). Kept apart
    /// from `media` because `Option` of it would cost the slot 8 bytes.
    repairable: bool,
    media: SentMedia,
}

impl Sent {
    pub(super) fn media(&self) -> Option<SentMedia> {
        self.repairable.then_some(self.media)
    }
}

const EMPTY: Sent = Sent {
    ext: u64::MAX,
    sent_us: 0,
    size: 0,
    fate: Fate::Unreported,
    repairable: false,
    media: SentMedia { ssrc: 0, seq: 0, attempt: 0 },
};

pub(super) struct SendHistory {
    seqs: SeqUnwrapper,
    slots: Box<[Sent]>,
}

impl SendHistory {
    pub(super) fn new() -> Self {
        SendHistory {
            seqs: SeqUnwrapper::new(),
            slots: vec![EMPTY; HISTORY].into_boxed_slice(),
        }
    }

    pub(super) fn on_sent(&mut self, tw_seq: u16, size: usize, media: Option<SentMedia>, sent_us: i64) {
        let ext = self.seqs.unwrap(tw_seq);
        self.slots[index(ext)] = Sent {
            ext,
            sent_us,
            size: u32::try_from(size).unwrap_or(u32::MAX),
            fate: Fate::Unreported,
            repairable: media.is_some(),
            media: media.unwrap_or(EMPTY.media),
        };
    }

    /// Asks for the slot `on_sent(tw_seq, ..)` will write (see `crate::prefetch`).
    /// The extended number is congruent to `tw_seq` mod 2^16 and [`HISTORY`]
    /// divides 2^16, so the slot follows from `tw_seq` alone: no read of
    /// the unwrapper's state, which would stall on a line just asked for.
    pub(super) fn warm(&self, tw_seq: u16) {
        crate::prefetch::line(self.slots.as_ptr().wrapping_add(usize::from(tw_seq) % HISTORY));
    }

    /// The record of `tw_seq`, if it is one of the last [`HISTORY`] sent.
    pub(super) fn get_mut(&mut self, tw_seq: u16) -> Option<&mut Sent> {
        self.seqs.highest()?;
        // Feedback is about the recent past: place it relative to the newest.
        let ext = self.seqs.peek(tw_seq);
        let slot = &mut self.slots[index(ext)];
        (slot.ext == ext).then_some(slot)
    }
}

const _: () = assert!(std::mem::size_of::<Sent>() == 32);
const _: () = assert!((1 << 16) % HISTORY == 0);

fn index(ext: u64) -> usize {
    (ext % HISTORY as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_across_wrap_and_eviction() {
        let mut h = SendHistory::new();
        assert!(h.get_mut(0).is_none());
        for i in 0..(HISTORY as u32 + 100) {
            h.on_sent((65000 + i) as u16, 1200, None, i64::from(i));
        }
        // the first 100 were overwritten
        assert!(h.get_mut(65000).is_none());
        assert!(h.get_mut(65099).is_none());
        let s = h.get_mut(65100).unwrap();
        assert_eq!((s.sent_us, s.size, s.fate), (100, 1200, Fate::Unreported));
        s.fate = Fate::Received;
        assert_eq!(h.get_mut(65100).unwrap().fate, Fate::Received);
        // newest, past the 16-bit wrap
        let last = (65000 + HISTORY as u32 + 99) as u16;
        assert_eq!(h.get_mut(last).unwrap().sent_us, HISTORY as i64 + 99);
        // never sent
        assert!(h.get_mut(last.wrapping_add(1)).is_none());
    }

    #[test]
    fn the_slot_warmed_is_the_slot_written() {
        let mut h = SendHistory::new();
        for tw in [0u16, 1, 4095, 4096, 40000, 65535, 0, 7] {
            let ext = h.seqs.peek(tw);
            assert_eq!(index(ext), usize::from(tw) % HISTORY);
            h.on_sent(tw, 100, None, 0);
        }
    }
}
