//! Which simulcast layers each shard's subscribers need, as the publisher's
//! shard knows it: a layer no subscriber on a shard needs is not copied to
//! that shard (only its size is, so the shard's allocators keep knowing what
//! the layer would cost).
//!
//! Sans-IO: subscriber shards report a mask per track; the table answers
//! "does shard S want layer L of track T now". A shard that has not
//! reported, or whose report is stale, wants everything: pruning is an
//! optimisation and must never cut a viewer off because a message was lost.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::msg::{ShardId, TrackId, MAX_LAYERS};

/// A report older than this no longer prunes anything. Subscriber shards
/// repeat their masks well within it (`REPEAT_EVERY` allocation passes).
pub const STALE_AFTER: Duration = Duration::from_secs(2);

/// Allocation passes between repeats of an unchanged mask.
pub const REPEAT_EVERY: u8 = 5;

/// One bit per simulcast layer.
pub type LayerMask = u8;

/// The layers a downtrack forwarding `current` and wanting `target` needs:
/// both, so a switch finds its keyframe and the old layer plays until then.
pub fn needed(current: Option<u8>, target: Option<u8>) -> LayerMask {
    let bit = |l: Option<u8>| l.filter(|&l| usize::from(l) < MAX_LAYERS).map_or(0, |l| 1 << l);
    bit(current) | bit(target)
}

#[derive(Debug, Clone, Copy)]
struct Report {
    mask: LayerMask,
    at: Instant,
}

/// Per track, the masks the subscriber shards reported (the publisher's
/// shard keeps this). Bounded by tracks × shards; a track's entry goes
/// with its uptrack.
#[derive(Debug, Default)]
pub struct LayerDemand {
    reports: HashMap<TrackId, Vec<(ShardId, Report)>>,
}

impl LayerDemand {
    pub fn report(&mut self, track: TrackId, shard: ShardId, mask: LayerMask, now: Instant) {
        let list = self.reports.entry(track).or_default();
        let report = Report { mask, at: now };
        match list.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, r)) => *r = report,
            None => list.push((shard, report)),
        }
    }

    /// Whether `shard` needs `layer` of `track`. Single-stream packets
    /// (`layer` None) are always wanted.
    pub fn wants(&self, track: TrackId, shard: ShardId, layer: Option<u8>, now: Instant) -> bool {
        let Some(layer) = layer else { return true };
        let Some(list) = self.reports.get(&track) else { return true };
        let Some((_, r)) = list.iter().find(|(s, _)| *s == shard) else { return true };
        if now.saturating_duration_since(r.at) > STALE_AFTER {
            return true;
        }
        usize::from(layer) >= MAX_LAYERS || r.mask & (1 << layer) != 0
    }

    pub fn remove_track(&mut self, track: TrackId) {
        self.reports.remove(&track);
    }

    pub fn tracks(&self) -> usize {
        self.reports.len()
    }
}

/// What a subscriber shard last told each publisher's shard, so it repeats
/// itself only every `REPEAT_EVERY` passes unless the mask changes.
#[derive(Debug, Default)]
pub struct DemandAnnouncer {
    sent: HashMap<TrackId, (LayerMask, u8)>,
}

impl DemandAnnouncer {
    /// Whether `mask` for `track` should be sent in this pass.
    pub fn due(&mut self, track: TrackId, mask: LayerMask) -> bool {
        match self.sent.get_mut(&track) {
            Some((m, passes)) if *m == mask && *passes + 1 < REPEAT_EVERY => {
                *passes += 1;
                false
            }
            _ => {
                self.sent.insert(track, (mask, 0));
                true
            }
        }
    }

    /// Forgets tracks this shard no longer subscribes to.
    pub fn retain(&mut self, keep: impl Fn(&TrackId) -> bool) {
        self.sent.retain(|t, _| keep(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: TrackId = TrackId(7);

    #[test]
    fn a_silent_shard_wants_everything() {
        let d = LayerDemand::default();
        let now = Instant::now();
        assert!(d.wants(T, 1, Some(2), now));
        assert!(d.wants(T, 1, None, now));
    }

    #[test]
    fn a_report_prunes_what_it_leaves_out_until_it_goes_stale() {
        let mut d = LayerDemand::default();
        let now = Instant::now();
        d.report(T, 1, needed(Some(0), Some(1)), now);
        assert!(d.wants(T, 1, Some(0), now));
        assert!(d.wants(T, 1, Some(1), now));
        assert!(!d.wants(T, 1, Some(2), now));
        // Other shards and single streams are untouched.
        assert!(d.wants(T, 2, Some(2), now));
        assert!(d.wants(T, 1, None, now));
        assert!(d.wants(T, 1, Some(2), now + STALE_AFTER + Duration::from_millis(1)));
        d.remove_track(T);
        assert_eq!(d.tracks(), 0);
        assert!(d.wants(T, 1, Some(2), now));
    }

    #[test]
    fn a_paused_shard_wants_nothing() {
        let mut d = LayerDemand::default();
        let now = Instant::now();
        d.report(T, 0, needed(None, None), now);
        assert!((0..MAX_LAYERS as u8).all(|l| !d.wants(T, 0, Some(l), now)));
    }

    #[test]
    fn out_of_range_layers_are_never_pruned() {
        let mut d = LayerDemand::default();
        let now = Instant::now();
        d.report(T, 0, 0, now);
        assert_eq!(needed(Some(9), None), 0);
        assert!(d.wants(T, 0, Some(MAX_LAYERS as u8), now));
    }

    #[test]
    fn the_announcer_repeats_unchanged_masks_only_now_and_then() {
        let mut a = DemandAnnouncer::default();
        assert!(a.due(T, 1));
        let repeats = (0..REPEAT_EVERY * 2).filter(|_| a.due(T, 1)).count();
        assert_eq!(repeats, 2);
        assert!(a.due(T, 3), "a change goes out at once");
        a.retain(|_| false);
        assert!(a.due(T, 3));
    }
}
