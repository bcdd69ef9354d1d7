//! An uptrack lives on the shard that owns its publisher. It decrypts once,
//! keeps receive statistics (for RR) and decides where packets go.

use std::time::{Duration, Instant};

use crate::msg::{CodecKind, MediaKind, ShardId, UptrackSpec};
use crate::rtp::{codec, ReceiveStats};

/// Keyframe requests closer together than this are merged: a burst of new
/// viewers should cost the publisher one keyframe, not one each.
const PLI_INTERVAL: Duration = Duration::from_millis(300);

pub struct Uptrack {
    pub spec: UptrackSpec,
    pub ssrc: Option<u32>,
    pub stats: ReceiveStats,
    /// Remote shards with subscribers, valid for `routes_epoch`.
    pub remote_shards: Vec<ShardId>,
    pub routes_epoch: u64,
    pub last_pli: Option<Instant>,
    pub pli_pending: bool,
    pub active_reported: bool,
    /// Admin mute: packets are counted and dropped here, before fan-out.
    pub muted: bool,
}

impl Uptrack {
    pub fn new(spec: UptrackSpec) -> Self {
        Uptrack {
            ssrc: spec.ssrc,
            stats: ReceiveStats::new(spec.clock_rate),
            remote_shards: Vec::new(),
            routes_epoch: u64::MAX,
            last_pli: None,
            pli_pending: false,
            active_reported: false,
            muted: false,
            spec,
        }
    }

    pub fn is_keyframe(&self, payload: &[u8]) -> bool {
        if self.spec.kind != MediaKind::Video {
            return false;
        }
        match self.spec.codec {
            CodecKind::Vp8 => codec::vp8_is_keyframe(payload),
            CodecKind::H264 => codec::h264_is_keyframe(payload),
            _ => false,
        }
    }

    /// Whether a PLI may go out now; clears the pending flag when it may.
    pub fn take_pli(&mut self, now: Instant) -> bool {
        if !self.pli_pending {
            return false;
        }
        if self.last_pli.is_some_and(|t| now.duration_since(t) < PLI_INTERVAL) {
            return false;
        }
        self.pli_pending = false;
        self.last_pli = Some(now);
        true
    }
}
