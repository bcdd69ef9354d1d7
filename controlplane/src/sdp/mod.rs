//! SDP (RFC 8866) parsing and writing, and the offer/answer rules sfud applies
//! to WHIP (publish) and WHEP (play) offers.
//!
//! sfud's side of every answer is fixed: ICE-lite with host candidates only
//! and no trickle (all candidates, then a=end-of-candidates), BUNDLE and
//! rtcp-mux only, DTLS server (a=setup:passive) with a sha-256 fingerprint.
//!
//! * Publish: each audio/video section that sends is answered recvonly with
//!   one codec (opus/48000/2 with the offered fmtp, so in-band FEC and DTX
//!   pass through; VP8, else H264 packetization-mode=1 preferring
//!   constrained baseline), plus on video the rtx format whose apt is that
//!   codec. No RED (not yet: see `publish`), no ulpfec/flexfec.
//! * Play: each receiving section gets the first unassigned track of its kind
//!   whose codec the viewer offered, answered sendonly with the viewer's
//!   payload type, and with the viewer's rtx for it (video) under an RTX SSRC
//!   of sfud's, announced in an a=ssrc-group:FID; sections left without a
//!   track are answered inactive.
//! * Both: the header extensions the dataplane uses (`ExtIds`: mid,
//!   abs-send-time, transport-wide-cc, audio level, video orientation,
//!   playout delay, dependency descriptor; rid and repaired-rid only from
//!   publishers) are answered with the offerer's ids, 1 to 14 only. Feedback
//!   is limited to nack, nack pli, ccm fir, and transport-cc exactly when its
//!   extension is answered, else goog-remb (see `feedback`). What was
//!   negotiated is reported as the dataplane's `ExtIds`, `Feedback` and RTX
//!   payload types.
//! * A section offered with port 0 and a=bundle-only inside an offered
//!   BUNDLE group (RFC 8843 §6; Firefox and GStreamer with max-bundle) is
//!   live and answered like any other.
//! * Anything else (data channels, unknown media, unsupported codecs, port
//!   0 alone) is rejected with port 0, as long as something is accepted; a
//!   rejected section still carries sfud's ICE credentials, fingerprint and
//!   setup, which strict parsers require, and the reason is logged at info.
//!
//! Rooms (ion-sfu's JSON-RPC protocol, docs/jsonrpc.md) give each participant
//! two PeerConnections: the publisher one is answered by `answer_publish_with`
//! (which can accept the client's data channel and keep removed tracks'
//! m-lines inactive), and on the subscriber one sfud is the offerer:
//! `SubscriberOffer` keeps its m-lines stable across renegotiations, and
//! offers rtx per video codec, transport-cc, and the extensions above with
//! ids fixed for the PeerConnection's life.

mod answer;
mod codec;
mod error;
mod extmap;
mod feedback;
mod frag;
mod lookup;
mod model;
mod offer;
mod parse;
mod publish;
mod red;
mod rtx;
mod simulcast;
mod subscribe;
mod transport;
mod write;

pub use codec::{decodes_unchanged, Codec, MediaKind};
/// What negotiation hands the dataplane: the same types its specs carry.
pub use dataplane::msg::{ExtIds, Feedback, RtxSpec};
pub use extmap::{
    ABS_SEND_TIME_URI, AUDIO_LEVEL_URI, DEPENDENCY_DESCRIPTOR_URI, PLAYOUT_DELAY_URI, VIDEO_CONTENT_TYPE_URI,
    REPAIRED_RID_URI, RID_URI, SDES_MID_URI, TRANSPORT_CC_URI, VIDEO_ORIENTATION_URI,
};
pub use error::{NegotiationError, SdpError};
pub use frag::{restart_answer, TrickleFragment, MAX_FRAG_BYTES};
pub use model::{
    Attribute, Direction, Extmap, MediaDescription, RtpMap, SessionDescription, SsrcGroup,
};
pub use parse::{MAX_MEDIA_SECTIONS, MAX_SDP_BYTES};
pub use answer::{DataChannelParams, MAX_MESSAGE_SIZE, SCTP_PORT};
pub use offer::{AnswerResult, AnsweredTrack, OfferSlot, SlotKind, SubscriberOffer, SubscriberTrack};
pub use publish::{
    answer_publish, answer_publish_with, PublishAnswer, PublishOptions, PublishedMedia,
};
pub use subscribe::{answer_subscribe, OfferedTrack, SubscribeAnswer, SubscribedMedia};
pub use transport::{LocalIce, RemoteParams};

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests_bundle;
#[cfg(test)]
mod tests_negotiate;
#[cfg(test)]
mod tests_offer;
#[cfg(test)]
mod tests_prop;
