//! Tests of the sans-IO core through its public API: every method, every
//! error path, quotas, expiry with explicit time, and fuzzing. A last pair
//! drives `run` over loopback sockets.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use dataplane::stun::{attr, method, Class, Message, MessageWriter};
use proptest::prelude::*;

use super::auth::{long_term_key, rest_credentials_at, Credentials};
use super::framing::{frame_len, write_channel_data};
use super::*;

const T0: u64 = 1_700_000_000_000;
const REALM: &str = "sfud";

#[derive(Default)]
struct FakePorts {
    open: HashSet<SocketAddr>,
    busy: HashSet<u16>,
    closed: Vec<SocketAddr>,
}

impl RelayPorts for FakePorts {
    fn open(&mut self, addr: SocketAddr) -> bool {
        if self.busy.contains(&addr.port()) || !self.open.insert(addr) {
            return false;
        }
        true
    }
    fn close(&mut self, addr: SocketAddr) {
        assert!(self.open.remove(&addr), "close without open");
        self.closed.push(addr);
    }
}

fn base_cfg() -> TurnConfig {
    let mut cfg = TurnConfig { enabled: true, ..TurnConfig::default() };
    cfg.static_users.insert("alice".into(), "pw".into());
    cfg.static_users.insert("bob".into(), "pw2".into());
    cfg.shared_secret = Some("s3cret".into());
    cfg.relay_port_min = 40000;
    cfg.relay_port_max = 40009;
    cfg.max_relay_bps = 0;
    cfg
}

struct T {
    s: Server<FakePorts>,
    stats: Arc<StatsCells>,
    out: Vec<u8>,
}

fn server_with(cfg: TurnConfig, media: Vec<SocketAddr>) -> T {
    let stats = Arc::new(StatsCells::default());
    let relay_ip: IpAddr = "203.0.113.1".parse().unwrap();
    let s = Server::new(
        CoreConfig::new(&cfg, relay_ip, media),
        Credentials::new(&cfg).unwrap(),
        [9; 16],
        FakePorts::default(),
        stats.clone(),
    )
    .unwrap();
    T { s, stats, out: vec![0; 70_000] }
}

fn server() -> T {
    server_with(base_cfg(), vec!["10.0.0.5:7882".parse().unwrap()])
}

fn udp(addr: &str) -> ClientKey {
    ClientKey { transport: Transport::Udp, addr: addr.parse().unwrap() }
}

fn tcp(addr: &str) -> ClientKey {
    ClientKey { transport: Transport::Tcp, addr: addr.parse().unwrap() }
}

/// Credentials a test client signs with.
struct Cred<'a> {
    user: &'a str,
    pass: &'a str,
    nonce: Vec<u8>,
}

fn build(class: Class, m: u16, tid: [u8; 12], attrs: &[(u16, Vec<u8>)], peers: &[SocketAddr], cred: Option<&Cred<'_>>) -> Vec<u8> {
    let mut b = vec![0u8; 70_000];
    let mut w = MessageWriter::new(&mut b, class, m, &tid).unwrap();
    for p in peers {
        w.add_xor_address(attr::XOR_PEER_ADDRESS, *p).unwrap();
    }
    for (t, v) in attrs {
        w.add_attr(*t, v).unwrap();
    }
    if let Some(c) = cred {
        w.add_attr(attr::USERNAME, c.user.as_bytes()).unwrap();
        w.add_attr(attr::REALM, REALM.as_bytes()).unwrap();
        w.add_attr(attr::NONCE, &c.nonce).unwrap();
        let key = long_term_key(c.user, REALM, c.pass).unwrap();
        w.add_message_integrity(&key).unwrap();
    }
    w.add_fingerprint().unwrap();
    let n = w.finish();
    b.truncate(n);
    b
}

fn udp_transport() -> (u16, Vec<u8>) {
    (attr::REQUESTED_TRANSPORT, vec![17, 0, 0, 0])
}

impl T {
    fn send(&mut self, now: u64, c: ClientKey, msg: &[u8]) -> Option<Vec<u8>> {
        match self.s.handle_client(now, c, msg, &mut self.out) {
            ClientAction::Reply(n) => Some(self.out[..n].to_vec()),
            ClientAction::None => None,
            ClientAction::Relay { .. } => panic!("unexpected relay"),
        }
    }

    fn relay(&mut self, now: u64, c: ClientKey, msg: &[u8]) -> Option<(SocketAddr, SocketAddr, Vec<u8>)> {
        match self.s.handle_client(now, c, msg, &mut self.out) {
            ClientAction::Relay { relay, peer, data } => Some((relay, peer, data.to_vec())),
            ClientAction::None => None,
            ClientAction::Reply(_) => panic!("unexpected reply"),
        }
    }

    /// Gets a nonce from a 401 challenge.
    fn nonce(&mut self, now: u64, c: ClientKey) -> Vec<u8> {
        let r = self.send(now, c, &build(Class::Request, method::ALLOCATE, [1; 12], &[udp_transport()], &[], None)).unwrap();
        let m = Message::parse(&r).unwrap();
        assert_eq!(m.error_code().unwrap().0, 401);
        m.nonce().unwrap().to_vec()
    }

