//! What the hub tells the outside world: webhooks, and the room and
//! participant gauges for Prometheus. Every lifecycle change goes through
//! here so none is reported twice or forgotten.

use dataplane::msg::{MediaKind, TrackId};
use tracing::info;

use super::{ion::track_label, Hub, Room};
use crate::metrics;
use crate::webhook::{WebhookEvent, Webhooks};

impl Hub {
    /// Replaces the webhook sender (config reload); the old one finishes its queue.
    pub fn set_webhooks(&mut self, hooks: Webhooks) {
        self.hooks = hooks;
    }

    pub fn webhooks(&self) -> Webhooks {
        self.hooks.clone()
    }

    pub(super) fn emit(&self, ev: WebhookEvent) {
        info!(event = ev.event.as_str(), room = %ev.room.name, "room event");
        self.hooks.notify(ev);
    }

    /// The room, created (and announced) if it did not exist.
    pub(super) fn room_entry(&mut self, name: &str) -> &mut Room {
        if !self.rooms.contains_key(name) {
            info!(room = name, "room started");
            self.hooks.notify(WebhookEvent::room_started(name));
            self.rooms.insert(name.to_string(), Room::default());
            metrics::set_rooms(self.rooms.len());
        }
        self.rooms.entry(name.to_string()).or_default()
    }

    pub(super) fn close_room_if_empty(&mut self, name: &str) {
        if self.rooms.get(name).is_some_and(Room::is_empty) {
            self.rooms.remove(name);
            self.emit(WebhookEvent::room_finished(name));
            metrics::set_rooms(self.rooms.len());
        }
    }

    pub(super) fn participant_joined(&self, room: &str, identity: &str) {
        self.emit(WebhookEvent::participant_joined(room, identity));
        metrics::set_participants(self.participant_total());
    }

    pub(super) fn participant_left(&self, room: &str, identity: &str) {
        self.emit(WebhookEvent::participant_left(room, identity));
        metrics::set_participants(self.participant_total());
    }

    pub(super) fn track_published(&self, room: &str, identity: &str, track: TrackId, kind: MediaKind) {
        self.emit(WebhookEvent::track_published(room, identity, &track_label(track), kind));
    }

    pub(super) fn track_unpublished(&self, room: &str, identity: &str, track: TrackId, kind: MediaKind) {
        self.emit(WebhookEvent::track_unpublished(room, identity, &track_label(track), kind));
    }

    /// Room participants plus WHIP publishers and WHEP viewers.
    fn participant_total(&self) -> usize {
        self.participants.len()
            + self
                .sessions
                .values()
                .filter(|s| matches!(s.kind, super::SessionKind::Whip | super::SessionKind::Whep))
                .count()
    }
}
