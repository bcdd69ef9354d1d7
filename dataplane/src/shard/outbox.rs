//! What a shard's sans-IO core produces while handling input: datagrams to
//! send, batches for other shards, and events for the controlplane. The I/O
//! loop drains it once per receive batch (or when it grows past a threshold).

use std::net::SocketAddr;

use crate::msg::{Event, ShardId};
use crate::shard::peer::{MediaBatch, PeerMsg};

/// Room reserved per outgoing datagram: a full MTU plus SRTP overhead.
pub const SLOT: usize = 1536;

pub struct Outbox {
    /// Contiguous datagram storage, `SLOT` bytes per entry; grows to the
    /// steady-state high-water mark and is then reused without allocating.
    data: Vec<u8>,
    /// (length, destination) per queued datagram.
    entries: Vec<(usize, SocketAddr)>,
    /// Media for other shards, one batch per destination shard.
    pub media: Vec<Option<MediaBatch>>,
    /// Control messages for other shards.
    pub peer: Vec<(ShardId, PeerMsg)>,
    pub events: Vec<Event>,
}

impl Outbox {
    pub fn new(shards: usize) -> Self {
        Outbox {
            data: Vec::new(),
            entries: Vec::with_capacity(256),
            media: (0..shards).map(|_| None).collect(),
            peer: Vec::new(),
            events: Vec::new(),
        }
    }

    /// A zeroed-length slot to write the next datagram into; call `commit` after.
    pub fn slot(&mut self) -> &mut [u8] {
        let start = self.entries.len() * SLOT;
        if self.data.len() < start + SLOT {
            self.data.resize(start + SLOT, 0);
        }
        &mut self.data[start..start + SLOT]
    }

    pub fn commit(&mut self, len: usize, dst: SocketAddr) {
        debug_assert!(len <= SLOT);
        self.entries.push((len.min(SLOT), dst));
    }

    /// Copy `bytes` into a new slot (slow paths: STUN replies, DTLS).
    pub fn push(&mut self, bytes: &[u8], dst: SocketAddr) -> bool {
        if bytes.len() > SLOT {
            return false;
        }
        let slot = self.slot();
        slot[..bytes.len()].copy_from_slice(bytes);
        self.commit(bytes.len(), dst);
        true
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn datagram(&self, i: usize) -> (&[u8], SocketAddr) {
        let (len, dst) = self.entries[i];
        (&self.data[i * SLOT..i * SLOT + len], dst)
    }

    pub fn clear_datagrams(&mut self) {
        self.entries.clear();
    }

    pub fn media_for(&mut self, shard: ShardId) -> &mut MediaBatch {
        self.media[shard].get_or_insert_with(MediaBatch::default)
    }

    pub fn has_messages(&self) -> bool {
        !self.peer.is_empty() || self.media.iter().any(Option::is_some)
    }
}
