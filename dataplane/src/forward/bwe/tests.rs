//! The estimator against simulated paths: feedback is written with the real
//! transport-cc writer and fed back through the parser.

use super::*;
use crate::rtcp::twcc::write_twcc;
use crate::rtcp::{iter_compound, RtcpPacket};
use proptest::prelude::*;

/// Receiver clock offset: the subscriber's time base has nothing to do with ours.
const REMOTE_EPOCH_US: i64 = 987_654_321;
const FEEDBACK_EVERY_US: i64 = 100_000;

fn at(t0: Instant, us: i64) -> Instant {
    t0 + Duration::from_micros(us as u64)
}

/// Writes transport-cc feedback for `pending` and hands its FCI to `bwe`.
fn feedback(
    bwe: &mut BandwidthEstimator,
    pending: &[(u16, Option<i64>)],
    fb_count: u8,
    now: Instant,
) {
    let reference = pending.iter().find_map(|p| p.1).unwrap_or(0);
    let mut out = [0u8; 4096];
    let n = write_twcc(&mut out, 1, 2, pending[0].0, fb_count, reference, pending).unwrap();
    let Some(Ok(RtcpPacket::TransportCc { fci, .. })) = iter_compound(&out[..n]).next() else {
        panic!("not transport-cc");
    };
    bwe.on_twcc(fci, now, &mut Vec::new()).unwrap();
}

/// Sends `packets` of `size` bytes every `interval_us` from `t0`;
/// `arrival(i, send_us)` is packet i's arrival on the receiver's clock (from
/// its send time), `None` if lost. Feedback covers everything sent, every
/// 100 ms. Returns the stats after each feedback.
fn run(
    bwe: &mut BandwidthEstimator,
    t0: Instant,
    packets: u32,
    interval_us: i64,
    size: usize,
    arrival: impl Fn(u32, i64) -> Option<i64>,
) -> Vec<BweStats> {
    let mut pending = Vec::new();
    let mut stats = Vec::new();
    let mut next_feedback = FEEDBACK_EVERY_US;
    for i in 0..packets {
        let send_us = i64::from(i) * interval_us;
        if send_us >= next_feedback {
            feedback(bwe, &pending, stats.len() as u8, at(t0, send_us));
            stats.push(bwe.stats());
            pending.clear();
            next_feedback += FEEDBACK_EVERY_US;
        }
        let seq = i as u16;
        bwe.on_sent(seq, size, None, at(t0, send_us));
        pending.push((seq, arrival(i, send_us).map(|a| REMOTE_EPOCH_US + a)));
    }
    stats
}

/// 1200 bytes every 10 ms: 960 kbit/s.
const SIZE: usize = 1200;
const INTERVAL_US: i64 = 10_000;
const RATE_BPS: u64 = 960_000;

#[test]
fn steady_link_rises_to_the_acked_rate_and_stays() {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(300_000);
    assert_eq!(bwe.estimate_bps(), 300_000);
    let stats = run(&mut bwe, t0, 4000, INTERVAL_US, SIZE, |_, s| {
        Some(s + 30_000)
    });
    assert!(stats.iter().all(|s| s.usage == BandwidthUsage::Normal));
    // Rising after 5 s...
    assert!(stats[50].estimate_bps > 400_000, "{:?}", stats[50]);
    // ... to (and no further than) 1.5 times the acknowledged rate.
    let end = bwe.stats();
    assert_eq!(end.acked_bps, Some(RATE_BPS));
    let cap = RATE_BPS * 3 / 2 + 10_000;
    assert!(
        end.estimate_bps > cap * 9 / 10 && end.estimate_bps <= cap,
        "{end:?}"
    );
    assert!(stats[300..].iter().all(|s| s.estimate_bps <= cap));
    assert_eq!(end.loss_ratio, 0.0);
    assert_eq!(end.unknown_seqs, 0);
    assert!(end.delay_based_bps.is_some());
}

