//! RFC 4571 framing for ICE-TCP (RFC 6544): every STUN, DTLS, RTP or RTCP
//! packet on the stream is preceded by its length as a 16-bit big-endian
//! integer. Sans-IO: `FrameReader` reassembles frames from whatever the
//! socket returned, `SendQueue` holds framed packets until the socket takes
//! them. Both work in fixed, reused buffers.

use std::ops::Range;

use thiserror::Error;

/// Largest frame accepted: the same bound as a UDP datagram
/// (`socket::RECV_SLOT`). WebRTC packets stay near the path MTU, so a bigger
/// length means the peer is not speaking RFC 4571 (or is desynchronised).
pub const MAX_FRAME: usize = crate::shard::socket::RECV_SLOT;

/// Bytes of the length prefix.
pub const PREFIX: usize = 2;

/// Receive buffer: several frames per read, and always room for one whole
/// frame after compaction.
const READ_BUF: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FramingError {
    #[error("frame length {0} is not a WebRTC packet (0 or above {MAX_FRAME})")]
    BadLength(usize),
    #[error("{0} bytes do not fit the reassembly buffer")]
    Overflow(usize),
}

/// One complete frame's payload, as a range of the reader's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    start: usize,
    len: usize,
}

impl Frame {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn range(&self) -> Range<usize> {
        self.start..self.start + self.len
    }
}

