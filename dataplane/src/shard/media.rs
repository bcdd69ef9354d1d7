//! The media half of the shard core: RTP in from publishers (decrypt once,
//! restore repairs, ask for what was lost, fan out), RTCP feedback from
//! both sides, and the feedback sfud owes them. The forwarding decisions
//! themselves are the `forward` parts; this file wires them to sessions
//! and the outbox.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::forward::bwe::SentMedia;
use crate::forward::downtrack::{ResendAsk, Rewrite, SendContext, Svc};
use crate::forward::extensions::{self, Carried, MAX_CARRIED};
use crate::forward::nack_generator::Arrival;
use crate::forward::retransmission_cache::RetransmissionCache;
use crate::forward::twcc_receiver::TwccReceiver;
use crate::forward::{rid, rtx, simulcast, vp9, Downtrack};
use crate::msg::{MediaKind, SessionId, TrackId, MAX_LAYERS};
use crate::rtcp::{self, RtcpPacket};
use crate::shard::core::{send_rtcp, srtp_drop_reason, ShardCore};
use crate::shard::outbox::Outbox;
use crate::shard::peer::MediaItem;
use crate::shard::session::Session;
use crate::shard::session_table::SessionTable;
use crate::stats::DropReason;
use crate::rtp;

/// How long a shard keeps copies of a track's packets for NACKs: a few
/// round trips on a bad path.
pub const CACHE_AGE: Duration = Duration::from_millis(1000);
/// Slots per cache, by kind: video at 10 Mbit/s of 1200-byte packets for
/// `CACHE_AGE`, audio at 50 packets a second with room to spare.
const CACHE_SLOTS_VIDEO: usize = 1024;
const CACHE_SLOTS_AUDIO: usize = 128;
/// Sequence numbers answered from one NACK packet, whatever it lists.
const MAX_NACK_SEQS: usize = 256;
/// What a publisher that only speaks REMB is told it may send: sfud does
/// not estimate uplinks, so this only lifts REMB's cap off the sender's
/// own loss-based control.
const REMB_CEILING_BPS: u64 = 8_000_000;

