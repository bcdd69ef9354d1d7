//! ICE-TCP through the shard core (no sockets): first-frame rules, TCP
//! destinations in the outbox, hand-over to the owning shard, clean-up; and
//! one loopback test of real connections through running shards.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::msg::{CodecKind, Command, DowntrackSpec, Event, MediaKind, SessionId, SessionSpec, UptrackSpec};
use crate::rtp;
use crate::shard::core::{ShardCore, TcpVerdict};
use crate::shard::outbox::{ConnId, Dest, Outbox};
use crate::srtp::{MasterKey, SrtpContext, SrtpProfile};
use crate::stats::DropReason;
use crate::stun::{self, Class, MessageWriter};

const PUB: SessionId = SessionId(1);
const SUB: SessionId = SessionId(2);
const PUB_SSRC: u32 = 0x1111;
const SUB_SSRC: u32 = 0x2222;

pub(super) fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub(super) fn session(id: SessionId, ufrag: &str, pinned: Option<usize>) -> Command {
    Command::AddSession(SessionSpec {
        id,
        ufrag: ufrag.into(),
        pwd: format!("{ufrag}-password-0123456789"),
        remote_ufrag: "peer".into(),
        pinned_shard: pinned,
    })
}

fn binding(ufrag: &str, pwd: &str) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut w = MessageWriter::new(&mut buf, Class::Request, stun::method::BINDING, &[9; 12]).unwrap();
    w.add_attr(stun::attr::USERNAME, format!("{ufrag}:peer").as_bytes()).unwrap();
    w.add_u32(stun::attr::PRIORITY, 1).unwrap();
    w.add_u64(stun::attr::ICE_CONTROLLING, 5).unwrap();
    w.add_attr(stun::attr::USE_CANDIDATE, &[]).unwrap();
    w.add_message_integrity(pwd.as_bytes()).unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

pub(super) fn good_binding(ufrag: &str) -> Vec<u8> {
    binding(ufrag, &format!("{ufrag}-password-0123456789"))
}

fn key(seed: u8) -> MasterKey {
    MasterKey { profile: SrtpProfile::AeadAes128Gcm, key: [seed; 16], salt: [seed.wrapping_add(1); 14] }
}

fn taken(out: &mut Outbox, dst: Dest) -> Vec<Vec<u8>> {
    let v = (0..out.len()).map(|i| out.datagram(i)).filter(|(_, d)| *d == dst).map(|(b, _)| b.to_vec()).collect();
    out.clear_datagrams();
    v
}

