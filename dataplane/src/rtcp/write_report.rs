//! Writers for SR, RR, SDES (CNAME only) and BYE (RFC 3550 §6.4-6.6).

use super::{
    report::{ReportBlock, REPORT_BLOCK_LEN},
    wire::{put32, put_header, reserve},
    RtcpError, PT_BYE, PT_RR, PT_SDES, PT_SR,
};

/// The 5-bit count field caps every list in these packets.
const MAX_COUNT: usize = 31;

fn check_count(what: &'static str, count: usize) -> Result<u8, RtcpError> {
    if count > MAX_COUNT {
        return Err(RtcpError::TooMany { what, count });
    }
    Ok(count as u8)
}

fn put_blocks(out: &mut [u8], at: usize, reports: &[ReportBlock]) {
    for (i, rb) in reports.iter().enumerate() {
        let o = at + i * REPORT_BLOCK_LEN;
        rb.write(&mut out[o..o + REPORT_BLOCK_LEN]);
    }
}

/// Sender report with up to 31 report blocks.
pub fn write_sr(
    out: &mut [u8],
    ssrc: u32,
    ntp: u64,
    rtp_ts: u32,
    packet_count: u32,
    octet_count: u32,
    reports: &[ReportBlock],
) -> Result<usize, RtcpError> {
    let count = check_count("report blocks", reports.len())?;
    let total = 28 + reports.len() * REPORT_BLOCK_LEN;
    reserve(out, total)?;
    put_header(out, count, PT_SR, total);
    put32(out, 4, ssrc);
    put32(out, 8, (ntp >> 32) as u32);
    put32(out, 12, ntp as u32);
    put32(out, 16, rtp_ts);
    put32(out, 20, packet_count);
    put32(out, 24, octet_count);
    put_blocks(out, 28, reports);
    Ok(total)
}

/// Receiver report with up to 31 report blocks.
pub fn write_rr(out: &mut [u8], ssrc: u32, reports: &[ReportBlock]) -> Result<usize, RtcpError> {
    let count = check_count("report blocks", reports.len())?;
    let total = 8 + reports.len() * REPORT_BLOCK_LEN;
    reserve(out, total)?;
    put_header(out, count, PT_RR, total);
    put32(out, 4, ssrc);
    put_blocks(out, 8, reports);
    Ok(total)
}

const SDES_CNAME: u8 = 1;

/// SDES with one chunk holding a CNAME item, null-terminated and padded to 32 bits.
pub fn write_sdes_cname(out: &mut [u8], ssrc: u32, cname: &str) -> Result<usize, RtcpError> {
    let text = cname.as_bytes();
    let text_len = u8::try_from(text.len())
        .map_err(|_| RtcpError::InvalidArgument("CNAME longer than 255 bytes"))?;
    // Item (type, length, text), then at least one null octet ending the item list.
    let chunk_len = 4 + (2 + text.len() + 1).next_multiple_of(4);
    let total = 4 + chunk_len;
    reserve(out, total)?;
    put_header(out, 1, PT_SDES, total);
    put32(out, 4, ssrc);
    out[8] = SDES_CNAME;
    out[9] = text_len;
    out[10..10 + text.len()].copy_from_slice(text);
    out[10 + text.len()..total].fill(0);
    Ok(total)
}

/// BYE for up to 31 sources, without a reason.
pub fn write_bye(out: &mut [u8], ssrcs: &[u32]) -> Result<usize, RtcpError> {
    let count = check_count("BYE sources", ssrcs.len())?;
    let total = 4 + 4 * ssrcs.len();
    reserve(out, total)?;
    put_header(out, count, PT_BYE, total);
    for (i, &s) in ssrcs.iter().enumerate() {
        put32(out, 4 + 4 * i, s);
    }
    Ok(total)
}
