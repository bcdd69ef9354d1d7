//! ion JSON-RPC across nodes. A WebSocket stays on the node it reached (A);
//! once its `join` names a room hosted on node B, A forwards every frame to
//! B over Redis pub/sub, and B runs the connection exactly as a local
//! WebSocket (`signal::ion::serve_relayed`), sending replies and notifications
//! back. Media never passes here: B's candidates are in B's SDP.
//!
//! Each node subscribes to one channel, `sfud:relay:{id}`; messages carry
//! the connection id, so a connection's channel pair is (A's, B's) without
//! a SUBSCRIBE per connection. Pub/sub is at-most-once: a message lost while
//! Redis is down is lost, and a client that sees no answer rejoins.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::model::{relay_channel, NodeRecord};
use super::Cluster;
use crate::http::AppState;

/// One relayed frame or control message, as JSON on the channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// `{A's id}/{n}`: unique per WebSocket across the cluster.
    pub conn: String,
    /// The sending node.
    pub from: String,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// With `Open`: what B needs to run the connection as A saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<OpenInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A -> B: the `join` frame; B starts serving the connection.
    Open,
    /// A -> B: a later client frame.
    Up,
    /// B -> A: a reply or notification for the client.
    Down,
    /// A -> B: the WebSocket closed (or keepalive stopped).
    CloseUp,
    /// B -> A: the participant ended; close the WebSocket.
    CloseDown,
    /// A -> B: the WebSocket is alive (B ends idle connections).
    Ping,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenInfo {
    pub token: Option<String>,
    pub namespace: String,
    pub source: Option<std::net::IpAddr>,
}

/// What a relayed WebSocket on A receives from B.
#[derive(Debug)]
pub enum Downstream {
    Text(String),
    Close,
}

/// Outgoing publishes queued at most; past it frames are dropped (counted).
const OUTBOX: usize = 4096;
/// Frames queued for one served connection at most.
const CONN_QUEUE: usize = 256;
/// Relayed connections at most, each way.
const MAX_CONNS: usize = 10_000;

pub struct Relay {
    id: String,
    next: AtomicU64,
    /// A side: our WebSockets relayed elsewhere: conn -> (B's id, sink).
    local: Mutex<HashMap<String, (String, mpsc::UnboundedSender<Downstream>)>>,
    /// B side: connections we serve for other nodes: conn -> frame queue.
    served: Mutex<HashMap<String, mpsc::Sender<String>>>,
    outbox: Mutex<Option<mpsc::Sender<(String, String)>>>,
}

/// A's handle on one relayed WebSocket.
pub struct Link {
    pub conn: String,
    pub node: String,
}

impl Relay {
    pub fn new(id: &str) -> Self {
        Relay { id: id.to_string(), next: AtomicU64::new(1), local: Mutex::default(), served: Mutex::default(), outbox: Mutex::new(None) }
    }

    fn publish(&self, to_node: &str, env: &Envelope) -> bool {
        let Some(tx) = self.outbox.lock().unwrap_or_else(|p| p.into_inner()).clone() else { return false };
        let Ok(json) = serde_json::to_string(env) else { return false };
        match tx.try_send((relay_channel(to_node), json)) {
            Ok(()) => {
                crate::metrics::record_relayed("out");
                true
            }
            Err(_) => {
                crate::metrics::record_relayed("dropped");
                false
            }
        }
    }

    fn envelope(&self, conn: &str, kind: Kind, text: String) -> Envelope {
        Envelope { conn: conn.to_string(), from: self.id.clone(), kind, text, open: None }
    }

    /// A side: starts relaying a WebSocket to `node` with its `join` frame.
    /// Replies arrive on the returned receiver.
    pub fn open(&self, node: &str, join_frame: &str, info: OpenInfo) -> Option<(Link, mpsc::UnboundedReceiver<Downstream>)> {
        let conn = format!("{}/{}", self.id, self.next.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
            if local.len() >= MAX_CONNS {
                return None;
            }
            local.insert(conn.clone(), (node.to_string(), tx));
        }
        let mut env = self.envelope(&conn, Kind::Open, join_frame.to_string());
        env.open = Some(info);
        if !self.publish(node, &env) {
            self.local.lock().unwrap_or_else(|p| p.into_inner()).remove(&conn);
            return None;
        }
        Some((Link { conn, node: node.to_string() }, rx))
    }

    /// A side: a client frame, a keepalive, or the close of a relayed socket.
    pub fn up(&self, link: &Link, text: &str) {
        self.publish(&link.node, &self.envelope(&link.conn, Kind::Up, text.to_string()));
    }

    pub fn ping(&self, link: &Link) {
        self.publish(&link.node, &self.envelope(&link.conn, Kind::Ping, String::new()));
    }

    pub fn close(&self, link: &Link) {
        self.local.lock().unwrap_or_else(|p| p.into_inner()).remove(&link.conn);
        self.publish(&link.node, &self.envelope(&link.conn, Kind::CloseUp, String::new()));
    }