#[test]
fn first_frame_must_be_a_valid_binding() {
    let now = Instant::now();
    let mut core = ShardCore::new(0);
    let mut out = Outbox::new(1);
    core.handle_command(session(PUB, "pubu", None), now, &mut out);

    let mut rtp_first = vec![0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
    assert_eq!(core.handle_tcp_frame(ConnId(1), addr(4000), &mut rtp_first, now, &mut out), TcpVerdict::Close);
    let mut unknown = good_binding("nobody");
    assert_eq!(core.handle_tcp_frame(ConnId(2), addr(4001), &mut unknown, now, &mut out), TcpVerdict::Close);
    let mut forged = binding("pubu", "not-the-password");
    assert_eq!(core.handle_tcp_frame(ConnId(3), addr(4002), &mut forged, now, &mut out), TcpVerdict::Close);
    assert!(!core.owns(PUB), "nothing claimed by a rejected connection");
    assert_eq!(core.stats.tcp_rejected, 3);
    assert_eq!(core.stats.drops_for(DropReason::UnknownUfrag), 1);
    assert_eq!(core.stats.drops_for(DropReason::StunAuth), 1);
    assert!(out.is_empty(), "no answer to a rejected connection");

    let mut ok = good_binding("pubu");
    assert_eq!(core.handle_tcp_frame(ConnId(4), addr(4003), &mut ok, now, &mut out), TcpVerdict::Keep);
    assert!(core.owns(PUB));
    assert!(matches!(out.events.as_slice(), [Event::Claimed { session: PUB, shard: 0, remote }] if *remote == addr(4003)));
    let replies = taken(&mut out, Dest::Tcp(ConnId(4)));
    assert_eq!(replies.len(), 1, "answered on the connection");
    let msg = stun::Message::parse(&replies[0]).unwrap();
    assert_eq!(msg.class(), Class::Success);
    assert_eq!(msg.xor_mapped_address(), Some(addr(4003)), "XOR-MAPPED-ADDRESS is the TCP peer");

    // Later frames on the connection route like datagrams: garbage is
    // dropped and counted, but the connection stays.
    let mut junk = vec![0x80, 200, 0, 0];
    assert_eq!(core.handle_tcp_frame(ConnId(4), addr(4003), &mut junk, now, &mut out), TcpVerdict::Keep);
    assert_eq!(core.stats.tcp_packets_in, 5);
}

/// Publisher over UDP, viewer over ICE-TCP: forwarded media, RTCP and DTLS
/// go to the viewer's connection; once it closes, nothing more does.
#[test]
fn forwarding_to_a_tcp_viewer() {
    let now = Instant::now();
    let mut core = ShardCore::new(0);
    let mut out = Outbox::new(1);
    core.handle_command(session(PUB, "pubu", None), now, &mut out);
    core.handle_command(session(SUB, "subu", None), now, &mut out);
    core.handle_command(
        Command::AddUptrack(UptrackSpec {
            kind: MediaKind::Audio,
            codec: CodecKind::Opus,
            payload_type: 111,
            clock_rate: 48000,
            ..crate::shard::tests::up_spec()
        }),
        now,
        &mut out,
    );
    core.handle_command(
        Command::AddDowntrack(DowntrackSpec { kind: MediaKind::Audio, payload_type: 111, clock_rate: 48000, ..crate::shard::tests::down_spec() }),
        now,
        &mut out,
    );
    let mut b = good_binding("pubu");
    core.handle_datagram(addr(5000), &mut b, now, &mut out);
    let conn = ConnId(77);
    let mut b = good_binding("subu");
    assert_eq!(core.handle_tcp_frame(conn, addr(6000), &mut b, now, &mut out), TcpVerdict::Keep);
    core.handle_command(Command::SetSrtp { session: PUB, tx: key(1), rx: key(2) }, now, &mut out);
    core.handle_command(Command::SetSrtp { session: SUB, tx: key(3), rx: key(4) }, now, &mut out);
    core.handle_command(Command::SendDtls { session: SUB, datagrams: vec![vec![22, 254, 253, 0, 0]] }, now, &mut out);
    assert_eq!(taken(&mut out, Dest::Tcp(conn)).len(), 2, "STUN answer and DTLS on the connection");

    let mut pub_tx = SrtpContext::new(&key(2)).unwrap();
    let mut sub_rx = SrtpContext::new(&key(3)).unwrap();
    for seq in 0..3u16 {
        let mut plain = vec![0u8; 200];
        let f = rtp::HeaderFields { marker: false, payload_type: 111, sequence: seq, timestamp: 960 * u32::from(seq), ssrc: PUB_SSRC };
        let n = rtp::write_header(&mut plain, &f).unwrap();
        plain.truncate(n + 40);
        let len = plain.len();
        plain.resize(len + 32, 0);
        let n = pub_tx.protect_rtp(&mut plain, len).unwrap();
        plain.truncate(n);
        core.handle_datagram(addr(5000), &mut plain, now, &mut out);
    }
    let mut got = taken(&mut out, Dest::Tcp(conn));
    assert_eq!(got.len(), 3);
    for d in &mut got {
        let len = d.len();
        let n = sub_rx.unprotect_rtp(d, len).expect("viewer decrypts what went over TCP");
        assert_eq!(rtp::parse(&d[..n]).unwrap().ssrc, SUB_SSRC);
    }

    core.tcp_closed(conn);
    let mut late = vec![0x80, 111, 0, 9, 0, 0, 0, 9, 0, 0, 0, 9];
    core.handle_datagram(addr(5000), &mut late, now, &mut out);
    assert_eq!(out.tcp_datagrams().count(), 0);
    // A stray frame on the closed connection's id is a new connection's first frame.
    let mut junk = vec![0x80, 111, 0, 1];
    assert_eq!(core.handle_tcp_frame(conn, addr(6000), &mut junk, now, &mut out), TcpVerdict::Close);
}

#[test]
fn connection_for_another_shards_session_is_handed_over() {
    let now = Instant::now();
    let mut s0 = ShardCore::new(0);
    let mut s1 = ShardCore::new(1);
    let mut o0 = Outbox::new(2);
    let mut o1 = Outbox::new(2);
    for (core, out) in [(&mut s0, &mut o0), (&mut s1, &mut o1)] {
        core.handle_command(session(SUB, "subu", Some(1)), now, out);
    }
    let mut b = good_binding("subu");
    assert_eq!(s0.handle_tcp_frame(ConnId(1), addr(7000), &mut b, now, &mut o0), TcpVerdict::HandOver(1));
    assert!(o0.is_empty() && o0.peer.is_empty() && o0.events.is_empty(), "the owner does all the work");
    assert_eq!(s0.stats.tcp_handed_over, 1);
    // Shard 1 reads the same frame as its connection's first.
    let mut b = good_binding("subu");
    assert_eq!(s1.handle_tcp_frame(ConnId(1 << 48 | 1), addr(7000), &mut b, now, &mut o1), TcpVerdict::Keep);
    assert!(s1.owns(SUB));
    assert_eq!(taken(&mut o1, Dest::Tcp(ConnId(1 << 48 | 1))).len(), 1);

    // Once shard 0 knows the owner, it still hands over rather than answering.
    for (to, msg) in std::mem::take(&mut o1.peer) {
        assert_eq!(to, 0);
        s0.handle_peer(1, msg, now, &mut o0);
    }
    let mut b = good_binding("subu");
    assert_eq!(s0.handle_tcp_frame(ConnId(2), addr(7001), &mut b, now, &mut o0), TcpVerdict::HandOver(1));
}

#[test]
fn removing_a_session_closes_its_connections() {
    let now = Instant::now();
    let mut core = ShardCore::new(0);
    let mut out = Outbox::new(1);
    core.handle_command(session(SUB, "subu", None), now, &mut out);
    let mut b = good_binding("subu");
    core.handle_tcp_frame(ConnId(5), addr(8000), &mut b, now, &mut out);
    let mut b = good_binding("subu");
    core.handle_datagram(addr(8001), &mut b, now, &mut out);
    out.clear_datagrams();
    core.handle_command(Command::RemoveSession(SUB), now, &mut out);
    assert_eq!(out.tcp_close, vec![ConnId(5)]);
}

// ---- real sockets --------------------------------------------------------

fn framed(packet: &[u8]) -> Vec<u8> {
    let mut v = (packet.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(packet);
    v
}

fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut v = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut v)?;
    Ok(v)
}

