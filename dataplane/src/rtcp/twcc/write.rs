//! Writing transport-cc feedback: plan the longest message that fits, then
//! write it. Both passes run the same chunk encoder over the same input, so
//! the planned size is exactly the written size.

use super::chunk::{ChunkEncoder, LARGE_DELTA, NOT_RECEIVED, SMALL_DELTA};
use super::{DELTA_TICK_US, FCI_HEAD_LEN, FMT_TWCC, MAX_STATUS_COUNT, REFERENCE_TICK_US};
use crate::rtcp::{
    wire::{put32, put_header, reserve, MAX_PACKET_LEN},
    RtcpError, PT_RTPFB,
};

/// Common header, sender SSRC, media SSRC, then the FCI head.
const PACKET_HEAD_LEN: usize = 12 + FCI_HEAD_LEN;
const DELTA_TICKS_PER_REFERENCE_TICK: i64 = REFERENCE_TICK_US / DELTA_TICK_US;

/// What [`write_twcc_prefix`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwccWritten {
    /// Bytes written to `out`: a whole RTCP packet, zero-padded to 32 bits.
    pub len: usize,
    /// Statuses reported from `base_seq` on; a follow-up message starts at
    /// `base_seq + statuses`.
    pub statuses: u16,
    /// Entries of `packets` consumed.
    pub packets: usize,
}

/// Writes one transport-cc feedback packet (RTCP header included) reporting
/// every sequence number from `base_seq` to the last entry of `packets`.
///
/// `packets` holds `(seq, arrival time in us)` in increasing sequence order
/// (wrapping past 65535 is fine); `None` and sequence numbers skipped between
/// entries are reported not received. Arrival times share a clock with
/// `reference_time_us`, which is rounded down to 64 ms; each is rounded down
/// to 250 us without the error accumulating. Consecutive received packets
/// must arrive within about ±8.19 s of each other, the first within that of
/// the reference time; the padding is zeros, without the P bit.
pub fn write_twcc(
    out: &mut [u8],
    sender_ssrc: u32,
    media_ssrc: u32,
    base_seq: u16,
    fb_count: u8,
    reference_time_us: i64,
    packets: &[(u16, Option<i64>)],
) -> Result<usize, RtcpError> {
    if packets.is_empty() {
        return Err(EMPTY);
    }
    let reference_ticks = reference_time_us.div_euclid(REFERENCE_TICK_US);
    let entries = packets.iter().copied();
    let plan = plan(base_seq, reference_ticks, entries.clone(), MAX_PACKET_LEN);
    if let Some(stop) = plan.stop {
        return Err(stop.into_error(MAX_PACKET_LEN));
    }
    reserve(out, plan.written.len)?;
    let head = Head {
        sender_ssrc,
        media_ssrc,
        base_seq,
        fb_count,
        reference_ticks,
    };
    encode(out, &head, entries, &plan);
    Ok(plan.written.len)
}

/// Like [`write_twcc`], but writes the longest prefix of `packets` that fits
/// `out` and whose arrival deltas are representable, for a caller that sends
/// the rest in a follow-up message. Fails only if not even the first entry
/// fits, or the entries are out of order.
pub fn write_twcc_prefix<I>(
    out: &mut [u8],
    sender_ssrc: u32,
    media_ssrc: u32,
    base_seq: u16,
    fb_count: u8,
    reference_time_us: i64,
    packets: I,
) -> Result<TwccWritten, RtcpError>
where
    I: IntoIterator<Item = (u16, Option<i64>)>,
    I::IntoIter: Clone,
{
    let entries = packets.into_iter();
    let reference_ticks = reference_time_us.div_euclid(REFERENCE_TICK_US);
    let limit = out.len().min(MAX_PACKET_LEN);
    let plan = plan(base_seq, reference_ticks, entries.clone(), limit);
    match plan.stop {
        Some(Stop::OutOfOrder) => return Err(Stop::OutOfOrder.into_error(limit)),
        Some(stop) if plan.written.packets == 0 => return Err(stop.into_error(limit)),
        None if plan.written.packets == 0 => return Err(EMPTY),
        _ => {}
    }
    let head = Head {
        sender_ssrc,
        media_ssrc,
        base_seq,
        fb_count,
        reference_ticks,
    };
    encode(out, &head, entries, &plan);
    Ok(plan.written)
}

