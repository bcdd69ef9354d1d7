use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::dtls::test_client::TestClient;
use crate::dtls::Certificate;

const GCM: &str = "SRTP_AEAD_AES_128_GCM";
const CM: &str = "SRTP_AES128_CM_SHA1_80";

fn context() -> &'static (Certificate, DtlsContext) {
    static CTX: OnceLock<(Certificate, DtlsContext)> = OnceLock::new();
    CTX.get_or_init(|| {
        let cert = Certificate::generate().unwrap();
        let ctx = DtlsContext::new(&cert).unwrap();
        (cert, ctx)
    })
}

fn server_for(client: &TestClient) -> DtlsServer {
    DtlsServer::new(&context().1, client.fingerprint()).unwrap()
}

/// Moves datagrams both ways until neither side has anything to say; returns
/// the first server error.
fn pump(server: &mut DtlsServer, client: &mut TestClient) -> Result<(), DtlsError> {
    for _ in 0..50 {
        let mut moved = false;
        while let Some(d) = client.poll() {
            moved = true;
            server.handle_datagram(&d, Instant::now())?;
        }
        while let Some(d) = server.poll_datagram() {
            moved = true;
            client.handle(&d);
        }
        if !moved {
            return Ok(());
        }
    }
    panic!("datagrams kept flowing");
}

fn events(server: &mut DtlsServer) -> Vec<DtlsEvent> {
    std::iter::from_fn(|| server.poll_event()).collect()
}

fn connected(server: &mut DtlsServer) -> (String, Vec<u8>) {
    let evs = events(server);
    let mut found = evs.iter().filter_map(|e| match e {
        DtlsEvent::Connected {
            srtp_profile,
            keying_material,
        } => Some((srtp_profile.clone(), keying_material.clone())),
        _ => None,
    });
    let first = found.next().expect("Connected event");
    assert!(found.next().is_none(), "Connected only once");
    first
}

fn handshake(client_profiles: &str) -> (DtlsServer, TestClient, String, Vec<u8>) {
    let mut client = TestClient::new(client_profiles);
    let mut server = server_for(&client);
    client.start();
    pump(&mut server, &mut client).unwrap();
    assert!(client.connected && server.is_connected());
    let (profile, km) = connected(&mut server);
    assert!(
        server.poll_timeout().is_none(),
        "nothing to retransmit once connected"
    );
    (server, client, profile, km)
}

fn check_profile(client_profiles: &str, want: &str, km_len: usize) {
    let (mut server, mut client, profile, km) = handshake(client_profiles);
    assert_eq!(profile, want);
    assert_eq!(client.profile(), Some(want));
    assert_eq!(km.len(), km_len);
    assert_eq!(
        km,
        client.export(km_len),
        "both sides derive the same SRTP keys"
    );
    assert_eq!(
        client.server_fingerprint().unwrap(),
        context().0.fingerprint_sha256()
    );

    // Application data both ways (what SCTP will ride on).
    client.send(b"hello server");
    server.send_application_data(b"hello client").unwrap();
    pump(&mut server, &mut client).unwrap();
    assert_eq!(
        events(&mut server),
        vec![DtlsEvent::ApplicationData(b"hello server".to_vec())]
    );
    assert_eq!(client.received, vec![b"hello client".to_vec()]);
}

#[test]
fn handshake_gcm_only() {
    check_profile(GCM, GCM, 56);
}

#[test]
fn handshake_cm_only() {
    check_profile(CM, CM, 60);
}

#[test]
fn handshake_both_prefers_gcm() {
    check_profile(&format!("{CM}:{GCM}"), GCM, 56);
    check_profile(&format!("{GCM}:{CM}"), GCM, 56);
}

#[test]
fn no_common_srtp_profile_fails() {
    let mut client = TestClient::new("SRTP_AES128_CM_SHA1_32");
    let mut server = server_for(&client);
    client.start();
    assert!(pump(&mut server, &mut client).is_err());
    assert!(!server.is_connected());
    assert!(events(&mut server).is_empty());
}

#[test]
fn wrong_fingerprint_fails_without_connected() {
    let mut client = TestClient::new(GCM);
    let other = Certificate::generate().unwrap();
    let mut server =
        DtlsServer::new(&context().1, ("sha-256".into(), other.fingerprint_sha256())).unwrap();
    client.start();
    let err = pump(&mut server, &mut client).unwrap_err();
    assert!(matches!(err, DtlsError::FingerprintMismatch), "{err:?}");
    while let Some(d) = server.poll_datagram() {
        client.handle(&d);
    }
    assert!(!server.is_connected());
    assert!(events(&mut server).is_empty());
    // The bad_certificate alert reaches the client, which gives up too.
    assert!(client.failed && !client.connected);
    assert!(matches!(
        server.handle_datagram(&[22, 0xfe, 0xfd], Instant::now()),
        Err(DtlsError::Failed)
    ));
    assert!(server.poll_timeout().is_none());
}

