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

    /// Whether a resent packet of an SVC stream ends the picture for this
    /// subscriber (the original's marker may have been moved down to it).
    pub(super) fn svc_resend_marker(&self, payload: &[u8], marker: bool) -> bool {
        if marker || self.svc.is_none() {
            return marker;
        }
        let Ok(d) = crate::forward::vp9::parse(payload) else { return marker };
        match (d.layer, self.svc_current()) {
            (Some(l), Some(top)) => d.end_of_frame && l.spatial == top,
            _ => marker,
        }
    }
}

#[cfg(test)]
mod tests;
