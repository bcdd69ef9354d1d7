//! Wires each subscriber session's stream allocator (`forward::allocator`)
//! to its downtracks: every `ALLOC_INTERVAL` the layers each simulcast or
//! SVC downtrack should forward (for SVC, the spatial layer and temporal
//! limit within the one stream), from the session's estimate and the rates its
//! track's layers arrive at here; and, while a probe runs, RTX probes paced
//! to the probe's rate.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tracing::debug;

use crate::forward::allocator::{Choice, Demand, ProbeOutcome};
use crate::forward::bwe::BandwidthUsage;
use crate::forward::simulcast;
use crate::msg::{Event, LayerCap, MediaKind, SessionId, TrackId, MAX_LAYERS};
use crate::shard::core::ShardCore;
use crate::shard::media::{protect_and_commit, send_context};
use crate::shard::outbox::Outbox;

/// How often layers are re-chosen.
pub const ALLOC_INTERVAL: Duration = Duration::from_millis(200);
/// Probes are paced this finely while one runs.
pub const PROBE_PACING: Duration = Duration::from_millis(10);
/// Most probe packets one session sends per pacing step.
const MAX_PROBES_PER_STEP: usize = 32;
/// Probe credit kept across a late wake-up, in pacing steps.
const MAX_CREDIT_STEPS: f64 = 6.0;
/// Recent packets a probe cycles through: the newest, so on a lossy link
/// a probe copy can stand in for a lost original.
const PROBE_DEPTH: u16 = 4;

impl ShardCore {
    /// Re-chooses every local subscriber's layers when due.
    pub(super) fn allocate(&mut self, now: Instant, out: &mut Outbox) {
        if self.alloc_at.is_some_and(|t| now < t) {
            return;
        }
        self.alloc_at = Some(now + ALLOC_INTERVAL);
        let mut by_session: HashMap<SessionId, Vec<(TrackId, usize)>> = HashMap::new();
        for (track, list) in &self.downtracks {
            for (i, dt) in list.iter().enumerate() {
                by_session.entry(dt.spec.session).or_default().push((*track, i));
            }
        }
        for (sid, dts) in by_session {
            self.allocate_session(sid, &dts, now, out);
        }
        self.announce_demand(now, out);
    }

    fn allocate_session(&mut self, sid: SessionId, dts: &[(TrackId, usize)], now: Instant, out: &mut Outbox) {
        let Some(sess) = self.sessions.get_mut(&sid) else { return };
        if sess.tx.is_none() {
            return;
        }
        let mut fixed = 0u64;
        let mut demands = Vec::new();
        let mut which = Vec::new();
        for &(track, i) in dts {
            let Some(dt) = self.downtracks.get(&track).and_then(|l| l.get(i)) else { continue };
            let layers = self.registry.uptracks.get(&track).map_or(0, |u| u.layers.len());
            let svc = dt.is_svc();
            if (layers == 0 && !svc) || dt.spec.kind == MediaKind::Audio {
                fixed += self.rates.get(&track).map_or(0, |r| r.bps(now));
                continue;
            }
            let mut layer_bps = [0u64; MAX_LAYERS];
            let measured = if svc { MAX_LAYERS } else { layers };
            for (l, bps) in layer_bps.iter_mut().enumerate().take(measured) {
                let id = simulcast::layer_track(track, Some(l as u8));
                *bps = self.rates.get(&id).map_or(0, |r| r.bps(now));
            }
            if svc {
                svc_steps(&mut layer_bps);
            }
            if dt.cap.off {
                // Off by the subscriber's choice: paused, costs nothing.
                for b in layer_bps.iter_mut() {
                    *b = 0;
                }
            }
            let (layer, max_temporal) = dt.chosen();
            demands.push(Demand { priority: dt.priority, layer_bps, max_layer: dt.cap.max_layer, current: Choice { layer, max_temporal } });
            which.push((track, i));
        }
        if demands.is_empty() {
            return;
        }
        let stats = sess.bwe.stats();
        if sess.allocator.is_probing() && sess.allocator.probing_bps(sess.bwe.probe_report(), now).is_none() {
            sess.bwe.end_probe(now);
        }
        let report = sess.bwe.probe_report();
        match sess.allocator.on_feedback(report, stats.usage == BandwidthUsage::Overusing, now) {
            Some(ProbeOutcome::Success(bps)) => {
                self.stats.probes_succeeded += 1;
                sess.bwe.on_probe_result(bps);
                debug!(session = sid.0, acked = bps, estimate = sess.bwe.estimate_bps(), "probe succeeded");
            }
            Some(ProbeOutcome::Failure) => {
                self.stats.probes_failed += 1;
                debug!(session = sid.0, ?report, usage = ?stats.usage, "probe failed");
            }
            None => {}
        }
        let estimate = sess.bwe.estimate_bps();
        // A REMB that holds the estimate is the subscriber's own measure of
        // its link, and no probe runs against it (below): it is what is
        // proven, or the subscriber could never leave its first layer.
        let held_by_remb = sess.bwe.held_by_remb();
        let proven = if held_by_remb { Some(estimate) } else { stats.acked_bps };
        let mut choices = sess.allocator.allocate(estimate, proven, fixed, &demands, now);
        for ((track, i), c) in which.iter().zip(choices.iter_mut()) {
            let Some(dt) = self.downtracks.get(track).and_then(|l| l.get(*i)) else { continue };
            if dt.cap.off {
                *c = Choice::PAUSED;
            } else if let Some(t) = dt.cap.max_temporal {
                c.max_temporal = c.max_temporal.min(t);
            }
        }
        let probe = if held_by_remb {
            None
        } else {
            sess.allocator.probe_wanted(estimate, stats.acked_bps, fixed, &demands, now)
        };
        if let Some(target) = probe {
            debug!(session = sid.0, estimate, target, "probe started");
            sess.bwe.start_probe(now);
            self.stats.probes_started += 1;
            sess.probe_paced = None;
            sess.probe_credit = 0.0;
        }
        let mut keyframes = Vec::new();
        for ((track, i), c) in which.into_iter().zip(choices) {
            let Some(dt) = self.downtracks.get_mut(&track).and_then(|l| l.get_mut(i)) else { continue };
            if dt.chosen() == (c.layer, c.max_temporal) {
                continue;
            }
            let before = dt.chosen().0;
            if dt.set_layer(c.layer, c.max_temporal) {
                keyframes.push(dt.keyframe_track());
            }
            if before != c.layer {
                debug!(session = sid.0, track = track.0, from = ?before, to = ?c.layer, temporal = c.max_temporal, estimate, "layer chosen");
                self.stats.layer_switches += 1;
                out.events.push(Event::LayerChosen { session: sid, track, layer: c.layer });
            }
        }
        for t in keyframes {
            self.request_keyframe(t, now, out);
        }
    }

