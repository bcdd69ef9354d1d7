//! In-memory tests: our server-side [`DataChannels`] against a bare
//! sctp-proto client standing in for the browser (the DTLS client), packets
//! shuttled directly with no DTLS or sockets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use sctp_proto::{
    Association, AssociationHandle, ClientConfig, DatagramEvent, Endpoint, EndpointConfig, Event,
    Payload, PayloadProtocolIdentifier as Ppi, StreamEvent,
};

use super::*;

const SERVER_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5000);

/// The browser's side: an SCTP client plus what it received (also the
/// browser in `transport`'s tests, over DTLS).
pub(crate) struct Browser {
    endpoint: Endpoint,
    handle: AssociationHandle,
    assoc: Association,
    /// (stream, ppi, payload) of every message the browser read.
    pub(crate) received: Vec<(u16, Ppi, Vec<u8>)>,
    pub(crate) connected: bool,
    /// The last packet the browser sent, to learn the server's verification tag.
    last_sent: Option<Vec<u8>>,
    /// Virtual time both sides have reached, so delayed-SACK timers can fire.
    clock: Option<Instant>,
}

impl Browser {
    pub(crate) fn connect() -> Self {
        let mut endpoint = Endpoint::new(Arc::new(EndpointConfig::new()), None);
        let (handle, assoc) = endpoint
            .connect(ClientConfig::new(), SERVER_ADDR)
            .expect("connect");
        Browser {
            endpoint,
            handle,
            assoc,
            received: Vec::new(),
            connected: false,
            last_sent: None,
            clock: None,
        }
    }

    pub(crate) fn outgoing(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(t) = self.assoc.poll_transmit(now) {
            if let Payload::RawEncode(packets) = t.payload {
                out.extend(packets.iter().map(|p| p.to_vec()));
            }
        }
        if let Some(last) = out.last() {
            self.last_sent = Some(last.clone());
        }
        out
    }

    pub(crate) fn incoming(&mut self, packet: Vec<u8>, now: Instant) {
        if let Some((handle, DatagramEvent::AssociationEvent(ev))) =
            self.endpoint
                .handle(now, SERVER_ADDR, None, None, Bytes::from(packet))
        {
            assert_eq!(handle, self.handle);
            self.assoc.handle_event(ev);
        }
        self.process_events();
    }

    fn process_events(&mut self) {
        while let Some(ev) = self.assoc.poll() {
            match ev {
                Event::Connected => self.connected = true,
                Event::Stream(StreamEvent::Opened { .. }) => {
                    while self.assoc.accept_stream().is_some() {}
                }
                Event::Stream(StreamEvent::Readable { id }) => {
                    while let Ok(Some(chunks)) =
                        self.assoc.stream(id).and_then(|mut s| s.read_sctp())
                    {
                        let mut buf = vec![0; chunks.len()];
                        let n = chunks.read(&mut buf).expect("read");
                        buf.truncate(n);
                        self.received.push((id, chunks.ppi, buf));
                    }
                }
                _ => {}
            }
        }
    }

    pub(crate) fn write(&mut self, stream: u16, ppi: Ppi, data: &[u8]) {
        let mut s = match self.assoc.stream(stream) {
            Ok(s) => s,
            Err(_) => self.assoc.open_stream(stream, ppi).expect("open stream"),
        };
        s.write_with_ppi(data, ppi).expect("write");
    }
}

/// Moves packets both ways until neither side has anything to say, letting
/// virtual time pass for delayed SACKs (which gate e.g. stream resets).
fn pump(browser: &mut Browser, server: &mut DataChannels, now: Instant) {
    let mut now = browser.clock.map_or(now, |c| c.max(now));
    let mut idle_rounds = 0;
    for _ in 0..100 {
        browser.clock = Some(now);
        let mut moved = false;
        for p in browser.outgoing(now) {
            server.handle_sctp(&p, now);
            moved = true;
        }
        while let Some(p) = server.poll_transmit() {
            browser.incoming(p, now);
            moved = true;
        }
        if moved {
            idle_rounds = 0;
            continue;
        }
        idle_rounds += 1;
        if idle_rounds > 2 {
            return;
        }
        // Past the 200 ms delayed-ack timer, well short of any RTO.
        now += Duration::from_millis(300);
        browser.assoc.handle_timeout(now);
        browser.process_events();
        server.handle_timeout(now);
    }
    panic!("packets still flowing after 100 rounds");
}

fn events(server: &mut DataChannels) -> Vec<DataChannelEvent> {
    std::iter::from_fn(|| server.poll_event()).collect()
}

