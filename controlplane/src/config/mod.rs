//! sfud configuration: built-in defaults, an optional TOML file, and
//! `SFUD_SECTION__KEY` environment overrides, applied in that order.
//!
//! Every key has a default so `sfud` runs with no file at all. Loading is
//! strict: an unknown key or a value of the wrong type is an error that names
//! the key and says where it came from (the file, or which environment
//! variable), because a silently ignored typo in a media server's config
//! shows up much later as a mysterious connectivity problem.
//!
//! `load` only parses; `Config::validate` checks cross-field rules (ports,
//! limits, file readability). Callers run both.
//!
//! The user-facing description of every key lives in docs/configuration.md;
//! keep it in step with the structs here.
//!
//! - `mod.rs`: the schema (sections, keys, defaults) and the error type;
//! - `load.rs`: file and environment layering with per-key error reporting;
//! - `validate.rs`: rules across keys, and derived values.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod load;
mod validate;

pub use load::{env_vars, load, resolve_path};
pub use validate::{MAX_CPU_ID, MAX_RECV_BATCH, MAX_SHARDS, MIN_IO_MEMORY};

/// Read when no `--config` is given, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/sfud/sfud.toml";
/// Prefix of environment overrides: `SFUD_<SECTION>__<KEY>`.
pub const ENV_PREFIX: &str = "SFUD_";
/// Separates section from key in an override's name.
pub const ENV_SEPARATOR: &str = "__";

/// The whole configuration. Sections mirror the TOML tables.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub rtc: RtcConfig,
    pub turn: TurnConfig,
    pub dataplane: DataplaneConfig,
    pub dtls: DtlsConfig,
    pub metrics: MetricsConfig,
    pub room: RoomConfig,
    pub limits: LimitsConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub webhook: WebhookConfig,
    pub node: NodeConfig,
    pub cluster: ClusterConfig,
}

/// HTTP/WebSocket signaling: WHIP, WHEP, JSON-RPC rooms, admin API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Largest accepted request body (SDP offers are a few KiB).
    pub max_body_bytes: usize,
    /// Origins ("https://app.example.com") whose pages may call WHIP, WHEP,
    /// the admin API and the WebSocket; "*" allows any. Empty: same origin only.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 7880),
            max_body_bytes: 65536,
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// Media transport: the single UDP media port, ICE-TCP, and the addresses
/// announced in ICE candidates.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RtcConfig {
    /// Media UDP port, shared by every shard through SO_REUSEPORT.
    pub udp_port: u16,
    /// ICE-TCP port.
    pub tcp_port: u16,
    pub bind_address: IpAddr,
    /// Announced instead of the detected interface addresses (1:1 NAT, cloud
    /// VMs whose public address is not on any interface).
    pub nat_1to1: Vec<IpAddr>,
    /// Also announce 127.0.0.1, so local clients and tests connect.
    pub include_loopback: bool,
    /// Only announce addresses of these NICs; empty means every interface
    /// that is up and not loopback.
    pub interfaces: Vec<String>,
}

impl Default for RtcConfig {
    fn default() -> Self {
        Self {
            udp_port: 7882,
            tcp_port: 7881,
            bind_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            nat_1to1: Vec::new(),
            include_loopback: true,
            interfaces: Vec::new(),
        }
    }
}

/// The embedded TURN/STUN server. Off by default: a relay is an open door
/// an operator should choose to open.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TurnConfig {
    pub enabled: bool,
    pub udp_port: u16,
    /// TURN over TCP; usually the same number as `udp_port`.
    pub tcp_port: u16,
    /// TURN over TLS; 0 disables it. Needs `tls_cert_file` and `tls_key_file`.
    pub tls_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
    pub realm: String,
    /// First UDP port handed out for relay allocations.
    pub relay_port_min: u16,
    /// Last UDP port handed out for relay allocations (inclusive).
    pub relay_port_max: u16,
    /// Address relays bind and announce; unset = the first announced media address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_address: Option<IpAddr>,
    /// Long-term credentials: username -> password.
    pub static_users: BTreeMap<String, String>,
    /// TURN REST API shared secret (coturn's `use-auth-secret`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_secret: Option<String>,
    /// Lifetime of the credentials signaling hands out.
    pub credential_ttl_secs: u64,
    pub max_allocations_per_user: u32,
    /// Relay bandwidth cap per allocation, bits per second; 0 = no cap.
    pub max_relay_bps: u64,
    /// Test-only: allow relaying to loopback/private/link-local peers.
    pub allow_private_peers: bool,
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            udp_port: 3478,
            tcp_port: 3478,
            tls_port: 0,
            tls_cert_file: None,
            tls_key_file: None,
            realm: "sfud".to_string(),
            relay_port_min: 30000,
            relay_port_max: 40000,
            relay_address: None,
            static_users: BTreeMap::new(),
            shared_secret: None,
            credential_ttl_secs: 86400,
            max_allocations_per_user: 10,
            max_relay_bps: 10_000_000,
            allow_private_peers: false,
        }
    }
}