impl ShardCore {
    pub(super) fn on_rtp(&mut self, sid: SessionId, buf: &mut [u8], now: Instant, out: &mut Outbox) {
        let Some(sess) = self.sessions.get_mut(&sid) else { return };
        let Some(len) = unprotect(sess, buf, false, &mut self.stats) else { return };
        let pkt: &[u8] = &buf[..len];
        let Ok(hdr) = rtp::parse(pkt) else {
            self.stats.drop(DropReason::Malformed);
            return;
        };
        // Congestion feedback covers every packet the transport carried,
        // repairs and padding included, so record it before anything drops.
        if let Some((id, twcc)) = sess.twcc.as_mut() {
            if let Some(tw) = rtp::extension(pkt, &hdr, *id).and_then(|d| <[u8; 2]>::try_from(d).ok()) {
                twcc.on_packet(u16::from_be_bytes(tw), now);
            }
        }
        let known = sess.uptrack_for_ssrc(hdr.ssrc);
        let Some((track, is_rtx)) = known.or_else(|| self.bind_uptrack(sid, &hdr, pkt)) else {
            self.stats.drop(DropReason::UnknownSsrc);
            return;
        };
        let Some(up) = self.uptracks.get_mut(&track) else { return };
        let (seq, payload) = if is_rtx {
            match rtx::decapsulate(hdr.payload(pkt)) {
                Ok(restored) => restored,
                Err(_) => {
                    // A repair-stream packet with no OSN is probe padding.
                    self.stats.drop(DropReason::Padding);
                    return;
                }
            }
        } else {
            up.stats.on_packet(hdr.sequence, hdr.timestamp, now);
            (hdr.sequence, hdr.payload(pkt))
        };
        let keyframe = up.is_keyframe(payload);
        let red = up.spec.red_payload_type == Some(hdr.payload_type);
        let Some((ext_seq, arrival)) = up.receive(seq, keyframe, now) else {
            self.stats.drop(DropReason::Duplicate);
            return;
        };
        if arrival == Arrival::Recovered {
            self.stats.packets_recovered += 1;
        }
        if !up.active_reported && !is_rtx {
            up.active_reported = true;
            // Each simulcast layer reports its SSRC under the track's id.
            out.events.push(crate::msg::Event::UptrackActive { track: up.group, ssrc: hdr.ssrc });
        }
        if up.muted {
            self.stats.drop(DropReason::Muted);
            return;
        }
        // Speech is measured on what subscribers will hear: authenticated,
        // not a duplicate, not muted. A repair carries the level of the
        // packet it repairs, already counted if that one arrived.
        if let (MediaKind::Audio, Some(id), false) = (up.spec.kind, up.spec.ext.audio_level, is_rtx) {
            if let Some(level) = rtp::extension(pkt, &hdr, id) {
                up.audio_level.observe(level, self.audio_clock.settings().threshold);
            }
        }
        let mut carried = [0u8; MAX_CARRIED];
        let carried_len = extensions::carry(pkt, &hdr, &up.spec.ext, &mut carried);
        let carried = &carried[..carried_len];
        // Only a publisher that negotiated video-content-type can mark a
        // screen share: the others' packets are not searched for it.
        if up.spec.ext.video_content_type.is_some() {
            if let Some(screen) = up.content_changed(extensions::screen_share(carried), now) {
                out.events.push(crate::msg::Event::UptrackContent { track: up.group, screen });
            }
        }
        let track = up.group;
        let item = MediaItem {
            track,
            layer: up.layer,
            ext_seq,
            timestamp: hdr.timestamp,
            marker: hdr.marker,
            keyframe,
            vp8: up.spec.codec == crate::msg::CodecKind::Vp8,
            vp9: up.spec.codec == crate::msg::CodecKind::Vp9,
            av1: up.spec.codec == crate::msg::CodecKind::Av1,
            red,
            pruned: false,
            start: 0,
            carried_len: carried_len as u16,
            len: payload.len() as u32,
        };
        let epoch = self.registry.epoch;
        if up.routes_epoch != epoch {
            self.registry.remote_subscriber_shards(track, self.id, &mut up.remote_shards);
            up.routes_epoch = epoch;
        }
        for &shard in &up.remote_shards {
            if self.layer_demand.wants(track, shard, item.layer, now) {
                out.media_for(shard).push(item, carried, payload);
            } else {
                out.media_for(shard).push_size(item, payload.len());
                self.stats.layer_pruned += 1;
            }
        }
        if self.layer_demand.wants(track, self.id, item.layer, now) {
            self.fanout(&item, carried, payload, now, out);
        } else if self.downtracks.contains_key(&track) {
            self.stats.layer_pruned += 1;
            self.fanout(&MediaItem { pruned: true, len: payload.len() as u32, ..item }, &[], &[], now, out);
        }
    }

    /// The uptrack an RTP packet belongs to: by SSRC, else by the MID header
    /// extension or, for a single track of a kind, by payload type. The
    /// repair stream binds the same ways, by the rtx payload type. Binds the
    /// SSRC so later packets resolve in the session's own short list.
    fn bind_uptrack(&mut self, sid: SessionId, hdr: &rtp::RtpHeader, pkt: &[u8]) -> Option<(TrackId, bool)> {
        let found = self.find_uptrack(sid, hdr, pkt)?;
        if let Some(sess) = self.sessions.get_mut(&sid) {
            sess.bind_uptrack_ssrc(hdr.ssrc, found.0, found.1);
        }
        Some(found)
    }

