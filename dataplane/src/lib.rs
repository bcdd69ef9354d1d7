//! sfud dataplane: packets, sessions, tracks and shards.
//!
//! The protocol cores (STUN, ICE-lite, SRTP, RTP/RTCP, forwarding) are sans-IO
//! state machines: bytes and time in, bytes and events out. `shard` runs them
//! on pinned glommio executors with batched socket I/O. The controlplane
//! drives all of it through the typed messages in `msg`.

pub mod demux;
pub mod dtls_record;
pub mod forward;
pub mod ice;
pub mod msg;
pub mod prefetch;
pub mod rtcp;
pub mod rtp;
pub mod shard;
pub mod srtp;
pub mod stats;
pub mod stun;
pub mod topology;