#[test]
fn growing_delay_decreases_to_below_the_acked_rate() {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(2_000_000);
    // The path delivers one packet per 12.5 ms: a queue grows by 2.5 ms per packet.
    let stats = run(&mut bwe, t0, 500, INTERVAL_US, SIZE, |i, _| {
        Some(30_000 + 12_500 * i64::from(i))
    });
    assert!(stats.iter().any(|s| s.usage == BandwidthUsage::Overusing));
    let delivered = RATE_BPS * 10 / 125 * 10; // 768 kbit/s
    let end = bwe.stats();
    assert!(
        end.acked_bps.unwrap().abs_diff(delivered) < delivered / 20,
        "{end:?}"
    );
    assert!(end.estimate_bps < delivered * 9 / 10, "{end:?}");
    assert!(end.estimate_bps > delivered / 2, "{end:?}");
    assert!(end.delay_trend_ms > end.delay_threshold_ms);
}

#[test]
fn five_percent_loss_holds() {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(1_000_000);
    let stats = run(&mut bwe, t0, 1000, INTERVAL_US, SIZE, |i, s| {
        (i % 20 != 0).then_some(s + 30_000)
    });
    let end = bwe.stats();
    assert!((end.loss_ratio - 0.05).abs() < 1e-9, "{end:?}");
    assert_eq!(end.loss_based_bps, 1_000_000);
    assert_eq!(end.estimate_bps, 1_000_000);
    // the delay part alone would have gone higher
    assert!(end.delay_based_bps.unwrap() > 1_000_000);
    assert!(stats.iter().all(|s| s.estimate_bps == 1_000_000));
}

#[test]
fn twenty_percent_loss_decreases() {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(1_000_000);
    let stats = run(&mut bwe, t0, 1000, INTERVAL_US, SIZE, |i, s| {
        (i % 5 != 0).then_some(s + 30_000)
    });
    let end = bwe.stats();
    assert!((end.loss_ratio - 0.2).abs() < 1e-9, "{end:?}");
    assert!(end.estimate_bps < 200_000, "{end:?}");
    assert!(end.estimate_bps >= MIN_BPS);
    // and never went up on the way
    assert!(stats
        .windows(2)
        .all(|w| w[1].estimate_bps <= w[0].estimate_bps));
}

#[test]
fn receiver_report_loss_without_transport_cc() {
    let t0 = Instant::now();
    let s = Duration::from_secs(1);
    let mut hold = BandwidthEstimator::new(1_000_000);
    let mut cut = BandwidthEstimator::new(1_000_000);
    let mut grow = BandwidthEstimator::new(1_000_000);
    for k in 0..10 {
        hold.on_loss_fraction(13, t0 + s * k); // 5%
        cut.on_loss_fraction(51, t0 + s * k); // 20%
        grow.on_loss_fraction(0, t0 + s * k);
    }
    assert_eq!(hold.estimate_bps(), 1_000_000);
    assert!(cut.estimate_bps() < 500_000, "{:?}", cut.stats());
    assert!(grow.estimate_bps() > 1_900_000, "{:?}", grow.stats());
    assert_eq!(grow.stats().delay_based_bps, None);
}

#[test]
fn receiver_reports_are_ignored_while_transport_cc_flows() {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(1_000_000);
    run(&mut bwe, t0, 50, INTERVAL_US, SIZE, |_, s| Some(s + 30_000));
    let before = bwe.estimate_bps();
    bwe.on_loss_fraction(255, at(t0, 600_000));
    assert_eq!(bwe.estimate_bps(), before);
    assert_eq!(bwe.stats().ignored_loss_reports, 1);
    // long after the last feedback they count again
    bwe.on_loss_fraction(255, at(t0, 10_000_000));
    assert!(bwe.estimate_bps() < before);
}

