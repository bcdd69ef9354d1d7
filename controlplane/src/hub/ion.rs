//! ion-sfu participants, as ion-sfu modelled them: a publisher PeerConnection
//! (the client offers) and a subscriber PeerConnection (sfud offers). Every
//! participant receives every other publisher's tracks; each change is one
//! renegotiation, serialized per subscriber PC (one offer in flight, later
//! changes queue behind it).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dataplane::msg::{Command, SessionId, TrackId};
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};

use super::{specs, Hub, RoomTrack, SessionKind};
use crate::datachannel::ChannelId;
use crate::signal::ion::rpc::{self, RpcError};
use crate::sdp::{self, LocalIce, PublishOptions, SessionDescription, SubscriberOffer, SubscriberTrack};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u64);

pub(super) struct Participant {
    uid: String,
    room: String,
    publisher: SessionId,
    subscriber: SessionId,
    pub_ice: LocalIce,
    sub_offer: SubscriberOffer,
    /// Published tracks by the publisher PC's mid.
    published: HashMap<String, TrackId>,
    /// The SSRCs (primary, RTX) this subscriber sees for each track, stable
    /// across offers.
    ssrcs: HashMap<TrackId, (u32, Option<u32>)>,
    /// Downtracks installed on the subscriber session.
    downtracks: Vec<TrackId>,
    notify: UnboundedSender<String>,
    config: rpc::JoinConfig,
    /// The publisher PC's ICE ufrag; a different one is an ICE restart.
    pub_remote_ufrag: String,
    /// When the subscriber offer in flight went out.
    offer_sent: Option<Instant>,
    /// The `ion-sfu` channel sfud opened on the subscriber PC: the data
    /// channel API (`audioLevels` goes out on it).
    api_channel: Option<ChannelId>,
}

/// A subscriber PC that does not answer within this is closed rather than
/// left wedged (ion-sfu waited forever).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

impl Participant {
    pub(super) fn uid(&self) -> &str {
        &self.uid
    }

    pub(super) fn publisher(&self) -> SessionId {
        self.publisher
    }

    pub(super) fn room(&self) -> &str {
        &self.room
    }

    pub(super) fn subscriber(&self) -> SessionId {
        self.subscriber
    }

    pub(super) fn api_channel(&self) -> Option<ChannelId> {
        self.api_channel
    }
}

/// The msid track id subscribers see for a track (and how it maps back).
pub fn track_label(id: TrackId) -> String {
    format!("sfud-track-{}", id.0)
}

#[derive(Serialize)]
pub struct ParticipantInfo {
    pub uid: String,
    pub tracks: usize,
}

#[derive(Serialize)]
pub struct RoomInfo {
    pub name: String,
    pub participants: Vec<ParticipantInfo>,
    pub tracks: usize,
    pub whip_publisher: bool,
    pub whep_viewers: usize,
    /// Seconds the room's viewers have been waiting for a new publisher
    /// (`room.publisher_grace_secs`), when its publisher left.
    pub waiting_for_publisher_secs: Option<u64>,
    /// Stream ids speaking now, loudest first (what `audioLevels` last
    /// said), and the first of them.
    pub speakers: Vec<String>,
    pub dominant_speaker: Option<String>,
    /// Each audio stream's levels over its latest interval.
    pub audio_levels: Vec<super::speakers::AudioLevelInfo>,
}

fn parse_sdp(sdp: &str) -> Result<SessionDescription, RpcError> {
    SessionDescription::parse(sdp).map_err(|e| RpcError::params(format!("malformed SDP: {e}")))
}

