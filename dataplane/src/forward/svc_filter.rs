//! Per-downtrack layer filtering for one SVC stream (VP9 SVC, or any codec
//! sent with the dependency descriptor): given the layers the subscriber
//! should get, decide for each packet whether it is forwarded, and where
//! the RTP marker goes.
//!
//! - A picture (VP9 superframe, AV1 temporal unit) is recognised by its
//!   RTP timestamp; all its layer frames share it.
//! - Nothing is forwarded before the first keyframe.
//! - Going up needs a point the new layers can be decoded from:
//!   - VP9: a keyframe; or, one spatial layer at a time, a layer frame
//!     with P=0 (it predicts from the lower layers of its own picture
//!     only). Higher temporal layers are added from the picture after a
//!     forwarded frame with U=1: RFC 9628 says later pictures of higher
//!     layers do not reference pictures before it with a higher TID, which
//!     are the ones not forwarded. (Chromium sets U on every frame, so
//!     the usual wait is one picture; taking a higher layer at its own
//!     U=1 frame instead, as some SFUs do, breaks on Chromium's T2 frames
//!     that reference a dropped T1.)
//!   - Dependency descriptor: a frame whose DTI for the new decode target
//!     is Switch (§A.4.4). Down also needs one, since frames of a lower
//!     decode target are not always in the higher one (K-SVC). Only
//!     decode targets the publisher marks active are chosen.
//! - VP9 goes down at the next picture: lower layers never depend on
//!   higher ones, and they were all being forwarded.
//! - The browser needs the marker on the last packet of the highest layer
//!   it gets, so when higher spatial layers are dropped the end of the
//!   highest forwarded layer frame carries it.
//! - A layer frame is decided once, at its first packet; its other packets
//!   follow that decision, so frames are forwarded whole or not at all.
//!
//! Each drop says which frame (VP9 picture id, or DD frame number) and why,
//! so the downtrack can hide the sequence numbers (and, for whole VP9
//! pictures dropped by temporal layer, the picture id).

mod forwarded_frames;

use super::dependency_descriptor::{Dti, FrameInfo, TemplateStructure};
use super::vp9::Vp9Descriptor;
use forwarded_frames::ForwardedFrames;

/// Spatial and temporal layer ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layers {
    pub spatial: u8,
    pub temporal: u8,
}

impl Layers {
    pub const fn new(spatial: u8, temporal: u8) -> Self {
        Layers { spatial, temporal }
    }

    fn within(self, other: Layers) -> bool {
        self.spatial <= other.spatial && self.temporal <= other.temporal
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// No keyframe seen yet: nothing is decodable.
    WaitingForKeyframe,
    /// Spatial layer above the one forwarded: the picture itself is still
    /// forwarded in its lower layers.
    SpatialAbove,
    /// Temporal layer above the one forwarded (for VP9 the whole picture,
    /// so its picture id goes too).
    TemporalAbove,
    /// Dependency descriptor: the frame is not part of the decode target
    /// being forwarded.
    NotInDecodeTarget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// VP9 picture id (0 if absent) or DD frame number.
    pub frame: u16,
    pub layers: Layers,
    pub reason: DropReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Forward, with this RTP marker.
    Forward { marker: bool },
    Drop(Dropped),
}

/// What the two formats say about switching at a frame.
enum Gate<'a> {
    Vp9 { predicted: bool, switching_up: bool },
    Dd { dtis: &'a [Dti], fdiffs: &'a [u16], structure: &'a TemplateStructure, active: u32 },
}

struct Packet {
    timestamp: u32,
    frame: u16,
    layers: Layers,
    start: bool,
    end: bool,
    marker: bool,
    keyframe: bool,
}

/// Spatial ids kept per picture (VP9 has 3 bits of them; DD up to 3).
const SPATIAL_IDS: usize = 8;

/// The per-downtrack state: target, current layers, and the decisions for
/// the picture in progress. Fixed size; no clock.
#[derive(Debug, Clone)]
pub struct SvcFilter {
    target: Layers,
    current: Option<Layers>,
    picture: Option<u32>,
    decided: [Option<Result<(), DropReason>>; SPATIAL_IDS],
    /// The last packet came with a dependency descriptor.
    dd: bool,
    /// VP9: the last forwarded layer frame had U=1, so the next picture
    /// may add temporal layers.
    up_switch_ready: bool,
    /// DD: frame numbers forwarded lately, so a switch frame is taken only
    /// if what it references was forwarded (§A.4.4: "a decodable Frame").
    forwarded: ForwardedFrames,
}

impl SvcFilter {
    pub fn new(target: Layers) -> Self {
        SvcFilter { target, current: None, picture: None, decided: [None; SPATIAL_IDS], dd: false, up_switch_ready: false, forwarded: ForwardedFrames::default() }
    }

