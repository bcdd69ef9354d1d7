//! Messages between shards (over the glommio channel mesh).

use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use crate::msg::{SessionId, ShardId, TrackId};

/// One uptrack packet after SRTP unprotect (and RTX restore), as a
/// downtrack needs it.
#[derive(Clone, Copy, Debug)]
pub struct MediaItem {
    pub track: TrackId,
    /// The simulcast layer (0 lowest); None for a single-stream track.
    pub layer: Option<u8>,
    /// The publisher's sequence number, extended by the uptrack.
    pub ext_seq: u64,
    pub timestamp: u32,
    pub marker: bool,
    pub keyframe: bool,
    /// The payload is VP8 (downtracks read its descriptor on simulcast tracks).
    pub vp8: bool,
    /// The payload is VP9 (downtracks filter its spatial/temporal layers).
    pub vp9: bool,
    /// The payload is AV1 (its layers come from the dependency descriptor).
    pub av1: bool,
    /// The payload is RFC 2198 RED (the uptrack's `red_payload_type`).
    pub red: bool,
    /// A simulcast layer no subscriber on the destination needs: only its
    /// size travels (`len`), for the stream allocators' rates.
    pub pruned: bool,
    /// Carried header extensions (`forward::extensions`), then the payload,
    /// in `MediaBatch::data`.
    pub start: u32,
    pub carried_len: u16,
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
    pub fn push(&mut self, mut item: MediaItem, carried: &[u8], payload: &[u8]) {
        item.start = self.data.len() as u32;
        item.carried_len = carried.len().min(usize::from(u16::MAX)) as u16;
        item.len = payload.len() as u32;
        self.data.extend_from_slice(&carried[..usize::from(item.carried_len)]);
        self.data.extend_from_slice(payload);
        self.items.push(item);
    }

    /// A packet of a layer the destination does not need: its size only.
    pub fn push_size(&mut self, mut item: MediaItem, payload_len: usize) {
        item.start = self.data.len() as u32;
        item.carried_len = 0;
        item.len = payload_len as u32;
        item.pruned = true;
        self.items.push(item);
    }

    pub fn carried(&self, item: &MediaItem) -> &[u8] {
        let start = item.start as usize;
        self.data.get(start..start + usize::from(item.carried_len)).unwrap_or(&[])
    }

    pub fn payload(&self, item: &MediaItem) -> &[u8] {
        if item.pruned {
            return &[];
        }
        let start = item.start as usize + usize::from(item.carried_len);
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
    /// The simulcast layers of `track` the sender's subscribers need
    /// (`forward::layer_demand`); the others reach it as sizes only.
    LayerDemand { track: TrackId, mask: crate::forward::layer_demand::LayerMask },
    /// An ICE-TCP connection whose first STUN Binding names a session this
    /// shard owns (or is pinned to). Descriptors are process-wide, so the
    /// socket itself moves; dropping the message closes it.
    TcpHandover(TcpHandover),
}

#[derive(Debug)]
pub struct TcpHandover {
    pub fd: OwnedFd,
    pub peer: SocketAddr,
    /// What the sender had read: the first frame (with its length prefix)
    /// and anything after it.
    pub pending: Vec<u8>,
    /// Hand-overs so far; bounded so claims in flight cannot bounce a
    /// connection between shards forever.
    pub hops: u8,
}
