//! Per-shard figures. Snapshots are cumulative, so counters are set to
//! absolute values; a restarted shard simply starts again from zero, which
//! Prometheus reads as a counter reset.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use ::metrics::{counter, gauge};
use dataplane::stats::{DropReason, ShardStats};

use super::names::*;

/// Upper bounds (inclusive) of the send batch size histogram buckets, in
/// datagrams per send call; one more bucket catches larger batches.
pub const SEND_BATCH_BOUNDS: [u64; 7] = [1, 2, 4, 8, 16, 32, 64];
/// Buckets a shard counts: one per bound plus the overflow (`+Inf`).
pub const SEND_BATCH_BUCKETS: usize = SEND_BATCH_BOUNDS.len() + 1;

/// The bucket a batch of `n` datagrams is counted in. The bounds are
/// powers of two, so this is ceil(log2 n) capped at the overflow bucket:
/// no loop and no branch per bound on the send path. (The dataplane keeps
/// its own copy; this one documents and tests the contract.)
pub fn send_batch_bucket(n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let ceil_log2 = (usize::BITS - (n - 1).leading_zeros()) as usize;
    ceil_log2.min(SEND_BATCH_BUCKETS - 1)
}

/// What the facade cannot hold, per shard: busy time as float seconds and
/// the batch size histogram as given bucket counts.
#[derive(Default)]
struct Extra {
    busy_ns: u64,
    /// Per-bucket (not cumulative) counts and the sum of batch sizes.
    batches: Option<([u64; SEND_BATCH_BUCKETS], u64)>,
}

static EXTRA: Mutex<BTreeMap<usize, Extra>> = Mutex::new(BTreeMap::new());

fn with_extra(shard: usize, f: impl FnOnce(&mut Extra)) {
    let mut map = EXTRA.lock().unwrap_or_else(|p| p.into_inner());
    f(map.entry(shard).or_default());
}

/// Exports one shard's snapshot.
pub fn record_shard_stats(s: &ShardStats) {
    if !super::installed() {
        return;
    }
    let shard = s.shard.to_string();
    let set = |name: &'static str, v: u64| counter!(name, "shard" => shard.clone()).absolute(v);
    set(PACKETS_RECEIVED, s.packets_in);
    set(PACKETS_SENT, s.packets_out);
    set(BYTES_RECEIVED, s.bytes_in);
    set(BYTES_SENT, s.bytes_out);
    set(RTP_FORWARDED, s.rtp_forwarded);
    set(SEND_BATCHES, s.send_batches);
    set(NACKS_RECEIVED, s.nacks_received);
    set(NACKS_UNANSWERED, s.nacks_unanswered);
    set(NACKS_SENT, s.nacks_sent);
    set(PACKETS_RECOVERED, s.packets_recovered);
    set(LOSS_REPAIRS, s.loss_repairs);
    set(LOSSES_UNRECOVERABLE, s.losses_unrecoverable);
    counter!(RED_PACKETS, "shard" => shard.clone(), "path" => "passed").absolute(s.red_passed);
    counter!(RED_PACKETS, "shard" => shard.clone(), "path" => "reduced").absolute(s.red_reduced);
    set(LAYER_SWITCHES, s.layer_switches);
    set(LAYER_PRUNED, s.layer_pruned);
    set(PROBE_PACKETS, s.probe_packets);
    for (outcome, v) in [("started", s.probes_started), ("succeeded", s.probes_succeeded), ("failed", s.probes_failed)] {
        counter!(PROBES, "shard" => shard.clone(), "outcome" => outcome).absolute(v);
    }
    gauge!(CACHE_BYTES, "shard" => shard.clone()).set(s.cache_bytes as f64);
    let estimates: Vec<u64> = s.subscriber_estimates.iter().map(|(_, e)| *e).collect();
    let min = estimates.iter().min().copied().unwrap_or(0);
    let mean = if estimates.is_empty() { 0 } else { estimates.iter().sum::<u64>() / estimates.len() as u64 };
    gauge!(SUBSCRIBER_ESTIMATE_MIN, "shard" => shard.clone()).set(min as f64);
    gauge!(SUBSCRIBER_ESTIMATE_MEAN, "shard" => shard.clone()).set(mean as f64);
    set(PLIS_RECEIVED, s.plis_received);
    set(PLIS_SENT, s.plis_sent);
    for reason in DropReason::ALL {
        counter!(PACKETS_DROPPED, "shard" => shard.clone(), "reason" => reason.as_str())
            .absolute(s.drops_for(reason));
    }
    set(super::names::TCP_ACCEPTED, s.tcp_accepted);
    set(super::names::TCP_HANDED_OVER, s.tcp_handed_over);
    set(super::names::TCP_REJECTED, s.tcp_rejected);
    set(super::names::SHARD_PANICS, s.panics);
    set(super::names::TCP_PACKETS_IN, s.tcp_packets_in);
    set(super::names::TCP_PACKETS_OUT, s.tcp_packets_out);
    gauge!(super::names::TCP_CONNECTIONS, "shard" => shard.clone()).set(s.tcp_connections as f64);
    gauge!(SESSIONS, "shard" => shard.clone()).set(s.sessions as f64);
    gauge!(UPTRACKS, "shard" => shard.clone()).set(s.uptracks as f64);
    gauge!(DOWNTRACKS, "shard" => shard.clone()).set(s.downtracks as f64);
    with_extra(s.shard, |e| e.busy_ns = s.busy_ns);
    record_shard_retransmissions(s.shard, s.retransmissions);
    record_send_batch_sizes(s.shard, &s.send_batch_sizes, s.send_batch_datagrams);
}

