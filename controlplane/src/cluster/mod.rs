//! Many nodes as one service, coordinated through Redis (docs/cluster.md):
//! a node registry with TTLs, room placement by load and region, WHIP/WHEP
//! redirects to a room's node, and relayed JSON-RPC for ion clients.
//!
//! The decisions are sans-IO (`placement`, `load`); `registry` and `relay`
//! are the thin Redis I/O. With `cluster.enabled = false` none of this is
//! built and Redis is never contacted.

pub mod load;
pub mod model;
pub mod placement;
mod registry;
pub mod relay;
pub mod dashboard;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tracing::info;

use crate::config::{ClusterConfig, Config};
use model::NodeRecord;
pub use model::{qualify, valid_namespace};
use placement::{Pending, PlacementError, Route};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Redis did not answer: existing rooms go on, new ones cannot be placed.
    #[error("cluster coordination (Redis) is unreachable, so no new room can be placed now; rooms already running are not affected; retry shortly ({0})")]
    Unavailable(String),
    #[error("cannot place the room: {0}")]
    Placement(#[from] PlacementError),
}

impl From<redis::RedisError> for ClusterError {
    fn from(e: redis::RedisError) -> Self {
        ClusterError::Unavailable(e.to_string())
    }
}

/// Wall-clock milliseconds: records from several hosts are compared by it.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its length; gethostname NUL-terminates
    // within it on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "sfud".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name: String = String::from_utf8_lossy(&buf[..end]).chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect();
    if name.is_empty() { "sfud".to_string() } else { name }
}

/// The cluster handle: cheap to clone, shared by the HTTP handlers, the
/// registry task and the relay.
#[derive(Clone)]
pub struct Cluster(Arc<Inner>);

struct Inner {
    id: String,
    region: String,
    http_url: String,
    media: Vec<String>,
    ttl: Duration,
    max_sessions: usize,
    max_rooms: usize,
    redis: ConnectionManager,
    client: redis::Client,
    /// The registry as last read (refreshed every ttl/3).
    nodes: Mutex<Vec<NodeRecord>>,
    pending: Mutex<Pending>,
    /// The last refresh reached Redis.
    healthy: AtomicBool,
    relay: relay::Relay,
}

/// Atomic first placement: keep a room's owner while its node is alive,
/// otherwise (no owner, or its node's record expired) take the candidate.
/// KEYS[1] room key; ARGV: candidate id, TTL seconds, node key prefix.
/// Returns nil when the candidate's own record has expired (our cached
/// registry was stale): the caller re-reads the registry and tries again.
const PLACE_LUA: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur and redis.call('EXISTS', ARGV[3] .. cur) == 1 then return cur end
if redis.call('EXISTS', ARGV[3] .. ARGV[1]) == 0 then return false end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
";

