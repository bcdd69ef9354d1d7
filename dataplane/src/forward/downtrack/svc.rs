//! The SVC half of a downtrack: one SSRC carries every spatial and
//! temporal layer (VP9 with its payload descriptor, or AV1 with the
//! dependency descriptor), and `SvcFilter` decides per packet what this
//! subscriber gets. The allocator's choice is (spatial, temporal); "paused" drops
//! everything and a resume starts over from a keyframe. Sequence numbers
//! stay continuous over what is dropped (the mapper skips it); VP9 picture
//! ids are left as sent: in flexible mode (Chromium's) the receiver finds
//! references by picture id and P_DIFF, so renumbering would break them,
//! and a gap in picture ids is only a picture it does not get.

use crate::forward::svc_filter::{Decision, DropReason, Layers, SvcFilter};
use super::{Downtrack, Rewrite, Svc};
use crate::shard::peer::MediaItem;

impl Downtrack {
    /// A packet of a layered stream (VP9 descriptor, or dependency
    /// descriptor). `Ok(marker)` to forward it with that marker, or what
    /// became of it.
    pub(super) fn filter_svc(&mut self, svc: Svc<'_>, item: &MediaItem) -> Result<bool, Rewrite> {
        self.svc_seen = true;
        let (target, temporal) = self.initial_target;
        let Some(spatial) = target else {
            // Paused by the allocator: not for this subscriber at all.
            self.waiting_keyframe = false;
            self.mapper.skip(item.ext_seq);
            return Err(Rewrite::NotSelected);
        };
        let f = self.svc.get_or_insert_with(|| SvcFilter::new(Layers::new(spatial, temporal)));
        let decision = match svc {
            Svc::Vp9(d) => f.vp9(d, item.timestamp, item.marker),
            Svc::Dd(frame, structure) => f.dd(frame, structure, item.timestamp, item.marker),
            // Layers unknown: nothing that could be above the target goes out.
            Svc::None | Svc::Unreadable => {
                self.mapper.skip(item.ext_seq);
                return Err(Rewrite::Skip);
            }
        };
        self.waiting_keyframe = f.needs_keyframe();
        match decision {
            Decision::Forward { marker } => Ok(marker),
            Decision::Drop(dropped) => {
                self.mapper.skip(item.ext_seq);
                Err(match dropped.reason {
                    DropReason::WaitingForKeyframe => Rewrite::Skip,
                    _ => Rewrite::NotSelected,
                })
            }
        }
    }

    /// The allocator's choice for an SVC track. Returns true when it needs
    /// a keyframe (a spatial layer up, or a resume).
    pub(super) fn set_svc_layers(&mut self, target: Option<u8>, max_temporal: u8) -> bool {
        self.initial_target = (target, max_temporal);
        let Some(spatial) = target else {
            self.svc = None;
            self.waiting_keyframe = false;
            return false;
        };
        let f = self.svc.get_or_insert_with(|| SvcFilter::new(Layers::new(spatial, max_temporal)));
        f.set_target(Layers::new(spatial, max_temporal));
        let wait = f.needs_keyframe();
        if wait && !self.waiting_keyframe {
            self.last_keyframe_request = None;
        }
        self.waiting_keyframe = wait;
        wait
    }

    /// The spatial layer forwarded now, for SVC.
    pub(super) fn svc_current(&self) -> Option<u8> {
        self.svc.as_ref().and_then(|f| f.current()).map(|l| l.spatial)
    }
}

/// How many pictures back a moved marker is remembered: resends come
/// within a second, and the cache holds no more.
const MOVED_MARKERS: usize = 64;

/// Output sequence numbers whose RTP marker the SVC filter set although the
/// publisher's packet had none: the end of the highest layer this
/// subscriber gets, where the publisher marked only the end of its top
/// layer. A resend of one must carry the marker too: without it the
/// receiver never sees that picture end, and its video stalls until its
/// keyframe timeout (3 s in Chromium). One slot per sequence number modulo
/// the size, tagged with the number itself; allocation-free.
#[derive(Debug)]
pub(super) struct MovedMarkers([Option<u16>; MOVED_MARKERS]);

impl Default for MovedMarkers {
    fn default() -> Self {
        MovedMarkers([None; MOVED_MARKERS])
    }
}

impl MovedMarkers {
    pub(super) fn record(&mut self, seq: u16, moved: bool) {
        let slot = &mut self.0[usize::from(seq) % MOVED_MARKERS];
        if moved {
            *slot = Some(seq);
        } else if *slot == Some(seq) {
            *slot = None;
        }
    }

    pub(super) fn contains(&self, seq: u16) -> bool {
        self.0[usize::from(seq) % MOVED_MARKERS] == Some(seq)
    }
}

#[cfg(test)]
mod tests;