    fn allocate(&mut self, now: u64, c: ClientKey, user: &str, pass: &str) -> SocketAddr {
        let nonce = self.nonce(now, c);
        let cred = Cred { user, pass, nonce };
        let r = self
            .send(now, c, &build(Class::Request, method::ALLOCATE, [2; 12], &[udp_transport()], &[], Some(&cred)))
            .unwrap();
        let m = Message::parse(&r).unwrap();
        assert_eq!(m.class(), Class::Success, "{:?}", m.error_code());
        m.xor_address(attr::XOR_RELAYED_ADDRESS).unwrap()
    }

    fn cred<'a>(&mut self, now: u64, c: ClientKey, user: &'a str, pass: &'a str) -> Cred<'a> {
        let nonce = self.nonce(now, c);
        Cred { user, pass, nonce }
    }

    /// Sends an authenticated request and returns (class, error code).
    fn request(&mut self, now: u64, c: ClientKey, m: u16, attrs: &[(u16, Vec<u8>)], peers: &[SocketAddr], cred: &Cred<'_>) -> (Class, Option<u16>, Vec<u8>) {
        let r = self.send(now, c, &build(Class::Request, m, [3; 12], attrs, peers, Some(cred))).unwrap();
        let msg = Message::parse(&r).unwrap();
        msg.check_fingerprint().unwrap();
        (msg.class(), msg.error_code().map(|e| e.0), r.clone())
    }
}

fn peer(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn channel(n: u16) -> (u16, Vec<u8>) {
    let b = n.to_be_bytes();
    (attr::CHANNEL_NUMBER, vec![b[0], b[1], 0, 0])
}

#[test]
fn binding_needs_no_auth() {
    let mut t = server();
    let c = udp("198.51.100.9:5555");
    let r = t.send(T0, c, &build(Class::Request, method::BINDING, [7; 12], &[], &[], None)).unwrap();
    let m = Message::parse(&r).unwrap();
    assert_eq!((m.class(), m.method()), (Class::Success, method::BINDING));
    assert_eq!(m.transaction_id(), &[7; 12]);
    assert_eq!(m.xor_mapped_address(), Some(c.addr));
    m.check_fingerprint().unwrap();
    // A bad FINGERPRINT is dropped silently.
    let mut bad = build(Class::Request, method::BINDING, [7; 12], &[], &[], None);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(t.send(T0, c, &bad), None);
}

#[test]
fn challenge_then_allocate() {
    let mut t = server();
    let c = udp("198.51.100.9:5555");
    let r = t.send(T0, c, &build(Class::Request, method::ALLOCATE, [1; 12], &[udp_transport()], &[], None)).unwrap();
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.error_code(), Some((401, "Unauthorized")));
    assert_eq!(m.realm(), Some(REALM.as_bytes()));
    assert!(m.nonce().is_some());
    assert!(!m.has_integrity());
    assert_eq!(t.stats.snapshot().auth_failures_total, 0, "a challenge is not a failure");

    let cred = t.cred(T0, c, "alice", "pw");
    let (class, err, raw) = t.request(T0, c, method::ALLOCATE, &[udp_transport()], &[], &cred);
    assert_eq!((class, err), (Class::Success, None));
    let m = Message::parse(&raw).unwrap();
    m.check_integrity(&long_term_key("alice", REALM, "pw").unwrap()).unwrap();
    let relay = m.xor_address(attr::XOR_RELAYED_ADDRESS).unwrap();
    assert_eq!(relay.ip(), "203.0.113.1".parse::<IpAddr>().unwrap());
    assert!((40000..=40009).contains(&relay.port()));
    assert_eq!(m.lifetime(), Some(600));
    assert_eq!(m.xor_mapped_address(), Some(c.addr));
    assert!(t.s.ports().open.contains(&relay));
    let st = t.stats.snapshot();
    assert_eq!((st.allocations, st.allocations_total), (1, 1));

    // Retransmission (same tid) gets the same answer; a new Allocate is 437.
    let again = t.send(T0 + 10, c, &build(Class::Request, method::ALLOCATE, [3; 12], &[udp_transport()], &[], Some(&cred))).unwrap();
    let m = Message::parse(&again).unwrap();
    assert_eq!(m.xor_address(attr::XOR_RELAYED_ADDRESS), Some(relay));
    let (_, err, _) = {
        let r = t.send(T0, c, &build(Class::Request, method::ALLOCATE, [4; 12], &[udp_transport()], &[], Some(&cred))).unwrap();
        let m = Message::parse(&r).unwrap();
        (m.class(), m.error_code().map(|e| e.0), ())
    };
    assert_eq!(err, Some(437));
    assert_eq!(t.s.allocation_count(), 1);
}

