//! One WebSocket = at most one participant. Requests are handled in order;
//! notifications from the hub are queued on a channel and interleaved.
//!
//! In a cluster, a `join` for a room hosted on another node turns the
//! socket into a relay (`cluster::relay`): its frames go to that node, which
//! runs them through `serve_relayed` below, the same `handle` as here.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::debug;

use super::rpc::{self, Incoming, RpcError};
use crate::cluster::placement::Route;
use crate::cluster::relay::{Downstream, Link, OpenInfo};
use crate::http::{peer_ip, AppState, ConnSlot, Peer};
use crate::hub::{Client, ParticipantId};

#[derive(serde::Deserialize, Default)]
pub struct WsQuery {
    /// ion-sdk-js can only pass a token in the URL.
    access_token: Option<String>,
    /// The namespace (tenant) whose rooms this connection joins.
    ns: Option<String>,
}

pub async fn ws_handler(
    ws: WebSocketUpgrade,
    State(st): State<AppState>,
    Query(q): Query<WsQuery>,
    headers: axum::http::HeaderMap,
    peer: Peer,
    slot: Option<axum::Extension<ConnSlot>>,
) -> Response {
    let namespace = q.ns.unwrap_or_default();
    if !namespace.is_empty() && !crate::cluster::valid_namespace(&namespace) {
        return (StatusCode::BAD_REQUEST, "ns: 1-64 characters of A-Z, a-z, 0-9, '-', '_' or '.'\n").into_response();
    }
    let limit = st.limits.ws_max_message_bytes;
    let source = peer_ip(&peer);
    ws.max_message_size(limit).max_frame_size(limit).on_upgrade(move |socket| async move {
        connection(socket, st, q.access_token, headers, source, namespace).await;
        // The socket counted against limits.http_max_connections until now.
        drop(slot);
    })
}

pub(crate) struct Conn {
    participant: Option<ParticipantId>,
    token: Option<String>,
    /// The upgrade request's headers (Host names the TURN server to hand out).
    headers: axum::http::HeaderMap,
    /// Handed to the hub at join; the hub dropping it closes the socket.
    notify: Option<mpsc::UnboundedSender<String>>,
    /// The client's address, for the per-address limits.
    source: Option<std::net::IpAddr>,
    namespace: String,
    /// Served here for a WebSocket on another node: never relayed again.
    served_for_peer: bool,
    /// Set when this socket's room lives on another node.
    relay: Option<(Link, mpsc::UnboundedReceiver<Downstream>)>,
}

