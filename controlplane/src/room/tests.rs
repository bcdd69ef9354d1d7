//! The rooms core, driven like the shard core: plain inputs in, the
//! commands, signals and events it queued asserted.

use std::time::{Duration, Instant};

use dataplane::msg::{AudioLevelWindow, CodecKind, Command, DowntrackSpec, SessionId, TrackId, UptrackSpec};

use super::*;
use crate::sdp::{Codec, MediaKind};

fn cfg() -> RoomsConfig {
    RoomsConfig { publisher_grace: Duration::from_secs(10), speaking_packets: 10 }
}

fn codec(name: &str) -> Codec {
    let (pt, clock_rate, channels) = if name == "opus" { (111, 48000, 2) } else { (96, 90000, 0) };
    Codec { pt, name: name.into(), clock_rate, channels, fmtp: None, rtcp_fb: Vec::new() }
}

fn track(key: &str, kind: MediaKind, codec_name: &str, stream: &str) -> Published {
    let c = codec(codec_name);
    Published {
        key: key.into(),
        kind,
        codec: c.clone(),
        stream_id: stream.into(),
        red: false,
        spec: UptrackSpec {
            track: TrackId(0),
            session: SessionId(0),
            kind,
            codec: CodecKind::from_name(codec_name),
            payload_type: c.pt,
            clock_rate: c.clock_rate,
            ssrc: None,
            mid: key.into(),
            rtx_ssrc: None,
            rtx_payload_type: None,
            red_payload_type: None,
            ext: Default::default(),
            feedback: Default::default(),
            layers: Vec::new(),
        },
    }
}

fn av(stream: &str) -> Vec<Published> {
    vec![track("0", MediaKind::Audio, "opus", stream), track("1", MediaKind::Video, "VP8", stream)]
}

fn accept(session: SessionId, t: &Track) -> Accepted {
    Accepted {
        spec: DowntrackSpec {
            session,
            track: t.id,
            kind: t.kind,
            ssrc: 1,
            payload_type: t.codec.pt,
            clock_rate: t.codec.clock_rate,
            mid: t.key.clone(),
            rtx: None,
            red_payload_type: None,
            ext: Default::default(),
            feedback: Default::default(),
            priority: 0,
        },
        codec: t.codec.clone(),
    }
}

/// An ion participant with sessions `10*n` (publisher) and `10*n + 1` (subscriber).
fn ion(core: &mut Rooms, room: &str, n: u64) -> ParticipantId {
    core.join(Join {
        room: room.into(),
        identity: format!("user{n}"),
        protocol: Protocol::Ion,
        publisher: Some(SessionId(10 * n)),
        subscriber: Some(SessionId(10 * n + 1)),
        subscribes: true,
    })
    .unwrap()
}

fn whip(core: &mut Rooms, room: &str, session: u64) -> Result<ParticipantId, RoomError> {
    core.join(Join {
        room: room.into(),
        identity: format!("whip{session}"),
        protocol: Protocol::Whip,
        publisher: Some(SessionId(session)),
        subscriber: None,
        subscribes: false,
    })
}

fn whep(core: &mut Rooms, room: &str, session: u64) -> ParticipantId {
    let id = core
        .join(Join {
            room: room.into(),
            identity: format!("whep{session}"),
            protocol: Protocol::Whep,
            publisher: None,
            subscriber: Some(SessionId(session)),
            subscribes: true,
        })
        .unwrap();
    let accepted = core.tracks(room).iter().map(|t| accept(SessionId(session), t)).collect();
    core.answer(id, accepted).unwrap();
    id
}

fn offers(out: &Outputs) -> Vec<(ParticipantId, Vec<TrackId>)> {
    out.signals
        .iter()
        .filter_map(|s| match s {
            Signal::Offer { participant, tracks } => Some((*participant, tracks.iter().map(|t| t.id).collect())),
            _ => None,
        })
        .collect()
}