#[test]
fn auth_errors() {
    let mut t = server();
    let c = udp("198.51.100.9:5555");
    let wrong = t.cred(T0, c, "alice", "nope");
    let r = t.send(T0, c, &build(Class::Request, method::ALLOCATE, [2; 12], &[udp_transport()], &[], Some(&wrong))).unwrap();
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.error_code().unwrap().0, 401);
    assert!(m.nonce().is_some() && m.realm().is_some());
    let unknown = t.cred(T0, c, "mallory", "pw");
    let (_, err, _) = t.request(T0, c, method::ALLOCATE, &[udp_transport()], &[], &unknown);
    assert_eq!(err, Some(401));
    assert_eq!(t.stats.snapshot().auth_failures_total, 2);

    // Nonce expiry and forgery: 438 with a fresh nonce.
    let cred = t.cred(T0, c, "alice", "pw");
    let (_, err, raw) = t.request(T0 + 601_000, c, method::ALLOCATE, &[udp_transport()], &[], &cred);
    assert_eq!(err, Some(438));
    assert!(Message::parse(&raw).unwrap().nonce().is_some());
    let forged = Cred { user: "alice", pass: "pw", nonce: b"0000000000000000ffffffffffffffff".to_vec() };
    let (_, err, _) = t.request(T0, c, method::ALLOCATE, &[udp_transport()], &[], &forged);
    assert_eq!(err, Some(438));

    // MESSAGE-INTEGRITY without NONCE/REALM is a bad request.
    let mut b = vec![0u8; 200];
    let mut w = MessageWriter::new(&mut b, Class::Request, method::ALLOCATE, &[5; 12]).unwrap();
    w.add_attr(attr::USERNAME, b"alice").unwrap();
    w.add_message_integrity(b"k").unwrap();
    let n = w.finish();
    let r = t.send(T0, c, &b[..n]).unwrap();
    assert_eq!(Message::parse(&r).unwrap().error_code().unwrap().0, 400);
    assert_eq!(t.s.allocation_count(), 0);
}

#[test]
fn rest_credentials_authenticate_and_expire() {
    let mut t = server();
    let c = udp("198.51.100.9:5555");
    let (u, p) = rest_credentials_at("s3cret", "viewer-1", 60, T0 / 1000).unwrap();
    let relay = t.allocate(T0, c, &u, &p);
    assert!(relay.port() >= 40000);
    let c2 = udp("198.51.100.9:5556");
    let cred = t.cred(T0 + 61_000, c2, &u, &p);
    let (_, err, _) = t.request(T0 + 61_000, c2, method::ALLOCATE, &[udp_transport()], &[], &cred);
    assert_eq!(err, Some(401), "expired REST username");
    let (u2, _) = rest_credentials_at("other", "viewer-1", 60, T0 / 1000).unwrap();
    let (_, p2) = rest_credentials_at("other", "viewer-1", 60, T0 / 1000).unwrap();
    let cred = t.cred(T0, c2, &u2, &p2);
    let (_, err, _) = t.request(T0, c2, method::ALLOCATE, &[udp_transport()], &[], &cred);
    assert_eq!(err, Some(401), "password from another secret");
}

