//! WHIP (RFC 9725) ingest and WHEP playback: POST an offer and get 201 with
//! the answer, a Location (always relative: `/whip/<room>/<resource>`) and an
//! ETag; PATCH the Location with an `application/trickle-ice-sdpfrag` to
//! trickle or restart ICE; DELETE it to end the session.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::Extension;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::auth::Need;
use crate::hub::{Client, Created, Hub, HubError, Patched, SessionKind};
use crate::sdp::{SessionDescription, TrickleFragment, MAX_FRAG_BYTES};

const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

#[derive(Deserialize, Default)]
pub struct PostQuery {
    /// Test-only placement hint (needs `dataplane.allow_placement_hint`).
    shard: Option<usize>,
    /// For clients that cannot set `Authorization` (RFC 9725 prefers the header).
    access_token: Option<String>,
    /// The namespace (tenant) the room belongs to; none = the default one.
    ns: Option<String>,
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
    if let Ok(v) = HeaderValue::from_str(&c.etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::HeaderName::from_static("accept-patch"), HeaderValue::from_static(SDPFRAG));
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

#[allow(clippy::too_many_arguments)]
async fn post(
    st: AppState,
    kind: Endpoint,
    room: String,
    q: PostQuery,
    headers: HeaderMap,
    peer: Peer,
    uri: axum::http::Uri,
    body: Body,
) -> Result<Response, ApiError> {
    validate_room(&room)?;
    let ns = q.ns.as_deref().unwrap_or("");
    if !ns.is_empty() && !crate::cluster::valid_namespace(ns) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "ns: 1-64 characters of A-Z, a-z, 0-9, '-', '_' or '.'"));
    }
    st.refuse_if_draining()?;
    let need = match kind {
        Endpoint::Whip => Need::Publish { room: &room },
        Endpoint::Whep => Need::Subscribe { room: &room },
    };
    // Auth first: an unauthorized caller never gets its body read.
    let claims = st.authorize_http(&headers, q.access_token.as_deref(), need)?;
    let identity = claims.as_ref().map(|c| c.identity.as_str());
    let ns = crate::auth::resolve_namespace(ns, claims.as_ref()).map_err(|m| ApiError::new(StatusCode::FORBIDDEN, m))?;
    let room = crate::cluster::qualify(&ns, &room);
    // In a cluster, a room hosted elsewhere is a 307 to its node (before the
    // body is read: the client sends it again there).
    if let Some(location) = crate::cluster::redirect_for(&st, &room, &headers, &uri).await? {
        let mut resp = (StatusCode::TEMPORARY_REDIRECT, format!("room is hosted at {location}\n")).into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return Ok(resp);
    }
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
    uri: axum::http::Uri,
    body: Body,
) -> Result<Response, ApiError> {
    post(st, Endpoint::Whip, room, q, headers, peer, uri, body).await
}

pub async fn whep_post(
    State(st): State<AppState>,
    Path(room): Path<String>,
    Query(q): Query<PostQuery>,
    headers: HeaderMap,
    peer: Peer,
    uri: axum::http::Uri,
    body: Body,
) -> Result<Response, ApiError> {
    post(st, Endpoint::Whep, room, q, headers, peer, uri, body).await
}

