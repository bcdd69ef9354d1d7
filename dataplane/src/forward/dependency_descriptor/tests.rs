//! The byte strings here are hand-built, bit by bit, from the syntax in
//! Appendix A.4.1 and the L1T3 example structure of A.6.1 (decode targets
//! 30, 15 and 7.5 fps; one chain over the T0 frames), at 1280x720; they
//! are not captured from a browser.
use super::*;
use proptest::prelude::*;

/// "1011 0..." -> bytes, zero-padded; spaces are for reading.
fn bits(s: &str) -> Vec<u8> {
    let b: Vec<u8> = s.bytes().filter(|c| *c == b'0' || *c == b'1').map(|c| c - b'0').collect();
    b.chunks(8).map(|c| c.iter().enumerate().fold(0u8, |acc, (i, v)| acc | (v << (7 - i)))).collect()
}

const L1T3_KEYFRAME: &str = concat!(
    "1 1 000000 0000000000000001", // start, end, template 0, frame 1
    "1 0 0 0 0",                   // structure attached, no other overrides
    "000000 00010",                // template id offset 0, 3 decode targets
    "00 01 01 00 11",              // layers: (0,0) (0,0) (0,1) (0,2) (0,2)
    "101010 101010 100100 010000 010000", // DTIs: SSS SSS SD- D-- D--
    "0 10011 0 10001 0 10000 0 10000 0",   // fdiffs: - | 4 | 2 | 1 | 1
    "01",                          // ns(4) = 1 chain; ns(1) per target takes no bits
    "0000 0100 0010 0001 0011",    // chain fdiffs 0 4 2 1 3
    "1 0000010011111111 0000001011001111", // resolution 1280x720
);

fn l1t3() -> TemplateStructure {
    let t = |temporal, dtis: [Dti; 3], fdiffs: &[u8], chain| FrameTemplate {
        spatial: 0,
        temporal,
        dtis: dtis.to_vec(),
        fdiffs: fdiffs.to_vec(),
        chain_fdiffs: vec![chain],
    };
    use Dti::*;
    TemplateStructure {
        template_id_offset: 0,
        decode_targets: 3,
        templates: vec![
            t(0, [Switch, Switch, Switch], &[], 0),
            t(0, [Switch, Switch, Switch], &[4], 4),
            t(1, [Switch, Discardable, NotPresent], &[2], 2),
            t(2, [Discardable, NotPresent, NotPresent], &[1], 1),
            t(2, [Discardable, NotPresent, NotPresent], &[1], 3),
        ],
        chains: 1,
        protected_by: vec![0, 0, 0],
        resolutions: Some(vec![(1280, 720)]),
    }
}

#[test]
fn keyframe_with_structure() {
    let p = bits(L1T3_KEYFRAME);
    let d = parse(&p, None).unwrap();
    assert!(d.start_of_frame && d.end_of_frame);
    assert_eq!((d.template_id, d.frame_number), (0, 1));
    assert_eq!(d.structure, Some(l1t3()));
    // And written back bit for bit.
    let mut out = [0u8; 64];
    let n = write(&d, None, &mut out).unwrap();
    assert_eq!(&out[..n], &p[..]);
}

#[test]
fn decode_target_layers_are_derived_from_the_templates() {
    let s = l1t3();
    assert_eq!((0..3).map(|dt| s.decode_target_layers(dt)).collect::<Vec<_>>(), [(0, 2), (0, 1), (0, 0)]);
    assert_eq!(s.decode_target_for(0, 2, 0b111), 0);
    assert_eq!(s.decode_target_for(0, 1, 0b111), 1);
    assert_eq!(s.decode_target_for(3, 0, 0b111), 2);
    // Only the inactive targets fit: the best active one within the wish.
    assert_eq!(s.decode_target_for(0, 2, 0b110), 1);
}

#[test]
fn context_resolves_template_only_packets() {
    let mut cx = DdContext::default();
    // Before any structure, a 3-byte descriptor cannot be resolved.
    assert_eq!(cx.read(&bits("1 1 000011 0000000000000010")), Err(DdError::NoStructure));

    let key = cx.read(&bits(L1T3_KEYFRAME)).unwrap();
    assert!(key.new_structure);
    assert_eq!((key.spatial, key.temporal), (0, 0));
    assert_eq!(key.dtis.as_slice(), [Dti::Switch; 3]);
    assert_eq!(key.active_decode_targets, 0b111);

    // Template 3: a T2 frame, discardable for 30 fps, absent from the rest.
    let f = cx.read(&bits("1 0 000011 0000000000000010")).unwrap();
    assert!(f.start_of_frame && !f.end_of_frame && !f.new_structure);
    assert_eq!((f.frame_number, f.spatial, f.temporal), (2, 0, 2));
    assert_eq!(f.dtis.as_slice(), [Dti::Discardable, Dti::NotPresent, Dti::NotPresent]);
    assert_eq!(f.fdiffs.as_slice(), [1]);
    assert_eq!(f.chain_fdiffs.as_slice(), [1]);
}

