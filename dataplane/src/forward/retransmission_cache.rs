//! Recent packets of one source track, kept on each shard that has its
//! subscribers so a NACK is answered where it lands, never across shards.
//!
//! Sized by time, not by count: the ring starts small and doubles (up to a
//! hard cap) only when packets younger than `max_age` would overwrite each
//! other, so an audio track holds a few dozen slots where video holds a
//! thousand. Slot buffers are allocated on first use and then reused
//! forever: no allocation per packet once a track's rate is reached.

use std::time::{Duration, Instant};

/// Room for the header extensions and payload of one packet: a full MTU,
/// more than any packet that fits a datagram once its RTP header is off.
pub const SLOT_BYTES: usize = 1500;

/// Slots a new cache starts with (a power of two).
const MIN_SLOTS: usize = 16;

/// Ceiling on `max_slots`, whatever the caller asks (a power of two): 48 MB
/// of buffers, already far more than a second of any real track.
const SLOTS_CEILING: usize = 1 << 15;

/// A packet as the cache holds it: the RTP header is rewritten per
/// subscriber anyway, so only what a downtrack needs to rebuild it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedPacket<'a> {
    pub ext_seq: u64,
    pub timestamp: u32,
    pub marker: bool,
    /// The header extension block's contents, as received.
    pub ext: &'a [u8],
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    ext_seq: u64,
    timestamp: u32,
    marker: bool,
    stored_at: Instant,
    ext_len: usize,
    len: usize,
}

#[derive(Default)]
struct Slot {
    buf: Option<Box<[u8]>>,
    entry: Option<Entry>,
}

pub struct RetransmissionCache {
    /// Length is a power of two; a packet's slot is its ext seq masked.
    slots: Vec<Slot>,
    max_slots: usize,
    max_age: Duration,
    allocated_bytes: usize,
}

impl RetransmissionCache {
    /// `max_slots`: hard cap on slots (rounded up to a power of two); `max_age`: entries older
    /// than this are not returned (size by time, ~1 s of media).
    pub fn new(max_slots: usize, max_age: Duration) -> Self {
        let max_slots = max_slots.clamp(1, SLOTS_CEILING).next_power_of_two();
        let mut slots = Vec::new();
        slots.resize_with(MIN_SLOTS.min(max_slots), Slot::default);
        RetransmissionCache {
            slots,
            max_slots,
            max_age,
            allocated_bytes: 0,
        }
    }

    /// Stores a copy. Slots are fixed-size buffers (`SLOT_BYTES` for ext+payload),
    /// allocated lazily up to max_slots and then reused forever: no allocation per packet
    /// in steady state. Returns false when the packet is not stored: too large, or older
    /// than the live packet holding its slot in a ring already at its cap. A duplicate
    /// ext_seq is ignored (true: it is held).
    pub fn insert(
        &mut self,
        ext_seq: u64,
        timestamp: u32,
        marker: bool,
        ext: &[u8],
        payload: &[u8],
        now: Instant,
    ) -> bool {
        let len = ext.len() + payload.len();
        if len > SLOT_BYTES {
            return false;
        }
        while let Some(held) = self.slot(ext_seq).and_then(|s| s.entry) {
            if held.ext_seq == ext_seq {
                return true;
            }
            if !self.is_live(&held, now) {
                break;
            }
            if self.slots.len() < self.max_slots {
                self.grow();
                continue;
            }
            // At the cap, the newer of two live packets wins the slot: NACKs
            // are for recent losses.
            if held.ext_seq > ext_seq {
                return false;
            }
            break;
        }
        let mask = self.slots.len() - 1;
        let Some(slot) = self.slots.get_mut(ext_seq as usize & mask) else {
            return false;
        };
        let buf = slot.buf.get_or_insert_with(|| {
            self.allocated_bytes += SLOT_BYTES;
            vec![0u8; SLOT_BYTES].into_boxed_slice()
        });
        let Some(dst) = buf.get_mut(..len) else {
            return false;
        };
        let (dst_ext, dst_payload) = dst.split_at_mut(ext.len());
        dst_ext.copy_from_slice(ext);
        dst_payload.copy_from_slice(payload);
        slot.entry = Some(Entry {
            ext_seq,
            timestamp,
            marker,
            stored_at: now,
            ext_len: ext.len(),
            len,
        });
        true
    }

