//! Keyframe requests toward one publisher, merged: a burst of new viewers,
//! a failed recovery and a layer switch should cost the publisher one
//! keyframe, not one each.

use std::time::{Duration, Instant};

/// Requests closer together than this are merged into one PLI.
pub const PLI_INTERVAL: Duration = Duration::from_millis(300);

#[derive(Debug, Default)]
pub struct KeyframeRequester {
    /// When the oldest unanswered request was made.
    pending_since: Option<Instant>,
    last_sent: Option<Instant>,
}

impl KeyframeRequester {
    /// Something wants a keyframe; `take_due` says when to ask.
    pub fn request(&mut self, now: Instant) {
        self.pending_since.get_or_insert(now);
    }

    pub fn is_pending(&self) -> bool {
        self.pending_since.is_some()
    }

    /// Whether a PLI goes out now; clears the request when it does.
    pub fn take_due(&mut self, now: Instant) -> bool {
        match self.poll_timeout() {
            Some(t) if t <= now => {
                self.pending_since = None;
                self.last_sent = Some(now);
                true
            }
            _ => false,
        }
    }

    /// When a pending request may go out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let since = self.pending_since?;
        Some(match self.last_sent {
            Some(t) => since.max(t + PLI_INTERVAL),
            None => since,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_requests_within_the_interval() {
        let t0 = Instant::now();
        let mut k = KeyframeRequester::default();
        assert!(!k.take_due(t0), "nothing asked");
        k.request(t0);
        assert!(k.take_due(t0), "first request goes out at once");
        for ms in [10, 50, 100] {
            k.request(t0 + Duration::from_millis(ms));
        }
        assert!(!k.take_due(t0 + Duration::from_millis(200)));
        assert_eq!(k.poll_timeout(), Some(t0 + PLI_INTERVAL));
        assert!(k.take_due(t0 + PLI_INTERVAL), "one PLI for three requests");
        assert!(!k.take_due(t0 + Duration::from_secs(5)), "and nothing after");
    }
}
