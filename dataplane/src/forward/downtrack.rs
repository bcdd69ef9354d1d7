//! A downtrack lives on its subscriber's shard. It gives the subscriber a
//! stream of its own: our SSRC, a contiguous sequence space that hides
//! what sfud drops on purpose, its own timestamps, payload type and header
//! extension ids, and it answers the subscriber's NACKs from the shard's
//! copy of the track.

use std::time::{Duration, Instant};

use crate::forward::extensions::{self, Stamp, MAX_ELEMENTS};
use crate::forward::bwe::SentMedia;
use crate::forward::resend_limiter::ResendLimiter;

/// RTP header, sfud's own extensions and the RTX OSN, at most.
const RESEND_OVERHEAD: usize = 12 + 4 + 3 * 8 + 2;
use crate::forward::retransmission_cache::RetransmissionCache;
use crate::forward::{red, rtx};
use crate::forward::layer_selector::{LayerSelector, Verdict, ALL_TEMPORAL};
use crate::forward::seq_mapper::SeqMapper;
use crate::forward::simulcast;
use crate::forward::svc_filter::SvcFilter;
use crate::forward::dependency_descriptor::{FrameInfo, TemplateStructure};
use crate::forward::vp9::Vp9Descriptor;
use crate::forward::vp8::{self, Vp8Munger};
use crate::msg::{DowntrackSpec, LayerCap, MediaKind, TrackId};
use crate::rtp::{self, HeaderFields};
use crate::shard::peer::MediaItem;

/// A waiting video downtrack asks again this often: a PLI can be ignored by
/// the publisher, or its keyframe can arrive before this viewer has keys.
const KEYFRAME_RETRY: Duration = Duration::from_secs(1);

mod svc;

/// What the fan-out read of a packet's SVC layers, once per shard.
#[derive(Clone, Copy)]
pub enum Svc<'a> {
    /// Not layered (or not known to be).
    None,
    /// A VP9 payload descriptor with layer indices.
    Vp9(&'a Vp9Descriptor),
    /// A dependency descriptor resolved against the track's structure.
    Dd(&'a FrameInfo, &'a TemplateStructure),
    /// A dependency descriptor that could not be read (no structure yet,
    /// or malformed): an SVC downtrack drops it.
    Unreadable,
}

/// What a downtrack did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// A packet was written: `len` bytes, ready to protect. `transport_seq`
    /// says whether it used the transport-wide sequence number offered;
    /// `media` names it for a repair (None when the subscriber takes no resends).
    Packet { len: usize, transport_seq: bool, media: Option<SentMedia> },
    /// Dropped on purpose (waiting for a keyframe, padding): the
    /// subscriber sees no gap.
    Skip,
    /// Too old to place in the subscriber's sequence space.
    TooOld,
    /// Does not fit the output buffer.
    TooLarge,
    /// A RED payload whose blocks do not add up.
    Malformed,
    /// A simulcast layer this subscriber does not get (or it is paused):
    /// not a drop, the packet was never meant for it.
    NotSelected,
}

/// VP8 descriptor offsets remembered per output seq, so a resend carries
/// the PictureID / TL0PICIDX its original had (a power of two).
const MUNGE_HISTORY: usize = 1024;

/// What the session adds to every packet it sends.
pub struct SendContext {
    /// abs-send-time for this packet.
    pub abs_send_time: [u8; 3],
    /// The session's next transport-wide sequence number.
    pub transport_seq: u16,
}

pub struct Downtrack {
    pub spec: DowntrackSpec,
    /// Where the shard keeps this downtrack's session, so the fan-out
    /// reaches it without a hash lookup (`shard::session_table`). A hint
    /// the shard sets and checks; `u32::MAX` until it does.
    pub session_slot: u32,
    /// Video must start on a keyframe or the decoder shows garbage until the next one.
    pub waiting_keyframe: bool,
    mapper: SeqMapper,
    limiter: ResendLimiter,
    /// Our own sequence space for the RTX stream (RFC 4588 §4).
    rtx_seq: u16,
    pub packets: u32,
    pub octets: u32,
    /// Last timestamp sent and when, to extrapolate the SR's RTP time.
    pub last_ts: u32,
    pub last_sent: Option<Instant>,
    /// When this downtrack last asked for a keyframe while waiting for one.
    last_keyframe_request: Option<Instant>,
    /// Simulcast: the layer forwarded and the one wanted; set on the
    /// track's first layered packet.
    selector: Option<LayerSelector>,
    /// The target (and temporal limit) the allocator set before the first
    /// layered packet; for SVC, the allocator's choice (spatial, temporal).
    initial_target: (Option<u8>, u8),
    /// SVC (VP9 with layer indices): the per-packet filter, once a target
    /// is set and until a pause.
    svc: Option<SvcFilter>,
    /// A layered VP9 packet has been seen: this downtrack is SVC.
    svc_seen: bool,
    /// SVC only (boxed: a VP8 or audio downtrack in a big fan-out should
    /// not carry 256 bytes it never reads).
    moved_markers: Option<Box<svc::MovedMarkers>>,
    vp8: Vp8Munger,
    munged: Box<[(u16, u8); MUNGE_HISTORY]>,
    /// Priority among the subscriber's videos for the stream allocator
    /// (higher first): screen share and the active speaker go first.
    pub priority: u8,
    /// What the subscriber (or an admin) allows.
    pub cap: LayerCap,
}

