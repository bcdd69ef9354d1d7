//! Counters the lead exports as metrics. Atomics, so the exporter reads a
//! snapshot without taking the server's lock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A point-in-time copy of the TURN server's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TurnStats {
    /// Live allocations (gauge).
    pub allocations: u64,
    pub allocations_total: u64,
    /// Application bytes relayed, both directions (no TURN framing).
    pub relayed_bytes_total: u64,
    pub relayed_packets_total: u64,
    /// Wrong password, unknown or expired username, 441 Wrong Credentials.
    pub auth_failures_total: u64,
    /// Permissions, channel binds and packets refused by the peer denylist.
    pub refused_peers_total: u64,
    /// Allocate requests refused with 486 Allocation Quota Reached.
    pub quota_rejections_total: u64,
    /// Packets dropped by the per-allocation bandwidth cap.
    pub rate_limited_packets_total: u64,
}

#[derive(Debug, Default)]
pub struct StatsCells {
    allocations: AtomicU64,
    allocations_total: AtomicU64,
    relayed_bytes_total: AtomicU64,
    relayed_packets_total: AtomicU64,
    auth_failures_total: AtomicU64,
    refused_peers_total: AtomicU64,
    quota_rejections_total: AtomicU64,
    rate_limited_packets_total: AtomicU64,
}

impl StatsCells {
    pub fn snapshot(&self) -> TurnStats {
        TurnStats {
            allocations: self.allocations.load(Relaxed),
            allocations_total: self.allocations_total.load(Relaxed),
            relayed_bytes_total: self.relayed_bytes_total.load(Relaxed),
            relayed_packets_total: self.relayed_packets_total.load(Relaxed),
            auth_failures_total: self.auth_failures_total.load(Relaxed),
            refused_peers_total: self.refused_peers_total.load(Relaxed),
            quota_rejections_total: self.quota_rejections_total.load(Relaxed),
            rate_limited_packets_total: self.rate_limited_packets_total.load(Relaxed),
        }
    }

    pub(crate) fn allocation_opened(&self) {
        self.allocations.fetch_add(1, Relaxed);
        self.allocations_total.fetch_add(1, Relaxed);
    }

    pub(crate) fn allocation_closed(&self) {
        // Never wraps below zero even if open/close were ever unpaired.
        let _ = self.allocations.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(1)));
    }

    pub(crate) fn relayed(&self, bytes: usize) {
        self.relayed_bytes_total.fetch_add(bytes as u64, Relaxed);
        self.relayed_packets_total.fetch_add(1, Relaxed);
    }

    pub(crate) fn auth_failure(&self) {
        self.auth_failures_total.fetch_add(1, Relaxed);
    }

    pub(crate) fn refused_peer(&self) {
        self.refused_peers_total.fetch_add(1, Relaxed);
    }

    pub(crate) fn quota_rejection(&self) {
        self.quota_rejections_total.fetch_add(1, Relaxed);
    }

    pub(crate) fn rate_limited(&self) {
        self.rate_limited_packets_total.fetch_add(1, Relaxed);
    }
}
