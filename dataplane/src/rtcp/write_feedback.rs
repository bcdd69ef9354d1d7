//! Writers for RTCP feedback: PLI, FIR, generic NACK and REMB.

use super::{
    wire::{put32, put_header, reserve, MAX_PACKET_LEN},
    RtcpError, PT_PSFB, PT_RTPFB,
};

/// Picture Loss Indication (RFC 4585 §6.3.1): 12 bytes, no FCI.
pub fn write_pli(out: &mut [u8], sender_ssrc: u32, media_ssrc: u32) -> Result<usize, RtcpError> {
    reserve(out, 12)?;
    put_header(out, 1, PT_PSFB, 12);
    put32(out, 4, sender_ssrc);
    put32(out, 8, media_ssrc);
    Ok(12)
}

/// Full Intra Request (RFC 5104 §4.3.1) for one media source.
///
/// The common media SSRC field is zero as the RFC requires; the target goes in the FCI.
pub fn write_fir(
    out: &mut [u8],
    sender_ssrc: u32,
    media_ssrc: u32,
    seq_nr: u8,
) -> Result<usize, RtcpError> {
    reserve(out, 20)?;
    put_header(out, 4, PT_PSFB, 20);
    put32(out, 4, sender_ssrc);
    put32(out, 8, 0);
    put32(out, 12, media_ssrc);
    out[16] = seq_nr;
    out[17..20].fill(0);
    Ok(20)
}

/// Generic NACK (RFC 4585 §6.2.1) packing `lost` into (pid, blp) pairs.
///
/// `lost` may be unsorted and hold duplicates. Order is taken relative to
/// `lost[0]` so that a list spanning the 16-bit wrap still packs tightly.
/// No allocation: each pair is found by a scan, O(len * pairs), fine for the
/// tens of losses a NACK carries.
pub fn write_nack(
    out: &mut [u8],
    sender_ssrc: u32,
    media_ssrc: u32,
    lost: &[u16],
) -> Result<usize, RtcpError> {
    let Some(&anchor) = lost.first() else {
        return Err(RtcpError::InvalidArgument(
            "NACK needs at least one sequence number",
        ));
    };
    let key = |s: u16| i32::from(s.wrapping_sub(anchor) as i16);
    let mut pos = 12;
    // Exclusive lower bound on keys still to be packed.
    let mut covered = i32::MIN;
    while let Some(pid_key) = lost.iter().map(|&s| key(s)).filter(|&k| k > covered).min() {
        let mut blp = 0u16;
        for k in lost.iter().map(|&s| key(s)) {
            if k > pid_key && k <= pid_key + 16 {
                blp |= 1 << (k - pid_key - 1);
            }
        }
        if pos + 4 > MAX_PACKET_LEN {
            return Err(RtcpError::TooMany {
                what: "NACK pairs",
                count: (pos - 12) / 4 + 1,
            });
        }
        // Past the end of `out` keep counting, so the error reports the full size needed.
        if let Some(pair) = out.get_mut(pos..pos + 4) {
            let pid = anchor.wrapping_add(pid_key as u16);
            pair[..2].copy_from_slice(&pid.to_be_bytes());
            pair[2..].copy_from_slice(&blp.to_be_bytes());
        }
        pos += 4;
        covered = pid_key + 16;
    }
    reserve(out, pos)?;
    put_header(out, 1, PT_RTPFB, pos);
    put32(out, 4, sender_ssrc);
    put32(out, 8, media_ssrc);
    Ok(pos)
}

const MANTISSA_BITS: u32 = 18;

/// REMB (draft-alvestrand-rmcat-remb §2.2) for up to 255 SSRCs.
///
/// The bitrate is rounded down to an 18-bit mantissa and 6-bit exponent, so
/// the peer never reads an estimate above what we measured.
pub fn write_remb(
    out: &mut [u8],
    sender_ssrc: u32,
    bitrate_bps: u64,
    ssrcs: &[u32],
) -> Result<usize, RtcpError> {
    let num = u8::try_from(ssrcs.len()).map_err(|_| RtcpError::TooMany {
        what: "REMB SSRCs",
        count: ssrcs.len(),
    })?;
    let total = 20 + 4 * ssrcs.len();
    reserve(out, total)?;
    let exp = (64 - bitrate_bps.leading_zeros()).saturating_sub(MANTISSA_BITS);
    let mantissa = (bitrate_bps >> exp) as u32;
    put_header(out, 15, PT_PSFB, total);
    put32(out, 4, sender_ssrc);
    put32(out, 8, 0);
    out[12..16].copy_from_slice(b"REMB");
    put32(out, 16, (u32::from(num) << 24) | (exp << 18) | mantissa);
    for (i, &s) in ssrcs.iter().enumerate() {
        put32(out, 20 + 4 * i, s);
    }
    Ok(total)
}