#[test]
fn allocate_attribute_errors() {
    let mut t = server();
    let c = udp("198.51.100.9:5555");
    let cred = t.cred(T0, c, "alice", "pw");
    type Case = (Vec<(u16, Vec<u8>)>, u16);
    let cases: Vec<Case> = vec![
        (vec![], 400),
        (vec![(attr::REQUESTED_TRANSPORT, vec![6, 0, 0, 0])], 442),
        (vec![(attr::REQUESTED_TRANSPORT, vec![17])], 400),
        (vec![udp_transport(), (attr::REQUESTED_ADDRESS_FAMILY, vec![2, 0, 0, 0])], 440),
        (vec![udp_transport(), (attr::REQUESTED_ADDRESS_FAMILY, vec![9, 0, 0, 0])], 400),
        (vec![udp_transport(), (attr::RESERVATION_TOKEN, vec![0; 8])], 508),
        (vec![udp_transport(), (attr::EVEN_PORT, vec![0]), (attr::RESERVATION_TOKEN, vec![0; 8])], 400),
        (vec![udp_transport(), (0x0031, vec![1, 2, 3, 4])], 420),
    ];
    for (attrs, want) in cases {
        let (class, err, raw) = t.request(T0, c, method::ALLOCATE, &attrs, &[], &cred);
        assert_eq!((class, err), (Class::Error, Some(want)), "{attrs:?}");
        let m = Message::parse(&raw).unwrap();
        m.check_integrity(&long_term_key("alice", REALM, "pw").unwrap()).unwrap();
        if want == 420 {
            assert_eq!(m.attr(attr::UNKNOWN_ATTRIBUTES), Some(&[0x00, 0x31][..]));
        }
    }
    // Comprehension-optional unknowns and DONT-FRAGMENT are accepted; EVEN-PORT yields an even port.
    let attrs = vec![udp_transport(), (0x8055, vec![1]), (attr::DONT_FRAGMENT, vec![]), (attr::EVEN_PORT, vec![0x80])];
    let (class, _, raw) = t.request(T0, c, method::ALLOCATE, &attrs, &[], &cred);
    assert_eq!(class, Class::Success);
    assert_eq!(Message::parse(&raw).unwrap().xor_address(attr::XOR_RELAYED_ADDRESS).unwrap().port() % 2, 0);
    // EVEN-PORT with R reserves the next port; the token claims it once.
    let c1 = udp("198.51.100.9:9");
    let cred1 = t.cred(T0, c1, "alice", "pw");
    let (class, _, raw) = t.request(T0, c1, method::ALLOCATE, &[udp_transport(), (attr::EVEN_PORT, vec![0x80])], &[], &cred1);
    assert_eq!(class, Class::Success);
    let m = Message::parse(&raw).unwrap();
    let rtp = m.xor_address(attr::XOR_RELAYED_ADDRESS).unwrap();
    let tok = m.attr(attr::RESERVATION_TOKEN).unwrap().to_vec();
    assert_eq!(rtp.port() % 2, 0);
    let rtcp_addr = SocketAddr::new(rtp.ip(), rtp.port() + 1);
    assert!(t.s.ports().open.contains(&rtcp_addr), "reserved port is held");
    let c2 = udp("198.51.100.9:10");
    let cred2 = t.cred(T0, c2, "alice", "pw");
    let (class, _, raw) = t.request(T0, c2, method::ALLOCATE, &[udp_transport(), (attr::RESERVATION_TOKEN, tok.clone())], &[], &cred2);
    assert_eq!(class, Class::Success);
    assert_eq!(Message::parse(&raw).unwrap().xor_address(attr::XOR_RELAYED_ADDRESS), Some(rtcp_addr));
    let c3 = udp("198.51.100.9:11");
    let cred3 = t.cred(T0, c3, "alice", "pw");
    let (_, err, _) = t.request(T0, c3, method::ALLOCATE, &[udp_transport(), (attr::RESERVATION_TOKEN, tok)], &[], &cred3);
    assert_eq!(err, Some(508), "token used up");
    // An unclaimed reservation is released after 30 s.
    let c4 = udp("198.51.100.9:12");
    let cred4 = t.cred(T0, c4, "bob", "pw2");
    let (_, _, raw) = t.request(T0, c4, method::ALLOCATE, &[udp_transport(), (attr::EVEN_PORT, vec![0x80])], &[], &cred4);
    let r = Message::parse(&raw).unwrap().xor_address(attr::XOR_RELAYED_ADDRESS).unwrap();
    let held = SocketAddr::new(r.ip(), r.port() + 1);
    t.s.handle_timeout(T0 + 30_000);
    assert!(!t.s.ports().open.contains(&held));
    assert!(t.s.ports().closed.contains(&held));
    // Unknown methods are 400.
    let r = t.send(T0, c, &build(Class::Request, 0x00A, [1; 12], &[], &[], None)).unwrap();
    assert_eq!(Message::parse(&r).unwrap().error_code().unwrap().0, 400);
}

#[test]
fn quota_and_capacity() {
    let mut cfg = base_cfg();
    cfg.max_allocations_per_user = 2;
    cfg.relay_port_min = 40000;
    cfg.relay_port_max = 40003;
    let mut t = server_with(cfg, vec![]);
    t.s.ports_mut().busy.insert(40001);
    let a = t.allocate(T0, udp("198.51.100.9:1"), "alice", "pw");
    let b = t.allocate(T0, udp("198.51.100.9:2"), "alice", "pw");
    assert_eq!((a.port(), b.port()), (40000, 40002), "busy port skipped");
    let c = udp("198.51.100.9:3");
    let cred = t.cred(T0, c, "alice", "pw");
    let (_, err, _) = t.request(T0, c, method::ALLOCATE, &[udp_transport()], &[], &cred);
    assert_eq!(err, Some(486));
    assert_eq!(t.stats.snapshot().quota_rejections_total, 1);
    // Another user still gets the last port, then the range is exhausted.
    assert_eq!(t.allocate(T0, udp("198.51.100.9:4"), "bob", "pw2").port(), 40003);
    let c = udp("198.51.100.9:5");
    let cred = t.cred(T0, c, "bob", "pw2");
    let (_, err, _) = t.request(T0, c, method::ALLOCATE, &[udp_transport()], &[], &cred);
    assert_eq!(err, Some(508));
    // Freeing one of alice's lets her allocate again.
    let c1 = udp("198.51.100.9:1");
    let cred = t.cred(T0, c1, "alice", "pw");
    let (class, _, raw) = t.request(T0, c1, method::REFRESH, &[(attr::LIFETIME, 0u32.to_be_bytes().to_vec())], &[], &cred);
    assert_eq!(class, Class::Success);
    assert_eq!(Message::parse(&raw).unwrap().lifetime(), Some(0));
    assert_eq!(t.s.ports().closed, vec![a]);
    assert_eq!(t.allocate(T0, udp("198.51.100.9:6"), "alice", "pw").port(), 40000);
}