impl Hub {
    /// `join`: answers the publisher offer and sends the first subscriber offer.
    pub fn join(
        &mut self,
        params: rpc::JoinParams,
        notify: UnboundedSender<String>,
        client: super::Client<'_>,
    ) -> Result<(ParticipantId, String), RpcError> {
        if params.offer.kind != "offer" {
            return Err(RpcError::params("join: offer.type must be \"offer\""));
        }
        // `ns:room` in a namespace (cluster::qualify): the room part is checked.
        let room_part = params.sid.split_once(':').map_or(params.sid.as_str(), |(_, r)| r);
        crate::http::validate_room(room_part).map_err(|e| RpcError::params(format!("join: sid: {}", e.message)))?;
        if params.uid.is_empty() || params.uid.len() > 128 {
            return Err(RpcError::params("join: uid must be 1-128 characters"));
        }
        let offer = parse_sdp(&params.offer.sdp)?;
        let room = params.sid.clone();
        let count = self.rooms.get(&room).map_or(0, |r| r.participants.len());
        if count >= self.limits.max_participants {
            return Err(RpcError::new(
                rpc::ROOM_FULL,
                format!("room '{room}' is full ({} participants, room.max_participants)", self.limits.max_participants),
            ));
        }
        self.admit(&room, super::Role::Participant, client).map_err(|e| RpcError::new(rpc::LIMIT, e.to_string()))?;
        let pub_ice = self.local_ice();
        let answer = sdp::answer_publish_with(&offer, &pub_ice, room_publish_options())
            .map_err(|e| RpcError::new(rpc::REFUSED, format!("offer refused: {e}")))?;
        let config = params.config.unwrap_or_default();
        self.check_publish(&config, answer.media.len())?;

        let (publisher, _) = self
            .new_session(SessionKind::Publisher, &room, &pub_ice, Some(&answer.remote), None, Some(&params.uid), client)
            .map_err(|e| RpcError::new(rpc::INTERNAL_ERROR, e.to_string()))?;
        let sub_ice = self.local_ice();
        let (subscriber, _) = self
            .new_session(SessionKind::Subscriber, &room, &sub_ice, None, None, Some(&params.uid), client)
            .map_err(|e| RpcError::new(rpc::INTERNAL_ERROR, e.to_string()))?;
        let pid = ParticipantId(self.next_id);
        self.next_id += 1;
        for sid in [publisher, subscriber] {
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.participant = Some(pid);
            }
        }
        // ion-sdk-js's join() resolves when this channel opens on the subscriber PC.
        let api_channel = self.sessions.get_mut(&subscriber).and_then(|s| s.dc.as_mut()).map(|dc| dc.open("ion-sfu"));
        self.participants.insert(
            pid,
            Participant {
                uid: params.uid.clone(),
                room: room.clone(),
                publisher,
                subscriber,
                pub_ice,
                sub_offer: SubscriberOffer::new(sub_ice, true),
                published: HashMap::new(),
                ssrcs: HashMap::new(),
                downtracks: Vec::new(),
                notify,
                config,
                pub_remote_ufrag: answer.remote.ice_ufrag.clone(),
                offer_sent: None,
                api_channel,
            },
        );
        self.room_entry(&room).participants.push(pid);
        info!(participant = pid.0, uid = %params.uid, room = %room, "participant joined");
        self.participant_joined(&room, &params.uid);
        self.apply_published(pid, &answer.media);
        self.refresh_room(&room);
        Ok((pid, answer.sdp))
    }

    fn check_publish(&self, config: &rpc::JoinConfig, n: usize) -> Result<(), RpcError> {
        if config.no_publish && n > 0 {
            return Err(RpcError::new(rpc::REFUSED, "this participant joined with NoPublish: it cannot publish tracks"));
        }
        if n > self.limits.max_tracks_per_participant {
            return Err(RpcError::new(
                rpc::REFUSED,
                format!("{n} tracks offered; the limit is {} (room.max_tracks_per_participant)", self.limits.max_tracks_per_participant),
            ));
        }
        Ok(())
    }

    /// `offer`: a publisher renegotiation (tracks added or removed).
    pub fn publisher_offer(&mut self, pid: ParticipantId, desc: rpc::Description) -> Result<String, RpcError> {
        if desc.kind != "offer" {
            return Err(RpcError::params("offer: desc.type must be \"offer\""));
        }
        let offer = parse_sdp(&desc.sdp)?;
        let p = self.participants.get(&pid).ok_or_else(|| RpcError::new(rpc::NOT_JOINED, "join first"))?;
        let answer = sdp::answer_publish_with(&offer, &p.pub_ice, room_publish_options())
            .map_err(|e| RpcError::new(rpc::REFUSED, format!("offer refused: {e}")))?;
        if answer.remote.ice_ufrag != p.pub_remote_ufrag {
            return Err(RpcError::new(
                rpc::REFUSED,
                "ICE restart on the publisher PC is not supported; leave and join again",
            ));
        }
        self.check_publish(&p.config, answer.media.len())?;
        let room = p.room.clone();
        self.apply_published(pid, &answer.media);
        self.refresh_room(&room);
        Ok(answer.sdp)
    }

    /// Diffs what the publisher PC now sends against what it sent, and
    /// tells every shard.
    fn apply_published(&mut self, pid: ParticipantId, media: &[sdp::PublishedMedia]) {
        let Some(p) = self.participants.get(&pid) else { return };
        let (publisher, room, uid) = (p.publisher, p.room.clone(), p.uid.clone());
        let old = p.published.clone();
        let mut now_published = HashMap::new();
        for m in media {
            if let Some(&t) = old.get(&m.mid) {
                now_published.insert(m.mid.clone(), t);
                continue;
            }
            let track = self.add_uptrack(publisher, m);
            let stream_id = m.stream_id.clone().unwrap_or_else(|| uid.clone());
            if let Some(r) = self.rooms.get_mut(&room) {
                r.tracks.push(RoomTrack { id: track, kind: m.kind, codec: m.codec.clone(), owner: publisher, stream_id, red: m.red_pt.is_some(), layers: m.layers.len() });
            }
            info!(participant = pid.0, track = track.0, kind = m.kind.as_str(), codec = %m.codec.name, "track published");
            self.track_published(&room, &uid, track, m.kind);
            now_published.insert(m.mid.clone(), track);
        }
        for (mid, track) in &old {
            if !now_published.contains_key(mid) {
                self.dataplane.broadcast(|| Command::RemoveUptrack(*track));
                let mut kind = None;
                if let Some(r) = self.rooms.get_mut(&room) {
                    kind = r.tracks.iter().find(|t| t.id == *track).map(|t| t.kind);
                    r.tracks.retain(|t| t.id != *track);
                }
                info!(participant = pid.0, track = track.0, "track unpublished");
                if let Some(kind) = kind {
                    self.track_unpublished(&room, &uid, *track, kind);
                }
            }
        }
        if let Some(s) = self.sessions.get_mut(&publisher) {
            s.tracks = now_published.values().copied().collect();
        }
        if let Some(p) = self.participants.get_mut(&pid) {
            p.published = now_published;
        }
    }

    /// `answer`: the subscriber PC's answer to our last offer.
    pub fn subscriber_answer(&mut self, pid: ParticipantId, desc: rpc::Description) -> Result<(), RpcError> {
        if desc.kind != "answer" {
            return Err(RpcError::params("answer: desc.type must be \"answer\""));
        }
        let answer = parse_sdp(&desc.sdp)?;
        let p = self.participants.get_mut(&pid).ok_or_else(|| RpcError::new(rpc::NOT_JOINED, "join first"))?;
        let result = p
            .sub_offer
            .apply_answer(&answer)
            .map_err(|e| RpcError::new(rpc::REFUSED, format!("answer refused: {e}")))?;
        let subscriber = p.subscriber;
        if let Some(remote) = &result.remote {
            self.start_subscriber_dtls(subscriber, remote);
        }
        // Downtracks for what the browser agreed to receive.
        let p = self.participants.get_mut(&pid).ok_or_else(|| RpcError::new(rpc::NOT_JOINED, "join first"))?;
        p.offer_sent = None;
        let mut add = Vec::new();
        for t in &result.tracks {
            let Some(track) = parse_track_label(&t.track.track_id) else { continue };
            if !p.downtracks.contains(&track) {
                p.downtracks.push(track);
                add.push(specs::room_downtrack(subscriber, track, t));
            }
        }
        for spec in add {
            self.dataplane.broadcast(|| Command::AddDowntrack(spec.clone()));
        }
        self.maybe_offer(pid);
        Ok(())
    }

    /// The subscriber PC's peer is known now: start its DTLS endpoint and
    /// feed it whatever arrived before the answer did.
    fn start_subscriber_dtls(&mut self, session: SessionId, remote: &sdp::RemoteParams) {
        let Some(s) = self.sessions.get_mut(&session) else { return };
        if s.dtls.is_some() {
            return;
        }
        match crate::dtls::DtlsServer::new(&self.dtls, remote.fingerprint.clone()) {
            Ok(d) => s.dtls = Some(d),
            Err(e) => {
                warn!(session = session.0, error = %e, "subscriber DTLS setup failed");
                return;
            }
        }
        let early = std::mem::take(&mut s.early_dtls);
        for d in early {
            self.on_dtls(session, &d);
        }
    }

    /// Recomputes every room session's subscriptions after a track change.
    pub(super) fn refresh_room(&mut self, room: &str) {
        let Some(r) = self.rooms.get(room) else { return };
        let tracks = r.tracks.clone();
        let pids = r.participants.clone();
        for pid in pids {
            self.refresh_participant(pid, &tracks);
        }
    }

    fn refresh_participant(&mut self, pid: ParticipantId, tracks: &[RoomTrack]) {
        let Some(p) = self.participants.get_mut(&pid) else { return };
        // NoSubscribe/NoAutoSubscribe: the subscriber PC carries only the
        // data channel (sfud has no method to pick tracks by hand).
        let subscribes = !(p.config.no_subscribe || p.config.no_auto_subscribe);
        let wanted: Vec<&RoomTrack> = tracks.iter().filter(|t| subscribes && t.owner != p.publisher).collect();
        // Stop forwarding what is gone at once; the offer that tells the
        // browser follows (possibly queued behind one in flight).
        let gone: Vec<TrackId> = p.downtracks.iter().copied().filter(|d| !wanted.iter().any(|t| t.id == *d)).collect();
        p.downtracks.retain(|d| !gone.contains(d));
        for t in &gone {
            p.ssrcs.remove(t);
        }
        let subscriber = p.subscriber;
        let list: Vec<SubscriberTrack> = wanted
            .iter()
            .map(|t| {
                let (ssrc, rtx_ssrc) =
                    *p.ssrcs.entry(t.id).or_insert_with(|| (rand::random::<u32>() | 1, specs::rtx_ssrc_for(t.kind)));
                SubscriberTrack {
                    kind: t.kind,
                    codec: t.codec.clone(),
                    ssrc,
                    rtx_ssrc,
                    // Room offers carry no RED; the dataplane sends the primary.
                    red: false,
                    cname: t.stream_id.clone(),
                    stream_id: t.stream_id.clone(),
                    track_id: track_label(t.id),
                }
            })
            .collect();
        p.sub_offer.set_tracks(&list);
        for t in gone {
            self.dataplane.broadcast(|| Command::RemoveDowntrack { session: subscriber, track: t });
        }
        self.maybe_offer(pid);
    }

    /// Sends the next subscriber offer unless one is in flight.
    fn maybe_offer(&mut self, pid: ParticipantId) {
        let Some(p) = self.participants.get_mut(&pid) else { return };
        if p.sub_offer.awaiting_answer() || !p.sub_offer.needs_offer() {
            return;
        }
        let sdp = p.sub_offer.create_offer();
        p.offer_sent = Some(Instant::now());
        let msg = rpc::notification("offer", json!({ "type": "offer", "sdp": sdp }));
        let _ = p.notify.send(msg);
    }

    /// Participants whose subscriber PC never answered are closed.
    pub(super) fn expire_offers(&mut self, now: Instant) {
        let stale: Vec<ParticipantId> = self
            .participants
            .iter()
            .filter(|(_, p)| p.offer_sent.is_some_and(|t| now.duration_since(t) > ANSWER_TIMEOUT))
            .map(|(id, _)| *id)
            .collect();
        for pid in stale {
            warn!(participant = pid.0, "no answer to the subscriber offer within 10 s");
            self.leave(pid, "subscriber offer not answered");
        }
    }

    /// A participant is gone (leave, socket closed, ICE consent or DTLS failure).
    pub fn leave(&mut self, pid: ParticipantId, why: &str) {
        let Some(p) = self.participants.remove(&pid) else { return };
        if let Some(r) = self.rooms.get_mut(&p.room) {
            r.participants.retain(|x| *x != pid);
        }
        info!(participant = pid.0, uid = %p.uid, room = %p.room, why, "participant left");
        self.participant_left(&p.room, &p.uid);
        // Dropping the notify sender closes the participant's socket if it
        // is still open.
        self.drop_session(p.subscriber, why);
        self.drop_session(p.publisher, why);
    }

    pub fn rooms(&self) -> Vec<RoomInfo> {
        let now = Instant::now();
        let mut v: Vec<RoomInfo> = self
            .rooms
            .iter()
            .map(|(name, r)| RoomInfo {
                name: name.clone(),
                participants: r
                    .participants
                    .iter()
                    .filter_map(|pid| self.participants.get(pid))
                    .map(|p| ParticipantInfo { uid: p.uid.clone(), tracks: p.published.len() })
                    .collect(),
                tracks: r.tracks.len(),
                whip_publisher: r.publisher.is_some(),
                whep_viewers: r.viewers.len(),
                waiting_for_publisher_secs: self.waiting_secs(name, now),
                speakers: r.speakers.current().to_vec(),
                dominant_speaker: r.speakers.dominant().map(str::to_string),
                audio_levels: self.audio_level_info(r),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn participant_count(&self) -> usize {
        self.participants.len()
    }
}

fn room_publish_options() -> PublishOptions {
    PublishOptions { accept_data_channel: true, keep_inactive: true }
}

fn parse_track_label(label: &str) -> Option<TrackId> {
    label.strip_prefix("sfud-track-")?.parse().ok().map(TrackId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_labels_round_trip() {
        assert_eq!(parse_track_label(&track_label(TrackId(42))), Some(TrackId(42)));
        assert_eq!(parse_track_label("other"), None);
    }

}
