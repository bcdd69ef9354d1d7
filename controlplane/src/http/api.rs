//! The admin API (/api/v1, docs/api.md) and health endpoints. With auth keys
//! configured every /api/v1 call needs a token with roomAdmin (or, for
//! node-wide views, a room-less admin token or roomList).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, AppState};
use crate::auth::Need;
use crate::hub::{LayerCapBody, NodeInfo, ParticipantDetail, RoomInfo, SessionInfo};
use dataplane::stats::DropReason;

#[derive(Deserialize, Default)]
pub struct TokenQuery {
    access_token: Option<String>,
}

fn admin(st: &AppState, headers: &HeaderMap, q: &TokenQuery, room: Option<&str>) -> Result<(), ApiError> {
    st.authorize_http(headers, q.access_token.as_deref(), Need::Admin { room }).map(|_| ())
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when both planes are up and not draining (load balancers stop
/// sending new sessions here on 503).
pub async fn readyz(State(st): State<AppState>) -> (StatusCode, &'static str) {
    if st.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else if !st.ready.load(std::sync::atomic::Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}

pub async fn node(State(st): State<AppState>, headers: HeaderMap, Query(q): Query<TokenQuery>) -> Result<Json<NodeInfo>, ApiError> {
    admin(&st, &headers, &q, None)?;
    Ok(Json(st.hub.lock().unwrap_or_else(|p| p.into_inner()).node_info()))
}

pub async fn sessions(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Result<Json<Vec<SessionInfo>>, ApiError> {
    admin(&st, &headers, &q, None)?;
    Ok(Json(st.hub.lock().unwrap_or_else(|p| p.into_inner()).sessions()))
}

pub async fn rooms(State(st): State<AppState>, headers: HeaderMap, Query(q): Query<TokenQuery>) -> Result<Json<Vec<RoomInfo>>, ApiError> {
    admin(&st, &headers, &q, None)?;
    Ok(Json(st.hub.lock().unwrap_or_else(|p| p.into_inner()).rooms()))
}

pub async fn participants(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    Path(room): Path<String>,
) -> Result<Json<Vec<ParticipantDetail>>, ApiError> {
    admin(&st, &headers, &q, Some(&room))?;
    Ok(Json(st.hub.lock().unwrap_or_else(|p| p.into_inner()).participants_of(&room)?))
}

pub async fn remove_participant(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    Path((room, identity)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    admin(&st, &headers, &q, Some(&room))?;
    st.hub.lock().unwrap_or_else(|p| p.into_inner()).remove_participant(&room, &identity)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct MuteBody {
    muted: bool,
}

pub async fn mute(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    Path((room, track)): Path<(String, String)>,
    body: Result<Json<MuteBody>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    admin(&st, &headers, &q, Some(&room))?;
    let Json(body) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("expected {{\"muted\": true|false}}: {e}")))?;
    st.hub.lock().unwrap_or_else(|p| p.into_inner()).set_muted(&room, &track, body.muted)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Caps the simulcast layers one subscriber session gets (its stream
/// allocator chooses within the cap).
pub async fn layer_cap(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    Path(id): Path<String>,
    body: Result<Json<LayerCapBody>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    admin(&st, &headers, &q, None)?;
    let Json(body) = body.map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, format!("expected {{\"max_layer\": 0|1|2|null, \"max_temporal\"?, \"off\"?, \"track\"?}}: {e}"))
    })?;
    st.hub.lock().unwrap_or_else(|p| p.into_inner()).set_layer_cap(&id, &body)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Test-only (honoured with `dataplane.test_hooks`): shard `n` panics.
pub async fn test_panic(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    Path(shard): Path<usize>,
) -> Result<StatusCode, ApiError> {
    admin(&st, &headers, &q, None)?;
    st.hub.lock().unwrap_or_else(|p| p.into_inner()).test_panic(shard)?;
    Ok(StatusCode::ACCEPTED)
}

/// Test-only (honoured with `dataplane.test_hooks`): the controlplane's
/// timer task panics once.
pub async fn test_controlplane_panic(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Result<StatusCode, ApiError> {
    admin(&st, &headers, &q, None)?;
    st.hub.lock().unwrap_or_else(|p| p.into_inner()).test_controlplane_panic()?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn stats(State(st): State<AppState>, headers: HeaderMap, Query(q): Query<TokenQuery>) -> Result<Json<Value>, ApiError> {
    admin(&st, &headers, &q, None)?;
    let hub = st.hub.lock().unwrap_or_else(|p| p.into_inner());
    let shards: Vec<Value> = hub
        .shard_stats()
        .iter()
        .map(|s| {
            let drops: serde_json::Map<String, Value> =
                DropReason::ALL.iter().map(|r| (r.as_str().to_string(), json!(s.drops_for(*r)))).collect();
            let mut v = json!({
                "shard": s.shard,
                "packets_in": s.packets_in, "bytes_in": s.bytes_in,
                "packets_out": s.packets_out, "bytes_out": s.bytes_out,
                "rtp_in": s.rtp_in, "rtp_forwarded": s.rtp_forwarded, "rtcp_in": s.rtcp_in,
                "stun_in": s.stun_in, "dtls_in": s.dtls_in, "steered": s.steered,
                "plis_sent": s.plis_sent, "plis_received": s.plis_received, "nacks_received": s.nacks_received,
                "retransmissions": s.retransmissions, "loss_repairs": s.loss_repairs, "nacks_unanswered": s.nacks_unanswered,
                "nacks_sent": s.nacks_sent, "packets_recovered": s.packets_recovered,
                "losses_unrecoverable": s.losses_unrecoverable, "cache_bytes": s.cache_bytes,
                "red_passed": s.red_passed, "red_reduced": s.red_reduced,
                "subscriber_estimates_bps": s.subscriber_estimates.iter()
                    .map(|(sid, bps)| json!({ "session": sid.0, "bps": bps })).collect::<Vec<_>>(),
                "peer_batches_out": s.peer_batches_out, "peer_batches_in": s.peer_batches_in,
                "send_batches": s.send_batches, "send_batch_sizes": s.send_batch_sizes,
                "sessions": s.sessions, "uptracks": s.uptracks, "downtracks": s.downtracks,
                "busy_ns": s.busy_ns,
                "tcp_accepted": s.tcp_accepted, "tcp_connections": s.tcp_connections,
                "tcp_handed_over": s.tcp_handed_over, "tcp_rejected": s.tcp_rejected,
                "panics": s.panics,
                "tcp_packets_in": s.tcp_packets_in, "tcp_packets_out": s.tcp_packets_out,
                "drops": drops,
            });
            v["simulcast"] = json!({
                "layer_switches": s.layer_switches,
                "layer_pruned": s.layer_pruned,
                "probes_started": s.probes_started, "probes_succeeded": s.probes_succeeded,
                "probes_failed": s.probes_failed, "probe_packets": s.probe_packets,
            });
            v
        })
        .collect();
    Ok(Json(json!({ "shards": shards, "sessions": hub.session_count() })))
}
