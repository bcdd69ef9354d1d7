//! Rules across keys that types alone cannot express, and values derived
//! from several keys.

use super::{Config, ConfigError};

/// Largest shard count accepted; also bounds `dataplane.cores`.
pub const MAX_SHARDS: usize = 256;
/// CPU ids must fit a `cpu_set_t`.
pub const MAX_CPU_ID: usize = 1023;
/// glommio refuses smaller registered buffers to be useful; 64 KiB is the floor.
pub const MIN_IO_MEMORY: usize = 65536;
pub const MAX_RECV_BATCH: usize = 1024;

fn invalid(key: &str, message: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    })
}

impl Config {
    /// Cross-field and range checks that types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_http()?;
        self.validate_rtc()?;
        self.validate_turn()?;
        self.validate_dataplane()?;
        self.validate_dtls()?;
        self.validate_room()?;
        self.validate_limits()?;
        self.validate_log()?;
        self.validate_ports()?;
        self.validate_cluster()?;
        self.validate_turn_server()
    }

    /// The TURN server's own cross-checks (relay range against every port,
    /// TLS files, a credential source), after the per-key checks so those
    /// name their keys first.
    fn validate_turn_server(&self) -> Result<(), ConfigError> {
        if !self.turn.enabled {
            return Ok(());
        }
        let media = [std::net::SocketAddr::new(self.rtc.bind_address, self.rtc.udp_port)];
        match crate::turn::check_config(&self.turn, &media) {
            Ok(()) => Ok(()),
            Err(e) => {
                let text = e.to_string();
                // Its messages lead with the key they are about.
                let key = text
                    .split(|c: char| c.is_whitespace() || c == ':' || c == '(')
                    .find(|w| w.starts_with("turn."))
                    .unwrap_or("turn")
                    .to_string();
                invalid(&key, text)
            }
        }
    }

    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let c = &self.cluster;
        if !c.enabled {
            return Ok(());
        }
        if !["redis://", "rediss://", "redis+unix://", "unix://"].iter().any(|p| c.redis_url.starts_with(p)) {
            return invalid("cluster.redis_url", format!("{:?} is not a redis://, rediss:// (TLS) or unix:// URL", c.redis_url));
        }
        if !c.redis_ca_file.is_empty() && !c.redis_url.starts_with("rediss://") {
            return invalid("cluster.redis_ca_file", "is only used with a rediss:// (TLS) redis_url".to_string());
        }
        if !(3..=3600).contains(&c.ttl_secs) {
            return invalid("cluster.ttl_secs", format!("must be 3..=3600, got {}", c.ttl_secs));
        }
        if !c.node_id.is_empty() && !c.node_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return invalid("cluster.node_id", format!("{:?}: use A-Z, a-z, 0-9, '-', '_' or '.'", c.node_id));
        }
        if c.public_http_url.is_empty() {
            if self.http.listen.ip().is_unspecified() {
                return invalid(
                    "cluster.public_http_url",
                    format!("must be set when http.listen ({}) is a wildcard: other nodes redirect clients there", self.http.listen),
                );
            }
        } else if !(c.public_http_url.starts_with("http://") || c.public_http_url.starts_with("https://"))
            || c.public_http_url.trim_end_matches('/').matches('/').count() > 2
        {
            return invalid("cluster.public_http_url", format!("{:?}: write scheme://host[:port], no path", c.public_http_url));
        }
        Ok(())
    }

    fn validate_http(&self) -> Result<(), ConfigError> {
        if self.http.max_body_bytes < 1024 {
            return invalid(
                "http.max_body_bytes",
                format!("must be at least 1024, got {}", self.http.max_body_bytes),
            );
        }
        for origin in &self.http.cors_allowed_origins {
            if crate::http::normalize_origin(origin).is_none() {
                return invalid(
                    "http.cors_allowed_origins",
                    format!("{origin:?} is not an origin: write scheme://host[:port] (no path), or \"*\""),
                );
            }
        }
        Ok(())
    }

    fn validate_rtc(&self) -> Result<(), ConfigError> {
        for ip in &self.rtc.nat_1to1 {
            if ip.is_unspecified() || ip.is_multicast() {
                return invalid(
                    "rtc.nat_1to1",
                    format!("{ip} cannot be announced to clients"),
                );
            }
        }
        for name in &self.rtc.interfaces {
            // IFNAMSIZ is 16 including the NUL; names also become sysfs paths.
            let ok = !name.is_empty()
                && name.len() < 16
                && name != "."
                && name != ".."
                && !name.contains(['/', '\0'])
                && !name.chars().any(char::is_whitespace);
            if !ok {
                return invalid(
                    "rtc.interfaces",
                    format!("{name:?} is not a valid interface name"),
                );
            }
        }
        Ok(())
    }

    fn validate_turn(&self) -> Result<(), ConfigError> {
        let t = &self.turn;
        if !t.enabled {
            return Ok(());
        }

        if t.realm.is_empty() {
            return invalid("turn.realm", "must not be empty");
        }
        if t.relay_port_min == 0 || t.relay_port_min > t.relay_port_max {
            return invalid(
                "turn.relay_port_min",
                format!(
                    "relay port range {}..={} is empty or starts at 0",
                    t.relay_port_min, t.relay_port_max
                ),
            );
        }
        Ok(())
    }

    fn validate_dataplane(&self) -> Result<(), ConfigError> {
        let d = &self.dataplane;
        if d.shards > MAX_SHARDS {
            return invalid(
                "dataplane.shards",
                format!("must be at most {MAX_SHARDS}, got {}", d.shards),
            );
        }
        if d.cores.len() > MAX_SHARDS {
            return invalid(
                "dataplane.cores",
                format!("lists {} CPUs, at most {MAX_SHARDS} allowed", d.cores.len()),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for &cpu in &d.cores {
            if cpu > MAX_CPU_ID {
                return invalid(
                    "dataplane.cores",
                    format!("CPU id {cpu} is above {MAX_CPU_ID}"),
                );
            }
            if !seen.insert(cpu) {
                return invalid("dataplane.cores", format!("CPU {cpu} is listed twice"));
            }
        }
        if !d.cores.is_empty() && d.shards != 0 && d.shards != d.cores.len() {
            return invalid(
                "dataplane.cores",
                format!(
                    "lists {} CPUs but dataplane.shards is {}; set shards to 0 or to the number of cores",
                    d.cores.len(),
                    d.shards
                ),
            );
        }
        if d.io_memory < MIN_IO_MEMORY {
            return invalid(
                "dataplane.io_memory",
                format!("must be at least {MIN_IO_MEMORY}, got {}", d.io_memory),
            );
        }
        if !(1..=MAX_RECV_BATCH).contains(&d.recv_batch) {
            return invalid(
                "dataplane.recv_batch",
                format!("must be in 1..={MAX_RECV_BATCH}, got {}", d.recv_batch),
            );
        }
        // setsockopt takes a C int.
        if d.socket_buffer < 4096 || d.socket_buffer > i32::MAX as usize {
            return invalid(
                "dataplane.socket_buffer",
                format!("must be in 4096..={}, got {}", i32::MAX, d.socket_buffer),
            );
        }
        Ok(())
    }

    fn validate_dtls(&self) -> Result<(), ConfigError> {
        match (&self.dtls.cert_file, &self.dtls.key_file) {
            (None, None) => Ok(()),
            (Some(_), None) => invalid("dtls.key_file", "must be set when dtls.cert_file is"),
            (None, Some(_)) => invalid("dtls.cert_file", "must be set when dtls.key_file is"),
            (Some(cert), Some(key)) => {
                for (name, path) in [("dtls.cert_file", cert), ("dtls.key_file", key)] {
                    if let Err(e) = std::fs::File::open(path) {
                        return invalid(name, format!("cannot read {}: {e}", path.display()));
                    }
                }
                Ok(())
            }
        }
    }

    fn validate_room(&self) -> Result<(), ConfigError> {
        if self.room.max_participants == 0 {
            return invalid("room.max_participants", "must be at least 1");
        }
        if self.room.max_tracks_per_participant == 0 {
            return invalid("room.max_tracks_per_participant", "must be at least 1");
        }
        if !(20..=60_000).contains(&self.room.audio_level_interval_ms) {
            return invalid("room.audio_level_interval_ms", "must be 20..=60000 (one Opus packet to a minute)");
        }
        if self.room.audio_level_threshold > 127 {
            return invalid("room.audio_level_threshold", "must be 0..=127 (-dBov, RFC 6464)");
        }
        if self.room.audio_level_filter > 100 {
            return invalid("room.audio_level_filter", "must be 0..=100 (a percentage)");
        }
        Ok(())
    }

    /// A zero limit would refuse everything; a zero time would reap or close
    /// everything at once. Neither is a way to turn a limit off.
    fn validate_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let at_least_one = [
            ("limits.connect_timeout_secs", l.connect_timeout_secs as usize),
            ("limits.max_sessions", l.max_sessions),
            ("limits.max_rooms", l.max_rooms),
            ("limits.max_publishers_per_room", l.max_publishers_per_room),
            ("limits.max_subscribers_per_room", l.max_subscribers_per_room),
            ("limits.max_sessions_per_identity", l.max_sessions_per_identity),
            ("limits.max_pending_per_address", l.max_pending_per_address),
            ("limits.http_max_connections", l.http_max_connections),
            ("limits.http_header_timeout_secs", l.http_header_timeout_secs as usize),
            ("limits.ws_idle_timeout_secs", l.ws_idle_timeout_secs as usize),
            ("limits.ice_tcp_max_connections", l.ice_tcp_max_connections),
            ("limits.ice_tcp_first_frame_timeout_secs", l.ice_tcp_first_frame_timeout_secs as usize),
            ("limits.turn_max_allocations_per_address", l.turn_max_allocations_per_address as usize),
            ("limits.turn_tcp_idle_timeout_secs", l.turn_tcp_idle_timeout_secs as usize),
        ];
        for (key, v) in at_least_one {
            if v == 0 {
                return invalid(key, "must be at least 1");
            }
        }
        if l.ws_max_message_bytes < self.http.max_body_bytes {
            return invalid(
                "limits.ws_max_message_bytes",
                format!("must be at least http.max_body_bytes ({}): a JSON-RPC offer carries an SDP", self.http.max_body_bytes),
            );
        }
        Ok(())
    }

    fn validate_log(&self) -> Result<(), ConfigError> {
        let level = self.log.level.trim();
        if level.is_empty() {
            return invalid("log.level", "must not be empty (e.g. \"info\")");
        }
        // Characters EnvFilter directives use: targets, spans, fields, levels.
        let plausible = |c: char| c.is_ascii_alphanumeric() || "_:=,.-[]{}\"*/ ".contains(c);
        if let Some(bad) = level.chars().find(|&c| !plausible(c)) {
            return invalid(
                "log.level",
                format!(
                    "{:?} is not a tracing filter (unexpected {bad:?})",
                    self.log.level
                ),
            );
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return invalid(
                "log.format",
                format!("must be \"text\" or \"json\", got {:?}", self.log.format),
            );
        }
        Ok(())
    }

    /// Every enabled listening port non-zero and distinct from the others, so
    /// a collision is reported here by name rather than as EADDRINUSE later.
    fn validate_ports(&self) -> Result<(), ConfigError> {
        let mut ports: Vec<(&str, u16)> = vec![
            ("http.listen", self.http.listen.port()),
            ("rtc.tcp_port", self.rtc.tcp_port),
            ("rtc.udp_port", self.rtc.udp_port),
        ];
        if self.metrics.enabled {
            ports.push(("metrics.listen", self.metrics.listen.port()));
        }
        if self.turn.enabled {
            ports.push(("turn.udp_port", self.turn.udp_port));
        }
        for (i, &(key, port)) in ports.iter().enumerate() {
            if port == 0 {
                return invalid(key, "port must not be 0");
            }
            if let Some((other, _)) = ports[..i].iter().find(|(_, p)| *p == port) {
                return invalid(key, format!("port {port} is also used by {other}"));
            }
            if self.turn.enabled
                && (self.turn.relay_port_min..=self.turn.relay_port_max).contains(&port)
            {
                return invalid(
                    "turn.relay_port_min",
                    format!("relay port range includes port {port} of {key}"),
                );
            }
        }
        Ok(())
    }

    /// The configuration as TOML, in the same shape the file takes.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }

    /// Number of shards to start: `dataplane.shards`, else the length of
    /// `dataplane.cores`, else `available` (the CPUs this process may use),
    /// and at least 1.
    pub fn shard_count(&self, available: usize) -> usize {
        let d = &self.dataplane;
        let n = if d.shards != 0 {
            d.shards
        } else if !d.cores.is_empty() {
            d.cores.len()
        } else {
            available
        };
        n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_key(mutate: impl FnOnce(&mut Config)) -> String {
        let mut c = Config::default();
        mutate(&mut c);
        c.validate().unwrap_err().key().unwrap().to_string()
    }

    #[test]
    fn cluster_urls_and_the_redis_ca() {
        let cluster = |c: &mut Config, url: &str, ca: &str| {
            c.cluster.enabled = true;
            c.cluster.public_http_url = "http://10.0.0.1:7880".into();
            c.cluster.redis_url = url.into();
            c.cluster.redis_ca_file = ca.into();
        };
        assert_eq!(invalid_key(|c| cluster(c, "http://redis:6379", "")), "cluster.redis_url");
        assert_eq!(invalid_key(|c| cluster(c, "redis://redis:6379", "/etc/sfud/ca.pem")), "cluster.redis_ca_file");
        for url in ["redis://redis:6379", "rediss://redis:6380", "unix:///run/redis.sock"] {
            let mut c = Config::default();
            cluster(&mut c, url, "");
            assert!(c.validate().is_ok(), "{url}");
        }
        let mut c = Config::default();
        cluster(&mut c, "rediss://redis:6380", "/etc/sfud/redis-ca.pem");
        assert!(c.validate().is_ok());
    }

    #[test]
    fn validate_names_keys() {
        assert_eq!(
            invalid_key(|c| c.dataplane.shards = 257),
            "dataplane.shards"
        );
        assert_eq!(
            invalid_key(|c| c.dataplane.io_memory = 1000),
            "dataplane.io_memory"
        );
        assert_eq!(
            invalid_key(|c| c.dataplane.recv_batch = 0),
            "dataplane.recv_batch"
        );
        assert_eq!(
            invalid_key(|c| c.dataplane.recv_batch = 1025),
            "dataplane.recv_batch"
        );
        assert_eq!(
            invalid_key(|c| c.dataplane.cores = vec![1, 1]),
            "dataplane.cores"
        );
        assert_eq!(
            invalid_key(|c| {
                c.dataplane.cores = vec![0, 1];
                c.dataplane.shards = 3
            }),
            "dataplane.cores"
        );
        assert_eq!(invalid_key(|c| c.rtc.udp_port = 0), "rtc.udp_port");
        assert_eq!(invalid_key(|c| c.rtc.tcp_port = 7880), "rtc.tcp_port");
        assert_eq!(invalid_key(|c| c.rtc.udp_port = 7881), "rtc.udp_port");
        assert_eq!(
            invalid_key(|c| c.metrics.listen = "0.0.0.0:7880".parse().unwrap()),
            "metrics.listen"
        );
        assert_eq!(invalid_key(|c| c.http.listen.set_port(0)), "http.listen");
        assert_eq!(
            invalid_key(|c| c.dtls.cert_file = Some("/x".into())),
            "dtls.key_file"
        );
        assert_eq!(
            invalid_key(|c| {
                c.dtls.cert_file = Some("/nonexistent/c".into());
                c.dtls.key_file = Some("/nonexistent/k".into());
            }),
            "dtls.cert_file"
        );
        assert_eq!(invalid_key(|c| c.log.level = String::new()), "log.level");
        assert_eq!(invalid_key(|c| c.log.level = "info;rm".into()), "log.level");
        assert_eq!(invalid_key(|c| c.log.format = "xml".into()), "log.format");
        assert_eq!(
            invalid_key(|c| c.room.max_participants = 0),
            "room.max_participants"
        );
        assert_eq!(invalid_key(|c| c.room.audio_level_interval_ms = 5), "room.audio_level_interval_ms");
        assert_eq!(invalid_key(|c| c.room.audio_level_threshold = 128), "room.audio_level_threshold");
        assert_eq!(invalid_key(|c| c.room.audio_level_filter = 101), "room.audio_level_filter");
        assert_eq!(invalid_key(|c| c.limits.max_sessions = 0), "limits.max_sessions");
        assert_eq!(invalid_key(|c| c.limits.connect_timeout_secs = 0), "limits.connect_timeout_secs");
        assert_eq!(invalid_key(|c| c.limits.ws_max_message_bytes = 1024), "limits.ws_max_message_bytes");
        assert_eq!(
            invalid_key(|c| c.rtc.nat_1to1 = vec!["0.0.0.0".parse().unwrap()]),
            "rtc.nat_1to1"
        );
        assert_eq!(
            invalid_key(|c| c.rtc.interfaces = vec!["../x".into()]),
            "rtc.interfaces"
        );
        assert_eq!(
            invalid_key(|c| {
                c.turn.enabled = true;
                c.turn.udp_port = 7882
            }),
            "turn.udp_port"
        );
        assert_eq!(
            invalid_key(|c| {
                c.turn.enabled = true;
                c.turn.relay_port_min = 7000;
                c.turn.relay_port_max = 8000
            }),
            "turn.relay_port_min"
        );
        assert_eq!(
            invalid_key(|c| {
                c.turn.enabled = true;
                c.turn.tls_port = 5349
            }),
            "turn.tls_port"
        );
    }

    #[test]
    fn validate_accepts_reasonable_settings() {
        let mut c = Config::default();
        c.metrics.enabled = false;
        c.metrics.listen.set_port(7880); // disabled, so no clash
        c.turn.enabled = true;
        c.turn.shared_secret = Some("a-shared-secret-for-turn-rest".into());
        c.dataplane.cores = vec![0, 1];
        c.log.level = "info,dataplane::shard=debug,[span{id=1}]=trace".into();
        c.validate().unwrap();
    }

    #[test]
    fn shard_count_rules() {
        let mut c = Config::default();
        assert_eq!(c.shard_count(4), 4);
        assert_eq!(c.shard_count(0), 1);
        c.dataplane.cores = vec![2, 3];
        assert_eq!(c.shard_count(8), 2);
        c.dataplane.shards = 3;
        assert_eq!(c.shard_count(8), 3);
    }
}