fn start_shards(n: usize) -> crate::shard::Dataplane {
    start_shards_with(n, false)
}

pub(super) fn start_shards_with(n: usize, test_hooks: bool) -> crate::shard::Dataplane {
    crate::shard::start_with_tcp(
        crate::shard::DataplaneConfig {
            media_addr: addr(0),
            cpus: vec![None; n],
            io_memory: 512 * 1024,
            recv_batch: 8,
            socket_buffer: 1 << 20,
            busy_poll: false,
            test_hooks,
            tcp_limits: Default::default(),
        },
        Some(addr(0)),
    )
    .expect("dataplane starts")
}

/// Every shard's counters as of now, by shard; other events go to `seen`.
pub(super) fn snapshot(dp: &crate::shard::Dataplane, seen: &mut Vec<Event>) -> Vec<crate::stats::ShardStats> {
    // Periodic reports already queued predate what the caller just did.
    while let Ok(ev) = dp.events.try_recv() {
        if !matches!(ev, Event::Stats(_)) {
            seen.push(ev);
        }
    }
    for shard in 0..dp.shards() {
        dp.send(shard, Command::Snapshot);
    }
    let mut got: Vec<Option<crate::stats::ShardStats>> = vec![None; dp.shards()];
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.iter().any(Option::is_none) {
        match dp.events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Event::Stats(s)) => {
                let i = s.shard;
                got[i] = Some(s);
            }
            Ok(ev) => seen.push(ev),
            Err(_) => panic!("no stats from every shard"),
        }
    }
    got.into_iter().flatten().collect()
}

fn total(stats: &[crate::stats::ShardStats], f: impl Fn(&crate::stats::ShardStats) -> u64) -> u64 {
    stats.iter().map(f).sum()
}