/// A browser and server with the association up and nothing else pending.
fn established() -> (Browser, DataChannels, Instant) {
    let now = Instant::now();
    let mut server = DataChannels::new(now);
    let mut browser = Browser::connect();
    pump(&mut browser, &mut server, now);
    assert!(browser.connected && server.is_established());
    (browser, server, now)
}

fn dcep_open(label: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    dcep::Open {
        channel_type: ChannelType::RELIABLE_ORDERED,
        priority: 256,
        label,
        protocol: "",
    }
    .write(&mut buf)
    .unwrap();
    buf
}

#[test]
fn queued_open_is_sent_on_establishment_and_acked() {
    let now = Instant::now();
    let mut server = DataChannels::new(now);
    let id = server.open("ion-sfu");
    assert_eq!(id.0 % 2, 1, "DTLS server must use odd stream ids");
    assert!(!server.is_established());
    assert!(
        server.poll_transmit().is_none(),
        "server must wait for INIT"
    );
    assert!(matches!(
        server.send_text(id, "early"),
        Err(DataChannelError::NotOpen(_))
    ));

    let mut browser = Browser::connect();
    pump(&mut browser, &mut server, now);
    assert!(server.is_established());

    let (stream, ppi, payload) = browser.received.first().cloned().expect("DCEP OPEN");
    assert_eq!((stream, ppi), (id.0, Ppi::Dcep));
    let dcep::Message::Open(open) = dcep::Message::parse(&payload).unwrap() else {
        panic!("expected DATA_CHANNEL_OPEN, got {payload:?}");
    };
    assert_eq!(open.label, "ion-sfu");
    assert_eq!(open.protocol, "");
    assert_eq!(open.channel_type, ChannelType::RELIABLE_ORDERED);
    assert!(
        events(&mut server).is_empty(),
        "Opened must wait for the ACK"
    );

    browser.write(id.0, Ppi::Dcep, &[dcep::MSG_ACK]);
    pump(&mut browser, &mut server, now);
    assert_eq!(
        events(&mut server),
        vec![DataChannelEvent::Opened {
            id,
            label: "ion-sfu".into()
        }]
    );
}

