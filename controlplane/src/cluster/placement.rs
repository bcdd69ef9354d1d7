//! Placement decisions, sans-IO: which node gets a new room, where a client
//! goes, and what a node must re-assert or release in Redis. The Redis I/O
//! (`registry.rs`) only carries these decisions out; the atomic part (two
//! nodes placing the same room at once) is the Lua script there.

use std::collections::{BTreeSet, VecDeque};

use super::model::NodeRecord;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("no node can take a new room (all draining, full or gone)")]
    NoNode,
    #[error("the room's node {0} is not in the registry (it may have just died); retry shortly")]
    UnknownOwner(String),
}

/// Placements this node made that the chosen node's record cannot show yet
/// (it was written before them). Without these, rooms created in a burst
/// through one node would all land on whichever node looked idlest.
#[derive(Debug, Default)]
pub struct Pending {
    /// (node id, wall ms when placed), oldest first.
    placed: VecDeque<(String, u64)>,
}

/// Pending placements kept at most: a bound, not a tuning knob.
const MAX_PENDING: usize = 4096;

/// How long a placement weighs on its node even after the node rewrote its
/// record: the client it was made for (sent there by a redirect) may not
/// have joined yet, so the record need not show the room. A room that did
/// join meanwhile counts twice for this long, which only spreads a burst
/// further.
pub const JOIN_GRACE_MS: u64 = 5000;

impl Pending {
    pub fn record(&mut self, node: &str, now_ms: u64) {
        if self.placed.len() >= MAX_PENDING {
            self.placed.pop_front();
        }
        self.placed.push_back((node.to_string(), now_ms));
    }

    /// Placements on `rec`'s node that its record may not show: newer than
    /// the record, or younger than [`JOIN_GRACE_MS`] at `now_ms`.
    pub fn count(&self, rec: &NodeRecord, now_ms: u64) -> u32 {
        self.placed
            .iter()
            .filter(|(n, t)| *n == rec.id && (*t >= rec.updated_ms || t + JOIN_GRACE_MS > now_ms))
            .count() as u32
    }

    /// Forgets placements older than `horizon_ms` (every record has been
    /// rewritten since).
    pub fn prune(&mut self, now_ms: u64, horizon_ms: u64) {
        while self.placed.front().is_some_and(|(_, t)| t + horizon_ms < now_ms) {
            self.placed.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.placed.len()
    }
}

/// A node's load as placement weighs it: a room counts most (it brings its
/// participants), then sessions, then CPU (a busy core is worth a room).
pub fn load_score(rec: &NodeRecord, pending: u32) -> f64 {
    f64::from(rec.rooms + pending) * 10.0 + f64::from(rec.sessions) + f64::from(rec.cpu_percent) / 10.0
}

/// Whether a record is live and may take rooms.
fn eligible(rec: &NodeRecord, now_ms: u64, ttl_ms: u64) -> bool {
    !rec.draining && !rec.full && now_ms.saturating_sub(rec.updated_ms) <= ttl_ms
}

/// The node for a new room: the least loaded eligible node, among those of
/// `region` when any is eligible there. Ties go to the lowest id, so the
/// choice is deterministic.
pub fn choose<'a>(
    nodes: &'a [NodeRecord],
    pending: &Pending,
    region: Option<&str>,
    now_ms: u64,
    ttl_ms: u64,
) -> Result<&'a NodeRecord, PlacementError> {
    let live: Vec<&NodeRecord> = nodes.iter().filter(|n| eligible(n, now_ms, ttl_ms)).collect();
    let in_region: Vec<&NodeRecord> = match region.filter(|r| !r.is_empty()) {
        Some(r) => live.iter().copied().filter(|n| n.region == r).collect(),
        None => Vec::new(),
    };
    let pool = if in_region.is_empty() { live } else { in_region };
    pool.into_iter()
        .min_by(|a, b| {
            load_score(a, pending.count(a, now_ms))
                .total_cmp(&load_score(b, pending.count(b, now_ms)))
                .then_with(|| a.id.cmp(&b.id))
        })
        .ok_or(PlacementError::NoNode)
}