/// One framed Binding (split over two writes, to go through reassembly);
/// returns the connection once it has a framed success answer.
fn check(tcp: SocketAddr, ufrag: &str) -> TcpStream {
    let mut s = TcpStream::connect(tcp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_nodelay(true).unwrap();
    let local = s.local_addr().unwrap();
    let f = framed(&good_binding(ufrag));
    s.write_all(&f[..3]).unwrap();
    std::thread::sleep(Duration::from_millis(10));
    s.write_all(&f[3..]).unwrap();
    let reply = read_frame(&mut s).expect("framed answer");
    let msg = stun::Message::parse(&reply).unwrap();
    assert_eq!(msg.class(), Class::Success);
    assert_eq!(msg.xor_mapped_address(), Some(local), "XOR-MAPPED-ADDRESS is the client's TCP address");
    s
}

/// Bindings over real connections are answered framed, and a session
/// lands on its pinned shard whichever shard's listener accepted the
/// connection (hand-over of the socket through the mesh); a bad first frame
/// or a bad length closes the connection.
#[test]
fn loopback_connections_through_shards() {
    let dp = start_shards(2);
    let tcp = dp.tcp_addr.expect("listening");
    assert_ne!(tcp.port(), 0);
    for shard in 0..2 {
        dp.send(shard, session(SUB, "subu", Some(1)));
    }
    let mut seen = Vec::new();
    // Commands apply in order: once both shards report, both know the session.
    snapshot(&dp, &mut seen);
    // The kernel's reuseport hash picks the listener: connect until one
    // lands on shard 0 and has to move (each try is a coin flip).
    let mut open = Vec::new();
    for _ in 0..24 {
        open.push(check(tcp, "subu"));
        if snapshot(&dp, &mut seen)[0].tcp_handed_over > 0 {
            break;
        }
    }
    let stats = snapshot(&dp, &mut seen);
    assert_eq!(stats[0].tcp_handed_over, 1, "one connection moved from shard 0 to shard 1");
    assert_eq!(stats[0].tcp_connections, 0);
    assert_eq!(stats[1].tcp_connections as usize, open.len(), "shard 1 serves them all");
    while let Ok(ev) = dp.events.try_recv() {
        seen.push(ev);
    }
    let claims: Vec<_> = seen.iter().filter_map(|ev| match ev {
        Event::Claimed { session, shard, .. } => Some((*session, *shard)),
        _ => None,
    }).collect();
    assert_eq!(claims, vec![(SUB, 1)], "claimed once, by the pinned shard");
    // A moved connection keeps working: another check on it is answered.
    let last = open.last_mut().unwrap();
    last.write_all(&framed(&good_binding("subu"))).unwrap();
    assert!(read_frame(last).is_ok());

    // Garbage first frame, and bogus lengths: the server hangs up.
    for bad in [framed(&[0x80, 1, 2, 3]), vec![0, 0], vec![0xff, 0xff, 1, 2]] {
        let mut s = TcpStream::connect(tcp).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&bad).unwrap();
        let mut buf = [0u8; 16];
        let r = s.read(&mut buf);
        assert!(
            matches!(r, Ok(0)) || matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "connection closed after {bad:?}: {r:?}"
        );
    }
    let stats = snapshot(&dp, &mut seen);
    assert_eq!(total(&stats, |s| s.tcp_rejected), 3);
    assert_eq!(total(&stats, |s| s.tcp_accepted) as usize, open.len() + 3);
    assert_eq!(total(&stats, |s| s.tcp_packets_out) as usize, open.len() + 1, "one answer per check");
    assert_eq!(stats[1].tcp_connections as usize, open.len());

    // Closing from the client side is noticed and cleaned up.
    drop(open);
    let until = Instant::now() + Duration::from_secs(5);
    while total(&snapshot(&dp, &mut seen), |s| s.tcp_connections) > 0 {
        assert!(Instant::now() < until, "connections not cleaned up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A client that never reads: its queue fills, packets are dropped and
/// counted, and the shard goes on serving everyone else.
#[test]
fn slow_reader_is_bounded_and_never_blocks_the_shard() {
    let dp = start_shards(1);
    let tcp = dp.tcp_addr.expect("listening");
    dp.send(0, session(SUB, "slow", None));
    dp.send(0, session(PUB, "fast", None));
    let mut seen = Vec::new();
    snapshot(&dp, &mut seen);
    let slow = check(tcp, "slow");
    // 40 MB of DTLS-sized datagrams, far past the socket buffers and the
    // connection's queue, in commands of 500 datagrams.
    for _ in 0..60 {
        let datagrams = (0..500).map(|_| vec![23u8; 1400]).collect();
        dp.send(0, Command::SendDtls { session: SUB, datagrams });
    }
    let started = Instant::now();
    let stats = snapshot(&dp, &mut seen);
    let queue_full = stats[0].drops_for(DropReason::TcpQueueFull);
    assert!(queue_full > 0, "drops counted: {:?}", stats[0]);
    let queued = stats[0].tcp_packets_out - 1;
    assert_eq!(queued + queue_full, 30_000, "every packet queued or counted");
    // Another client is answered at once while the slow one still lags.
    let mut other = check(tcp, "fast");
    other.write_all(&framed(&good_binding("fast"))).unwrap();
    assert!(read_frame(&mut other).is_ok());
    assert!(started.elapsed() < Duration::from_secs(2), "shard stayed responsive");
    drop(slow);
}