/// Retransmissions a shard sent in answer to NACKs (cumulative).
pub fn record_shard_retransmissions(shard: usize, total: u64) {
    if super::installed() {
        counter!(RETRANSMISSIONS, "shard" => shard.to_string()).absolute(total);
    }
}

/// A shard's cumulative send batch histogram: `buckets[i]` counts batches
/// whose size falls in bucket `send_batch_bucket(size) == i` (per bucket,
/// not cumulative: one increment on the send path), `sum` is the total
/// datagrams sent in batches.
pub fn record_send_batch_sizes(shard: usize, buckets: &[u64; SEND_BATCH_BUCKETS], sum: u64) {
    if super::installed() {
        with_extra(shard, |e| e.batches = Some((*buckets, sum)));
    }
}

/// Appends the hand-rendered families in text format 0.0.4.
pub(super) fn render_custom(out: &mut String) {
    let map = EXTRA.lock().unwrap_or_else(|p| p.into_inner());
    render_into(out, &map);
}

fn render_into(out: &mut String, map: &BTreeMap<usize, Extra>) {
    // fmt::Write into a String cannot fail; results are ignored for that reason.
    if !map.is_empty() {
        let _ = writeln!(
            out,
            "# HELP {SHARD_BUSY_SECONDS} Time each shard spent handling I/O and messages, not waiting.\n\
             # TYPE {SHARD_BUSY_SECONDS} counter"
        );
        for (shard, e) in map {
            let secs = e.busy_ns as f64 / 1e9;
            let _ = writeln!(out, "{SHARD_BUSY_SECONDS}{{shard=\"{shard}\"}} {secs}");
        }
        out.push('\n');
    }
    if map.values().any(|e| e.batches.is_some()) {
        let _ = writeln!(
            out,
            "# HELP {SEND_BATCH_SIZE} Datagrams per batched send call, per shard.\n\
             # TYPE {SEND_BATCH_SIZE} histogram"
        );
        for (shard, e) in map {
            let Some((buckets, sum)) = &e.batches else {
                continue;
            };
            let mut cumulative = 0u64;
            for (i, count) in buckets.iter().enumerate() {
                cumulative = cumulative.saturating_add(*count);
                let le = match SEND_BATCH_BOUNDS.get(i) {
                    Some(b) => b.to_string(),
                    None => "+Inf".to_string(),
                };
                let _ = writeln!(
                    out,
                    "{SEND_BATCH_SIZE}_bucket{{shard=\"{shard}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(out, "{SEND_BATCH_SIZE}_sum{{shard=\"{shard}\"}} {sum}");
            let _ = writeln!(
                out,
                "{SEND_BATCH_SIZE}_count{{shard=\"{shard}\"}} {cumulative}"
            );
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_of_batch_size() {
        let cases = [
            (0, 0),
            (1, 0),
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 3),
            (8, 3),
            (9, 4),
            (32, 5),
            (33, 6),
            (64, 6),
            (65, 7),
            (usize::MAX, 7),
        ];
        for (n, b) in cases {
            assert_eq!(send_batch_bucket(n), b, "n={n}");
        }
        // Each size lands in the first bucket whose bound holds it.
        for n in 1..200usize {
            let b = send_batch_bucket(n);
            match SEND_BATCH_BOUNDS.get(b) {
                Some(&bound) => {
                    assert!(n as u64 <= bound);
                    if b > 0 {
                        assert!(n as u64 > SEND_BATCH_BOUNDS[b - 1]);
                    }
                }
                None => assert!(n as u64 > SEND_BATCH_BOUNDS[SEND_BATCH_BOUNDS.len() - 1]),
            }
        }
    }

    #[test]
    fn histogram_text_is_cumulative() {
        let mut map = BTreeMap::new();
        map.insert(
            3,
            Extra {
                busy_ns: 1_500_000_000,
                batches: Some(([5, 0, 2, 0, 0, 1, 0, 1], 5 + 2 * 3 + 20 + 100)),
            },
        );
        let mut out = String::new();
        render_into(&mut out, &map);
        assert!(
            out.contains("sfud_shard_busy_seconds_total{shard=\"3\"} 1.5\n"),
            "{out}"
        );
        assert!(out.contains("sfud_send_batch_size_bucket{shard=\"3\",le=\"1\"} 5\n"));
        assert!(out.contains("sfud_send_batch_size_bucket{shard=\"3\",le=\"4\"} 7\n"));
        assert!(out.contains("sfud_send_batch_size_bucket{shard=\"3\",le=\"32\"} 8\n"));
        assert!(out.contains("sfud_send_batch_size_bucket{shard=\"3\",le=\"+Inf\"} 9\n"));
        assert!(out.contains("sfud_send_batch_size_sum{shard=\"3\"} 131\n"));
        assert!(out.contains("sfud_send_batch_size_count{shard=\"3\"} 9\n"));
    }

    #[test]
    fn nothing_rendered_without_data() {
        let mut out = String::new();
        render_into(&mut out, &BTreeMap::new());
        assert!(out.is_empty());
    }
}
