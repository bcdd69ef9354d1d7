//! Synthetic media: what a publisher's encoder would emit (Opus every 20 ms,
//! VP8-shaped frames at 30 fps with a keyframe every 2 s), the trailer that
//! lets a viewer measure one-way delay, and the delay histogram.

use std::time::{Duration, Instant};

use dataplane::rtp::{write_header, HeaderFields};

use crate::sdp::{Kind, PT_OPUS, PT_VP8};
use crate::simulcast::{LayerModel, RID_EXT_ID};

/// Bytes at the end of every payload: magic, stream counter, send time.
pub const TRAILER_LEN: usize = 16;
const MAGIC: [u8; 4] = *b"SFB1";

/// Monotonic nanoseconds, comparable across processes on one machine.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The send time a payload carries, if it is one of ours.
pub fn read_trailer(payload: &[u8]) -> Option<u64> {
    let t = payload.len().checked_sub(TRAILER_LEN).and_then(|at| payload.get(at..))?;
    if t[..4] != MAGIC {
        return None;
    }
    Some(u64::from_be_bytes(t[8..16].try_into().ok()?))
}

#[derive(Clone, Debug)]
pub struct MediaConfig {
    pub video_bps: u64,
    pub fps: u32,
    pub keyframe_interval: Duration,
    pub audio_bytes: usize,
    /// Fraction of video packets viewers drop on arrival (and NACK).
    pub viewer_loss: f64,
    /// Fraction of video packets publishers drop before sending (and resend when NACKed).
    pub publisher_loss: f64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            video_bps: 1_500_000,
            fps: 30,
            keyframe_interval: Duration::from_secs(2),
            audio_bytes: 100,
            viewer_loss: 0.0,
            publisher_loss: 0.0,
        }
    }
}

/// One outgoing track's generator state.
pub struct TrackGen {
    pub kind: Kind,
    pub ssrc: u32,
    pub pt: u8,
    seq: u16,
    ts: u32,
    counter: u32,
    pub next_at: Instant,
    frame_no: u64,
    last_key: Option<Instant>,
    pub force_key: bool,
    /// A simulcast layer: its own rate, keyframe size, RID extension and
    /// the VP8 descriptor's PictureID/TL0PICIDX/TID, as a browser's encoder
    /// writes them.
    pub layer: Option<LayerGen>,
}

/// What makes a video track one simulcast layer.
pub struct LayerGen {
    pub model: LayerModel,
    picture_id: u16,
    tl0picidx: u8,
}

impl LayerGen {
    pub fn new(model: LayerModel) -> Self {
        Self { model, picture_id: rand::random::<u16>() & 0x7fff, tl0picidx: rand::random() }
    }
}

/// Temporal layer of each frame in a group of four (L1T3, as libwebrtc's
/// VP8 simulcast encoder): 0, 2, 1, 2.
const TID_PATTERN: [u8; 4] = [0, 2, 1, 2];

/// Largest plaintext packet we build (RTP header + payload); leaves room
/// for the SRTP tag inside a 1500-byte slot.
pub const MAX_PACKET: usize = 1200;
const VIDEO_PAYLOAD_MAX: usize = 1160;

impl TrackGen {
    pub fn new(kind: Kind, ssrc: u32, start: Instant) -> Self {
        let pt = match kind {
            Kind::Audio => PT_OPUS,
            Kind::Video => PT_VP8,
        };
        Self {
            kind,
            ssrc,
            pt,
            seq: rand::random(),
            ts: rand::random(),
            counter: 0,
            next_at: start,
            frame_no: 0,
            last_key: None,
            force_key: true,
            layer: None,
        }
    }

    /// A video track that is one simulcast layer.
    pub fn new_layer(ssrc: u32, start: Instant, model: LayerModel) -> Self {
        let mut g = Self::new(Kind::Video, ssrc, start);
        g.layer = Some(LayerGen::new(model));
        g
    }

