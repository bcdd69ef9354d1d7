//! A downtrack lives on its subscriber's shard. It gives the subscriber a
//! stream of its own: our SSRC, a contiguous sequence space starting at a
//! random point, its own timestamp base and its payload type.

use std::time::Instant;

use crate::msg::{DowntrackSpec, MediaKind};
use crate::rtp::{self, HeaderFields};
use crate::shard::peer::MediaItem;

pub struct Downtrack {
    pub spec: DowntrackSpec,
    started: bool,
    /// Video must start on a keyframe or the decoder shows garbage until the next one.
    pub waiting_keyframe: bool,
    seq_offset: u16,
    ts_offset: u32,
    base_seq: u16,
    base_ts: u32,
    pub packets: u32,
    pub octets: u32,
    /// Last timestamp sent and when, to extrapolate the SR's RTP time.
    pub last_ts: u32,
    pub last_sent: Option<Instant>,
    /// When this downtrack last asked for a keyframe while waiting for one.
    last_keyframe_request: Option<Instant>,
}

/// A waiting video downtrack asks again this often: a PLI can be ignored by
/// the publisher, or its keyframe can arrive before this viewer has keys.
const KEYFRAME_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

pub enum Rewrite {
    /// Header written: this many bytes, payload follows.
    Header(usize),
    Skip,
}

impl Downtrack {
    pub fn new(spec: DowntrackSpec) -> Self {
        Downtrack {
            waiting_keyframe: spec.kind == MediaKind::Video,
            spec,
            started: false,
            seq_offset: 0,
            ts_offset: 0,
            base_seq: rand::random::<u16>() & 0x7fff,
            base_ts: rand::random::<u32>(),
            packets: 0,
            octets: 0,
            last_ts: 0,
            last_sent: None,
            last_keyframe_request: None,
        }
    }

    /// Writes the rewritten RTP header for `item` into `out` (the payload is
    /// appended by the caller), or says to skip the packet.
    pub fn rewrite(&mut self, item: &MediaItem, out: &mut [u8], now: Instant) -> Rewrite {
        if self.waiting_keyframe {
            if !item.keyframe {
                return Rewrite::Skip;
            }
            self.waiting_keyframe = false;
        }
        if !self.started {
            self.started = true;
            self.seq_offset = self.base_seq.wrapping_sub(item.sequence);
            self.ts_offset = self.base_ts.wrapping_sub(item.timestamp);
        }
        let fields = HeaderFields {
            marker: item.marker,
            payload_type: self.spec.payload_type,
            sequence: item.sequence.wrapping_add(self.seq_offset),
            timestamp: item.timestamp.wrapping_add(self.ts_offset),
            ssrc: self.spec.ssrc,
        };
        match rtp::write_header(out, &fields) {
            Ok(n) => {
                self.packets = self.packets.wrapping_add(1);
                self.octets = self.octets.wrapping_add(item.len);
                self.last_ts = fields.timestamp;
                self.last_sent = Some(now);
                Rewrite::Header(n)
            }
            Err(_) => Rewrite::Skip,
        }
    }

    /// RTP time "now" for a Sender Report, extrapolated from the last packet.
    pub fn rtp_time_at(&self, now: Instant) -> u32 {
        match self.last_sent {
            Some(t) => {
                let elapsed = now.saturating_duration_since(t);
                let ticks = (elapsed.as_micros() as u64 * self.spec.clock_rate as u64 / 1_000_000) as u32;
                self.last_ts.wrapping_add(ticks)
            }
            None => self.last_ts,
        }
    }

    /// Whether a waiting downtrack should ask for a keyframe now (and
    /// remembers that it did).
    pub fn keyframe_request_due(&mut self, now: Instant) -> bool {
        if !self.waiting_keyframe || self.last_keyframe_request.is_some_and(|t| now.duration_since(t) < KEYFRAME_RETRY) {
            return false;
        }
        self.last_keyframe_request = Some(now);
        true
    }

    pub fn has_sent(&self) -> bool {
        self.last_sent.is_some()
    }
}
