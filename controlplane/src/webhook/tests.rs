//! Delivery against a loopback axum endpoint.

use super::*;
use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;

use axum::body::Bytes as AxBytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

const KEY: &str = "APIhook";
const SECRET: &str = "hook-secret-hook-secret-hook-secret";

#[derive(Clone, Copy)]
enum Mode {
    Ok,
    /// 500 for the first `n` requests, then 200.
    FailFirst(usize),
    Status(u16),
    /// Never answers within any test's timeout.
    Hang,
}

#[derive(Default)]
struct Seen {
    /// (Authorization, Content-Type, body) of requests answered 200.
    accepted: Vec<(String, String, Vec<u8>)>,
    attempts: usize,
}

#[derive(Clone)]
struct Endpoint {
    mode: Mode,
    seen: Arc<Mutex<Seen>>,
    hits: Arc<AtomicUsize>,
}

async fn handler(State(ep): State<Endpoint>, headers: HeaderMap, body: AxBytes) -> StatusCode {
    let n = ep.hits.fetch_add(1, Ordering::SeqCst);
    let h = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let status = match ep.mode {
        Mode::Ok => StatusCode::OK,
        Mode::FailFirst(k) if n < k => StatusCode::INTERNAL_SERVER_ERROR,
        Mode::FailFirst(_) => StatusCode::OK,
        Mode::Status(s) => StatusCode::from_u16(s).unwrap(),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK
        }
    };
    let mut seen = ep.seen.lock().unwrap();
    seen.attempts += 1;
    if status == StatusCode::OK {
        seen.accepted
            .push((h("authorization"), h("content-type"), body.to_vec()));
    }
    status
}

/// Serves `mode` on 127.0.0.1; returns the URL and what it saw.
async fn endpoint(mode: Mode) -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let ep = Endpoint {
        mode,
        seen: seen.clone(),
        hits: Arc::new(AtomicUsize::new(0)),
    };
    let app = Router::new().route("/hook", post(handler)).with_state(ep);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), seen)
}

fn cfg(urls: Vec<String>, timeout_ms: u64, max_attempts: u32) -> WebhookConfig {
    WebhookConfig {
        urls,
        api_key: None,
        timeout_ms,
        max_attempts,
    }
}

fn fast() -> Tuning {
    Tuning {
        queue_capacity: QUEUE_CAPACITY,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
    }
}

fn signer() -> Option<(String, String)> {
    Some((KEY.to_string(), SECRET.to_string()))
}

/// Polls `cond` every 10 ms for at most `limit`.
async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

#[tokio::test]
async fn delivers_signed_events() {
    let (url, seen) = endpoint(Mode::Ok).await;
    let hooks = Webhooks::start_tuned(&cfg(vec![url], 2000, 3), signer(), fast());
    hooks.notify(WebhookEvent::participant_joined("r1", "alice"));
    hooks.notify(WebhookEvent::track_published(
        "r1",
        "alice",
        "TR_a",
        dataplane::msg::MediaKind::Audio,
    ));
    assert!(hooks.flush(Duration::from_secs(5)).await);

    let seen = seen.lock().unwrap();
    assert_eq!(seen.accepted.len(), 2);
    let (auth, ctype, body) = &seen.accepted[0];
    assert_eq!(ctype, "application/webhook+json");
    assert!(verify_signature(body, auth, SECRET));
    assert!(!verify_signature(body, auth, "not-the-secret"));
    assert!(
        !verify_signature(&seen.accepted[1].2, auth, SECRET),
        "signature is bound to its body"
    );
    let ev: WebhookEvent = serde_json::from_slice(body).unwrap();
    assert_eq!(ev.event, EventKind::ParticipantJoined);
    assert_eq!(ev.participant.unwrap().identity, "alice");
    // Queue order is delivery order.
    let ev2: WebhookEvent = serde_json::from_slice(&seen.accepted[1].2).unwrap();
    assert_eq!(ev2.event, EventKind::TrackPublished);
    assert_eq!(
        hooks.stats(),
        WebhookStats {
            sent: 2,
            ..WebhookStats::default()
        }
    );
}