#[test]
fn refresh_rules() {
    let mut t = server();
    let c = udp("198.51.100.9:5555");
    let cred = t.cred(T0, c, "alice", "pw");
    let (_, err, _) = t.request(T0, c, method::REFRESH, &[], &[], &cred);
    assert_eq!(err, Some(437), "no allocation");
    t.allocate(T0, c, "alice", "pw");
    let (_, _, raw) = t.request(T0, c, method::REFRESH, &[(attr::LIFETIME, 99_999u32.to_be_bytes().to_vec())], &[], &cred);
    assert_eq!(Message::parse(&raw).unwrap().lifetime(), Some(3600));
    let (_, _, raw) = t.request(T0, c, method::REFRESH, &[(attr::LIFETIME, 30u32.to_be_bytes().to_vec())], &[], &cred);
    assert_eq!(Message::parse(&raw).unwrap().lifetime(), Some(600));
    let bob = t.cred(T0, c, "bob", "pw2");
    let (_, err, _) = t.request(T0, c, method::REFRESH, &[], &[], &bob);
    assert_eq!(err, Some(441));
    for m in [method::CREATE_PERMISSION, method::CHANNEL_BIND] {
        let (_, err, _) = t.request(T0, c, m, &[channel(0x4000)], &[peer("93.184.216.1:9")], &bob);
        assert_eq!(err, Some(441));
    }
    assert_eq!(t.stats.snapshot().auth_failures_total, 3);
}

#[test]
fn expiry_by_timer() {
    let mut t = server();
    let c = udp("198.51.100.9:5555");
    let relay = t.allocate(T0, c, "alice", "pw");
    t.s.handle_timeout(T0 + 599_000);
    assert_eq!(t.s.allocation_count(), 1);
    // A refresh at 500 s pushes expiry to 1100 s.
    let cred = t.cred(T0 + 500_000, c, "alice", "pw");
    t.request(T0 + 500_000, c, method::REFRESH, &[], &[], &cred);
    t.s.handle_timeout(T0 + 700_000);
    assert_eq!(t.s.allocation_count(), 1);
    t.s.handle_timeout(T0 + 1_100_000);
    assert_eq!(t.s.allocation_count(), 0);
    assert_eq!(t.s.ports().closed, vec![relay]);
    assert_eq!(t.stats.snapshot().allocations, 0);
}

#[test]
fn permissions_send_and_data() {
    let mut t = server();
    let c = udp("198.51.100.9:5555");
    let relay = t.allocate(T0, c, "alice", "pw");
    let p = peer("93.184.216.77:6000");
    let send = |data: &[u8], to: SocketAddr| build(Class::Indication, method::SEND, [8; 12], &[(attr::DATA, data.to_vec())], &[to], None);

    // No permission yet: dropped; peer data also dropped.
    assert_eq!(t.relay(T0, c, &send(b"hi", p)), None);
    assert_eq!(t.s.handle_peer(T0, relay, p, b"x", &mut t.out), None);

    let cred = t.cred(T0, c, "alice", "pw");
    let (class, _, raw) = t.request(T0, c, method::CREATE_PERMISSION, &[], &[p, peer("93.184.216.78:1")], &cred);
    assert_eq!(class, Class::Success);
    Message::parse(&raw).unwrap().check_integrity(&long_term_key("alice", REALM, "pw").unwrap()).unwrap();
    assert_eq!(t.relay(T0, c, &send(b"hi", p)), Some((relay, p, b"hi".to_vec())));
    // Permissions are per IP: another port on the same host works.
    assert!(t.relay(T0, c, &send(b"hi", peer("93.184.216.77:1"))).is_some());
    assert!(t.relay(T0, c, &send(b"hi", peer("93.184.216.78:1"))).is_some());

    // Peer -> client without a channel: a Data indication.
    let (to, n) = t.s.handle_peer(T0, relay, p, b"pong", &mut t.out).unwrap();
    assert_eq!(to, c);
    let m = Message::parse(&t.out[..n]).unwrap();
    assert_eq!((m.class(), m.method()), (Class::Indication, method::DATA));
    assert_eq!(m.xor_address(attr::XOR_PEER_ADDRESS), Some(p));
    assert_eq!(m.attr(attr::DATA), Some(&b"pong"[..]));
    // Unknown relay address: nothing.
    assert_eq!(t.s.handle_peer(T0, peer("203.0.113.1:1"), p, b"x", &mut t.out), None);

    // Errors.
    let (_, err, _) = t.request(T0, c, method::CREATE_PERMISSION, &[], &[], &cred);
    assert_eq!(err, Some(400));
    let (_, err, _) = t.request(T0, c, method::CREATE_PERMISSION, &[], &[peer("[2001:db8::1]:1")], &cred);
    assert_eq!(err, Some(443));
    let (_, err, _) = t.request(T0, udp("198.51.100.9:1"), method::CREATE_PERMISSION, &[], &[p], &cred);
    assert_eq!(err, Some(437));

    // Permissions last 300 s.
    t.s.handle_timeout(T0 + 300_000);
    assert_eq!(t.relay(T0 + 300_000, c, &send(b"hi", p)), None);
    assert_eq!(t.s.handle_peer(T0 + 300_000, relay, p, b"x", &mut t.out), None);
    let st = t.stats.snapshot();
    assert_eq!((st.relayed_packets_total, st.relayed_bytes_total), (4, 10));
}