    pub fn interval(&self, cfg: &MediaConfig) -> Duration {
        match self.kind {
            Kind::Audio => Duration::from_millis(20),
            Kind::Video => Duration::from_nanos(1_000_000_000 / u64::from(cfg.fps.max(1))),
        }
    }

    /// Builds the packets of the frame due now, calling `emit` with each
    /// plaintext packet. Returns how many packets were built.
    pub fn frame(&mut self, now: Instant, cfg: &MediaConfig, scratch: &mut [u8; MAX_PACKET], mut emit: impl FnMut(&[u8], u16)) -> usize {
        let iv = self.interval(cfg);
        // Never burst to catch up after a stall: a real encoder drops frames.
        self.next_at = if now.saturating_duration_since(self.next_at) > Duration::from_millis(100) { now + iv } else { self.next_at + iv };
        let sizes: (usize, usize, bool) = match self.kind {
            Kind::Audio => (cfg.audio_bytes.max(TRAILER_LEN + 1), 1, false),
            Kind::Video => {
                let key = self.force_key || self.last_key.map_or(true, |k| now.duration_since(k) >= cfg.keyframe_interval);
                let fps = u64::from(cfg.fps.max(1));
                let bps = self.layer.as_ref().map_or(cfg.video_bps, |l| l.model.bps);
                let avg = (bps / 8 / fps) as usize;
                let per_key = (cfg.keyframe_interval.as_secs_f64() * fps as f64).max(2.0);
                // Keyframes are 4x an average frame; deltas shrink so the mean holds.
                let bytes = if key { avg * 4 } else { ((avg as f64 * (per_key - 4.0) / (per_key - 1.0)).max(200.0)) as usize };
                let n = bytes.div_ceil(VIDEO_PAYLOAD_MAX).max(1);
                if key {
                    self.force_key = false;
                    self.last_key = Some(now);
                }
                (bytes.div_ceil(n).max(TRAILER_LEN + 11), n, key)
            }
        };
        let (payload_len, count, key) = sizes;
        let ts_step = match self.kind {
            Kind::Audio => 960,
            Kind::Video => 90_000 / cfg.fps.max(1),
        };
        let now_ns = mono_ns();
        // Simulcast layers: this frame's temporal layer and descriptor fields.
        let vp8x = self.layer.as_mut().map(|l| {
            let tid = if key { 0 } else { TID_PATTERN[(self.frame_no % 4) as usize] };
            l.picture_id = (l.picture_id + 1) & 0x7fff;
            if tid == 0 {
                l.tl0picidx = l.tl0picidx.wrapping_add(1);
            }
            Vp8Ext { picture_id: l.picture_id, tl0picidx: l.tl0picidx, tid, width: l.model.width, height: l.model.height, rid: l.model.rid }
        });
        for i in 0..count {
            let h = HeaderFields {
                marker: self.kind == Kind::Video && i + 1 == count,
                payload_type: self.pt,
                sequence: self.seq,
                timestamp: self.ts,
                ssrc: self.ssrc,
            };
            let Ok(mut hl) = write_header(&mut scratch[..], &h) else { return i };
            if let Some(x) = &vp8x {
                hl += write_rid_extension(scratch, hl, x.rid);
            }
            let end = (hl + payload_len).min(MAX_PACKET);
            let p = &mut scratch[hl..end];
            p.fill(0x5a);
            match &vp8x {
                Some(x) => write_vp8_descriptor(p, i == 0, key, x),
                None if self.kind == Kind::Video => write_vp8_prefix(p, i == 0, key),
                None => {}
            }
            let tl = p.len() - TRAILER_LEN;
            p[tl..tl + 4].copy_from_slice(&MAGIC);
            p[tl + 4..tl + 8].copy_from_slice(&self.counter.to_be_bytes());
            p[tl + 8..].copy_from_slice(&now_ns.to_be_bytes());
            emit(&scratch[..end], self.seq);
            self.seq = self.seq.wrapping_add(1);
            self.counter = self.counter.wrapping_add(1);
        }
        self.ts = self.ts.wrapping_add(ts_step);
        self.frame_no += 1;
        count
    }
}