/// With auth on, ending a session takes a token for its room (the grant
/// its POST needed, or roomAdmin) besides the resource id.
fn delete(st: AppState, kind: Endpoint, room: &str, resource: &str, headers: &HeaderMap, q: &TokenQuery) -> Result<StatusCode, ApiError> {
    let token = q.access_token.as_deref();
    // A namespaced Location names `ns:room`; tokens name the room.
    let qualified = room;
    let room = room.split_once(':').map_or(room, |(_, r)| r);
    let need = match kind {
        Endpoint::Whip => Need::Publish { room },
        Endpoint::Whep => Need::Subscribe { room },
    };
    let claims = match st.authorize_http(headers, token, need) {
        Ok(c) => c,
        Err(e) => st.authorize_http(headers, token, Need::Admin { room: Some(room) }).map_err(|_| e)?,
    };
    let ns = qualified.split_once(':').map_or("", |(ns, _)| ns);
    if crate::auth::resolve_namespace(ns, claims.as_ref()).ok().as_deref() != Some(ns) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "the access token is for another namespace"));
    }
    let mut hub = st.hub.lock().unwrap_or_else(|p| p.into_inner());
    hub.delete(kind.kind(), qualified, resource).map_err(|e| match e {
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

/// Checks what a PATCH carries and parses its fragment.
pub fn parse_patch_request(content_type: Option<&[u8]>, body: &[u8]) -> Result<TrickleFragment, ApiError> {
    let ct = content_type
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if ct.as_deref() != Some(SDPFRAG) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("a PATCH must be sent with Content-Type: {SDPFRAG}"),
        ));
    }
    if body.len() > MAX_FRAG_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the fragment is {} bytes; the limit is {MAX_FRAG_BYTES}", body.len()),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the sdpfrag is not valid UTF-8"))?;
    TrickleFragment::parse(text)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("malformed sdpfrag: {e}")))
}

/// Trickle (204) or ICE restart (200 with sfud's new credentials and
/// candidates), RFC 9725 §4.3. `If-Match` must name the current ETag (or be
/// "*"); a stale one gets 412.
fn patch(st: AppState, kind: Endpoint, room: &str, resource: &str, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    let frag = parse_patch_request(headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()), body)?;
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    let mut hub = st.hub.lock().unwrap_or_else(|p| p.into_inner());
    let patched = hub.patch(kind.kind(), room, resource, if_match, &frag).map_err(|e| match e {
        HubError::UnknownSession => ApiError::new(StatusCode::NOT_FOUND, format!("no session {resource} in room '{room}'")),
        other => other.into(),
    })?;
    drop(hub);
    Ok(match patched {
        Patched::Trickled { .. } => StatusCode::NO_CONTENT.into_response(),
        Patched::Restarted { fragment, etag } => {
            let mut resp = (StatusCode::OK, fragment).into_response();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDPFRAG));
            if let Ok(v) = HeaderValue::from_str(&etag) {
                h.insert(header::ETAG, v);
            }
            resp
        }
    })
}

pub async fn whip_patch(
    State(st): State<AppState>,
    Path((room, resource)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    patch(st, Endpoint::Whip, &room, &resource, &headers, &body)
}

pub async fn whep_patch(
    State(st): State<AppState>,
    Path((room, resource)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    patch(st, Endpoint::Whep, &room, &resource, &headers, &body)
}

/// What the endpoint accepts, and ICE servers (RFC 9725 §4.6) so a client
/// can configure TURN before it creates its offer. TURN credentials go only
/// to callers who could POST here (their token, or no auth configured);
/// others get the rest. CORS preflights never get here (see `cors`).
fn options(st: AppState, kind: Endpoint, room: &str, q: &PostQuery, headers: &HeaderMap) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let need = match kind {
        Endpoint::Whip => Need::Publish { room },
        Endpoint::Whep => Need::Subscribe { room },
    };
    let links = match st.authorize_http(headers, q.access_token.as_deref(), need) {
        Ok(claims) => {
            let who = claims.as_ref().map_or_else(|| format!("{}-client", kind.prefix()), |c| c.identity.clone());
            st.ice_server_links(headers, &who)
        }
        Err(_) => Vec::new(),
    };
    let h = resp.headers_mut();
    h.insert(header::HeaderName::from_static("accept-post"), HeaderValue::from_static("application/sdp"));
    h.insert(header::ALLOW, HeaderValue::from_static("OPTIONS, POST"));
    add_links(h, links);
    resp
}

pub async fn whip_options(
    State(st): State<AppState>,
    Path(room): Path<String>,
    Query(q): Query<PostQuery>,
    headers: HeaderMap,
) -> Response {
    options(st, Endpoint::Whip, &room, &q, &headers)
}

pub async fn whep_options(
    State(st): State<AppState>,
    Path(room): Path<String>,
    Query(q): Query<PostQuery>,
    headers: HeaderMap,
) -> Response {
    options(st, Endpoint::Whep, &room, &q, &headers)
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
