//! Carrying out what the rooms core asks: its commands go to every shard,
//! its events to webhooks and metrics (`events.rs`), its signals to the
//! participants' signaling. A signal may feed the core again (ending a
//! participant is a leave), so this runs until the core has nothing left.

use dataplane::msg::{Command, SessionId};
use tracing::debug;

use super::Hub;
use crate::room::{ParticipantId, Signal};

/// More rounds than any input needs (a leave ends viewers, whose leaves
/// end nobody): a bound, so a bug cannot spin the hub forever.
const MAX_ROUNDS: usize = 64;

impl Hub {
    /// Carries out the core's outputs until it has none.
    pub(super) fn drive(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let out = self.rooms.take();
            if out.is_empty() {
                return;
            }
            for cmd in out.commands {
                match cmd {
                    Command::RemoveSession(id) => self.remove_session_command(id),
                    cmd => self.dataplane.broadcast(|| cmd.clone()),
                }
            }
            for ev in out.events {
                self.on_room_event(ev);
            }
            for signal in out.signals {
                self.on_signal(signal);
            }
        }
        debug!("rooms core still had outputs after {MAX_ROUNDS} rounds");
    }

    fn on_signal(&mut self, signal: Signal) {
        match signal {
            Signal::Offer { participant, tracks } => self.offer_tracks(participant, &tracks),
            Signal::Speakers { participant, speakers } => self.tell_speakers(participant, &speakers),
            Signal::End { participant, why } => self.end_cleanly(participant, &why),
            Signal::Closed { participant } => {
                // Dropping the ion state drops its notify sender, which
                // closes the participant's socket if it is still open.
                self.ion.remove(&participant);
                let sessions: Vec<SessionId> =
                    self.sessions.iter().filter(|(_, s)| s.participant == Some(participant)).map(|(id, _)| *id).collect();
                for id in sessions {
                    self.forget_session(id);
                }
            }
        }
    }

    /// Ends a participant so its peer notices at once: close_notify goes
    /// out (ahead of the RemoveSession that sends RTCP BYE for its
    /// downtracks, on the same shard's queue: `remove_session_command`),
    /// then it leaves.
    pub(super) fn end_cleanly(&mut self, pid: ParticipantId, why: &str) {
        let sessions: Vec<SessionId> =
            self.sessions.iter().filter(|(_, s)| s.participant == Some(pid)).map(|(id, _)| *id).collect();
        self.close_first(&sessions);
        // Called from `drive`, whose next round carries out this leave.
        self.rooms.leave(pid, why, std::time::Instant::now());
    }
}
