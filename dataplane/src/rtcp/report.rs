//! Reception report blocks (RFC 3550 §6.4.1), shared by SR and RR.

use super::wire::{be32, put32};

pub const REPORT_BLOCK_LEN: usize = 24;

/// One reception report block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// Signed 24-bit on the wire; writers clamp to that range.
    pub cumulative_lost: i32,
    pub ext_highest_seq: u32,
    pub jitter: u32,
    pub lsr: u32,
    /// Delay since the last SR, in 1/65536 s.
    pub dlsr: u32,
}

const LOST_MAX: i32 = 0x7f_ffff;
const LOST_MIN: i32 = -0x80_0000;

impl ReportBlock {
    /// Decodes a block; `b` must hold at least [`REPORT_BLOCK_LEN`] bytes.
    fn read(b: &[u8]) -> Option<Self> {
        let word1 = be32(b, 4)?;
        // Sign-extend the low 24 bits.
        let cumulative_lost = ((word1 << 8) as i32) >> 8;
        Some(ReportBlock {
            ssrc: be32(b, 0)?,
            fraction_lost: (word1 >> 24) as u8,
            cumulative_lost,
            ext_highest_seq: be32(b, 8)?,
            jitter: be32(b, 12)?,
            lsr: be32(b, 16)?,
            dlsr: be32(b, 20)?,
        })
    }

    /// Encodes into `out[..24]`; the caller has checked the length.
    pub(super) fn write(&self, out: &mut [u8]) {
        let lost = self.cumulative_lost.clamp(LOST_MIN, LOST_MAX) as u32 & 0x00ff_ffff;
        put32(out, 0, self.ssrc);
        put32(out, 4, (u32::from(self.fraction_lost) << 24) | lost);
        put32(out, 8, self.ext_highest_seq);
        put32(out, 12, self.jitter);
        put32(out, 16, self.lsr);
        put32(out, 20, self.dlsr);
    }
}

/// Lazy iterator over the report blocks of an SR or RR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportBlocks<'a> {
    data: &'a [u8],
}

impl<'a> ReportBlocks<'a> {
    /// `data` is exactly the blocks (a multiple of 24 bytes).
    pub(super) fn new(data: &'a [u8]) -> Self {
        ReportBlocks { data }
    }

    pub fn len(&self) -> usize {
        self.data.len() / REPORT_BLOCK_LEN
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        let (block, rest) = self.data.split_first_chunk::<REPORT_BLOCK_LEN>()?;
        self.data = rest;
        ReportBlock::read(block)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), Some(self.len()))
    }
}

impl ExactSizeIterator for ReportBlocks<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_and_clamped_loss() {
        let mut out = [0u8; 24];
        let rb = ReportBlock {
            ssrc: 1,
            fraction_lost: 2,
            cumulative_lost: -3,
            ..Default::default()
        };
        rb.write(&mut out);
        assert_eq!(&out[4..8], &[2, 0xff, 0xff, 0xfd]);
        assert_eq!(ReportBlock::read(&out), Some(rb));

        let rb = ReportBlock {
            cumulative_lost: 10_000_000,
            ..Default::default()
        };
        rb.write(&mut out);
        assert_eq!(ReportBlock::read(&out).unwrap().cumulative_lost, 0x7f_ffff);
        let rb = ReportBlock {
            cumulative_lost: -10_000_000,
            ..Default::default()
        };
        rb.write(&mut out);
        assert_eq!(ReportBlock::read(&out).unwrap().cumulative_lost, -0x80_0000);
    }
}
