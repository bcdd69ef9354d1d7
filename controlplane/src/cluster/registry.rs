//! The registry task: every ttl/3 it writes this node's record (with the
//! TTL), re-asserts the keys of the rooms it hosts and releases those of
//! rooms that closed, then reads every node's record. After a Redis outage
//! the next refresh that succeeds puts everything back; whatever this node
//! did not re-assert expires within the TTL.

use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use tracing::{debug, info, warn};

use super::load;
use super::model::{self, NodeRecord, RoomSummary, MAX_LISTED_ROOMS};
use super::placement::{RoomBook, RoomPlan};
use super::{now_ms, Cluster};
use crate::http::AppState;

/// Renew a room key if it is ours or free. ARGV: node id, TTL seconds.
const ASSERT_LUA: &str = r"
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) return 1 end
return 0
";

/// Delete a room key only if it still names us. ARGV: node id.
const RELEASE_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Counter samples between refreshes.
struct Sampler {
    at: Instant,
    cpu_ticks: u64,
    bytes: u64,
    hz: u64,
}

pub async fn run(cluster: Cluster, state: AppState) {
    let period = (cluster.0.ttl / 3).max(Duration::from_millis(500));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut book = RoomBook::default();
    let mut sampler = Sampler { at: Instant::now(), cpu_ticks: load::read_cpu_ticks().unwrap_or(0), bytes: 0, hz: load::clock_ticks_per_sec() };
    loop {
        tick.tick().await;
        let (record, hosted) = snapshot(&cluster, &state, &mut sampler);
        let plan = book.plan(&hosted);
        let mut conn = cluster.0.redis.clone();
        let result = refresh(&cluster, &mut conn, &record, &plan).await;
        let ok = result.is_ok();
        book.applied(plan, ok);
        let was = cluster.0.healthy.swap(ok, std::sync::atomic::Ordering::Relaxed);
        match result {
            Ok(nodes) => {
                if !was {
                    info!(node = %cluster.0.id, nodes = nodes.len(), rooms = hosted.len(), "cluster: registered in Redis");
                }
                cluster.relay().close_orphans(&nodes);
                *cluster.0.nodes.lock().unwrap_or_else(|p| p.into_inner()) = nodes;
                let horizon = (2 * cluster.0.ttl.as_millis() as u64).max(super::placement::JOIN_GRACE_MS);
                cluster.0.pending.lock().unwrap_or_else(|p| p.into_inner()).prune(now_ms(), horizon);
                crate::metrics::record_cluster(true, cluster.0.nodes.lock().map(|n| n.len()).unwrap_or(0));
            }
            Err(e) => {
                if was {
                    warn!(error = %e, "cluster: Redis unreachable; serving existing rooms, refusing new placements until it returns");
                } else {
                    debug!(error = %e, "cluster: Redis still unreachable");
                }
                crate::metrics::record_cluster(false, 0);
            }
        }
    }
}

/// This node's record and hosted rooms, from the hub (lock held briefly).
fn snapshot(cluster: &Cluster, state: &AppState, s: &mut Sampler) -> (NodeRecord, Vec<String>) {
    let (rooms, sessions, bytes) = {
        let hub = state.hub.lock().unwrap_or_else(|p| p.into_inner());
        let bytes: u64 = hub.shard_stats().iter().map(|st| st.bytes_in + st.bytes_out).sum();
        (hub.rooms(), hub.session_count(), bytes)
    };
    let now = Instant::now();
    let secs = now.duration_since(s.at).as_secs_f64();
    let ticks = load::read_cpu_ticks().unwrap_or(s.cpu_ticks);
    let cpu = load::cpu_percent(s.cpu_ticks, ticks, secs, s.hz);
    crate::metrics::set_process_cpu(cpu);
    let bw = load::bandwidth_bps(s.bytes, bytes, secs);
    *s = Sampler { at: now, cpu_ticks: ticks, bytes, hz: s.hz };
    let summaries: Vec<RoomSummary> = rooms
        .iter()
        .map(|r| RoomSummary {
            name: r.name.clone(),
            participants: (r.participants.len() + usize::from(r.whip_publisher) + r.whep_viewers) as u32,
            tracks: r.tracks as u32,
        })
        .collect();
    let hosted: Vec<String> = rooms.iter().map(|r| r.name.clone()).collect();
    let c = &cluster.0;
    let record = NodeRecord {
        id: c.id.clone(),
        region: c.region.clone(),
        http_url: c.http_url.clone(),
        media: c.media.clone(),
        rooms: summaries.len() as u32,
        sessions: sessions as u32,
        participants: summaries.iter().map(|r| r.participants).sum(),
        tracks: summaries.iter().map(|r| r.tracks).sum(),
        cpu_percent: cpu,
        bandwidth_bps: bw,
        draining: state.is_draining(),
        // Within a room's worth of the caps: a new room needs headroom.
        full: sessions + 2 > c.max_sessions || rooms.len() >= c.max_rooms,
        updated_ms: now_ms(),
        room_list: summaries.into_iter().take(MAX_LISTED_ROOMS).collect(),
    };
    (record, hosted)
}

/// One pipelined round trip for the writes, then one for the reads.
async fn refresh(cluster: &Cluster, conn: &mut ConnectionManager, record: &NodeRecord, plan: &RoomPlan) -> redis::RedisResult<Vec<NodeRecord>> {
    let ttl = cluster.0.ttl.as_secs();
    let json = serde_json::to_string(record).unwrap_or_default();
    let mut pipe = redis::pipe();
    pipe.cmd("SET").arg(model::node_key(&record.id)).arg(json).arg("EX").arg(ttl).ignore();
    pipe.cmd("SADD").arg(model::NODES_SET).arg(&record.id).ignore();
    for room in &plan.assert {
        pipe.cmd("EVAL").arg(ASSERT_LUA).arg(1).arg(model::room_key(room)).arg(&record.id).arg(ttl).ignore();
    }
    for room in &plan.release {
        pipe.cmd("EVAL").arg(RELEASE_LUA).arg(1).arg(model::room_key(room)).arg(&record.id).ignore();
    }
    pipe.query_async::<()>(conn).await?;
    read_nodes(conn).await
}

/// Every live node's record; ids whose record expired leave the set.
pub async fn read_nodes(conn: &mut ConnectionManager) -> redis::RedisResult<Vec<NodeRecord>> {
    let ids: Vec<String> = redis::cmd("SMEMBERS").arg(model::NODES_SET).query_async(conn).await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = ids.iter().map(|id| model::node_key(id)).collect();
    let values: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(conn).await?;
    let mut nodes = Vec::new();
    let mut dead = Vec::new();
    for (id, v) in ids.iter().zip(values) {
        match v.and_then(|j| serde_json::from_str::<NodeRecord>(&j).ok()) {
            Some(rec) => nodes.push(rec),
            None => dead.push(id.clone()),
        }
    }
    if !dead.is_empty() {
        info!(nodes = ?dead, "cluster: nodes whose record expired leave the registry");
        redis::cmd("SREM").arg(model::NODES_SET).arg(&dead).query_async::<()>(conn).await?;
    }
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(nodes)
}