#[test]
fn bad_fingerprint_arguments() {
    let ctx = &context().1;
    assert!(matches!(
        DtlsServer::new(ctx, ("md5".into(), "00".into())),
        Err(DtlsError::UnsupportedFingerprintAlgorithm(_))
    ));
    assert!(matches!(
        DtlsServer::new(ctx, ("sha-256".into(), "AB:CD".into())),
        Err(DtlsError::MalformedFingerprint(_))
    ));
}

#[test]
fn dropped_server_flight_is_retransmitted() {
    let mut client = TestClient::new(GCM);
    let mut server = server_for(&client);
    assert!(
        server.poll_timeout().is_none(),
        "no timer before the ClientHello"
    );
    client.start();
    let hello = client.poll().unwrap();
    server.handle_datagram(&hello, Instant::now()).unwrap();
    let flight: Vec<_> = std::iter::from_fn(|| server.poll_datagram()).collect();
    assert_eq!(
        flight.len(),
        1,
        "ServerHello..ServerHelloDone packed in one datagram"
    );
    assert!(flight.iter().all(|d| d.len() <= DTLS_MTU));
    // The flight is lost. openssl's timer runs on its own clock, so wait for it.
    let due = server.poll_timeout().expect("retransmission timer armed");
    assert!(due <= Instant::now() + Duration::from_millis(1500));
    server.handle_timeout(Instant::now()).unwrap();
    assert!(server.poll_datagram().is_none(), "not due yet");
    std::thread::sleep(due.saturating_duration_since(Instant::now()) + Duration::from_millis(20));
    server.handle_timeout(Instant::now()).unwrap();
    let again: Vec<_> = std::iter::from_fn(|| server.poll_datagram()).collect();
    assert_eq!(
        handshake_types(&again),
        handshake_types(&flight),
        "the whole flight is sent again"
    );
    for d in &again {
        client.handle(d);
    }
    pump(&mut server, &mut client).unwrap();
    assert!(client.connected && server.is_connected());
    let (_, km) = connected(&mut server);
    assert_eq!(km, client.export(56));
}

/// Splits datagrams into single-record datagrams, as a reordering network could.
fn split_records(datagrams: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for d in datagrams {
        let mut rest = &d[..];
        while rest.len() >= 13 {
            let len = 13 + usize::from(u16::from_be_bytes([rest[11], rest[12]]));
            let (rec, tail) = rest.split_at(len.min(rest.len()));
            out.push(rec.to_vec());
            rest = tail;
        }
    }
    out
}

/// (content type, first fragment byte): the handshake message type for epoch 0.
fn handshake_types(datagrams: &[Vec<u8>]) -> Vec<(u8, u8)> {
    split_records(datagrams)
        .iter()
        .map(|r| (r[0], r.get(13).copied().unwrap_or(0)))
        .collect()
}

#[test]
fn duplicated_and_reordered_datagrams() {
    let mut client = TestClient::new(GCM);
    let mut server = server_for(&client);
    client.start();
    let hello = client.poll().unwrap();
    for _ in 0..3 {
        server.handle_datagram(&hello, Instant::now()).unwrap();
    }
    let flight: Vec<_> = std::iter::from_fn(|| server.poll_datagram()).collect();
    for d in flight.iter().chain(flight.iter()) {
        client.handle(d);
    }
    let client_flight: Vec<_> = std::iter::from_fn(|| client.poll()).collect();
    let mut records = split_records(&client_flight);
    assert_eq!(
        records.len(),
        5,
        "Certificate, ClientKeyExchange, CertificateVerify, CCS, Finished"
    );
    records.reverse();
    for d in records.iter().chain(records.iter()) {
        server.handle_datagram(d, Instant::now()).unwrap();
    }
    pump(&mut server, &mut client).unwrap();
    // Whatever openssl had to drop comes back with a retransmission.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !(client.connected && server.is_connected()) && Instant::now() < deadline {
        std::thread::sleep(client.timeout().unwrap_or(Duration::from_millis(50)));
        client.handle_timeout();
        server.handle_timeout(Instant::now()).unwrap();
        pump(&mut server, &mut client).unwrap();
    }
    assert!(client.connected && server.is_connected());
    let (_, km) = connected(&mut server);
    assert_eq!(km, client.export(56));
    // The client's final flight again, after the handshake: openssl answers
    // with our last flight again, and nothing reaches the application.
    for d in &client_flight {
        server.handle_datagram(d, Instant::now()).unwrap();
    }
    assert!(events(&mut server).is_empty());
    pump(&mut server, &mut client).unwrap();
    assert!(client.connected);
}

