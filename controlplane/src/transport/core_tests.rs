//! The sans-IO transport against the DTLS test client: datagrams shuttled
//! by hand, no sockets, no sleeping.

use std::sync::OnceLock;
use std::time::Instant;

use super::*;
use crate::datachannel::tests::Browser;
use crate::dtls::test_client::TestClient;
use crate::dtls::Certificate;

const PROFILES: &str = "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80";

fn ctx() -> &'static DtlsContext {
    static CTX: OnceLock<DtlsContext> = OnceLock::new();
    CTX.get_or_init(|| DtlsContext::new(&Certificate::generate().unwrap()).unwrap())
}

/// Everything the transport put out, with its datagrams handed to the client.
fn drain(t: &mut Transport, client: &mut TestClient) -> Vec<Output> {
    let mut outs = Vec::new();
    while let Some(o) = t.poll_output() {
        if let Output::Transmit(ds) = &o {
            for d in ds {
                client.handle(d);
            }
        }
        outs.push(o);
    }
    outs
}

/// Runs the handshake to the end; returns every output seen.
fn handshake(t: &mut Transport, client: &mut TestClient) -> Vec<Output> {
    let mut outs = Vec::new();
    for _ in 0..20 {
        let mut moved = false;
        while let Some(d) = client.poll() {
            moved = true;
            t.handle_dtls(&d, Instant::now());
        }
        let o = drain(t, client);
        moved |= !o.is_empty();
        outs.extend(o);
        if !moved {
            break;
        }
    }
    outs
}

fn keys(outs: &[Output]) -> Vec<(&str, &[u8])> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Keys { srtp_profile, keying_material } => Some((srtp_profile.as_str(), keying_material.as_slice())),
            _ => None,
        })
        .collect()
}

#[test]
fn handshake_yields_datagrams_then_the_keys_once() {
    let mut client = TestClient::new(PROFILES);
    let mut t = Transport::new(ctx(), Some(client.fingerprint()), false, Instant::now()).unwrap();
    client.start();
    let outs = handshake(&mut t, &mut client);
    assert!(client.connected, "client did not finish the handshake");
    let k = keys(&outs);
    assert_eq!(k.len(), 1, "keys exactly once: {outs:?}");
    let (profile, material) = k[0];
    assert_eq!(Some(profile), client.profile());
    assert_eq!(material, client.export(material.len()).as_slice(), "both sides export the same SRTP keys");
    // The server's flights went out before the keys were reported.
    let first_keys = outs.iter().position(|o| matches!(o, Output::Keys { .. })).unwrap();
    assert!(outs[..first_keys].iter().any(|o| matches!(o, Output::Transmit(_))));
    assert!(!t.is_done());
}

#[test]
fn datagrams_before_the_fingerprint_wait_and_are_bounded() {
    let mut client = TestClient::new(PROFILES);
    let mut t = Transport::new(ctx(), None, true, Instant::now()).unwrap();
    client.start();
    let hello: Vec<Vec<u8>> = std::iter::from_fn(|| client.poll()).collect();
    assert!(!hello.is_empty());
    for d in &hello {
        t.handle_dtls(d, Instant::now());
    }
    // Junk beyond the bound is dropped, not stored.
    for _ in 0..2 * MAX_EARLY_DATAGRAMS {
        t.handle_dtls(&[22, 254, 253, 0, 0], Instant::now());
    }
    assert_eq!(t.early.len(), MAX_EARLY_DATAGRAMS);
    assert_eq!(t.poll_output(), None, "nothing can go out before DTLS starts");

    t.set_remote_fingerprint(ctx(), client.fingerprint(), Instant::now()).unwrap();
    assert!(t.early.is_empty());
    let mut outs = drain(&mut t, &mut client);
    outs.extend(handshake(&mut t, &mut client));
    assert!(client.connected, "the buffered ClientHello started the handshake");
    assert_eq!(keys(&outs).len(), 1);
    // A second fingerprint (a renegotiation's answer) changes nothing.
    t.set_remote_fingerprint(ctx(), ("sha-256".into(), "00".into()), Instant::now()).unwrap();
    assert!(!t.is_done());
}

#[test]
fn a_wrong_fingerprint_fails_with_an_alert_first() {
    let mut client = TestClient::new(PROFILES);
    let other = TestClient::new(PROFILES);
    let mut t = Transport::new(ctx(), Some(other.fingerprint()), false, Instant::now()).unwrap();
    client.start();
    let outs = handshake(&mut t, &mut client);
    let failed = outs.iter().position(|o| matches!(o, Output::Failed { on_datagram: true, .. }));
    let failed = failed.unwrap_or_else(|| panic!("no failure in {outs:?}"));
    assert!(matches!(outs[failed - 1], Output::Transmit(_)), "the alert goes out before the failure: {outs:?}");
    assert!(keys(&outs).is_empty());
    assert!(t.is_done());
    assert_eq!(t.poll_timeout(), None);
    // Later datagrams are ignored.
    t.handle_dtls(&[22, 254, 253, 0, 0], Instant::now());
    assert_eq!(t.poll_output(), None);
}

#[test]
fn close_sends_close_notify_and_stops() {
    let mut client = TestClient::new(PROFILES);
    let mut t = Transport::new(ctx(), Some(client.fingerprint()), true, Instant::now()).unwrap();
    client.start();
    handshake(&mut t, &mut client);
    assert!(client.connected);
    t.close();
    let outs = drain(&mut t, &mut client);
    assert!(matches!(outs.as_slice(), [Output::Transmit(_)]), "{outs:?}");
    assert!(client.peer_closed, "the client read close_notify");
    assert!(t.is_done());
    assert_eq!(t.poll_timeout(), None);
    t.send_text(crate::datachannel::ChannelId(1), "late", Instant::now());
    assert_eq!(t.poll_output(), None);
}

