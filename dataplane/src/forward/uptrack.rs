//! An uptrack lives on the shard that owns its publisher. It decrypts
//! once, restores repaired packets (RFC 4588), keeps receive statistics
//! (for RR), asks the publisher for what was lost, and decides where
//! packets go.

use std::time::{Duration, Instant};

use crate::forward::audio_level::AudioLevelMeter;
use crate::forward::keyframe_requester::KeyframeRequester;
use crate::forward::nack_generator::{Arrival, NackGenerator};
use crate::msg::{CodecKind, MediaKind, ShardId, TrackId, UptrackSpec};
use crate::rtp::{codec, ReceiveStats, SeqUnwrapper};

/// Retries are spaced by this until a repair has been timed.
const INITIAL_RTT: Duration = Duration::from_millis(100);

pub struct Uptrack {
    /// For a simulcast layer, the layer's spec: its internal id and SSRCs.
    pub spec: UptrackSpec,
    /// The track downtracks know (the spec's own id unless this is a layer).
    pub group: TrackId,
    /// The simulcast layer (0 lowest), and its RID when bound by RID.
    pub layer: Option<u8>,
    pub rid: Option<Vec<u8>>,
    pub ssrc: Option<u32>,
    /// The publisher's repair stream: signalled, or bound on first sight
    /// of the rtx payload type with this track's mid.
    pub rtx_ssrc: Option<u32>,
    pub stats: ReceiveStats,
    seq: SeqUnwrapper,
    pub nack: NackGenerator,
    /// Smoothed request-to-repair time toward the publisher: NACK retries
    /// are spaced by it.
    pub rtt: Duration,
    rtt_measured: bool,
    pub keyframes: KeyframeRequester,
    /// Remote shards with subscribers, valid for `routes_epoch`.
    pub remote_shards: Vec<ShardId>,
    pub routes_epoch: u64,
    pub active_reported: bool,
    /// Admin mute: packets are counted and dropped here, before fan-out.
    pub muted: bool,
    /// This interval's ssrc-audio-level counters (audio tracks only).
    pub audio_level: AudioLevelMeter,
    /// The content type last reported (None: none seen yet), and when.
    pub screen: Option<(bool, Instant)>,
}

/// A publisher flipping video-content-type on every packet would make the
/// controlplane re-rank its track for every subscriber at packet rate: a
/// change is reported at most this often per uptrack.
const CONTENT_REPORT_EVERY: Duration = Duration::from_secs(1);

impl Uptrack {
    pub fn new(spec: UptrackSpec) -> Self {
        Self::layer(spec, TrackId(0), None)
    }

    /// A simulcast layer of `group` (`spec` from `simulcast::layer_specs`),
    /// or with `layer` None the single-stream track itself.
    pub fn layer(spec: UptrackSpec, group: TrackId, layer: Option<u8>) -> Self {
        let rid = layer
            .and_then(|l| spec.layers.get(usize::from(l)))
            .and_then(|l| l.rid.as_ref())
            .map(|r| r.as_bytes().to_vec());
        Uptrack {
            group: if layer.is_some() { group } else { spec.track },
            layer,
            rid,
            ssrc: spec.ssrc,
            rtx_ssrc: spec.rtx_ssrc,
            stats: ReceiveStats::new(spec.clock_rate),
            seq: SeqUnwrapper::new(),
            nack: NackGenerator::new(),
            rtt: INITIAL_RTT,
            rtt_measured: false,
            keyframes: KeyframeRequester::default(),
            remote_shards: Vec::new(),
            routes_epoch: u64::MAX,
            active_reported: false,
            muted: false,
            audio_level: AudioLevelMeter::default(),
            screen: None,
            spec,
        }
    }

    /// A packet's content type (`extensions::screen_share`): Some when it
    /// differs from the last one reported, which the shard reports.
    /// The first value is reported at once; a change no sooner than
    /// `CONTENT_REPORT_EVERY` after the last report (a later packet that
    /// still carries it reports it then).
    pub fn content_changed(&mut self, screen: Option<bool>, now: Instant) -> Option<bool> {
        let screen = screen?;
        let due = match self.screen {
            None => true,
            Some((last, at)) => last != screen && now.saturating_duration_since(at) >= CONTENT_REPORT_EVERY,
        };
        due.then(|| {
            self.screen = Some((screen, now));
            screen
        })
    }

    pub fn is_keyframe(&self, payload: &[u8]) -> bool {
        if self.spec.kind != MediaKind::Video {
            return false;
        }
        match self.spec.codec {
            CodecKind::Vp8 => codec::vp8_is_keyframe(payload),
            CodecKind::H264 => codec::h264_is_keyframe(payload),
            // The base spatial layer's first packet of a picture that
            // predicts from no earlier one.
            CodecKind::Vp9 => crate::forward::vp9::parse(payload).is_ok_and(|d| d.is_keyframe_start()),
            // The aggregation header's N bit: a new coded video sequence
            // starts here (AV1 RTP spec §4.4), which only a keyframe does.
            CodecKind::Av1 => payload.first().is_some_and(|b| b & 0x08 != 0),
            _ => false,
        }
    }

    /// A media packet (original, or restored from the repair stream) with
    /// sequence number `seq`: its extended sequence number, or None when it
    /// is a duplicate or too old to matter.
    pub fn receive(&mut self, seq: u16, keyframe: bool, now: Instant) -> Option<(u64, Arrival)> {
        let ext = self.seq.unwrap(seq);
        if !self.spec.feedback.nack {
            return Some((ext, Arrival::InOrder));
        }
        let arrival = self.nack.on_packet(ext, keyframe, now);
        if let Some(sample) = self.nack.take_rtt_sample() {
            // Smoothed like TCP's SRTT, the first sample replacing the
            // guess; at least 1 ms so retries never spin.
            let sample = sample.max(Duration::from_millis(1));
            self.rtt = if self.rtt_measured { (self.rtt * 7 + sample) / 8 } else { sample };
            self.rtt_measured = true;
        }
        match arrival {
            Arrival::Duplicate | Arrival::TooOld => None,
            a => Some((ext, a)),
        }
    }
}
