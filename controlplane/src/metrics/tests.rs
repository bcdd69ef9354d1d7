//! The recorder is process-global, so every test here installs the same
//! one and uses its own shard numbers.

use super::*;
use dataplane::stats::{DropReason, ShardStats};

fn sample(shard: usize) -> ShardStats {
    let mut s = ShardStats {
        shard,
        packets_in: 1000,
        bytes_in: 1_200_000,
        packets_out: 2000,
        bytes_out: 2_400_000,
        rtp_forwarded: 1900,
        send_batches: 150,
        nacks_received: 7,
        plis_received: 3,
        plis_sent: 2,
        sessions: 4,
        uptracks: 2,
        downtracks: 6,
        busy_ns: 250_000_000,
        ..ShardStats::default()
    };
    s.drop(DropReason::SrtpAuth);
    s.drop(DropReason::SrtpAuth);
    s.drop(DropReason::Replay);
    s
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[test]
fn shard_stats_render_as_expected() {
    let m = Metrics::install().unwrap();
    record_shard_stats(&sample(10));
    let text = m.render();
    for line in [
        "sfud_packets_received_total{shard=\"10\"} 1000",
        "sfud_packets_sent_total{shard=\"10\"} 2000",
        "sfud_bytes_received_total{shard=\"10\"} 1200000",
        "sfud_bytes_sent_total{shard=\"10\"} 2400000",
        "sfud_rtp_forwarded_total{shard=\"10\"} 1900",
        "sfud_send_batches_total{shard=\"10\"} 150",
        "sfud_nacks_received_total{shard=\"10\"} 7",
        "sfud_plis_received_total{shard=\"10\"} 3",
        "sfud_plis_sent_total{shard=\"10\"} 2",
        "sfud_packets_dropped_total{shard=\"10\",reason=\"srtp_auth\"} 2",
        "sfud_packets_dropped_total{shard=\"10\",reason=\"replay\"} 1",
        "sfud_packets_dropped_total{shard=\"10\",reason=\"queue_full\"} 0",
        "sfud_sessions{shard=\"10\"} 4",
        "sfud_uptracks{shard=\"10\"} 2",
        "sfud_downtracks{shard=\"10\"} 6",
        "sfud_shard_busy_seconds_total{shard=\"10\"} 0.25",
        "# TYPE sfud_packets_received_total counter",
        "# TYPE sfud_sessions gauge",
        "# TYPE sfud_shard_busy_seconds_total counter",
    ] {
        assert!(has_line(&text, line), "missing {line:?} in\n{text}");
    }
    // Every reason is exported, zero or not, so dashboards see the series.
    for r in DropReason::ALL {
        let prefix = format!(
            "sfud_packets_dropped_total{{shard=\"10\",reason=\"{}\"}} ",
            r.as_str()
        );
        assert!(text.lines().any(|l| l.starts_with(&prefix)), "{prefix}");
    }

    // A later snapshot replaces the values rather than adding to them.
    let mut later = sample(10);
    later.packets_in = 1500;
    later.sessions = 1;
    record_shard_stats(&later);
    let text = m.render();
    assert!(has_line(
        &text,
        "sfud_packets_received_total{shard=\"10\"} 1500"
    ));
    assert!(has_line(&text, "sfud_sessions{shard=\"10\"} 1"));
}

#[test]
fn controlplane_figures() {
    let m = Metrics::install().unwrap();
    record_request("whip_offer_test", 201);
    record_request("whip_offer_test", 201);
    record_request("whip_offer_test", 401);
    record_dtls_handshake(true);
    record_dtls_handshake(false);
    set_rooms(3);
    set_participants(7);
    record_shard_retransmissions(11, 42);
    let text = m.render();
    assert!(
        has_line(
            &text,
            "sfud_signaling_requests_total{method=\"whip_offer_test\",status=\"201\"} 2"
        ),
        "{text}"
    );
    assert!(has_line(
        &text,
        "sfud_signaling_requests_total{method=\"whip_offer_test\",status=\"401\"} 1"
    ));
    assert!(has_line(
        &text,
        "sfud_retransmissions_total{shard=\"11\"} 42"
    ));
    assert!(text
        .lines()
        .any(|l| l.starts_with("sfud_dtls_handshakes_total{result=\"ok\"} ")));
    assert!(text
        .lines()
        .any(|l| l.starts_with("sfud_dtls_handshakes_total{result=\"failed\"} ")));
    // Other tests may set these concurrently; only presence is stable.
    assert!(text.lines().any(|l| l.starts_with("sfud_rooms ")));
    assert!(text.lines().any(|l| l.starts_with("sfud_participants ")));
}

#[test]
fn batch_histogram_renders() {
    let m = Metrics::install().unwrap();
    record_send_batch_sizes(12, &[4, 1, 0, 0, 0, 0, 0, 0], 6);
    let text = m.render();
    assert!(
        has_line(&text, "# TYPE sfud_send_batch_size histogram"),
        "{text}"
    );
    assert!(has_line(
        &text,
        "sfud_send_batch_size_bucket{shard=\"12\",le=\"2\"} 5"
    ));
    assert!(has_line(
        &text,
        "sfud_send_batch_size_bucket{shard=\"12\",le=\"+Inf\"} 5"
    ));
    assert!(has_line(
        &text,
        "sfud_send_batch_size_count{shard=\"12\"} 5"
    ));
}

#[test]
fn install_is_idempotent() {
    let a = Metrics::install().unwrap();
    let b = Metrics::install().unwrap();
    record_request("idempotent_test", 200);
    assert!(a.render().contains("idempotent_test"));
    assert!(b.render().contains("idempotent_test"));
}

/// `promtool check metrics` (Debian package `prometheus`) must accept the
/// exposition. Skipped with a note when promtool is not installed, except
/// under CI (`CI` set), where that is a failure.
#[test]
fn promtool_accepts_exposition() {
    let m = Metrics::install().unwrap();
    record_shard_stats(&sample(20));
    record_shard_stats(&sample(21));
    record_shard_retransmissions(20, 5);
    record_send_batch_sizes(20, &[1, 2, 3, 4, 5, 6, 7, 8], 1000);
    record_request("join", 200);
    record_dtls_handshake(true);
    let text = m.render();

    let dir = std::env::temp_dir().join(format!("sfud-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("metrics.txt");
    std::fs::write(&path, &text).unwrap();

    let Ok(file) = std::fs::File::open(&path) else {
        panic!("cannot reopen {}", path.display());
    };
    let out = match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(file)
        .output()
    {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // CI installs it (scripts/install-test-deps.sh); a developer
            // box without it only skips.
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool missing in CI: apt-get install prometheus"
            );
            eprintln!("promtool not installed; skipping (apt-get install prometheus)");
            return;
        }
        Err(e) => panic!("running promtool: {e}"),
    };
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "promtool check metrics failed:\nstdout: {}\nstderr: {}\n--- exposition ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn router_serves_metrics() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let m = Metrics::install().unwrap();
    record_request("router_test", 204);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = m.router();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: hyper::Uri = format!("http://{addr}/metrics").parse().unwrap();
    let resp = tokio::time::timeout(std::time::Duration::from_secs(5), client.get(uri))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], CONTENT_TYPE_TEXT);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains("sfud_signaling_requests_total{method=\"router_test\",status=\"204\"} 1"));
}
