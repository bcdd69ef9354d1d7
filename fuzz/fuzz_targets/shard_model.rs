//! A model test of three shard cores (docs/architecture.md): the fuzzer
//! picks which shard's socket each datagram reaches (valid checks, forged
//! checks, junk), when each shard hears of each session, the order peer
//! messages are delivered in, removals and time. Whatever it picks:
//! - a steered packet is never steered again (no cycles);
//! - once every message is delivered, all shards name the same owner for
//!   every session, it is the lowest shard that claimed it (the rule the
//!   controlplane applies to the Claimed events), and only it holds the
//!   session;
//! - routes never outnumber the addresses that sent, and are all freed
//!   with their sessions.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dataplane::msg::{Command, Event, SessionId, SessionSpec, ShardId};
use dataplane::shard::core::ShardCore;
use dataplane::shard::outbox::Outbox;
use dataplane::shard::peer::PeerMsg;
use dataplane::stun::{attr, method, Class, MessageWriter};
use libfuzzer_sys::fuzz_target;

const SHARDS: usize = 3;
const SESSIONS: u64 = 4;

fn ufrag(k: u64) -> String {
    format!("ufrag{k}")
}

fn pwd(k: u64) -> String {
    format!("password-of-session-{k}-0123")
}

fn spec(k: u64) -> Command {
    Command::AddSession(SessionSpec {
        id: SessionId(k),
        ufrag: ufrag(k),
        pwd: pwd(k),
        remote_ufrag: "peer".into(),
        pinned_shard: None,
    })
}

/// A connectivity check for session `k`; signed with its password unless `forged`.
fn binding(k: u64, forged: bool, tid: u8) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut w = MessageWriter::new(&mut buf, Class::Request, method::BINDING, &[tid; 12]).unwrap();
    w.add_attr(attr::USERNAME, format!("{}:peer", ufrag(k)).as_bytes()).unwrap();
    w.add_u32(attr::PRIORITY, 1).unwrap();
    w.add_u64(attr::ICE_CONTROLLING, 7).unwrap();
    w.add_attr(attr::USE_CANDIDATE, &[]).unwrap();
    if !forged {
        w.add_message_integrity(pwd(k).as_bytes()).unwrap();
    }
    w.add_fingerprint().unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

struct Model {
    cores: Vec<ShardCore>,
    outs: Vec<Outbox>,
    /// Peer messages in flight: (from, to, msg).
    flight: Vec<(ShardId, ShardId, PeerMsg)>,
    /// Which shards have been told about which sessions.
    told: BTreeSet<(usize, u64)>,
    removed: BTreeSet<u64>,
    claims: BTreeMap<u64, ShardId>,
    senders: BTreeSet<SocketAddr>,
    now: Instant,
}

impl Model {
    fn collect(&mut self, shard: usize) {
        for (to, msg) in std::mem::take(&mut self.outs[shard].peer) {
            self.flight.push((shard, to, msg));
        }
        for ev in std::mem::take(&mut self.outs[shard].events) {
            if let Event::Claimed { session, shard: s, .. } = ev {
                let c = self.claims.entry(session.0).or_insert(s);
                *c = (*c).min(s);
            }
        }
        self.outs[shard].clear_datagrams();
        self.outs[shard].tcp_close.clear();
        for m in self.outs[shard].media.iter_mut() {
            *m = None;
        }
    }

    fn tell(&mut self, shard: usize, k: u64) {
        if self.removed.contains(&k) || !self.told.insert((shard, k)) {
            return;
        }
        self.cores[shard].handle_command(spec(k), self.now, &mut self.outs[shard]);
        self.collect(shard);
    }

    fn datagram(&mut self, shard: usize, src: SocketAddr, mut bytes: Vec<u8>) {
        self.senders.insert(src);
        self.cores[shard].handle_datagram(src, &mut bytes, self.now, &mut self.outs[shard]);
        self.collect(shard);
    }

