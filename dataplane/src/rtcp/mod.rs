//! Sans-IO RTCP (RFC 3550, 4585, 5104, REMB) compound parsing and packet writers.
//!
//! Parsing borrows the buffer and yields typed packets whose lists are lazy
//! iterators over the wire bytes; writers fill caller buffers.

mod compound;
mod lists;
mod ntp;
mod report;
mod wire;
mod write_feedback;
mod write_report;
pub mod twcc;

pub use compound::{iter_compound, Compound};
pub use lists::{FirEntries, LostSequences, NackItems, SsrcList};
pub use ntp::{ntp_from_system_time, ntp_middle32};
pub use report::{ReportBlock, ReportBlocks, REPORT_BLOCK_LEN};
pub use write_feedback::{write_fir, write_nack, write_pli, write_remb};
pub use write_report::{write_bye, write_rr, write_sdes_cname, write_sr};

pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;
/// Transport-layer feedback (RFC 4585 §6.2).
pub const PT_RTPFB: u8 = 205;
/// Payload-specific feedback (RFC 4585 §6.3).
pub const PT_PSFB: u8 = 206;

/// One packet out of a compound RTCP packet. Bodies exclude the common
/// header and any padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    SenderReport {
        ssrc: u32,
        ntp: u64,
        rtp_ts: u32,
        packet_count: u32,
        octet_count: u32,
        reports: ReportBlocks<'a>,
    },
    ReceiverReport {
        ssrc: u32,
        reports: ReportBlocks<'a>,
    },
    /// The SDES chunks, undecoded.
    Sdes(&'a [u8]),
    Bye {
        ssrcs: SsrcList<'a>,
    },
    /// Generic NACK (RTPFB fmt 1).
    Nack {
        sender_ssrc: u32,
        media_ssrc: u32,
        items: NackItems<'a>,
    },
    /// Picture Loss Indication (PSFB fmt 1).
    Pli {
        sender_ssrc: u32,
        media_ssrc: u32,
    },
    /// Full Intra Request (PSFB fmt 4, RFC 5104 §4.3.1): entries are (ssrc, seq_nr).
    Fir {
        sender_ssrc: u32,
        entries: FirEntries<'a>,
    },
    /// Receiver Estimated Max Bitrate (PSFB fmt 15 with "REMB").
    Remb {
        sender_ssrc: u32,
        bitrate_bps: u64,
        ssrcs: SsrcList<'a>,
    },
    /// Transport-wide congestion control feedback (RTPFB fmt 15), not decoded here.
    TransportCc {
        sender_ssrc: u32,
        media_ssrc: u32,
        fci: &'a [u8],
    },
    /// Anything else; `fmt` is the 5-bit count/format field.
    Other {
        packet_type: u8,
        fmt: u8,
        body: &'a [u8],
    },
}

/// Errors from RTCP parsing and writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("{0} bytes left, too few for an RTCP header")]
    TooShort(usize),
    #[error("RTCP version {0}, expected 2")]
    BadVersion(u8),
    #[error("length field says {declared} bytes, {available} available")]
    BadLength { declared: usize, available: usize },
    #[error("padding count {0} does not fit the packet")]
    BadPadding(u8),
    #[error("packet type {packet_type} fmt {fmt}: body does not match its counts")]
    Malformed { packet_type: u8, fmt: u8 },
    #[error("output buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall { need: usize, have: usize },
    #[error("{what}: {count} is more than the packet can carry")]
    TooMany { what: &'static str, count: usize },
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
}

#[cfg(test)]
mod known_bytes;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod proptests_twcc;
