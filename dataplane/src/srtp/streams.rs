//! Per-SSRC state of one context: a small table searched linearly.
//!
//! A DTLS association carries a handful of SSRCs (audio, video, RTX, simulcast layers,
//! RTCP senders), so a flat array beats hashing. The SSRCs sit in their own array so a
//! lookup scans 4 bytes per stream, and the last hit is tried first because packets of
//! one stream come in bursts.

use super::replay::ReplayWindow;

/// Default cap on SSRCs per context.
///
/// What happens at the cap depends on the direction. A receiving context forgets its
/// least recently used stream: only authenticated packets insert, so only the peer
/// itself can fill the table, and a stream that comes back merely restarts its replay
/// window. A sending context never forgets a stream to make room: that would reset the
/// rollover counter of a live stream and the receiver could no longer decrypt it. It
/// refuses the new SSRC instead ([`super::SrtpError::TooManyStreams`]); what it sends
/// is bounded by what was negotiated, and streams that stopped being sent are dropped
/// by [`StreamTable::reap_idle`].
pub const DEFAULT_MAX_STREAMS: usize = 256;

/// Everything SRTP/SRTCP remembers about one SSRC in one direction.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StreamState {
    /// SRTP: receive replay window, or the sender's highest index (its ROC).
    pub rtp: ReplayWindow,
    /// SRTCP receive replay window over the explicit 31-bit index.
    pub rtcp: ReplayWindow,
    /// Last SRTCP index sent. Starts at 0 and is incremented before use, so the
    /// first SRTCP packet carries index 1, as libsrtp does.
    pub rtcp_sent: u32,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    last_used: u64,
    state: StreamState,
}

#[derive(Debug)]
pub(crate) struct StreamTable {
    ssrcs: Vec<u32>,
    slots: Vec<Slot>,
    clock: u64,
    /// `clock` at the previous [`Self::reap_idle`]: slots not used since are idle.
    swept_at: u64,
    last_hit: usize,
    cap: usize,
}