    /// Sends what running probes owe: RTX repeats of recent packets, up to
    /// the probe's rate counting what media already sent.
    pub(super) fn pace_probes(&mut self, now: Instant, out: &mut Outbox) {
        let origin = *self.origin.get_or_insert(now);
        self.probe_pace_at = None;
        for sess in self.sessions.values_mut() {
            let Some(target) = sess.allocator.probing_bps(sess.bwe.probe_report(), now) else {
                sess.probe_paced = None;
                continue;
            };
            let (last, sent_then) = *sess.probe_paced.get_or_insert((now, sess.bytes_sent));
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            let media = sess.bytes_sent.saturating_sub(sent_then) as f64;
            let rate = target as f64 / 8.0;
            // Wake-ups may come later than asked: credit up to a few pacing
            // steps carries over, debt at most one.
            let step = rate * PROBE_PACING.as_secs_f64();
            sess.probe_credit = (sess.probe_credit + rate * elapsed - media).clamp(-step, step * MAX_CREDIT_STEPS);
            let mut sent = 0;
            let sid = sess.id;
            'outer: for list in self.downtracks.values_mut() {
                for dt in list.iter_mut().filter(|d| d.spec.session == sid && d.spec.rtx.is_some()) {
                    let Some(cache) = self.caches.get(&dt.cache_track()) else { continue };
                    while sess.probe_credit > 0.0 && sent < MAX_PROBES_PER_STEP {
                        let ctx = send_context(sess, origin, now);
                        let back = sess.probe_turn;
                        sess.probe_turn = (sess.probe_turn + 1) % PROBE_DEPTH;
                        let Some(r) = dt.probe(back, cache, &ctx, out.slot(), now) else { break };
                        if !protect_and_commit(sess, r.len, r.transport_seq, r.media, now, out) {
                            break;
                        }
                        sess.probe_credit -= r.len as f64;
                        self.stats.probe_packets += 1;
                        sent += 1;
                    }
                    if sess.probe_credit <= 0.0 || sent >= MAX_PROBES_PER_STEP {
                        break 'outer;
                    }
                }
            }
            sess.probe_paced = Some((now, sess.bytes_sent));
            self.probe_pace_at = Some(now + PROBE_PACING);
        }
    }

    /// A subscriber's priority for one of its downtracks (`Command::SetPriority`).
    pub(super) fn set_priority(&mut self, session: SessionId, track: TrackId, priority: u8) {
        // The registry's copy too: a shard that owns the session only later
        // builds its downtrack from it.
        if let Some(spec) = self.registry.downtracks.get_mut(&(session, track)) {
            spec.priority = priority;
        }
        if let Some(dt) = self.downtracks.get_mut(&track).and_then(|l| l.iter_mut().find(|d| d.spec.session == session)) {
            dt.priority = priority;
            self.alloc_at = None;
        }
    }

    /// Bounds what a subscriber's downtracks get (`Command::SetLayerCap`):
    /// one track, or all of the session's when `track` is None.
    pub(super) fn set_layer_cap(&mut self, session: SessionId, track: Option<TrackId>, cap: LayerCap) {
        // Kept for downtracks this shard builds later (a claim, a new track).
        self.registry.set_cap(session, track, cap);
        for (t, list) in self.downtracks.iter_mut() {
            if track.is_some_and(|want| want != *t) {
                continue;
            }
            for dt in list.iter_mut().filter(|d| d.spec.session == session) {
                dt.cap = cap;
            }
        }
        self.alloc_at = None;
    }
}

/// An SVC spatial layer is decoded on top of the ones below it, so a
/// subscriber at layer `s` receives layers 0..=s: the allocator's step for
/// `s` costs their sum. A layer that does not arrive stays 0 (not a step).
fn svc_steps(layer_bps: &mut [u64; MAX_LAYERS]) {
    let mut below = 0;
    for bps in layer_bps.iter_mut() {
        if *bps == 0 {
            continue;
        }
        below += *bps;
        *bps = below;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn svc_steps_add_up_the_layers_below() {
        let mut b = [100_000, 300_000, 900_000];
        super::svc_steps(&mut b);
        assert_eq!(b, [100_000, 400_000, 1_300_000]);
        let mut b = [100_000, 300_000, 0];
        super::svc_steps(&mut b);
        assert_eq!(b, [100_000, 400_000, 0], "a missing top layer is no step");
    }
}