#[test]
fn open_after_establishment_uses_next_odd_id() {
    let (mut browser, mut server, now) = established();
    let a = server.open("a");
    let b = server.open("b");
    assert_eq!((a.0, b.0), (1, 3));
    pump(&mut browser, &mut server, now);
    let labels: Vec<_> = browser
        .received
        .iter()
        .map(|(s, _, p)| match dcep::Message::parse(p) {
            Ok(dcep::Message::Open(o)) => (*s, o.label.to_owned()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(labels, vec![(1, "a".to_owned()), (3, "b".to_owned())]);
}

#[test]
fn text_and_binary_flow_both_ways() {
    let (mut browser, mut server, now) = established();
    let id = server.open("ion-sfu");
    pump(&mut browser, &mut server, now);
    browser.write(id.0, Ppi::Dcep, &[dcep::MSG_ACK]);
    pump(&mut browser, &mut server, now);
    events(&mut server);
    browser.received.clear();

    server.send_text(id, "hello browser").unwrap();
    server.send_text(id, "").unwrap();
    server.send_binary(id, &[1, 2, 3]).unwrap();
    // Larger than one SCTP packet, so it is fragmented and reassembled.
    let big = "x".repeat(5000);
    server.send_text(id, &big).unwrap();
    pump(&mut browser, &mut server, now);
    assert_eq!(
        browser.received,
        vec![
            (id.0, Ppi::String, b"hello browser".to_vec()),
            (id.0, Ppi::StringEmpty, vec![0]),
            (id.0, Ppi::Binary, vec![1, 2, 3]),
            (id.0, Ppi::String, big.clone().into_bytes()),
        ]
    );

    browser.write(id.0, Ppi::String, b"hello sfu");
    browser.write(id.0, Ppi::StringEmpty, &[0]);
    browser.write(id.0, Ppi::Binary, &[9, 8]);
    browser.write(id.0, Ppi::String, big.as_bytes());
    pump(&mut browser, &mut server, now);
    let text = |s: &str| DataChannelEvent::Message {
        id,
        data: MessageData::Text(s.to_owned()),
    };
    assert_eq!(
        events(&mut server),
        vec![
            text("hello sfu"),
            text(""),
            DataChannelEvent::Message {
                id,
                data: MessageData::Binary(vec![9, 8])
            },
            text(&big),
        ]
    );
}

#[test]
fn oversized_and_unknown_sends_are_refused() {
    let (mut browser, mut server, now) = established();
    let id = server.open("x");
    pump(&mut browser, &mut server, now);
    let big = vec![0u8; MAX_MESSAGE_SIZE as usize + 1];
    assert!(matches!(
        server.send_binary(id, &big),
        Err(DataChannelError::MessageTooLarge(_))
    ));
    assert!(matches!(
        server.send_text(ChannelId(7), "hi"),
        Err(DataChannelError::UnknownChannel(_))
    ));
}

#[test]
fn peer_opened_channel_is_acked_and_reported() {
    let (mut browser, mut server, now) = established();
    browser.write(0, Ppi::Dcep, &dcep_open("chat"));
    pump(&mut browser, &mut server, now);

    assert_eq!(
        events(&mut server),
        vec![DataChannelEvent::Opened {
            id: ChannelId(0),
            label: "chat".into()
        }]
    );
    assert_eq!(browser.received, vec![(0, Ppi::Dcep, vec![dcep::MSG_ACK])]);

    browser.write(0, Ppi::String, b"ping");
    pump(&mut browser, &mut server, now);
    server.send_text(ChannelId(0), "pong").unwrap();
    pump(&mut browser, &mut server, now);
    assert_eq!(
        events(&mut server),
        vec![DataChannelEvent::Message {
            id: ChannelId(0),
            data: MessageData::Text("ping".into())
        }]
    );
    assert_eq!(
        browser.received.last(),
        Some(&(0, Ppi::String, b"pong".to_vec()))
    );

    // Our own channels skip past ids the peer already uses.
    assert_eq!(server.open("ours").0, 1);
}

#[test]
fn data_before_ack_opens_the_channel() {
    let (mut browser, mut server, now) = established();
    let id = server.open("ion-sfu");
    pump(&mut browser, &mut server, now);
    browser.write(id.0, Ppi::String, b"no ack");
    pump(&mut browser, &mut server, now);
    assert_eq!(
        events(&mut server),
        vec![
            DataChannelEvent::Opened {
                id,
                label: "ion-sfu".into()
            },
            DataChannelEvent::Message {
                id,
                data: MessageData::Text("no ack".into())
            },
        ]
    );
}

#[test]
fn peer_reset_closes_the_channel() {
    let (mut browser, mut server, now) = established();
    browser.write(0, Ppi::Dcep, &dcep_open("chat"));
    pump(&mut browser, &mut server, now);
    events(&mut server);

    browser.assoc.stream(0).unwrap().close().unwrap();
    pump(&mut browser, &mut server, now);
    assert_eq!(
        events(&mut server),
        vec![DataChannelEvent::Closed { id: ChannelId(0) }]
    );
    assert!(server.send_text(ChannelId(0), "late").is_err());
}

#[test]
fn peer_abort_closes_every_channel() {
    let (mut browser, mut server, now) = established();
    let ours = server.open("ion-sfu");
    browser.write(0, Ppi::Dcep, &dcep_open("chat"));
    pump(&mut browser, &mut server, now);
    events(&mut server);

    // An ABORT (chunk type 6) with the server's verification tag.
    let tag = server_tag(&browser);
    server.handle_sctp(&with_checksum(tag, &[6, 0, 0, 4]), now);
    assert!(!server.is_established());
    let mut closed = events(&mut server);
    closed.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        closed,
        vec![
            DataChannelEvent::Closed { id: ChannelId(0) },
            DataChannelEvent::Closed { id: ours },
        ]
    );
}

#[test]
fn retransmits_on_timeout() {
    let (mut browser, mut server, now) = established();
    let id = server.open("ion-sfu");
    // Lose the OPEN: the server must resend it after its RTO.
    while server.poll_transmit().is_some() {}
    let deadline = server.poll_timeout().expect("T3-rtx armed");
    assert!(deadline <= now + Duration::from_secs(61));
    server.handle_timeout(deadline);
    pump(&mut browser, &mut server, deadline);
    assert!(browser
        .received
        .iter()
        .any(|(s, ppi, _)| *s == id.0 && *ppi == Ppi::Dcep));
}

#[test]
fn sdp_lines_match_structured_pieces() {
    assert_eq!(
        SDP_LINES[0],
        format!("m={SDP_MEDIA_KIND} 9 {SDP_PROTO} {SDP_FORMAT}")
    );
    for (line, (k, v)) in SDP_LINES[1..].iter().zip(SDP_ATTRIBUTES) {
        assert_eq!(*line, format!("a={k}:{v}"));
    }
    assert_eq!(SDP_ATTRIBUTES[0].1, SCTP_PORT.to_string());
    assert_eq!(SDP_ATTRIBUTES[1].1, MAX_MESSAGE_SIZE.to_string());
}

// --- Garbage input -------------------------------------------------------

/// CRC32c (Castagnoli, reflected), as SCTP uses (RFC 4960 appendix B).
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A packet with the given verification tag and chunks, checksummed so it
/// gets past the CRC check into chunk parsing.
fn with_checksum(tag: u32, chunks: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + chunks.len());
    p.extend_from_slice(&SCTP_PORT.to_be_bytes());
    p.extend_from_slice(&SCTP_PORT.to_be_bytes());
    p.extend_from_slice(&tag.to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    p.extend_from_slice(chunks);
    let crc = crc32c(&p);
    p[8..12].copy_from_slice(&crc.to_le_bytes());
    p
}

fn server_tag(browser: &Browser) -> u32 {
    let p = browser.last_sent.as_ref().expect("browser sent something");
    u32::from_be_bytes([p[4], p[5], p[6], p[7]])
}

#[test]
fn crc32c_matches_sctp_proto() {
    let (browser, _server, _) = established();
    let p = browser.last_sent.clone().unwrap();
    let rebuilt = with_checksum(server_tag(&browser), &p[12..]);
    assert_eq!(rebuilt, p);
}

fn chunk() -> impl Strategy<Value = Vec<u8>> {
    let kind = prop_oneof![
        prop::sample::select(vec![0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 130, 192]),
        any::<u8>(),
    ];
    (
        kind,
        any::<u8>(),
        prop::option::of(any::<u16>()),
        prop::collection::vec(any::<u8>(), 0..48),
    )
        .prop_map(|(kind, flags, len, body)| {
            // Mostly a truthful length field, sometimes a lying one.
            let len = len.unwrap_or((4 + body.len()) as u16);
            let mut c = vec![kind, flags];
            c.extend_from_slice(&len.to_be_bytes());
            c.extend_from_slice(&body);
            while c.len() % 4 != 0 {
                c.push(0);
            }
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_bytes_never_panic(
        packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..8),
    ) {
        let now = Instant::now();
        let mut server = DataChannels::new(now);
        for p in &packets {
            server.handle_sctp(p, now);
        }
        while server.poll_transmit().is_some() {}
        let _ = events(&mut server);
    }

    #[test]
    fn checksummed_chunks_never_panic_before_association(
        tag in prop_oneof![Just(0u32), any::<u32>()],
        chunks in prop::collection::vec(chunk(), 1..4),
    ) {
        let now = Instant::now();
        let mut server = DataChannels::new(now);
        server.handle_sctp(&with_checksum(tag, &chunks.concat()), now);
        while server.poll_transmit().is_some() {}
        server.handle_timeout(now + Duration::from_secs(5));
    }

    #[test]
    fn checksummed_chunks_never_panic_when_established(
        chunks in prop::collection::vec(chunk(), 1..4),
        rounds in 1usize..4,
    ) {
        let (mut browser, mut server, now) = established();
        let id = server.open("ion-sfu");
        browser.write(0, Ppi::Dcep, &dcep_open("chat"));
        pump(&mut browser, &mut server, now);
        let tag = server_tag(&browser);
        let packet = with_checksum(tag, &chunks.concat());
        for i in 0..rounds {
            let t = now + Duration::from_millis(10 * i as u64);
            server.handle_sctp(&packet, t);
            while server.poll_transmit().is_some() {}
            server.handle_timeout(t + Duration::from_secs(4));
            let _ = events(&mut server);
        }
        let _ = server.send_text(id, "still alive?");
        let _ = server.send_text(ChannelId(0), "still alive?");
    }
}

#[test]
fn local_close_resets_the_stream() {
    let (mut browser, mut server, now) = established();
    browser.write(0, Ppi::Dcep, &dcep_open("chat"));
    pump(&mut browser, &mut server, now);
    events(&mut server);

    server.close(ChannelId(0));
    assert_eq!(
        events(&mut server),
        vec![DataChannelEvent::Closed { id: ChannelId(0) }]
    );
    pump(&mut browser, &mut server, now);
    assert!(
        browser.assoc.stream(0).is_err(),
        "browser's stream 0 should be reset"
    );
    assert!(events(&mut server).is_empty(), "no second Closed");
}