#[test]
fn frame_overrides() {
    let mut cx = DdContext::default();
    cx.read(&bits(L1T3_KEYFRAME)).unwrap();
    let p = bits(concat!(
        "1 1 000001 0000000000000101", // template 1 (T0 delta), frame 5
        "0 1 1 1 1",                   // active targets, custom DTIs, fdiffs, chains
        "011",                         // 15 and 7.5 fps active
        "11 11 10",                    // DTIs R R S
        "10 00010011 01 0001 00",      // fdiffs 20 (8 bits) and 2 (4 bits), end
        "00000101",                    // chain fdiff 5
    ));
    let f = cx.read(&p).unwrap();
    assert_eq!(f.temporal, 0);
    assert_eq!(f.active_decode_targets, 0b011);
    assert_eq!(f.dtis.as_slice(), [Dti::Required, Dti::Required, Dti::Switch]);
    assert_eq!(f.fdiffs.as_slice(), [20, 2]);
    assert_eq!(f.chain_fdiffs.as_slice(), [5]);
    // The active set persists to later packets until a structure resets it.
    assert_eq!(cx.read(&bits("1 1 000000 0000000000000110")).unwrap().active_decode_targets, 0b011);
    assert_eq!(cx.read(&bits(L1T3_KEYFRAME)).unwrap().active_decode_targets, 0b111);

    let d = parse(&p, cx.structure()).unwrap();
    let mut out = [0u8; 16];
    let n = write(&d, cx.structure(), &mut out).unwrap();
    assert_eq!(&out[..n], &p[..]);
}

#[test]
fn bad_input_is_an_error_and_changes_nothing() {
    let mut cx = DdContext::default();
    cx.read(&bits(L1T3_KEYFRAME)).unwrap();
    // Template id 9 with 5 templates from offset 0.
    assert_eq!(cx.read(&bits("1 1 001001 0000000000000010")), Err(DdError::UnknownTemplate(9)));
    let full = bits(L1T3_KEYFRAME);
    for n in 4..full.len() {
        assert_eq!(cx.read(&full[..n]), Err(DdError::Truncated), "prefix {n}");
    }
    assert_eq!(cx.read(&full[..2]), Err(DdError::Truncated));
    assert_eq!(cx.structure(), Some(&l1t3()));
    // 65 templates.
    let many = format!("1 1 000000 0000000000000001 10000 000000 00000 {}", "00 ".repeat(70));
    assert_eq!(parse(&bits(&many), None), Err(DdError::TooManyTemplates));
    // A caller's structure the format cannot hold is refused, not a panic.
    let mut wide = l1t3();
    wide.decode_targets = 40;
    let active_only = bits("1 1 000000 0000000000000001 01000 111");
    assert!(matches!(parse(&active_only, Some(&wide)), Err(DdError::Inconsistent(_))));
    let d = Descriptor { active_decode_targets: Some(1), ..parse(&bits("1 1 000000 0000000000000001"), None).unwrap() };
    assert!(matches!(write(&d, Some(&wide), &mut [0u8; 16]), Err(DdError::Inconsistent(_))));
    // Out-of-range ids in a caller's descriptor wrap modulo 64, as on the wire.
    let far = Descriptor { template_id: 66, ..d.clone() };
    assert_eq!(far.resolve(&l1t3(), 0).map(|f| f.temporal), Ok(1));
    let far = Descriptor { template_id: 250, ..d };
    assert_eq!(far.resolve(&l1t3(), 0), Err(DdError::UnknownTemplate(250)));
    // Spatial id 4.
    let deep = format!("1 1 000000 0000000000000001 10000 000000 00000 {}", "10 ".repeat(5));
    assert_eq!(parse(&bits(&deep), None), Err(DdError::LayerOutOfRange));
}

#[test]
fn write_refuses_structures_the_wire_cannot_carry() {
    let mut s = l1t3();
    s.templates[2].spatial = 2; // skips spatial id 1
    let d = Descriptor {
        start_of_frame: true,
        end_of_frame: true,
        template_id: 0,
        frame_number: 0,
        structure: Some(s),
        active_decode_targets: None,
        custom_dtis: None,
        custom_fdiffs: None,
        custom_chains: None,
    };
    assert!(matches!(write(&d, None, &mut [0u8; 64]), Err(DdError::Inconsistent(_))));
    let mut d = d;
    d.structure = Some(l1t3());
    assert_eq!(write(&d, None, &mut [0u8; 8]), Err(DdError::BufferTooSmall));
}