fn count(out: &Outputs, f: impl Fn(&Command) -> bool) -> usize {
    out.commands.iter().filter(|c| f(c)).count()
}

#[test]
fn join_then_leave_opens_and_closes_the_room() {
    let mut core = Rooms::new(cfg());
    let a = ion(&mut core, "r", 1);
    let out = core.take();
    assert_eq!(
        out.events,
        vec![RoomEvent::RoomStarted { room: "r".into() }, RoomEvent::ParticipantJoined { room: "r".into(), identity: "user1".into() }]
    );
    assert_eq!(offers(&out), vec![(a, vec![])], "a joiner is offered the (empty) room: ion's join waits for it");
    core.leave(a, "left", Instant::now());
    let out = core.take();
    let removed: Vec<_> = out.commands.iter().filter_map(|c| if let Command::RemoveSession(s) = c { Some(*s) } else { None }).collect();
    assert_eq!(removed, vec![SessionId(11), SessionId(10)], "subscriber PC first, then publisher PC");
    assert_eq!(
        out.events,
        vec![RoomEvent::ParticipantLeft { room: "r".into(), identity: "user1".into() }, RoomEvent::RoomFinished { room: "r".into() }]
    );
    assert!(matches!(out.signals.as_slice(), [Signal::Closed { participant }] if *participant == a));
    assert_eq!(core.room_count(), 0);
    core.leave(a, "again", Instant::now());
    assert!(core.take().is_empty(), "leaving twice does nothing");
}

#[test]
fn publish_offers_the_tracks_to_every_other_participant() {
    let mut core = Rooms::new(cfg());
    let a = ion(&mut core, "r", 1);
    let b = ion(&mut core, "r", 2);
    core.take();
    core.publish(a, av("alice")).unwrap();
    let out = core.take();
    assert_eq!(count(&out, |c| matches!(c, Command::AddUptrack(s) if s.session == SessionId(10))), 2);
    let ids: Vec<TrackId> = core.tracks("r").iter().map(|t| t.id).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(offers(&out), vec![(a, vec![]), (b, ids.clone())], "a is not offered its own tracks");
    assert!(out.events.iter().all(|e| matches!(e, RoomEvent::TrackPublished { identity, .. } if identity == "user1")));

    // b's answer installs its downtracks, once.
    let accepted: Vec<_> = core.tracks("r").iter().map(|t| accept(SessionId(21), t)).collect();
    core.answer(b, accepted.clone()).unwrap();
    assert_eq!(count(&core.take(), |c| matches!(c, Command::AddDowntrack(d) if d.session == SessionId(21))), 2);
    core.answer(b, accepted).unwrap();
    assert!(core.take().commands.is_empty(), "an answer repeated installs nothing twice");

    // The same offer again changes nothing.
    core.publish(a, av("alice")).unwrap();
    assert!(core.take().is_empty());
}

#[test]
fn unpublishing_a_track_takes_it_from_subscribers() {
    let mut core = Rooms::new(cfg());
    let a = ion(&mut core, "r", 1);
    let b = ion(&mut core, "r", 2);
    core.publish(a, av("alice")).unwrap();
    core.take();
    let accepted: Vec<_> = core.tracks("r").iter().map(|t| accept(SessionId(21), t)).collect();
    core.answer(b, accepted).unwrap();
    core.take();
    let video = core.tracks("r")[1].id;
    core.publish(a, vec![track("0", MediaKind::Audio, "opus", "alice")]).unwrap();
    let out = core.take();
    assert!(matches!(out.commands[0], Command::RemoveUptrack(t) if t == video));
    assert_eq!(count(&out, |c| matches!(c, Command::RemoveDowntrack { session, track } if *session == SessionId(21) && *track == video)), 1);
    assert_eq!(offers(&out)[1].1.len(), 1, "b is offered the audio alone");
    assert_eq!(core.participant(b).unwrap().subscriptions.len(), 1);
}

