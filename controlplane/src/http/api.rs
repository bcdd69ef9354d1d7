//! Read-only views for operators and tests. (Auth arrives with the admin API.)

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;
use crate::hub::{RoomInfo, SessionInfo};
use dataplane::stats::DropReason;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn sessions(State(st): State<AppState>) -> Json<Vec<SessionInfo>> {
    let hub = st.hub.lock().unwrap_or_else(|p| p.into_inner());
    Json(hub.sessions())
}

pub async fn rooms(State(st): State<AppState>) -> Json<Vec<RoomInfo>> {
    let hub = st.hub.lock().unwrap_or_else(|p| p.into_inner());
    Json(hub.rooms())
}

pub async fn stats(State(st): State<AppState>) -> Json<Value> {
    let hub = st.hub.lock().unwrap_or_else(|p| p.into_inner());
    let shards: Vec<Value> = hub
        .shard_stats()
        .iter()
        .map(|s| {
            let drops: serde_json::Map<String, Value> =
                DropReason::ALL.iter().map(|r| (r.as_str().to_string(), json!(s.drops_for(*r)))).collect();
            json!({
                "shard": s.shard,
                "packets_in": s.packets_in, "bytes_in": s.bytes_in,
                "packets_out": s.packets_out, "bytes_out": s.bytes_out,
                "rtp_in": s.rtp_in, "rtp_forwarded": s.rtp_forwarded, "rtcp_in": s.rtcp_in,
                "stun_in": s.stun_in, "dtls_in": s.dtls_in, "steered": s.steered,
                "plis_sent": s.plis_sent, "plis_received": s.plis_received, "nacks_received": s.nacks_received,
                "peer_batches_out": s.peer_batches_out, "peer_batches_in": s.peer_batches_in,
                "send_batches": s.send_batches,
                "sessions": s.sessions, "uptracks": s.uptracks, "downtracks": s.downtracks,
                "busy_ns": s.busy_ns,
                "drops": drops,
            })
        })
        .collect();
    Json(json!({ "shards": shards, "sessions": hub.sessions().len() }))
}