/// Where a client of a placed room goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This node hosts the room.
    Local,
    /// Another node does: its id and public HTTP base URL.
    Remote { node: String, http_url: String },
}

pub fn route(owner: &str, self_id: &str, nodes: &[NodeRecord]) -> Result<Route, PlacementError> {
    if owner == self_id {
        return Ok(Route::Local);
    }
    nodes
        .iter()
        .find(|n| n.id == owner)
        .map(|n| Route::Remote { node: n.id.clone(), http_url: n.http_url.clone() })
        .ok_or_else(|| PlacementError::UnknownOwner(owner.to_string()))
}

/// What one refresh must write about this node's rooms.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RoomPlan {
    /// Rooms hosted now: (re)claim their keys and renew the TTL.
    pub assert: Vec<String>,
    /// Rooms no longer hosted: delete their keys if they still name us.
    pub release: Vec<String>,
}

/// Which room keys this node has claimed, so that a closed room's key is
/// deleted (and retried after a Redis outage) rather than left to expire.
#[derive(Debug, Default)]
pub struct RoomBook {
    asserted: BTreeSet<String>,
    unreleased: BTreeSet<String>,
}

/// Releases remembered at most across failed refreshes.
const MAX_UNRELEASED: usize = 10_000;

impl RoomBook {
    pub fn plan(&self, hosted: &[String]) -> RoomPlan {
        let hosted_set: BTreeSet<&String> = hosted.iter().collect();
        let mut release: BTreeSet<String> = self.asserted.iter().filter(|r| !hosted_set.contains(r)).cloned().collect();
        release.extend(self.unreleased.iter().filter(|r| !hosted_set.contains(r)).cloned());
        RoomPlan { assert: hosted.to_vec(), release: release.into_iter().collect() }
    }