impl Cluster {
    /// Builds the handle; connects lazily, so a Redis that is down at start
    /// only delays registration.
    pub fn new(cfg: &Config, media: &[std::net::SocketAddr]) -> anyhow::Result<Cluster> {
        let c: &ClusterConfig = &cfg.cluster;
        let client = if c.redis_ca_file.is_empty() {
            redis::Client::open(c.redis_url.as_str()).context("cluster.redis_url")?
        } else {
            let root = std::fs::read(&c.redis_ca_file).with_context(|| format!("cluster.redis_ca_file {}", c.redis_ca_file))?;
            let certs = redis::TlsCertificates { client_tls: None, root_cert: Some(root) };
            redis::Client::build_with_tls(c.redis_url.as_str(), certs).context("cluster.redis_url with cluster.redis_ca_file")?
        };
        // Short timeouts: a join waits on placement, and an unreachable Redis
        // must turn into a clear refusal quickly, not a hung request.
        let mgr_cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(1000)))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let redis = ConnectionManager::new_lazy_with_config(client.clone(), mgr_cfg).context("cluster: Redis connection manager")?;
        let id = if c.node_id.is_empty() { hostname() } else { c.node_id.clone() };
        let http_url = if c.public_http_url.is_empty() {
            format!("http://{}", cfg.http.listen)
        } else {
            c.public_http_url.trim_end_matches('/').to_string()
        };
        info!(node = %id, region = %c.region, %http_url, redis = %without_password(&c.redis_url), "cluster mode on");
        Ok(Cluster(Arc::new(Inner {
            relay: relay::Relay::new(&id),
            id,
            region: c.region.clone(),
            http_url,
            media: media.iter().map(|a| a.to_string()).collect(),
            ttl: Duration::from_secs(c.ttl_secs),
            max_sessions: cfg.limits.max_sessions,
            max_rooms: cfg.limits.max_rooms,
            redis,
            client,
            nodes: Mutex::new(Vec::new()),
            pending: Mutex::new(Pending::default()),
            healthy: AtomicBool::new(false),
        })))
    }

    pub fn node_id(&self) -> &str {
        &self.0.id
    }

    pub fn region(&self) -> &str {
        &self.0.region
    }

    pub fn is_healthy(&self) -> bool {
        self.0.healthy.load(Ordering::Relaxed)
    }

    /// The registry as last read.
    pub fn nodes(&self) -> Vec<NodeRecord> {
        self.0.nodes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn relay(&self) -> &relay::Relay {
        &self.0.relay
    }

    /// Starts the registry refresh and the relay listener.
    pub fn spawn(&self, state: crate::http::AppState) {
        tokio::spawn(registry::run(self.clone(), state.clone()));
        tokio::spawn(relay::listen(self.clone(), state));
    }

    /// Where the first join of a room not hosted here must go: placed now
    /// (atomically, so racing joins on other nodes agree) or already placed.
    /// `region` is the client's, when known; else this node's.
    pub async fn place(&self, qualified_room: &str, region: Option<&str>) -> Result<Route, ClusterError> {
        let region = region.filter(|r| !r.is_empty()).unwrap_or(&self.0.region).to_string();
        let mut conn = self.0.redis.clone();
        let mut owner = self.try_place(&mut conn, qualified_room, &region).await?;
        if owner.is_none() {
            // The cache named a node that has died since: read the registry again.
            self.reload_nodes(&mut conn).await?;
            owner = self.try_place(&mut conn, qualified_room, &region).await?;
        }
        let owner = owner.ok_or(PlacementError::NoNode)?;
        let nodes = self.nodes();
        match placement::route(&owner, &self.0.id, &nodes) {
            Err(PlacementError::UnknownOwner(_)) => {
                // A node that registered since our last read.
                let nodes = self.reload_nodes(&mut conn).await?;
                Ok(placement::route(&owner, &self.0.id, &nodes)?)
            }
            other => Ok(other?),
        }
    }

    async fn reload_nodes(&self, conn: &mut ConnectionManager) -> Result<Vec<NodeRecord>, ClusterError> {
        let nodes = registry::read_nodes(conn).await?;
        *self.0.nodes.lock().unwrap_or_else(|p| p.into_inner()) = nodes.clone();
        Ok(nodes)
    }

    /// One atomic placement attempt: the room's live owner, or the chosen
    /// candidate, or None when the candidate turned out to be dead.
    async fn try_place(&self, conn: &mut ConnectionManager, room: &str, region: &str) -> Result<Option<String>, ClusterError> {
        let now = now_ms();
        let ttl_ms = self.0.ttl.as_millis() as u64;
        let candidate = {
            let nodes = self.0.nodes.lock().unwrap_or_else(|p| p.into_inner());
            let pending = self.0.pending.lock().unwrap_or_else(|p| p.into_inner());
            placement::choose(&nodes, &pending, Some(region), now, ttl_ms).map(|n| n.id.clone())
        };
        let Ok(candidate) = candidate else {
            // No eligible node in the cache: only an existing live owner will do.
            let cur: Option<String> = redis::cmd("GET").arg(model::room_key(room)).query_async(conn).await?;
            return Ok(cur);
        };
        let owner: Option<String> = redis::Script::new(PLACE_LUA)
            .key(model::room_key(room))
            .arg(&candidate)
            .arg(self.0.ttl.as_secs())
            .arg(model::NODE_KEY_PREFIX)
            .invoke_async(conn)
            .await?;
        if owner.as_deref() == Some(candidate.as_str()) {
            self.0.pending.lock().unwrap_or_else(|p| p.into_inner()).record(&candidate, now);
            tracing::debug!(room, node = %candidate, "room placed");
        }
        Ok(owner)
    }
}

/// WHIP/WHEP: where a POST for `room` must go instead of here, if anywhere.
/// `None` when cluster mode is off or this node hosts (or just got) the
/// room. The client's region may come in an `X-Sfud-Region` header.
pub async fn redirect_for(
    st: &crate::http::AppState,
    room: &str,
    headers: &axum::http::HeaderMap,
    uri: &axum::http::Uri,
) -> Result<Option<String>, ClusterError> {
    let Some(cluster) = &st.cluster else { return Ok(None) };
    if st.hub.lock().unwrap_or_else(|p| p.into_inner()).has_room(room) {
        return Ok(None);
    }
    let region = headers.get("x-sfud-region").and_then(|v| v.to_str().ok());
    match cluster.place(room, region).await {
        Ok(Route::Local) => {
            crate::metrics::record_placement("local");
            Ok(None)
        }
        Ok(Route::Remote { http_url, .. }) => {
            crate::metrics::record_placement("redirect");
            let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
            Ok(Some(format!("{http_url}{path}")))
        }
        Err(e) => {
            crate::metrics::record_placement(if matches!(e, ClusterError::Unavailable(_)) { "unavailable" } else { "no_node" });
            tracing::warn!(room, error = %e, "room not placed");
            Err(e)
        }
    }
}

/// `redis_url` for logs: a password in it (`redis://:secret@host`) is masked.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod url_tests {
    use super::without_password;

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(without_password("redis://:s3cret@10.0.0.5:6379/0"), "redis://:***@10.0.0.5:6379/0");
        assert_eq!(without_password("rediss://sfud:s3cret@redis.internal:6380"), "rediss://sfud:***@redis.internal:6380");
        assert_eq!(without_password("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(without_password("unix:///run/redis.sock"), "unix:///run/redis.sock");
    }
}
