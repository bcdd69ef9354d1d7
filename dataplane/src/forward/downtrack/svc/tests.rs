//! A downtrack of an SVC track, fed the VP9 packets captured from Chromium
//! (`svc_filter/tests/chromium_vp9_l3t3_key.txt`): what a subscriber gets
//! for a spatial target, its sequence numbers and markers.
use std::time::{Duration, Instant};

use crate::forward::downtrack::{Downtrack, ResendAsk, Rewrite, SendContext, Svc};
use crate::forward::vp9;
use crate::msg::{DowntrackSpec, ExtIds, Feedback, MediaKind, SessionId, TrackId};
use crate::rtp;
use crate::shard::peer::MediaItem;

const VP9: &str = include_str!("../../svc_filter/tests/chromium_vp9_l3t3_key.txt");

/// (seq, timestamp, marker, payload head) per captured packet.
fn packets() -> Vec<(u16, u32, bool, Vec<u8>)> {
    VP9.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap(), f[2] == "1", hex::decode(f[4]).unwrap())
        })
        .collect()
}

fn downtrack() -> Downtrack {
    Downtrack::new(DowntrackSpec {
        session: SessionId(2),
        track: TrackId(1),
        kind: MediaKind::Video,
        ssrc: 99,
        payload_type: 98,
        clock_rate: 90000,
        mid: "1".into(),
        rtx: None,
        red_payload_type: None,
        ext: ExtIds::default(),
        feedback: Feedback::default(),
        priority: 0,
    })
}

/// What the subscriber received: (seq, marker, spatial id, picture ts).
struct Out {
    seq: u16,
    marker: bool,
    spatial: u8,
    ts: u32,
}

/// Runs `pkts` through `dt`, calling `at(i, dt)` before packet i.
fn run(dt: &mut Downtrack, pkts: &[(u16, u32, bool, Vec<u8>)], mut at: impl FnMut(usize, &mut Downtrack)) -> Vec<Out> {
    let now = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1500];
    let ctx = SendContext { abs_send_time: [0; 3], transport_seq: 0 };
    // The capture has holes in its seq (it kept only some packets): number
    // them anew, so the stream here is whole.
    for (i, (_, ts, marker, head)) in pkts.iter().enumerate() {
        at(i, dt);
        let d = vp9::parse(head).unwrap();
        let item = MediaItem {
            track: TrackId(1),
            layer: None,
            ext_seq: i as u64 + 65536,
            timestamp: *ts,
            marker: *marker,
            keyframe: d.is_keyframe_start(),
            vp8: false,
            vp9: true,
            av1: false,
            red: false,
            pruned: false,
            start: 0,
            carried_len: 0,
            len: head.len() as u32,
        };
        if let Rewrite::Packet { len, .. } = dt.forward(&item, Svc::Vp9(&d), &[], head, &ctx, &mut buf, now + Duration::from_millis(i as u64)) {
            let h = rtp::parse(&buf[..len]).unwrap();
            got.push(Out { seq: h.sequence, marker: h.marker, spatial: d.layer.unwrap().spatial, ts: *ts });
        }
    }
    got
}

/// Sequence numbers without holes, and one marker per picture, on its last
/// packet forwarded.
fn assert_continuous(got: &[Out]) {
    for w in got.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "a hole in the subscriber's sequence");
        if w[0].ts != w[1].ts {
            assert!(w[0].marker, "picture {} ends without a marker", w[0].ts);
        } else {
            assert!(!w[0].marker, "a marker inside picture {}", w[0].ts);
        }
    }
}

#[test]
fn the_base_layer_alone_with_continuous_seq_and_markers() {
    let pkts = packets();
    let mut dt = downtrack();
    let got = run(&mut dt, &pkts, |_, _| {});
    assert!(dt.is_svc());
    assert!(got.len() > 20 && got.len() < pkts.len(), "{} of {}", got.len(), pkts.len());
    assert!(got.iter().all(|o| o.spatial == 0));
    assert_continuous(&got);
    assert_eq!(dt.layers(), (Some(0), Some(0)));
    assert!(!dt.waiting_keyframe);
}

#[test]
fn spatial_up_asks_for_a_keyframe_and_takes_it_there() {
    let pkts = packets();
    // The capture's second keyframe (three layers, its third packet) is
    // where S2 can start; the target goes up on the first keyframe's.
    let second_key = pkts.iter().enumerate().skip(1).find(|(_, p)| vp9::parse(&p.3).unwrap().is_keyframe_start()).unwrap().0;
    let mut dt = downtrack();
    let mut asked = false;
    let got = run(&mut dt, &pkts, |i, dt| {
        if i == 1 {
            asked = dt.set_layer(Some(2), 3);
            assert!(dt.waiting_keyframe, "waiting for a keyframe to go up");
        }
    });
    assert!(asked, "switching up needs a keyframe: the caller sends a PLI");
    assert_continuous(&got);
    let first_s2 = got.iter().position(|o| o.spatial == 2).expect("S2 forwarded after the keyframe");
    let key_ts = pkts[second_key].1;
    assert!(got[first_s2].ts >= key_ts, "S2 only from the keyframe on");
    assert_eq!(dt.layers(), (Some(2), Some(2)));
}

#[test]
fn a_pause_forwards_nothing_and_a_resume_waits_for_a_keyframe() {
    let pkts = packets();
    let mut dt = downtrack();
    let mut paused = Vec::new();
    let got = run(&mut dt, &pkts, |i, dt| {
        if i == 40 {
            assert!(!dt.set_layer(None, 3), "a pause needs nothing");
        }
        if i == 41 {
            paused.push(dt.layers());
        }
    });
    assert_eq!(paused, vec![(None, None)]);
    let last = got.last().unwrap();
    assert!(pkts.iter().position(|p| p.1 == last.ts).unwrap() < 40);
    assert!(dt.set_layer(Some(0), 3), "a resume starts over from a keyframe");
}

/// Regression (e2e/svc, AV1 under a policer): the subscriber of the base
/// layer gets the marker on its last S0 packet, which the publisher did not
/// mark. A lost one resent from the cache must carry that marker again, or
/// the receiver never sees the picture end and stalls for 3 s until it asks
/// for a keyframe. Packets whose marker was the publisher's keep it, and
/// the others stay unmarked.
#[test]
fn a_resend_keeps_the_marker_moved_to_the_subscribers_top_layer() {
    use crate::forward::retransmission_cache::RetransmissionCache;
    let pkts = packets();
    let mut dt = downtrack();
    let got = run(&mut dt, &pkts, |_, _| {});
    let now = Instant::now();
    let mut cache = RetransmissionCache::new(1024, Duration::from_secs(5));
    for (i, (_, ts, marker, head)) in pkts.iter().enumerate() {
        assert!(cache.insert(i as u64 + 65536, *ts, *marker, &[], head, now));
    }
    let ctx = SendContext { abs_send_time: [0; 3], transport_seq: 0 };
    let mut buf = [0u8; 1500];
    let moved = got.iter().filter(|o| o.marker).count();
    assert!(moved > 5, "the capture's base layer ends pictures below the publisher's marker");
    // Late enough that the resend limiter allows each once.
    let later = now + Duration::from_millis(pkts.len() as u64 + 500);
    for o in &got {
        let r = dt.resend(ResendAsk::Nack { seq: o.seq, rtt: Duration::from_millis(50) }, &cache, &ctx, |_| true, &mut buf, later).expect("resent");
        let h = rtp::parse(&buf[..r.len]).unwrap();
        assert_eq!((h.sequence, h.marker), (o.seq, o.marker), "resend of {}", o.seq);
    }
}