#[test]
fn leaving_removes_the_leavers_tracks_from_the_others() {
    let mut core = Rooms::new(cfg());
    let a = ion(&mut core, "r", 1);
    let b = ion(&mut core, "r", 2);
    core.publish(a, av("alice")).unwrap();
    core.publish(b, av("bob")).unwrap();
    core.take();
    core.leave(a, "socket closed", Instant::now());
    let out = core.take();
    let unpublished = out.events.iter().filter(|e| matches!(e, RoomEvent::TrackUnpublished { identity, .. } if identity == "user1")).count();
    assert_eq!(unpublished, 2);
    assert_eq!(offers(&out), vec![(b, vec![])], "b is offered nothing more");
    assert_eq!(core.tracks("r").len(), 2, "bob's tracks stay");
    assert!(core.tracks("r").iter().all(|t| t.owner == b));
    assert!(!out.events.contains(&RoomEvent::RoomFinished { room: "r".into() }));
}

#[test]
fn late_joiners_are_offered_what_is_published() {
    let mut core = Rooms::new(cfg());
    let a = ion(&mut core, "r", 1);
    core.publish(a, av("alice")).unwrap();
    core.take();
    let c = ion(&mut core, "r", 3);
    assert_eq!(offers(&core.take()), vec![(c, core.tracks("r").iter().map(|t| t.id).collect())]);
    let quiet = core
        .join(Join { room: "r".into(), identity: "q".into(), protocol: Protocol::Ion, publisher: Some(SessionId(40)), subscriber: Some(SessionId(41)), subscribes: false })
        .unwrap();
    assert_eq!(offers(&core.take()), vec![(quiet, vec![])], "NoSubscribe: the data channel only");
}

#[test]
fn one_whip_publisher_per_room_and_whep_viewers_keep_their_tracks() {
    let mut core = Rooms::new(cfg());
    let p = whip(&mut core, "live", 1).unwrap();
    assert_eq!(whip(&mut core, "live", 2), Err(RoomError::RoomBusy("live".into())));
    core.publish(p, av("sfud-live")).unwrap();
    let v = whep(&mut core, "live", 5);
    let out = core.take();
    assert_eq!(count(&out, |c| matches!(c, Command::AddDowntrack(d) if d.session == SessionId(5))), 2);
    assert!(offers(&out).is_empty(), "WHIP and WHEP are never renegotiated");
    assert_eq!(core.counts("live"), RoomCounts { ion: 0, whip: 1, whep: 1 });
    assert_eq!(core.participant(v).unwrap().subscriptions.len(), 2);
}

#[test]
fn a_new_publisher_takes_over_waiting_viewers() {
    let mut core = Rooms::new(cfg());
    let t0 = Instant::now();
    let p = whip(&mut core, "live", 1).unwrap();
    core.publish(p, av("sfud-live")).unwrap();
    let v = whep(&mut core, "live", 5);
    let old: Vec<TrackId> = core.tracks("live").iter().map(|t| t.id).collect();
    core.take();
    core.leave(p, "encoder restart", t0);
    let out = core.take();
    assert!(matches!(out.commands.as_slice(), [Command::DetachUptrack(_), Command::DetachUptrack(_), Command::RemoveSession(SessionId(1))]), "detach before the session goes: {:?}", out.commands);
    assert!(core.room("live").unwrap().orphaned.is_some());

    let p2 = whip(&mut core, "live", 2).unwrap();
    core.publish(p2, av("sfud-live")).unwrap();
    let out = core.take();
    let moves: Vec<_> = out.commands.iter().filter_map(|c| if let Command::MoveDowntrack { session, from, .. } = c { Some((*session, *from)) } else { None }).collect();
    assert_eq!(moves, vec![(SessionId(5), old[0]), (SessionId(5), old[1])]);
    assert!(out.events.contains(&RoomEvent::PublisherReplaced { room: "live".into(), identity: "whip2".into(), kept: 1 }));
    let now: Vec<TrackId> = core.participant(v).unwrap().subscriptions.iter().map(|s| s.track).collect();
    assert_eq!(now, core.tracks("live").iter().map(|t| t.id).collect::<Vec<_>>(), "the viewer follows the new tracks");
    core.tick(t0 + Duration::from_secs(60));
    assert!(core.take().signals.is_empty(), "nobody waits any more");
}

