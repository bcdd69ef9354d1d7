//! The cluster dashboard: `/dashboard` (a static page, compiled in) and the
//! cluster-wide admin API behind it, `/api/v1/cluster`, which reads the
//! registry every node writes to Redis. Both need an admin token when auth
//! is on; `?ns=` scopes the rooms shown to one namespace.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::model::{namespace_of, NodeRecord};
use crate::auth::Need;
use crate::http::{ApiError, AppState};

#[derive(Deserialize, Default)]
pub struct DashQuery {
    access_token: Option<String>,
    ns: Option<String>,
}

#[derive(Serialize)]
pub struct ClusterView {
    pub enabled: bool,
    /// The node that answered.
    pub node: String,
    pub redis_up: bool,
    pub namespace: Option<String>,
    pub nodes: Vec<NodeRecord>,
}

/// Keeps only the rooms of namespace `ns` in each record (counts included).
pub fn scope(mut nodes: Vec<NodeRecord>, ns: Option<&str>) -> Vec<NodeRecord> {
    let Some(ns) = ns else { return nodes };
    for n in &mut nodes {
        n.room_list.retain(|r| namespace_of(&r.name) == ns);
        n.rooms = n.room_list.len() as u32;
        n.participants = n.room_list.iter().map(|r| r.participants).sum();
        n.tracks = n.room_list.iter().map(|r| r.tracks).sum();
    }
    nodes
}

pub async fn api(State(st): State<AppState>, headers: HeaderMap, Query(q): Query<DashQuery>) -> Result<Json<ClusterView>, ApiError> {
    let claims = st.authorize_http(&headers, q.access_token.as_deref(), Need::Admin { room: None })?;
    // An admin token confined to a namespace sees only that namespace.
    let ns = crate::auth::resolve_namespace(q.ns.as_deref().unwrap_or(""), claims.as_ref())
        .map_err(|m| ApiError::new(StatusCode::FORBIDDEN, m))?;
    let ns = Some(ns.as_str()).filter(|n| !n.is_empty());
    let Some(cluster) = &st.cluster else {
        return Ok(Json(ClusterView { enabled: false, node: String::new(), redis_up: false, namespace: ns.map(str::to_string), nodes: vec![] }));
    };
    Ok(Json(ClusterView {
        enabled: true,
        node: cluster.node_id().to_string(),
        redis_up: cluster.is_healthy(),
        namespace: ns.map(str::to_string),
        nodes: scope(cluster.nodes(), ns),
    }))
}

pub async fn page(State(st): State<AppState>, headers: HeaderMap, Query(q): Query<DashQuery>) -> Response {
    if let Err(e) = st.authorize_http(&headers, q.access_token.as_deref(), Need::Admin { room: None }) {
        return e.into_response();
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], include_str!("../../static/dashboard.html")).into_response()
}

#[cfg(test)]
mod tests {
    use super::super::model::RoomSummary;
    use super::*;

    #[test]
    fn a_namespace_sees_only_its_rooms() {
        let rec = NodeRecord {
            id: "n1".into(),
            region: String::new(),
            http_url: String::new(),
            media: vec![],
            rooms: 2,
            sessions: 4,
            participants: 3,
            tracks: 4,
            cpu_percent: 0.0,
            bandwidth_bps: 0,
            draining: false,
            full: false,
            updated_ms: 0,
            room_list: vec![
                RoomSummary { name: "acme:r".into(), participants: 1, tracks: 2 },
                RoomSummary { name: "globex:r".into(), participants: 2, tracks: 2 },
            ],
        };
        let scoped = scope(vec![rec.clone()], Some("acme"));
        assert_eq!(scoped[0].rooms, 1);
        assert_eq!(scoped[0].participants, 1);
        assert_eq!(scoped[0].room_list[0].name, "acme:r");
        assert_eq!(scope(vec![rec], None)[0].rooms, 2);
    }
}
