//! Byte strings are hand-built from the layouts in RFC 9628 §4.2 and §4.2.1
//! (figures 2, 3 and the scalability structure), with the group of
//! pictures libwebrtc's VP9 encoder uses for three temporal layers
//! (T0 T2 T1 T2, each referencing the picture 4, 1, 2, 1 back).
use super::*;
use proptest::prelude::*;

fn bytes(h: &str) -> Vec<u8> {
    hex::decode(h.replace(' ', "")).unwrap()
}

#[test]
fn non_flexible_delta_frame_of_an_upper_layer() {
    // I P L B | M=1 pid 0x0123 | TID=2 U=1 SID=1 D=1 | TL0PICIDX 5 | frame
    let p = bytes("e8 8123 53 05 abcd");
    let d = parse(&p).unwrap();
    assert_eq!(d.picture_id, Some(PictureId::Long(0x0123)));
    assert!(d.inter_picture_predicted && d.start_of_frame && !d.end_of_frame && !d.flexible);
    assert_eq!(
        d.layer,
        Some(LayerIndices { temporal: 2, switching_up: true, spatial: 1, inter_layer_dependent: true, tl0_pic_idx: Some(5) })
    );
    assert_eq!(d.ref_diffs(), &[] as &[u8]);
    assert_eq!(d.ss, None);
    assert_eq!(d.header_len, 5);
    assert_eq!(&p[d.header_len..], [0xab, 0xcd]);
    assert!(!d.is_keyframe_start());
}

#[test]
fn keyframe_with_scalability_structure() {
    // I L B V | pid 5 (7 bits) | TID 0 SID 0 | TL0PICIDX 0 |
    // SS: N_S=2 Y=1 G=1 | 320x180 640x360 1280x720 | N_G=4 |
    // T0 R=1 diff 4 | T2 U R=1 diff 1 | T1 U R=1 diff 2 | T2 U R=1 diff 1
    let p = bytes("aa 05 00 00 58 0140 00b4 0280 0168 0500 02d0 04 04 04 54 01 34 02 54 01 ff");
    let d = parse(&p).unwrap();
    assert!(d.is_keyframe_start());
    let ss = d.ss.as_ref().unwrap();
    assert_eq!(ss.spatial_layers, 3);
    assert_eq!(ss.resolutions.as_deref(), Some(&[(320, 180), (640, 360), (1280, 720)][..]));
    let g = ss.group.as_ref().unwrap();
    let shape: Vec<_> = g.iter().map(|p| (p.temporal, p.switching_up, p.ref_diffs().to_vec())).collect();
    assert_eq!(shape, vec![(0, false, vec![4]), (2, true, vec![1]), (1, true, vec![2]), (2, true, vec![1])]);
    assert_eq!(d.header_len, p.len() - 1);
    // Written back byte for byte.
    let mut out = [0u8; 64];
    let n = write(&d, &mut out).unwrap();
    assert_eq!(&out[..n], &p[..p.len() - 1]);
}

#[test]
fn flexible_mode_reference_list() {
    // I P L F B E | pid 0x7fff | TID 1 SID 0 | P_DIFF 1 N=1 | P_DIFF 2 N=0
    let p = bytes("fc ffff 20 03 04 00");
    let d = parse(&p).unwrap();
    assert!(d.flexible);
    assert_eq!(d.picture_id, Some(PictureId::Long(0x7fff)));
    assert_eq!(d.layer.unwrap().tl0_pic_idx, None);
    assert_eq!(d.layer.unwrap().temporal, 1);
    assert_eq!(d.ref_diffs(), &[1, 2]);
    assert_eq!(d.header_len, 6);
}

#[test]
fn minimal_descriptor_is_one_byte() {
    let d = parse(&[0x0c, 0x99]).unwrap();
    assert_eq!(d.header_len, 1);
    assert!(d.start_of_frame && d.end_of_frame && d.picture_id.is_none() && d.layer.is_none());
    assert!(d.is_keyframe_start());
}

#[test]
fn malformed_is_an_error() {
    assert_eq!(parse(&[]), Err(Vp9Error::Truncated(0)));
    // Four P_DIFFs, each saying another follows.
    assert_eq!(parse(&bytes("d0 01 03 03 03 03")), Err(Vp9Error::TooManyReferences));
    // Every strict prefix of a full header is truncated.
    let full = bytes("aa 05 00 00 58 0140 00b4 0280 0168 0500 02d0 04 04 04 54 01 34 02 54 01");
    for n in 0..full.len() {
        assert!(matches!(parse(&full[..n]), Err(Vp9Error::Truncated(_))), "prefix {n}");
    }
    let flex = bytes("fc ffff 20 03 04");
    for n in 0..flex.len() {
        assert!(matches!(parse(&flex[..n]), Err(Vp9Error::Truncated(_))), "prefix {n}");
    }
}

#[test]
fn rewrite_picture_id_and_tl0_in_place() {
    let mut p = bytes("e8 8123 53 05 abcd");
    rewrite(&mut p, Rewrite { picture_id: Some(0x7abc), tl0_pic_idx: Some(0xfe) }).unwrap();
    assert_eq!(p, bytes("e8 fabc 53 fe abcd"));
    // Ids wrap to the field's width.
    rewrite(&mut p, Rewrite { picture_id: Some(0x8001), tl0_pic_idx: None }).unwrap();
    assert_eq!(p, bytes("e8 8001 53 fe abcd"));

    let mut short = bytes("aa 05 00 00 58");
    rewrite(&mut short, Rewrite { picture_id: Some(130), tl0_pic_idx: Some(7) }).unwrap();
    assert_eq!(short, bytes("aa 02 00 07 58"));
}