    /// A side: relayed sockets whose room node left the registry are closed,
    /// so their clients rejoin (and are placed on a live node).
    pub fn close_orphans(&self, nodes: &[NodeRecord]) {
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        local.retain(|conn, (node, tx)| {
            let alive = nodes.iter().any(|n| &n.id == node);
            if !alive {
                info!(conn, node, "relayed connection's room node is gone; closing the WebSocket");
                let _ = tx.send(Downstream::Close);
            }
            alive
        });
    }

    /// B side: a frame from the served connection's task to its client.
    pub fn down(&self, conn: &str, to_node: &str, text: String) {
        self.publish(to_node, &self.envelope(conn, Kind::Down, text));
    }

    pub fn close_down(&self, conn: &str, to_node: &str) {
        self.served.lock().unwrap_or_else(|p| p.into_inner()).remove(conn);
        self.publish(to_node, &self.envelope(conn, Kind::CloseDown, String::new()));
    }

    pub fn served_count(&self) -> usize {
        self.served.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Routes one envelope that arrived on our channel.
    fn deliver(&self, env: Envelope, state: &AppState) {
        crate::metrics::record_relayed("in");
        match env.kind {
            Kind::Open => {
                let (tx, rx) = mpsc::channel(CONN_QUEUE);
                {
                    let mut served = self.served.lock().unwrap_or_else(|p| p.into_inner());
                    if served.len() >= MAX_CONNS {
                        warn!(conn = env.conn, "relay: too many relayed connections; refusing");
                        drop(served);
                        self.publish(&env.from, &self.envelope(&env.conn, Kind::CloseDown, String::new()));
                        return;
                    }
                    served.insert(env.conn.clone(), tx);
                }
                let info = env.open.unwrap_or(OpenInfo { token: None, namespace: String::new(), source: None });
                tokio::spawn(crate::signal::ion::serve_relayed(state.clone(), env.conn, env.from, env.text, info, rx));
            }
            Kind::Up | Kind::Ping => {
                let tx = self.served.lock().unwrap_or_else(|p| p.into_inner()).get(&env.conn).cloned();
                match tx {
                    // An empty frame is a keepalive; the task only notes the time.
                    Some(tx) => {
                        if tx.try_send(env.text).is_err() {
                            crate::metrics::record_relayed("dropped");
                        }
                    }
                    None => debug!(conn = env.conn, "relay: frame for an unknown connection"),
                }
            }
            Kind::CloseUp => {
                // Dropping the queue's sender ends the task, which leaves the room.
                self.served.lock().unwrap_or_else(|p| p.into_inner()).remove(&env.conn);
            }
            Kind::Down | Kind::CloseDown => {
                let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
                let msg = if env.kind == Kind::Down { Downstream::Text(env.text) } else { Downstream::Close };
                let closing = matches!(msg, Downstream::Close);
                if let Some((_, tx)) = local.get(&env.conn) {
                    let _ = tx.send(msg);
                }
                if closing {
                    local.remove(&env.conn);
                }
            }
        }
    }
}

/// The relay's two tasks: the publisher (one ConnectionManager, in order)
/// and the subscriber (a dedicated pub/sub connection, re-made after any
/// error, so the relay comes back with Redis).
pub async fn listen(cluster: Cluster, state: AppState) {
    let (tx, mut rx) = mpsc::channel::<(String, String)>(OUTBOX);
    *cluster.relay().outbox.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
    let mut conn = cluster.0.redis.clone();
    tokio::spawn(async move {
        while let Some((channel, payload)) = rx.recv().await {
            if let Err(e) = redis::cmd("PUBLISH").arg(&channel).arg(&payload).query_async::<()>(&mut conn).await {
                debug!(error = %e, "relay: publish failed");
                crate::metrics::record_relayed("dropped");
            }
        }
    });
    let channel = relay_channel(cluster.node_id());
    loop {
        match cluster.0.client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    debug!(%channel, "relay: subscribed");
                    let mut stream = pubsub.on_message();
                    while let Some(msg) = stream.next().await {
                        let payload: String = match msg.get_payload() {
                            Ok(p) => p,
                            Err(_) => continue,
                        };
                        match serde_json::from_str::<Envelope>(&payload) {
                            Ok(env) => cluster.relay().deliver(env, &state),
                            Err(e) => warn!(error = %e, "relay: malformed envelope dropped"),
                        }
                    }
                    debug!("relay: subscription ended; reconnecting");
                }
                Err(e) => debug!(error = %e, "relay: subscribe failed"),
            },
            Err(e) => debug!(error = %e, "relay: no pub/sub connection"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_stay_small() {
        let env = Envelope { conn: "n1/7".into(), from: "n1".into(), kind: Kind::Up, text: "{}".into(), open: None };
        let json = serde_json::to_string(&env).unwrap();
        assert_eq!(json, r#"{"conn":"n1/7","from":"n1","kind":"up","text":"{}"}"#);
        assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), env);
    }

    #[test]
    fn links_to_a_dead_node_are_closed() {
        let relay = Relay::new("a");
        let (tx, _rx) = mpsc::channel(4);
        *relay.outbox.lock().unwrap() = Some(tx);
        let (link, mut down) = relay.open("b", "{}", OpenInfo { token: None, namespace: String::new(), source: None }).unwrap();
        assert!(link.conn.starts_with("a/"));
        relay.close_orphans(&[]);
        assert!(matches!(down.try_recv(), Ok(Downstream::Close)));
    }
}
