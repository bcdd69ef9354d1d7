//! Packet status chunks (draft-holmer-rmcat-transport-wide-cc-extensions-01
//! §3.1.2-3.1.4): decoding one 16-bit chunk, and choosing chunks for a
//! sequence of status symbols.

/// Status symbols (§3.1.1). 3 is reserved.
pub(super) const NOT_RECEIVED: u8 = 0;
pub(super) const SMALL_DELTA: u8 = 1;
pub(super) const LARGE_DELTA: u8 = 2;

/// Longest run a run-length chunk can carry (13 bits).
const MAX_RUN: u16 = 0x1fff;
/// Symbols in a status vector chunk of 1-bit and of 2-bit symbols.
const ONE_BIT_CAP: usize = 14;
const TWO_BIT_CAP: usize = 7;

/// Bytes of receive delta a symbol calls for; `None` for the reserved symbol.
pub(super) fn delta_size(symbol: u8) -> Option<usize> {
    match symbol {
        NOT_RECEIVED => Some(0),
        SMALL_DELTA => Some(1),
        LARGE_DELTA => Some(2),
        _ => None,
    }
}

/// One chunk as read from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Chunk(u16);

impl Chunk {
    /// A run of nothing: the state before the first chunk is read.
    pub(super) const EMPTY: Chunk = Chunk(0);

    pub(super) fn from_word(word: u16) -> Self {
        Chunk(word)
    }

    fn is_vector(self) -> bool {
        self.0 & 0x8000 != 0
    }

    fn two_bit(self) -> bool {
        self.0 & 0x4000 != 0
    }

    /// Statuses this chunk describes (a vector's unused tail included).
    pub(super) fn len(self) -> u16 {
        match (self.is_vector(), self.two_bit()) {
            (false, _) => self.0 & MAX_RUN,
            (true, false) => ONE_BIT_CAP as u16,
            (true, true) => TWO_BIT_CAP as u16,
        }
    }

    /// The symbol of a run-length chunk; `None` for a vector.
    pub(super) fn run_symbol(self) -> Option<u8> {
        (!self.is_vector()).then_some(((self.0 >> 13) & 3) as u8)
    }

    /// Symbol `i` (< `len()`), first symbol in the most significant bits.
    pub(super) fn symbol(self, i: u16) -> u8 {
        match (self.is_vector(), self.two_bit()) {
            (false, _) => ((self.0 >> 13) & 3) as u8,
            (true, false) => ((self.0 >> (13 - i)) & 1) as u8,
            (true, true) => ((self.0 >> (12 - 2 * i)) & 3) as u8,
        }
    }
}

fn run_word(symbol: u8, len: u16) -> u16 {
    (u16::from(symbol) << 13) | len
}

/// A status vector of `symbols`; 2-bit symbols when `two_bit`, else each
/// symbol must be 0 or 1. Slots past `symbols` read as not received.
fn vector_word(symbols: &[u8], two_bit: bool) -> u16 {
    if two_bit {
        debug_assert!(symbols.len() <= TWO_BIT_CAP);
        symbols
            .iter()
            .enumerate()
            .fold(0xc000, |w, (i, &s)| w | (u16::from(s) << (12 - 2 * i)))
    } else {
        debug_assert!(symbols.len() <= ONE_BIT_CAP && !symbols.contains(&LARGE_DELTA));
        symbols
            .iter()
            .enumerate()
            .fold(0x8000, |w, (i, &s)| w | (u16::from(s & 1) << (13 - i)))
    }
}

/// Turns a stream of symbols into chunks, greedily: a symbol repeated for at
/// least a full vector's worth becomes a run (which then extends for free),
/// anything else fills 1-bit vectors, or 2-bit ones when a large delta is
/// among them.
///
/// Every chunk but the last covers exactly the statuses it encodes; only the
/// last may be a partly used vector, whose tail the reader ignores because of
/// the status count. So after any prefix, the chunks needed are `emitted`
/// plus one if anything is pending, which lets the writer size a message
/// before writing it. Plain `Copy` data so the writer can try a step and
/// throw it away.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChunkEncoder {
    pending: [u8; ONE_BIT_CAP],
    len: usize,
    /// A run being extended: (symbol, length).
    run: Option<(u8, u16)>,
    /// Chunks handed to `emit` so far.
    pub(super) emitted: usize,
}

impl ChunkEncoder {
    pub(super) fn new() -> Self {
        ChunkEncoder {
            pending: [NOT_RECEIVED; ONE_BIT_CAP],
            len: 0,
            run: None,
            emitted: 0,
        }
    }

    /// Chunks the stream would take if it ended now.
    pub(super) fn chunks_if_finished(&self) -> usize {
        self.emitted + usize::from(self.run.is_some() || self.len > 0)
    }

    pub(super) fn push(&mut self, symbol: u8, emit: &mut impl FnMut(u16)) {
        if let Some((s, n)) = self.run {
            if s == symbol && n < MAX_RUN {
                self.run = Some((s, n + 1));
                return;
            }
            self.put(run_word(s, n), emit);
            self.run = None;
        }
        while self.len >= self.capacity_with(symbol) {
            self.emit_front(emit);
        }
        self.pending[self.len] = symbol;
        self.len += 1;
        if self.len == self.capacity_with(symbol) && self.all_same() {
            self.run = Some((symbol, self.len as u16));
            self.len = 0;
        }
    }

