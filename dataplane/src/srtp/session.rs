//! [`SrtpContext`]: one direction of one DTLS association, and its per-packet paths.

use super::cm::CmKey;
use super::gcm::GcmKey;
use super::header::{parse_rtcp_ssrc, parse_rtp, RTCP_HEADER_LEN};
use super::kdf::{session_keys, SessionKeys};
use super::profile::{MasterKey, SrtpProfile, CM_TAG_LEN, GCM_TAG_LEN, SRTCP_INDEX_LEN};
use super::streams::{StreamTable, DEFAULT_MAX_STREAMS};
use super::SrtpError;

/// The E flag of the SRTCP index word: payload is encrypted.
const SRTCP_E_FLAG: u32 = 0x8000_0000;
const SRTCP_INDEX_MASK: u32 = 0x7fff_ffff;

/// Precomputed per-session-key state for both packet kinds.
///
/// Kept inline (no Box): a context exists per association direction, and the hot path
/// should not chase a pointer to reach its key schedule.
// `repr(u8)`: the tag leads, so `SrtpContext::HEAD_LINES` covers it.
#[allow(clippy::large_enum_variant)]
#[repr(u8)]
enum Cipher {
    Cm { rtp: CmKey, rtcp: CmKey },
    Gcm { rtp: GcmKey, rtcp: GcmKey },
}

/// One direction of one DTLS association: all SSRCs sent (or received) on it.
///
/// Sans-IO and in place: every call works on the caller's buffer and allocates only
/// when an SSRC is seen for the first time.
/// `repr(C)`, small fields first: what `warm_protect` reads (the stream
/// table's header and the cipher's tag) sits in the context's first
/// `HEAD_LINES` cache lines, which the fan-out asks for a stage earlier,
/// while the keys (most of the size) follow.
#[repr(C)]
pub struct SrtpContext {
    profile: SrtpProfile,
    streams: StreamTable,
    cipher: Cipher,
}