    /// The layers the allocator (or the subscriber's choice) wants. Taken
    /// at the next switch point up, or the next picture down.
    pub fn set_target(&mut self, target: Layers) {
        self.target = target;
    }

    pub fn target(&self) -> Layers {
        self.target
    }

    /// The layers being forwarded; `None` before the first keyframe.
    pub fn current(&self) -> Option<Layers> {
        self.current
    }

    /// Whether only a keyframe gets the stream to its target: none seen
    /// yet, or a spatial layer to add (or, with the dependency descriptor,
    /// to shed). The caller rate-limits the PLIs.
    pub fn needs_keyframe(&self) -> bool {
        match self.current {
            None => true,
            Some(c) => c.spatial < self.target.spatial || (self.dd && c.spatial > self.target.spatial),
        }
    }

    /// A packet with a VP9 payload descriptor. Without layer indices the
    /// stream is not layered, and every packet is forwarded as it is.
    pub fn vp9(&mut self, d: &Vp9Descriptor, timestamp: u32, marker: bool) -> Decision {
        let Some(l) = d.layer else {
            return Decision::Forward { marker };
        };
        self.dd = false;
        let p = Packet {
            timestamp,
            frame: d.picture_id.map_or(0, |p| p.value()),
            layers: Layers::new(l.spatial, l.temporal),
            start: d.start_of_frame,
            end: d.end_of_frame,
            marker,
            keyframe: d.is_keyframe_start(),
        };
        self.decide(&p, Gate::Vp9 { predicted: d.inter_picture_predicted, switching_up: l.switching_up })
    }

    /// A packet with a dependency descriptor, resolved against `structure`
    /// (the uptrack's `DdContext`). A frame that is a switch point for
    /// every decode target, in the base spatial layer, counts as a
    /// keyframe.
    pub fn dd(&mut self, f: &FrameInfo, structure: &TemplateStructure, timestamp: u32, marker: bool) -> Decision {
        self.dd = true;
        let dtis = f.dtis.as_slice();
        let p = Packet {
            timestamp,
            frame: f.frame_number,
            layers: Layers::new(f.spatial, f.temporal),
            start: f.start_of_frame,
            end: f.end_of_frame,
            marker,
            keyframe: f.start_of_frame && f.spatial == 0 && !dtis.is_empty() && dtis.iter().all(|d| *d == Dti::Switch),
        };
        self.decide(&p, Gate::Dd { dtis, fdiffs: f.fdiffs.as_slice(), structure, active: f.active_decode_targets })
    }

