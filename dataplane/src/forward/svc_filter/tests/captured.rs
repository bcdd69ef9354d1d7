//! Packets captured from Chromium 148 sending `L3T3_KEY` (see the headers
//! of the two fixture files for how): VP9 with its payload descriptor and
//! the dependency descriptor, and AV1 with the dependency descriptor.
//! Both start with a one-layer keyframe (320x180), then a three-layer one.
use super::*;
use crate::forward::dependency_descriptor::{DdContext, FrameInfo};
use crate::forward::vp9;
use std::collections::{HashMap, HashSet};

const VP9: &str = include_str!("chromium_vp9_l3t3_key.txt");
const AV1: &str = include_str!("chromium_av1_l3t3_key.txt");

struct Captured {
    timestamp: u32,
    marker: bool,
    dd: Vec<u8>,
    head: Vec<u8>,
}

/// The packets up to the last one with the marker (the capture ends
/// inside a picture).
fn load(text: &str) -> Vec<Captured> {
    let mut c: Vec<Captured> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Captured {
                timestamp: f[1].parse().unwrap(),
                marker: f[2] == "1",
                dd: hex::decode(f[3]).unwrap(),
                head: hex::decode(f[4]).unwrap(),
            }
        })
        .collect();
    let last = c.iter().rposition(|p| p.marker).unwrap();
    c.truncate(last + 1);
    c
}

fn dd_frames(c: &[Captured]) -> (Vec<FrameInfo>, DdContext) {
    let mut cx = DdContext::default();
    let frames = c.iter().map(|p| cx.read(&p.dd).unwrap()).collect();
    (frames, cx)
}

#[test]
fn chromium_vp9_descriptors() {
    let c = load(VP9);
    let d: Vec<_> = c.iter().map(|p| vp9::parse(&p.head).unwrap()).collect();
    // Chromium sends SVC in flexible mode, with a 15-bit picture id.
    assert!(d.iter().all(|d| d.flexible && matches!(d.picture_id, Some(PictureId::Long(_))) && d.layer.is_some()));
    assert!(d.iter().all(|d| d.inter_picture_predicted == (d.ref_count > 0)));
    // It sets U on every layer frame.
    assert!(d.iter().all(|d| d.layer.unwrap().switching_up));
    assert!(d[0].is_keyframe_start());
    assert_eq!(d[0].ss.as_ref().unwrap().resolutions.as_deref(), Some(&[(320, 180)][..]));
    let key3 = d.iter().find(|d| d.ss.as_ref().is_some_and(|s| s.spatial_layers == 3)).unwrap();
    assert_eq!(key3.ss.as_ref().unwrap().resolutions.as_deref(), Some(&[(320, 180), (640, 360), (1280, 720)][..]));
    assert!(key3.is_keyframe_start());
    // The pictures count up by one.
    let pids: Vec<u16> = d.iter().map(|d| d.picture_id.unwrap().value()).collect();
    assert!(pids.windows(2).all(|w| w[1] == w[0] || w[1] == (w[0] + 1) & 0x7fff));
}

#[test]
fn chromium_dependency_descriptor_agrees_with_the_vp9_descriptor() {
    let c = load(VP9);
    let (frames, cx) = dd_frames(&c);
    for (p, f) in c.iter().zip(&frames) {
        let d = vp9::parse(&p.head).unwrap();
        let l = d.layer.unwrap();
        assert_eq!((f.spatial, f.temporal), (l.spatial, l.temporal));
        assert_eq!((f.start_of_frame, f.end_of_frame), (d.start_of_frame, d.end_of_frame));
    }
    let s = cx.structure().unwrap();
    assert_eq!(s.decode_targets, 9);
    assert_eq!(s.resolutions.as_deref(), Some(&[(320, 180), (640, 360), (1280, 720)][..]));
    // Nine targets S0T0..S2T2, in that order.
    let layers: Vec<_> = (0..9).map(|dt| s.decode_target_layers(dt)).collect();
    assert_eq!(layers, [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]);
    // The one-layer start has only S0's targets active; the second
    // structure, all of them.
    assert_eq!(frames[0].active_decode_targets, 0b000_000_111);
    assert_eq!(frames.last().unwrap().active_decode_targets, 0b111_111_111);
}

