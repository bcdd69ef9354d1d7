//! Who owns a session and where a 5-tuple goes: only authenticated checks
//! change either, claims converge on the lowest shard whatever the order,
//! steering never loops, and routes go with their session.

use std::time::Instant;

use crate::msg::{Command, ShardId};
use crate::shard::core::ShardCore;
use crate::shard::outbox::Outbox;
use crate::shard::peer::PeerMsg;
use crate::shard::tests::{addr, binding, session, PUB, SUB};
use crate::stats::DropReason;
use crate::stun::{self, Class, MessageWriter};

/// A Binding naming `ufrag` with no MESSAGE-INTEGRITY: anyone can send it,
/// from any address they spoof.
fn forged_binding(ufrag: &str, class: Class) -> Vec<u8> {
    let mut buf = vec![0u8; 128];
    let mut w = MessageWriter::new(&mut buf, class, stun::method::BINDING, &[9; 12]).unwrap();
    w.add_attr(stun::attr::USERNAME, format!("{ufrag}:peer").as_bytes()).unwrap();
    w.add_u32(stun::attr::PRIORITY, 1).unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

fn cores(n: usize) -> (Vec<ShardCore>, Vec<Outbox>) {
    ((0..n).map(ShardCore::new).collect(), (0..n).map(|_| Outbox::new(n)).collect())
}

/// Delivers every queued peer message until none is left, in the order
/// given by `order` (a permutation of shard ids to drain first).
fn deliver_all(cores: &mut [ShardCore], outs: &mut [Outbox], order: &[ShardId], now: Instant) {
    loop {
        let mut moved = false;
        for &from in order {
            for (to, msg) in std::mem::take(&mut outs[from].peer) {
                moved = true;
                cores[to].handle_peer(from, msg, now, &mut outs[to]);
            }
        }
        if !moved {
            return;
        }
    }
}

#[test]
fn forged_binding_redirects_nothing() {
    let now = Instant::now();
    let (mut c, mut o) = cores(2);
    for i in 0..2 {
        c[i].handle_command(session(PUB, "pubu", None), now, &mut o[i]);
        c[i].handle_command(session(SUB, "subu", Some(1)), now, &mut o[i]);
    }
    // The victim (PUB) lives on shard 0 at port 5000.
    let mut b = binding("pubu");
    c[0].handle_datagram(addr(5000), &mut b, now, &mut o[0]);
    assert!(c[0].owns(PUB));
    o[0].peer.clear();
    // SUB lives on shard 1: an attacker names it from the victim's address.
    let routes = c[0].route_count();
    let before = c[0].stats.drops_for(DropReason::StunAuth);
    let mut f = forged_binding("subu", Class::Request);
    c[0].handle_datagram(addr(5000), &mut f, now, &mut o[0]);
    assert_eq!(c[0].stats.drops_for(DropReason::StunAuth), before + 1);
    assert!(o[0].peer.is_empty(), "nothing steered");
    assert_eq!(c[0].route_count(), routes);
    // The victim's next packet is still its own: a Binding answered here.
    let mut b = binding("pubu");
    c[0].handle_datagram(addr(5000), &mut b, now, &mut o[0]);
    assert!(o[0].peer.is_empty());
    assert_eq!(o[0].len(), 2, "both checks answered locally");
}

#[test]
fn unauthenticated_indication_learns_no_path() {
    let now = Instant::now();
    let (mut c, mut o) = cores(1);
    c[0].handle_command(session(PUB, "pubu", None), now, &mut o[0]);
    let mut b = binding("pubu");
    c[0].handle_datagram(addr(5000), &mut b, now, &mut o[0]);
    assert_eq!(c[0].route_count(), 1);
    let mut f = forged_binding("pubu", Class::Indication);
    c[0].handle_datagram(addr(7777), &mut f, now, &mut o[0]);
    assert_eq!(c[0].route_count(), 1, "a spoofed indication adds no route");
}

/// Three shards, two claimants, every delivery order: one owner everywhere,
/// the lowest claimant, and only it holds the session.
#[test]
fn claims_converge_on_three_shards() {
    let orders: [[ShardId; 3]; 6] = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    for order in orders {
        for late_registration in [false, true] {
            let now = Instant::now();
            let (mut c, mut o) = cores(3);
            for i in 0..3 {
                if late_registration && i == 0 {
                    continue; // shard 0 hears the claims before its AddSession
                }
                c[i].handle_command(session(SUB, "subu", None), now, &mut o[i]);
            }
            for (shard, port) in [(1usize, 6000u16), (2, 6001)] {
                let mut b = binding("subu");
                c[shard].handle_datagram(addr(port), &mut b, now, &mut o[shard]);
                assert!(c[shard].owns(SUB));
            }
            deliver_all(&mut c, &mut o, &order, now);
            if late_registration {
                c[0].handle_command(session(SUB, "subu", None), now, &mut o[0]);
            }
            for (i, core) in c.iter().enumerate() {
                assert_eq!(core.owner_of(SUB), Some(1), "order {order:?} late {late_registration}: shard {i}");
                assert_eq!(core.owns(SUB), i == 1);
            }
        }
    }
}

/// Two shards that each think the other owns a session: a packet is
/// steered once, then dropped and counted, never bounced.
#[test]
fn steering_never_loops() {
    let now = Instant::now();
    let (mut c, mut o) = cores(2);
    for i in 0..2 {
        c[i].handle_command(session(SUB, "subu", None), now, &mut o[i]);
    }
    // Poison: each believes the other claimed.
    c[0].handle_peer(1, PeerMsg::Claimed { session: SUB, shard: 1 }, now, &mut o[0]);
    c[1].handle_peer(0, PeerMsg::Claimed { session: SUB, shard: 0 }, now, &mut o[1]);
    let mut b = binding("subu");
    c[0].handle_datagram(addr(6000), &mut b, now, &mut o[0]);
    assert_eq!(o[0].peer.len(), 1, "steered once");
    deliver_all(&mut c, &mut o, &[0, 1], now);
    assert_eq!(c[1].stats.drops_for(DropReason::SteerLoop), 1);
    assert!(o[0].peer.is_empty() && o[1].peer.is_empty());
}

#[test]
fn routes_go_with_their_session() {
    let now = Instant::now();
    let (mut c, mut o) = cores(2);
    for i in 0..2 {
        c[i].handle_command(session(SUB, "subu", Some(1)), now, &mut o[i]);
    }
    // Many valid paths: steering entries on shard 0, local ones on shard 1.
    for port in 6000..6020 {
        let mut b = binding("subu");
        c[0].handle_datagram(addr(port), &mut b, now, &mut o[0]);
        deliver_all(&mut c, &mut o, &[0, 1], now);
    }
    assert_eq!(c[0].route_count(), 20);
    assert!(c[1].route_count() <= 8, "local routes follow the session's bounded paths");
    for i in 0..2 {
        c[i].handle_command(Command::RemoveSession(SUB), now, &mut o[i]);
        assert_eq!(c[i].route_count(), 0, "shard {i}");
    }
}
