//! Admission limits and the reaper: nothing a client does makes the hub
//! hold more than `[limits]` allows, and a session that never connects is
//! removed after `limits.connect_timeout_secs`.
//!
//! Counting is a scan of the session table. The table itself is bounded by
//! `max_sessions`, so a scan costs at most a few microseconds per offer.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tracing::info;

use super::{Hub, HubError, SessionState};
use crate::config::LimitsConfig;

/// Who asks for a session: what the per-client limits count by.
#[derive(Clone, Copy, Debug, Default)]
pub struct Client<'a> {
    /// The verified token's identity (`sub`); None in open mode.
    pub identity: Option<&'a str>,
    /// The signaling connection's peer address.
    pub source: Option<IpAddr>,
}

/// A refusal by one `[limits]` key.
#[derive(Debug, Clone)]
pub struct LimitHit {
    /// The key, e.g. `max_sessions`; also the metric's label.
    pub limit: &'static str,
    pub message: String,
    /// True for limits on one client (answered 429), false for capacity (503).
    pub per_client: bool,
}

/// What a new session adds: a WHIP publisher, a WHEP viewer, or a room
/// participant (both, with two sessions).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Publisher,
    Viewer,
    Participant,
}

impl Role {
    fn sessions(self) -> usize {
        if self == Role::Participant { 2 } else { 1 }
    }
}

fn hit(limit: &'static str, per_client: bool, message: String) -> HubError {
    crate::metrics::record_limit_refusal(limit);
    HubError::Limit(LimitHit { limit, message, per_client })
}

impl Hub {
    pub fn set_limits(&mut self, limits: LimitsConfig) {
        self.node_limits = limits;
    }

    /// Checks every limit a new session in `room` would count against.
    pub(super) fn admit(&self, room: &str, role: Role, client: Client<'_>) -> Result<(), HubError> {
        let l = &self.node_limits;
        let add = role.sessions();
        if self.sessions.len() + add > l.max_sessions {
            return Err(hit("max_sessions", false, format!("sfud is at its session limit ({}, limits.max_sessions); retry later or on another node", l.max_sessions)));
        }
        let existing = self.rooms.room(room).is_some();
        if !existing && self.rooms.room_count() >= l.max_rooms {
            return Err(hit("max_rooms", false, format!("sfud is at its room limit ({}, limits.max_rooms)", l.max_rooms)));
        }
        // A tenant cannot take the whole node: its namespace may have its
        // own room and session budgets (0: none beyond the node's).
        let ns = crate::cluster::model::namespace_of(room);
        let in_ns = |r: &str| crate::cluster::model::namespace_of(r) == ns;
        let tenant = if ns.is_empty() { "the default namespace".to_string() } else { format!("namespace '{ns}'") };
        if l.max_rooms_per_namespace > 0 && !existing && self.rooms.rooms().filter(|(r, _)| in_ns(r)).count() >= l.max_rooms_per_namespace {
            return Err(hit("max_rooms_per_namespace", true, format!("{tenant} is at its room limit ({}, limits.max_rooms_per_namespace)", l.max_rooms_per_namespace)));
        }
        let ns_sessions = match l.max_sessions_per_namespace {
            0 => 0,
            _ => self.sessions.values().filter(|s| in_ns(&s.room)).count(),
        };
        if l.max_sessions_per_namespace > 0 && ns_sessions + add > l.max_sessions_per_namespace {
            return Err(hit("max_sessions_per_namespace", true, format!("{tenant} holds {ns_sessions} sessions (limits.max_sessions_per_namespace is {})", l.max_sessions_per_namespace)));
        }
        if existing {
            let c = self.rooms.counts(room);
            let publishers = c.ion + c.whip;
            let viewers = c.ion + c.whep;
            if matches!(role, Role::Publisher | Role::Participant) && publishers >= l.max_publishers_per_room {
                return Err(hit("max_publishers_per_room", false, format!("room '{room}' has {publishers} publishers (limits.max_publishers_per_room)")));
            }
            if matches!(role, Role::Viewer | Role::Participant) && viewers >= l.max_subscribers_per_room {
                return Err(hit("max_subscribers_per_room", false, format!("room '{room}' has {viewers} subscribers (limits.max_subscribers_per_room)")));
            }
        }
        if let Some(id) = client.identity {
            let held = self.sessions.values().filter(|s| s.token_identity.as_deref() == Some(id)).count();
            if held + add > l.max_sessions_per_identity {
                return Err(hit("max_sessions_per_identity", true, format!("identity '{id}' already holds {held} sessions (limits.max_sessions_per_identity is {})", l.max_sessions_per_identity)));
            }
        }
        if let Some(ip) = client.source {
            let pending = self.sessions.values().filter(|s| s.source == Some(ip) && s.state != SessionState::Connected).count();
            if pending + add > l.max_pending_per_address {
                return Err(hit("max_pending_per_address", true, format!("{pending} sessions from {ip} have not connected yet (limits.max_pending_per_address is {}); finish or delete them first", l.max_pending_per_address)));
            }
        }
        Ok(())
    }

    /// Removes sessions that did not complete ICE and DTLS in time. Called
    /// from the hub's timer; `now` comes from the caller.
    pub(super) fn reap_unconnected(&mut self, now: Instant) {
        let limit = Duration::from_secs(self.node_limits.connect_timeout_secs);
        let stale: Vec<_> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.state != SessionState::Connected && now.saturating_duration_since(s.created) >= limit)
            .map(|(id, s)| (*id, s.state))
            .collect();
        if stale.is_empty() {
            return;
        }
        let n = stale.len();
        info!(count = n, timeout_secs = limit.as_secs(), "removing sessions that never connected");
        for (id, state) in stale {
            // A room participant's other session may already have gone with it.
            if !self.sessions.contains_key(&id) {
                continue;
            }
            let reason = if state == SessionState::New { "ice_timeout" } else { "dtls_timeout" };
            crate::metrics::record_session_reaped(reason);
            self.remove(id, "did not connect within limits.connect_timeout_secs");
        }
        // Counted across ticks: a flood is reaped a few sessions per tick.
        let total = REAPED_SINCE_TRIM.fetch_add(n, Ordering::Relaxed) + n;
        if total >= TRIM_AFTER {
            REAPED_SINCE_TRIM.store(0, Ordering::Relaxed);
            release_free_memory();
        }
    }
}

/// Reaps this large follow a flood; give its memory back to the system.
const TRIM_AFTER: usize = 64;
static REAPED_SINCE_TRIM: AtomicUsize = AtomicUsize::new(0);

/// glibc keeps freed memory in its arenas (one per thread that allocated),
/// so after a flood RSS would stay at its peak though nothing is live.
/// `malloc_trim` returns the free pages; it costs a few milliseconds, so it
/// runs only after large reaps.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn participants_hold_two_sessions() {
        assert_eq!(Role::Participant.sessions(), 2);
        assert_eq!(Role::Publisher.sessions(), 1);
        assert_eq!(Role::Viewer.sessions(), 1);
    }
}
