//! Transport-wide congestion control feedback (RTPFB fmt 15,
//! draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1).
//!
//! The FCI is a fixed 8-byte head (base sequence number, packet status
//! count, 24-bit reference time in 64 ms ticks, feedback packet count), then
//! 16-bit packet status chunks, then one receive delta (250 us ticks) per
//! packet reported received. Parsing validates the whole FCI once, without
//! allocating, and then hands out an infallible iterator over it.

mod chunk;
mod write;

pub use write::{write_twcc, write_twcc_prefix, TwccWritten};

use chunk::{delta_size, Chunk, LARGE_DELTA, NOT_RECEIVED, SMALL_DELTA};

use super::{RtcpError, PT_RTPFB};

/// Feedback message type of transport-cc within RTPFB.
pub const FMT_TWCC: u8 = 15;
/// Unit of the reference time field.
pub const REFERENCE_TICK_US: i64 = 64_000;
/// Unit of a receive delta.
pub const DELTA_TICK_US: i64 = 250;
/// The 24-bit reference time repeats after this long (about 12.4 days);
/// consumers compare reference times of successive feedbacks modulo it.
pub const REFERENCE_WRAP_US: i64 = REFERENCE_TICK_US << 24;
/// Most packet statuses one feedback may carry. The status count is chosen
/// by the peer; libwebrtc never reports more than half the sequence space at
/// once (anything wider is ambiguous), so neither do we, and we refuse more.
pub const MAX_STATUS_COUNT: u16 = 1 << 15;

/// Length of the fixed FCI head before the first chunk.
const FCI_HEAD_LEN: usize = 8;

const MALFORMED: RtcpError = RtcpError::Malformed {
    packet_type: PT_RTPFB,
    fmt: FMT_TWCC,
};

/// One packet's fate in a feedback message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketStatus {
    NotReceived,
    /// `delta_us` is the arrival time relative to the previous packet
    /// reported received in this message, or to the reference time for the
    /// first one. It may be negative (reordering) and is a multiple of 250 us.
    Received {
        delta_us: i64,
    },
}

/// A validated transport-cc FCI; [`TwccFeedback::packets`] walks its statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwccFeedback<'a> {
    pub base_seq: u16,
    /// Number of statuses, 1..=[`MAX_STATUS_COUNT`].
    pub status_count: u16,
    /// The reference time, sign-extended from 24 bits, in microseconds.
    pub reference_time_us: i64,
    pub fb_count: u8,
    /// How many of the statuses say received.
    pub received: u16,
    chunks: &'a [u8],
    deltas: &'a [u8],
}

/// Parses the FCI of an `RtcpPacket::TransportCc`.
///
/// Every chunk and delta the status count calls for must be present; bytes
/// after the last delta (padding) are ignored, as libwebrtc does. A run or
/// vector may describe more statuses than the count; the excess is ignored.
pub fn parse_twcc(fci: &[u8]) -> Result<TwccFeedback<'_>, RtcpError> {
    let head = fci.first_chunk::<FCI_HEAD_LEN>().ok_or(MALFORMED)?;
    let base_seq = u16::from_be_bytes([head[0], head[1]]);
    let status_count = u16::from_be_bytes([head[2], head[3]]);
    // Shift the 24 bits to the top of an i32 and back to sign-extend them.
    let reference_ticks = i32::from_be_bytes([head[4], head[5], head[6], 0]) >> 8;
    let fb_count = head[7];
    // libwebrtc refuses empty feedback too: it says nothing.
    if status_count == 0 {
        return Err(MALFORMED);
    }
    if status_count > MAX_STATUS_COUNT {
        return Err(RtcpError::TooMany {
            what: "TWCC packet statuses",
            count: usize::from(status_count),
        });
    }

    // One pass over the chunks (not the statuses: a run chunk stands for up
    // to 8191) finds where the deltas start and how many bytes they take.
    let mut pos = FCI_HEAD_LEN;
    let mut covered = 0u16;
    let mut delta_len = 0usize;
    let mut received = 0u16;
    while covered < status_count {
        let word = fci.get(pos..pos + 2).ok_or(MALFORMED)?;
        pos += 2;
        let chunk = Chunk::from_word(u16::from_be_bytes([word[0], word[1]]));
        let used = chunk.len().min(status_count - covered);
        if let Some(symbol) = chunk.run_symbol() {
            if used > 0 {
                let size = delta_size(symbol).ok_or(MALFORMED)?;
                delta_len += usize::from(used) * size;
                if symbol != NOT_RECEIVED {
                    received += used;
                }
            }
        } else {
            for i in 0..used {
                let symbol = chunk.symbol(i);
                delta_len += delta_size(symbol).ok_or(MALFORMED)?;
                if symbol != NOT_RECEIVED {
                    received += 1;
                }
            }
        }
        covered += used;
    }
    let deltas = fci.get(pos..pos + delta_len).ok_or(MALFORMED)?;
    Ok(TwccFeedback {
        base_seq,
        status_count,
        reference_time_us: i64::from(reference_ticks) * REFERENCE_TICK_US,
        fb_count,
        received,
        chunks: &fci[FCI_HEAD_LEN..pos],
        deltas,
    })
}

