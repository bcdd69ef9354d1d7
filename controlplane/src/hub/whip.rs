//! WHIP and WHEP signaling: a publisher's offer becomes a WHIP participant
//! publishing its tracks; a viewer's offer becomes a WHEP participant
//! receiving the room's tracks as they are when it joins (WHEP has no
//! server-initiated renegotiation). HTTP itself is `crate::http::whip`.

use dataplane::msg::SessionId;
use tracing::info;

use super::limits::Role;
use super::{specs, Client, Created, Hub, HubError, SessionKind};
use crate::room::{track_label, Accepted, Join, Protocol, Published, RoomError};
use crate::sdp::{self, OfferedTrack, PublishedMedia, SessionDescription};

/// What a publisher's answered sections publish into the room.
pub(super) fn published(media: &[PublishedMedia], default_stream: &str) -> Vec<Published> {
    media
        .iter()
        .map(|m| Published {
            key: m.mid.clone(),
            kind: m.kind,
            codec: m.codec.clone(),
            stream_id: m.stream_id.clone().unwrap_or_else(|| default_stream.to_string()),
            red: m.red_pt.is_some(),
            spec: specs::uptrack(dataplane::msg::TrackId(0), SessionId(0), m),
        })
        .collect()
}

impl Hub {
    /// WHIP: a publisher's offer becomes the room's uptracks.
    pub fn publish(
        &mut self,
        room: &str,
        offer: &SessionDescription,
        hint: Option<usize>,
        client: Client<'_>,
    ) -> Result<Created, HubError> {
        let pinned = self.pinned(hint)?;
        if self.rooms.counts(room).whip > 0 {
            return Err(HubError::RoomBusy(room.to_string()));
        }
        self.admit(room, Role::Publisher, client)?;
        let local = self.local_ice();
        let answer = sdp::answer_publish(offer, &local).map_err(|e| HubError::BadOffer(e.to_string()))?;
        let (id, resource) =
            self.new_session(SessionKind::Whip, room, &local, Some(&answer.remote), pinned, client.identity, client)?;
        let identity = self.sessions.get(&id).map(|s| s.identity.clone()).unwrap_or_default();
        let join = Join {
            room: room.to_string(),
            identity,
            protocol: Protocol::Whip,
            publisher: Some(id),
            subscriber: None,
            subscribes: false,
        };
        let pid = match self.rooms.join(join) {
            Ok(pid) => pid,
            Err(e) => {
                self.remove(id, "refused by the room");
                return Err(match e {
                    RoomError::RoomBusy(r) => HubError::RoomBusy(r),
                    RoomError::UnknownParticipant => HubError::UnknownSession,
                });
            }
        };
        self.attach(id, pid);
        // Media sections without a stream id are the room's stream.
        let _ = self.rooms.publish(pid, published_whip(&answer.media, room));
        let codecs: Vec<&str> = answer.media.iter().map(|m| m.codec.name.as_str()).collect();
        info!(session = id.0, room, ?codecs, "publisher joined");
        self.drive();
        let etag = self.sessions.get(&id).map(|s| s.etag.clone()).unwrap_or_default();
        Ok(Created { resource, answer: answer.sdp, etag })
    }

    /// WHEP: a viewer's offer gets the room's current tracks as downtracks.
    pub fn subscribe(
        &mut self,
        room: &str,
        offer: &SessionDescription,
        hint: Option<usize>,
        client: Client<'_>,
    ) -> Result<Created, HubError> {
        let pinned = self.pinned(hint)?;
        let tracks = self.rooms.tracks(room).to_vec();
        if tracks.is_empty() {
            return Err(HubError::NoPublisher(room.to_string()));
        }
        self.admit(room, Role::Viewer, client)?;
        let offered: Vec<OfferedTrack> = tracks
            .iter()
            .map(|t| OfferedTrack {
                kind: t.kind,
                codec: t.codec.clone(),
                ssrc: rand::random::<u32>() | 1,
                rtx_ssrc: specs::rtx_ssrc_for(t.kind),
                red: t.red,
                cname: format!("sfud-{room}"),
                stream_id: t.stream_id.clone(),
                track_id: track_label(t.id),
            })
            .collect();
        let local = self.local_ice();
        let answer =
            sdp::answer_subscribe(offer, &local, &offered).map_err(|e| HubError::BadOffer(e.to_string()))?;
        let (id, resource) =
            self.new_session(SessionKind::Whep, room, &local, Some(&answer.remote), pinned, client.identity, client)?;
        let identity = self.sessions.get(&id).map(|s| s.identity.clone()).unwrap_or_default();
        let join = Join {
            room: room.to_string(),
            identity,
            protocol: Protocol::Whep,
            publisher: None,
            subscriber: Some(id),
            subscribes: true,
        };
        let pid = self.rooms.join(join).map_err(|_| HubError::NoPublisher(room.to_string()))?;
        self.attach(id, pid);
        let accepted = answer
            .media
            .iter()
            .filter_map(|m| {
                let t = tracks.get(m.track_index)?;
                Some(Accepted { spec: specs::whep_downtrack(id, t.id, m), codec: m.codec.clone() })
            })
            .collect();
        let _ = self.rooms.answer(pid, accepted);
        info!(session = id.0, room, "viewer joined");
        self.drive();
        let etag = self.sessions.get(&id).map(|s| s.etag.clone()).unwrap_or_default();
        Ok(Created { resource, answer: answer.sdp, etag })
    }

    /// Ends a session by its resource id (WHIP/WHEP DELETE). `kind` and
    /// `room` must match the URL it was created under.
    pub fn delete(&mut self, kind: SessionKind, room: &str, resource: &str) -> Result<(), HubError> {
        let id = *self.resources.get(resource).ok_or(HubError::UnknownSession)?;
        let entry = self.sessions.get(&id).ok_or(HubError::UnknownSession)?;
        if entry.kind != kind || entry.room != room {
            return Err(HubError::UnknownSession);
        }
        self.remove(id, "deleted by client");
        Ok(())
    }

    /// The session carries participant `pid` from now on.
    pub(super) fn attach(&mut self, session: SessionId, pid: crate::room::ParticipantId) {
        if let Some(s) = self.sessions.get_mut(&session) {
            s.participant = Some(pid);
        }
    }
}

/// A WHIP publisher's tracks are all the room's stream (`sfud-<room>`),
/// whatever msid the encoder sent.
fn published_whip(media: &[PublishedMedia], room: &str) -> Vec<Published> {
    let stream = format!("sfud-{room}");
    let mut v = published(media, &stream);
    for p in &mut v {
        p.stream_id = stream.clone();
    }
    v
}