#[test]
fn close_before_the_handshake_sends_nothing() {
    let client = TestClient::new(PROFILES);
    let mut t = Transport::new(ctx(), Some(client.fingerprint()), false, Instant::now()).unwrap();
    t.close();
    assert_eq!(t.poll_output(), None);
    assert!(t.is_done());
}

#[test]
fn the_peers_close_notify_is_answered_then_reported() {
    let mut client = TestClient::new(PROFILES);
    let mut t = Transport::new(ctx(), Some(client.fingerprint()), false, Instant::now()).unwrap();
    client.start();
    handshake(&mut t, &mut client);
    client.close();
    let outs = handshake(&mut t, &mut client);
    assert!(matches!(outs.as_slice(), [Output::Transmit(_), Output::PeerClosed]), "{outs:?}");
    assert!(t.is_done());
}

#[test]
fn timers_run_only_while_dtls_is_live() {
    let mut client = TestClient::new(PROFILES);
    let mut t = Transport::new(ctx(), Some(client.fingerprint()), false, Instant::now()).unwrap();
    assert_eq!(t.poll_timeout(), None, "no timer before the first datagram");
    client.start();
    let hello = client.poll().unwrap();
    t.handle_dtls(&hello, Instant::now());
    assert!(t.poll_timeout().is_some(), "our flight awaits the client's answer");
    // Not due yet: nothing is retransmitted.
    drain(&mut t, &mut client);
    t.handle_timeout(Instant::now());
    assert_eq!(t.poll_output(), None);
}

#[test]
fn only_room_sessions_have_data_channels() {
    let client = TestClient::new(PROFILES);
    let mut t = Transport::new(ctx(), Some(client.fingerprint()), false, Instant::now()).unwrap();
    assert_eq!(t.open_channel("ion-sfu"), None);
    let mut t = Transport::new(ctx(), Some(client.fingerprint()), true, Instant::now()).unwrap();
    assert_eq!(t.open_channel("ion-sfu"), Some(crate::datachannel::ChannelId(1)), "sfud's channels use odd ids");
    // Not open yet: the message is dropped, nothing goes out.
    t.send_text(crate::datachannel::ChannelId(1), "{}", Instant::now());
    assert_eq!(t.poll_output(), None);
}

#[test]
fn a_malformed_fingerprint_is_an_error_not_a_panic() {
    assert!(Transport::new(ctx(), Some(("md5".into(), "zz".into())), false, Instant::now()).is_err());
    let mut t = Transport::new(ctx(), None, false, Instant::now()).unwrap();
    assert!(t.set_remote_fingerprint(ctx(), ("sha-256".into(), "not hex".into()), Instant::now()).is_err());
}

/// SCTP over the transport's DTLS both ways until neither side has more.
fn shuttle(t: &mut Transport, client: &mut TestClient, browser: &mut Browser, now: Instant) -> Vec<Output> {
    let mut outs = Vec::new();
    for _ in 0..50 {
        for p in browser.outgoing(now) {
            client.send(&p);
        }
        let mut moved = false;
        while let Some(d) = client.poll() {
            moved = true;
            t.handle_dtls(&d, now);
        }
        let o = drain(t, client);
        moved |= !o.is_empty();
        outs.extend(o.into_iter().filter(|o| !matches!(o, Output::Transmit(_))));
        for p in std::mem::take(&mut client.received) {
            browser.incoming(p, now);
        }
        if !moved {
            return outs;
        }
    }
    panic!("still moving after 50 rounds");
}

#[test]
fn data_channels_ride_on_the_transports_dtls() {
    use sctp_proto::PayloadProtocolIdentifier as Ppi;

    let now = Instant::now();
    let mut client = TestClient::new(PROFILES);
    let mut t = Transport::new(ctx(), Some(client.fingerprint()), true, now).unwrap();
    let api = t.open_channel("ion-sfu").unwrap();
    client.start();
    handshake(&mut t, &mut client);
    assert!(client.connected);

    let mut browser = Browser::connect();
    shuttle(&mut t, &mut client, &mut browser, now);
    assert!(browser.connected, "the SCTP association came up over DTLS");
    let (stream, ppi, _) = browser.received.first().cloned().expect("our DCEP OPEN");
    assert_eq!((stream, ppi), (api.0, Ppi::Dcep));

    // DATA_CHANNEL_ACK (RFC 8832 §5.2): the channel is open.
    browser.write(api.0, Ppi::Dcep, &[0x02]);
    let outs = shuttle(&mut t, &mut client, &mut browser, now);
    assert_eq!(outs, vec![Output::ChannelOpened { label: "ion-sfu".into() }]);

    browser.write(api.0, Ppi::String, br#"{"method":"setRemoteMedia"}"#);
    let outs = shuttle(&mut t, &mut client, &mut browser, now);
    assert_eq!(outs, vec![Output::Message { text: r#"{"method":"setRemoteMedia"}"#.into() }]);

    t.send_text(api, "audioLevels", now);
    shuttle(&mut t, &mut client, &mut browser, now);
    assert!(
        browser.received.iter().any(|(s, p, d)| *s == api.0 && *p == Ppi::String && d == b"audioLevels"),
        "the browser read our message: {:?}",
        browser.received
    );
}