fn arb_structure() -> impl Strategy<Value = TemplateStructure> {
    (1u8..=8, proptest::collection::vec(0u8..3, 0..12), 0u8..64, any::<bool>())
        .prop_flat_map(|(dt, steps, offset, res)| {
            // Layers by next_layer_idc steps, clamped to the format's ids.
            let mut layers = vec![(0u8, 0u8)];
            for s in steps {
                let (sp, t) = *layers.last().unwrap();
                layers.push(match s {
                    1 if t < MAX_TEMPORAL_ID => (sp, t + 1),
                    2 if sp < MAX_SPATIAL_ID => (sp + 1, 0),
                    _ => (sp, t),
                });
            }
            let n = layers.len();
            let max_spatial = layers.last().unwrap().0;
            (
                Just((dt, offset, layers)),
                0..=dt,
                proptest::collection::vec(proptest::collection::vec(0u32..4, usize::from(dt)), n),
                proptest::collection::vec(proptest::collection::vec(1u8..=16, 0..=MAX_FDIFFS), n),
                proptest::collection::vec(proptest::collection::vec(0u8..=15, usize::from(dt)), n),
                proptest::collection::vec(any::<u8>(), usize::from(dt)),
                if res {
                    proptest::option::of(proptest::collection::vec((1u32..=65536, 1u32..=65536), usize::from(max_spatial) + 1)).boxed()
                } else {
                    Just(None).boxed()
                },
            )
        })
        .prop_map(|((dt, offset, layers), chains, dtis, fdiffs, chain_fdiffs, protect, resolutions)| TemplateStructure {
            template_id_offset: offset,
            decode_targets: dt,
            templates: layers
                .iter()
                .enumerate()
                .map(|(i, &(spatial, temporal))| FrameTemplate {
                    spatial,
                    temporal,
                    dtis: dtis[i].iter().map(|v| Dti::from_bits(*v)).collect(),
                    fdiffs: fdiffs[i].clone(),
                    chain_fdiffs: chain_fdiffs[i][..usize::from(chains)].to_vec(),
                })
                .collect(),
            chains,
            protected_by: if chains == 0 { vec![] } else { protect.iter().map(|p| p % chains).collect() },
            resolutions,
        })
}

prop_compose! {
    fn arb_descriptor(s: TemplateStructure)(
        sof: bool, eof: bool, template_id in 0u8..64, frame_number: u16,
        attach: bool,
        active in proptest::option::of(any::<u32>()),
        dtis in proptest::option::of(proptest::collection::vec(0u32..4, usize::from(s.decode_targets))),
        fdiffs in proptest::option::of(proptest::collection::vec(1u16..=4096, 0..=MAX_FDIFFS)),
        chains in proptest::option::of(proptest::collection::vec(any::<u8>(), usize::from(s.chains))),
        s in Just(s),
    ) -> Descriptor {
        let mask = all_targets(s.decode_targets);
        Descriptor {
            start_of_frame: sof, end_of_frame: eof, template_id, frame_number,
            structure: attach.then_some(s),
            active_decode_targets: active.map(|a| a & mask),
            custom_dtis: dtis.map(|d| Dtis::from_slice(&d.into_iter().map(Dti::from_bits).collect::<Vec<_>>()).unwrap()),
            custom_fdiffs: fdiffs.map(|f| Fdiffs::from_slice(&f).unwrap()),
            custom_chains: chains.map(|c| ChainFdiffs::from_slice(&c).unwrap()),
        }
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..64), with_latest: bool) {
        let latest = with_latest.then(l1t3);
        if let Ok(d) = parse(&buf, latest.as_ref()) {
            // What was read writes back to something that reads the same.
            let mut out = [0u8; 128];
            let n = write(&d, latest.as_ref(), &mut out).unwrap();
            prop_assert_eq!(parse(&out[..n], latest.as_ref()), Ok(d));
        }
        let mut cx = DdContext::default();
        if with_latest {
            cx.read(&bits(L1T3_KEYFRAME)).unwrap();
        }
        let _ = cx.read(&buf);
    }

    #[test]
    fn parse_of_write_is_identity(
        (in_force, d) in arb_structure().prop_flat_map(|s| (Just(s.clone()), arb_descriptor(s)))
    ) {
        // Without a structure of its own, a descriptor is written and read
        // against the one in force.
        let mut out = [0u8; 1024];
        let n = write(&d, Some(&in_force), &mut out).unwrap();
        prop_assert_eq!(parse(&out[..n], Some(&in_force)), Ok(d));
    }
}
