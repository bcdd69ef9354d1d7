//! Screen shares through the shard: a video uptrack's video-content-type
//! is reported once when first seen and again only when it changes, and it
//! reaches the subscriber under the subscriber's id.

use std::time::Instant;

use crate::msg::{Event, ExtIds};
use crate::rtp;
use crate::shard::tests::{addr, down_spec, protect, setup_with, take_for, up_spec, PUB_SSRC, TRACK};
use crate::shard::core::ShardCore;
use crate::shard::outbox::Outbox;
use crate::srtp::SrtpProfile;

const PUB_ID: u8 = 7;
const SUB_ID: u8 = 11;

fn video(seq: u16, content: Option<u8>) -> Vec<u8> {
    let mut pkt = vec![0u8; 200];
    let f = rtp::HeaderFields { marker: true, payload_type: 96, sequence: seq, timestamp: u32::from(seq) * 3000, ssrc: PUB_SSRC };
    let c = [content.unwrap_or(0)];
    let exts: &[(u8, &[u8])] = if content.is_some() { &[(PUB_ID, &c)] } else { &[] };
    let h = rtp::write_header_with_extensions(&mut pkt, &f, exts).unwrap();
    pkt.truncate(h);
    // A VP8 keyframe's payload descriptor and header, so nothing waits.
    pkt.extend_from_slice(&[0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]);
    pkt
}

#[test]
fn a_screen_share_is_reported_on_change_and_passed_on() {
    let now = Instant::now();
    let mut core = ShardCore::new(0);
    let mut out = Outbox::new(1);
    let mut up = up_spec();
    up.ext = ExtIds { video_content_type: Some(PUB_ID), ..Default::default() };
    let mut down = down_spec();
    down.ext = ExtIds { video_content_type: Some(SUB_ID), ..Default::default() };
    let (mut publisher, mut viewer) = setup_with(&mut core, &mut out, now, SrtpProfile::AeadAes128Gcm, up, down);
    out.clear_datagrams();
    out.events.clear();
    let reported = |out: &mut Outbox| -> Vec<bool> {
        out.events.drain(..).filter_map(|e| if let Event::UptrackContent { track, screen } = e { assert_eq!(track, TRACK); Some(screen) } else { None }).collect()
    };
    // Packet 5's change comes within a second of the first report: it is
    // reported by packet 6, the first after that second that carries it.
    let later = now + std::time::Duration::from_secs(1);
    for (seq, content, at) in [(1, None, now), (2, Some(1), now), (3, None, now), (4, Some(1), now), (5, Some(0), now), (6, Some(0), later), (7, Some(0), later)] {
        let mut p = protect(&mut publisher.tx, &video(seq, content));
        core.handle_datagram(addr(5000), &mut p, at, &mut out);
    }
    assert_eq!(reported(&mut out), vec![true, false], "first value, then the change only, at most once a second");
    // What the viewer got: packet 2 carries the content type under its id.
    let marked: Vec<Option<Vec<u8>>> = take_for(&mut out, addr(6000))
        .into_iter()
        .map(|mut d| {
            let len = d.len();
            let n = viewer.rx.unprotect_rtp(&mut d, len).expect("viewer decrypts");
            let h = rtp::parse(&d[..n]).unwrap();
            rtp::extension(&d[..n], &h, SUB_ID).map(<[u8]>::to_vec)
        })
        .collect();
    assert_eq!(marked.iter().filter(|m| m.as_deref() == Some(&[1][..])).count(), 2, "{marked:?}");
}

/// A priority set before the subscriber's session lands on this shard (the
/// rooms core ranks a screen share as soon as it is seen, often before the
/// subscriber's ICE completes) holds once it does: the shard builds the
/// downtrack from its registry copy, which `SetPriority` updates too.
#[test]
fn a_priority_set_before_the_claim_is_kept() {
    use crate::msg::Command;
    use crate::shard::tests::{binding, registered_unclaimed, SUB};
    let now = Instant::now();
    let (mut core, mut out) = registered_unclaimed(now);
    core.handle_command(Command::SetPriority { session: SUB, track: TRACK, priority: 2 }, now, &mut out);
    assert!(core.downtracks.get(&TRACK).is_none_or(|l| l.is_empty()), "not claimed here yet");
    let mut b = binding("subu");
    core.handle_datagram(addr(6000), &mut b, now, &mut out);
    let dt = core.downtracks.get(&TRACK).and_then(|l| l.first()).expect("built at the claim");
    assert_eq!(dt.priority, 2);
}
