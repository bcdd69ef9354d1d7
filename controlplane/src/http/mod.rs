//! HTTP: WHIP/WHEP, the session API, health, and the demo page.

mod api;
mod demo;
mod error;
mod whip;

use std::sync::{Arc, Mutex};

use axum::routing::{get, post};
use axum::Router;

use crate::hub::Hub;

pub use error::ApiError;
pub use whip::validate_room;

use crate::rooms::rpc::RpcError;

#[derive(Clone)]
pub struct AppState {
    pub hub: Arc<Mutex<Hub>>,
    pub max_body: usize,
}

impl AppState {
    /// JSON-RPC `join` admission. Tokens arrive with the auth work; until
    /// then every join is admitted.
    pub fn authorize_join(&self, _room: &str, _token: Option<&str>) -> Result<(), RpcError> {
        Ok(())
    }
}

/// Counts a signaling request (Prometheus export arrives with the metrics work).
pub fn record_request(_method: &str, _status: u16) {}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(demo::index))
        .route("/app.js", get(demo::app_js))
        .route("/style.css", get(demo::style_css))
        .route("/meeting.js", get(demo::meeting_js))
        .route("/ion-sdk.min.js", get(demo::ion_sdk_js))
        .route("/json-rpc.min.js", get(demo::json_rpc_js))
        .route("/ws", get(crate::rooms::ws_handler))
        .route("/api/v1/rooms", get(api::rooms))
        .route("/healthz", get(api::healthz))
        .route("/api/v1/sessions", get(api::sessions))
        .route("/api/v1/stats", get(api::stats))
        .route("/whip/{room}", post(whip::whip_post).options(whip::options))
        .route("/whip/{room}/{resource}", axum::routing::delete(whip::whip_delete).patch(whip::patch))
        .route("/whep/{room}", post(whip::whep_post).options(whip::options))
        .route("/whep/{room}/{resource}", axum::routing::delete(whip::whep_delete).patch(whip::patch))
        .with_state(state)
}
