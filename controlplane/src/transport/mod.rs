//! One transport per WebRTC session, run by its own task: the DTLS server
//! and the SCTP data channels that ride on it, off the hub's lock.
//!
//! - `core.rs`: [`Transport`], the sans-IO state machine (inputs: datagram,
//!   time, fingerprint, data-channel message, close; outputs polled).
//! - `task.rs`: the tokio task that drives one, and the hub's
//!   [`TransportHandle`] to it.
//! - `registry.rs`: session id → the task's DTLS inbox, for the dataplane
//!   event loop, which delivers datagrams there without the hub's lock.

mod core;
mod registry;
mod task;

pub use self::core::{Output, Transport, MAX_EARLY_DATAGRAMS};
pub use registry::{Delivery, Registry, INBOX};
pub use task::{Report, Shards, Spawner, TransportHandle, REPORTS};

#[cfg(test)]
mod task_tests;