impl Downtrack {
    /// Asks for this downtrack's own lines, ahead of the fan-out reaching
    /// it (see `crate::prefetch`). Address arithmetic only: nothing loads.
    #[inline]
    pub fn warm_lines(&self) {
        crate::prefetch::value(self);
    }

    /// Asks for the mapper slots the next packet will write, and the mid
    /// it will carry (on the heap). Reads this downtrack, so it comes a
    /// stage after `warm_lines`.
    #[inline]
    pub fn warm_slots(&self) {
        self.mapper.warm();
        if self.spec.ext.mid.is_some() {
            crate::prefetch::line(self.spec.mid.as_ptr());
        }
    }

    pub fn new(spec: DowntrackSpec) -> Self {
        Downtrack {
            session_slot: u32::MAX,
            waiting_keyframe: spec.kind == MediaKind::Video,
            priority: spec.priority,
            mapper: SeqMapper::new(rand::random::<u16>() & 0x7fff, rand::random::<u32>()),
            limiter: ResendLimiter::new(),
            rtx_seq: rand::random::<u16>() & 0x7fff,
            spec,
            packets: 0,
            octets: 0,
            last_ts: 0,
            last_sent: None,
            last_keyframe_request: None,
            selector: None,
            initial_target: (Some(0), ALL_TEMPORAL),
            svc: None,
            svc_seen: false,
            moved_markers: None,
            vp8: Vp8Munger::default(),
            munged: Box::new([(0, 0); MUNGE_HISTORY]),
            cap: LayerCap::default(),
        }
    }

    /// The layer forwarded now and the one wanted (None: paused or not
    /// simulcast yet).
    pub fn layers(&self) -> (Option<u8>, Option<u8>) {
        match &self.selector {
            Some(s) => (s.current(), s.target()),
            None if self.svc_seen => (self.svc_current(), self.initial_target.0),
            None => (None, self.initial_target.0),
        }
    }

    /// An SVC stream: layers are chosen within the one SSRC.
    pub fn is_svc(&self) -> bool {
        self.svc_seen
    }

    /// What the allocator chose last: the target layer and temporal limit.
    pub fn chosen(&self) -> (Option<u8>, u8) {
        match &self.selector {
            Some(s) => (s.target(), s.max_temporal()),
            None => self.initial_target,
        }
    }

    pub fn is_simulcast(&self) -> bool {
        self.selector.is_some()
    }

    /// The stream allocator's choice. Returns true when the new target's
    /// keyframe is awaited (the caller asks the publisher for one).
    pub fn set_layer(&mut self, target: Option<u8>, max_temporal: u8) -> bool {
        if self.svc_seen {
            return self.set_svc_layers(target, max_temporal);
        }
        let Some(sel) = self.selector.as_mut() else {
            self.initial_target = (target, max_temporal);
            return false;
        };
        let wait = sel.set_target(target, max_temporal);
        self.waiting_keyframe = sel.pending();
        if wait {
            self.last_keyframe_request = None;
        }
        wait
    }

    /// The id whose keyframe this downtrack waits for: the target layer's,
    /// or the track's (every layer) before it knows the layers.
    pub fn keyframe_track(&self) -> TrackId {
        match &self.selector {
            Some(s) => simulcast::layer_track(self.spec.track, s.target().or(s.current())),
            None => self.spec.track,
        }
    }

    /// The layer whose cache answers this downtrack's NACKs.
    pub fn cache_track(&self) -> TrackId {
        simulcast::layer_track(self.spec.track, self.selector.and_then(|s| s.current()))
    }