#[test]
fn viewers_that_cannot_decode_the_new_publisher_end() {
    let mut core = Rooms::new(cfg());
    let p = whip(&mut core, "live", 1).unwrap();
    core.publish(p, av("s")).unwrap();
    let v = whep(&mut core, "live", 5);
    core.leave(p, "gone", Instant::now());
    let p2 = whip(&mut core, "live", 2).unwrap();
    core.take();
    core.publish(p2, vec![track("0", MediaKind::Audio, "opus", "s"), track("1", MediaKind::Video, "H264", "s")]).unwrap();
    let out = core.take();
    assert_eq!(count(&out, |c| matches!(c, Command::MoveDowntrack { .. })), 0, "half a stream is not kept");
    assert!(out.signals.iter().any(|s| matches!(s, Signal::End { participant, .. } if *participant == v)));
    assert!(out.events.contains(&RoomEvent::PublisherReplaced { room: "live".into(), identity: "whip2".into(), kept: 0 }));
}

#[test]
fn waiting_viewers_end_after_the_grace_period() {
    let mut core = Rooms::new(cfg());
    let t0 = Instant::now();
    let p = whip(&mut core, "live", 1).unwrap();
    core.publish(p, av("s")).unwrap();
    let v = whep(&mut core, "live", 5);
    core.leave(p, "gone", t0);
    core.take();
    core.tick(t0 + Duration::from_secs(9));
    assert!(core.take().signals.is_empty());
    core.tick(t0 + Duration::from_secs(10));
    assert!(matches!(core.take().signals.as_slice(), [Signal::End { participant, .. }] if *participant == v));
}

#[test]
fn without_viewers_a_leaving_publisher_is_not_waited_for() {
    let mut core = Rooms::new(cfg());
    let p = whip(&mut core, "live", 1).unwrap();
    core.publish(p, av("s")).unwrap();
    core.take();
    core.leave(p, "gone", Instant::now());
    let out = core.take();
    assert_eq!(count(&out, |c| matches!(c, Command::DetachUptrack(_))), 0);
    assert_eq!(core.room_count(), 0);
}

#[test]
fn answers_for_tracks_gone_meanwhile_install_nothing() {
    let mut core = Rooms::new(cfg());
    let a = ion(&mut core, "r", 1);
    let b = ion(&mut core, "r", 2);
    core.publish(a, av("alice")).unwrap();
    let stale: Vec<_> = core.tracks("r").iter().map(|t| accept(SessionId(21), t)).collect();
    core.publish(a, vec![]).unwrap();
    core.take();
    core.answer(b, stale).unwrap();
    assert!(core.take().commands.is_empty());
}

fn speech(track: TrackId, active: u32) -> AudioLevelWindow {
    AudioLevelWindow { track, packets: 50, level_sum: 50 * 30, active, active_level_sum: active * 20 }
}

/// b's subscriber (session 21) takes every track in the room.
fn subscribe_all(core: &mut Rooms, who: ParticipantId, session: u64) {
    let others: Vec<Accepted> = core.tracks("r").iter().filter(|t| t.owner != who).map(|t| accept(SessionId(session), t)).collect();
    core.answer(who, others).unwrap();
}