    fn find_uptrack(&mut self, sid: SessionId, hdr: &rtp::RtpHeader, pkt: &[u8]) -> Option<(TrackId, bool)> {
        let mut by_pt = None;
        let mut by_pt_count = 0;
        for up in self.uptracks.values_mut() {
            if up.spec.session != sid {
                continue;
            }
            if up.ssrc == Some(hdr.ssrc) {
                return Some((up.spec.track, false));
            }
            if up.rtx_ssrc == Some(hdr.ssrc) {
                return Some((up.spec.track, true));
            }
            let rtx = up.spec.rtx_payload_type == Some(hdr.payload_type);
            let unbound = if rtx { up.rtx_ssrc.is_none() } else { up.ssrc.is_none() };
            let media_pt = up.spec.payload_type == hdr.payload_type || up.spec.red_payload_type == Some(hdr.payload_type);
            if !unbound || !(rtx || media_pt) {
                continue;
            }
            let mid = up.spec.ext.mid.and_then(|id| rtp::extension(pkt, hdr, id));
            if let Some(want) = up.rid.as_deref() {
                // A simulcast layer binds by its RID (repairs by the
                // repaired RID), never by payload type alone.
                let id = if rtx { up.spec.ext.repaired_rid } else { up.spec.ext.rid };
                let rid = id.and_then(|id| rtp::extension(pkt, hdr, id)).map(rid::parse);
                let same_mid = mid.is_none_or(|m| m == up.spec.mid.as_bytes());
                if same_mid && matches!(rid, Some(Ok(r)) if r == want) {
                    bind(up, hdr.ssrc, rtx);
                    return Some((up.spec.track, rtx));
                }
                if matches!(rid, Some(Err(_))) {
                    self.stats.drop(DropReason::Malformed);
                }
                continue;
            }
            if mid == Some(up.spec.mid.as_bytes()) {
                bind(up, hdr.ssrc, rtx);
                return Some((up.spec.track, rtx));
            }
            by_pt = Some((up.spec.track, rtx));
            by_pt_count += 1;
        }
        if by_pt_count != 1 {
            return None;
        }
        let (track, rtx) = by_pt?;
        bind(self.uptracks.get_mut(&track)?, hdr.ssrc, rtx);
        Some((track, rtx))
    }

    /// Rewrites and encrypts one uptrack packet for every local downtrack
    /// of its track, keeping a copy here for their NACKs.
    pub(super) fn fanout(&mut self, item: &MediaItem, carried: &[u8], payload: &[u8], now: Instant, out: &mut Outbox) {
        let Some(list) = self.downtracks.get_mut(&item.track) else { return };
        let Some(first) = list.first() else { return };
        if item.pruned {
            // No subscriber here needs this layer now; its rate still
            // tells the allocators what switching to it would cost.
            let key = simulcast::layer_track(item.track, item.layer);
            self.rates.entry(key).or_default().on_packet(item.len as usize, now);
            return;
        }
        // RED is audio, which nobody NACKs; the cache holds what a resend
        // could send as is.
        if !payload.is_empty() && !item.red {
            let kind = first.spec.kind;
            let key = simulcast::layer_track(item.track, item.layer);
            self.rates.entry(key).or_default().on_packet(payload.len(), now);
            let cache = self.caches.entry(key).or_insert_with(|| new_cache(kind));
            cache.insert(item.ext_seq, item.timestamp, item.marker, carried, payload, now);
        }
        // VP9: the descriptor is read once here for every subscriber; with
        // layer indices (SVC), each spatial layer's rate is measured under
        // its own id for the allocators, as simulcast layers are.
        let vp9 = if item.vp9 { vp9::parse(payload).ok() } else { None };
        let vp9_layers = vp9.as_ref().and_then(|d| d.layer);
        // AV1 (single stream): the dependency descriptor, read against this
        // shard's copy of the track's structure. (Chromium sends one with
        // VP8 simulcast too, per layer: those are left alone.)
        let dd_data = match item.av1 && item.layer.is_none() && !payload.is_empty() {
            true => extensions::carried(carried).find(|(k, _)| *k == Carried::DependencyDescriptor).map(|(_, d)| d),
            false => None,
        };
        let dd_frame = dd_data.map(|data| self.dd.entry(item.track).or_default().read(data).ok());
        let spatial = vp9_layers.map(|l| l.spatial).or(dd_frame.as_ref().and_then(|f| f.as_ref()).map(|f| f.spatial));
        if let Some(s) = spatial {
            let key = simulcast::layer_track(item.track, Some(s.min(MAX_LAYERS as u8 - 1)));
            self.rates.entry(key).or_default().on_packet(payload.len(), now);
        }
        let svc = match (&vp9, &dd_frame) {
            (Some(d), _) if d.layer.is_some() => Svc::Vp9(d),
            (_, Some(Some(f))) => match self.dd.get(&item.track).and_then(|c| c.structure()) {
                Some(s) => Svc::Dd(f, s),
                None => Svc::Unreadable,
            },
            (_, Some(None)) => Svc::Unreadable,
            _ => Svc::None,
        };
        let origin = *self.origin.get_or_insert(now);
        let sessions = &mut self.sessions;
        for i in 0..list.len() {
            warm_ahead(list, sessions, i);
            let dt = &mut list[i];
            let Some(sess) = sessions.resolve(&mut dt.session_slot, dt.spec.session) else { continue };
            if sess.tx.is_none() {
                continue;
            }
            let ctx = send_context(sess, origin, now);
            let slot = out.slot();
            let (len, stamped, media) = match dt.forward(item, svc, carried, payload, &ctx, slot, now) {
                Rewrite::Packet { len, transport_seq, media } => (len, transport_seq, media),
                Rewrite::Skip => {
                    let why = if payload.is_empty() { DropReason::Padding } else { DropReason::WaitingKeyframe };
                    self.stats.drop(why);
                    continue;
                }
                Rewrite::TooOld => {
                    self.stats.drop(DropReason::Duplicate);
                    continue;
                }
                Rewrite::NotSelected => continue,
                Rewrite::TooLarge | Rewrite::Malformed => {
                    self.stats.drop(DropReason::Malformed);
                    continue;
                }
            };
            if protect_and_commit(sess, len, stamped, media, now, out) {
                self.stats.rtp_forwarded += 1;
                if item.red {
                    match dt.spec.red_payload_type {
                        Some(_) => self.stats.red_passed += 1,
                        None => self.stats.red_reduced += 1,
                    }
                }
            } else {
                self.stats.drop(DropReason::Malformed);
            }
        }
    }

