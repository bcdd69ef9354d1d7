//! SDP (RFC 8866) parsing and writing, and the offer/answer rules sfud applies
//! to WHIP (publish) and WHEP (play) offers.
//!
//! sfud's side of every answer is fixed: ICE-lite with host candidates only
//! and no trickle (all candidates, then a=end-of-candidates), BUNDLE and
//! rtcp-mux only, DTLS server (a=setup:passive) with a sha-256 fingerprint.
//!
//! * Publish: each audio/video section that sends is answered recvonly with
//!   one codec (opus/48000/2; VP8, else H264 packetization-mode=1 preferring
//!   constrained baseline), no RTX/RED/FEC, feedback limited to nack, nack pli,
//!   ccm fir and goog-remb, and only the sdes:mid header extension.
//! * Play: each receiving section gets the first unassigned track of its kind
//!   whose codec the viewer offered, answered sendonly with the viewer's
//!   payload type; sections left without a track are answered inactive.
//! * Anything else (data channels, unknown media, unsupported codecs) is
//!   rejected with port 0, as long as something is accepted.
//!
//! Rooms (ion-sfu's JSON-RPC protocol, docs/jsonrpc.md) give each participant
//! two PeerConnections: the publisher one is answered by `answer_publish_with`
//! (which can accept the client's data channel and keep removed tracks'
//! m-lines inactive), and on the subscriber one sfud is the offerer:
//! `SubscriberOffer` keeps its m-lines stable across renegotiations.

mod answer;
mod codec;
mod error;
mod lookup;
mod model;
mod offer;
mod parse;
mod publish;
mod subscribe;
mod transport;
mod write;

pub use codec::{Codec, MediaKind};
pub use error::{NegotiationError, SdpError};
pub use model::{Attribute, Direction, MediaDescription, RtpMap, SessionDescription, SsrcGroup};
pub use parse::{MAX_MEDIA_SECTIONS, MAX_SDP_BYTES};
pub use answer::{DataChannelParams, MAX_MESSAGE_SIZE, SCTP_PORT};
pub use offer::{AnswerResult, AnsweredTrack, OfferSlot, SlotKind, SubscriberOffer, SubscriberTrack};
pub use publish::{
    answer_publish, answer_publish_with, PublishAnswer, PublishOptions, PublishedMedia,
    SDES_MID_URI,
};
pub use subscribe::{answer_subscribe, OfferedTrack, SubscribeAnswer, SubscribedMedia};
pub use transport::{LocalIce, RemoteParams};

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests_negotiate;
#[cfg(test)]
mod tests_offer;
#[cfg(test)]
mod tests_prop;
