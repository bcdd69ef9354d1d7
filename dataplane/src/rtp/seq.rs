//! Extending 16-bit sequence numbers to 64 bits across wraps.

/// Cycle the first packet is placed in, so that packets reordered from
/// before it (even across a wrap) still get smaller, non-negative values.
const FIRST_CYCLE: u64 = 1 << 16;

/// Maps 16-bit RTP sequence numbers onto a monotone 64-bit space.
///
/// Each number is placed at the signed 16-bit distance from the highest value
/// seen so far, so reordered packets (even across a wrap) land before it and
/// fresh ones after it. Values are relative: the first packet maps to
/// `65536 + seq`, and the low 16 bits of every value are the raw sequence number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqUnwrapper {
    highest: Option<u64>,
}

impl SeqUnwrapper {
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest extended value seen, if any.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Extends `seq` without recording it (what `unwrap` would return).
    pub fn peek(&self, seq: u16) -> u64 {
        let Some(h) = self.highest else {
            return FIRST_CYCLE + u64::from(seq);
        };
        let delta = seq.wrapping_sub(h as u16) as i16;
        // h >= FIRST_CYCLE and only grows, so a step back of at most 2^15 never underflows.
        h.saturating_add_signed(i64::from(delta))
    }

    /// Extends `seq` and advances the highest value when it is newer.
    pub fn unwrap(&mut self, seq: u16) -> u64 {
        let v = self.peek(seq);
        if self.highest.is_none_or(|h| v > h) {
            self.highest = Some(v);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: u64 = FIRST_CYCLE;

    #[test]
    fn in_order_across_wrap() {
        let mut u = SeqUnwrapper::new();
        let got: Vec<u64> = [65533u16, 65534, 65535, 0, 1, 2]
            .iter()
            .map(|&s| u.unwrap(s))
            .collect();
        assert_eq!(
            got,
            vec![C + 65533, C + 65534, C + 65535, 2 * C, 2 * C + 1, 2 * C + 2]
        );
        assert_eq!(u.highest(), Some(2 * C + 2));
        assert!(got
            .iter()
            .zip([65533u16, 65534, 65535, 0, 1, 2])
            .all(|(&v, s)| v as u16 == s));
    }

    #[test]
    fn reordered_across_wrap() {
        let mut u = SeqUnwrapper::new();
        assert_eq!(u.unwrap(65534), C + 65534);
        assert_eq!(u.unwrap(1), 2 * C + 1);
        assert_eq!(u.unwrap(65535), C + 65535); // late, from before the wrap
        assert_eq!(u.unwrap(0), 2 * C);
        assert_eq!(u.highest(), Some(2 * C + 1));
        assert_eq!(u.unwrap(2), 2 * C + 2);
    }

    #[test]
    fn many_wraps_with_reordering() {
        let mut u = SeqUnwrapper::new();
        let mut n = C + 100;
        for _ in 0..300_000 {
            // pairs arrive swapped: n+1 then n
            let a = u.unwrap((n + 1) as u16);
            let b = u.unwrap(n as u16);
            assert_eq!((a, b), (n + 1, n));
            n += 2;
        }
    }

    #[test]
    fn large_forward_jump_and_duplicate() {
        let mut u = SeqUnwrapper::new();
        u.unwrap(10);
        assert_eq!(u.unwrap(30010), C + 30010);
        assert_eq!(u.unwrap(30010), C + 30010);
        assert_eq!(u.unwrap(10), C + 10);
    }

    #[test]
    fn reordered_before_first_packet() {
        let mut u = SeqUnwrapper::new();
        assert_eq!(u.unwrap(5), C + 5);
        assert_eq!(u.unwrap(65535), 65535); // sent before seq 5, across the wrap
        assert_eq!(u.highest(), Some(C + 5));
        assert_eq!(u.unwrap(6), C + 6);
    }
}
