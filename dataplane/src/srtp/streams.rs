//! Per-SSRC state of one context: a small table searched linearly.
//!
//! A DTLS association carries a handful of SSRCs (audio, video, RTX, simulcast layers,
//! RTCP senders), so a flat array beats hashing. The SSRCs sit in their own array so a
//! lookup scans 4 bytes per stream, and the last hit is tried first because packets of
//! one stream come in bursts.

use super::replay::ReplayWindow;

/// Default cap on SSRCs per context. A subscriber's send context in a large room holds
/// an SSRC per forwarded track, so this is generous; past it the least recently used
/// stream is forgotten (and, if it comes back, restarts at ROC 0).
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
            last_hit: 0,
            cap,
        }
    }

    pub fn len(&self) -> usize {
        self.ssrcs.len()
    }

    /// Where `ssrc` lives, without touching any state.
    #[inline]
    pub fn find(&self, ssrc: u32) -> Option<usize> {
        if self.ssrcs.get(self.last_hit) == Some(&ssrc) {
            return Some(self.last_hit);
        }
        self.ssrcs.iter().position(|&s| s == ssrc)
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
    #[inline]
    pub fn touch(&mut self, pos: Option<usize>, ssrc: u32) -> &mut StreamState {
        self.clock += 1;
        let pos = match pos {
            Some(p) if self.ssrcs.get(p) == Some(&ssrc) => p,
            _ => self.insert(ssrc),
        };
        self.last_hit = pos;
        let clock = self.clock;
        // `pos` is in bounds: it either came from the table or from insert.
        let slot = &mut self.slots[pos];
        slot.last_used = clock;
        &mut slot.state
    }

    #[cold]
    fn insert(&mut self, ssrc: u32) -> usize {
        if let Some(p) = self.ssrcs.iter().position(|&s| s == ssrc) {
            return p;
        }
        let fresh = Slot {
            last_used: self.clock,
            state: StreamState::default(),
        };
        if self.ssrcs.len() < self.cap {
            self.ssrcs.push(ssrc);
            self.slots.push(fresh);
            return self.ssrcs.len() - 1;
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
        victim
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
            t.touch(pos, ssrc).rtcp_sent = ssrc;
        }
        let pos = t.find(1);
        t.touch(pos, 1); // 2 is now the oldest
        let pos = t.find(4);
        assert_eq!(pos, None);
        t.touch(pos, 4);
        assert_eq!(t.len(), 3);
        assert_eq!(t.find(2), None);
        assert_eq!(t.peek(t.find(1)).rtcp_sent, 1);
        assert_eq!(t.peek(t.find(3)).rtcp_sent, 3);
        assert_eq!(t.peek(t.find(4)).rtcp_sent, 0);
    }

    #[test]
    fn peek_does_not_insert() {
        let t = StreamTable::new(4);
        assert_eq!(t.peek(t.find(9)).rtcp_sent, 0);
        assert_eq!(t.len(), 0);
    }
}