#[test]
fn no_open_relay() {
    let mut t = server();
    let c = udp("198.51.100.9:5555");
    let relay = t.allocate(T0, c, "alice", "pw");
    let cred = t.cred(T0, c, "alice", "pw");
    for bad in ["127.0.0.1:3480", "10.1.2.3:1", "192.168.0.1:1", "100.64.0.1:1", "169.254.169.254:80", "224.0.0.1:1"] {
        let (_, err, _) = t.request(T0, c, method::CREATE_PERMISSION, &[], &[peer(bad)], &cred);
        assert_eq!(err, Some(403), "{bad}");
        let (_, err, _) = t.request(T0, c, method::CHANNEL_BIND, &[channel(0x4000)], &[peer(bad)], &cred);
        assert_eq!(err, Some(403), "{bad}");
    }
    // One bad peer among good ones refuses the whole request.
    let (_, err, _) = t.request(T0, c, method::CREATE_PERMISSION, &[], &[peer("93.184.216.1:1"), peer("10.0.0.1:1")], &cred);
    assert_eq!(err, Some(403));
    assert!(!t.s.allocation(&c).unwrap().is_permitted("93.184.216.1".parse().unwrap(), T0));
    let send = build(Class::Indication, method::SEND, [8; 12], &[(attr::DATA, b"x".to_vec())], &[peer("127.0.0.1:3480")], None);
    assert_eq!(t.relay(T0, c, &send), None);
    assert_eq!(t.stats.snapshot().refused_peers_total, 14);

    // sfud's own media socket is reachable even though it is private...
    let (class, _, _) = t.request(T0, c, method::CREATE_PERMISSION, &[], &[peer("10.0.0.5:7882")], &cred);
    assert_eq!(class, Class::Success);
    let send = |to: &str| build(Class::Indication, method::SEND, [8; 12], &[(attr::DATA, b"x".to_vec())], &[peer(to)], None);
    assert!(t.relay(T0, c, &send("10.0.0.5:7882")).is_some());
    // ...but not other ports on that host, in either direction.
    assert_eq!(t.relay(T0, c, &send("10.0.0.5:22")), None);
    assert_eq!(t.s.handle_peer(T0, relay, peer("10.0.0.5:22"), b"x", &mut t.out), None);
    assert!(t.s.handle_peer(T0, relay, peer("10.0.0.5:7882"), b"x", &mut t.out).is_some());
    let (_, err, _) = t.request(T0, c, method::CHANNEL_BIND, &[channel(0x4000)], &[peer("10.0.0.5:22")], &cred);
    assert_eq!(err, Some(403));

    // The test override opens it all.
    let mut cfg = base_cfg();
    cfg.allow_private_peers = true;
    let mut t = server_with(cfg, vec![]);
    t.allocate(T0, c, "alice", "pw");
    let cred = t.cred(T0, c, "alice", "pw");
    let (class, _, _) = t.request(T0, c, method::CREATE_PERMISSION, &[], &[peer("127.0.0.1:3480")], &cred);
    assert_eq!(class, Class::Success);
}

