//! CORS for browser apps served from another origin (a WHIP player or a
//! meeting app hosted apart from sfud), and the WebSocket `Origin` check.
//!
//! Default: no origin is allowed, so only pages sfud serves itself (same
//! origin) can use it from a browser. An allowed origin gets its preflights
//! answered with what WHIP/WHEP use (`Authorization`, `Content-Type`,
//! `If-Match`; POST, PATCH, DELETE) and sees `Location`, `Link` and `ETag`.
//! Everything else gets no CORS headers, so the browser blocks the call; a
//! preflight from it is refused with 403, and a cross-origin WebSocket
//! handshake too (browsers do not apply CORS to WebSockets, so the server
//! must). Non-browser clients send no `Origin` and are unaffected.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::info;

const ALLOW_METHODS: &str = "GET, POST, PATCH, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "Authorization, Content-Type, If-Match";
const EXPOSE_HEADERS: &str = "Location, Link, ETag, Accept-Patch";
/// How long a browser may cache a preflight answer.
const MAX_AGE_SECS: &str = "600";

/// The configured origins, normalised ("https://app.example.com", no path,
/// no trailing slash, lower case); "*" allows any.
#[derive(Clone, Debug, Default)]
pub struct CorsPolicy {
    origins: Arc<Vec<String>>,
}

/// Lower case and without a trailing slash; None unless it is
/// `scheme://host[:port]` (or "*").
pub fn normalize_origin(origin: &str) -> Option<String> {
    let o = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    if o == "*" {
        return Some(o);
    }
    let (scheme, rest) = o.split_once("://")?;
    let ok_scheme = !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    let ok_rest = !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
    (ok_scheme && ok_rest).then_some(o)
}

impl CorsPolicy {
    /// Origins that do not normalise are dropped; config validation refuses
    /// them before this is built.
    pub fn new(origins: &[String]) -> Self {
        Self {
            origins: Arc::new(origins.iter().filter_map(|o| normalize_origin(o)).collect()),
        }
    }

    pub fn allows(&self, origin: &str) -> bool {
        let Some(o) = normalize_origin(origin) else {
            return false;
        };
        self.origins.iter().any(|a| a == "*" || *a == o)
    }
}

/// Whether `origin` is the origin the request was sent to: its host[:port]
/// equals the Host header (scheme is not visible behind a proxy; a page on
/// the same host and port is ours).
fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.trim_end_matches('/').eq_ignore_ascii_case(host))
}

/// Answers preflights, adds CORS headers to allowed cross-origin responses,
/// and refuses cross-origin WebSocket handshakes from other origins.
pub async fn middleware(State(policy): State<CorsPolicy>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(origin) = origin else {
        return next.run(req).await;
    };
    if same_origin(&origin, req.headers()) {
        return next.run(req).await;
    }
    let allowed = policy.allows(&origin);
    let preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let websocket = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !allowed {
        if preflight || websocket {
            info!(origin = %origin.chars().take(200).collect::<String>(), path = %req.uri().path(),
                "refusing a cross-origin request: the origin is not in http.cors_allowed_origins");
            return (StatusCode::FORBIDDEN, "this origin is not allowed (http.cors_allowed_origins)\n").into_response();
        }
        // The browser blocks the response for lack of CORS headers.
        return next.run(req).await;
    }
    let mut resp = if preflight {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE_SECS));
        r
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::{get, post};
    use axum::Router;
    use tower::ServiceExt;

    fn app(origins: &[&str]) -> Router {
        let policy = CorsPolicy::new(&origins.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        Router::new()
            .route("/whip/{room}", post(|| async { (StatusCode::CREATED, [(header::LOCATION, "/whip/r/x")], "answer") }))
            .route("/ws", get(|| async { "ws" }))
            .layer(axum::middleware::from_fn_with_state(policy, middleware))
    }

    async fn send(app: Router, method: Method, uri: &str, headers: &[(&str, &str)]) -> Response {
        let mut b = Request::builder().method(method).uri(uri).header("host", "sfu.example.com:7880");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        app.oneshot(b.body(Body::empty()).unwrap()).await.unwrap()
    }

    fn get_h<'a>(r: &'a Response, k: &str) -> Option<&'a str> {
        r.headers().get(k).and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn preflight_from_allowed_origin() {
        let r = send(app(&["https://app.example.com/"]), Method::OPTIONS, "/whip/r",
            &[("origin", "https://app.example.com"), ("access-control-request-method", "POST"),
              ("access-control-request-headers", "authorization,content-type")]).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(get_h(&r, "access-control-allow-origin"), Some("https://app.example.com"));
        assert!(get_h(&r, "access-control-allow-headers").unwrap().contains("If-Match"));
        assert!(get_h(&r, "access-control-allow-methods").unwrap().contains("PATCH"));
    }

    #[tokio::test]
    async fn preflight_and_websocket_from_other_origin_refused() {
        let r = send(app(&["https://app.example.com"]), Method::OPTIONS, "/whip/r",
            &[("origin", "https://evil.example.com"), ("access-control-request-method", "POST")]).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(get_h(&r, "access-control-allow-origin").is_none());
        let r = send(app(&[]), Method::GET, "/ws", &[("origin", "https://evil.example.com"), ("upgrade", "websocket")]).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn simple_requests() {
        // Allowed: headers added, Location exposed.
        let r = send(app(&["https://app.example.com"]), Method::POST, "/whip/r", &[("origin", "https://app.example.com")]).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(get_h(&r, "access-control-allow-origin"), Some("https://app.example.com"));
        assert!(get_h(&r, "access-control-expose-headers").unwrap().contains("Location"));
        // Not allowed: served, but without CORS headers (the browser blocks it).
        let r = send(app(&[]), Method::POST, "/whip/r", &[("origin", "https://app.example.com")]).await;
        assert!(get_h(&r, "access-control-allow-origin").is_none());
        // Same origin (the demo page) and no Origin (curl, GStreamer): untouched.
        let r = send(app(&[]), Method::GET, "/ws", &[("origin", "http://sfu.example.com:7880"), ("upgrade", "websocket")]).await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = send(app(&[]), Method::POST, "/whip/r", &[]).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert!(get_h(&r, "access-control-allow-origin").is_none());
        // "*" allows any origin.
        let r = send(app(&["*"]), Method::POST, "/whip/r", &[("origin", "https://x.example")]).await;
        assert_eq!(get_h(&r, "access-control-allow-origin"), Some("https://x.example"));
    }

    #[test]
    fn origin_normalisation() {
        assert_eq!(normalize_origin("HTTPS://App.Example.com/").as_deref(), Some("https://app.example.com"));
        assert_eq!(normalize_origin("http://[::1]:8080").as_deref(), Some("http://[::1]:8080"));
        assert_eq!(normalize_origin("app.example.com"), None);
        assert_eq!(normalize_origin("https://a.example/path"), None);
        assert_eq!(normalize_origin("null"), None);
    }
}
