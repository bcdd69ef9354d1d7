//! HTTP: WHIP/WHEP, JSON-RPC rooms over WebSocket, the admin API, health,
//! and the demo page.

mod api;
mod cors;
mod demo;
mod error;
mod serve;
mod whip;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;

use crate::auth::{bearer_from_header, AuthError, Authenticator, Claims, Need};
use crate::hub::{Hub, HubError};
use crate::signal::ion::rpc::{self, RpcError};

pub use cors::{normalize_origin, CorsPolicy};
pub use error::ApiError;
pub use serve::{serve, ConnSlot, ServeLimits};
pub use whip::{parse_offer_request, validate_room};
pub(crate) use whip::{peer_ip, Peer};

#[derive(Clone)]
pub struct AppState {
    pub hub: Arc<Mutex<Hub>>,
    pub max_body: usize,
    /// Swapped on reload (SIGHUP).
    pub auth: Arc<RwLock<Authenticator>>,
    /// Set on SIGTERM: readiness fails and new sessions are refused.
    pub draining: Arc<AtomicBool>,
    /// Set once both planes are up.
    pub ready: Arc<AtomicBool>,
    /// The TURN server clients are pointed at (only with a shared secret:
    /// static passwords are never handed out).
    pub turn: Option<Arc<crate::config::TurnConfig>>,
    /// Which other origins' pages may call us (`http.cors_allowed_origins`).
    pub cors: CorsPolicy,
    /// `[limits]`: WebSocket sizes and idle time (the hub holds the rest).
    pub limits: Arc<crate::config::LimitsConfig>,
    /// Cluster mode (`[cluster] enabled`): placement, redirects, relay.
    pub cluster: Option<crate::cluster::Cluster>,
}

impl AppState {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    fn check(&self, token: Option<&str>, need: Need<'_>) -> Result<Option<Claims>, AuthError> {
        self.auth.read().unwrap_or_else(|p| p.into_inner()).authorize(token, need)
    }

    /// HTTP admission: the bearer token from `Authorization` or `?access_token=`.
    pub fn authorize_http(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
        need: Need<'_>,
    ) -> Result<Option<Claims>, ApiError> {
        let header_token = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer_from_header);
        self.check(header_token.or(query_token), need).map_err(|e| {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
            ApiError::new(status, format!("{e} ({})", e.reason()))
        })
    }

    /// JSON-RPC `join` admission: drain state, then the token.
    pub fn authorize_join(&self, room: &str, token: Option<&str>) -> Result<Option<Claims>, RpcError> {
        if self.is_draining() {
            return Err(RpcError::new(rpc::REFUSED, HubError::Draining.to_string()));
        }
        self.check(token, Need::Join { room })
            .map_err(|e| RpcError::new(rpc::UNAUTHORIZED, format!("join refused: {e} ({})", e.reason())))
    }

    /// `Link: <turn:...>; rel="ice-server"` values (RFC 9725 §4.6) with fresh
    /// time-limited credentials, for the host the client used to reach us.
    pub fn ice_server_links(&self, headers: &HeaderMap, identity: &str) -> Vec<String> {
        self.ice_server(headers, identity).map(|s| crate::turn::link_header_values(&s)).unwrap_or_default()
    }

    /// The TURN server entry (RTCIceServer) with fresh credentials, if TURN
    /// is on with a shared secret.
    pub fn ice_server(&self, headers: &HeaderMap, identity: &str) -> Option<crate::turn::IceServer> {
        let turn = self.turn.as_ref()?;
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(host_without_port)
            .unwrap_or("127.0.0.1");
        match crate::turn::ice_server_entry(turn, host, identity) {
            Ok(server) => Some(server),
            Err(e) => {
                tracing::warn!(error = %e, "no ICE server entry for the client");
                None
            }
        }
    }

    pub fn refuse_if_draining(&self) -> Result<(), ApiError> {
        if self.is_draining() {
            return Err(HubError::Draining.into());
        }
        Ok(())
    }
}

/// "example.com:7880" -> "example.com", "[::1]:7880" -> "::1".
fn host_without_port(host: &str) -> Option<&str> {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next();
    }
    let h = host.rsplit_once(':').map_or(host, |(h, _)| h);
    (!h.is_empty()).then_some(h)
}

/// Counts a signaling request by route (or JSON-RPC method) and status.
pub fn record_request(method: &str, status: u16) {
    crate::metrics::record_request(method, status);
}

/// Labels requests by their route template, never by raw input, so the
/// label set stays bounded.
async fn count_requests(req: Request, next: Next) -> Response {
    let label = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| format!("{} {}", req.method(), p.as_str()))
        .unwrap_or_else(|| "unmatched".to_string());
    let resp = next.run(req).await;
    record_request(&label, resp.status().as_u16());
    resp
}

pub fn router(state: AppState) -> Router {
    let cors = state.cors.clone();
    Router::new()
        .route("/", get(demo::index))
        .route("/app.js", get(demo::app_js))
        .route("/style.css", get(demo::style_css))
        .route("/meeting.js", get(demo::meeting_js))
        .route("/ion-sdk.min.js", get(demo::ion_sdk_js))
        .route("/json-rpc.min.js", get(demo::json_rpc_js))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/ws", get(crate::signal::ion::ws_handler))
        .route("/dashboard", get(crate::cluster::dashboard::page))
        .route("/api/v1/cluster", get(crate::cluster::dashboard::api))
        .route("/api/v1/node", get(api::node))
        .route("/api/v1/sessions", get(api::sessions))
        .route("/api/v1/sessions/{id}/layer-cap", post(api::layer_cap))
        .route("/api/v1/stats", get(api::stats))
        .route("/api/v1/rooms", get(api::rooms))
        .route("/api/v1/rooms/{room}/participants", get(api::participants))
        .route("/api/v1/rooms/{room}/participants/{identity}", delete(api::remove_participant))
        .route("/api/v1/rooms/{room}/tracks/{track}/mute", post(api::mute))
        .route("/api/v1/test/shards/{shard}/panic", post(api::test_panic))
        .route("/api/v1/test/controlplane/panic", post(api::test_controlplane_panic))
        .route("/whip/{room}", post(whip::whip_post).options(whip::whip_options))
        .route("/whip/{room}/{resource}", delete(whip::whip_delete).patch(whip::whip_patch))
        .route("/whep/{room}", post(whip::whep_post).options(whip::whep_options))
        .route("/whep/{room}/{resource}", delete(whip::whep_delete).patch(whip::whep_patch))
        .route_layer(middleware::from_fn(count_requests))
        // Outside the routes, so preflights to any path are answered here.
        .layer(middleware::from_fn_with_state(cors, cors::middleware))
        .with_state(state)
}
