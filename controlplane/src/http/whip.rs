//! WHIP (RFC 9725) ingest and WHEP playback: POST an offer, get 201 + answer
//! + Location; DELETE the Location to end the session.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::Extension;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::auth::Need;
use crate::hub::{Client, Created, Hub, HubError, SessionKind};
use crate::sdp::SessionDescription;

#[derive(Deserialize, Default)]
pub struct PostQuery {
    /// Test-only placement hint (needs `dataplane.allow_placement_hint`).
    shard: Option<usize>,
    /// For clients that cannot set `Authorization` (RFC 9725 prefers the header).
    access_token: Option<String>,
}

/// Room names appear in URLs and logs: keep them plain.
pub fn validate_room(room: &str) -> Result<(), ApiError> {
    let ok = !room.is_empty()
        && room.len() <= 64
        && room.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "room names are 1-64 characters of A-Z, a-z, 0-9, '-', '_' or '.'",
        ))
    }
}

/// Checks what a WHIP/WHEP POST carries and parses its SDP offer.
pub fn parse_offer_request(content_type: Option<&[u8]>, body: &[u8], max_body: usize) -> Result<SessionDescription, ApiError> {
    let ct = content_type
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if ct.as_deref() != Some("application/sdp") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the offer must be sent with Content-Type: application/sdp",
        ));
    }
    if body.len() > max_body {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the offer is {} bytes; the limit is {max_body}", body.len()),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "the request body is empty; it must be an SDP offer"));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the SDP offer is not valid UTF-8"))?;
    SessionDescription::parse(text)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("malformed SDP offer: {e}")))
}

fn add_links(h: &mut HeaderMap, links: Vec<String>) {
    for l in links {
        if let Ok(v) = HeaderValue::from_str(&l) {
            h.append(header::LINK, v);
        }
    }
}

fn created(prefix: &str, room: &str, c: Created, links: Vec<String>) -> Response {
    let location = format!("/{prefix}/{room}/{}", c.resource);
    let mut resp = (StatusCode::CREATED, c.answer).into_response();
    let h = resp.headers_mut();
    add_links(h, links);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Location, Link"));
    resp
}

/// The two media endpoints: WHIP ingest and WHEP playback.
#[derive(Clone, Copy)]
enum Endpoint {
    Whip,
    Whep,
}

impl Endpoint {
    fn prefix(self) -> &'static str {
        match self {
            Endpoint::Whip => "whip",
            Endpoint::Whep => "whep",
        }
    }

    fn kind(self) -> SessionKind {
        match self {
            Endpoint::Whip => SessionKind::Whip,
            Endpoint::Whep => SessionKind::Whep,
        }
    }
}

/// The peer address the server put on the request (absent only when the
/// router is driven without a socket, as in unit tests).
pub(crate) type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

pub(crate) fn peer_ip(peer: &Peer) -> Option<std::net::IpAddr> {
    peer.as_ref().map(|Extension(ConnectInfo(a))| a.ip())
}

/// Reads at most `max` bytes of body: anything longer is refused without
/// being buffered.
async fn read_body(body: Body, max: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, max).await.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the offer is larger than the limit of {max} bytes (http.max_body_bytes)"))
    })
}

async fn post(
    st: AppState,
    kind: Endpoint,
    room: String,
    q: PostQuery,
    headers: HeaderMap,
    peer: Peer,
    body: Body,
) -> Result<Response, ApiError> {
    validate_room(&room)?;
    st.refuse_if_draining()?;
    let need = match kind {
        Endpoint::Whip => Need::Publish { room: &room },
        Endpoint::Whep => Need::Subscribe { room: &room },
    };
    // Auth first: an unauthorized caller never gets its body read.
    let claims = st.authorize_http(&headers, q.access_token.as_deref(), need)?;
    let identity = claims.as_ref().map(|c| c.identity.as_str());
    let body = read_body(body, st.max_body).await?;
    let offer = parse_offer_request(headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()), &body, st.max_body)?;
    let client = Client { identity, source: peer_ip(&peer) };
    let mut hub = st.hub.lock().unwrap_or_else(|p| p.into_inner());
    let res: Result<Created, HubError> = match kind {
        Endpoint::Whip => Hub::publish(&mut hub, &room, &offer, q.shard, client),
        Endpoint::Whep => Hub::subscribe(&mut hub, &room, &offer, q.shard, client),
    };
    let created_session = res?;
    drop(hub);
    let links = st.ice_server_links(&headers, identity.unwrap_or(&created_session.resource));
    Ok(created(kind.prefix(), &room, created_session, links))
}

