//! The TURN server core (RFC 8656) fed what clients and peers send: raw
//! messages and ChannelData, TCP stream framing, and, so the fuzzer gets
//! past authentication, requests whose attributes it chooses but that the
//! harness signs with a valid long-term credential and nonce. Allocations
//! stay within their per-user quota whatever arrives.
#![no_main]

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use controlplane::config::TurnConfig;
use controlplane::turn::auth::{long_term_key, Credentials};
use controlplane::turn::framing::{frame_len, parse_channel_data};
use controlplane::turn::{ClientAction, ClientKey, CoreConfig, RelayPorts, Server, StatsCells, Transport};
use dataplane::stun::{attr, method, Class, Message, MessageWriter};
use libfuzzer_sys::fuzz_target;

const T0: u64 = 1_700_000_000_000;
const MAX_PER_USER: u32 = 3;

#[derive(Default)]
struct Ports(HashSet<SocketAddr>);

impl RelayPorts for Ports {
    fn open(&mut self, addr: SocketAddr) -> bool {
        self.0.insert(addr)
    }
    fn close(&mut self, addr: SocketAddr) {
        assert!(self.0.remove(&addr), "close without open");
    }
}

fn server() -> Server<Ports> {
    let mut cfg = TurnConfig { enabled: true, ..TurnConfig::default() };
    cfg.static_users.insert("alice".into(), "pw".into());
    cfg.relay_port_min = 40000;
    cfg.relay_port_max = 40007;
    cfg.max_allocations_per_user = MAX_PER_USER;
    let relay_ip: IpAddr = "203.0.113.1".parse().unwrap();
    let core = CoreConfig::new(&cfg, relay_ip, vec!["10.0.0.5:7882".parse().unwrap()]);
    let creds = Credentials::new(&cfg).unwrap();
    Server::new(core, creds, [9; 16], Ports::default(), Arc::new(StatsCells::default())).unwrap()
}

/// A request with the fuzzer's attributes (type, length byte, value), then
/// USERNAME, REALM, NONCE, MESSAGE-INTEGRITY and FINGERPRINT done right.
fn signed(m: u16, attrs: &[u8], realm: &[u8], nonce: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let mut w = MessageWriter::new(&mut buf, Class::Request, m, &[5; 12]).unwrap();
    let mut rest = attrs;
    while let [t0, t1, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let typ = u16::from_be_bytes([*t0, *t1]);
        if matches!(typ, attr::MESSAGE_INTEGRITY | attr::FINGERPRINT | 0x001C) || w.add_attr(typ, &tail[..len]).is_err() {
            break;
        }
        rest = &tail[len..];
    }
    let realm_str = std::str::from_utf8(realm).unwrap_or("sfud");
    let key = long_term_key("alice", realm_str, "pw").unwrap();
    let ok = w.add_attr(attr::USERNAME, b"alice").is_ok()
        && w.add_attr(attr::REALM, realm).is_ok()
        && w.add_attr(attr::NONCE, nonce).is_ok()
        && w.add_message_integrity(&key).is_ok()
        && w.add_fingerprint().is_ok();
    if !ok {
        return Vec::new();
    }
    let n = w.finish();
    buf.truncate(n);
    buf
}

fuzz_target!(|data: &[u8]| {
    let _ = frame_len(data);
    let _ = parse_channel_data(data);

    let mut s = server();
    let mut out = vec![0u8; 70_000];
    let clients = [
        ClientKey { transport: Transport::Udp, addr: "198.51.100.9:5555".parse().unwrap() },
        ClientKey { transport: Transport::Tcp, addr: "198.51.100.10:6666".parse().unwrap() },
    ];
    // A 401 challenge gives the realm and a nonce to sign with.
    let mut b = vec![0u8; 256];
    let mut w = MessageWriter::new(&mut b, Class::Request, method::ALLOCATE, &[1; 12]).unwrap();
    w.add_attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]).unwrap();
    let n = w.finish();
    let ClientAction::Reply(r) = s.handle_client(T0, clients[0], &b[..n], &mut out) else { panic!("no challenge") };
    let challenge = Message::parse(&out[..r]).expect("our reply parses");
    let realm = challenge.realm().expect("realm").to_vec();
    let nonce = challenge.nonce().expect("nonce").to_vec();

    let mut now = T0;
    let mut relays: Vec<SocketAddr> = Vec::new();
    let mut input = data;
    while let [op, len, tail @ ..] = input {
        let len = usize::from(*len).min(tail.len());
        let (arg, next) = tail.split_at(len);
        input = next;
        let client = clients[usize::from(op >> 7)];
        let request = if matches!(op & 0x7, 2 | 3) {
            let m = [method::ALLOCATE, method::REFRESH, method::CREATE_PERMISSION, method::CHANNEL_BIND][usize::from(op >> 3 & 3)];
            signed(m, arg, &realm, &nonce)
        } else {
            Vec::new()
        };
        let action = match op & 0x7 {
            0 | 1 => s.handle_client(now, client, arg, &mut out),
            2 | 3 => s.handle_client(now, client, &request, &mut out),
            4 => {
                let (Some(relay), [a, b, c, d, p0, p1, data @ ..]) = (relays.first(), arg) else { continue };
                let peer = SocketAddr::from(([*a, *b, *c, *d], u16::from_be_bytes([*p0, *p1])));
                if let Some((to, n)) = s.handle_peer(now, *relay, peer, data, &mut out) {
                    assert!(clients.contains(&to) && n <= out.len());
                }
                ClientAction::None
            }
            5 => {
                now += u64::from(arg.first().copied().unwrap_or(1)) * 10_000;
                s.handle_timeout(now);
                ClientAction::None
            }
            _ => {
                s.client_closed(&client);
                ClientAction::None
            }
        };
        match action {
            ClientAction::Reply(n) => {
                let reply = Message::parse(&out[..n]).expect("our replies parse");
                if let Some(a) = reply.xor_address(attr::XOR_RELAYED_ADDRESS) {
                    relays.push(a);
                }
            }
            ClientAction::Relay { data, .. } => assert!(data.len() <= arg.len().max(request.len())),
            ClientAction::None => {}
        }
        assert!(s.allocation_count() <= 2, "one allocation per client 5-tuple");
        assert!(s.ports().0.len() <= 16, "relay ports bounded");
    }
    s.close_all();
    assert!(s.ports().0.is_empty(), "every relay port closed");
});