impl core::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    pub fn new(master: &MasterKey) -> Result<Self, SrtpError> {
        Self::with_max_streams(master, DEFAULT_MAX_STREAMS)
    }

    /// Like [`Self::new`], with a cap on the SSRCs remembered (least recently used go first).
    pub fn with_max_streams(master: &MasterKey, max_streams: usize) -> Result<Self, SrtpError> {
        let rtp = session_keys(master, false);
        let rtcp = session_keys(master, true);
        Self::from_session_keys(master.profile, &rtp, &rtcp, max_streams)
    }

    /// Skips key derivation: the RFC 7714 vectors are given as session keys.
    pub(crate) fn from_session_keys(
        profile: SrtpProfile,
        rtp: &SessionKeys,
        rtcp: &SessionKeys,
        max_streams: usize,
    ) -> Result<Self, SrtpError> {
        let cipher = match profile {
            SrtpProfile::Aes128CmHmacSha1_80 => Cipher::Cm {
                rtp: CmKey::new(rtp),
                rtcp: CmKey::new(rtcp),
            },
            SrtpProfile::AeadAes128Gcm => Cipher::Gcm {
                rtp: GcmKey::new(rtp)?,
                rtcp: GcmKey::new(rtcp)?,
            },
        };
        Ok(Self {
            profile,
            cipher,
            streams: StreamTable::new(max_streams),
        })
    }

    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// How many SSRCs this context currently tracks.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// The rollover counter of `ssrc`'s highest SRTP index so far, if it was seen.
    pub fn rollover_counter(&self, ssrc: u32) -> Option<u32> {
        let pos = self.streams.find(ssrc)?;
        let max = self.streams.peek(Some(pos)).rtp.max()?;
        Some((max >> 16) as u32)
    }

    /// Overrides the last SRTCP index sent for `ssrc` (the next packet uses `index + 1`).
    #[cfg(test)]
    pub(crate) fn set_last_srtcp_index(&mut self, ssrc: u32, index: u32) {
        let pos = self.streams.find(ssrc);
        if let Some(s) = self.streams.touch(pos, ssrc, true) {
            s.rtcp_sent = index;
        }
    }

    /// Forgets the streams that carried nothing since the previous call and whose
    /// SSRC `keep` does not name (the ones still negotiated); returns how many went.
    /// The shard calls it every few seconds with the session's current SSRCs, which
    /// bounds a sending context by what is negotiated without ever dropping a live
    /// stream's rollover counter.
    pub fn reap_idle(&mut self, keep: impl Fn(u32) -> bool) -> usize {
        self.streams.reap_idle(keep)
    }

    /// Cache lines from the start of a context (or of an `Option` of one)
    /// that hold everything `warm_protect` reads; see the layout test.
    pub const HEAD_LINES: usize = 3;

    /// Asks for what `protect_rtp` of the stream sent last will read: its
    /// stream entry and the RTP key (see `crate::prefetch`).
    #[inline]
    pub fn warm_protect(&self) {
        self.streams.warm();
        match &self.cipher {
            Cipher::Cm { rtp, .. } => crate::prefetch::value(rtp),
            Cipher::Gcm { rtp, .. } => crate::prefetch::value(rtp),
        }
    }

    /// buf[..len] holds a plaintext RTP packet; protect in place and append the tag;
    /// returns the new length. Err(BufferTooSmall) if buf.len() < len + overhead.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let out_len = len
            .checked_add(self.profile.rtp_overhead())
            .filter(|&n| n <= buf.len())
            .ok_or(SrtpError::BufferTooSmall)?;
        let hdr = parse_rtp(&buf[..len])?;
        let pos = self.streams.find(hdr.ssrc);
        if pos.is_none() && self.streams.len() >= self.streams.cap() {
            // Checked before encrypting: refusing afterwards would leave the buffer
            // encrypted under an index nobody remembers.
            return Err(SrtpError::TooManyStreams);
        }
        // A retransmission may reuse an old sequence number: estimate its index the way
        // the receiver will, so the ROC also rolls forward when the sequence wraps.
        let index = self
            .streams
            .peek(pos)
            .rtp
            .estimate_rtp_index(hdr.seq)
            .ok_or(SrtpError::Replay)?;
        match &self.cipher {
            Cipher::Cm { rtp, .. } => {
                rtp.apply_keystream(hdr.ssrc, index, &mut buf[hdr.len..len]);
                let roc = ((index >> 16) as u32).to_be_bytes();
                let tag = rtp.tag(&buf[..len], &roc);
                buf[len..out_len].copy_from_slice(&tag);
            }
            Cipher::Gcm { rtp, .. } => {
                let (header, body) = buf.split_at_mut(hdr.len);
                let payload_len = len - hdr.len;
                let nonce = rtp.rtp_nonce(hdr.ssrc, index);
                let tag = rtp.seal(nonce, header, &mut body[..payload_len])?;
                body[payload_len..payload_len + GCM_TAG_LEN].copy_from_slice(&tag);
            }
        }
        if let Some(s) = self.streams.touch(pos, hdr.ssrc, false) {
            s.rtp.advance(index);
        }
        Ok(out_len)
    }

    /// buf[..len] holds an SRTP packet; authenticate, check replay, decrypt in place;
    /// returns plaintext length. On error no state changes; under GCM the buffer
    /// contents are then unspecified.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let packet = buf.get_mut(..len).ok_or(SrtpError::Malformed)?;
        let body_len = len
            .checked_sub(self.profile.tag_len())
            .ok_or(SrtpError::Malformed)?;
        let hdr = parse_rtp(&packet[..body_len])?;
        let pos = self.streams.find(hdr.ssrc);
        let window = self.streams.peek(pos).rtp;
        let index = window
            .estimate_rtp_index(hdr.seq)
            .ok_or(SrtpError::Replay)?;
        // Cheap rejection before any crypto; the window itself moves only after auth.
        window.check(index)?;
        match &self.cipher {
            Cipher::Cm { rtp, .. } => {
                let roc = ((index >> 16) as u32).to_be_bytes();
                let (authenticated, tag) = packet.split_at_mut(body_len);
                rtp.verify(authenticated, &roc, tag)?;
                rtp.apply_keystream(hdr.ssrc, index, &mut authenticated[hdr.len..]);
            }
            Cipher::Gcm { rtp, .. } => {
                let (header, body) = packet.split_at_mut(hdr.len);
                rtp.open(rtp.rtp_nonce(hdr.ssrc, index), header, body)?;
            }
        }
        if let Some(s) = self.streams.touch(pos, hdr.ssrc, true) {
            s.rtp.commit(index);
        }
        Ok(body_len)
    }

    /// buf[..len] holds a plaintext (compound) RTCP packet; encrypt it in place (E flag
    /// set), append the SRTCP index word and tag; returns the new length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let out_len = len
            .checked_add(self.profile.rtcp_overhead())
            .filter(|&n| n <= buf.len())
            .ok_or(SrtpError::BufferTooSmall)?;
        if len < RTCP_HEADER_LEN {
            return Err(SrtpError::Malformed);
        }
        let ssrc = parse_rtcp_ssrc(&buf[..len])?;
        let pos = self.streams.find(ssrc);
        let stream = self.streams.touch(pos, ssrc, false).ok_or(SrtpError::TooManyStreams)?;
        // 2^31 SRTCP packets under one key would need a rekey (RFC 3711 §9.2); at RTCP
        // rates that is years, so the counter simply wraps.
        let index = stream.rtcp_sent.wrapping_add(1) & SRTCP_INDEX_MASK;
        stream.rtcp_sent = index;
        let word = (SRTCP_E_FLAG | index).to_be_bytes();
        match &self.cipher {
            Cipher::Cm { rtcp, .. } => {
                // Layout: header | ciphertext | E|index | tag (RFC 3711 §3.4).
                rtcp.apply_keystream(ssrc, u64::from(index), &mut buf[RTCP_HEADER_LEN..len]);
                buf[len..len + SRTCP_INDEX_LEN].copy_from_slice(&word);
                let tag = rtcp.tag(&buf[..len + SRTCP_INDEX_LEN], &[]);
                buf[len + SRTCP_INDEX_LEN..out_len].copy_from_slice(&tag);
            }
            Cipher::Gcm { rtcp, .. } => {
                // Layout: header | ciphertext | tag | E|index (RFC 7714 §9).
                let mut aad = [0u8; RTCP_HEADER_LEN + SRTCP_INDEX_LEN];
                aad[..RTCP_HEADER_LEN].copy_from_slice(&buf[..RTCP_HEADER_LEN]);
                aad[RTCP_HEADER_LEN..].copy_from_slice(&word);
                let nonce = rtcp.rtcp_nonce(ssrc, index);
                let tag = rtcp.seal(nonce, &aad, &mut buf[RTCP_HEADER_LEN..len])?;
                buf[len..len + GCM_TAG_LEN].copy_from_slice(&tag);
                buf[len + GCM_TAG_LEN..out_len].copy_from_slice(&word);
            }
        }
        Ok(out_len)
    }

    /// buf[..len] holds an SRTCP packet; authenticate, check replay, decrypt in place;
    /// returns the plaintext RTCP length. On error no state changes.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let packet = buf.get_mut(..len).ok_or(SrtpError::Malformed)?;
        let trailer = self.profile.rtcp_overhead();
        let body_len = len
            .checked_sub(trailer)
            .filter(|&n| n >= RTCP_HEADER_LEN)
            .ok_or(SrtpError::Malformed)?;
        let ssrc = parse_rtcp_ssrc(packet)?;
        let word_at = match self.cipher {
            Cipher::Cm { .. } => body_len,
            Cipher::Gcm { .. } => len - SRTCP_INDEX_LEN,
        };
        let word: [u8; SRTCP_INDEX_LEN] = packet
            .get(word_at..word_at + SRTCP_INDEX_LEN)
            .and_then(|w| w.try_into().ok())
            .ok_or(SrtpError::Malformed)?;
        let word_value = u32::from_be_bytes(word);
        let encrypted = word_value & SRTCP_E_FLAG != 0;
        let index = word_value & SRTCP_INDEX_MASK;
        let pos = self.streams.find(ssrc);
        self.streams.peek(pos).rtcp.check(u64::from(index))?;
        match &self.cipher {
            Cipher::Cm { rtcp, .. } => {
                let (authenticated, tag) = packet.split_at_mut(len - CM_TAG_LEN);
                rtcp.verify(authenticated, &[], tag)?;
                if encrypted {
                    rtcp.apply_keystream(
                        ssrc,
                        u64::from(index),
                        &mut authenticated[RTCP_HEADER_LEN..body_len],
                    );
                }
            }
            Cipher::Gcm { rtcp, .. } => {
                // Unencrypted SRTCP under GCM authenticates the whole packet as AAD;
                // browsers never send it, and supporting it would need a copy.
                if !encrypted {
                    return Err(SrtpError::Unsupported);
                }
                let mut aad = [0u8; RTCP_HEADER_LEN + SRTCP_INDEX_LEN];
                aad[..RTCP_HEADER_LEN].copy_from_slice(&packet[..RTCP_HEADER_LEN]);
                aad[RTCP_HEADER_LEN..].copy_from_slice(&word);
                let nonce = rtcp.rtcp_nonce(ssrc, index);
                rtcp.open(nonce, &aad, &mut packet[RTCP_HEADER_LEN..word_at])?;
            }
        }
        if let Some(s) = self.streams.touch(pos, ssrc, true) {
            s.rtcp.commit(u64::from(index));
        }
        Ok(body_len)
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// `crate::prefetch::head` with n lines from any start covers at least
    /// the first 64 * (n - 1) + 1 bytes.
    #[test]
    fn what_warm_protect_reads_is_in_the_head() {
        let covered = 64 * (SrtpContext::HEAD_LINES - 1);
        assert!(std::mem::offset_of!(SrtpContext, streams) + std::mem::size_of::<StreamTable>() <= covered);
        assert!(std::mem::offset_of!(SrtpContext, cipher) < covered, "the cipher's tag");
    }
}
