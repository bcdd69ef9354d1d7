//! Streams shaped like Chromium's: VP9 `L3T3_KEY` (K-SVC: upper spatial
//! layers predict from lower ones only on keyframes; temporal pattern
//! T0 T2 T1 T2, U set on every frame), two packets per layer frame,
//! marker on the last packet of the top layer; and the dependency
//! descriptor examples of the AV1 RTP spec (L1T3) and a two-layer K-SVC.
use super::*;
use crate::forward::dependency_descriptor::{Descriptor, FrameTemplate};
use crate::forward::vp9::{LayerIndices, PictureId};

mod captured;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Pkt {
    pid: u16,
    spatial: u8,
    temporal: u8,
    last_of_layer: bool,
    decision: Decision,
}

#[allow(clippy::too_many_arguments)]
fn vp9(pid: u16, s: u8, t: u8, predicted: bool, u: bool, d: bool, b: bool, e: bool) -> Vp9Descriptor {
    Vp9Descriptor {
        inter_picture_predicted: predicted,
        flexible: false,
        start_of_frame: b,
        end_of_frame: e,
        not_ref_for_upper: false,
        picture_id: Some(PictureId::Long(pid)),
        layer: Some(LayerIndices { temporal: t, switching_up: u, spatial: s, inter_layer_dependent: d, tl0_pic_idx: Some(0) }),
        ref_diffs: [0; 3],
        ref_count: 0,
        ss: None,
        header_len: 0,
    }
}

/// One K-SVC picture through the filter: `layers` spatial layers, two
/// packets each. Keyframes: P=0, D=1 above S0. Deltas: P=1, D=0.
fn picture(f: &mut SvcFilter, pid: u16, temporal: u8, key: bool, u: bool, layers: u8) -> Vec<Pkt> {
    let ts = u32::from(pid) * 3000;
    let mut out = Vec::new();
    for s in 0..layers {
        for k in 0..2 {
            let (b, e) = (k == 0, k == 1);
            let d = vp9(pid, s, temporal, !key, u, key && s > 0, b, e);
            let marker = e && s == layers - 1;
            out.push(Pkt { pid, spatial: s, temporal, last_of_layer: e, decision: f.vp9(&d, ts, marker) });
        }
    }
    out
}

/// Pictures `from..to` after a keyframe at `from - 1`: T0 T2 T1 T2.
fn deltas(f: &mut SvcFilter, from: u16, to: u16) -> Vec<Pkt> {
    (from..to)
        .flat_map(|pid| {
            let t = [0, 2, 1, 2][usize::from(pid - from) % 4];
            picture(f, pid, t, false, true, 3)
        })
        .collect()
}

fn forwarded(p: &[Pkt]) -> Vec<(u16, u8, bool)> {
    p.iter()
        .filter_map(|p| match p.decision {
            Decision::Forward { marker } => Some((p.pid, p.spatial, marker)),
            Decision::Drop(_) => None,
        })
        .collect()
}

fn markers(p: &[Pkt]) -> Vec<(u16, u8)> {
    forwarded(p).into_iter().filter(|x| x.2).map(|x| (x.0, x.1)).collect()
}

fn reasons(p: &[Pkt]) -> Vec<(u16, u8, DropReason)> {
    p.iter()
        .filter_map(|p| match p.decision {
            Decision::Drop(d) => Some((d.frame, d.layers.spatial, d.reason)),
            Decision::Forward { .. } => None,
        })
        .collect()
}

#[test]
fn nothing_before_the_first_keyframe() {
    let mut f = SvcFilter::new(Layers::new(2, 2));
    let before = deltas(&mut f, 1, 3);
    assert!(forwarded(&before).is_empty());
    assert!(reasons(&before).iter().all(|r| r.2 == DropReason::WaitingForKeyframe));
    assert!(f.needs_keyframe());
    let key = picture(&mut f, 3, 0, true, false, 3);
    assert_eq!(forwarded(&key).len(), 6);
    assert_eq!(f.current(), Some(Layers::new(2, 2)));
    assert!(!f.needs_keyframe());
}