#[test]
fn remb_caps_the_estimate() {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(1_000_000);
    assert!(!bwe.held_by_remb(), "no REMB, nothing held");
    bwe.on_remb(200_000, t0);
    assert_eq!(bwe.estimate_bps(), 200_000);
    assert_eq!(bwe.stats().remb_bps, Some(200_000));
    assert!(bwe.held_by_remb(), "the REMB is what holds it: probing cannot help");
    // Under a steady link the estimate climbs, but never past the REMB.
    let stats = run(&mut bwe, t0, 1000, INTERVAL_US, SIZE, |_, s| {
        Some(s + 30_000)
    });
    assert!(stats.iter().all(|s| s.estimate_bps <= 200_000));
    // A higher REMB lifts the cap; the estimate then climbs from where it was.
    bwe.on_remb(10_000_000, at(t0, 10_000_000));
    assert_eq!(bwe.estimate_bps(), 200_000);
    assert!(!bwe.held_by_remb(), "now the estimate itself is the limit: probes may raise it");
    // A tiny REMB is still clamped to the minimum.
    bwe.on_remb(1, at(t0, 10_000_000));
    assert_eq!(bwe.estimate_bps(), MIN_BPS);
}

#[test]
fn feedback_about_unknown_or_evicted_packets_is_ignored() {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(1_000_000);
    // nothing sent at all
    let never: Vec<_> = (100u16..110)
        .map(|s| (s, Some(1000 * i64::from(s))))
        .collect();
    feedback(&mut bwe, &never, 0, t0);
    let s = bwe.stats();
    assert_eq!(
        (s.unknown_seqs, s.feedbacks, s.delay_based_bps),
        (10, 0, None)
    );
    assert_eq!(s.estimate_bps, 1_000_000);
    // 5000 sent: the first 904 have left the 4096-entry history
    for i in 0..5000u16 {
        bwe.on_sent(i, SIZE, None, at(t0, i64::from(i) * 1000));
    }
    let old: Vec<_> = (0u16..50).map(|s| (s, Some(1000 * i64::from(s)))).collect();
    feedback(&mut bwe, &old, 1, at(t0, 5_000_000));
    let s = bwe.stats();
    assert_eq!(
        (s.unknown_seqs, s.feedbacks, s.delay_based_bps),
        (60, 0, None)
    );
    assert_eq!(s.estimate_bps, 1_000_000);
    // seqs past the newest sent are unknown too
    let ahead: Vec<_> = (5000u16..5005).map(|s| (s, None)).collect();
    feedback(&mut bwe, &ahead, 2, at(t0, 5_000_000));
    assert_eq!(bwe.stats().unknown_seqs, 65);
}

#[test]
fn repeated_reports_count_once() {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(1_000_000);
    for i in 0..20u16 {
        bwe.on_sent(i, SIZE, None, at(t0, i64::from(i) * 10_000));
    }
    // 10 lost, reported twice, then 10 received: 10 losses in 20, not 20 in 30.
    let lost: Vec<_> = (0u16..10).map(|s| (s, None)).collect();
    feedback(&mut bwe, &lost, 0, at(t0, 200_000));
    feedback(&mut bwe, &lost, 1, at(t0, 210_000));
    let got: Vec<_> = (10u16..20)
        .map(|s| (s, Some(40_000 + 10_000 * i64::from(s))))
        .collect();
    feedback(&mut bwe, &got, 2, at(t0, 300_000));
    assert!(
        (bwe.stats().loss_ratio - 0.5).abs() < 1e-9,
        "{:?}",
        bwe.stats()
    );
}

#[test]
fn malformed_feedback_is_an_error() {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(1_000_000);
    assert!(bwe.on_twcc(&[], t0, &mut Vec::new()).is_err());
    assert!(bwe.on_twcc(&[0, 1, 0, 5, 0, 0, 0, 0], t0, &mut Vec::new()).is_err());
    assert!(bwe
        .on_twcc(&[0, 1, 0, 5, 0, 0, 0, 0, 0x20, 5, 1, 2], t0, &mut Vec::new())
        .is_err());
    assert_eq!(bwe.stats().feedbacks, 0);
}