#[test]
fn channels_over_udp_and_tcp() {
    for c in [udp("198.51.100.9:5555"), tcp("198.51.100.9:5555")] {
        let mut t = server();
        let relay = t.allocate(T0, c, "alice", "pw");
        let p = peer("93.184.216.77:6000");
        let cred = t.cred(T0, c, "alice", "pw");
        for bad in [0x3FFF, 0x8000, 0xFFFF] {
            let (_, err, _) = t.request(T0, c, method::CHANNEL_BIND, &[channel(bad)], &[p], &cred);
            assert_eq!(err, Some(400), "{bad:#x}");
        }
        let (_, err, _) = t.request(T0, c, method::CHANNEL_BIND, &[channel(0x4000)], &[], &cred);
        assert_eq!(err, Some(400), "no peer");
        let (_, err, _) = t.request(T0, c, method::CHANNEL_BIND, &[(attr::CHANNEL_NUMBER, vec![0x40])], &[p], &cred);
        assert_eq!(err, Some(400), "short channel number");
        let (class, _, _) = t.request(T0, c, method::CHANNEL_BIND, &[channel(0x4000)], &[p], &cred);
        assert_eq!(class, Class::Success);
        let (class, _, _) = t.request(T0, c, method::CHANNEL_BIND, &[channel(0x4000)], &[p], &cred);
        assert_eq!(class, Class::Success, "refresh");
        let (_, err, _) = t.request(T0, c, method::CHANNEL_BIND, &[channel(0x4001)], &[p], &cred);
        assert_eq!(err, Some(400), "peer already on another channel");
        let (_, err, _) = t.request(T0, c, method::CHANNEL_BIND, &[channel(0x4000)], &[peer("93.184.216.77:6001")], &cred);
        assert_eq!(err, Some(400), "channel already bound to another peer");

        // Client -> peer ChannelData (padding on streams is ignored).
        let mut cd = [0u8; 16];
        let n = write_channel_data(&mut cd, 0x4000, b"hello", true).unwrap();
        assert_eq!(t.relay(T0, c, &cd[..n]), Some((relay, p, b"hello".to_vec())));
        let n = write_channel_data(&mut cd, 0x4001, b"hello", false).unwrap();
        assert_eq!(t.relay(T0, c, &cd[..n]), None, "unbound channel");
        // The binding installed a permission: peer -> client is ChannelData.
        let (to, n) = t.s.handle_peer(T0, relay, p, b"world", &mut t.out).unwrap();
        assert_eq!(to, c);
        let want: &[u8] = if c.transport.is_stream() { b"\x40\x00\x00\x05world\0\0\0" } else { b"\x40\x00\x00\x05world" };
        assert_eq!(&t.out[..n], want);
        if c.transport.is_stream() {
            assert_eq!(frame_len(&t.out[..n]), Ok(Some(n)));
        }
        // Another port on the same IP still gets Data indications.
        let (_, n) = t.s.handle_peer(T0, relay, peer("93.184.216.77:7"), b"w", &mut t.out).unwrap();
        assert!(Message::parse(&t.out[..n]).is_ok());

        // Channels last 600 s; the permission 300 s unless refreshed.
        t.s.handle_timeout(T0 + 600_000);
        let n = write_channel_data(&mut cd, 0x4000, b"hello", true).unwrap();
        assert_eq!(t.relay(T0 + 600_000, c, &cd[..n]), None);
        if c.transport.is_stream() {
            t.s.client_closed(&c);
            assert_eq!(t.s.allocation_count(), 0);
            assert_eq!(t.s.ports().closed, vec![relay]);
        }
    }
}

#[test]
fn bandwidth_cap_drops_and_counts() {
    let mut cfg = base_cfg();
    cfg.max_relay_bps = 8_000; // 1000 bytes per second
    cfg.allow_private_peers = true;
    let mut t = server_with(cfg, vec![]);
    let c = udp("198.51.100.9:5555");
    let relay = t.allocate(T0, c, "alice", "pw");
    let p = peer("93.184.216.1:9");
    let cred = t.cred(T0, c, "alice", "pw");
    t.request(T0, c, method::CHANNEL_BIND, &[channel(0x4000)], &[p], &cred);
    let mut cd = vec![0u8; 700];
    let n = write_channel_data(&mut cd, 0x4000, &[1; 600], false).unwrap();
    assert!(t.relay(T0, c, &cd[..n]).is_some());
    assert!(t.relay(T0, c, &cd[..n]).is_none(), "over budget");
    assert!(t.s.handle_peer(T0, relay, p, &[0; 600], &mut t.out).is_none(), "shared budget");
    assert!(t.relay(T0 + 1000, c, &cd[..n]).is_some(), "refilled");
    let st = t.stats.snapshot();
    assert_eq!((st.rate_limited_packets_total, st.relayed_packets_total), (2, 2));
}

#[test]
fn config_checks() {
    let media = [peer("127.0.0.1:7882")];
    let mut cfg = base_cfg();
    assert!(check_config(&cfg, &media).is_ok());
    cfg.relay_port_min = 7000;
    cfg.relay_port_max = 8000;
    assert!(matches!(check_config(&cfg, &media), Err(TurnError::Config(m)) if m.contains("media port 7882")));
    cfg.relay_port_min = 3000;
    cfg.relay_port_max = 4000;
    assert!(matches!(check_config(&cfg, &[]), Err(TurnError::Config(m)) if m.contains("turn.udp_port")));
    cfg.relay_port_min = 50000;
    cfg.relay_port_max = 40000;
    assert!(check_config(&cfg, &[]).is_err());
    let mut cfg = base_cfg();
    cfg.tls_port = 5349;
    assert!(matches!(check_config(&cfg, &[]), Err(TurnError::Config(m)) if m.contains("tls_cert_file")));
    let mut cfg = base_cfg();
    cfg.static_users.clear();
    cfg.shared_secret = Some(String::new());
    assert!(matches!(check_config(&cfg, &[]), Err(TurnError::Config(m)) if m.contains("nobody")));
    let cfg = base_cfg();
    assert_eq!(relay_ip(&cfg, &[peer("0.0.0.0:7882"), peer("93.184.216.5:7882")]).unwrap(), "93.184.216.5".parse::<IpAddr>().unwrap());
    assert!(relay_ip(&cfg, &[peer("0.0.0.0:7882")]).is_err());
}

