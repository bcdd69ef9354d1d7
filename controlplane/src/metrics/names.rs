//! Metric names (Prometheus conventions: `sfud_` prefix, `_total` on
//! counters, base units) and their help text. docs should list these.

use ::metrics::{describe_counter, describe_gauge};

pub const PACKETS_RECEIVED: &str = "sfud_packets_received_total";
pub const PACKETS_SENT: &str = "sfud_packets_sent_total";
pub const BYTES_RECEIVED: &str = "sfud_bytes_received_total";
pub const BYTES_SENT: &str = "sfud_bytes_sent_total";
pub const RTP_FORWARDED: &str = "sfud_rtp_forwarded_total";
pub const PACKETS_DROPPED: &str = "sfud_packets_dropped_total";
pub const SEND_BATCHES: &str = "sfud_send_batches_total";
pub const NACKS_RECEIVED: &str = "sfud_nacks_received_total";
pub const PLIS_RECEIVED: &str = "sfud_plis_received_total";
pub const PLIS_SENT: &str = "sfud_plis_sent_total";
pub const RETRANSMISSIONS: &str = "sfud_retransmissions_total";
pub const LOSS_REPAIRS: &str = "sfud_loss_repairs_total";
pub const NACKS_UNANSWERED: &str = "sfud_nack_sequences_unanswered_total";
pub const NACKS_SENT: &str = "sfud_nack_sequences_sent_total";
pub const PACKETS_RECOVERED: &str = "sfud_packets_recovered_total";
pub const LOSSES_UNRECOVERABLE: &str = "sfud_losses_unrecoverable_total";
pub const LAYER_SWITCHES: &str = "sfud_simulcast_layer_switches_total";
pub const LAYER_PRUNED: &str = "sfud_simulcast_pruned_packets_total";
pub const PROBES: &str = "sfud_bandwidth_probes_total";
pub const PROBE_PACKETS: &str = "sfud_bandwidth_probe_packets_total";
pub const CACHE_BYTES: &str = "sfud_retransmission_cache_bytes";
pub const RED_PACKETS: &str = "sfud_red_packets_total";
pub const SUBSCRIBER_ESTIMATE_MIN: &str = "sfud_subscriber_estimate_min_bps";
pub const SUBSCRIBER_ESTIMATE_MEAN: &str = "sfud_subscriber_estimate_mean_bps";
pub const DTLS_HANDSHAKES: &str = "sfud_dtls_handshakes_total";
pub const DTLS_DATAGRAMS_DROPPED: &str = "sfud_dtls_datagrams_dropped_total";
pub const SIGNALING_REQUESTS: &str = "sfud_signaling_requests_total";
pub const SESSIONS: &str = "sfud_sessions";
pub const UPTRACKS: &str = "sfud_uptracks";
pub const DOWNTRACKS: &str = "sfud_downtracks";
pub const ROOMS: &str = "sfud_rooms";
pub const PARTICIPANTS: &str = "sfud_participants";
/// Rendered by `shard.rs`, not the recorder (float counter).
pub const SHARD_BUSY_SECONDS: &str = "sfud_shard_busy_seconds_total";
/// Rendered by `shard.rs`, not the recorder (histogram from bucket counts).
pub const SEND_BATCH_SIZE: &str = "sfud_send_batch_size";

pub const CLUSTER_REDIS_UP: &str = "sfud_cluster_redis_up";
pub const CLUSTER_NODES: &str = "sfud_cluster_nodes";
pub const PROCESS_CPU_PERCENT: &str = "sfud_process_cpu_percent";
pub const CLUSTER_PLACEMENTS: &str = "sfud_cluster_placements_total";
pub const CLUSTER_RELAYED: &str = "sfud_cluster_relayed_messages_total";

pub const TURN_ALLOCATIONS: &str = "sfud_turn_allocations";
pub const TURN_ALLOCATIONS_TOTAL: &str = "sfud_turn_allocations_total";
pub const TURN_RELAYED_BYTES: &str = "sfud_turn_relayed_bytes_total";
pub const TURN_RELAYED_PACKETS: &str = "sfud_turn_relayed_packets_total";
pub const TURN_AUTH_FAILURES: &str = "sfud_turn_auth_failures_total";
pub const TURN_REFUSED_PEERS: &str = "sfud_turn_refused_peers_total";
pub const TURN_QUOTA_REJECTIONS: &str = "sfud_turn_quota_rejections_total";
pub const TURN_RATE_LIMITED: &str = "sfud_turn_rate_limited_packets_total";