#[test]
fn dropping_spatial_layers_moves_the_marker_to_the_highest_forwarded() {
    let mut f = SvcFilter::new(Layers::new(1, 2));
    let mut p = picture(&mut f, 10, 0, true, false, 3);
    p.extend(deltas(&mut f, 11, 15));
    // S0 and S1 of every picture, whole; S2 never.
    let fwd = forwarded(&p);
    assert_eq!(fwd.len(), 5 * 4);
    assert!(fwd.iter().all(|x| x.1 <= 1));
    assert!(reasons(&p).iter().all(|r| r.1 == 2 && r.2 == DropReason::SpatialAbove));
    // One marker per picture, on the last packet of S1.
    assert_eq!(markers(&p), (10..15).map(|pid| (pid, 1)).collect::<Vec<_>>());
    assert!(p.iter().all(|x| !matches!(x.decision, Decision::Forward { marker: true }) || x.last_of_layer));
}

#[test]
fn dropping_temporal_layers_drops_whole_pictures() {
    let mut f = SvcFilter::new(Layers::new(2, 0));
    let mut p = picture(&mut f, 20, 0, true, false, 3);
    p.extend(deltas(&mut f, 21, 29));
    let pids: std::collections::BTreeSet<u16> = forwarded(&p).iter().map(|x| x.0).collect();
    assert_eq!(pids.into_iter().collect::<Vec<_>>(), [20, 21, 25]);
    // The dropped pictures are reported whole, by picture id.
    let dropped: std::collections::BTreeSet<u16> = reasons(&p).iter().map(|r| r.0).collect();
    assert_eq!(dropped.into_iter().collect::<Vec<_>>(), [22, 23, 24, 26, 27, 28]);
    assert!(reasons(&p).iter().all(|r| r.2 == DropReason::TemporalAbove));
    // The publisher's marker stays where it was (all layers forwarded).
    assert_eq!(markers(&p), [(20, 2), (21, 2), (25, 2)]);
}

#[test]
fn spatial_up_waits_for_a_keyframe() {
    let mut f = SvcFilter::new(Layers::new(0, 2));
    picture(&mut f, 1, 0, true, false, 3);
    deltas(&mut f, 2, 4);
    f.set_target(Layers::new(2, 2));
    assert!(f.needs_keyframe());
    let p = deltas(&mut f, 4, 8);
    assert!(forwarded(&p).iter().all(|x| x.1 == 0), "K-SVC deltas of S1/S2 are not decodable without a keyframe");
    assert_eq!(markers(&p), (4..8).map(|pid| (pid, 0)).collect::<Vec<_>>());
    let key = picture(&mut f, 8, 0, true, false, 3);
    assert_eq!(forwarded(&key).len(), 6);
    assert_eq!(markers(&key), [(8, 2)]);
    assert!(!f.needs_keyframe());
    assert_eq!(forwarded(&deltas(&mut f, 9, 10)).len(), 6);
}

#[test]
fn spatial_down_at_the_next_picture() {
    let mut f = SvcFilter::new(Layers::new(2, 2));
    picture(&mut f, 1, 0, true, false, 3);
    // Change the target after the first packet of picture 2.
    let ts = 2 * 3000;
    let first = f.vp9(&vp9(2, 0, 0, true, false, false, true, false), ts, false);
    assert_eq!(first, Decision::Forward { marker: false });
    f.set_target(Layers::new(0, 2));
    let mut rest = Vec::new();
    for s in 0..3u8 {
        // S0's first packet went above; each layer ends with E.
        for (b, e) in [(s > 0, false), (false, true)] {
            rest.push(f.vp9(&vp9(2, s, 0, true, false, false, b, e), ts, e && s == 2));
        }
    }
    // The picture in progress is finished as it started.
    assert!(rest.iter().all(|d| matches!(d, Decision::Forward { .. })));
    assert_eq!(rest.last(), Some(&Decision::Forward { marker: true }));
    // The next one is cut to S0, which ends it.
    let next = picture(&mut f, 3, 2, false, true, 3);
    assert_eq!(forwarded(&next), [(3, 0, false), (3, 0, true)]);
    assert!(!f.needs_keyframe());
}