#[test]
fn rewrite_of_a_missing_field_changes_nothing() {
    let mut flex = bytes("fc ffff 20 03 04 00");
    let before = flex.clone();
    assert_eq!(
        rewrite(&mut flex, Rewrite { picture_id: Some(1), tl0_pic_idx: Some(1) }),
        Err(Vp9Error::NoSuchField("TL0PICIDX"))
    );
    assert_eq!(flex, before);
    let mut no_pid = bytes("2c 00 00");
    assert_eq!(rewrite(&mut no_pid, Rewrite { picture_id: Some(1), ..Default::default() }), Err(Vp9Error::NoSuchField("picture id")));
    assert_eq!(rewrite(&mut bytes("a0 81"), Rewrite::default()), Err(Vp9Error::Truncated(2)));
    assert_eq!(rewrite(&mut bytes("a0 01 00"), Rewrite::default()), Err(Vp9Error::Truncated(3)));
}

#[test]
fn write_refuses_what_the_format_cannot_carry() {
    let mut d = parse(&bytes("e8 8123 53 05")).unwrap();
    d.flexible = true; // flexible mode has no TL0PICIDX
    assert!(matches!(write(&d, &mut [0u8; 16]), Err(Vp9Error::Inconsistent(_))));
    let d = parse(&bytes("e8 8123 53 05")).unwrap();
    assert_eq!(write(&d, &mut [0u8; 4]), Err(Vp9Error::BufferTooSmall { need: 5, have: 4 }));
}

fn arb_picture_id() -> impl Strategy<Value = Option<PictureId>> {
    prop_oneof![
        Just(None),
        (0u8..=0x7f).prop_map(|v| Some(PictureId::Short(v))),
        (0u16..=0x7fff).prop_map(|v| Some(PictureId::Long(v))),
    ]
}

fn arb_ss() -> impl Strategy<Value = ScalabilityStructure> {
    (1u8..=8, any::<bool>(), proptest::option::of(proptest::collection::vec((0u8..8, any::<bool>(), any::<[u8; 3]>(), 0u8..=3), 0..20)))
        .prop_flat_map(|(n, y, g)| {
            let res = proptest::collection::vec(any::<(u16, u16)>(), usize::from(n));
            (Just(n), if y { res.prop_map(Some).boxed() } else { Just(None).boxed() }, Just(g))
        })
        .prop_map(|(spatial_layers, resolutions, g)| ScalabilityStructure {
            spatial_layers,
            resolutions,
            group: g.map(|g| {
                g.into_iter()
                    .map(|(temporal, switching_up, mut refs, ref_count)| {
                        refs[usize::from(ref_count)..].fill(0);
                        GroupPicture { temporal, switching_up, refs, ref_count }
                    })
                    .collect()
            }),
        })
}

prop_compose! {
    fn arb_descriptor()(
        p: bool, flexible: bool, b: bool, e: bool, z: bool,
        picture_id in arb_picture_id(),
        layer in proptest::option::of((0u8..8, any::<bool>(), 0u8..8, any::<bool>(), any::<u8>())),
        refs in proptest::collection::vec(0u8..=0x7f, 1..=3),
        ss in proptest::option::of(arb_ss()),
    ) -> Vp9Descriptor {
        let mut ref_diffs = [0u8; 3];
        let ref_count = if flexible && p { refs.len() as u8 } else { 0 };
        ref_diffs[..usize::from(ref_count)].copy_from_slice(&refs[..usize::from(ref_count)]);
        let mut d = Vp9Descriptor {
            inter_picture_predicted: p, flexible, start_of_frame: b, end_of_frame: e, not_ref_for_upper: z,
            picture_id,
            layer: layer.map(|(t, u, s, dep, tl0)| LayerIndices {
                temporal: t, switching_up: u, spatial: s, inter_layer_dependent: dep,
                tl0_pic_idx: (!flexible).then_some(tl0),
            }),
            ref_diffs, ref_count, ss, header_len: 0,
        };
        d.header_len = encoded_len(&d);
        d
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..96)) {
        if let Ok(d) = parse(&buf) {
            prop_assert!(d.header_len <= buf.len());
            // What was read writes back to something that reads the same
            // (reserved bits are not kept, so compare parsed forms).
            let mut out = vec![0u8; d.header_len];
            let n = write(&d, &mut out).unwrap();
            prop_assert_eq!(n, d.header_len);
            prop_assert_eq!(parse(&out), Ok(d));
        }
        let mut copy = buf.clone();
        let _ = rewrite(&mut copy, Rewrite { picture_id: Some(77), tl0_pic_idx: Some(9) });
    }

    #[test]
    fn parse_of_write_is_identity(d in arb_descriptor(), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
        let mut out = vec![0u8; d.header_len];
        prop_assert_eq!(write(&d, &mut out), Ok(d.header_len));
        out.extend_from_slice(&tail);
        prop_assert_eq!(parse(&out), Ok(d));
    }

    #[test]
    fn rewrite_changes_only_its_fields(d in arb_descriptor(), pid: u16, tl0: u8) {
        let mut out = vec![0u8; d.header_len];
        write(&d, &mut out).unwrap();
        let w = Rewrite {
            picture_id: d.picture_id.map(|_| pid),
            tl0_pic_idx: d.layer.and_then(|l| l.tl0_pic_idx).map(|_| tl0),
        };
        rewrite(&mut out, w).unwrap();
        let mut want = d.clone();
        want.picture_id = d.picture_id.map(|p| p.with_value(pid));
        if let Some(l) = want.layer.as_mut() {
            l.tl0_pic_idx = l.tl0_pic_idx.map(|_| tl0);
        }
        prop_assert_eq!(parse(&out), Ok(want));
    }
}
