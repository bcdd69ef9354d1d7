//! WebRTC data channels (RFC 8831): SCTP (RFC 4960, over DTLS per RFC 8261)
//! with DCEP (RFC 8832) to open channels, as a sans-IO endpoint.
//!
//! SCTP itself is `sctp-proto`'s (the sans-IO stack str0m maintains); this
//! module only feeds it packets, maps its streams to channels, speaks DCEP
//! and turns text/binary messages into events.
//!
//! sfud is always the DTLS server, so it is also the SCTP server (the browser
//! sends INIT) and opens its own channels on odd stream ids (RFC 8832 §6).
//!
//! # Wiring (controlplane)
//! One [`DataChannels`] per WebRTC session whose SDP carried an m=application
//! section, next to its `DtlsServer`:
//! - `DtlsEvent::ApplicationData(p)` → [`DataChannels::handle_sctp`]`(&p, now)`;
//! - after every call into it, drain [`DataChannels::poll_transmit`] into
//!   `DtlsServer::send_application_data` (one SCTP packet = one DTLS record),
//!   then drain [`DataChannels::poll_event`];
//! - a timer fires at [`DataChannels::poll_timeout`] and calls
//!   [`DataChannels::handle_timeout`] (then drain transmits and events again).
//!
//! [`DataChannels::open`] may be called straight after construction (e.g.
//! `open("ion-sfu")` for ion-sdk-js); the DCEP OPEN goes out once the peer's
//! association is up, and [`DataChannelEvent::Opened`] follows its ACK.
//!
//! The SDP section sfud writes for it is [`SDP_LINES`] (or the structured
//! pieces [`SDP_MEDIA_KIND`], [`SDP_PROTO`], [`SDP_FORMAT`], [`SDP_ATTRIBUTES`]).

mod channels;
mod dcep;

#[cfg(test)]
pub(crate) mod tests;

pub use channels::DataChannels;
pub use dcep::{ChannelType, Message as DcepMessage, Open as DcepOpen, Reliability};

/// SCTP port on both sides (`a=sctp-port`, RFC 8841 §5).
pub const SCTP_PORT: u16 = 5000;

/// Largest message sfud accepts and sends (`a=max-message-size`, RFC 8841 §6).
/// Matches what Chromium and Firefox advertise.
pub const MAX_MESSAGE_SIZE: u32 = 262_144;

/// The m= line and attributes of sfud's m=application section, in order.
/// ICE/DTLS/mid/BUNDLE lines are the transport's, added as for media sections.
pub const SDP_LINES: [&str; 3] = [
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "a=sctp-port:5000",
    "a=max-message-size:262144",
];

/// m= kind of the data channel section.
pub const SDP_MEDIA_KIND: &str = "application";
/// m= proto of the data channel section (RFC 8841 §4.1).
pub const SDP_PROTO: &str = "UDP/DTLS/SCTP";
/// m= format of the data channel section.
pub const SDP_FORMAT: &str = "webrtc-datachannel";
/// (key, value) of the `a=` lines of the data channel section.
pub const SDP_ATTRIBUTES: [(&str, &str); 2] =
    [("sctp-port", "5000"), ("max-message-size", "262144")];

/// A channel, named by its SCTP stream id (the same id in both directions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u16);

/// One user message (RFC 8831 §6.6: PPID 51/56 text, 53/57 binary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageData {
    Text(String),
    Binary(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataChannelEvent {
    /// A channel is usable: one we opened was acknowledged by the peer, or
    /// the peer opened one (we have already sent its DATA_CHANNEL_ACK).
    Opened {
        id: ChannelId,
        label: String,
    },
    Message {
        id: ChannelId,
        data: MessageData,
    },
    /// The channel is gone: reset by either side, failed to open, or the
    /// association was lost (then every open channel gets one).
    Closed {
        id: ChannelId,
    },
}

#[derive(thiserror::Error, Debug)]
pub enum DataChannelError {
    #[error("no such data channel {0:?}")]
    UnknownChannel(ChannelId),
    #[error("data channel {0:?} is not open yet")]
    NotOpen(ChannelId),
    #[error("data channel {0:?} has too much unacknowledged data queued")]
    Congested(ChannelId),
    #[error("message of {0} bytes exceeds max-message-size")]
    MessageTooLarge(usize),
    #[error("label or protocol longer than 65535 bytes")]
    LabelTooLong,
    #[error("malformed DCEP message: {0}")]
    MalformedDcep(&'static str),
    #[error("SCTP refused the operation")]
    Sctp(#[from] sctp_proto::Error),
}
