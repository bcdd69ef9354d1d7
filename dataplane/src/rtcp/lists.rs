//! Lazy views over the repeated fields of RTCP packets.

/// SSRCs of a BYE or a REMB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrcList<'a> {
    data: &'a [u8],
}

impl<'a> SsrcList<'a> {
    /// `data` is exactly the SSRCs (a multiple of 4 bytes).
    pub(super) fn new(data: &'a [u8]) -> Self {
        SsrcList { data }
    }

    pub fn len(&self) -> usize {
        self.data.len() / 4
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Iterator for SsrcList<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let (c, rest) = self.data.split_first_chunk::<4>()?;
        self.data = rest;
        Some(u32::from_be_bytes(*c))
    }
}

/// Generic NACK FCI entries as `(pid, blp)` (RFC 4585 §6.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NackItems<'a> {
    data: &'a [u8],
}

impl<'a> NackItems<'a> {
    /// `data` is exactly the FCI (a multiple of 4 bytes).
    pub(super) fn new(data: &'a [u8]) -> Self {
        NackItems { data }
    }

    pub fn len(&self) -> usize {
        self.data.len() / 4
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every sequence number the NACK reports lost: each pid, then pid+1+i for each set bit i of its blp.
    pub fn lost_sequences(&self) -> LostSequences<'a> {
        LostSequences {
            items: self.clone(),
            current: None,
        }
    }
}

impl Iterator for NackItems<'_> {
    type Item = (u16, u16);

    fn next(&mut self) -> Option<(u16, u16)> {
        let (c, rest) = self.data.split_first_chunk::<4>()?;
        self.data = rest;
        Some((
            u16::from_be_bytes([c[0], c[1]]),
            u16::from_be_bytes([c[2], c[3]]),
        ))
    }
}

/// Iterator of the sequence numbers a NACK reports lost, in wire order.
#[derive(Debug, Clone)]
pub struct LostSequences<'a> {
    items: NackItems<'a>,
    /// pid of the current item and the bits of its blp not yet yielded.
    current: Option<(u16, u16)>,
}

impl Iterator for LostSequences<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        if let Some((pid, blp)) = self.current {
            if blp != 0 {
                let bit = blp.trailing_zeros() as u16;
                self.current = Some((pid, blp & (blp - 1)));
                return Some(pid.wrapping_add(bit + 1));
            }
        }
        let (pid, blp) = self.items.next()?;
        self.current = Some((pid, blp));
        Some(pid)
    }
}

/// FIR FCI entries as `(ssrc, seq_nr)` (RFC 5104 §4.3.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirEntries<'a> {
    data: &'a [u8],
}

impl<'a> FirEntries<'a> {
    /// `data` is exactly the FCI (a multiple of 8 bytes).
    pub(super) fn new(data: &'a [u8]) -> Self {
        FirEntries { data }
    }

    pub fn len(&self) -> usize {
        self.data.len() / 8
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Iterator for FirEntries<'_> {
    type Item = (u32, u8);

    fn next(&mut self) -> Option<(u32, u8)> {
        let (c, rest) = self.data.split_first_chunk::<8>()?;
        self.data = rest;
        Some((u32::from_be_bytes([c[0], c[1], c[2], c[3]]), c[4]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_sequences_expand_blp() {
        // pid 65534 with bits 0,1,15 => 65534, 65535, 0, 14; then pid 100 alone
        let data = [0xff, 0xfe, 0x80, 0x03, 0x00, 0x64, 0x00, 0x00];
        let items = NackItems::new(&data);
        assert_eq!(
            items.clone().collect::<Vec<_>>(),
            vec![(65534, 0x8003), (100, 0)]
        );
        assert_eq!(
            items.lost_sequences().collect::<Vec<_>>(),
            vec![65534, 65535, 0, 14, 100]
        );
    }

    #[test]
    fn fir_and_ssrcs() {
        let data = [0, 0, 0, 9, 7, 0, 0, 0, 0, 0, 0, 10, 8, 0, 0, 0];
        assert_eq!(
            FirEntries::new(&data).collect::<Vec<_>>(),
            vec![(9, 7), (10, 8)]
        );
        assert_eq!(
            SsrcList::new(&data[..8]).collect::<Vec<_>>(),
            vec![9, 0x0700_0000]
        );
        assert_eq!(SsrcList::new(&data).len(), 4);
    }
}