impl<'a> TwccFeedback<'a> {
    /// Every reported packet in sequence order: `status_count` items from `base_seq` (wrapping).
    pub fn packets(&self) -> TwccPackets<'a> {
        TwccPackets {
            chunks: self.chunks,
            deltas: self.deltas,
            chunk: Chunk::EMPTY,
            in_chunk: 0,
            seq: self.base_seq,
            left: self.status_count,
        }
    }

    /// Like [`packets`](Self::packets), with each received packet's arrival
    /// time on the feedback sender's clock (reference time plus the deltas so far).
    pub fn arrivals(&self) -> impl Iterator<Item = (u16, Option<i64>)> + 'a {
        let mut at = self.reference_time_us;
        self.packets().map(move |(seq, status)| match status {
            PacketStatus::NotReceived => (seq, None),
            PacketStatus::Received { delta_us } => {
                at += delta_us;
                (seq, Some(at))
            }
        })
    }
}

/// Iterator over the statuses of a validated feedback.
#[derive(Debug, Clone)]
pub struct TwccPackets<'a> {
    chunks: &'a [u8],
    deltas: &'a [u8],
    chunk: Chunk,
    in_chunk: u16,
    seq: u16,
    left: u16,
}

impl Iterator for TwccPackets<'_> {
    type Item = (u16, PacketStatus);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        while self.in_chunk >= self.chunk.len() {
            let Some((word, rest)) = self.chunks.split_first_chunk::<2>() else {
                // parse_twcc checked the chunks cover the count; stop rather than trust it blindly.
                self.left = 0;
                return None;
            };
            self.chunks = rest;
            self.chunk = Chunk::from_word(u16::from_be_bytes(*word));
            self.in_chunk = 0;
        }
        let symbol = self.chunk.symbol(self.in_chunk);
        self.in_chunk += 1;
        let status = match symbol {
            NOT_RECEIVED => PacketStatus::NotReceived,
            SMALL_DELTA => {
                let (&d, rest) = self.deltas.split_first()?;
                self.deltas = rest;
                PacketStatus::Received {
                    delta_us: i64::from(d) * DELTA_TICK_US,
                }
            }
            LARGE_DELTA => {
                let (d, rest) = self.deltas.split_first_chunk::<2>()?;
                self.deltas = rest;
                PacketStatus::Received {
                    delta_us: i64::from(i16::from_be_bytes(*d)) * DELTA_TICK_US,
                }
            }
            _ => {
                self.left = 0;
                return None;
            }
        };
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        self.left -= 1;
        Some((seq, status))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left)))
    }
}

#[cfg(test)]
pub(crate) mod tests;