const EMPTY: RtcpError = RtcpError::InvalidArgument("TWCC feedback needs at least one packet");

/// Why a plan ended before the input did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    OutOfOrder,
    /// An arrival too far from the previous one (or from the reference time).
    DeltaRange,
    /// The next entry would make this many statuses.
    TooManyStatuses(usize),
    /// The next entry would make the packet this long.
    TooLong(usize),
}

impl Stop {
    fn into_error(self, limit: usize) -> RtcpError {
        match self {
            Stop::OutOfOrder => {
                RtcpError::InvalidArgument("TWCC packets must be in increasing sequence order")
            }
            Stop::DeltaRange => {
                RtcpError::InvalidArgument("TWCC arrival delta does not fit in 16 bits of 250 us")
            }
            Stop::TooManyStatuses(count) => RtcpError::TooMany {
                what: "TWCC packet statuses",
                count,
            },
            Stop::TooLong(need) => RtcpError::BufferTooSmall { need, have: limit },
        }
    }
}

struct Head {
    sender_ssrc: u32,
    media_ssrc: u32,
    base_seq: u16,
    fb_count: u8,
    reference_ticks: i64,
}

struct Plan {
    written: TwccWritten,
    chunks: usize,
    stop: Option<Stop>,
}

fn packet_len(chunks: usize, delta_bytes: usize) -> usize {
    (PACKET_HEAD_LEN + 2 * chunks + delta_bytes + 3) & !3
}

/// Walks `packets` turning each entry into the statuses it adds.
struct Statuses {
    base_seq: u16,
    /// Offset from `base_seq` of the next status.
    next: usize,
    /// Arrival of the previous received packet, in 250 us ticks.
    prev_ticks: i64,
}

/// One entry's contribution: `gap` not-received statuses, then `symbol`.
struct Step {
    gap: usize,
    symbol: u8,
    delta: i64,
    ticks: i64,
}

impl Statuses {
    fn new(base_seq: u16, reference_ticks: i64) -> Self {
        Statuses {
            base_seq,
            next: 0,
            prev_ticks: reference_ticks * DELTA_TICKS_PER_REFERENCE_TICK,
        }
    }

    fn step(&self, seq: u16, arrival: Option<i64>) -> Result<Step, Stop> {
        let offset = usize::from(seq.wrapping_sub(self.base_seq));
        if offset < self.next {
            return Err(Stop::OutOfOrder);
        }
        if offset >= usize::from(MAX_STATUS_COUNT) {
            return Err(Stop::TooManyStatuses(offset + 1));
        }
        let gap = offset - self.next;
        let Some(at) = arrival else {
            return Ok(Step {
                gap,
                symbol: NOT_RECEIVED,
                delta: 0,
                ticks: self.prev_ticks,
            });
        };
        let ticks = at.div_euclid(DELTA_TICK_US);
        let delta = ticks - self.prev_ticks;
        let symbol = if (0..=0xff).contains(&delta) {
            SMALL_DELTA
        } else if i16::try_from(delta).is_ok() {
            LARGE_DELTA
        } else {
            return Err(Stop::DeltaRange);
        };
        Ok(Step {
            gap,
            symbol,
            delta,
            ticks,
        })
    }

    fn commit(&mut self, step: &Step) {
        self.next += step.gap + 1;
        self.prev_ticks = step.ticks;
    }
}

fn delta_bytes(symbol: u8) -> usize {
    match symbol {
        SMALL_DELTA => 1,
        LARGE_DELTA => 2,
        _ => 0,
    }
}