    pub(super) fn on_rtcp(&mut self, sid: SessionId, buf: &mut [u8], now: Instant, out: &mut Outbox) {
        let Some(sess) = self.sessions.get_mut(&sid) else { return };
        let Some(len) = unprotect(sess, buf, true, &mut self.stats) else { return };
        let mut keyframe_for: [Option<TrackId>; 4] = [None; 4];
        let mut n_kf = 0;
        let mut want_keyframe = |t: Option<TrackId>| {
            if let Some(t) = t {
                if n_kf < keyframe_for.len() && !keyframe_for.contains(&Some(t)) {
                    keyframe_for[n_kf] = Some(t);
                    n_kf += 1;
                }
            }
        };
        let origin = *self.origin.get_or_insert(now);
        for pkt in rtcp::iter_compound(&buf[..len]) {
            let Ok(pkt) = pkt else {
                self.stats.drop(DropReason::Malformed);
                break;
            };
            match pkt {
                RtcpPacket::Pli { media_ssrc, .. } => {
                    self.stats.plis_received += 1;
                    want_keyframe(keyframe_source(&self.downtracks, sid, sess.track_for_ssrc(media_ssrc)));
                }
                RtcpPacket::Fir { entries, .. } => {
                    self.stats.plis_received += 1;
                    for (ssrc, _) in entries {
                        want_keyframe(keyframe_source(&self.downtracks, sid, sess.track_for_ssrc(ssrc)));
                    }
                }
                RtcpPacket::Nack { media_ssrc, items, .. } => {
                    self.stats.nacks_received += 1;
                    let Some(track) = sess.track_for_ssrc(media_ssrc) else {
                        self.stats.drop(DropReason::UnknownSsrc);
                        continue;
                    };
                    let Some((dt, cache)) = downtrack_and_cache(&mut self.downtracks, &self.caches, sid, track) else { continue };
                    let rtt = sess.rtt;
                    for seq in items.lost_sequences().take(MAX_NACK_SEQS) {
                        if resend(sess, dt, cache, ResendAsk::Nack { seq, rtt }, origin, now, out) {
                            self.stats.retransmissions += 1;
                        } else {
                            self.stats.nacks_unanswered += 1;
                        }
                    }
                }
                RtcpPacket::TransportCc { fci, .. } => {
                    let lost = &mut self.lost_scratch;
                    lost.clear();
                    if sess.bwe.on_twcc(fci, now, lost).is_err() {
                        self.stats.drop(DropReason::Malformed);
                    }
                    for &m in lost.iter() {
                        let Some(track) = sess.track_for_ssrc(m.ssrc) else { continue };
                        let Some((dt, cache)) = downtrack_and_cache(&mut self.downtracks, &self.caches, sid, track) else { continue };
                        if resend(sess, dt, cache, ResendAsk::Repair(m), origin, now, out) {
                            self.stats.loss_repairs += 1;
                        }
                    }
                }
                RtcpPacket::Remb { bitrate_bps, .. } => sess.bwe.on_remb(bitrate_bps, now),
                RtcpPacket::ReceiverReport { reports, .. } => on_report_blocks(sess, reports, now),
                RtcpPacket::SenderReport { ssrc, ntp, reports, .. } => {
                    on_report_blocks(sess, reports, now);
                    if let Some((t, false)) = sess.uptrack_for_ssrc(ssrc) {
                        if let Some(up) = self.uptracks.get_mut(&t) {
                            up.stats.on_sender_report(ntp, now);
                        }
                    }
                }
                _ => {}
            }
        }
        for t in keyframe_for.into_iter().flatten() {
            self.request_keyframe(t, now, out);
        }
    }

