//! The hub's side of the sessions' transport tasks (`crate::transport`):
//! what they report comes here, through the same lock as every other
//! input; what the hub asks of them goes through their handles and never
//! waits for them.

use dataplane::msg::{Command, SessionId};
use dataplane::srtp::{split_keying_material, SrtpProfile};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{layers, Hub, SessionKind, SessionState};
use crate::datachannel::ChannelId;
use crate::transport::{Output, Registry, Report};

/// For the controlplane's loops: the event loop delivers DTLS datagrams
/// through `registry` without the hub's lock; `reports` is read by the loop
/// that hands each `Report` to `Hub::on_transport`.
pub struct TransportReports {
    pub registry: Registry,
    pub reports: mpsc::Receiver<Report>,
}

impl Hub {
    /// What a session's transport task reports.
    pub fn on_transport(&mut self, report: Report) {
        let id = report.session;
        let Some(s) = self.sessions.get(&id) else { return };
        match report.output {
            Output::Keys { srtp_profile, keying_material } => self.install_keys(id, &srtp_profile, &keying_material),
            Output::ChannelOpened { label } => {
                // A late joiner learns who is speaking now, not at the next change.
                if s.kind == SessionKind::Subscriber && label == layers::API_CHANNEL {
                    if let Some(pid) = s.participant {
                        self.rooms.api_opened(pid);
                        self.drive();
                    }
                }
            }
            Output::Message { text } => self.on_api_message(id, &text),
            Output::PeerClosed => self.remove(id, "DTLS close_notify"),
            Output::Failed { error, on_datagram } => {
                warn!(session = id.0, %error, "DTLS failed");
                if on_datagram {
                    crate::metrics::record_dtls_handshake(false);
                }
                self.remove(id, "DTLS failure");
            }
            // Datagrams go from the task to the shard directly.
            Output::Transmit(_) => {}
        }
    }

    /// The handshake finished: SRTP keys to the owning shard (its final
    /// flight is already on that shard's queue), and the session is connected.
    fn install_keys(&mut self, id: SessionId, name: &str, material: &[u8]) {
        let Some(shard) = self.sessions.get(&id).and_then(|s| s.shard) else { return };
        let Some(profile) = SrtpProfile::from_openssl_name(name) else {
            warn!(session = id.0, profile = %name, "DTLS negotiated an SRTP profile we do not support");
            self.remove(id, "no SRTP profile");
            return;
        };
        match split_keying_material(profile, material, true) {
            Ok((tx, rx)) => {
                info!(session = id.0, shard, ?profile, "DTLS connected");
                crate::metrics::record_dtls_handshake(true);
                self.dataplane.send(shard, Command::SetSrtp { session: id, tx, rx });
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.state = SessionState::Connected;
                }
            }
            Err(e) => {
                warn!(session = id.0, error = %e, "bad SRTP keying material");
                self.remove(id, "bad keying material");
            }
        }
    }

    /// A text message on one of the session's data channels (best effort:
    /// see `TransportHandle::send_text`).
    pub(super) fn send_text(&self, session: SessionId, channel: ChannelId, text: String) {
        if let Some(s) = self.sessions.get(&session) {
            s.transport.send_text(channel, text);
        }
    }

    /// The session's `ion-sfu` channel, if it has one.
    pub(super) fn api_channel(&self, session: SessionId) -> Option<ChannelId> {
        self.sessions.get(&session)?.transport.api_channel()
    }

    /// The subscriber PC's answer brought the peer's fingerprint.
    pub(super) fn set_remote_fingerprint(&self, session: SessionId, fingerprint: (String, String)) {
        if let Some(s) = self.sessions.get(&session) {
            s.transport.set_remote_fingerprint(fingerprint);
        }
    }

    /// The next `RemoveSession` of these sessions goes out after their
    /// close_notify (`end_cleanly`).
    pub(super) fn close_first(&mut self, sessions: &[SessionId]) {
        for id in sessions {
            if let Some(s) = self.sessions.get_mut(id) {
                s.close_first = true;
            }
        }
    }

    /// The dataplane's `RemoveSession` for `id`, unless its transport task
    /// sends it: a session ending cleanly has its task send close_notify and
    /// then `RemoveSession` (which sends RTCP BYE for its downtracks) on
    /// the owning shard's queue, in that order, as when the hub owned DTLS.
    pub(super) fn remove_session_command(&mut self, id: SessionId) {
        let by_task = self.sessions.get_mut(&id).is_some_and(|s| s.close_first && s.transport.finish());
        if !by_task {
            self.dataplane.broadcast(|| Command::RemoveSession(id));
        }
    }
}
