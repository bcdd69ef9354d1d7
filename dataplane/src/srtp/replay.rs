//! Packet-index estimation (RFC 3711 §3.3.1, Appendix A) and the replay window (§3.3.2).

use super::SrtpError;

/// Packets older than this many indices behind the highest one are rejected.
pub(crate) const WINDOW: u64 = 128;

/// Highest index seen plus a bitmap of the [`WINDOW`] indices at and below it.
///
/// The same structure tracks an SRTP stream (48-bit index, ROC || SEQ) and an
/// SRTCP stream (31-bit explicit index). On the sending side only `max` is used:
/// it is the sender's own rollover state.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ReplayWindow {
    /// Highest index accepted (receive) or sent (send); meaningful only if `init`.
    max: u64,
    /// Bit i set: index `max - i` was accepted.
    bits: u128,
    init: bool,
}

impl ReplayWindow {
    /// Highest index seen, if any.
    pub fn max(&self) -> Option<u64> {
        self.init.then_some(self.max)
    }

    /// The 48-bit SRTP index of sequence number `seq`, guessed from the highest index
    /// seen so far (RFC 3711 Appendix A). `None` if that guess would be before index 0:
    /// such a packet predates the stream and can only be a replay or garbage.
    pub fn estimate_rtp_index(&self, seq: u16) -> Option<u64> {
        if !self.init {
            // WebRTC keys are fresh per DTLS association, so every stream starts at ROC 0.
            return Some(u64::from(seq));
        }
        let roc = self.max >> 16;
        let s_l = (self.max & 0xffff) as u16;
        let seq32 = u32::from(seq);
        let s_l32 = u32::from(s_l);
        let v = if s_l < 0x8000 {
            if seq32 > s_l32 + 0x8000 {
                roc.checked_sub(1)?
            } else {
                roc
            }
        } else if s_l32 - 0x8000 > seq32 {
            roc.checked_add(1)?
        } else {
            roc
        };
        // The ROC is 32 bits; past it the 48-bit index space is exhausted.
        if v > u64::from(u32::MAX) {
            return None;
        }
        Some((v << 16) | u64::from(seq))
    }

    /// Err(Replay) if `index` was already accepted or fell out of the window. Does not
    /// change state: call [`Self::commit`] once the packet authenticated.
    #[inline]
    pub fn check(&self, index: u64) -> Result<(), SrtpError> {
        if !self.init || index > self.max {
            return Ok(());
        }
        let behind = self.max - index;
        if behind >= WINDOW || (self.bits >> behind) & 1 == 1 {
            return Err(SrtpError::Replay);
        }
        Ok(())
    }

    /// Records `index` as accepted (or sent).
    #[inline]
    pub fn commit(&mut self, index: u64) {
        if !self.init {
            *self = Self {
                max: index,
                bits: 1,
                init: true,
            };
        } else if index > self.max {
            let ahead = index - self.max;
            self.bits = if ahead >= WINDOW {
                0
            } else {
                self.bits << ahead
            };
            self.bits |= 1;
            self.max = index;
        } else {
            let behind = self.max - index;
            if behind < WINDOW {
                self.bits |= 1u128 << behind;
            }
        }
    }

    /// Moves the sending high-water mark forward; out-of-order sends (retransmissions)
    /// leave it where it is.
    #[inline]
    pub fn advance(&mut self, index: u64) {
        if !self.init || index > self.max {
            self.max = index;
            self.init = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(max: u64) -> ReplayWindow {
        let mut w = ReplayWindow::default();
        w.commit(max);
        w
    }

    #[test]
    fn estimate_follows_appendix_a() {
        let w = ReplayWindow::default();
        assert_eq!(w.estimate_rtp_index(0xfff0), Some(0xfff0));
        // Forward across the wrap.
        assert_eq!(at(0xfff0).estimate_rtp_index(0x0005), Some(0x1_0005));
        // A late packet from before the wrap.
        assert_eq!(at(0x1_0005).estimate_rtp_index(0xfff0), Some(0xfff0));
        // Ordinary progress, both halves of the sequence space.
        assert_eq!(at(0x2_0100).estimate_rtp_index(0x0200), Some(0x2_0200));
        assert_eq!(at(0x2_9000).estimate_rtp_index(0x9100), Some(0x2_9100));
        assert_eq!(at(0x2_9000).estimate_rtp_index(0x8000), Some(0x2_8000));
        // Before index 0.
        assert_eq!(at(0x0005).estimate_rtp_index(0xfff0), None);
    }

    #[test]
    fn window_rejects_duplicates_and_old() {
        let mut w = at(1000);
        assert_eq!(w.check(1000), Err(SrtpError::Replay));
        assert_eq!(w.check(999), Ok(()));
        w.commit(999);
        assert_eq!(w.check(999), Err(SrtpError::Replay));
        assert_eq!(w.check(1000 - 127), Ok(()));
        assert_eq!(w.check(1000 - 128), Err(SrtpError::Replay));
        w.commit(1200);
        assert_eq!(w.check(1000), Err(SrtpError::Replay));
        assert_eq!(w.check(1199), Ok(()));
        assert_eq!(w.check(1200), Err(SrtpError::Replay));
        w.commit(1201);
        assert_eq!(w.check(1200), Err(SrtpError::Replay));
        assert_eq!(w.max(), Some(1201));
    }
}