/// The sharded media plane.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DataplaneConfig {
    /// Number of shards; 0 means one per CPU this process may run on.
    pub shards: usize,
    /// Explicit CPU ids to pin shards to, overriding the topology choice.
    pub cores: Vec<usize>,
    /// Bytes of io_uring registered memory per shard (glommio `io_memory`);
    /// it is locked memory, so it counts against RLIMIT_MEMLOCK.
    pub io_memory: usize,
    /// Datagrams read per receive syscall.
    pub recv_batch: usize,
    /// SO_RCVBUF/SO_SNDBUF of the media sockets, in bytes.
    pub socket_buffer: usize,
    /// Spin instead of sleeping when idle: lower latency, a full core each.
    pub busy_poll: bool,
    /// Test-only: honour `?shard=N` on WHIP/WHEP to place a session.
    pub allow_placement_hint: bool,
    /// Test-only: `POST /api/v1/test/shards/{n}/panic` makes shard n panic,
    /// and `POST /api/v1/test/controlplane/panic` the controlplane's timer
    /// task, to test that a failure is contained (docs/security.md).
    pub test_hooks: bool,
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        Self {
            shards: 0,
            cores: Vec::new(),
            io_memory: 1_048_576,
            recv_batch: 32,
            socket_buffer: 4_194_304,
            busy_poll: false,
            allow_placement_hint: false,
            test_hooks: false,
        }
    }
}

/// DTLS certificate. Both files or neither; with neither a fresh ECDSA
/// P-256 certificate is generated at start.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DtlsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

/// Prometheus exporter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
    pub enabled: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 6789),
            enabled: true,
        }
    }
}

/// Per-room limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RoomConfig {
    pub max_participants: usize,
    pub max_tracks_per_participant: usize,
    /// Close a room this many seconds after its last participant left;
    /// 0 closes it at once.
    pub empty_timeout_secs: u64,
    /// WHEP viewers of a room whose WHIP publisher left stay connected this
    /// long, and follow a new publisher that arrives meanwhile; 0 ends
    /// them with the publisher.
    pub publisher_grace_secs: u64,
    /// Active speaker detection (ion-sfu's `audiolevelinterval`): levels
    /// are measured over this many milliseconds, and the room's speakers
    /// recomputed (and sent if changed) after each interval.
    pub audio_level_interval_ms: u64,
    /// ion-sfu's `audiolevelthreshold`: a packet whose RFC 6464 level is at
    /// or under this (-dBov, 0 loudest, 127 silence) is speech.
    pub audio_level_threshold: u8,
    /// ion-sfu's `audiolevelfilter`: a stream speaks when at least this
    /// percentage of an interval's packets (at 20 ms each) were speech.
    pub audio_level_filter: u8,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            max_participants: 100,
            max_tracks_per_participant: 8,
            empty_timeout_secs: 0,
            publisher_grace_secs: 10,
            audio_level_interval_ms: 1000,
            audio_level_threshold: 40,
            audio_level_filter: 20,
        }
    }
}