/// Reassembles frames across arbitrary read boundaries.
pub struct FrameReader {
    buf: Box<[u8]>,
    /// First unconsumed byte.
    start: usize,
    /// End of the bytes read so far.
    end: usize,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameReader {
    pub fn new() -> Self {
        FrameReader { buf: vec![0; READ_BUF].into_boxed_slice(), start: 0, end: 0 }
    }

    /// Where the next read goes. Never empty: a partial frame is at most
    /// `PREFIX + MAX_FRAME` bytes, and the buffer is larger than that once
    /// consumed bytes are moved out of the way.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start > 0 && (self.start == self.end || self.buf.len() - self.end < PREFIX + MAX_FRAME) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into `spare()`.
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Appends bytes read elsewhere (a connection handed over by another
    /// shard arrives with what that shard had already read).
    pub fn extend(&mut self, bytes: &[u8]) -> Result<(), FramingError> {
        if bytes.len() > self.buf.len() - (self.end - self.start) {
            return Err(FramingError::Overflow(bytes.len()));
        }
        let spare = self.spare();
        if spare.len() < bytes.len() {
            // Compaction only happens when needed for a whole frame; force it.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
        Ok(())
    }

    /// The next complete frame, if one has arrived. A bad length is fatal
    /// for the connection: there is no way to find the next frame boundary.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        let avail = &self.buf[self.start..self.end];
        let [hi, lo, ..] = *avail else { return Ok(None) };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len == 0 || len > MAX_FRAME {
            return Err(FramingError::BadLength(len));
        }
        if avail.len() < PREFIX + len {
            return Ok(None);
        }
        let frame = Frame { start: self.start + PREFIX, len };
        self.start += PREFIX + len;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(Some(frame))
    }

    /// The payload of a frame returned by the last `next_frame` (mutable, so
    /// SRTP can decrypt in place). Valid until the next `spare`/`extend`.
    pub fn frame_mut(&mut self, f: Frame) -> &mut [u8] {
        self.buf.get_mut(f.range()).unwrap_or(&mut [])
    }

    /// The frame `f` (with its prefix) and every byte after it: what another
    /// shard needs to carry on reading this stream where this one stopped.
    pub fn rest_from(&self, f: Frame) -> Vec<u8> {
        let mut v = Vec::with_capacity(PREFIX + f.len + self.buffered());
        v.extend_from_slice(&(f.len as u16).to_be_bytes());
        v.extend_from_slice(self.buf.get(f.range()).unwrap_or(&[]));
        v.extend_from_slice(&self.buf[self.start..self.end]);
        v
    }

    /// Bytes read but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }
}

/// Framed packets waiting for the socket, bounded in bytes. Whole frames
/// only: a packet that does not fit is refused (and counted by the caller),
/// so a slow reader costs its own packets and never blocks the shard.
pub struct SendQueue {
    buf: Vec<u8>,
    /// First byte the socket has not taken yet.
    head: usize,
    cap: usize,
}

impl SendQueue {
    /// `cap` bounds the queued bytes; the buffer grows to it only as needed.
    pub fn new(cap: usize) -> Self {
        SendQueue { buf: Vec::new(), head: 0, cap: cap.max(PREFIX + MAX_FRAME) }
    }

    /// Queues one packet with its length prefix; false (nothing queued) if
    /// it is empty, too long for a frame, or the queue is full.
    pub fn push(&mut self, packet: &[u8]) -> bool {
        if packet.is_empty() || packet.len() > usize::from(u16::MAX) {
            return false;
        }
        if self.len() + PREFIX + packet.len() > self.cap {
            return false;
        }
        if self.head > 0 && self.buf.len() + PREFIX + packet.len() > self.cap {
            // Reclaim what the socket already took before growing.
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.extend_from_slice(&(packet.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(packet);
        true
    }

    /// What the socket should take next.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    /// The socket took `n` bytes of `pending()`.
    pub fn consume(&mut self, n: usize) {
        self.head = (self.head + n).min(self.buf.len());
        if self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
        }
    }

    /// Queued bytes.
    pub fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    /// Feeds `stream` in pieces of the given sizes; returns the frames seen.
    fn feed(reader: &mut FrameReader, stream: &[u8], cuts: &[usize]) -> Result<Vec<Vec<u8>>, FramingError> {
        let mut out = Vec::new();
        let mut off = 0;
        let mut cuts = cuts.iter().copied().cycle();
        while off < stream.len() {
            let spare = reader.spare();
            let n = cuts.next().unwrap_or(1).max(1).min(spare.len()).min(stream.len() - off);
            spare[..n].copy_from_slice(&stream[off..off + n]);
            reader.filled(n);
            off += n;
            while let Some(f) = reader.next_frame()? {
                out.push(reader.frame_mut(f).to_vec());
            }
        }
        Ok(out)
    }

    #[test]
    fn one_read_many_frames() {
        let mut stream = frame(b"\x00\x01stun");
        stream.extend(frame(&[0x80; 1200]));
        stream.extend(frame(&[22; 3]));
        let mut r = FrameReader::new();
        let got = feed(&mut r, &stream, &[stream.len()]).unwrap();
        assert_eq!(got, vec![b"\x00\x01stun".to_vec(), vec![0x80; 1200], vec![22; 3]]);
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn bad_lengths_are_fatal() {
        for bogus in [0u16, MAX_FRAME as u16 + 1, u16::MAX] {
            let mut r = FrameReader::new();
            let err = feed(&mut r, &bogus.to_be_bytes(), &[2]).unwrap_err();
            assert_eq!(err, FramingError::BadLength(usize::from(bogus)));
        }
        // Detected as soon as the prefix is complete, before any payload.
        let mut r = FrameReader::new();
        assert_eq!(feed(&mut r, &[0xff], &[1]).unwrap(), Vec::<Vec<u8>>::new());
        assert!(feed(&mut r, &[0xff], &[1]).is_err());
    }

    #[test]
    fn handover_carries_the_frame_and_the_rest() {
        let mut stream = frame(b"first");
        stream.extend(frame(b"second"));
        stream.extend_from_slice(&[0, 9, b'p']); // a partial third frame
        let mut r = FrameReader::new();
        let spare = r.spare();
        spare[..stream.len()].copy_from_slice(&stream);
        r.filled(stream.len());
        let f = r.next_frame().unwrap().unwrap();
        let rest = r.rest_from(f);
        assert_eq!(rest, stream);
        let mut other = FrameReader::new();
        other.extend(&rest).unwrap();
        let f = other.next_frame().unwrap().unwrap();
        assert_eq!(other.frame_mut(f), b"first");
        let f = other.next_frame().unwrap().unwrap();
        assert_eq!(other.frame_mut(f), b"second");
        assert_eq!(other.next_frame().unwrap(), None);
        assert_eq!(other.buffered(), 3);
    }

    #[test]
    fn send_queue_is_bounded_by_whole_frames() {
        let mut q = SendQueue::new(4 * 1024);
        let mut queued = 0;
        while q.push(&[7; 1000]) {
            queued += 1;
        }
        assert_eq!(queued, 4, "4 x 1002 bytes fit in 4 KiB, a fifth does not");
        assert!(!q.push(&[]), "empty packets are never queued");
        // The socket takes part of a frame; the rest stays in order.
        q.consume(1500);
        assert_eq!(q.len(), 4 * 1002 - 1500);
        assert!(q.push(&[8; 1000]), "room again after the socket took bytes");
        assert_eq!(q.pending().len(), 4 * 1002 - 1500 + 1002);
        let n = q.pending().len();
        assert_eq!(&q.pending()[n - 1002..n - 1000], &1000u16.to_be_bytes());
        q.consume(n);
        assert!(q.is_empty());
    }

    proptest! {
        /// Any packets, cut at any points, come out whole and in order.
        #[test]
        fn reassembly_across_any_split(
            packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..=MAX_FRAME), 1..12),
            cuts in prop::collection::vec(1usize..3000, 1..20),
        ) {
            let stream: Vec<u8> = packets.iter().flat_map(|p| frame(p)).collect();
            let mut r = FrameReader::new();
            let got = feed(&mut r, &stream, &cuts).unwrap();
            prop_assert_eq!(got, packets);
            prop_assert_eq!(r.buffered(), 0);
        }

        /// Random bytes yield frames or an error, never a panic, and every
        /// frame returned is within bounds.
        #[test]
        fn random_streams_never_panic(
            stream in prop::collection::vec(any::<u8>(), 0..6000),
            cuts in prop::collection::vec(1usize..2000, 1..8),
        ) {
            let mut r = FrameReader::new();
            if let Ok(frames) = feed(&mut r, &stream, &cuts) {
                for f in frames {
                    prop_assert!(!f.is_empty() && f.len() <= MAX_FRAME);
                }
            }
        }

        /// What the queue hands to the socket, consumed in any pieces, parses
        /// back into exactly the packets it accepted.
        #[test]
        fn queue_round_trips(
            packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..1600), 1..40),
            takes in prop::collection::vec(1usize..5000, 1..10),
        ) {
            let mut q = SendQueue::new(16 * 1024);
            let mut accepted = Vec::new();
            let mut wire = Vec::new();
            let mut takes = takes.iter().copied().cycle();
            for p in &packets {
                if q.push(p) {
                    accepted.push(p.clone());
                }
                let n = takes.next().unwrap_or(1).min(q.pending().len());
                wire.extend_from_slice(&q.pending()[..n]);
                q.consume(n);
                prop_assert!(q.len() <= 16 * 1024);
            }
            wire.extend_from_slice(q.pending());
            let mut r = FrameReader::new();
            let got = feed(&mut r, &wire, &[4096]).unwrap();
            prop_assert_eq!(got, accepted);
        }
    }
}