/// VP8 payload descriptor (RFC 7741 §4.2, no extensions) and, at the start
/// of a frame, the 3-byte frame tag; keyframes also get the start code and
/// a 640x480 size so keyframe detectors (and decoders' sniffers) agree.
fn write_vp8_prefix(p: &mut [u8], first: bool, key: bool) {
    if p.len() < 11 {
        return;
    }
    p[0] = if first { 0x10 } else { 0x00 };
    if !first {
        return;
    }
    // Frame tag: bit0 = !keyframe, version 0, show_frame = 1, partition size.
    let size: u32 = 100;
    let tag: u32 = u32::from(!key) | (1 << 4) | (size << 5);
    p[1..4].copy_from_slice(&tag.to_le_bytes()[..3]);
    if key {
        p[4..7].copy_from_slice(&[0x9d, 0x01, 0x2a]);
        p[7..9].copy_from_slice(&640u16.to_le_bytes());
        p[9..11].copy_from_slice(&480u16.to_le_bytes());
    }
}

/// A simulcast layer's per-frame descriptor fields.
struct Vp8Ext {
    picture_id: u16,
    tl0picidx: u8,
    tid: u8,
    width: u16,
    height: u16,
    rid: &'static str,
}

/// Appends the one-byte-form header extension block (RFC 8285) with the
/// rtp-stream-id element to a header of `hl` bytes without extensions, as
/// browsers send on simulcast layers; returns the bytes added.
fn write_rid_extension(buf: &mut [u8], hl: usize, rid: &str) -> usize {
    let elem = 1 + rid.len();
    let words = elem.div_ceil(4);
    let total = 4 + words * 4;
    if rid.is_empty() || rid.len() > 16 || buf.len() < hl + total {
        return 0;
    }
    buf[0] |= 0x10;
    buf[hl..hl + 2].copy_from_slice(&[0xbe, 0xde]);
    buf[hl + 2..hl + 4].copy_from_slice(&(words as u16).to_be_bytes());
    buf[hl + 4] = (RID_EXT_ID << 4) | (rid.len() as u8 - 1);
    buf[hl + 5..hl + 5 + rid.len()].copy_from_slice(rid.as_bytes());
    buf[hl + 4 + elem..hl + total].fill(0);
    total
}