    /// Records the outcome of carrying `plan` out: on failure the releases
    /// are kept for the next refresh (the asserted keys expire on their own
    /// if this node never manages to write again).
    pub fn applied(&mut self, plan: RoomPlan, ok: bool) {
        self.asserted = plan.assert.into_iter().collect();
        if ok {
            self.unreleased.clear();
        } else {
            for r in plan.release {
                if self.unreleased.len() >= MAX_UNRELEASED {
                    break;
                }
                self.unreleased.insert(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, region: &str, rooms: u32, updated_ms: u64) -> NodeRecord {
        NodeRecord {
            id: id.into(),
            region: region.into(),
            http_url: format!("http://{id}:7880"),
            media: vec![],
            rooms,
            sessions: rooms * 2,
            participants: 0,
            tracks: 0,
            cpu_percent: 0.0,
            bandwidth_bps: 0,
            draining: false,
            full: false,
            updated_ms,
            room_list: vec![],
        }
    }

    const TTL: u64 = 10_000;

    #[test]
    fn least_loaded_wins_and_ties_go_to_the_lowest_id() {
        let nodes = vec![node("b", "", 1, 1000), node("a", "", 1, 1000), node("c", "", 0, 1000)];
        assert_eq!(choose(&nodes, &Pending::default(), None, 1000, TTL).unwrap().id, "c");
        let nodes = vec![node("b", "", 0, 1000), node("a", "", 0, 1000)];
        assert_eq!(choose(&nodes, &Pending::default(), None, 1000, TTL).unwrap().id, "a");
    }

    #[test]
    fn a_burst_of_placements_spreads_over_idle_nodes() {
        let nodes = vec![node("n1", "", 0, 1000), node("n2", "", 0, 1000), node("n3", "", 0, 1000)];
        let mut pending = Pending::default();
        let mut got = Vec::new();
        for i in 0..6 {
            let n = choose(&nodes, &pending, None, 1001 + i, TTL).unwrap().id.clone();
            pending.record(&n, 1001 + i);
            got.push(n);
        }
        assert_eq!(got, ["n1", "n2", "n3", "n1", "n2", "n3"]);
    }

    #[test]
    fn a_rewritten_record_replaces_the_pending_guess_after_the_join_grace() {
        let mut pending = Pending::default();
        pending.record("n1", 1000);
        assert_eq!(pending.count(&node("n1", "", 0, 999), 1001), 1);
        // n1 wrote its record after the placement, but the client sent there
        // may not have joined yet: the placement still counts.
        assert_eq!(pending.count(&node("n1", "", 0, 1500), 1600), 1);
        // Past the grace, the record is taken at its word.
        assert_eq!(pending.count(&node("n1", "", 1, 1500), 1000 + JOIN_GRACE_MS), 0);
        pending.prune(100_000, 2 * TTL);
        assert_eq!(pending.len(), 0);
    }

    #[test]
    fn a_burst_spreads_even_when_records_are_rewritten_before_anyone_joins() {
        let mut pending = Pending::default();
        let mut got = Vec::new();
        for i in 0..6u64 {
            // Every node rewrites its record (no rooms joined yet) between placements.
            let now = 1000 + i * 400;
            let nodes = vec![node("n1", "", 0, now - 1), node("n2", "", 0, now - 1), node("n3", "", 0, now - 1)];
            let n = choose(&nodes, &pending, None, now, TTL).unwrap().id.clone();
            pending.record(&n, now);
            got.push(n);
        }
        assert_eq!(got, ["n1", "n2", "n3", "n1", "n2", "n3"]);
    }

    #[test]
    fn draining_full_and_stale_nodes_get_no_rooms() {
        let mut d = node("a", "", 0, 1000);
        d.draining = true;
        let mut f = node("b", "", 0, 1000);
        f.full = true;
        let stale = node("c", "", 0, 1000);
        let nodes = vec![d, f, stale.clone()];
        assert_eq!(choose(&nodes, &Pending::default(), None, 1000 + TTL + 1, TTL), Err(PlacementError::NoNode));
        assert_eq!(choose(&nodes, &Pending::default(), None, 1000, TTL).unwrap().id, "c");
        assert_eq!(choose(&[], &Pending::default(), None, 0, TTL), Err(PlacementError::NoNode));
    }

    #[test]
    fn region_is_preferred_when_it_has_a_live_node() {
        let nodes = vec![node("eu1", "eu", 5, 1000), node("us1", "us", 0, 1000)];
        assert_eq!(choose(&nodes, &Pending::default(), Some("eu"), 1000, TTL).unwrap().id, "eu1");
        assert_eq!(choose(&nodes, &Pending::default(), Some("ap"), 1000, TTL).unwrap().id, "us1");
        assert_eq!(choose(&nodes, &Pending::default(), None, 1000, TTL).unwrap().id, "us1");
    }

    #[test]
    fn routes() {
        let nodes = vec![node("a", "", 0, 0), node("b", "", 0, 0)];
        assert_eq!(route("a", "a", &nodes), Ok(Route::Local));
        assert_eq!(route("b", "a", &nodes), Ok(Route::Remote { node: "b".into(), http_url: "http://b:7880".into() }));
        assert_eq!(route("z", "a", &nodes), Err(PlacementError::UnknownOwner("z".into())));
    }

    #[test]
    fn closed_rooms_are_released_and_retried_after_a_failure() {
        let mut book = RoomBook::default();
        let p = book.plan(&["r1".into(), "r2".into()]);
        assert_eq!(p.release, Vec::<String>::new());
        book.applied(p, true);
        let p = book.plan(&["r2".into()]);
        assert_eq!(p.release, vec!["r1".to_string()]);
        book.applied(p, false); // Redis down
        let p = book.plan(&[]);
        assert_eq!(p.release, vec!["r1".to_string(), "r2".to_string()]);
        book.applied(p, true);
        assert_eq!(book.plan(&[]), RoomPlan::default());
        // A room that came back while its release was pending is asserted, not released.
        let mut book = RoomBook::default();
        book.applied(RoomPlan { assert: vec![], release: vec!["r".into()] }, false);
        assert_eq!(book.plan(&["r".into()]), RoomPlan { assert: vec!["r".into()], release: vec![] });
    }
}