#[test]
fn temporal_up_only_after_a_switching_up_point() {
    let mut f = SvcFilter::new(Layers::new(2, 0));
    picture(&mut f, 1, 0, true, false, 3);
    f.set_target(Layers::new(2, 1));
    // No forwarded frame with U=1 yet: a T1 picture (even with U) stays out.
    let early = picture(&mut f, 2, 1, false, true, 3);
    assert!(forwarded(&early).is_empty());
    assert!(reasons(&early).iter().all(|r| r.2 == DropReason::TemporalAbove));
    assert!(!f.needs_keyframe(), "temporal switching points come without keyframes");
    // A forwarded T0 picture with U=1 opens the next picture to T1.
    assert_eq!(forwarded(&picture(&mut f, 3, 0, false, true, 3)).len(), 6);
    let t1 = picture(&mut f, 4, 1, false, false, 3);
    assert_eq!(forwarded(&t1).len(), 6);
    assert_eq!(f.current(), Some(Layers::new(2, 1)));
    // Once up, the layer stays; T2 stays out (above the target).
    assert_eq!(forwarded(&picture(&mut f, 5, 1, false, false, 3)).len(), 6);
    assert!(forwarded(&picture(&mut f, 6, 2, false, true, 3)).is_empty());
}

#[test]
fn inter_layer_predicted_frame_adds_one_spatial_layer() {
    // Full SVC: an S1 frame with P=0 (predicted from S0 of its own
    // picture only) is a switching point for S1; S2 stays out (P=1).
    let mut f = SvcFilter::new(Layers::new(0, 0));
    picture(&mut f, 1, 0, true, false, 3);
    f.set_target(Layers::new(2, 0));
    let ts = 2 * 3000;
    let d = |s, p, b, e| vp9(2, s, 0, p, false, s > 0, b, e);
    let got: Vec<_> = [(0, true), (1, false), (2, true)]
        .into_iter()
        .flat_map(|(s, p)| [f.vp9(&d(s, p, true, true), ts, s == 2)])
        .collect();
    // S0 was marked as the top before S1 could be added: a switch inside a
    // picture leaves that marker (keyframes switch at the picture's start).
    assert_eq!(got[0], Decision::Forward { marker: true });
    assert_eq!(got[1], Decision::Forward { marker: true });
    assert!(matches!(got[2], Decision::Drop(Dropped { reason: DropReason::SpatialAbove, .. })));
    assert_eq!(f.current(), Some(Layers::new(1, 0)));
}

#[test]
fn a_late_packet_of_an_earlier_picture_changes_nothing() {
    let mut f = SvcFilter::new(Layers::new(1, 2));
    picture(&mut f, 1, 0, true, false, 3);
    deltas(&mut f, 2, 3);
    // A keyframe start from an old timestamp does not reset anything.
    f.set_target(Layers::new(2, 2));
    let late = f.vp9(&vp9(0, 0, 0, false, false, false, true, true), 0, false);
    assert_eq!(late, Decision::Forward { marker: false });
    assert_eq!(f.current(), Some(Layers::new(1, 2)));
    let late_s1 = f.vp9(&vp9(1, 1, 0, true, false, false, false, true), 3000, false);
    assert_eq!(late_s1, Decision::Forward { marker: true });
}

#[test]
fn unlayered_vp9_passes_untouched() {
    let mut f = SvcFilter::new(Layers::new(0, 0));
    let mut d = vp9(1, 0, 0, true, false, false, true, true);
    d.layer = None;
    assert_eq!(f.vp9(&d, 0, true), Decision::Forward { marker: true });
    assert_eq!(f.vp9(&d, 0, false), Decision::Forward { marker: false });
}

/// A structure from (spatial, temporal, DTIs as "S", "D", "R", "-").
fn structure(templates: &[(u8, u8, &str)]) -> TemplateStructure {
    let dti = |c| match c {
        'S' => Dti::Switch,
        'D' => Dti::Discardable,
        'R' => Dti::Required,
        _ => Dti::NotPresent,
    };
    TemplateStructure {
        template_id_offset: 0,
        decode_targets: templates[0].2.len() as u8,
        templates: templates
            .iter()
            .map(|&(spatial, temporal, d)| FrameTemplate {
                spatial,
                temporal,
                dtis: d.chars().map(dti).collect(),
                fdiffs: vec![],
                chain_fdiffs: vec![],
            })
            .collect(),
        chains: 0,
        protected_by: vec![],
        resolutions: None,
    }
}