#[test]
fn handshake_records_before_client_hello() {
    // Capture a real client's second flight...
    let mut donor = TestClient::new(GCM);
    let mut donor_server = server_for(&donor);
    donor.start();
    let hello = donor.poll().unwrap();
    donor_server
        .handle_datagram(&hello, Instant::now())
        .unwrap();
    while let Some(d) = donor_server.poll_datagram() {
        donor.handle(&d);
    }
    let late_flight: Vec<_> = std::iter::from_fn(|| donor.poll()).collect();

    // ...and show it to a fresh server before any ClientHello: openssl drops it.
    let mut server = server_for(&donor);
    for d in &late_flight {
        server.handle_datagram(d, Instant::now()).unwrap();
    }
    assert!(!server.is_connected());
    assert!(events(&mut server).is_empty());
    assert!(server.poll_datagram().is_none());

    // The same server still completes a real handshake afterwards.
    let mut client = TestClient::with_cert(GCM, donor.cert.clone());
    client.start();
    pump(&mut server, &mut client).unwrap();
    assert!(client.connected && server.is_connected());
    let (_, km) = connected(&mut server);
    assert_eq!(km, client.export(56));
}

#[test]
fn client_hello_prefilter() {
    let mut client = TestClient::new(GCM);
    client.start();
    let hello = client.poll().unwrap();
    assert!(starts_with_client_hello(&hello));
    assert!(!starts_with_client_hello(&hello[..13]));
    let mut other_epoch = hello.clone();
    other_epoch[4] = 1;
    assert!(!starts_with_client_hello(&other_epoch));
    let mut not_hello = hello.clone();
    not_hello[13] = 11;
    assert!(!starts_with_client_hello(&not_hello));
    assert!(!starts_with_client_hello(&[]));
}

#[test]
fn peer_close_notify() {
    let (mut server, mut client, _, _) = handshake(GCM);
    client.close();
    pump(&mut server, &mut client).unwrap();
    assert_eq!(events(&mut server), vec![DtlsEvent::Closed]);
    assert!(!server.is_connected());
    assert!(client.peer_closed, "server answered with close_notify");
    assert!(matches!(
        server.send_application_data(b"x"),
        Err(DtlsError::Closed)
    ));
    server
        .handle_datagram(&[23, 0xfe, 0xfd, 0, 1], Instant::now())
        .unwrap();
}

#[test]
fn local_close() {
    let (mut server, mut client, _, _) = handshake(CM);
    server.close();
    pump(&mut server, &mut client).unwrap();
    assert!(client.peer_closed);
}

#[test]
fn send_before_connected_is_refused() {
    let client = TestClient::new(GCM);
    let mut server = server_for(&client);
    assert!(matches!(
        server.send_application_data(b"x"),
        Err(DtlsError::NotConnected)
    ));
}

#[test]
fn server_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<DtlsServer>();
    assert_send::<DtlsContext>();
    assert_send::<Certificate>();
    fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<DtlsError>();
}

#[test]
fn garbage_after_connect_is_dropped() {
    let (mut server, mut client, _, _) = handshake(GCM);
    // Well-framed application data with a bad tag, and bare junk.
    let mut forged = vec![23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 40];
    forged.extend([0x55; 40]);
    for d in [&forged[..], &[0xff; 100][..], &[][..]] {
        server.handle_datagram(d, Instant::now()).unwrap();
    }
    client.send(b"still alive");
    pump(&mut server, &mut client).unwrap();
    assert_eq!(
        events(&mut server),
        vec![DtlsEvent::ApplicationData(b"still alive".to_vec())]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_datagrams_never_panic(
        datagrams in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300),
                // ClientHello-looking records get past the pre-filter into openssl.
                proptest::collection::vec(any::<u8>(), 0..250).prop_map(|body| {
                    let mut d = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0];
                    d.extend((body.len() as u16 + 1).to_be_bytes());
                    d.push(1);
                    d.extend(body);
                    d
                }),
                // Bias toward DTLS-looking headers so openssl's parser is reached.
                (20u8..=25, any::<u16>(), proptest::collection::vec(any::<u8>(), 0..200)).prop_map(
                    |(ct, epoch, body)| {
                        let mut d = vec![ct, 0xfe, 0xfd];
                        d.extend(epoch.to_be_bytes());
                        d.extend([0, 0, 0, 0, 0, 0]);
                        d.extend((body.len() as u16).to_be_bytes());
                        d.extend(body);
                        d
                    }
                ),
            ],
            1..6,
        ),
        after_hello in any::<bool>(),
    ) {
        let mut client = TestClient::new(GCM);
        let mut server = server_for(&client);
        if after_hello {
            client.start();
            let hello = client.poll().unwrap();
            server.handle_datagram(&hello, Instant::now()).unwrap();
        }
        for d in &datagrams {
            let _ = server.handle_datagram(d, Instant::now());
            while server.poll_datagram().is_some() {}
            let _ = server.handle_timeout(Instant::now());
        }
        prop_assert!(!server.is_connected());
        let got_connected = events(&mut server)
            .iter()
            .any(|e| matches!(e, DtlsEvent::Connected { .. }));
        prop_assert!(!got_connected);
    }
}