/// Waits for the relay's next message, or forever when not relayed.
async fn from_relay(relay: &mut Option<(Link, mpsc::UnboundedReceiver<Downstream>)>) -> Option<Downstream> {
    match relay {
        Some((_, rx)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn connection(
    mut socket: WebSocket,
    st: AppState,
    token: Option<String>,
    headers: axum::http::HeaderMap,
    source: Option<std::net::IpAddr>,
    namespace: String,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let mut conn = Conn { participant: None, token, headers, notify: Some(tx), source, namespace, served_for_peer: false, relay: None };
    // Browsers answer pings by themselves, so a live client is never idle
    // for long; a socket that stays silent past the limit is dead or abusive.
    let idle = Duration::from_secs(st.limits.ws_idle_timeout_secs);
    let mut ping = tokio::time::interval((idle / 3).max(Duration::from_millis(100)));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_rx = Instant::now();
    loop {
        tokio::select! {
            _ = ping.tick() => {
                if last_rx.elapsed() >= idle {
                    crate::metrics::record_http_timeout("ws_idle");
                    debug!("websocket idle past limits.ws_idle_timeout_secs; closing");
                    break;
                }
                if let (Some(c), Some((link, _))) = (&st.cluster, &conn.relay) {
                    c.relay().ping(link);
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() { break }
            }
            msg = socket.recv() => {
                last_rx = Instant::now();
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Binary(_))) => {
                        let e = RpcError::new(rpc::PARSE_ERROR, "binary frames are not JSON-RPC; send text");
                        if socket.send(Message::Text(rpc::error(&Value::Null, &e).into())).await.is_err() { break }
                        continue;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                if let (Some(c), Some((link, _))) = (&st.cluster, &conn.relay) {
                    c.relay().up(link, &text);
                    continue;
                }
                if let Some(reply) = handle(&st, &mut conn, &text).await {
                    if socket.send(Message::Text(reply.into())).await.is_err() { break }
                }
            }
            out = rx.recv() => match out {
                Some(text) => if socket.send(Message::Text(text.into())).await.is_err() { break },
                // The hub let go of the participant (consent lost, DTLS failure).
                None => break,
            },
            down = from_relay(&mut conn.relay) => match down {
                Some(Downstream::Text(text)) => if socket.send(Message::Text(text.into())).await.is_err() { break },
                // The room's node ended the participant, or died.
                Some(Downstream::Close) | None => { conn.relay = None; break }
            },
        }
    }
    if let (Some(c), Some((link, _))) = (&st.cluster, &conn.relay) {
        c.relay().close(link);
    }
    if let Some(pid) = conn.participant {
        st.hub.lock().unwrap_or_else(|p| p.into_inner()).leave(pid, "signaling connection closed");
    }
    debug!("websocket closed");
}

/// Runs, on the room's node, a WebSocket that lives on node `from`: the
/// frames arrive on `frames` (an empty one is a keepalive), replies and
/// notifications go back through the relay.
pub async fn serve_relayed(st: AppState, conn_id: String, from: String, join_frame: String, info: OpenInfo, mut frames: mpsc::Receiver<String>) {
    let Some(cluster) = st.cluster.clone() else { return };
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let mut conn = Conn {
        participant: None,
        token: info.token,
        headers: axum::http::HeaderMap::new(),
        notify: Some(tx),
        source: info.source,
        namespace: info.namespace,
        served_for_peer: true,
        relay: None,
    };
    debug!(conn = conn_id, from, "serving a relayed connection");
    if let Some(reply) = handle(&st, &mut conn, &join_frame).await {
        cluster.relay().down(&conn_id, &from, reply);
    }
    let idle = Duration::from_secs(st.limits.ws_idle_timeout_secs);
    loop {
        tokio::select! {
            frame = tokio::time::timeout(idle, frames.recv()) => match frame {
                Ok(Some(text)) if text.is_empty() => {}
                Ok(Some(text)) => if let Some(reply) = handle(&st, &mut conn, &text).await {
                    cluster.relay().down(&conn_id, &from, reply);
                },
                // Closed by the client's node, or nothing (not even a keepalive) for too long.
                Ok(None) | Err(_) => break,
            },
            out = rx.recv() => match out {
                Some(text) => cluster.relay().down(&conn_id, &from, text),
                None => break,
            },
        }
    }
    cluster.relay().close_down(&conn_id, &from);
    if let Some(pid) = conn.participant {
        st.hub.lock().unwrap_or_else(|p| p.into_inner()).leave(pid, "relayed signaling connection closed");
    }
    debug!(conn = conn_id, "relayed connection closed");
}

/// Handles one frame; returns the response for calls (none for notifications).
async fn handle(st: &AppState, conn: &mut Conn, text: &str) -> Option<String> {
    let req = match rpc::parse(text) {
        Ok(r) => r,
        Err((id, e)) => return Some(rpc::error(&id, &e)),
    };
    let Incoming { id, method, params } = req;
    if method == "join" {
        match route_join(st, conn, text, &params).await {
            Ok(true) => return None, // relayed: the room's node answers
            Ok(false) => {}
            Err(e) => return id.map(|id| rpc::error(&id, &e)),
        }
    }
    let outcome = dispatch(st, conn, &method, params);
    // Label by known method only, so the label set stays bounded.
    let label = match method.as_str() {
        "join" | "offer" | "answer" | "trickle" | "leave" => method.as_str(),
        _ => "unknown",
    };
    crate::http::record_request(&format!("rpc {label}"), if outcome.is_ok() { 200 } else { 400 });
    match (id, outcome) {
        (Some(id), Ok(v)) => Some(rpc::result(&id, v)),
        (Some(id), Err(e)) => Some(rpc::error(&id, &e)),
        // Notifications get no response, even on error (JSON-RPC 2.0 §4.1).
        (None, Err(e)) => {
            debug!(method, error = %e.message, "notification refused");
            None
        }
        (None, Ok(_)) => None,
    }
}

/// In a cluster, a first `join` of a room this node does not host is placed;
/// when the room's node is another, the socket becomes a relay to it and
/// this returns true.
async fn route_join(st: &AppState, conn: &mut Conn, text: &str, params: &Value) -> Result<bool, RpcError> {
    let Some(cluster) = st.cluster.clone() else { return Ok(false) };
    if conn.served_for_peer || conn.participant.is_some() || conn.relay.is_some() {
        return Ok(false);
    }
    let Some(sid) = params.get("sid").and_then(Value::as_str) else { return Ok(false) };
    if crate::http::validate_room(sid).is_err() {
        return Ok(false); // dispatch answers with the exact complaint
    }
    // The token decides the namespace when it names one; a token that fails
    // here is refused by dispatch with the exact reason.
    let token = params.get("token").and_then(Value::as_str).map(str::to_string).or_else(|| conn.token.clone());
    let Ok(claims) = st.authorize_join(sid, token.as_deref()) else { return Ok(false) };
    conn.namespace = crate::auth::resolve_namespace(&conn.namespace, claims.as_ref()).map_err(|m| RpcError::new(rpc::UNAUTHORIZED, m))?;
    let room = crate::cluster::qualify(&conn.namespace, sid);
    if st.hub.lock().unwrap_or_else(|p| p.into_inner()).has_room(&room) {
        return Ok(false);
    }
    if st.is_draining() {
        return Ok(false); // refused by dispatch
    }
    match cluster.place(&room, None).await {
        Ok(Route::Local) => {
            crate::metrics::record_placement("local");
            Ok(false)
        }
        Ok(Route::Remote { node, .. }) => {
            let info = OpenInfo { token: conn.token.clone(), namespace: conn.namespace.clone(), source: conn.source };
            let link = cluster
                .relay()
                .open(&node, text, info)
                .ok_or_else(|| RpcError::new(rpc::REFUSED, "cannot relay to the room's node now (Redis unreachable or too many relayed connections); retry shortly"))?;
            crate::metrics::record_placement("relay");
            debug!(room, node, conn = link.0.conn, "join relayed to the room's node");
            conn.relay = Some(link);
            Ok(true)
        }
        Err(e) => {
            crate::metrics::record_placement("unavailable");
            Err(RpcError::new(rpc::REFUSED, e.to_string()))
        }
    }
}

fn dispatch(st: &AppState, conn: &mut Conn, method: &str, params: Value) -> Result<Value, RpcError> {
    match method {
        "join" => {
            let mut p: rpc::JoinParams = rpc::params("join", params)?;
            if conn.participant.is_some() {
                return Err(RpcError::new(rpc::ALREADY_JOINED, "this connection already joined a room; open another to join again"));
            }
            let token = p.token.clone().or_else(|| conn.token.clone());
            let claims = st.authorize_join(&p.sid, token.as_deref())?;
            let notify = conn.notify.clone().ok_or_else(|| RpcError::new(rpc::INTERNAL_ERROR, "connection closing"))?;
            let client = Client { identity: claims.as_ref().map(|c| c.identity.as_str()), source: conn.source };
            let ns = crate::auth::resolve_namespace(&conn.namespace, claims.as_ref()).map_err(|m| RpcError::new(rpc::UNAUTHORIZED, m))?;
            if crate::http::validate_room(&p.sid).is_ok() {
                // The hub knows rooms by their namespace-qualified name.
                p.sid = crate::cluster::qualify(&ns, &p.sid);
            }
            let mut hub = st.hub.lock().unwrap_or_else(|p| p.into_inner());
            let uid = p.uid.clone();
            let (pid, answer) = hub.join(p, notify, client)?;
            drop(hub);
            conn.participant = Some(pid);
            // sfud extension: TURN for clients that need it. The answer's
            // extra member is ignored by setRemoteDescription.
            let mut result = json!({ "type": "answer", "sdp": answer });
            if let Some(server) = st.ice_server(&conn.headers, &uid) {
                result["iceServers"] = json!([server]);
            }
            Ok(result)
        }
        "offer" => {
            let p: rpc::DescParams = rpc::params("offer", params)?;
            let pid = conn.participant.ok_or_else(|| RpcError::new(rpc::NOT_JOINED, "offer before join"))?;
            let answer = st.hub.lock().unwrap_or_else(|p| p.into_inner()).publisher_offer(pid, p.desc)?;
            Ok(json!({ "type": "answer", "sdp": answer }))
        }
        "answer" => {
            let p: rpc::DescParams = rpc::params("answer", params)?;
            let pid = conn.participant.ok_or_else(|| RpcError::new(rpc::NOT_JOINED, "answer before join"))?;
            st.hub.lock().unwrap_or_else(|p| p.into_inner()).subscriber_answer(pid, p.desc)?;
            Ok(Value::Null)
        }
        "trickle" => {
            // sfud is ICE-lite: it learns the client's addresses from its
            // STUN checks, so client candidates need no handling.
            let p: rpc::TrickleParams = rpc::params("trickle", params)?;
            if p.target > 1 {
                return Err(RpcError::params("trickle: target must be 0 (publisher) or 1 (subscriber)"));
            }
            Ok(Value::Null)
        }
        "leave" => {
            if let Some(pid) = conn.participant.take() {
                st.hub.lock().unwrap_or_else(|p| p.into_inner()).leave(pid, "left");
            }
            conn.notify = None;
            Ok(Value::Null)
        }
        other => Err(RpcError::new(rpc::METHOD_NOT_FOUND, format!("method not found: {other}"))),
    }
}