    /// What sfud owes publishers, when due: NACKs for what they lost,
    /// merged keyframe requests, and transport-wide congestion feedback.
    pub(super) fn upstream_feedback(&mut self, now: Instant, out: &mut Outbox) {
        let mut lost: Vec<u16> = std::mem::take(&mut self.nack_scratch);
        for up in self.uptracks.values_mut() {
            let Some(media_ssrc) = up.ssrc else { continue };
            let Some(sess) = self.sessions.get_mut(&up.spec.session) else { continue };
            if up.spec.feedback.nack {
                lost.clear();
                up.nack.poll(now, up.rtt, &mut lost);
                // One NACK packet carries at most this many, well under the MTU.
                for chunk in lost.chunks(64) {
                    if let Ok(n) = rtcp::write_nack(&mut self.scratch, sess.rtcp_ssrc, media_ssrc, chunk) {
                        if send_rtcp(sess, &self.scratch[..n], out) {
                            self.stats.nacks_sent += chunk.len() as u64;
                        }
                    }
                }
                if up.nack.take_keyframe_needed() {
                    self.stats.losses_unrecoverable += 1;
                    up.keyframes.request(now);
                }
            }
        }
        self.nack_scratch = lost;
        let due: Vec<TrackId> =
            self.uptracks.iter().filter(|(_, u)| u.keyframes.is_pending()).map(|(t, _)| *t).collect();
        for t in due {
            self.flush_pli(t, now, out);
        }
        for sess in self.sessions.values_mut() {
            let Some(media_ssrc) = sess.any_media_ssrc() else { continue };
            let Some((id, mut twcc)) = sess.twcc.take() else { continue };
            // Bounded: a receiver never owes more than a few messages at once.
            for _ in 0..4 {
                let Some(n) = twcc.poll_feedback(now, media_ssrc, &mut self.scratch) else { break };
                send_rtcp(sess, &self.scratch[..n], out);
            }
            sess.twcc = Some((id, twcc));
        }
    }

    /// REMB for publishers that negotiated it instead of transport-cc.
    pub(super) fn send_remb(&mut self, out: &mut Outbox) {
        for sess in self.sessions.values_mut() {
            if sess.twcc.is_some() {
                continue;
            }
            let mut ssrcs = [0u32; 8];
            let mut n = 0;
            for up in self.uptracks.values() {
                if up.spec.session == sess.id && up.spec.feedback.remb && n < ssrcs.len() {
                    if let Some(s) = up.ssrc {
                        ssrcs[n] = s;
                        n += 1;
                    }
                }
            }
            if n == 0 {
                continue;
            }
            if let Ok(len) = rtcp::write_remb(&mut self.scratch, sess.rtcp_ssrc, REMB_CEILING_BPS, &ssrcs[..n]) {
                send_rtcp(sess, &self.scratch[..len], out);
            }
        }
    }