    fn deliver(&mut self, i: usize) {
        if self.flight.is_empty() {
            return;
        }
        let (from, to, msg) = self.flight.remove(i % self.flight.len());
        let steered = matches!(msg, PeerMsg::Steered { .. });
        self.cores[to].handle_peer(from, msg, self.now, &mut self.outs[to]);
        if steered {
            assert!(
                !self.outs[to].peer.iter().any(|(_, m)| matches!(m, PeerMsg::Steered { .. })),
                "a steered packet was steered again"
            );
        }
        self.collect(to);
    }

    fn check_routes(&self) {
        for c in &self.cores {
            assert!(c.route_count() <= self.senders.len(), "routes only for addresses that sent");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut m = Model {
        cores: (0..SHARDS).map(ShardCore::new).collect(),
        outs: (0..SHARDS).map(|_| Outbox::new(SHARDS)).collect(),
        flight: Vec::new(),
        told: BTreeSet::new(),
        removed: BTreeSet::new(),
        claims: BTreeMap::new(),
        senders: BTreeSet::new(),
        now: Instant::now(),
    };
    for chunk in data.chunks(3) {
        let [op, a, b] = *chunk else { break };
        let shard = usize::from(a) % SHARDS;
        let k = u64::from(a >> 2) % SESSIONS + 1;
        let src = SocketAddr::from(([10, 0, 0, b & 7], 5000 + u16::from(b >> 3)));
        match op % 8 {
            0 => m.tell(shard, k),
            1 | 2 => m.datagram(shard, src, binding(k, false, b)),
            3 => m.datagram(shard, src, binding(k, true, b)),
            4 => {
                // Media-looking junk from a (perhaps routed) address: RTP,
                // RTCP, DTLS or unknown by its first byte.
                let first = [0x80, 0x80, 0x16, 0x00][usize::from(b) % 4];
                let second = if b & 1 == 0 { 96 } else { 200 };
                m.datagram(shard, src, vec![first, second, 0, 1, 0, 0, 0, 0, 0, 0, 0, a, 0xfe, 0xfe, 0xfe, 0xfe]);
            }
            5 => m.deliver(usize::from(b)),
            6 => {
                m.now += Duration::from_millis(u64::from(b) * 40);
                for s in 0..SHARDS {
                    m.cores[s].tick(m.now, &mut m.outs[s]);
                    m.collect(s);
                }
            }
            _ => {
                if b % 8 == 0 {
                    // The controlplane removes a session everywhere at once.
                    m.removed.insert(k);
                    for s in 0..SHARDS {
                        m.cores[s].handle_command(Command::RemoveSession(SessionId(k)), m.now, &mut m.outs[s]);
                        m.collect(s);
                    }
                }
            }
        }
        m.check_routes();
    }

    // Quiesce: every shard hears of every session, every message arrives.
    for s in 0..SHARDS {
        for k in 1..=SESSIONS {
            m.tell(s, k);
        }
    }
    let mut rounds = 0;
    while !m.flight.is_empty() {
        rounds += 1;
        assert!(rounds < 100_000, "peer messages never settle");
        m.deliver(0);
    }
    m.check_routes();
    for k in 1..=SESSIONS {
        let sid = SessionId(k);
        if m.removed.contains(&k) {
            assert!(m.cores.iter().all(|c| !c.owns(sid)), "removed session {k} still held");
            continue;
        }
        let owners: Vec<Option<ShardId>> = m.cores.iter().map(|c| c.owner_of(sid)).collect();
        assert!(owners.windows(2).all(|w| w[0] == w[1]), "session {k}: shards disagree: {owners:?}");
        let holders: Vec<usize> = (0..SHARDS).filter(|&s| m.cores[s].owns(sid)).collect();
        assert_eq!(owners[0], m.claims.get(&k).copied(), "session {k}: the lowest claimant, as the controlplane computes");
        match owners[0] {
            Some(o) => assert_eq!(holders, vec![o], "session {k}: only the owner holds it"),
            None => assert!(holders.is_empty()),
        }
    }
    // Removing everything frees every route.
    for s in 0..SHARDS {
        for k in 1..=SESSIONS {
            m.cores[s].handle_command(Command::RemoveSession(SessionId(k)), m.now, &mut m.outs[s]);
        }
        assert_eq!(m.cores[s].route_count(), 0, "shard {s}: routes outlive their sessions");
    }
});