fn fuzz_server() -> (T, ClientKey, SocketAddr) {
    let mut cfg = base_cfg();
    cfg.allow_private_peers = true;
    let mut t = server_with(cfg, vec![]);
    let c = udp("198.51.100.9:5555");
    let relay = t.allocate(T0, c, "alice", "pw");
    let cred = t.cred(T0, c, "alice", "pw");
    t.request(T0, c, method::CHANNEL_BIND, &[channel(0x4000)], &[peer("93.184.216.1:9")], &cred);
    (t, c, relay)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_datagrams_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..400), dt in 0u64..2_000_000) {
        let (mut t, c, relay) = fuzz_server();
        let _ = t.s.handle_client(T0 + dt, c, &buf, &mut t.out);
        let _ = t.s.handle_client(T0, udp("93.184.216.200:1"), &buf, &mut t.out);
        let _ = t.s.handle_peer(T0, relay, peer("93.184.216.1:9"), &buf, &mut t.out);
        t.s.handle_timeout(T0 + dt);
    }

    #[test]
    fn mutated_requests_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), m in 0usize..5) {
        let (mut t, c, _) = fuzz_server();
        let nonce = t.nonce(T0, c);
        let cred = Cred { user: "alice", pass: "pw", nonce };
        let methods = [method::ALLOCATE, method::REFRESH, method::CREATE_PERMISSION, method::CHANNEL_BIND, method::SEND];
        let class = if methods[m] == method::SEND { Class::Indication } else { Class::Request };
        let mut msg = build(class, methods[m], [3; 12], &[channel(0x4001), udp_transport(), (attr::DATA, vec![1, 2, 3])], &[peer("93.184.216.2:5")], Some(&cred));
        for (i, b) in flips {
            let len = msg.len();
            msg[i % len] ^= b;
        }
        let _ = t.s.handle_client(T0, c, &msg, &mut t.out);
        // Out buffers that are too small must not panic either.
        let mut small = [0u8; 24];
        let _ = t.s.handle_client(T0, c, &msg, &mut small);
    }

    #[test]
    fn random_streams_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..8)) {
        let (mut t, _, _) = fuzz_server();
        let c = tcp("198.51.100.9:7");
        let mut stream: Vec<u8> = Vec::new();
        for ch in chunks {
            stream.extend_from_slice(&ch);
            loop {
                match frame_len(&stream) {
                    Ok(Some(n)) => {
                        let frame: Vec<u8> = stream.drain(..n).collect();
                        let _ = t.s.handle_client(T0, c, &frame, &mut t.out);
                    }
                    Ok(None) => break,
                    Err(_) => { stream.clear(); break; }
                }
            }
        }
    }
}

/// `run` over real loopback sockets: Binding over UDP and TCP, then an
/// Allocate challenge, then stop.
#[tokio::test]
async fn run_serves_binding_over_udp_and_tcp() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut cfg = base_cfg();
    // Port 0 means "disabled" here, so borrow free ephemeral ports.
    cfg.udp_port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    cfg.tcp_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    cfg.relay_port_min = 45100;
    cfg.relay_port_max = 45110;
    cfg.relay_address = Some("127.0.0.1".parse().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let h = run(cfg, vec![], TurnLimits::default(), async move {
        let _ = rx.await;
    })
    .await
    .unwrap();
    let udp_addr = SocketAddr::new("127.0.0.1".parse().unwrap(), h.udp_addr().unwrap().port());
    let tcp_addr = SocketAddr::new("127.0.0.1".parse().unwrap(), h.tcp_addr().unwrap().port());
    let req = build(Class::Request, method::BINDING, [5; 12], &[], &[], None);

    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.send_to(&req, udp_addr).await.unwrap();
    let mut buf = [0u8; 1500];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.recv(&mut buf)).await.unwrap().unwrap();
    let m = Message::parse(&buf[..n]).unwrap();
    assert_eq!(m.xor_mapped_address(), Some(s.local_addr().unwrap()));

    let mut t = tokio::net::TcpStream::connect(tcp_addr).await.unwrap();
    // Two messages in one write exercise the framing.
    let alloc = build(Class::Request, method::ALLOCATE, [6; 12], &[udp_transport()], &[], None);
    let mut both = req.clone();
    both.extend_from_slice(&alloc);
    t.write_all(&both).await.unwrap();
    let mut got = Vec::new();
    while frame_len(&got) != Ok(Some(got.len())) || got.len() < 40 {
        let mut b = [0u8; 512];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), t.read(&mut b)).await.unwrap().unwrap();
        assert!(n > 0);
        got.extend_from_slice(&b[..n]);
        if let Ok(Some(first)) = frame_len(&got) {
            if frame_len(&got[first..]).ok().flatten().is_some() {
                break;
            }
        }
    }
    let first = frame_len(&got).unwrap().unwrap();
    let m = Message::parse(&got[..first]).unwrap();
    assert_eq!(m.xor_mapped_address(), Some(t.local_addr().unwrap()));
    let second = frame_len(&got[first..]).unwrap().unwrap();
    let m = Message::parse(&got[first..first + second]).unwrap();
    assert_eq!(m.error_code().unwrap().0, 401);
    let _ = tx.send(());
    h.stop();
}