#[test]
fn reference_time_unwraps_across_24_bits() {
    let mut bwe = BandwidthEstimator::new(1_000_000);
    let top = 0x7f_ffff * 64_000;
    assert_eq!(bwe.unwrap_reference(top), top);
    // the next tick reads as the most negative value
    assert_eq!(bwe.unwrap_reference(-0x80_0000 * 64_000), top + 64_000);
    // and slightly backwards (reordered feedback) stays backwards
    assert_eq!(bwe.unwrap_reference(top - 64_000), top - 64_000);
}

#[test]
fn initial_estimate_is_clamped() {
    assert_eq!(BandwidthEstimator::new(0).estimate_bps(), MIN_BPS);
    assert_eq!(BandwidthEstimator::new(u64::MAX).estimate_bps(), MAX_BPS);
}

proptest! {
    #[test]
    fn random_feedback_never_panics(
        fcis in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 1..8),
        sent in 0u16..200,
    ) {
        let t0 = Instant::now();
        let mut bwe = BandwidthEstimator::new(500_000);
        for i in 0..sent {
            bwe.on_sent(i, 1000, None, at(t0, i64::from(i) * 1000));
        }
        for (k, mut fci) in fcis.into_iter().enumerate() {
            // Aim some at what was sent, with a small status count.
            if fci.len() >= 4 && k % 2 == 0 {
                fci[0] = 0;
                fci[2] = 0;
            }
            let _ = bwe.on_twcc(&fci, at(t0, 300_000 + k as i64 * 50_000), &mut Vec::new());
            let e = bwe.estimate_bps();
            prop_assert!((MIN_BPS..=MAX_BPS).contains(&e));
        }
    }
}

#[test]
fn the_first_report_of_a_lost_media_packet_is_handed_on_once() {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(1_000_000);
    let media = |seq| Some(SentMedia { ssrc: 7, seq, attempt: 0 });
    bwe.on_sent(0, 1000, media(100), t0);
    bwe.on_sent(1, 1000, media(101), at(t0, 1000));
    // A probe's copy: nobody repairs it.
    bwe.on_sent(2, 1000, None, at(t0, 2000));
    bwe.on_sent(3, 1000, media(102), at(t0, 3000));
    let report = |bwe: &mut BandwidthEstimator, now| {
        let pending = [(0, Some(REMOTE_EPOCH_US)), (1, None), (2, None), (3, Some(REMOTE_EPOCH_US + 3000))];
        let mut out = [0u8; 256];
        let n = write_twcc(&mut out, 1, 2, 0, 0, REMOTE_EPOCH_US, &pending).unwrap();
        let Some(Ok(RtcpPacket::TransportCc { fci, .. })) = iter_compound(&out[..n]).next() else { panic!() };
        let mut lost = Vec::new();
        bwe.on_twcc(fci, now, &mut lost).unwrap();
        lost
    };
    assert_eq!(report(&mut bwe, at(t0, 50_000)), vec![media(101).unwrap()]);
    // Feedback windows overlap: the same report again is no news.
    assert!(report(&mut bwe, at(t0, 100_000)).is_empty());
}

#[test]
fn one_feedback_hands_on_a_bounded_number_of_losses() {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(1_000_000);
    let mut pending = Vec::new();
    for i in 0..200u16 {
        bwe.on_sent(i, 1000, Some(SentMedia { ssrc: 7, seq: i, attempt: 0 }), at(t0, i64::from(i) * 100));
        pending.push((i, (i == 0 || i == 199).then_some(REMOTE_EPOCH_US + i64::from(i) * 100)));
    }
    let mut out = [0u8; 1024];
    let n = write_twcc(&mut out, 1, 2, 0, 0, REMOTE_EPOCH_US, &pending).unwrap();
    let Some(Ok(RtcpPacket::TransportCc { fci, .. })) = iter_compound(&out[..n]).next() else { panic!() };
    let mut lost = Vec::new();
    bwe.on_twcc(fci, at(t0, 50_000), &mut lost).unwrap();
    assert_eq!(lost.len(), MAX_LOST_PER_FEEDBACK);
}
