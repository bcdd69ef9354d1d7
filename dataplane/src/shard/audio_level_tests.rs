//! Audio levels through the shard: only authenticated packets of an audio
//! uptrack count, muted ones do not, and each interval ends in one
//! `Event::AudioLevels`.

use std::time::{Duration, Instant};

use crate::msg::{AudioLevelSettings, AudioLevelWindow, CodecKind, Command, Event, ExtIds, MediaKind};
use crate::rtp;
use crate::shard::core::ShardCore;
use crate::shard::outbox::Outbox;
use crate::shard::tests::{addr, down_spec, protect, setup_with, up_spec, Peer, PUB_SSRC, TRACK};
use crate::srtp::SrtpProfile;

const LEVEL_ID: u8 = 1;

fn start(now: Instant) -> (ShardCore, Outbox, Peer) {
    let mut core = ShardCore::new(0);
    let mut out = Outbox::new(1);
    let settings = AudioLevelSettings { interval: Duration::from_millis(500), threshold: 40 };
    core.handle_command(Command::SetAudioLevels(settings), now, &mut out);
    let mut up = up_spec();
    up.kind = MediaKind::Audio;
    up.codec = CodecKind::Opus;
    up.payload_type = 111;
    up.clock_rate = 48000;
    up.ext = ExtIds { audio_level: Some(LEVEL_ID), ..Default::default() };
    let mut down = down_spec();
    down.kind = MediaKind::Audio;
    down.payload_type = 111;
    down.clock_rate = 48000;
    let (publisher, _viewer) = setup_with(&mut core, &mut out, now, SrtpProfile::AeadAes128Gcm, up, down);
    out.clear_datagrams();
    core.tick(now, &mut out); // starts the interval
    out.events.clear();
    (core, out, publisher)
}

fn audio(seq: u16, level: Option<u8>) -> Vec<u8> {
    let mut pkt = vec![0u8; 200];
    let f = rtp::HeaderFields { marker: false, payload_type: 111, sequence: seq, timestamp: u32::from(seq) * 960, ssrc: PUB_SSRC };
    let lv = [0x80 | level.unwrap_or(0)];
    let exts: &[(u8, &[u8])] = if level.is_some() { &[(LEVEL_ID, &lv)] } else { &[] };
    let h = rtp::write_header_with_extensions(&mut pkt, &f, exts).unwrap();
    pkt.truncate(h);
    pkt.extend_from_slice(b"opus");
    pkt
}

fn windows(out: &mut Outbox) -> Vec<AudioLevelWindow> {
    let mut all = Vec::new();
    for ev in out.events.drain(..) {
        if let Event::AudioLevels { shard: 0, windows } = ev {
            all.extend(windows);
        }
    }
    all
}

#[test]
fn levels_are_reported_once_per_interval() {
    let now = Instant::now();
    let (mut core, mut out, mut publisher) = start(now);
    let levels = [Some(10), Some(30), Some(90), None, Some(127)];
    for (i, l) in levels.iter().enumerate() {
        let mut p = protect(&mut publisher.tx, &audio(i as u16, *l));
        core.handle_datagram(addr(5000), &mut p, now, &mut out);
    }
    // A forged packet (bad tag) and a replayed one do not count.
    let mut forged = protect(&mut publisher.tx, &audio(9, Some(0)));
    let n = forged.len();
    forged[n - 1] ^= 1;
    core.handle_datagram(addr(5000), &mut forged, now, &mut out);
    core.tick(now + Duration::from_millis(400), &mut out);
    assert!(windows(&mut out).is_empty(), "not due yet");
    core.tick(now + Duration::from_millis(500), &mut out);
    let w = windows(&mut out);
    assert_eq!(w, vec![AudioLevelWindow { track: TRACK, packets: 4, level_sum: 257, active: 2, active_level_sum: 40 }]);
    // Silence: one empty window, then nothing.
    core.tick(now + Duration::from_millis(1000), &mut out);
    assert_eq!(windows(&mut out).iter().map(|w| w.packets).collect::<Vec<_>>(), vec![0]);
    core.tick(now + Duration::from_millis(1500), &mut out);
    assert!(windows(&mut out).is_empty());
}

#[test]
fn muted_tracks_do_not_speak() {
    let now = Instant::now();
    let (mut core, mut out, mut publisher) = start(now);
    core.handle_command(Command::SetMuted { track: TRACK, muted: true }, now, &mut out);
    for seq in 0..5 {
        let mut p = protect(&mut publisher.tx, &audio(seq, Some(5)));
        core.handle_datagram(addr(5000), &mut p, now, &mut out);
    }
    core.tick(now + Duration::from_millis(500), &mut out);
    assert!(windows(&mut out).is_empty());
}

#[test]
fn the_report_deadline_wakes_the_shard() {
    let now = Instant::now();
    let (core, _out, _publisher) = start(now);
    assert!(core.poll_timeout().is_some_and(|t| t <= now + Duration::from_millis(500)));
}
