//! The webhook payload, shaped like LiveKit's `WebhookEvent` JSON so a
//! receiver written for LiveKit reads the fields it knows.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use dataplane::msg::MediaKind;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    RoomStarted,
    RoomFinished,
    ParticipantJoined,
    ParticipantLeft,
    TrackPublished,
    TrackUnpublished,
    /// A room's WHIP publisher was replaced within the grace period and its
    /// WHEP viewers were kept (sfud's own; LiveKit has no such event).
    PublisherReplaced,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RoomStarted => "room_started",
            EventKind::RoomFinished => "room_finished",
            EventKind::ParticipantJoined => "participant_joined",
            EventKind::ParticipantLeft => "participant_left",
            EventKind::TrackPublished => "track_published",
            EventKind::TrackUnpublished => "track_unpublished",
            EventKind::PublisherReplaced => "publisher_replaced",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    pub identity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// `"audio"` / `"video"`, through the domain type's own names.
mod media_kind {
    use dataplane::msg::MediaKind;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(kind: &MediaKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MediaKind, D::Error> {
        let name = String::deserialize(d)?;
        MediaKind::from_name(&name).ok_or_else(|| D::Error::custom(format!("unknown track type {name:?}")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    pub sid: String,
    #[serde(rename = "type", with = "media_kind")]
    pub kind: MediaKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    pub event: EventKind,
    pub room: RoomInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<ParticipantInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<TrackInfo>,
    /// With `publisher_replaced`: the viewers that followed the new publisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewers_kept: Option<u64>,
    /// Unique per event, so a receiver can drop the duplicates a retry
    /// after a lost response produces.
    pub id: String,
    /// Unix seconds.
    pub created_at: u64,
}

fn new_id() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let mut id = String::with_capacity(15);
    id.push_str("EV_");
    for _ in 0..12 {
        let i = rng.gen_range(0..ALPHABET.len());
        id.push(char::from(ALPHABET[i]));
    }
    id
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl WebhookEvent {
    pub fn new(event: EventKind, room: &str) -> Self {
        Self {
            event,
            room: RoomInfo {
                name: room.to_string(),
                sid: None,
            },
            participant: None,
            track: None,
            viewers_kept: None,
            id: new_id(),
            created_at: now_secs(),
        }
    }

    pub fn with_participant(mut self, identity: &str) -> Self {
        self.participant = Some(ParticipantInfo {
            identity: identity.to_string(),
            sid: None,
        });
        self
    }

    pub fn with_track(mut self, sid: &str, kind: MediaKind) -> Self {
        self.track = Some(TrackInfo {
            sid: sid.to_string(),
            kind,
        });
        self
    }

    pub fn publisher_replaced(room: &str, identity: &str, viewers_kept: usize) -> Self {
        let mut ev = Self::new(EventKind::PublisherReplaced, room).with_participant(identity);
        ev.viewers_kept = Some(viewers_kept as u64);
        ev
    }

    pub fn room_started(room: &str) -> Self {
        Self::new(EventKind::RoomStarted, room)
    }

    pub fn room_finished(room: &str) -> Self {
        Self::new(EventKind::RoomFinished, room)
    }

    pub fn participant_joined(room: &str, identity: &str) -> Self {
        Self::new(EventKind::ParticipantJoined, room).with_participant(identity)
    }

    pub fn participant_left(room: &str, identity: &str) -> Self {
        Self::new(EventKind::ParticipantLeft, room).with_participant(identity)
    }

    pub fn track_published(room: &str, identity: &str, track_sid: &str, kind: MediaKind) -> Self {
        Self::new(EventKind::TrackPublished, room)
            .with_participant(identity)
            .with_track(track_sid, kind)
    }

    pub fn track_unpublished(room: &str, identity: &str, track_sid: &str, kind: MediaKind) -> Self {
        Self::new(EventKind::TrackUnpublished, room)
            .with_participant(identity)
            .with_track(track_sid, kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let ev = WebhookEvent::track_published("r1", "alice", "TR_v1", MediaKind::Video);
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["event"], "track_published");
        assert_eq!(v["room"]["name"], "r1");
        assert!(v["room"].get("sid").is_none());
        assert_eq!(v["participant"]["identity"], "alice");
        assert_eq!(v["track"]["sid"], "TR_v1");
        assert_eq!(v["track"]["type"], "video");
        assert!(v["id"].as_str().unwrap().starts_with("EV_"));
        assert!(v["createdAt"].as_u64().unwrap() > 1_600_000_000);

        let v = serde_json::to_value(WebhookEvent::room_started("r")).unwrap();
        assert!(v.get("participant").is_none() && v.get("track").is_none());
        let back: WebhookEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back.event, EventKind::RoomStarted);
    }

    #[test]
    fn ids_differ() {
        let a = WebhookEvent::room_started("r");
        let b = WebhookEvent::room_started("r");
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), 15);
    }

    #[test]
    fn kind_names_match_serde() {
        for k in [
            EventKind::RoomStarted,
            EventKind::RoomFinished,
            EventKind::ParticipantJoined,
            EventKind::ParticipantLeft,
            EventKind::TrackPublished,
            EventKind::TrackUnpublished,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }
}