    /// Emits whatever is pending as the final chunk.
    pub(super) fn finish(&mut self, emit: &mut impl FnMut(u16)) {
        if let Some((s, n)) = self.run.take() {
            self.put(run_word(s, n), emit);
        } else if self.len > 0 {
            let word = if self.all_same() {
                run_word(self.pending[0], self.len as u16)
            } else {
                vector_word(&self.pending[..self.len], self.has_large())
            };
            self.len = 0;
            self.put(word, emit);
        }
    }

    fn put(&mut self, word: u16, emit: &mut impl FnMut(u16)) {
        self.emitted += 1;
        emit(word);
    }

    fn all_same(&self) -> bool {
        self.pending[..self.len].windows(2).all(|w| w[0] == w[1])
    }

    fn has_large(&self) -> bool {
        self.pending[..self.len].contains(&LARGE_DELTA)
    }

    fn capacity_with(&self, symbol: u8) -> usize {
        if symbol == LARGE_DELTA || self.has_large() {
            TWO_BIT_CAP
        } else {
            ONE_BIT_CAP
        }
    }

    /// Makes room: emits one full chunk from the front of `pending`.
    /// Called only when `pending` holds at least a 2-bit vector's worth.
    fn emit_front(&mut self, emit: &mut impl FnMut(u16)) {
        debug_assert!(self.len >= TWO_BIT_CAP);
        let (take, word) = if self.all_same() {
            (self.len, run_word(self.pending[0], self.len as u16))
        } else if self.len >= ONE_BIT_CAP && !self.has_large() {
            (
                ONE_BIT_CAP,
                vector_word(&self.pending[..ONE_BIT_CAP], false),
            )
        } else {
            let take = TWO_BIT_CAP.min(self.len);
            (take, vector_word(&self.pending[..take], true))
        };
        self.pending.copy_within(take..self.len, 0);
        self.len -= take;
        self.put(word, emit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(symbols: &[u8]) -> Vec<u16> {
        let mut out = Vec::new();
        let mut enc = ChunkEncoder::new();
        for &s in symbols {
            enc.push(s, &mut |w| out.push(w));
            assert_eq!(enc.emitted, out.len());
        }
        let expect = enc.chunks_if_finished();
        enc.finish(&mut |w| out.push(w));
        assert_eq!(out.len(), expect);
        out
    }

    fn decode(words: &[u16], count: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for &w in words {
            let c = Chunk::from_word(w);
            for i in 0..c.len() {
                v.push(c.symbol(i));
            }
        }
        assert!(v.len() >= count);
        v.truncate(count);
        v
    }

    #[test]
    fn draft_examples_decode() {
        // §3.1.3: run of 221 not received; run of 24 "received w/o timestamp" (reserved 3).
        let c = Chunk::from_word(0x00dd);
        assert_eq!((c.run_symbol(), c.len()), (Some(NOT_RECEIVED), 221));
        assert_eq!(Chunk::from_word(0x6018).run_symbol(), Some(3));
        // §3.1.4: 1-bit vector 0b1001_1111_0001_1100.
        let c = Chunk::from_word(0x9f1c);
        let v: Vec<u8> = (0..c.len()).map(|i| c.symbol(i)).collect();
        assert_eq!(v, [0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0]);
        // §3.1.4: 2-bit vector 0b1100_1101_0101_0000.
        let c = Chunk::from_word(0xcd50);
        let v: Vec<u8> = (0..c.len()).map(|i| c.symbol(i)).collect();
        assert_eq!(v, [0, 3, 1, 1, 1, 0, 0]);
    }

    #[test]
    fn long_runs_become_run_chunks() {
        let mut s = vec![SMALL_DELTA; 100];
        s.extend([NOT_RECEIVED; 9000]);
        let words = encode(&s);
        assert_eq!(
            words,
            vec![
                run_word(1, 100),
                run_word(0, MAX_RUN),
                run_word(0, 9000 - 8191)
            ]
        );
        assert_eq!(decode(&words, s.len()), s);
    }

    #[test]
    fn mixed_symbols_fill_vectors() {
        let s = [1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1];
        let words = encode(&s);
        assert_eq!(words.len(), 2);
        assert_eq!(words[0] & 0xc000, 0x8000, "1-bit vector");
        assert_eq!(decode(&words, s.len()), s);
    }

    #[test]
    fn large_delta_forces_two_bit_vectors() {
        let s = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 2, 1, 0, 1, 1];
        let words = encode(&s);
        assert!(words.iter().any(|w| w & 0xc000 == 0xc000));
        assert_eq!(decode(&words, s.len()), s);
        // a run followed by a large delta keeps the run
        let mut s = vec![1u8; 10];
        s.push(2);
        let words = encode(&s);
        assert_eq!(words[0], run_word(1, 10));
        assert_eq!(decode(&words, s.len()), s);
    }

    #[test]
    fn pseudo_random_streams_round_trip() {
        let mut x = 0x1234_5678u32;
        for len in 1..300 {
            let s: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    // bias towards runs
                    match x % 10 {
                        0..=5 => 1,
                        6..=8 => 0,
                        _ => 2,
                    }
                })
                .collect();
            assert_eq!(decode(&encode(&s), s.len()), s, "len {len}");
        }
    }
}