    fn decide(&mut self, p: &Packet, gate: Gate<'_>) -> Decision {
        // A packet of an earlier picture (reordered) is judged by the
        // current state and changes nothing.
        let late = self.picture.is_some_and(|ts| (p.timestamp.wrapping_sub(ts) as i32) < 0);
        if !late && self.picture != Some(p.timestamp) {
            self.picture = Some(p.timestamp);
            self.decided = [None; SPATIAL_IDS];
            if let (Some(c), Gate::Vp9 { .. }) = (self.current.as_mut(), &gate) {
                c.spatial = c.spatial.min(self.target.spatial);
                c.temporal = c.temporal.min(self.target.temporal);
                if std::mem::take(&mut self.up_switch_ready) {
                    c.temporal = c.temporal.max(self.target.temporal);
                }
            }
        }
        let slot = usize::from(p.layers.spatial).min(SPATIAL_IDS - 1);
        if !late && p.start && p.keyframe {
            self.current = Some(self.target);
            self.decided = [None; SPATIAL_IDS];
        }
        let verdict = match self.decided[slot].filter(|_| !late) {
            Some(v) => v,
            None => {
                if p.start && !late {
                    self.raise(p, &gate);
                }
                let v = self.judge(p, &gate);
                if !late && self.current.is_some() {
                    self.decided[slot] = Some(v);
                    match (p.start, v, &gate) {
                        (true, Ok(()), Gate::Vp9 { switching_up, .. }) => self.up_switch_ready = *switching_up,
                        (_, Ok(()), Gate::Dd { .. }) => self.forwarded.insert(p.frame),
                        _ => {}
                    }
                }
                v
            }
        };
        match verdict {
            Ok(()) => {
                let top = self.top_spatial(&gate);
                Decision::Forward { marker: p.marker || (p.end && p.layers.spatial == top) }
            }
            Err(reason) => Decision::Drop(Dropped { frame: p.frame, layers: p.layers, reason }),
        }
    }

    /// Whether the frame is part of what is being forwarded.
    fn judge(&self, p: &Packet, gate: &Gate<'_>) -> Result<(), DropReason> {
        let Some(cur) = self.current else { return Err(DropReason::WaitingForKeyframe) };
        match gate {
            Gate::Vp9 { .. } if p.layers.temporal > cur.temporal => Err(DropReason::TemporalAbove),
            Gate::Vp9 { .. } if p.layers.spatial > cur.spatial => Err(DropReason::SpatialAbove),
            Gate::Vp9 { .. } => Ok(()),
            Gate::Dd { dtis, structure, active, .. } => {
                let dt = structure.decode_target_for(cur.spatial, cur.temporal, *active);
                match dtis.get(dt) {
                    Some(d) if *d != Dti::NotPresent => Ok(()),
                    _ => Err(DropReason::NotInDecodeTarget),
                }
            }
        }
    }

    /// The spatial layer whose frame ends the picture for this subscriber.
    fn top_spatial(&self, gate: &Gate<'_>) -> u8 {
        let Some(cur) = self.current else { return 0 };
        match gate {
            Gate::Vp9 { .. } => cur.spatial,
            Gate::Dd { structure, active, .. } => {
                structure.decode_target_layers(structure.decode_target_for(cur.spatial, cur.temporal, *active)).0
            }
        }
    }

    /// Moves `current` towards the target where this frame allows it.
    fn raise(&mut self, p: &Packet, gate: &Gate<'_>) {
        let refs_forwarded = match gate {
            Gate::Dd { fdiffs, .. } => fdiffs.iter().all(|d| self.forwarded.contains(p.frame.wrapping_sub(*d))),
            Gate::Vp9 { .. } => true,
        };
        let Some(cur) = self.current.as_mut() else { return };
        let target = self.target;
        match gate {
            Gate::Vp9 { predicted, .. } => {
                let l = p.layers;
                if !predicted && Some(l.spatial) == cur.spatial.checked_add(1) && l.spatial <= target.spatial && l.temporal <= cur.temporal {
                    cur.spatial = l.spatial;
                }
            }
            Gate::Dd { dtis, structure, active, .. } => {
                if *cur == target || !refs_forwarded {
                    return;
                }
                // The best decode target within the target this frame lets
                // us switch to.
                let best = dtis
                    .iter()
                    .enumerate()
                    .filter(|(dt, d)| **d == Dti::Switch && active.checked_shr(*dt as u32).unwrap_or(0) & 1 == 1)
                    .map(|(dt, _)| structure.decode_target_layers(dt))
                    .map(|(s, t)| Layers::new(s, t))
                    .filter(|l| l.within(target))
                    .max_by_key(|l| (l.spatial, l.temporal));
                if let Some(b) = best {
                    let going_down = !cur.within(target);
                    let going_up = cur.within(b) && *cur != b;
                    if going_down || going_up {
                        *cur = b;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
