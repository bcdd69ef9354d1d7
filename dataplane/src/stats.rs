//! Per-shard counters. Plain integers owned by one shard (no shared atomics on
//! the packet path); the shard ships a copy to the controlplane periodically.

/// Why a datagram was dropped. Every drop is counted under exactly one reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Not STUN, DTLS or RTP/RTCP (RFC 7983), or a parser refused it.
    Malformed,
    /// STUN whose USERNAME names no session we know.
    UnknownUfrag,
    /// Non-STUN from a 5-tuple that no session has claimed.
    UnknownSource,
    /// STUN that failed MESSAGE-INTEGRITY/FINGERPRINT or ICE checks.
    StunAuth,
    /// SRTP/SRTCP authentication tag mismatch.
    SrtpAuth,
    /// SRTP/SRTCP replay or too old.
    Replay,
    /// Media before DTLS finished (no keys yet).
    NoKeys,
    /// RTP with an SSRC no uptrack claims.
    UnknownSsrc,
    /// A send or cross-shard queue was full.
    QueueFull,
    /// Video dropped at a downtrack until its first keyframe.
    WaitingKeyframe,
    /// The uptrack is muted by an admin.
    Muted,
    /// An ICE-TCP connection's send queue was full (a slow reader): the
    /// packet is dropped rather than blocking the shard.
    TcpQueueFull,
    /// A packet another shard steered here that would be steered again:
    /// the shards disagree for a moment, and a packet never bounces.
    SteerLoop,
    /// The route table is at its cap (`shard::core::MAX_ROUTES`).
    RouteTableFull,
    /// Padding-only packets (a sender's bandwidth probes): absorbed here,
    /// never forwarded.
    Padding,
    /// A packet seen before, or too old to place in a subscriber's stream.
    Duplicate,
}

impl DropReason {
    pub const ALL: [DropReason; 16] = [
        DropReason::Malformed,
        DropReason::UnknownUfrag,
        DropReason::UnknownSource,
        DropReason::StunAuth,
        DropReason::SrtpAuth,
        DropReason::Replay,
        DropReason::NoKeys,
        DropReason::UnknownSsrc,
        DropReason::QueueFull,
        DropReason::WaitingKeyframe,
        DropReason::Muted,
        DropReason::TcpQueueFull,
        DropReason::SteerLoop,
        DropReason::RouteTableFull,
        DropReason::Padding,
        DropReason::Duplicate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::UnknownUfrag => "unknown_ufrag",
            DropReason::UnknownSource => "unknown_source",
            DropReason::StunAuth => "stun_auth",
            DropReason::SrtpAuth => "srtp_auth",
            DropReason::Replay => "replay",
            DropReason::NoKeys => "no_keys",
            DropReason::UnknownSsrc => "unknown_ssrc",
            DropReason::QueueFull => "queue_full",
            DropReason::WaitingKeyframe => "waiting_keyframe",
            DropReason::Muted => "muted",
            DropReason::TcpQueueFull => "tcp_queue_full",
            DropReason::SteerLoop => "steer_loop",
            DropReason::RouteTableFull => "route_table_full",
            DropReason::Padding => "padding",
            DropReason::Duplicate => "duplicate",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardStats {
    pub shard: usize,
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub rtp_in: u64,
    pub rtp_forwarded: u64,
    pub rtcp_in: u64,
    pub stun_in: u64,
    pub dtls_in: u64,
    pub steered: u64,
    pub plis_sent: u64,
    pub plis_received: u64,
    /// NACK packets from subscribers.
    pub nacks_received: u64,
    /// Sequence numbers subscribers NACKed that could not be resent
    /// (evicted, unknown, or resent too recently).
    pub nacks_unanswered: u64,
    /// Sequence numbers sfud NACKed to publishers (retries included).
    pub nacks_sent: u64,
    /// Packets lost upstream that a retransmission restored.
    pub packets_recovered: u64,
    /// Upstream losses given up on (a keyframe was requested instead).
    pub losses_unrecoverable: u64,
    /// RFC 2198 RED packets sent as RED to subscribers that negotiated it.
    pub red_passed: u64,
    /// RED packets reduced to their primary Opus block for the others.
    pub red_reduced: u64,
    /// Bytes held by this shard's retransmission caches.
    pub cache_bytes: u64,
    /// Each local subscriber session's downlink estimate, in bit/s.
    pub subscriber_estimates: Vec<(crate::msg::SessionId, u64)>,
    pub peer_batches_out: u64,
    pub peer_batches_in: u64,
    pub send_batches: u64,
    /// Histogram of datagrams per send flush: buckets <=1, 2, 4, 8, 16, 32, 64, more.
    pub send_batch_sizes: [u64; 8],
    pub send_batch_datagrams: u64,
    /// Packets resent to subscribers in answer to their NACKs.
    pub retransmissions: u64,
    /// Packets resent to subscribers because their transport-wide feedback
    /// reported the last copy lost and no NACK had asked again yet.
    pub loss_repairs: u64,
    /// Panics caught in this shard; each reset its core (`shard::recover`).
    pub panics: u64,
    pub drops: [u64; DropReason::ALL.len()],
    pub sessions: u64,
    pub uptracks: u64,
    pub downtracks: u64,
    /// Nanoseconds spent handling I/O and messages (not waiting).
    pub busy_ns: u64,
    /// ICE-TCP (RFC 6544): connections this shard's listener accepted.
    pub tcp_accepted: u64,
    /// ICE-TCP connections this shard serves now (a gauge).
    pub tcp_connections: u64,
    /// Accepted here, but the session lives on another shard: moved there.
    pub tcp_handed_over: u64,
    /// Closed for a bad first frame (not a valid Binding for a known
    /// session), a bad RFC 4571 length, or too many hand-overs.
    pub tcp_rejected: u64,
    /// Frames read from, and queued to, ICE-TCP connections. They are also
    /// in `packets_in`/`packets_out`.
    pub tcp_packets_in: u64,
    pub tcp_packets_out: u64,
    /// Simulcast: target layer changes the stream allocators made.
    pub layer_switches: u64,
    /// Simulcast packets not copied to a shard (this one included) because
    /// none of its subscribers needs their layer now (`forward::layer_demand`).
    pub layer_pruned: u64,
    /// Bandwidth probes (`forward::allocator`): started, their outcomes,
    /// and the RTX probe packets sent.
    pub probes_started: u64,
    pub probes_succeeded: u64,
    pub probes_failed: u64,
    pub probe_packets: u64,
}

impl ShardStats {
    /// One send flush of `n` datagrams.
    #[inline]
    pub fn send_batch(&mut self, n: usize) {
        self.send_batch_datagrams += n as u64;
        let b = if n <= 1 { 0 } else { ((usize::BITS - (n - 1).leading_zeros()) as usize).min(7) };
        self.send_batch_sizes[b] += 1;
    }

    #[inline]
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    pub fn drops_for(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }
}