    /// Starts transport-wide feedback for a publisher session whose track
    /// negotiated it.
    pub(super) fn enable_twcc(&mut self, sid: SessionId, ext_id: Option<u8>, negotiated: bool) {
        let (Some(id), true) = (ext_id, negotiated) else { return };
        if let Some(sess) = self.sessions.get_mut(&sid) {
            if sess.twcc.is_none() {
                sess.twcc = Some((id, TwccReceiver::new(sess.rtcp_ssrc)));
            }
        }
    }

    /// The earliest time `tick` has work: NACK retries, merged PLIs,
    /// congestion feedback, reports.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.last_report.map(|t| t + crate::shard::core::REPORT_INTERVAL);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        // Tracks without a bound SSRC cannot be asked anything yet.
        for up in self.uptracks.values().filter(|u| u.ssrc.is_some()) {
            if up.spec.feedback.nack {
                consider(up.nack.poll_timeout(up.rtt));
            }
            consider(up.keyframes.poll_timeout());
        }
        for sess in self.sessions.values() {
            consider(sess.twcc.as_ref().and_then(|(_, t)| t.poll_timeout()));
        }
        consider(self.audio_clock.poll_timeout());
        consider(self.alloc_at);
        consider(self.probe_pace_at);
        next
    }

    /// Ends the audio level interval: one event with every audio uptrack
    /// that carried levels in it (or in the one before).
    pub(super) fn report_audio_levels(&mut self, out: &mut Outbox) {
        let mut windows = Vec::new();
        for (track, up) in self.uptracks.iter_mut() {
            if up.spec.kind == MediaKind::Audio {
                windows.extend(up.audio_level.take(*track));
            }
        }
        if !windows.is_empty() {
            out.events.push(crate::msg::Event::AudioLevels { shard: self.id, windows });
        }
    }

    /// Per-session downlink estimates, for stats.
    pub(super) fn estimates(&self, into: &mut Vec<(SessionId, u64)>) {
        into.clear();
        let subscribers = self.downtracks.values().flatten().map(|d| d.spec.session);
        for sid in subscribers {
            if into.iter().any(|(s, _)| *s == sid) {
                continue;
            }
            if let Some(sess) = self.sessions.get(&sid) {
                into.push((sid, sess.bwe.estimate_bps()));
            }
        }
    }
}

/// What a subscriber's PLI on `track` asks for: the layer its downtrack
/// forwards (or waits for) on a simulcast track, else the track.
fn keyframe_source(downtracks: &HashMap<TrackId, Vec<Downtrack>>, sid: SessionId, track: Option<TrackId>) -> Option<TrackId> {
    let track = track?;
    let dt = downtracks.get(&track).and_then(|l| l.iter().find(|d| d.spec.session == sid));
    Some(dt.map_or(track, |d| d.keyframe_track()))
}

/// SRTP or SRTCP unprotect in place; the plaintext length, or the drop
/// counted by reason.
fn unprotect(sess: &mut Session, buf: &mut [u8], rtcp: bool, stats: &mut crate::stats::ShardStats) -> Option<usize> {
    let Some(rx) = sess.rx.as_mut() else {
        stats.drop(DropReason::NoKeys);
        return None;
    };
    let len = buf.len();
    let res = if rtcp { rx.unprotect_rtcp(buf, len) } else { rx.unprotect_rtp(buf, len) };
    res.map_err(|e| stats.drop(srtp_drop_reason(e))).ok()
}

/// Receiver reports about what we send this peer: its RTT and loss.
fn on_report_blocks(sess: &mut Session, reports: rtcp::ReportBlocks, now: Instant) {
    for block in reports {
        if sess.track_for_ssrc(block.ssrc).is_some() {
            sess.on_report_block(block.lsr, block.dlsr, now);
            sess.bwe.on_loss_fraction(block.fraction_lost, now);
        }
    }
}

fn bind(up: &mut crate::forward::Uptrack, ssrc: u32, rtx: bool) {
    if rtx {
        up.rtx_ssrc = Some(ssrc);
    } else {
        up.ssrc = Some(ssrc);
    }
}

fn new_cache(kind: MediaKind) -> RetransmissionCache {
    let slots = match kind {
        MediaKind::Video => CACHE_SLOTS_VIDEO,
        MediaKind::Audio => CACHE_SLOTS_AUDIO,
    };
    RetransmissionCache::new(slots, CACHE_AGE)
}

