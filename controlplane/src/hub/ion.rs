//! ion-sfu signaling, as ion-sfu modelled a participant: a publisher
//! PeerConnection (the client offers) and a subscriber PeerConnection (sfud
//! offers). What a participant receives is the rooms core's decision
//! (`Signal::Offer`); here it becomes SDP, one renegotiation at a time per
//! subscriber PC (one offer in flight, later changes queue behind it).
//! The JSON-RPC wire format and socket are `crate::signal::ion`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dataplane::msg::{SessionId, TrackId};
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;
use tracing::warn;

use super::whip::published;
use super::{specs, Hub, SessionKind};
use crate::datachannel::ChannelId;
use crate::room::{parse_track_label, track_label, Accepted, Join, ParticipantId, Protocol, Track};
use crate::sdp::{self, LocalIce, PublishOptions, SessionDescription, SubscriberOffer, SubscriberTrack};
use crate::signal::ion::rpc::{self, RpcError};

/// An ion participant's signaling state.
pub(super) struct IonPeer {
    subscriber: SessionId,
    pub_ice: LocalIce,
    sub_offer: SubscriberOffer,
    /// The SSRCs (primary, RTX) this subscriber sees for each track, stable
    /// across offers.
    ssrcs: HashMap<TrackId, (u32, Option<u32>)>,
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

impl IonPeer {
    pub(super) fn subscriber(&self) -> SessionId {
        self.subscriber
    }

    pub(super) fn api_channel(&self) -> Option<ChannelId> {
        self.api_channel
    }
}

/// A subscriber PC that does not answer within this is closed rather than
/// left wedged (ion-sfu waited forever).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

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
        if self.rooms.counts(&room).ion >= self.limits.max_participants {
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
        let join = Join {
            room: room.clone(),
            identity: params.uid.clone(),
            protocol: Protocol::Ion,
            publisher: Some(publisher),
            subscriber: Some(subscriber),
            // NoSubscribe/NoAutoSubscribe: the subscriber PC carries only the
            // data channel (sfud has no method to pick tracks by hand).
            subscribes: !(config.no_subscribe || config.no_auto_subscribe),
        };
        let pid = match self.rooms.join(join) {
            Ok(pid) => pid,
            Err(e) => {
                self.remove(publisher, "refused by the room");
                self.remove(subscriber, "refused by the room");
                return Err(RpcError::new(rpc::INTERNAL_ERROR, e.to_string()));
            }
        };
        self.attach(publisher, pid);
        self.attach(subscriber, pid);
        // Opened with the subscriber's transport (`new_session`).
        let api_channel = self.api_channel(subscriber);
        self.ion.insert(
            pid,
            IonPeer {
                subscriber,
                pub_ice,
                sub_offer: SubscriberOffer::new(sub_ice, true),
                ssrcs: HashMap::new(),
                notify,
                config,
                pub_remote_ufrag: answer.remote.ice_ufrag.clone(),
                offer_sent: None,
                api_channel,
            },
        );
        let _ = self.rooms.publish(pid, published(&answer.media, &params.uid));
        self.drive();
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
        let p = self.ion.get(&pid).ok_or_else(|| RpcError::new(rpc::NOT_JOINED, "join first"))?;
        let answer = sdp::answer_publish_with(&offer, &p.pub_ice, room_publish_options())
            .map_err(|e| RpcError::new(rpc::REFUSED, format!("offer refused: {e}")))?;
        if answer.remote.ice_ufrag != p.pub_remote_ufrag {
            return Err(RpcError::new(
                rpc::REFUSED,
                "ICE restart on the publisher PC is not supported; leave and join again",
            ));
        }
        self.check_publish(&p.config, answer.media.len())?;
        let uid = self.rooms.participant(pid).map(|p| p.identity.clone()).unwrap_or_default();
        let _ = self.rooms.publish(pid, published(&answer.media, &uid));
        self.drive();
        Ok(answer.sdp)
    }

    /// `answer`: the subscriber PC's answer to our last offer.
    pub fn subscriber_answer(&mut self, pid: ParticipantId, desc: rpc::Description) -> Result<(), RpcError> {
        if desc.kind != "answer" {
            return Err(RpcError::params("answer: desc.type must be \"answer\""));
        }
        let answer = parse_sdp(&desc.sdp)?;
        let p = self.ion.get_mut(&pid).ok_or_else(|| RpcError::new(rpc::NOT_JOINED, "join first"))?;
        let result = p
            .sub_offer
            .apply_answer(&answer)
            .map_err(|e| RpcError::new(rpc::REFUSED, format!("answer refused: {e}")))?;
        p.offer_sent = None;
        let subscriber = p.subscriber;
        if let Some(remote) = &result.remote {
            // Its transport starts DTLS and feeds it what arrived before.
            self.set_remote_fingerprint(subscriber, remote.fingerprint.clone());
        }
        // Downtracks for what the browser agreed to receive.
        let accepted = result
            .tracks
            .iter()
            .filter_map(|t| {
                let track = parse_track_label(&t.track.track_id)?;
                Some(Accepted { spec: specs::room_downtrack(subscriber, track, t), codec: t.track.codec.clone() })
            })
            .collect();
        let _ = self.rooms.answer(pid, accepted);
        self.drive();
        self.maybe_offer(pid);
        Ok(())
    }

    /// The core's `Signal::Offer`: the subscriber PC should carry exactly
    /// `tracks`; renegotiate when that changes what it carries.
    pub(super) fn offer_tracks(&mut self, pid: ParticipantId, tracks: &[Track]) {
        let Some(p) = self.ion.get_mut(&pid) else { return };
        p.ssrcs.retain(|id, _| tracks.iter().any(|t| t.id == *id));
        let list: Vec<SubscriberTrack> = tracks
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
        self.maybe_offer(pid);
    }

    /// Sends the next subscriber offer unless one is in flight.
    fn maybe_offer(&mut self, pid: ParticipantId) {
        let Some(p) = self.ion.get_mut(&pid) else { return };
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
            .ion
            .iter()
            .filter(|(_, p)| p.offer_sent.is_some_and(|t| now.duration_since(t) > ANSWER_TIMEOUT))
            .map(|(id, _)| *id)
            .collect();
        for pid in stale {
            warn!(participant = pid.0, "no answer to the subscriber offer within 10 s");
            self.leave(pid, "subscriber offer not answered");
        }
    }
}

fn room_publish_options() -> PublishOptions {
    PublishOptions { accept_data_channel: true, keep_inactive: true }
}
