//! What the hub tells the outside world: webhooks, and the room and
//! participant gauges for Prometheus. Every lifecycle change comes from the
//! rooms core as one `RoomEvent`, so none is reported twice or forgotten.

use tracing::info;

use super::Hub;
use crate::metrics;
use crate::room::{track_label, RoomEvent};
use crate::webhook::{WebhookEvent, Webhooks};

impl Hub {
    /// Replaces the webhook sender (config reload); the old one finishes its queue.
    pub fn set_webhooks(&mut self, hooks: Webhooks) {
        self.hooks = hooks;
    }

    pub fn webhooks(&self) -> Webhooks {
        self.hooks.clone()
    }

    fn emit(&self, ev: WebhookEvent) {
        info!(event = ev.event.as_str(), room = %ev.room.name, "room event");
        self.hooks.notify(ev);
    }

    pub(super) fn on_room_event(&mut self, ev: RoomEvent) {
        match ev {
            RoomEvent::RoomStarted { room } => {
                self.hooks.notify(WebhookEvent::room_started(&room));
                metrics::set_rooms(self.rooms.room_count());
            }
            RoomEvent::RoomFinished { room } => {
                self.emit(WebhookEvent::room_finished(&room));
                metrics::set_rooms(self.rooms.room_count());
            }
            RoomEvent::ParticipantJoined { room, identity } => {
                self.emit(WebhookEvent::participant_joined(&room, &identity));
                metrics::set_participants(self.rooms.participant_count());
            }
            RoomEvent::ParticipantLeft { room, identity } => {
                self.emit(WebhookEvent::participant_left(&room, &identity));
                metrics::set_participants(self.rooms.participant_count());
            }
            RoomEvent::TrackPublished { room, identity, track, kind } => {
                self.emit(WebhookEvent::track_published(&room, &identity, &track_label(track), kind));
            }
            RoomEvent::TrackUnpublished { room, identity, track, kind } => {
                self.emit(WebhookEvent::track_unpublished(&room, &identity, &track_label(track), kind));
            }
            RoomEvent::PublisherReplaced { room, identity, kept } => {
                self.emit(WebhookEvent::publisher_replaced(&room, &identity, kept));
            }
        }
    }
}
