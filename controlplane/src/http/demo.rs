//! The demo page, compiled into the binary so `sfud` needs no files.

use axum::http::header;
use axum::response::IntoResponse;

pub async fn index() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], include_str!("../../static/index.html"))
}

pub async fn app_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("../../static/app.js"))
}

pub async fn style_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("../../static/style.css"))
}

pub async fn meeting_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("../../static/meeting.js"))
}

/// ion-sdk-js 1.8.2's browser bundle (MIT, see static/ion-sdk-js.LICENSE),
/// so the meeting page and existing ion apps need no CDN.
pub async fn ion_sdk_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("../../static/ion-sdk.min.js"))
}

pub async fn json_rpc_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("../../static/json-rpc.min.js"))
}