pub const LIMIT_REFUSALS: &str = "sfud_limit_refusals_total";
pub const SESSIONS_REAPED: &str = "sfud_sessions_reaped_total";
pub const HTTP_CONNECTIONS: &str = "sfud_http_connections";
pub const HTTP_TIMEOUTS: &str = "sfud_http_header_timeouts_total";

pub const TCP_ACCEPTED: &str = "sfud_ice_tcp_accepted_total";
pub const TCP_CONNECTIONS: &str = "sfud_ice_tcp_connections";
pub const TCP_HANDED_OVER: &str = "sfud_ice_tcp_handed_over_total";
pub const TCP_REJECTED: &str = "sfud_ice_tcp_rejected_total";
pub const SHARD_PANICS: &str = "sfud_shard_panics_total";
pub const CONTROLPLANE_PANICS: &str = "sfud_controlplane_panics_total";
pub const TCP_PACKETS_IN: &str = "sfud_ice_tcp_packets_received_total";
pub const TCP_PACKETS_OUT: &str = "sfud_ice_tcp_packets_sent_total";

pub(super) fn describe_all() {
    describe_gauge!(CLUSTER_REDIS_UP, "1 when this node's last registry refresh reached Redis (cluster mode only).");
    describe_gauge!(PROCESS_CPU_PERCENT, "CPU used by the sfud process over the last cluster refresh, percent of one core (cluster mode only).");
    describe_gauge!(CLUSTER_NODES, "Live nodes in the cluster registry, as this node last read it.");
    describe_counter!(CLUSTER_PLACEMENTS, "First joins of rooms not hosted here, by result: local, redirect, relay, unavailable, no_node.");
    describe_counter!(CLUSTER_RELAYED, "JSON-RPC messages relayed through Redis pub/sub, by direction (out, in) and outcome (dropped).");
    describe_counter!(LAYER_PRUNED, "Simulcast packets not forwarded to a shard because no subscriber there needs their layer (counted once per shard skipped), per publishing shard.");
    describe_counter!(NACKS_UNANSWERED, "NACKed sequence numbers not resent (evicted, unknown, or resent within an RTT), per shard.");
    describe_counter!(NACKS_SENT, "Sequence numbers NACKed to publishers, retries included, per shard.");
    describe_counter!(PACKETS_RECOVERED, "Packets lost upstream and restored by a publisher's retransmission, per shard.");
    describe_counter!(LOSSES_UNRECOVERABLE, "Upstream losses given up on (a keyframe was requested instead), per shard.");
    describe_counter!(RED_PACKETS, "RFC 2198 RED audio packets sent, per shard: path=passed as RED to subscribers that negotiated it, path=reduced to the primary Opus block for the others.");
    describe_counter!(LAYER_SWITCHES, "Simulcast layer changes the subscribers' stream allocators made, per shard.");
    describe_counter!(PROBES, "Bandwidth probes of subscriber downlinks, by outcome (started, succeeded, failed), per shard.");
    describe_counter!(PROBE_PACKETS, "RTX probe packets sent to subscribers, per shard.");
    describe_gauge!(CACHE_BYTES, "Bytes held by the retransmission caches, per shard.");
    describe_gauge!(SUBSCRIBER_ESTIMATE_MIN, "Lowest downlink estimate among a shard's subscribers, in bit/s.");
    describe_gauge!(SUBSCRIBER_ESTIMATE_MEAN, "Mean downlink estimate of a shard's subscribers, in bit/s.");
    describe_counter!(LIMIT_REFUSALS, "Requests, connections and allocations refused by a [limits] key, by limit.");
    describe_counter!(SESSIONS_REAPED, "Sessions removed because they never connected, by reason.");
    describe_gauge!(HTTP_CONNECTIONS, "Open HTTP and WebSocket connections.");
    describe_counter!(HTTP_TIMEOUTS, "HTTP connections dropped for a request head sent too slowly, or a WebSocket gone idle.");
    describe_counter!(TCP_ACCEPTED, "ICE-TCP connections accepted.");
    describe_gauge!(TCP_CONNECTIONS, "Open ICE-TCP connections.");
    describe_counter!(TCP_HANDED_OVER, "ICE-TCP connections handed to the shard owning their session.");
    describe_counter!(SHARD_PANICS, "Panics caught in a shard; each reset the shard and ended its sessions.");
    describe_counter!(CONTROLPLANE_PANICS, "Panics caught in the controlplane's event and timer tasks; each ended the session it concerned.");
    describe_counter!(TCP_REJECTED, "ICE-TCP connections closed for a bad first frame or framing, no first frame in time, or over limits.ice_tcp_max_connections.");
    describe_counter!(TCP_PACKETS_IN, "Packets received over ICE-TCP.");
    describe_counter!(TCP_PACKETS_OUT, "Packets sent over ICE-TCP.");
    describe_gauge!(TURN_ALLOCATIONS, "Live TURN allocations.");
    describe_counter!(TURN_ALLOCATIONS_TOTAL, "TURN allocations created.");
    describe_counter!(TURN_RELAYED_BYTES, "Application bytes relayed by TURN, both directions.");
    describe_counter!(TURN_RELAYED_PACKETS, "Packets relayed by TURN, both directions.");
    describe_counter!(TURN_AUTH_FAILURES, "TURN requests refused for credentials.");
    describe_counter!(TURN_REFUSED_PEERS, "TURN permissions and packets refused by the peer denylist.");
    describe_counter!(TURN_QUOTA_REJECTIONS, "TURN allocations refused by the per-user quota.");
    describe_counter!(TURN_RATE_LIMITED, "TURN packets dropped by the per-allocation bandwidth cap.");
    describe_counter!(
        PACKETS_RECEIVED,
        "UDP datagrams received on the media port, per shard."
    );
    describe_counter!(
        PACKETS_SENT,
        "UDP datagrams sent from the media port, per shard."
    );
    describe_counter!(BYTES_RECEIVED, "Bytes of UDP payload received, per shard.");
    describe_counter!(BYTES_SENT, "Bytes of UDP payload sent, per shard.");
    describe_counter!(
        RTP_FORWARDED,
        "RTP packets forwarded to downtracks, per shard."
    );
    describe_counter!(PACKETS_DROPPED, "Datagrams dropped, per shard and reason.");
    describe_counter!(SEND_BATCHES, "Batched send syscalls (sendmmsg), per shard.");
    describe_counter!(
        NACKS_RECEIVED,
        "RTCP generic NACKs received from subscribers, per shard."
    );
    describe_counter!(
        PLIS_RECEIVED,
        "RTCP PLIs received from subscribers, per shard."
    );
    describe_counter!(PLIS_SENT, "RTCP PLIs sent to publishers, per shard.");
    describe_counter!(
        RETRANSMISSIONS,
        "RTP packets retransmitted in answer to NACKs, per shard."
    );
    describe_counter!(
        LOSS_REPAIRS,
        "RTP packets resent to subscribers because their transport-wide feedback reported the last copy lost before a NACK asked again, per shard."
    );
    describe_counter!(DTLS_HANDSHAKES, "DTLS handshakes finished, by result.");
    describe_counter!(DTLS_DATAGRAMS_DROPPED, "DTLS datagrams from peers dropped because their session's transport task was behind (its inbox full); the peer retransmits.");
    describe_counter!(
        SIGNALING_REQUESTS,
        "Signaling requests answered, by method and HTTP status."
    );
    describe_gauge!(SESSIONS, "Active WebRTC sessions, per shard.");
    describe_gauge!(UPTRACKS, "Published tracks received, per shard.");
    describe_gauge!(DOWNTRACKS, "Subscribed tracks sent, per shard.");
    describe_gauge!(ROOMS, "Open rooms.");
    describe_gauge!(PARTICIPANTS, "Participants in all rooms.");
}