    /// Writes the subscriber's packet for `item` (header with extensions,
    /// then the payload) into `out`. `svc` is what the fan-out read of the
    /// packet's layers (once per shard, not per subscriber).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &mut self,
        item: &MediaItem,
        svc: Svc<'_>,
        carried: &[u8],
        payload: &[u8],
        ctx: &SendContext,
        out: &mut [u8],
        now: Instant,
    ) -> Rewrite {
        if self.cap.off && item.layer.is_none() {
            // Switched off by the subscriber: no hole, nothing sent.
            self.mapper.skip(item.ext_seq);
            return Rewrite::NotSelected;
        }
        let mut descriptor = None;
        let mut marker = item.marker;
        if let Some(layer) = item.layer {
            let (target, temporal) = self.initial_target;
            let sel = self.selector.get_or_insert_with(|| {
                let mut s = LayerSelector::new(target);
                s.set_target(target, temporal);
                s
            });
            // Padding and other layers never reach this layer's mapper.
            let tid = if item.vp8 { vp8::parse(payload).ok().and_then(|d| { descriptor = Some(d); d.tid }) } else { None };
            let verdict = if payload.is_empty() { Verdict::Ignore } else { sel.on_packet(layer, item.keyframe, tid) };
            // A paused downtrack (no target) asks for nothing.
            self.waiting_keyframe = sel.pending();
            match verdict {
                Verdict::Ignore => return Rewrite::NotSelected,
                Verdict::DropTemporal => {
                    if let Some(d) = &descriptor {
                        self.vp8.drop_picture(d);
                    }
                    self.mapper.skip(item.ext_seq);
                    return Rewrite::Skip;
                }
                Verdict::Switch => {
                    self.continue_after_gap(now);
                    self.vp8.switch_source();
                }
                Verdict::Forward => {}
            }
        } else if !matches!(svc, Svc::None) && (self.svc_seen || !matches!(svc, Svc::Unreadable)) {
            match self.filter_svc(svc, item) {
                Ok(m) => marker = m,
                Err(r) => return r,
            }
        } else if payload.is_empty() {
            // Padding the publisher sent for its own bandwidth probing.
            self.mapper.skip(item.ext_seq);
            return Rewrite::Skip;
        } else if self.waiting_keyframe {
            if !item.keyframe {
                self.mapper.skip(item.ext_seq);
                return Rewrite::Skip;
            }
            self.waiting_keyframe = false;
        }
        // RED passes through to a subscriber that negotiated it; the others
        // get the primary encoding.
        let (payload_type, payload) = match (item.red, self.spec.red_payload_type) {
            (true, Some(red_pt)) => (red_pt, payload),
            (true, None) => match red::primary(payload) {
                Ok((_, primary)) => (self.spec.payload_type, primary),
                Err(_) => {
                    self.mapper.skip(item.ext_seq);
                    return Rewrite::Malformed;
                }
            },
            (false, _) => (self.spec.payload_type, payload),
        };
        let Some((sequence, timestamp)) = self.mapper.map(item.ext_seq, item.timestamp) else {
            return Rewrite::TooOld;
        };
        if self.svc.is_some() {
            self.moved_markers.get_or_insert_with(Default::default).record(sequence, marker && !item.marker);
        }
        let fields = HeaderFields {
            marker,
            payload_type,
            sequence,
            timestamp,
            ssrc: self.spec.ssrc,
        };
        let tw = ctx.transport_seq.to_be_bytes();
        let stamp = Stamp { mid: self.spec.mid.as_bytes(), abs_send_time: &ctx.abs_send_time, transport_seq: &tw };
        let Some(len) = self.write(&fields, &stamp, carried, &[], payload, out) else {
            return Rewrite::TooLarge;
        };
        if let Some(d) = &descriptor {
            let offsets = self.vp8.rewrite(d, &mut out[len - payload.len()..len]);
            self.munged[usize::from(sequence) % MUNGE_HISTORY] = offsets;
        }
        // The SR extrapolates from the newest packet, not a late one.
        self.last_ts = self.mapper.last_out().map_or(timestamp, |(_, ts)| ts);
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload.len() as u32);
        self.last_sent = Some(now);
        Rewrite::Packet { len, transport_seq: self.spec.ext.transport_cc.is_some(), media: self.sent_media(sequence, 0) }
    }

    /// How the send history names output packet `seq`'s `attempt`-th copy;
    /// None when the subscriber did not negotiate NACK (resends it would drop).
    fn sent_media(&self, seq: u16, attempt: u8) -> Option<SentMedia> {
        self.spec.feedback.nack.then_some(SentMedia { ssrc: self.spec.ssrc, seq, attempt })
    }

    /// Sends output packet `ask` names again from `cache`: writes the resend
    /// (as RTX when the subscriber negotiated it) into `out`. None when the
    /// packet is unknown or evicted, when `ask`'s gate refuses it, or when
    /// `budget` refuses its size. `budget` is asked last, so a refused
    /// resend spends neither the per-packet allowance nor an RTX seq.
    pub fn resend(
        &mut self,
        ask: ResendAsk,
        cache: &RetransmissionCache,
        ctx: &SendContext,
        budget: impl FnOnce(usize) -> bool,
        out: &mut [u8],
        now: Instant,
    ) -> Option<Resent> {
        let seq = match ask {
            ResendAsk::Nack { seq, rtt } if self.limiter.permits(seq, now, rtt) => seq,
            ResendAsk::Repair(lost) if lost.ssrc == self.spec.ssrc && self.limiter.permits_repair(lost.seq, lost.attempt, now) => {
                lost.seq
            }
            _ => return None,
        };
        let ext_seq = self.mapper.source_of(seq)?;
        let pkt = cache.get(ext_seq, now)?;
        let (sequence, timestamp) = self.mapper.map(ext_seq, pkt.timestamp)?;
        if sequence != seq {
            return None;
        }
        // Header, the extensions sfud may write, and the RTX OSN: an upper
        // bound is good enough for a token bucket.
        if !budget(RESEND_OVERHEAD + pkt.ext.len() + pkt.payload.len()) {
            return None;
        }
        let attempt = self.limiter.record(seq, now);
        let mut r = self.write_resend(seq, timestamp, &pkt, ctx, out)?;
        r.media = self.sent_media(seq, attempt);
        Some(r)
    }

    /// A bandwidth probe (`forward::allocator`): the packet sent `back`
    /// places before the newest, again on the RTX stream, which the
    /// subscriber counts for its feedback and discards as a duplicate.
    /// None without RTX or when that packet is gone from the cache.
    pub fn probe(&mut self, back: u16, cache: &RetransmissionCache, ctx: &SendContext, out: &mut [u8], now: Instant) -> Option<Resent> {
        self.spec.rtx?;
        let (last, _) = self.mapper.last_out()?;
        let seq = last.wrapping_sub(back);
        let ext_seq = self.mapper.source_of(seq)?;
        let pkt = cache.get(ext_seq, now)?;
        let (sequence, timestamp) = self.mapper.map(ext_seq, pkt.timestamp)?;
        if sequence != seq {
            return None;
        }
        self.write_resend(seq, timestamp, &pkt, ctx, out)
    }

    /// Writes output packet `seq` again from its cached copy: as RTX when
    /// the subscriber negotiated it, else as itself.
    fn write_resend(
        &mut self,
        seq: u16,
        timestamp: u32,
        pkt: &crate::forward::retransmission_cache::CachedPacket<'_>,
        ctx: &SendContext,
        out: &mut [u8],
    ) -> Option<Resent> {
        let tw = ctx.transport_seq.to_be_bytes();
        let stamp = Stamp { mid: self.spec.mid.as_bytes(), abs_send_time: &ctx.abs_send_time, transport_seq: &tw };
        let marker = pkt.marker || self.moved_markers.as_ref().is_some_and(|m| m.contains(seq));
        let (fields, osn) = match self.spec.rtx {
            Some(r) => {
                self.rtx_seq = self.rtx_seq.wrapping_add(1);
                let f = HeaderFields {
                    marker,
                    payload_type: r.payload_type,
                    sequence: self.rtx_seq,
                    timestamp,
                    ssrc: r.ssrc,
                };
                (f, Some(seq.to_be_bytes()))
            }
            None => {
                let f = HeaderFields {
                    marker,
                    payload_type: self.spec.payload_type,
                    sequence: seq,
                    timestamp,
                    ssrc: self.spec.ssrc,
                };
                (f, None)
            }
        };
        let prefix: &[u8] = match &osn {
            Some(b) => b,
            None => &[],
        };
        let len = self.write(&fields, &stamp, pkt.ext, prefix, pkt.payload, out)?;
        if self.selector.is_some() {
            // The resend carries the numbers its original had.
            if let Ok(d) = vp8::parse(pkt.payload) {
                let (pid, tl0) = self.munged[usize::from(seq) % MUNGE_HISTORY];
                vp8::apply(&d, &mut out[len - pkt.payload.len()..len], pid, tl0);
            }
        }
        Some(Resent { len, transport_seq: self.spec.ext.transport_cc.is_some(), media: None })
    }

    /// Header (with extensions), then `prefix` (the RTX OSN), then `payload`.
    fn write(
        &self,
        fields: &HeaderFields,
        stamp: &Stamp,
        carried: &[u8],
        prefix: &[u8],
        payload: &[u8],
        out: &mut [u8],
    ) -> Option<usize> {
        let mut els = [(0u8, &[][..]); MAX_ELEMENTS];
        let n = extensions::elements(&self.spec.ext, stamp, carried, &mut els);
        let hdr = rtp::write_header_with_extensions(out, fields, &els[..n]).ok()?;
        let body = if prefix.is_empty() {
            out.get_mut(hdr..hdr + payload.len())?.copy_from_slice(payload);
            payload.len()
        } else {
            rtx::encapsulate(out.get_mut(hdr..)?, u16::from_be_bytes([prefix[0], prefix[1]]), payload).ok()?
        };
        Some(hdr + body)
    }

    /// The downtrack now forwards `to`: the subscriber's sequence numbers
    /// continue, its timestamps jump by the time since the last packet (at
    /// least a frame), and video waits for the new source's keyframe.
    pub fn switch_source(&mut self, to: crate::msg::TrackId, now: Instant) {
        self.spec.track = to;
        self.continue_after_gap(now);
        self.vp8.switch_source();
        self.waiting_keyframe = self.spec.kind == MediaKind::Video;
        self.last_keyframe_request = None;
        // The new source's layers start from its keyframe.
        self.svc = None;
        self.svc_seen = false;
        if let Some(sel) = self.selector.as_mut() {
            // The new source starts from its lowest layer's keyframe.
            let (target, temporal) = (sel.target(), sel.max_temporal());
            *sel = LayerSelector::new(target);
            sel.set_target(target, temporal);
        }
    }

    /// The subscriber's numbering continues over a source change: its
    /// timestamps jump by the time since the last packet, at least a frame.
    fn continue_after_gap(&mut self, now: Instant) {
        let clock = u64::from(self.spec.clock_rate);
        let gap = self.last_sent.map_or(0, |t| now.saturating_duration_since(t).as_micros() as u64 * clock / 1_000_000);
        // A frame at 50 fps at least, so the first new packet is never
        // presented with (or before) the last old one.
        let gap = gap.max(clock / 50).min(u64::from(u32::MAX / 2)) as u32;
        self.mapper.switch_source(gap);
    }

    /// RTP time "now" for a Sender Report, extrapolated from the last packet.
    pub fn rtp_time_at(&self, now: Instant) -> u32 {
        match self.last_sent {
            Some(t) => {
                let elapsed = now.saturating_duration_since(t);
                let ticks = (elapsed.as_micros() as u64 * self.spec.clock_rate as u64 / 1_000_000) as u32;
                self.last_ts.wrapping_add(ticks)
            }
            None => self.last_ts,
        }
    }

    /// Whether a waiting downtrack should ask for a keyframe now (and
    /// remembers that it did).
    pub fn keyframe_request_due(&mut self, now: Instant) -> bool {
        if !self.waiting_keyframe || self.last_keyframe_request.is_some_and(|t| now.duration_since(t) < KEYFRAME_RETRY) {
            return false;
        }
        self.last_keyframe_request = Some(now);
        true
    }

    pub fn has_sent(&self) -> bool {
        self.last_sent.is_some()
    }
}

/// Why a packet is sent again, and so which gate it must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResendAsk {
    /// The subscriber NACKed output seq `seq`: at most once per `rtt`
    /// (within it the first copy may still be in flight).
    Nack { seq: u16, rtt: Duration },
    /// Its transport-wide feedback reported this copy lost, with no NACK
    /// asking again yet: the NACK itself may have been lost, and a receiver
    /// that cannot measure its round trip (one that only receives) asks
    /// again only after 100 ms. Only the newest copy's loss counts
    /// (`ResendLimiter::permits_repair`), so an original whose NACK was
    /// answered is not sent twice.
    Repair(SentMedia),
}

/// A resend written by `Downtrack::resend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resent {
    pub len: usize,
    pub transport_seq: bool,
    /// Set for a resend answering a loss (not for a probe's copy).
    pub media: Option<SentMedia>,
}
