//! Which simulcast layer a downtrack forwards, and when it may change.
//!
//! A decoder can only start on a keyframe, so the selector keeps
//! forwarding its current layer until the target layer's keyframe arrives,
//! then switches on that packet (the downtrack asks the publisher for the
//! keyframe). Pausing is immediate; resuming is a switch like any other.
//! Temporal layers above `max_temporal` are dropped on the current layer.

/// What a downtrack does with a packet of one of its track's layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The current layer: forward it.
    Forward,
    /// The target layer's keyframe: switch to it and forward this packet.
    Switch,
    /// The current layer, but a temporal layer above the limit: drop it
    /// without leaving a hole in the subscriber's sequence.
    DropTemporal,
    /// Another layer, or paused: not for this subscriber at all.
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSelector {
    current: Option<u8>,
    target: Option<u8>,
    max_temporal: u8,
}

/// Every temporal layer VP8 can signal (TID is 2 bits).
pub const ALL_TEMPORAL: u8 = 3;

impl LayerSelector {
    /// Starts waiting for `target`'s keyframe.
    pub fn new(target: Option<u8>) -> Self {
        LayerSelector { current: None, target, max_temporal: ALL_TEMPORAL }
    }

    pub fn current(&self) -> Option<u8> {
        self.current
    }

    pub fn target(&self) -> Option<u8> {
        self.target
    }

    pub fn max_temporal(&self) -> u8 {
        self.max_temporal
    }

    /// Whether a switch waits for the target's keyframe.
    pub fn pending(&self) -> bool {
        self.target.is_some() && self.target != self.current
    }

    /// A new target (None pauses at once). Returns true when the target's
    /// keyframe is now awaited, so the caller should ask for one.
    pub fn set_target(&mut self, target: Option<u8>, max_temporal: u8) -> bool {
        self.max_temporal = max_temporal.min(ALL_TEMPORAL);
        if target == self.target {
            return false;
        }
        self.target = target;
        if target.is_none() {
            self.current = None;
        }
        self.pending()
    }

    /// A packet of `layer`; `keyframe` when it starts a keyframe, `tid` its
    /// temporal layer when the codec says.
    pub fn on_packet(&mut self, layer: u8, keyframe: bool, tid: Option<u8>) -> Verdict {
        if keyframe && self.pending() && self.target == Some(layer) {
            self.current = Some(layer);
            return Verdict::Switch;
        }
        if self.current != Some(layer) {
            return Verdict::Ignore;
        }
        match tid {
            Some(t) if t > self.max_temporal => Verdict::DropTemporal,
            _ => Verdict::Forward,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_on_the_targets_keyframe_only() {
        let mut s = LayerSelector::new(Some(1));
        assert!(s.pending());
        assert_eq!(s.on_packet(1, false, None), Verdict::Ignore);
        assert_eq!(s.on_packet(0, true, None), Verdict::Ignore, "another layer's keyframe");
        assert_eq!(s.on_packet(1, true, None), Verdict::Switch);
        assert_eq!(s.on_packet(1, false, None), Verdict::Forward);
        assert_eq!(s.on_packet(2, true, None), Verdict::Ignore);
        assert!(!s.pending());
    }

    #[test]
    fn switching_keeps_the_current_layer_until_the_keyframe() {
        let mut s = LayerSelector::new(Some(0));
        s.on_packet(0, true, None);
        assert!(s.set_target(Some(2), ALL_TEMPORAL), "a keyframe is needed");
        assert_eq!(s.on_packet(0, false, None), Verdict::Forward);
        assert_eq!(s.on_packet(2, false, None), Verdict::Ignore);
        assert_eq!(s.on_packet(2, true, None), Verdict::Switch);
        assert_eq!(s.on_packet(0, false, None), Verdict::Ignore);
        assert_eq!(s.current(), Some(2));
        // Back down, and the same target again asks nothing.
        assert!(s.set_target(Some(0), ALL_TEMPORAL));
        assert!(!s.set_target(Some(0), ALL_TEMPORAL));
    }

    #[test]
    fn pause_is_immediate_and_resume_waits_for_a_keyframe() {
        let mut s = LayerSelector::new(Some(0));
        s.on_packet(0, true, None);
        assert!(!s.set_target(None, ALL_TEMPORAL));
        assert_eq!(s.on_packet(0, false, None), Verdict::Ignore);
        assert_eq!(s.on_packet(0, true, None), Verdict::Ignore, "paused ignores keyframes too");
        assert!(s.set_target(Some(0), ALL_TEMPORAL));
        assert_eq!(s.on_packet(0, false, None), Verdict::Ignore);
        assert_eq!(s.on_packet(0, true, None), Verdict::Switch);
    }

    #[test]
    fn temporal_layers_above_the_limit_are_dropped() {
        let mut s = LayerSelector::new(Some(0));
        s.on_packet(0, true, Some(0));
        s.set_target(Some(0), 1);
        assert_eq!(s.on_packet(0, false, Some(0)), Verdict::Forward);
        assert_eq!(s.on_packet(0, false, Some(1)), Verdict::Forward);
        assert_eq!(s.on_packet(0, false, Some(2)), Verdict::DropTemporal);
        assert_eq!(s.on_packet(0, false, None), Verdict::Forward, "no TID: nothing to drop");
    }
}