/// The extended VP8 payload descriptor (RFC 7741 §4.2: X, then I with a
/// 15-bit PictureID, L with TL0PICIDX, T with TID and Y) and, on a frame's
/// first packet, the frame tag; keyframes carry the layer's size.
fn write_vp8_descriptor(p: &mut [u8], first: bool, key: bool, x: &Vp8Ext) {
    const D: usize = 6;
    if p.len() < D + 10 {
        return;
    }
    p[0] = 0x80 | if first { 0x10 } else { 0x00 };
    p[1] = 0x80 | 0x40 | 0x20;
    p[2..4].copy_from_slice(&(0x8000 | x.picture_id).to_be_bytes());
    p[4] = x.tl0picidx;
    // TID, Y (a frame that depends only on the base layer: TID 0), KEYIDX 0.
    p[5] = (x.tid << 6) | if x.tid == 0 { 0x20 } else { 0 };
    if !first {
        return;
    }
    let size: u32 = 100;
    let tag: u32 = u32::from(!key) | (1 << 4) | (size << 5);
    p[D..D + 3].copy_from_slice(&tag.to_le_bytes()[..3]);
    if key {
        p[D + 3..D + 6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
        p[D + 6..D + 8].copy_from_slice(&x.width.to_le_bytes());
        p[D + 8..D + 10].copy_from_slice(&x.height.to_le_bytes());
    }
}

/// The width a VP8 keyframe's header gives, if `payload` starts one (the
/// start code sits after the descriptor and the frame tag).
pub fn keyframe_width(payload: &[u8]) -> Option<u16> {
    let at = payload.get(..20)?.windows(3).position(|w| w == [0x9d, 0x01, 0x2a])?;
    let w = payload.get(at + 3..at + 5)?;
    Some(u16::from_le_bytes([w[0], w[1]]) & 0x3fff)
}

/// A plaintext copy of the last packets sent, to answer NACKs.
pub struct RtxCache {
    slots: Vec<(u16, u16, [u8; MAX_PACKET])>,
}

impl RtxCache {
    const N: usize = 512;
    pub fn new() -> Self {
        Self { slots: vec![(0, 0, [0u8; MAX_PACKET]); Self::N] }
    }
    pub fn put(&mut self, seq: u16, pkt: &[u8]) {
        let slot = &mut self.slots[seq as usize % Self::N];
        let n = pkt.len().min(MAX_PACKET);
        slot.0 = seq;
        slot.1 = n as u16;
        slot.2[..n].copy_from_slice(&pkt[..n]);
    }
    pub fn get(&self, seq: u16) -> Option<&[u8]> {
        let slot = &self.slots[seq as usize % Self::N];
        (slot.0 == seq && slot.1 > 0).then(|| &slot.2[..slot.1 as usize])
    }
}

/// The publisher's RTX stream (RFC 4588), when sfud's answer accepted
/// `rtx`: NACKed packets go out on it instead of on the primary SSRC.
pub struct Repair {
    pub pt: u8,
    pub ssrc: u32,
    seq: u16,
}

impl Repair {
    pub fn new(pt: u8, ssrc: u32) -> Self {
        Self { pt, ssrc, seq: rand::random() }
    }

    /// Writes the RTX packet for the plaintext `original` into `out`: the
    /// original's timestamp and marker, the RTX stream's own next sequence
    /// number, and OSN + original payload.
    pub fn wrap(&mut self, original: &[u8], out: &mut [u8]) -> Option<usize> {
        let h = dataplane::rtp::parse(original).ok()?;
        let f = HeaderFields { marker: h.marker, payload_type: self.pt, sequence: self.seq, timestamp: h.timestamp, ssrc: self.ssrc };
        let hl = write_header(out, &f).ok()?;
        let n = dataplane::forward::rtx::encapsulate(&mut out[hl..], h.sequence, h.payload(original)).ok()?;
        self.seq = self.seq.wrapping_add(1);
        Some(hl + n)
    }
}

/// One-way delay histogram in 10 us buckets up to 500 ms.
pub struct Histogram {
    buckets: Vec<u64>,
    over: u64,
    count: u64,
}

impl Histogram {
    const RES_NS: u64 = 10_000;
    const N: usize = 50_000;
    pub fn new() -> Self {
        Self { buckets: vec![0; Self::N], over: 0, count: 0 }
    }
    pub fn record(&mut self, ns: u64) {
        self.count += 1;
        match self.buckets.get_mut((ns / Self::RES_NS) as usize) {
            Some(b) => *b += 1,
            None => self.over += 1,
        }
    }
    pub fn reset(&mut self) {
        self.buckets.fill(0);
        self.over = 0;
        self.count = 0;
    }
    /// Quantile in milliseconds (bucket upper bound); None when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let target = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut acc = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            acc += b;
            if acc >= target {
                return Some(((i as u64 + 1) * Self::RES_NS) as f64 / 1e6);
            }
        }
        Some((Self::N as u64 * Self::RES_NS) as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::rtp::codec::vp8_is_keyframe;

    #[test]
    fn keyframes_are_detected_and_sizes_average_out() {
        let cfg = MediaConfig::default();
        let t0 = Instant::now();
        let mut g = TrackGen::new(Kind::Video, 5, t0);
        let mut scratch = [0u8; MAX_PACKET];
        let mut bytes = 0usize;
        let mut keys = 0;
        let mut now = t0;
        for _ in 0..60 {
            g.frame(now, &cfg, &mut scratch, |p, _| {
                bytes += p.len();
                let h = dataplane::rtp::parse(p).unwrap();
                if vp8_is_keyframe(h.payload(p)) {
                    keys += 1;
                }
                assert!(read_trailer(h.payload(p)).is_some());
                assert!(p.len() <= MAX_PACKET);
            });
            now += Duration::from_millis(33);
        }
        assert_eq!(keys, 1);
        let bps = bytes as f64 * 8.0 / 2.0;
        assert!((1_300_000.0..1_700_000.0).contains(&bps), "{bps}");
    }

    #[test]
    fn simulcast_layers_carry_rid_descriptor_and_size() {
        let cfg = MediaConfig::default();
        let t0 = Instant::now();
        let model = crate::simulcast::LAYERS[1];
        let mut g = TrackGen::new_layer(5, t0, model);
        let mut scratch = [0u8; MAX_PACKET];
        let (mut bytes, mut keys, mut now) = (0usize, 0, t0);
        let mut tids = Vec::new();
        let mut pids = Vec::new();
        for _ in 0..60 {
            g.frame(now, &cfg, &mut scratch, |p, _| {
                let h = dataplane::rtp::parse(p).unwrap();
                assert_eq!(dataplane::rtp::extension(p, &h, RID_EXT_ID), Some(&b"h"[..]));
                let pl = h.payload(p);
                bytes += pl.len();
                let d = dataplane::forward::vp8::parse(pl).unwrap();
                if d.frame_start {
                    tids.push(d.tid.unwrap());
                    pids.push(d.picture_id.unwrap().0);
                }
                if vp8_is_keyframe(pl) {
                    keys += 1;
                    assert_eq!(keyframe_width(pl), Some(640));
                }
            });
            now += Duration::from_millis(33);
        }
        assert_eq!(keys, 1);
        assert_eq!(&tids[1..5], &[2, 1, 2, 0]);
        assert!(pids.windows(2).all(|w| w[1] == (w[0] + 1) & 0x7fff));
        let bps = bytes as f64 * 8.0 / 2.0;
        assert!((360_000.0..440_000.0).contains(&bps), "{bps}");
    }

    #[test]
    fn repair_wraps_with_osn() {
        let mut scratch = [0u8; MAX_PACKET];
        let n = write_header(&mut scratch, &HeaderFields { marker: true, payload_type: PT_VP8, sequence: 700, timestamp: 9, ssrc: 5 }).unwrap();
        scratch[n..n + 4].copy_from_slice(b"vp8!");
        let mut r = Repair::new(97, 6);
        let mut out = [0u8; MAX_PACKET + 2];
        let m = r.wrap(&scratch[..n + 4], &mut out).unwrap();
        let h = dataplane::rtp::parse(&out[..m]).unwrap();
        assert_eq!((h.payload_type, h.ssrc, h.timestamp, h.marker), (97, 6, 9, true));
        let (osn, p) = dataplane::forward::rtx::decapsulate(h.payload(&out[..m])).unwrap();
        assert_eq!((osn, p), (700, &b"vp8!"[..]));
        let m2 = r.wrap(&scratch[..n + 4], &mut out).unwrap();
        assert_eq!(dataplane::rtp::parse(&out[..m2]).unwrap().sequence, h.sequence.wrapping_add(1));
    }

    #[test]
    fn histogram_quantiles() {
        let mut h = Histogram::new();
        for i in 0..100 {
            h.record(i * 100_000);
        }
        assert!((h.quantile_ms(0.5).unwrap() - 5.0).abs() < 0.2);
        assert!(h.quantile_ms(0.99).unwrap() <= 10.0);
    }
}