/// Runs `c` through a filter, changing the target at packet indices.
fn run(c: &[Captured], mut decide: impl FnMut(&mut SvcFilter, usize) -> Decision, plan: &[(usize, Layers)]) -> Vec<Decision> {
    let mut f = SvcFilter::new(plan[0].1);
    (0..c.len())
        .map(|i| {
            if let Some((_, t)) = plan.iter().find(|(at, _)| *at == i) {
                f.set_target(*t);
            }
            decide(&mut f, i)
        })
        .collect()
}

/// What a decoder needs of the forwarded packets: layer frames whole,
/// every reference forwarded before, one marker per picture on its last
/// forwarded packet. `refs(i)` lists frame keys packet i's frame needs.
fn check_decodable<K: std::hash::Hash + Eq + Copy + std::fmt::Debug>(
    c: &[Captured],
    out: &[Decision],
    key: impl Fn(usize) -> K,
    refs: impl Fn(usize) -> Vec<K>,
) -> usize {
    let mut whole: HashMap<K, HashSet<bool>> = HashMap::new();
    let mut forwarded_frames = HashSet::new();
    let mut last_of_picture: HashMap<u32, (usize, bool)> = HashMap::new();
    let mut markers: HashMap<u32, usize> = HashMap::new();
    for (i, d) in out.iter().enumerate() {
        let fwd = matches!(d, Decision::Forward { .. });
        whole.entry(key(i)).or_default().insert(fwd);
        if !fwd {
            continue;
        }
        if forwarded_frames.insert(key(i)) {
            for r in refs(i) {
                assert!(forwarded_frames.contains(&r), "packet {i}: frame {:?} needs {r:?}, not forwarded", key(i));
            }
        }
        let ts = c[i].timestamp;
        let marker = matches!(d, Decision::Forward { marker: true });
        last_of_picture.insert(ts, (i, marker));
        *markers.entry(ts).or_default() += usize::from(marker);
    }
    assert!(whole.values().all(|v| v.len() == 1), "a layer frame was forwarded in part");
    for (ts, (i, marker)) in &last_of_picture {
        assert!(*marker, "picture {ts}: its last forwarded packet {i} has no marker");
        assert_eq!(markers[ts], 1, "picture {ts}: more than one marker");
    }
    forwarded_frames.len()
}

fn vp9_key(c: &[Captured], i: usize) -> (u16, u8) {
    let d = vp9::parse(&c[i].head).unwrap();
    (d.picture_id.unwrap().value(), d.layer.unwrap().spatial)
}

fn vp9_refs(c: &[Captured], i: usize) -> Vec<(u16, u8)> {
    let d = vp9::parse(&c[i].head).unwrap();
    let (pid, s) = vp9_key(c, i);
    let mut r: Vec<_> = d.ref_diffs().iter().map(|diff| (pid.wrapping_sub(u16::from(*diff)) & 0x7fff, s)).collect();
    if d.layer.unwrap().inter_layer_dependent {
        r.push((pid, s - 1));
    }
    r
}

/// Targets held throughout, and changed midway (up and down in both
/// directions; there is no keyframe after packet 20, so spatial layers
/// only go down).
fn plans() -> Vec<Vec<(usize, Layers)>> {
    let mut plans: Vec<Vec<(usize, Layers)>> =
        (0..3).flat_map(|s| (0..3).map(move |t| vec![(0, Layers::new(s, t))])).collect();
    plans.push(vec![(0, Layers::new(2, 0)), (100, Layers::new(2, 2)), (160, Layers::new(0, 1)), (220, Layers::new(1, 2))]);
    plans.push(vec![(0, Layers::new(1, 1)), (57, Layers::new(1, 0)), (131, Layers::new(2, 2)), (190, Layers::new(1, 1))]);
    plans
}