impl StreamTable {
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        let initial = cap.min(8);
        Self {
            ssrcs: Vec::with_capacity(initial),
            slots: Vec::with_capacity(initial),
            clock: 0,
            swept_at: 0,
            last_hit: 0,
            cap,
        }
    }

    pub fn len(&self) -> usize {
        self.ssrcs.len()
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Where `ssrc` lives, without touching any state.
    #[inline]
    pub fn find(&self, ssrc: u32) -> Option<usize> {
        if self.ssrcs.get(self.last_hit) == Some(&ssrc) {
            return Some(self.last_hit);
        }
        self.ssrcs.iter().position(|&s| s == ssrc)
    }

    /// Asks for the most recently used stream's entries (see `crate::prefetch`).
    #[inline]
    pub fn warm(&self) {
        crate::prefetch::line(self.ssrcs.as_ptr().wrapping_add(self.last_hit));
        crate::prefetch::line(self.slots.as_ptr().wrapping_add(self.last_hit));
    }

    /// The state at `pos`, or a fresh one for an SSRC not yet in the table.
    #[inline]
    pub fn peek(&self, pos: Option<usize>) -> StreamState {
        pos.and_then(|p| self.slots.get(p))
            .map(|s| s.state)
            .unwrap_or_default()
    }

    /// Mutable state for `ssrc` found at `pos` (from [`Self::find`] on this same table,
    /// with no change in between), inserting it if absent and marking it recently used.
    /// Call only once a packet has been authenticated (or for our own sends).
    ///
    /// When the table is full and `ssrc` is new, `evict` says whether the least
    /// recently used stream may go (receiving) or the new one is refused with None
    /// (sending: see [`DEFAULT_MAX_STREAMS`]).
    #[inline]
    pub fn touch(&mut self, pos: Option<usize>, ssrc: u32, evict: bool) -> Option<&mut StreamState> {
        let pos = match pos {
            Some(p) if self.ssrcs.get(p) == Some(&ssrc) => p,
            _ => self.insert(ssrc, evict)?,
        };
        self.clock += 1;
        self.last_hit = pos;
        let clock = self.clock;
        // `pos` is in bounds: it either came from the table or from insert.
        let slot = &mut self.slots[pos];
        slot.last_used = clock;
        Some(&mut slot.state)
    }

    /// Forgets every stream not used since the previous call, unless `keep` says its
    /// SSRC is still negotiated; returns how many went. Called periodically, so a
    /// stream goes after one to two periods of silence. Never drops a stream that
    /// carried a packet in the last period.
    pub fn reap_idle(&mut self, keep: impl Fn(u32) -> bool) -> usize {
        let before = self.ssrcs.len();
        let mut i = 0;
        while i < self.ssrcs.len() {
            if self.slots[i].last_used <= self.swept_at && !keep(self.ssrcs[i]) {
                self.ssrcs.swap_remove(i);
                self.slots.swap_remove(i);
            } else {
                i += 1;
            }
        }
        self.swept_at = self.clock;
        self.last_hit = 0;
        before - self.ssrcs.len()
    }

    #[cold]
    fn insert(&mut self, ssrc: u32, evict: bool) -> Option<usize> {
        if let Some(p) = self.ssrcs.iter().position(|&s| s == ssrc) {
            return Some(p);
        }
        let fresh = Slot {
            last_used: self.clock,
            state: StreamState::default(),
        };
        if self.ssrcs.len() < self.cap {
            self.ssrcs.push(ssrc);
            self.slots.push(fresh);
            return Some(self.ssrcs.len() - 1);
        }
        if !evict {
            tracing::debug!(new_ssrc = ssrc, cap = self.cap, "srtp send table full, refusing new ssrc");
            return None;
        }
        let victim = self
            .slots
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.last_used)
            .map(|(i, _)| i)
            .unwrap_or(0);
        tracing::debug!(
            evicted_ssrc = self.ssrcs[victim],
            new_ssrc = ssrc,
            cap = self.cap,
            "srtp stream table full, forgetting least recently used ssrc"
        );
        self.ssrcs[victim] = ssrc;
        self.slots[victim] = fresh;
        Some(victim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let mut t = StreamTable::new(3);
        for ssrc in [1, 2, 3] {
            let pos = t.find(ssrc);
            t.touch(pos, ssrc, true).unwrap().rtcp_sent = ssrc;
        }
        let pos = t.find(1);
        t.touch(pos, 1, true); // 2 is now the oldest
        let pos = t.find(4);
        assert_eq!(pos, None);
        t.touch(pos, 4, true);
        assert_eq!(t.len(), 3);
        assert_eq!(t.find(2), None);
        assert_eq!(t.peek(t.find(1)).rtcp_sent, 1);
        assert_eq!(t.peek(t.find(3)).rtcp_sent, 3);
        assert_eq!(t.peek(t.find(4)).rtcp_sent, 0);
    }

    #[test]
    fn sending_refuses_instead_of_evicting() {
        let mut t = StreamTable::new(2);
        for ssrc in [1, 2] {
            t.touch(None, ssrc, false).unwrap().rtcp_sent = ssrc;
        }
        assert!(t.touch(None, 3, false).is_none());
        assert_eq!(t.len(), 2);
        assert_eq!(t.peek(t.find(1)).rtcp_sent, 1);
        assert_eq!(t.peek(t.find(2)).rtcp_sent, 2);
        // Existing streams still work at the cap.
        assert!(t.touch(t.find(1), 1, false).is_some());
    }

    #[test]
    fn reap_keeps_live_and_negotiated_streams() {
        let mut t = StreamTable::new(8);
        for ssrc in [1, 2, 3] {
            t.touch(None, ssrc, false);
        }
        // Everything was used since the (initial) previous sweep.
        assert_eq!(t.reap_idle(|_| false), 0);
        t.touch(t.find(1), 1, false);
        // 1 was used this period, 2 is negotiated, 3 is idle and not.
        assert_eq!(t.reap_idle(|s| s == 2), 1);
        assert_eq!(t.find(3), None);
        assert!(t.find(1).is_some() && t.find(2).is_some());
        assert_eq!(t.reap_idle(|s| s == 2), 1);
        assert_eq!(t.find(1), None);
        assert!(t.find(2).is_some());
    }

    #[test]
    fn peek_does_not_insert() {
        let t = StreamTable::new(4);
        assert_eq!(t.peek(t.find(9)).rtcp_sent, 0);
        assert_eq!(t.len(), 0);
    }
}
