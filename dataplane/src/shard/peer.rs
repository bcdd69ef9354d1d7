//! Messages between shards (over the glommio channel mesh).

use std::net::SocketAddr;

use crate::msg::{SessionId, ShardId, TrackId};

/// One uptrack packet after SRTP unprotect, as a downtrack needs it.
#[derive(Clone, Copy, Debug)]
pub struct MediaItem {
    pub track: TrackId,
    pub sequence: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub keyframe: bool,
    /// Payload range in `MediaBatch::data`.
    pub start: u32,
    pub len: u32,
}

/// All packets one receive batch produced for one destination shard: one
/// message per shard per batch, never one per subscriber.
#[derive(Debug, Default)]
pub struct MediaBatch {
    pub items: Vec<MediaItem>,
    pub data: Vec<u8>,
}

impl MediaBatch {
    pub fn push(&mut self, mut item: MediaItem, payload: &[u8]) {
        item.start = self.data.len() as u32;
        item.len = payload.len() as u32;
        self.data.extend_from_slice(payload);
        self.items.push(item);
    }

    pub fn payload(&self, item: &MediaItem) -> &[u8] {
        let start = item.start as usize;
        self.data.get(start..start + item.len as usize).unwrap_or(&[])
    }
}

#[derive(Debug)]
pub enum PeerMsg {
    /// The sender claimed this session (first valid STUN Binding).
    Claimed { session: SessionId, shard: ShardId },
    /// A datagram that arrived on the wrong shard's socket, for its owner.
    Steered { src: SocketAddr, datagram: Vec<u8> },
    /// Uptrack media for this shard's downtracks.
    Media(MediaBatch),
    /// A downtrack on the sender wants a keyframe from this shard's uptrack.
    KeyframeRequest(TrackId),
}