#[tokio::test]
async fn retries_until_accepted_and_arrives_once() {
    let (url, seen) = endpoint(Mode::FailFirst(2)).await;
    let hooks = Webhooks::start_tuned(&cfg(vec![url], 2000, 5), signer(), fast());
    let ev = WebhookEvent::room_started("r1");
    let id = ev.id.clone();
    hooks.notify(ev);
    assert!(hooks.flush(Duration::from_secs(5)).await);

    let seen = seen.lock().unwrap();
    assert_eq!(seen.attempts, 3);
    assert_eq!(seen.accepted.len(), 1);
    let (auth, _, body) = &seen.accepted[0];
    assert!(verify_signature(body, auth, SECRET));
    let got: WebhookEvent = serde_json::from_slice(body).unwrap();
    assert_eq!(got.id, id);
    let s = hooks.stats();
    assert_eq!((s.sent, s.retries, s.failed, s.dropped), (1, 2, 0, 0));
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let (url, seen) = endpoint(Mode::FailFirst(usize::MAX)).await;
    let hooks = Webhooks::start_tuned(&cfg(vec![url], 2000, 3), signer(), fast());
    hooks.notify(WebhookEvent::room_finished("r1"));
    assert!(hooks.flush(Duration::from_secs(5)).await);
    assert_eq!(seen.lock().unwrap().attempts, 3);
    let s = hooks.stats();
    assert_eq!((s.sent, s.retries, s.failed), (0, 2, 1));
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (url, seen) = endpoint(Mode::Status(401)).await;
    let hooks = Webhooks::start_tuned(&cfg(vec![url], 2000, 5), signer(), fast());
    hooks.notify(WebhookEvent::room_finished("r1"));
    assert!(hooks.flush(Duration::from_secs(5)).await);
    assert_eq!(seen.lock().unwrap().attempts, 1);
    assert_eq!(hooks.stats().failed, 1);
    assert_eq!(hooks.stats().retries, 0);
}

#[tokio::test]
async fn notify_never_blocks_on_a_hanging_endpoint() {
    let (hang, _) = endpoint(Mode::Hang).await;
    let (ok, ok_seen) = endpoint(Mode::Ok).await;
    let tuning = Tuning {
        queue_capacity: 16,
        ..fast()
    };
    let hooks = Webhooks::start_tuned(&cfg(vec![hang, ok], 200, 1), signer(), tuning);
    let events: Vec<_> = (0..1000)
        .map(|i| WebhookEvent::participant_joined("r1", &format!("p{i}")))
        .collect();
    let t0 = Instant::now();
    for ev in events {
        hooks.notify(ev);
    }
    let spent = t0.elapsed();
    // A notify that waited on the full queue of the hanging endpoint would
    // take at least one 200 ms timeout per event; this bound leaves room
    // for a loaded 2-core CI box.
    assert!(spent < Duration::from_secs(1), "notify took {spent:?}");
    assert!(hooks.stats().dropped > 0);

    // The healthy endpoint is not held up by the hanging one.
    assert!(
        wait_for(Duration::from_secs(3), || !ok_seen
            .lock()
            .unwrap()
            .accepted
            .is_empty())
        .await
    );
    // The hanging one times out and is given up on (max_attempts = 1).
    assert!(wait_for(Duration::from_secs(3), || hooks.stats().failed >= 1).await);
}

#[tokio::test]
async fn queue_overflow_counts_drops() {
    let (hang, _) = endpoint(Mode::Hang).await;
    let tuning = Tuning {
        queue_capacity: 2,
        ..fast()
    };
    let hooks = Webhooks::start_tuned(&cfg(vec![hang], 10_000, 1), signer(), tuning);
    for _ in 0..10 {
        hooks.notify(WebhookEvent::room_started("r"));
    }
    // The worker holds at most one (stuck in its POST), the queue two.
    let s = hooks.stats();
    assert!((7..=8).contains(&s.dropped), "dropped {}", s.dropped);
    assert_eq!(s.dropped + hooks.pending(), 10);
    assert!(!hooks.flush(Duration::from_millis(50)).await);
}

#[tokio::test]
async fn no_urls_is_a_noop() {
    let hooks = Webhooks::start(&cfg(vec![], 1000, 3), None);
    hooks.notify(WebhookEvent::room_started("r"));
    assert_eq!(hooks.stats(), WebhookStats::default());
    assert!(hooks.flush(Duration::from_millis(1)).await);
    // Default handle too (for a controlplane built without webhooks).
    Webhooks::default().notify(WebhookEvent::room_started("r"));
}

#[tokio::test]
async fn bad_urls_are_skipped() {
    let hooks = Webhooks::start(
        &cfg(
            vec![
                "https://example.invalid/h".into(),
                "not a url".into(),
                "ftp://x/".into(),
            ],
            1000,
            3,
        ),
        signer(),
    );
    assert_eq!(hooks.queues.len(), 0);
    hooks.notify(WebhookEvent::room_started("r"));
    assert_eq!(hooks.stats(), WebhookStats::default());
}

#[test]
fn url_validation() {
    assert!(validate_url("http://127.0.0.1:8080/hook").is_ok());
    assert!(validate_url("http://hooks.internal/x?y=1").is_ok());
    for bad in ["https://a/b", "ftp://a/", "/relative", "", "http://"] {
        assert!(validate_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn start_without_runtime_is_a_noop() {
    let hooks = Webhooks::start(&cfg(vec!["http://127.0.0.1:9/".into()], 1000, 3), None);
    hooks.notify(WebhookEvent::room_started("r"));
    assert_eq!(hooks.stats(), WebhookStats::default());
}