/// Bounds on everything a client can make sfud hold: sessions, rooms,
/// connections, buffers and time. Each refusal is counted in
/// `sfud_limit_refusals_total{limit=...}`; docs/security.md explains them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// A session that has not completed ICE and DTLS by then is removed.
    pub connect_timeout_secs: u64,
    /// WebRTC sessions on this node (a room participant holds two).
    pub max_sessions: usize,
    pub max_rooms: usize,
    /// Rooms one namespace (tenant) may hold on this node; the default
    /// namespace counts as one too. 0 = only `max_rooms` applies.
    pub max_rooms_per_namespace: usize,
    /// Sessions one namespace may hold on this node. 0 = only
    /// `max_sessions` applies.
    pub max_sessions_per_namespace: usize,
    /// Publishing sessions per room: the WHIP publisher and room participants.
    pub max_publishers_per_room: usize,
    /// Receiving sessions per room: WHEP viewers and room participants.
    pub max_subscribers_per_room: usize,
    /// Sessions one token identity may hold at once (only with auth on).
    pub max_sessions_per_identity: usize,
    /// Sessions not yet connected, per client IP address.
    pub max_pending_per_address: usize,
    /// Open HTTP/WebSocket connections; past it new ones get a 503.
    pub http_max_connections: usize,
    /// Time a client has to send a complete request head.
    pub http_header_timeout_secs: u64,
    /// Largest WebSocket message (and frame) accepted.
    pub ws_max_message_bytes: usize,
    /// A WebSocket from which nothing (not even a pong) arrives for this
    /// long is closed; sfud pings at a third of it.
    pub ws_idle_timeout_secs: u64,
    /// Open ICE-TCP connections per shard.
    pub ice_tcp_max_connections: usize,
    /// Time a new ICE-TCP connection has to send its first complete frame.
    pub ice_tcp_first_frame_timeout_secs: u64,
    /// TURN allocations per client IP address.
    pub turn_max_allocations_per_address: u32,
    /// A TURN/TCP (or TLS) connection with no frame for this long is closed.
    pub turn_tcp_idle_timeout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            connect_timeout_secs: 30,
            max_sessions: 5000,
            max_rooms: 1000,
            max_rooms_per_namespace: 0,
            max_sessions_per_namespace: 0,
            max_publishers_per_room: 100,
            max_subscribers_per_room: 1000,
            max_sessions_per_identity: 16,
            max_pending_per_address: 64,
            http_max_connections: 1024,
            http_header_timeout_secs: 10,
            ws_max_message_bytes: 262_144,
            ws_idle_timeout_secs: 60,
            ice_tcp_max_connections: 1024,
            ice_tcp_first_frame_timeout_secs: 10,
            turn_max_allocations_per_address: 32,
            turn_tcp_idle_timeout_secs: 120,
        }
    }
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// tracing `EnvFilter` syntax, e.g. `info` or `info,dataplane=debug`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_string(),
            format: "text".to_string(),
        }
    }
}

/// Access tokens (JWT HS256), as LiveKit issues them. With no keys sfud
/// runs open and says so once at start.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// API key -> secret.
    pub keys: BTreeMap<String, String>,
}

/// Webhooks: room and participant events POSTed as signed JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    pub urls: Vec<String>,
    /// Which `auth.keys` entry signs the requests; unset = the first key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    pub timeout_ms: u64,
    pub max_attempts: u32,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            api_key: None,
            timeout_ms: 5000,
            max_attempts: 5,
        }
    }
}

/// This node's lifecycle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// On SIGTERM, how long live sessions may continue before sfud exits.
    pub drain_timeout_secs: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self { drain_timeout_secs: 30 }
    }
}

/// Several nodes as one service, coordinated through Redis (docs/cluster.md).
/// Off by default: then sfud never contacts Redis and runs alone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    pub enabled: bool,
    /// `redis://host:port/db`, `rediss://` for TLS, or `unix:///path`.
    pub redis_url: String,
    /// PEM file of the CA(s) that sign the Redis server's certificate, for
    /// `rediss://` with a private CA; empty = the system's trust store.
    pub redis_ca_file: String,
    /// This node's id in the registry; empty = the hostname.
    pub node_id: String,
    /// Placement prefers nodes of the client's region; empty = no region.
    pub region: String,
    /// Where clients of other nodes are sent (`http://host:port`, no path);
    /// empty = `http://<http.listen>`, which must then not be a wildcard.
    pub public_http_url: String,
    /// Lifetime of this node's registry entry and of its rooms' entries;
    /// they are refreshed every third of it, so a dead node is gone after it.
    pub ttl_secs: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            redis_url: "redis://127.0.0.1:6379".to_string(),
            redis_ca_file: String::new(),
            node_id: String::new(),
            region: String::new(),
            public_http_url: String::new(),
            ttl_secs: 10,
        }
    }
}

/// Where a value came from, so an error can point the operator at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "in file {}", p.display()),
            Origin::Env(var) => write!(f, "from environment variable {var}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {}: not found", path.display())]
    NotFound { path: PathBuf },
    #[error("config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {}: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("unknown key {key} ({origin})")]
    UnknownKey { key: String, origin: Origin },
    #[error("{key}: {message} ({origin})")]
    InvalidValue {
        key: String,
        message: String,
        origin: Origin,
    },
    #[error("environment variable {var}: {message}")]
    BadEnvVar { var: String, message: String },
    /// A value that parsed but breaks a rule checked by `Config::validate`.
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    /// The dotted key (`section.key`) the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. }
            | ConfigError::InvalidValue { key, .. }
            | ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}