/// Sizes the longest prefix of `packets` that fits in `limit` bytes.
fn plan(
    base_seq: u16,
    reference_ticks: i64,
    packets: impl Iterator<Item = (u16, Option<i64>)>,
    limit: usize,
) -> Plan {
    let mut statuses = Statuses::new(base_seq, reference_ticks);
    let mut enc = ChunkEncoder::new();
    let mut deltas = 0usize;
    let mut plan = Plan {
        written: TwccWritten {
            len: 0,
            statuses: 0,
            packets: 0,
        },
        chunks: 0,
        stop: None,
    };
    for (i, (seq, arrival)) in packets.enumerate() {
        let step = match statuses.step(seq, arrival) {
            Ok(s) => s,
            Err(stop) => {
                plan.stop = Some(stop);
                break;
            }
        };
        let mut trial = enc;
        for _ in 0..step.gap {
            trial.push(NOT_RECEIVED, &mut |_| {});
        }
        trial.push(step.symbol, &mut |_| {});
        let trial_deltas = deltas + delta_bytes(step.symbol);
        let len = packet_len(trial.chunks_if_finished(), trial_deltas);
        if len > limit {
            plan.stop = Some(Stop::TooLong(len));
            break;
        }
        enc = trial;
        deltas = trial_deltas;
        statuses.commit(&step);
        plan.written = TwccWritten {
            len,
            // At most MAX_STATUS_COUNT, checked by `step`.
            statuses: statuses.next as u16,
            packets: i + 1,
        };
        plan.chunks = enc.chunks_if_finished();
    }
    plan
}

/// Writes the packet `plan` sized; `out` holds at least `plan.written.len` bytes.
fn encode(
    out: &mut [u8],
    head: &Head,
    packets: impl Iterator<Item = (u16, Option<i64>)>,
    plan: &Plan,
) {
    let total = plan.written.len;
    put_header(out, FMT_TWCC, PT_RTPFB, total);
    put32(out, 4, head.sender_ssrc);
    put32(out, 8, head.media_ssrc);
    out[12..14].copy_from_slice(&head.base_seq.to_be_bytes());
    out[14..16].copy_from_slice(&plan.written.statuses.to_be_bytes());
    // Two's complement truncated to 24 bits is the signed field, and the
    // wrap of a clock that outlives 2^24 ticks.
    let reference = (head.reference_ticks as u32) & 0x00ff_ffff;
    put32(out, 16, (reference << 8) | u32::from(head.fb_count));

    let (chunk_area, delta_area) = out[PACKET_HEAD_LEN..total].split_at_mut(2 * plan.chunks);
    let mut chunk_pos = 0;
    let mut emit = |word: u16| {
        if let Some(slot) = chunk_area.get_mut(chunk_pos..chunk_pos + 2) {
            slot.copy_from_slice(&word.to_be_bytes());
        }
        chunk_pos += 2;
    };
    let mut delta_pos = 0;
    let mut statuses = Statuses::new(head.base_seq, head.reference_ticks);
    let mut enc = ChunkEncoder::new();
    for (seq, arrival) in packets.take(plan.written.packets) {
        // The plan already walked these entries successfully.
        let Ok(step) = statuses.step(seq, arrival) else {
            break;
        };
        for _ in 0..step.gap {
            enc.push(NOT_RECEIVED, &mut emit);
        }
        enc.push(step.symbol, &mut emit);
        let n = delta_bytes(step.symbol);
        if let Some(slot) = delta_area.get_mut(delta_pos..delta_pos + n) {
            // `step` checked the delta fits the symbol's width.
            match n {
                1 => slot[0] = step.delta as u8,
                2 => slot.copy_from_slice(&(step.delta as i16).to_be_bytes()),
                _ => {}
            }
        }
        delta_pos += n;
        statuses.commit(&step);
    }
    enc.finish(&mut emit);
    debug_assert_eq!(chunk_pos, 2 * plan.chunks);
    if let Some(padding) = delta_area.get_mut(delta_pos..) {
        padding.fill(0);
    }
}