/// The fan-out's prefetch pipeline (`crate::prefetch`): how many downtracks
/// apart its stages run. Far enough for a miss to land before the next
/// stage reads the line, near enough that it is still in L1 then.
const WARM_STEP: usize = 4;

/// Before sending to downtrack `i`, asks for what the sends to the next
/// few will touch, in three stages: each stage reads only lines an earlier
/// one asked for, so no warming load stalls the loop. Per subscriber, a
/// chain of dependent lines: the downtrack, then its mapper slots and its
/// session (found by slot, without hashing), then the session's SRTP stream
/// and key and send-history slot.
#[inline]
fn warm_ahead(list: &[Downtrack], sessions: &SessionTable, i: usize) {
    if let Some(far) = list.get(i + 3 * WARM_STEP) {
        far.warm_lines();
    }
    if let Some(mid) = list.get(i + 2 * WARM_STEP) {
        mid.warm_slots();
        if let Some(s) = sessions.at(mid.session_slot) {
            s.warm_lines(mid.spec.ext.transport_cc.is_some());
        }
    }
    if let Some(near) = list.get(i + WARM_STEP) {
        if let Some(s) = sessions.at(near.session_slot) {
            s.warm_send(near.spec.ext.transport_cc.is_some());
        }
    }
}

pub(super) fn send_context(sess: &Session, origin: Instant, now: Instant) -> SendContext {
    SendContext {
        abs_send_time: extensions::abs_send_time(now.saturating_duration_since(origin)),
        transport_seq: sess.transport_seq,
    }
}

/// Protects the `len` bytes written in the outbox's current slot and
/// queues them for the session's peer.
pub(super) fn protect_and_commit(
    sess: &mut Session,
    len: usize,
    stamped: bool,
    media: Option<SentMedia>,
    now: Instant,
    out: &mut Outbox,
) -> bool {
    let Some(tx) = sess.tx.as_mut() else { return false };
    let slot = out.slot();
    // Room for the SRTP tag (16 bytes for GCM, 10 for HMAC-SHA1-80).
    if len + 16 > slot.len() {
        return false;
    }
    match tx.protect_rtp(slot, len) {
        Ok(n) => {
            out.commit(n, sess.remote);
            sess.bytes_sent += n as u64;
            if stamped {
                sess.sent_with_transport_seq(n, media, now);
            }
            true
        }
        Err(_) => false,
    }
}

/// Session `sid`'s downtrack of `track` and the cache it resends from.
fn downtrack_and_cache<'a>(
    downtracks: &'a mut HashMap<TrackId, Vec<Downtrack>>,
    caches: &'a HashMap<TrackId, RetransmissionCache>,
    sid: SessionId,
    track: TrackId,
) -> Option<(&'a mut Downtrack, &'a RetransmissionCache)> {
    let dt = downtracks.get_mut(&track)?.iter_mut().find(|d| d.spec.session == sid)?;
    let cache = caches.get(&dt.cache_track())?;
    Some((dt, cache))
}

/// Sends what `ask` names again to `sess` (see `Downtrack::resend`), within
/// the session's resend budget.
fn resend(
    sess: &mut Session,
    dt: &mut Downtrack,
    cache: &RetransmissionCache,
    ask: ResendAsk,
    origin: Instant,
    now: Instant,
    out: &mut Outbox,
) -> bool {
    if sess.tx.is_none() {
        return false;
    }
    let ctx = send_context(sess, origin, now);
    let estimate = sess.bwe.estimate_bps();
    let budget = &mut sess.resend_budget;
    match dt.resend(ask, cache, &ctx, |len| budget.allow(len, estimate, now), out.slot(), now) {
        Some(r) => protect_and_commit(sess, r.len, r.transport_seq, r.media, now, out),
        None => false,
    }
}

/// Lets tests and stats see the caches' memory without reaching in.
pub(super) fn cache_bytes(caches: &HashMap<TrackId, RetransmissionCache>) -> u64 {
    caches.values().map(|c| c.allocated_bytes() as u64).sum()
}