/// The priorities the core set: by `SetPriority`, or with a new downtrack.
fn priorities(out: &Outputs) -> Vec<(SessionId, TrackId, u8)> {
    out.commands
        .iter()
        .filter_map(|c| match c {
            Command::SetPriority { session, track, priority } => Some((*session, *track, *priority)),
            Command::AddDowntrack(s) if s.priority > 0 => Some((s.session, s.track, s.priority)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_dominant_speakers_video_goes_first_and_everyone_hears_who_speaks() {
    let mut core = Rooms::new(cfg());
    let a = ion(&mut core, "r", 1);
    let b = ion(&mut core, "r", 2);
    core.publish(a, av("alice")).unwrap();
    subscribe_all(&mut core, b, 21);
    let v = whep(&mut core, "r", 5);
    let (audio, video) = (core.tracks("r")[0].id, core.tracks("r")[1].id);
    core.take();
    core.audio_levels(vec![speech(audio, 40)]);
    let out = core.take();
    assert!(out.commands.iter().all(|c| matches!(c, Command::SetPriority { .. })), "{:?}", out.commands);
    assert_eq!(priorities(&out), vec![(SessionId(21), video, 1), (SessionId(5), video, 1)], "video only, its subscribers only");
    let told: Vec<_> = out
        .signals
        .iter()
        .filter_map(|s| if let Signal::Speakers { participant, speakers } = s { Some((*participant, speakers.clone())) } else { None })
        .collect();
    assert_eq!(told, vec![(a, vec!["alice".to_string()]), (b, vec!["alice".to_string()])], "ion participants hear it; WHEP cannot");
    assert_eq!(core.dominant_speaker("r").map(|d| d.publisher), Some(SessionId(10)));
    let _ = v;

    // The same list again is no news; a late API channel is greeted.
    core.audio_levels(vec![speech(audio, 45)]);
    assert!(core.take().is_empty());
    core.api_opened(b);
    let out = core.take();
    assert!(out.commands.is_empty(), "its downtracks got their priority when installed");
    assert!(matches!(out.signals.as_slice(), [Signal::Speakers { participant, .. }] if *participant == b));

    // A viewer arriving now gets the priority with its downtrack.
    whep(&mut core, "r", 6);
    assert_eq!(priorities(&core.take()), vec![(SessionId(6), video, 1)]);

    // Silence: the priority goes back.
    core.audio_levels(vec![speech(audio, 0)]);
    let out = core.take();
    assert_eq!(priorities(&out).iter().filter(|p| p.2 == 0).count(), 3);
}

/// A screen share (reported by the shards from video-content-type) goes
/// before the active speaker's camera, for subscribers present and to come;
/// back to a camera, it loses that rank.
#[test]
fn a_screen_share_outranks_the_speaker() {
    let mut core = Rooms::new(cfg());
    let a = ion(&mut core, "r", 1);
    let b = ion(&mut core, "r", 2);
    let c = ion(&mut core, "r", 3);
    core.publish(a, av("alice")).unwrap();
    core.publish(b, vec![track("s", MediaKind::Video, "VP8", "bob-screen")]).unwrap();
    subscribe_all(&mut core, c, 31);
    let tracks = core.tracks("r").to_vec();
    let (audio, cam, screen) = (tracks[0].id, tracks[1].id, tracks[2].id);
    core.take();
    core.audio_levels(vec![speech(audio, 40)]);
    assert_eq!(priorities(&core.take()), vec![(SessionId(31), cam, 1)]);
    core.content_type(screen, true);
    assert_eq!(priorities(&core.take()), vec![(SessionId(31), screen, 2)]);
    core.content_type(screen, true);
    assert!(core.take().is_empty(), "the same report again (another layer) changes nothing");
    core.content_type(TrackId(999), true);
    assert!(core.take().is_empty(), "an unknown track is ignored");
    // a subscribes late: both ranks come with its downtracks.
    subscribe_all(&mut core, a, 11);
    let got = priorities(&core.take());
    assert_eq!(got, vec![(SessionId(11), screen, 2)], "a does not subscribe to its own camera");
    core.content_type(screen, false);
    let got = priorities(&core.take());
    assert_eq!(got, vec![(SessionId(11), screen, 0), (SessionId(31), screen, 0)]);
}

#[test]
fn track_labels_round_trip() {
    assert_eq!(parse_track_label(&track_label(TrackId(42))), Some(TrackId(42)));
    assert_eq!(parse_track_label("other"), None);
}
