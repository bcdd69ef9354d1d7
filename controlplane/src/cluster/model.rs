//! What the cluster keeps in Redis: key names and the node record. Every
//! key lives under `sfud:`; docs/cluster.md has the whole data model.

use serde::{Deserialize, Serialize};

/// `sfud:node:{id}`: a node's record (JSON), with the cluster TTL.
pub fn node_key(id: &str) -> String {
    format!("{NODE_KEY_PREFIX}{id}")
}
pub const NODE_KEY_PREFIX: &str = "sfud:node:";

/// `sfud:nodes`: the set of ids that have registered, so readers find the
/// records without SCAN. A member whose record has expired is dead; readers
/// remove it.
pub const NODES_SET: &str = "sfud:nodes";

/// `sfud:room:{room}`: the id of the node hosting the room, with the
/// cluster TTL. `room` is the namespace-qualified name (`ns:room`).
pub fn room_key(qualified_room: &str) -> String {
    format!("sfud:room:{qualified_room}")
}

/// `sfud:relay:{id}`: the pub/sub channel a node listens on for relayed
/// JSON-RPC (requests from other nodes' WebSockets, and replies to its own).
pub fn relay_channel(id: &str) -> String {
    format!("sfud:relay:{id}")
}

/// A room as the registry shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomSummary {
    /// Namespace-qualified name.
    pub name: String,
    pub participants: u32,
    pub tracks: u32,
}

/// Most rooms a record lists by name (`rooms` counts them all): the record
/// stays small however many rooms a node hosts.
pub const MAX_LISTED_ROOMS: usize = 200;

/// What a node says about itself every refresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: String,
    pub region: String,
    /// Where other nodes send this node's clients (`http://host:port`).
    pub http_url: String,
    /// Media addresses announced in its ICE candidates.
    pub media: Vec<String>,
    pub rooms: u32,
    pub sessions: u32,
    pub participants: u32,
    pub tracks: u32,
    /// The process's CPU use over the last refresh, percent of one core.
    pub cpu_percent: f32,
    /// Media bytes in + out over the last refresh, bits per second.
    pub bandwidth_bps: u64,
    pub draining: bool,
    /// At a `[limits]` capacity (sessions or rooms): gets no new rooms.
    pub full: bool,
    /// Wall clock (ms since the epoch) when written.
    pub updated_ms: u64,
    pub room_list: Vec<RoomSummary>,
}

/// Namespaces scope rooms: the hub and Redis know a room as `ns:room`
/// (`room` alone in the default namespace). Neither part may contain ':'
/// (room names are checked by `http::validate_room`, namespaces here).
pub fn qualify(namespace: &str, room: &str) -> String {
    if namespace.is_empty() {
        room.to_string()
    } else {
        format!("{namespace}:{room}")
    }
}

/// The namespace part of a qualified room name ("" for the default one).
pub fn namespace_of(qualified: &str) -> &str {
    qualified.split_once(':').map_or("", |(ns, _)| ns)
}

/// Namespace names: like room names, 1-64 of A-Z a-z 0-9 - _ .
pub fn valid_namespace(ns: &str) -> bool {
    !ns.is_empty() && ns.len() <= 64 && ns.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_round_trip() {
        assert_eq!(qualify("", "r1"), "r1");
        assert_eq!(qualify("acme", "r1"), "acme:r1");
        assert_eq!(namespace_of("acme:r1"), "acme");
        assert_eq!(namespace_of("r1"), "");
        assert_eq!(room_key(&qualify("acme", "r1")), "sfud:room:acme:r1");
        assert!(valid_namespace("tenant-a"));
        assert!(!valid_namespace(""));
        assert!(!valid_namespace("a:b"));
    }
}
