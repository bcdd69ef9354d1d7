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

#[derive(Clone)]
pub struct AppState {
    pub hub: Arc<Mutex<Hub>>,
    pub max_body: usize,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(demo::index))
        .route("/app.js", get(demo::app_js))
        .route("/style.css", get(demo::style_css))
        .route("/healthz", get(api::healthz))
        .route("/api/v1/sessions", get(api::sessions))
        .route("/api/v1/stats", get(api::stats))
        .route("/whip/{room}", post(whip::whip_post).options(whip::options))
        .route("/whip/{room}/{resource}", axum::routing::delete(whip::whip_delete).patch(whip::patch))
        .route("/whep/{room}", post(whip::whep_post).options(whip::options))
        .route("/whep/{room}/{resource}", axum::routing::delete(whip::whep_delete).patch(whip::patch))
        .with_state(state)
}
