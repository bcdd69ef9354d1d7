//! WHIP/WHEP PATCH (RFC 9725 §4.3): trickled candidates and ICE restarts
//! on an existing session, guarded by the resource's ETag.

use dataplane::msg::Command;
use tracing::info;

use super::{random_token, Hub, HubError, SessionKind};
use crate::sdp::{self, TrickleFragment};

/// A fresh quoted entity tag.
pub(super) fn new_etag() -> String {
    format!("\"{}\"", random_token(16))
}

/// What a PATCH did.
#[derive(Debug, PartialEq, Eq)]
pub enum Patched {
    /// Candidates (or nothing new): 204, nothing to answer. sfud is ICE-lite
    /// and learns the client's addresses from its checks.
    Trickled { candidates: usize },
    /// New client credentials: sfud's new ones and candidates as an
    /// sdpfrag (200), with the new ETag.
    Restarted { fragment: String, etag: String },
}

/// RFC 9110 §13.1.1: "*" or a list of entity tags; weak tags never match
/// (strong comparison), and an absent header imposes no condition.
fn if_match_ok(if_match: Option<&str>, etag: &str) -> bool {
    match if_match {
        None => true,
        Some(v) => v.split(',').map(str::trim).any(|t| t == "*" || t == etag),
    }
}

impl Hub {
    /// Applies a PATCH to the session under `resource`, which must have been
    /// created under `kind` and `room`.
    pub fn patch(
        &mut self,
        kind: SessionKind,
        room: &str,
        resource: &str,
        if_match: Option<&str>,
        frag: &TrickleFragment,
    ) -> Result<Patched, HubError> {
        let id = *self.resources.get(resource).ok_or(HubError::UnknownSession)?;
        let local_template = self.local_ice();
        let entry = self.sessions.get_mut(&id).ok_or(HubError::UnknownSession)?;
        if entry.kind != kind || entry.room != room {
            return Err(HubError::UnknownSession);
        }
        if !if_match_ok(if_match, &entry.etag) {
            return Err(HubError::PreconditionFailed(
                if_match.unwrap_or_default().chars().take(64).collect(),
            ));
        }
        let restart = frag.ufrag.as_deref().is_some_and(|u| u != entry.remote_ufrag);
        if !restart {
            return Ok(Patched::Trickled { candidates: frag.candidates.len() });
        }
        let (Some(ufrag), Some(_)) = (frag.ufrag.clone(), frag.pwd.as_ref()) else {
            return Err(HubError::BadOffer("an ICE restart needs both a=ice-ufrag and a=ice-pwd".into()));
        };
        // New credentials of our own too (RFC 8445 §9): a fresh LocalIce
        // carries them and the same candidates.
        let local = local_template;
        entry.remote_ufrag = ufrag.clone();
        entry.etag = new_etag();
        let etag = entry.etag.clone();
        info!(session = id.0, room, "ICE restart requested by the client");
        self.dataplane.broadcast(|| Command::RestartIce {
            session: id,
            ufrag: local.ufrag.clone(),
            pwd: local.pwd.clone(),
            remote_ufrag: ufrag.clone(),
        });
        let mid = frag.mid.as_deref().unwrap_or("0");
        Ok(Patched::Restarted { fragment: sdp::restart_answer(&local, mid), etag })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_rules() {
        assert!(if_match_ok(None, "\"a\""));
        assert!(if_match_ok(Some("*"), "\"a\""));
        assert!(if_match_ok(Some("\"a\""), "\"a\""));
        assert!(if_match_ok(Some("\"b\", \"a\""), "\"a\""));
        assert!(!if_match_ok(Some("\"b\""), "\"a\""));
        assert!(!if_match_ok(Some("W/\"a\""), "\"a\""));
        assert!(!if_match_ok(Some(""), "\"a\""));
    }

    #[test]
    fn etags_are_quoted_and_fresh() {
        let (a, b) = (new_etag(), new_etag());
        assert!(a.starts_with('"') && a.ends_with('"') && a.len() == 18);
        assert_ne!(a, b);
    }
}