#[test]
fn chromium_vp9_through_the_filter_stays_decodable() {
    let c = load(VP9);
    let descriptors: Vec<_> = c.iter().map(|p| vp9::parse(&p.head).unwrap()).collect();
    for plan in plans() {
        let out = run(&c, |f, i| f.vp9(&descriptors[i], c[i].timestamp, c[i].marker), &plan);
        let n = check_decodable(&c, &out, |i| vp9_key(&c, i), |i| vp9_refs(&c, i));
        assert!(n > 0, "{plan:?}: nothing forwarded");
        // Nothing above the target in force is forwarded after the first
        // picture under it.
        let top = plan.last().unwrap().1;
        let tail_layers = out[260..].iter().zip(&descriptors[260..]).filter(|(d, _)| matches!(d, Decision::Forward { .. }));
        assert!(tail_layers.clone().all(|(_, d)| d.layer.unwrap().spatial <= top.spatial && d.layer.unwrap().temporal <= top.temporal));
    }
    // Temporal up happens without a keyframe: (2,0) -> (2,2) at packet 100
    // has T2 frames forwarded soon after.
    let plan = &plans()[9];
    let out = run(&c, |f, i| f.vp9(&descriptors[i], c[i].timestamp, c[i].marker), plan);
    let first_t2 = (100..c.len()).find(|i| matches!(out[*i], Decision::Forward { .. }) && descriptors[*i].layer.unwrap().temporal == 2);
    assert!(first_t2.is_some_and(|i| i < 130), "first T2 after the switch: {first_t2:?}");
}

#[test]
fn chromium_vp9_by_dependency_descriptor_stays_decodable() {
    let c = load(VP9);
    let (frames, _) = dd_frames(&c);
    // The structure in force for each packet: the capture has two.
    let mut cx = DdContext::default();
    let structures: Vec<_> = c
        .iter()
        .map(|p| {
            cx.read(&p.dd).unwrap();
            cx.structure().unwrap().clone()
        })
        .collect();
    let key = |i: usize| frames[i].frame_number;
    let refs = |i: usize| frames[i].fdiffs.as_slice().iter().map(|d| frames[i].frame_number.wrapping_sub(*d)).collect();
    for plan in plans() {
        let out = run(&c, |f, i| f.dd(&frames[i], &structures[i], c[i].timestamp, c[i].marker), &plan);
        assert!(check_decodable(&c, &out, key, refs) > 0, "{plan:?}");
    }
}

#[test]
fn chromium_av1_by_dependency_descriptor_stays_decodable() {
    let c = load(AV1);
    let mut cx = DdContext::default();
    let (frames, structures): (Vec<_>, Vec<_>) = c
        .iter()
        .map(|p| {
            let f = cx.read(&p.dd).unwrap();
            (f, cx.structure().unwrap().clone())
        })
        .unzip();
    assert_eq!(structures.last().unwrap().decode_targets, 9);
    // Within a temporal unit, spatial ids go up; the publisher's marker
    // ends each unit.
    for w in c.windows(2).zip(frames.windows(2)) {
        let ((a, b), (fa, fb)) = ((&w.0[0], &w.0[1]), (&w.1[0], &w.1[1]));
        if a.timestamp == b.timestamp {
            assert!(fb.spatial >= fa.spatial && !a.marker);
        }
    }
    let key = |i: usize| frames[i].frame_number;
    let refs = |i: usize| frames[i].fdiffs.as_slice().iter().map(|d| frames[i].frame_number.wrapping_sub(*d)).collect();
    for plan in plans() {
        let plan: Vec<_> = plan.into_iter().filter(|(at, _)| *at < c.len()).collect();
        let out = run(&c, |f, i| f.dd(&frames[i], &structures[i], c[i].timestamp, c[i].marker), &plan);
        assert!(check_decodable(&c, &out, key, refs) > 0, "{plan:?}");
    }
    // S0 only, all frame rates: the forwarded frames are exactly S0's.
    let out = run(&c, |f, i| f.dd(&frames[i], &structures[i], c[i].timestamp, c[i].marker), &[(0, Layers::new(0, 2))]);
    for (d, f) in out.iter().zip(&frames) {
        assert_eq!(matches!(d, Decision::Forward { .. }), f.spatial == 0);
    }
}
