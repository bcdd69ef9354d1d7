//! Simulcast choices on the controlplane's side: ion-sfu's data-channel API
//! (`setRemoteMedia` from the subscriber, `activeLayer` back to it), and the
//! admin's layer cap. Both only bound what each subscriber's stream
//! allocator (on its shard) chooses; the allocator's choices come back as
//! `Event::LayerChosen`.

use dataplane::msg::{Command, LayerCap, MediaKind, SessionId, TrackId};
use serde::Deserialize;
use serde_json::json;
use tracing::{debug, info};

use crate::room::track_label;
use super::{Hub, HubError, PUBLIC_ID_LEN};

/// ion-sfu's names for layers 0, 1, 2.
const LAYER_NAMES: [&str; 3] = ["low", "medium", "high"];
/// The channel ion-sdk-js talks on (sfud opens it on the subscriber PC).
pub(super) const API_CHANNEL: &str = "ion-sfu";

/// What ion-sdk-js's `RemoteStream.preferLayer`/`mute` send (ion-sfu's
/// `setRemoteMedia`).
#[derive(Deserialize)]
struct SetRemoteMedia {
    #[serde(rename = "streamId")]
    stream_id: String,
    /// "high", "medium", "low" or "none".
    video: Option<String>,
    /// ion-sfu reads "framerate"; accept the camel-case spelling too.
    #[serde(alias = "frameRate")]
    framerate: Option<String>,
    audio: Option<bool>,
}

fn layer_index(name: &str) -> Option<u8> {
    LAYER_NAMES.iter().position(|n| *n == name).map(|i| i as u8)
}

/// The body of `POST /api/v1/sessions/{id}/layer-cap`.
#[derive(Deserialize, Debug, Default)]
pub struct LayerCapBody {
    /// Highest simulcast layer, 0 (lowest) to 2; null or absent lifts the cap.
    pub max_layer: Option<u8>,
    /// Highest VP8 temporal layer (0..=2); null or absent: all.
    pub max_temporal: Option<u8>,
    /// No video (nor audio) at all for this subscriber.
    #[serde(default)]
    pub off: bool,
    /// One track (its label from the room view); absent: all of them.
    pub track: Option<String>,
}

impl Hub {
    /// A message on a room subscriber's `ion-sfu` channel.
    pub(super) fn on_api_message(&mut self, session: SessionId, text: &str) {
        let Ok(m) = serde_json::from_str::<SetRemoteMedia>(text) else {
            debug!(session = session.0, "ignoring a data channel message that is not setRemoteMedia");
            return;
        };
        let Some(s) = self.sessions.get(&session) else { return };
        let tracks: Vec<(TrackId, MediaKind)> =
            self.rooms.tracks(&s.room).iter().filter(|t| t.stream_id == m.stream_id).map(|t| (t.id, t.kind)).collect();
        for (track, kind) in tracks {
            let cap = match kind {
                MediaKind::Audio => LayerCap { off: m.audio == Some(false), ..Default::default() },
                MediaKind::Video => LayerCap {
                    off: m.video.as_deref() == Some("none"),
                    max_layer: m.video.as_deref().and_then(layer_index),
                    // "high" keeps every temporal layer.
                    max_temporal: m.framerate.as_deref().and_then(layer_index).filter(|t| *t < 2),
                },
            };
            info!(session = session.0, track = track.0, ?cap, "subscriber's setRemoteMedia");
            self.dataplane.broadcast(|| Command::SetLayerCap { session, track: Some(track), cap });
        }
    }

    /// The allocator of `session` now forwards `layer` of `track`: a room
    /// subscriber hears it on its `ion-sfu` channel, as from ion-sfu.
    pub(super) fn on_layer_chosen(&mut self, session: SessionId, track: TrackId, layer: Option<u8>) {
        debug!(session = session.0, track = track.0, ?layer, "layer chosen");
        let Some(s) = self.sessions.get(&session) else { return };
        let Some(rt) = self.rooms.track(&s.room, track) else { return };
        let layers = rt.layers.min(LAYER_NAMES.len());
        let msg = json!({
            "method": "activeLayer",
            "params": {
                "streamId": rt.stream_id,
                "activeLayer": layer.and_then(|l| LAYER_NAMES.get(usize::from(l))).copied().unwrap_or("none"),
                "availableLayers": &LAYER_NAMES[..layers],
            }
        })
        .to_string();
        let Some(channel) = self.api_channel(session) else { return };
        self.send_text(session, channel, msg);
    }

    /// Admin: bounds the layers of one subscriber session (by the public
    /// id the session list shows).
    pub fn set_layer_cap(&mut self, public_id: &str, body: &LayerCapBody) -> Result<(), HubError> {
        if body.max_layer.is_some_and(|l| usize::from(l) >= LAYER_NAMES.len()) {
            return Err(HubError::BadOffer("max_layer must be 0, 1 or 2 (or null for no cap)".into()));
        }
        if body.max_temporal.is_some_and(|t| t > 3) {
            return Err(HubError::BadOffer("max_temporal must be 0 to 3 (or null)".into()));
        }
        if public_id.chars().count() != PUBLIC_ID_LEN {
            return Err(HubError::UnknownSession);
        }
        let (&session, s) = self
            .sessions
            .iter()
            .find(|(_, s)| s.resource.starts_with(public_id))
            .ok_or(HubError::UnknownSession)?;
        let track = match &body.track {
            Some(label) => Some(
                self.rooms
                    .tracks(&s.room)
                    .iter()
                    .map(|t| t.id)
                    .find(|t| track_label(*t) == *label)
                    .ok_or_else(|| HubError::NoTrack(label.clone()))?,
            ),
            None => None,
        };
        let cap = LayerCap { off: body.off, max_layer: body.max_layer, max_temporal: body.max_temporal };
        info!(session = session.0, ?track, ?cap, "layer cap set by admin");
        self.dataplane.broadcast(|| Command::SetLayerCap { session, track, cap });
        Ok(())
    }
}
