//! What a shard's sans-IO core produces while handling input: datagrams to
//! send, batches for other shards, and events for the controlplane. The I/O
//! loop drains it once per receive batch (or when it grows past a threshold).

use std::net::SocketAddr;

use crate::msg::{Event, ShardId};
use crate::shard::peer::{MediaBatch, PeerMsg};

/// Room reserved per outgoing datagram: a full MTU plus SRTP overhead.
pub const SLOT: usize = 1536;

/// An ICE-TCP connection, unique within the process for its lifetime (the
/// shard that serves it numbers it; a handed-over connection is renumbered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Where a packet goes (and where one came from): a UDP peer on the shared
/// media socket, or an ICE-TCP connection (RFC 6544) with RFC 4571 framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dest {
    Udp(SocketAddr),
    Tcp(ConnId),
}

impl From<SocketAddr> for Dest {
    fn from(a: SocketAddr) -> Self {
        Dest::Udp(a)
    }
}

pub struct Outbox {
    /// Contiguous datagram storage, `SLOT` bytes per entry; grows to the
    /// steady-state high-water mark and is then reused without allocating.
    data: Vec<u8>,
    /// (length, destination) per queued datagram.
    entries: Vec<(usize, Dest)>,
    /// How many entries go to TCP connections, so an all-UDP flush skips the
    /// TCP pass with one compare.
    tcp_entries: usize,
    /// ICE-TCP connections to close (their session is gone).
    pub tcp_close: Vec<ConnId>,
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
            tcp_entries: 0,
            tcp_close: Vec::new(),
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

    pub fn commit(&mut self, len: usize, dst: impl Into<Dest>) {
        debug_assert!(len <= SLOT);
        let dst = dst.into();
        if matches!(dst, Dest::Tcp(_)) {
            self.tcp_entries += 1;
        }
        self.entries.push((len.min(SLOT), dst));
    }

    /// Copy `bytes` into a new slot (slow paths: STUN replies, DTLS).
    pub fn push(&mut self, bytes: &[u8], dst: impl Into<Dest>) -> bool {
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

    pub fn datagram(&self, i: usize) -> (&[u8], Dest) {
        let (len, dst) = self.entries[i];
        (&self.data[i * SLOT..i * SLOT + len], dst)
    }

    /// Some queued datagram goes to a TCP connection.
    pub fn has_tcp(&self) -> bool {
        self.tcp_entries > 0
    }

    /// Queued datagrams for TCP connections, in order.
    pub fn tcp_datagrams(&self) -> impl Iterator<Item = (&[u8], ConnId)> + '_ {
        let n = if self.tcp_entries == 0 { 0 } else { self.entries.len() };
        (0..n).filter_map(move |i| match self.entries[i] {
            (len, Dest::Tcp(c)) => Some((&self.data[i * SLOT..i * SLOT + len], c)),
            _ => None,
        })
    }

    pub fn clear_datagrams(&mut self) {
        self.entries.clear();
        self.tcp_entries = 0;
    }

    pub fn media_for(&mut self, shard: ShardId) -> &mut MediaBatch {
        self.media[shard].get_or_insert_with(MediaBatch::default)
    }

    pub fn has_messages(&self) -> bool {
        !self.peer.is_empty() || self.media.iter().any(Option::is_some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_keep_their_transport() {
        let udp: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut out = Outbox::new(1);
        assert!(out.push(b"to udp", udp));
        assert!(!out.has_tcp());
        assert!(out.push(b"to tcp 7", Dest::Tcp(ConnId(7))));
        assert!(out.push(b"to udp again", Dest::Udp(udp)));
        assert!(out.push(b"to tcp 8", Dest::Tcp(ConnId(8))));
        assert!(out.has_tcp());
        assert_eq!(out.datagram(0), (&b"to udp"[..], Dest::Udp(udp)));
        let tcp: Vec<_> = out.tcp_datagrams().collect();
        assert_eq!(tcp, vec![(&b"to tcp 7"[..], ConnId(7)), (&b"to tcp 8"[..], ConnId(8))]);
        out.clear_datagrams();
        assert!(!out.has_tcp());
        assert_eq!(out.tcp_datagrams().count(), 0);
        assert!(!out.push(&[0; SLOT + 1], Dest::Tcp(ConnId(1))), "oversized never queued");
        assert!(!out.has_tcp());
    }
}
