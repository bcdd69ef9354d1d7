//! A transport task with the shards' queues as plain channels and the DTLS
//! test client as the browser (no sockets).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use dataplane::msg::{Command, SessionId};

use super::*;
use crate::dtls::test_client::TestClient;
use crate::dtls::{Certificate, DtlsContext};

const PROFILES: &str = "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80";
const ID: SessionId = SessionId(7);

fn ctx() -> DtlsContext {
    static CTX: OnceLock<DtlsContext> = OnceLock::new();
    CTX.get_or_init(|| DtlsContext::new(&Certificate::generate().unwrap()).unwrap()).clone()
}

struct Rig {
    spawner: Spawner,
    reports: tokio::sync::mpsc::Receiver<Report>,
    shards: Vec<flume::Receiver<Command>>,
}

fn rig() -> Rig {
    let (txs, shards): (Vec<_>, Vec<_>) = (0..2).map(|_| flume::unbounded()).unzip();
    let (spawner, reports) = Spawner::new(ctx(), Shards::new(&txs));
    Rig { spawner, reports, shards }
}

/// The next command a shard got, waiting a little for the task.
async fn next(shard: &flume::Receiver<Command>) -> Command {
    tokio::time::timeout(Duration::from_secs(5), shard.recv_async()).await.expect("a command in time").unwrap()
}

/// Drives the handshake through the task; returns the keys report.
async fn connect(rig: &mut Rig, client: &mut TestClient) -> Output {
    let registry = rig.spawner.registry();
    client.start();
    loop {
        while let Some(d) = client.poll() {
            assert_eq!(registry.deliver(ID, d), Delivery::Queued);
        }
        tokio::select! {
            cmd = next(&rig.shards[0]) => match cmd {
                Command::SendDtls { session, datagrams } => {
                    assert_eq!(session, ID);
                    for d in datagrams {
                        client.handle(&d);
                    }
                }
                other => panic!("unexpected {other:?}"),
            },
            r = rig.reports.recv() => {
                let r = r.unwrap();
                assert_eq!(r.session, ID);
                return r.output;
            }
        }
    }
}

#[tokio::test]
async fn the_task_connects_and_closes_before_the_session_is_removed() {
    let mut rig = rig();
    let mut client = TestClient::new(PROFILES);
    let t = Transport::new(rig.spawner.ctx(), Some(client.fingerprint()), false, Instant::now()).unwrap();
    let mut handle = rig.spawner.spawn(ID, t, None);
    handle.set_shard(0);
    let keys = connect(&mut rig, &mut client).await;
    assert!(matches!(keys, Output::Keys { .. }), "{keys:?}");
    // Let the client's last flight (if any) settle, then end cleanly.
    while let Some(d) = client.poll() {
        rig.spawner.registry().deliver(ID, d);
    }
    assert!(handle.finish(), "the task was there to take it");
    // On the owning shard: the rest of the handshake's datagrams, then
    // close_notify, then RemoveSession.
    loop {
        match next(&rig.shards[0]).await {
            Command::SendDtls { datagrams, .. } => {
                for d in datagrams {
                    client.handle(&d);
                }
            }
            Command::RemoveSession(id) => {
                assert_eq!(id, ID);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(client.connected);
    assert!(client.peer_closed, "the client read close_notify before RemoveSession");
    // Every shard learns of the removal.
    assert!(matches!(next(&rig.shards[1]).await, Command::RemoveSession(ID)));
}

#[tokio::test]
async fn a_dropped_handle_ends_the_task_silently() {
    let mut rig = rig();
    let mut client = TestClient::new(PROFILES);
    let t = Transport::new(rig.spawner.ctx(), Some(client.fingerprint()), false, Instant::now()).unwrap();
    let handle = rig.spawner.spawn(ID, t, None);
    handle.set_shard(0);
    connect(&mut rig, &mut client).await;
    rig.spawner.registry().remove(ID);
    drop(handle);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // No close_notify, no RemoveSession: the hub sends that itself.
    while let Ok(cmd) = rig.shards[0].try_recv() {
        assert!(matches!(cmd, Command::SendDtls { .. }), "only handshake datagrams: {cmd:?}");
    }
    assert!(client.received.is_empty() && !client.peer_closed);
    assert_eq!(rig.spawner.registry().deliver(ID, vec![1]), Delivery::NoSession);
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_inbox_drops_datagrams() {
    let rig = rig();
    let client = TestClient::new(PROFILES);
    let t = Transport::new(rig.spawner.ctx(), Some(client.fingerprint()), false, Instant::now()).unwrap();
    let _handle = rig.spawner.spawn(ID, t, None);
    let registry = rig.spawner.registry();
    // The task cannot run before this test yields, so its inbox fills.
    let results: Vec<Delivery> = (0..INBOX + 3).map(|_| registry.deliver(ID, vec![0; 13])).collect();
    assert!(results[..INBOX].iter().all(|r| *r == Delivery::Queued));
    assert!(results[INBOX..].iter().all(|r| *r == Delivery::Dropped));
    assert_eq!(registry.deliver(SessionId(99), vec![0]), Delivery::NoSession);
}

#[tokio::test]
async fn a_finish_after_the_task_failed_still_removes_through_the_task() {
    let mut rig = rig();
    let mut client = TestClient::new(PROFILES);
    let wrong = TestClient::new(PROFILES).fingerprint();
    let t = Transport::new(rig.spawner.ctx(), Some(wrong), false, Instant::now()).unwrap();
    let mut handle = rig.spawner.spawn(ID, t, None);
    handle.set_shard(0);
    let out = connect(&mut rig, &mut client).await;
    assert!(matches!(out, Output::Failed { on_datagram: true, .. }), "{out:?}");
    // The hub then ends the session: the task is still there to send RemoveSession.
    assert!(handle.finish());
    loop {
        match next(&rig.shards[0]).await {
            Command::RemoveSession(id) => break assert_eq!(id, ID),
            Command::SendDtls { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A peer that stops mid-handshake (its task waits on openssl's resend
/// timer) and then floods it with copies of its first flight holds up no
/// other session: each session's DTLS runs in its own task, not under a
/// lock shared with the others.
#[tokio::test]
async fn a_stalled_handshake_does_not_hold_up_another_session() {
    let mut rig = rig();
    const STALLED: SessionId = SessionId(8);
    let mut slow = TestClient::new(PROFILES);
    let t = Transport::new(rig.spawner.ctx(), Some(slow.fingerprint()), false, Instant::now()).unwrap();
    let stalled = rig.spawner.spawn(STALLED, t, None);
    // Its datagrams go to the other shard, so they stay apart from ours.
    stalled.set_shard(1);
    let registry = rig.spawner.registry();
    slow.start();
    let hello: Vec<Vec<u8>> = std::iter::from_fn(|| slow.poll()).collect();
    for d in &hello {
        registry.deliver(STALLED, d.clone());
    }
    // The server's flight reached "shard 1"; the peer never answers it.
    assert!(matches!(next(&rig.shards[1]).await, Command::SendDtls { session: STALLED, .. }));
    for _ in 0..INBOX * 2 {
        registry.deliver(STALLED, hello[0].clone());
    }

    let mut client = TestClient::new(PROFILES);
    let t = Transport::new(rig.spawner.ctx(), Some(client.fingerprint()), false, Instant::now()).unwrap();
    let handle = rig.spawner.spawn(ID, t, None);
    handle.set_shard(0);
    let keys = connect(&mut rig, &mut client).await;
    // The server side finished (the keys): the stalled one did not delay it.
    assert!(matches!(keys, Output::Keys { .. }), "{keys:?}");
    drop(stalled);
}