/// One whole frame (one packet) from template `t`.
fn dd_frame(f: &mut SvcFilter, s: &TemplateStructure, t: u8, number: u16, ts: u32, marker: bool) -> Decision {
    let d = Descriptor {
        start_of_frame: true,
        end_of_frame: true,
        template_id: t,
        frame_number: number,
        structure: None,
        active_decode_targets: None,
        custom_dtis: None,
        custom_fdiffs: None,
        custom_chains: None,
    };
    f.dd(&d.resolve(s, u32::MAX).unwrap(), s, ts, marker)
}

#[test]
fn dd_temporal_layers_by_decode_target() {
    // AV1 RTP spec A.6.1: decode targets 30, 15, 7.5 fps.
    let s = structure(&[(0, 0, "SSS"), (0, 0, "SSS"), (0, 1, "SD-"), (0, 2, "D--"), (0, 2, "D--")]);
    let mut f = SvcFilter::new(Layers::new(0, 0));
    // Templates of one GOP after the keyframe: T0 T2 T1 T2.
    let gop = [1u8, 3, 2, 4];
    let mut n = 0u16;
    let mut run = |f: &mut SvcFilter, templates: &[u8]| -> Vec<bool> {
        templates
            .iter()
            .map(|&t| {
                n += 1;
                matches!(dd_frame(f, &s, t, n, u32::from(n) * 3000, true), Decision::Forward { .. })
            })
            .collect()
    };
    assert_eq!(run(&mut f, &[0]), [true]);
    assert_eq!(run(&mut f, &gop), [true, false, false, false]);
    f.set_target(Layers::new(0, 2));
    // A T2 frame is no switch point for 30 fps; the T1 frame is (its DTI
    // for 30 fps is S: it references only the T0 frame, forwarded).
    assert_eq!(run(&mut f, &[3, 2, 4]), [false, true, true]);
    assert_eq!(run(&mut f, &gop), [true, true, true, true]);
    assert_eq!(f.current(), Some(Layers::new(0, 2)));
    // Down to 15 fps: T2 frames are dropped as not in that target.
    f.set_target(Layers::new(0, 1));
    assert_eq!(run(&mut f, &gop), [true, false, true, false]);
}

#[test]
fn dd_k_svc_spatial_layers_and_marker() {
    // Two spatial layers, K-SVC: decode target 0 = S0, 1 = S1. S0 deltas
    // are not part of S1's target.
    let s = structure(&[(0, 0, "SS"), (0, 0, "R-"), (1, 0, "-S"), (1, 0, "-R")]);
    let mut f = SvcFilter::new(Layers::new(1, 0));
    let mut ts = 0;
    let mut pic = |f: &mut SvcFilter, key: bool| {
        ts += 3000;
        let (t0, t1) = if key { (0, 2) } else { (1, 3) };
        let n = (ts / 3000) as u16 * 2;
        [dd_frame(f, &s, t0, n, ts, false), dd_frame(f, &s, t1, n + 1, ts, true)]
    };
    let key = pic(&mut f, true);
    assert_eq!(key, [Decision::Forward { marker: false }, Decision::Forward { marker: true }]);
    let delta = pic(&mut f, false);
    assert!(matches!(delta[0], Decision::Drop(Dropped { reason: DropReason::NotInDecodeTarget, frame: 4, .. })));
    assert_eq!(delta[1], Decision::Forward { marker: true });

    // Down to S0 needs a switch point of S0's target: the next keyframe.
    f.set_target(Layers::new(0, 0));
    assert!(f.needs_keyframe());
    let waiting = pic(&mut f, false);
    assert_eq!(waiting[1], Decision::Forward { marker: true });
    let key = pic(&mut f, true);
    // S0 now ends the picture, so it carries the marker; S1 is dropped.
    assert_eq!(key[0], Decision::Forward { marker: true });
    assert!(matches!(key[1], Decision::Drop(Dropped { reason: DropReason::NotInDecodeTarget, .. })));
    assert_eq!(pic(&mut f, false)[0], Decision::Forward { marker: true });
    assert!(!f.needs_keyframe());
}