    pub fn get(&self, ext_seq: u64, now: Instant) -> Option<CachedPacket<'_>> {
        let slot = self.slot(ext_seq)?;
        let entry = slot
            .entry
            .filter(|e| e.ext_seq == ext_seq && self.is_live(e, now))?;
        let buf = slot.buf.as_deref()?;
        Some(CachedPacket {
            ext_seq,
            timestamp: entry.timestamp,
            marker: entry.marker,
            ext: buf.get(..entry.ext_len)?,
            payload: buf.get(entry.ext_len..entry.len)?,
        })
    }

    /// Bytes held by allocated slots (for the per-shard bound and metrics).
    pub fn allocated_bytes(&self) -> usize {
        self.allocated_bytes
    }

    fn slot(&self, ext_seq: u64) -> Option<&Slot> {
        self.slots.get(ext_seq as usize & (self.slots.len() - 1))
    }

    fn is_live(&self, entry: &Entry, now: Instant) -> bool {
        now.saturating_duration_since(entry.stored_at) <= self.max_age
    }

    /// Doubles the ring. Slot `i` of the old ring moves to `i` or `i + old`
    /// of the new one (by its ext seq's next bit), so nothing collides and
    /// every buffer, live or not, is kept.
    fn grow(&mut self) {
        let old = self.slots.len();
        let mut grown = Vec::with_capacity(old * 2);
        grown.resize_with(old * 2, Slot::default);
        let new_mask = old * 2 - 1;
        for (i, slot) in self.slots.drain(..).enumerate() {
            let to = slot.entry.map_or(i, |e| e.ext_seq as usize & new_mask);
            if let Some(dst) = grown.get_mut(to) {
                *dst = slot;
            }
        }
        self.slots = grown;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECOND: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    fn put(c: &mut RetransmissionCache, ext_seq: u64, now: Instant) -> bool {
        c.insert(
            ext_seq,
            ext_seq as u32 * 10,
            ext_seq & 1 == 0,
            &[0xbe, 0xde],
            &ext_seq.to_be_bytes(),
            now,
        )
    }

    fn has(c: &RetransmissionCache, ext_seq: u64, now: Instant) -> bool {
        c.get(ext_seq, now)
            .is_some_and(|p| p.payload == ext_seq.to_be_bytes() && p.ext_seq == ext_seq)
    }

    #[test]
    fn returns_what_was_stored() {
        let mut c = RetransmissionCache::new(1024, SECOND);
        let t = Instant::now();
        assert!(c.insert(70_000, 1234, true, b"ext", b"payload", t));
        assert_eq!(
            c.get(70_000, t + 10 * MS),
            Some(CachedPacket {
                ext_seq: 70_000,
                timestamp: 1234,
                marker: true,
                ext: b"ext",
                payload: b"payload",
            })
        );
        assert_eq!(c.get(70_001, t), None);
    }

    #[test]
    fn ext_seq_keeps_wrapped_numbers_apart() {
        // 5 and 65536 + 5 share their low 16 bits and their slot.
        let mut c = RetransmissionCache::new(16, SECOND);
        let t = Instant::now();
        assert!(put(&mut c, 5, t));
        assert!(put(&mut c, 65_541, t));
        assert!(!has(&c, 5, t));
        assert!(has(&c, 65_541, t));
        // Across the wrap, neighbours stay neighbours.
        assert!(put(&mut c, 65_535, t));
        assert!(put(&mut c, 65_536, t));
        assert!(has(&c, 65_535, t) && has(&c, 65_536, t));
    }

    #[test]
    fn entries_expire_by_age() {
        let mut c = RetransmissionCache::new(1024, SECOND);
        let t = Instant::now();
        put(&mut c, 1, t);
        assert!(has(&c, 1, t + SECOND));
        assert!(!has(&c, 1, t + SECOND + MS));
    }

    #[test]
    fn a_reused_slot_does_not_answer_for_its_old_packet() {
        let mut c = RetransmissionCache::new(16, SECOND);
        let t = Instant::now();
        for s in 0..16 {
            put(&mut c, s, t);
        }
        // 0 is stale by now, so 16 takes its slot without growing the ring.
        let later = t + 2 * SECOND;
        assert!(put(&mut c, 16, later));
        assert_eq!(c.slots.len(), 16);
        assert!(has(&c, 16, later));
        assert!(!has(&c, 0, later));
        assert!(!has(&c, 0, t));
    }

    #[test]
    fn at_the_cap_the_newest_live_packets_win() {
        let mut c = RetransmissionCache::new(16, SECOND);
        let t = Instant::now();
        for s in 100..132 {
            assert!(put(&mut c, s, t));
        }
        assert!((100..116).all(|s| !has(&c, s, t)));
        assert!((116..132).all(|s| has(&c, s, t)));
        // A late packet older than the one holding its slot is refused.
        assert!(!put(&mut c, 110, t));
        assert!(has(&c, 126, t));
    }

    #[test]
    fn duplicates_are_ignored() {
        let mut c = RetransmissionCache::new(64, SECOND);
        let t = Instant::now();
        assert!(c.insert(9, 1, false, b"", b"first", t));
        assert!(c.insert(9, 2, true, b"", b"second", t + MS));
        let p = c.get(9, t + MS).unwrap();
        assert_eq!(
            (p.timestamp, p.marker, p.payload),
            (1, false, &b"first"[..])
        );
    }

    #[test]
    fn too_large_packets_are_refused() {
        let mut c = RetransmissionCache::new(64, SECOND);
        let t = Instant::now();
        let big = [7u8; SLOT_BYTES];
        assert!(!c.insert(1, 0, false, b"x", &big, t));
        assert_eq!(c.get(1, t), None);
        assert!(c.insert(2, 0, false, &big[..100], &big[100..], t));
        assert_eq!(
            c.get(2, t).map(|p| p.ext.len() + p.payload.len()),
            Some(SLOT_BYTES)
        );
    }

    #[test]
    fn audio_stays_small() {
        // 50 packets a second, a second kept: 64 slots, not the 1024 allowed.
        let mut c = RetransmissionCache::new(1024, SECOND);
        let t = Instant::now();
        for s in 0..500u32 {
            assert!(put(&mut c, u64::from(s), t + s * 20 * MS));
        }
        assert_eq!(c.slots.len(), 64);
        assert_eq!(c.allocated_bytes(), 64 * SLOT_BYTES);
        let now = t + 499 * 20 * MS;
        assert!((450..500).all(|s| has(&c, s, now)));
    }

    #[test]
    fn growth_is_bounded() {
        let mut c = RetransmissionCache::new(100, SECOND);
        let t = Instant::now();
        for s in 0..1000 {
            put(&mut c, s, t);
        }
        assert_eq!(c.slots.len(), 128);
        assert_eq!(c.allocated_bytes(), 128 * SLOT_BYTES);
        assert!((872..1000).all(|s| has(&c, s, t)));
        assert!(!has(&c, 871, t));
        // Growth moved live packets to their new slots intact.
        let mut d = RetransmissionCache::new(1024, SECOND);
        for s in 0..300 {
            put(&mut d, s, t);
        }
        assert_eq!(d.slots.len(), 512);
        assert!((0..300).all(|s| has(&d, s, t)));
    }

    #[test]
    fn tiny_and_huge_caps() {
        let t = Instant::now();
        let mut c = RetransmissionCache::new(0, SECOND);
        assert!(put(&mut c, 1, t) && put(&mut c, 2, t));
        assert!(has(&c, 2, t) && !has(&c, 1, t));
        let c = RetransmissionCache::new(usize::MAX, SECOND);
        assert_eq!(c.max_slots, SLOTS_CEILING);
    }

    proptest! {
        #[test]
        fn random_traffic_answers_only_with_what_was_stored(
            max_slots in 0usize..300,
            ops in prop::collection::vec((0u64..2000, 0u64..3000, any::<bool>()), 0..500),
        ) {
            let mut c = RetransmissionCache::new(max_slots, SECOND);
            let t = Instant::now();
            let cap = max_slots.clamp(1, SLOTS_CEILING).next_power_of_two();
            for (s, ms, is_get) in ops {
                let now = t + Duration::from_millis(ms);
                if is_get {
                    if let Some(p) = c.get(s, now) {
                        prop_assert_eq!(p.payload, s.to_be_bytes());
                        prop_assert_eq!(p.ext_seq, s);
                    }
                } else {
                    put(&mut c, s, now);
                    if let Some(p) = c.get(s, now) {
                        prop_assert_eq!(p.payload, s.to_be_bytes());
                    }
                }
                prop_assert!(c.slots.len() <= cap);
                prop_assert!(c.allocated_bytes() <= cap * SLOT_BYTES);
            }
        }
    }
}
