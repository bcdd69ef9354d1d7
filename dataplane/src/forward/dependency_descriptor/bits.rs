//! MSB-first bit reading and writing, with the descriptor's `f(n)` and
//! `ns(n)` (non-symmetric unsigned) codings.

use super::DdError;

pub struct BitReader<'a> {
    buf: &'a [u8],
    /// Bits consumed.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        BitReader { buf, pos: 0 }
    }

    pub fn bit(&mut self) -> Result<bool, DdError> {
        let byte = *self.buf.get(self.pos / 8).ok_or(DdError::Truncated)?;
        let b = byte >> (7 - self.pos % 8) & 1;
        self.pos += 1;
        Ok(b == 1)
    }

    /// `f(n)`, n <= 32.
    pub fn bits(&mut self, n: u32) -> Result<u32, DdError> {
        debug_assert!(n <= 32);
        if self.pos + n as usize > self.buf.len() * 8 {
            return Err(DdError::Truncated);
        }
        let mut v = 0u64;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        Ok(v as u32)
    }

    /// `ns(n)`: a value in 0..n in w-1 or w bits, w the bit length of n.
    pub fn ns(&mut self, n: u32) -> Result<u32, DdError> {
        let w = 32 - n.leading_zeros();
        let m = (1u32 << w) - n;
        let v = self.bits(w.saturating_sub(1))?;
        if v < m {
            return Ok(v);
        }
        Ok((v << 1) - m + u32::from(self.bit()?))
    }
}

pub struct BitWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> BitWriter<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        BitWriter { buf, pos: 0 }
    }

    pub fn bit(&mut self, on: bool) -> Result<(), DdError> {
        let byte = self.buf.get_mut(self.pos / 8).ok_or(DdError::BufferTooSmall)?;
        let mask = 0x80u8 >> (self.pos % 8);
        if on {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
        self.pos += 1;
        Ok(())
    }

    /// The low `n` bits of `v`, MSB first.
    pub fn bits(&mut self, v: u32, n: u32) -> Result<(), DdError> {
        for i in (0..n).rev() {
            self.bit(v >> i & 1 == 1)?;
        }
        Ok(())
    }

    /// The inverse of `BitReader::ns`; `v < n`.
    pub fn ns(&mut self, v: u32, n: u32) -> Result<(), DdError> {
        if v >= n {
            return Err(DdError::Inconsistent("ns value out of range"));
        }
        let w = 32 - n.leading_zeros();
        let m = (1u32 << w) - n;
        if v < m {
            return self.bits(v, w - 1);
        }
        let x = v + m;
        self.bits(x >> 1, w - 1)?;
        self.bit(x & 1 == 1)
    }

    /// Bytes used, the last one padded with zero bits.
    pub fn finish(mut self) -> usize {
        while self.pos % 8 != 0 {
            // In range: the byte holding the bit before exists.
            let _ = self.bit(false);
        }
        self.pos / 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ns_uses_the_short_code_for_small_values() {
        // ns(5): w = 3, m = 3: 0..3 in 2 bits, 3 and 4 in 3 bits.
        let mut buf = [0u8; 2];
        let mut w = BitWriter::new(&mut buf);
        for v in 0..5 {
            w.ns(v, 5).unwrap();
        }
        assert_eq!(w.finish(), 2);
        // 00 01 10 110 111 -> 0001_1011 0111_0000
        assert_eq!(buf, [0b0001_1011, 0b0111_0000]);
        let mut r = BitReader::new(&buf);
        let got: Vec<_> = (0..5).map(|_| r.ns(5).unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn ns_of_one_takes_no_bits() {
        let mut r = BitReader::new(&[]);
        assert_eq!(r.ns(1), Ok(0));
    }

    proptest! {
        #[test]
        fn ns_round_trips(n in 1u32..64, v in 0u32..64, lead in 0u32..8) {
            let v = v % n;
            let mut buf = [0u8; 4];
            let mut w = BitWriter::new(&mut buf);
            w.bits(0, lead).unwrap();
            w.ns(v, n).unwrap();
            let mut r = BitReader::new(&buf);
            r.bits(lead).unwrap();
            prop_assert_eq!(r.ns(n), Ok(v));
        }
    }
}
