//! Where the dataplane event loop finds a session's transport task without
//! the hub's lock: session id → the task's DTLS inbox. The hub adds an
//! entry when it creates a session and removes it when it forgets one.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use dataplane::msg::SessionId;
use tokio::sync::mpsc::{error::TrySendError, Sender};
use tracing::debug;

/// Datagrams a task may have waiting. A handshake flight is a few
/// datagrams; a busy data channel a few dozen. When a task falls this far
/// behind, further datagrams are dropped and counted: DTLS and SCTP
/// retransmit, and nothing grows.
pub const INBOX: usize = 64;

#[derive(Clone, Default)]
pub struct Registry {
    inboxes: Arc<RwLock<HashMap<SessionId, Sender<Vec<u8>>>>>,
}

/// What became of a datagram handed to `deliver`.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Queued,
    /// The task's inbox is full (counted, logged at debug).
    Dropped,
    /// No task for this session (it ended, or was never created).
    NoSession,
}

impl Registry {
    pub(super) fn insert(&self, session: SessionId, inbox: Sender<Vec<u8>>) {
        self.inboxes.write().unwrap_or_else(|p| p.into_inner()).insert(session, inbox);
    }

    pub fn remove(&self, session: SessionId) {
        self.inboxes.write().unwrap_or_else(|p| p.into_inner()).remove(&session);
    }

    pub fn len(&self) -> usize {
        self.inboxes.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hands a peer's DTLS datagram to its session's task; never waits.
    pub fn deliver(&self, session: SessionId, datagram: Vec<u8>) -> Delivery {
        let inboxes = self.inboxes.read().unwrap_or_else(|p| p.into_inner());
        let Some(inbox) = inboxes.get(&session) else { return Delivery::NoSession };
        match inbox.try_send(datagram) {
            Ok(()) => Delivery::Queued,
            Err(TrySendError::Full(_)) => {
                debug!(session = session.0, "transport inbox full; DTLS datagram dropped");
                crate::metrics::record_dtls_datagram_dropped();
                Delivery::Dropped
            }
            Err(TrySendError::Closed(_)) => Delivery::NoSession,
        }
    }
}
