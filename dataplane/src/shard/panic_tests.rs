//! A panic in a running shard is contained: counted, reported with the
//! sessions it cost, and the shard carries on serving (only its sessions
//! end). Real shards over loopback UDP.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::msg::{Command, Event, SessionId};
use crate::shard::tcp_tests::{addr, good_binding, session, snapshot, start_shards_with};
use crate::stun::{self, Class};

const ON_0: SessionId = SessionId(1);
const ON_1: SessionId = SessionId(2);
const LATER: SessionId = SessionId(3);

/// Sends a check for `ufrag` and waits for its success answer (whichever
/// shard's socket the kernel hands it to, the owner answers).
fn answered(dp: &crate::shard::Dataplane, sock: &UdpSocket, ufrag: &str) -> bool {
    let mut buf = [0u8; 1500];
    for _ in 0..5 {
        sock.send_to(&good_binding(ufrag), dp.media_addr).unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            return stun::Message::parse(&buf[..n]).is_ok_and(|m| m.class() == Class::Success);
        }
    }
    false
}

fn client() -> UdpSocket {
    let s = UdpSocket::bind(addr(0)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    s
}

fn wait_for(dp: &crate::shard::Dataplane, want: impl Fn(&Event) -> bool) -> Option<Event> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Ok(ev) = dp.events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if want(&ev) {
            return Some(ev);
        }
    }
    None
}

#[test]
fn forced_panic_ends_only_that_shards_sessions() {
    let dp = start_shards_with(2, true);
    for shard in 0..2 {
        dp.send(shard, session(ON_0, "zero", Some(0)));
        dp.send(shard, session(ON_1, "one", Some(1)));
    }
    let (a, b) = (client(), client());
    assert!(answered(&dp, &a, "zero") && answered(&dp, &b, "one"));

    dp.send(0, Command::TestPanic);
    let failed = wait_for(&dp, |ev| matches!(ev, Event::ShardFailed { .. })).expect("ShardFailed reported");
    let Event::ShardFailed { shard, sessions } = failed else { unreachable!() };
    assert_eq!((shard, sessions), (0, vec![ON_0]), "only shard 0's session is lost");

    // The lost session is unknown now; the other shard's is untouched.
    assert!(!answered(&dp, &a, "zero"), "a lost session is not answered");
    assert!(answered(&dp, &b, "one"));
    // Shard 0 serves new sessions.
    for shard in 0..2 {
        dp.send(shard, session(LATER, "later", Some(0)));
    }
    let c = client();
    assert!(answered(&dp, &c, "later"));
    assert!(wait_for(&dp, |ev| matches!(ev, Event::Claimed { session: LATER, shard: 0, .. })).is_some());
    let stats = snapshot(&dp, &mut Vec::new());
    assert_eq!((stats[0].panics, stats[1].panics), (1, 0), "counted");
    assert!(stats[0].stun_in > 0, "counters carried over the reset");
}

#[test]
fn test_panic_is_ignored_without_test_hooks() {
    let dp = start_shards_with(1, false);
    dp.send(0, session(ON_0, "zero", None));
    let a = client();
    assert!(answered(&dp, &a, "zero"));
    dp.send(0, Command::TestPanic);
    let stats = snapshot(&dp, &mut Vec::new());
    assert_eq!(stats[0].panics, 0);
    assert!(answered(&dp, &a, "zero"), "session untouched");
}