pub async fn whip_post(
    State(st): State<AppState>,
    Path(room): Path<String>,
    Query(q): Query<PostQuery>,
    headers: HeaderMap,
    peer: Peer,
    body: Body,
) -> Result<Response, ApiError> {
    post(st, Endpoint::Whip, room, q, headers, peer, body).await
}

pub async fn whep_post(
    State(st): State<AppState>,
    Path(room): Path<String>,
    Query(q): Query<PostQuery>,
    headers: HeaderMap,
    peer: Peer,
    body: Body,
) -> Result<Response, ApiError> {
    post(st, Endpoint::Whep, room, q, headers, peer, body).await
}

/// With auth on, ending a session takes a token for its room (the grant
/// its POST needed, or roomAdmin) besides the resource id.
fn delete(st: AppState, kind: Endpoint, room: &str, resource: &str, headers: &HeaderMap, q: &TokenQuery) -> Result<StatusCode, ApiError> {
    let token = q.access_token.as_deref();
    let need = match kind {
        Endpoint::Whip => Need::Publish { room },
        Endpoint::Whep => Need::Subscribe { room },
    };
    if let Err(e) = st.authorize_http(headers, token, need) {
        st.authorize_http(headers, token, Need::Admin { room: Some(room) }).map_err(|_| e)?;
    }
    let mut hub = st.hub.lock().unwrap_or_else(|p| p.into_inner());
    hub.delete(kind.kind(), room, resource).map_err(|e| match e {
        HubError::UnknownSession => ApiError::new(StatusCode::NOT_FOUND, format!("no session {resource} in room '{room}'")),
        other => other.into(),
    })?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize, Default)]
pub struct TokenQuery {
    access_token: Option<String>,
}

pub async fn whip_delete(
    State(st): State<AppState>,
    Path((room, resource)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Result<StatusCode, ApiError> {
    delete(st, Endpoint::Whip, &room, &resource, &headers, &q)
}

pub async fn whep_delete(
    State(st): State<AppState>,
    Path((room, resource)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Result<StatusCode, ApiError> {
    delete(st, Endpoint::Whep, &room, &resource, &headers, &q)
}

/// Trickle and ICE restart via PATCH are optional in RFC 9725; sfud is
/// ICE-lite with all candidates in the answer, so it says so plainly.
pub async fn patch() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "trickle ICE / ICE restart via PATCH is not supported; all candidates are in the answer",
    )
}

/// Pre-flight: what the endpoint accepts, and ICE servers (RFC 9725 §4.6)
/// so a client can configure TURN before it creates its offer. TURN
/// credentials open a relay, so they go only to a caller whose token would
/// pass the POST; anyone else (a CORS pre-flight included) gets the rest.
pub async fn options(
    State(st): State<AppState>,
    Path(room): Path<String>,
    Query(q): Query<TokenQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let need = if uri.path().starts_with("/whep/") { Need::Subscribe { room: &room } } else { Need::Publish { room: &room } };
    let links = match st.authorize_http(&headers, q.access_token.as_deref(), need) {
        Ok(claims) => st.ice_server_links(&headers, claims.as_ref().map_or("whip-client", |c| c.identity.as_str())),
        Err(_) => Vec::new(),
    };
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert(header::HeaderName::from_static("accept-post"), HeaderValue::from_static("application/sdp"));
    h.insert(header::ALLOW, HeaderValue::from_static("OPTIONS, POST"));
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Link"));
    add_links(h, links);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn content_type_and_body_checks() {
        let sdp = b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n";
        assert_eq!(parse_offer_request(None, sdp, 1000).unwrap_err().status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            parse_offer_request(Some(b"text/plain"), sdp, 1000).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(parse_offer_request(Some(b"application/sdp"), b"  ", 1000).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(parse_offer_request(Some(b"application/sdp"), sdp, 10).unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(parse_offer_request(Some(b"application/sdp"), b"hello", 1000).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(parse_offer_request(Some(b"application/sdp"), &[0xff, 0xfe], 1000).unwrap_err().status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn room_names() {
        assert!(validate_room("room-1_a.b").is_ok());
        assert!(validate_room("").is_err());
        assert!(validate_room("a/b").is_err());
        assert!(validate_room(&"x".repeat(65)).is_err());
    }

    proptest! {
        #[test]
        fn offer_request_never_panics(ct in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
                                      body in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = parse_offer_request(ct.as_deref(), &body, 1500);
        }

        #[test]
        fn sdp_like_bodies_never_panic(lines in proptest::collection::vec("[vosctmab]=[ -~]{0,40}", 0..30)) {
            let body = lines.join("\r\n");
            let _ = parse_offer_request(Some(b"application/sdp; charset=utf-8"), body.as_bytes(), 65536);
        }

        #[test]
        fn room_validation_never_panics(room in ".{0,80}") {
            let _ = validate_room(&room);
        }
    }
}
