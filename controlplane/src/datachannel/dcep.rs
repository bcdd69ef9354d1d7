//! DCEP, the Data Channel Establishment Protocol (RFC 8832): the two messages
//! that open a channel in-band on its SCTP stream, sent with PPID 50.

use super::DataChannelError;

/// Message type of DATA_CHANNEL_OPEN (RFC 8832 §8.2.1).
pub const MSG_OPEN: u8 = 0x03;
/// Message type of DATA_CHANNEL_ACK (RFC 8832 §8.2.1).
pub const MSG_ACK: u8 = 0x02;

/// Fixed part of DATA_CHANNEL_OPEN before the label and protocol.
const OPEN_HEADER_LEN: usize = 12;

/// The channel's delivery guarantees (RFC 8832 §5.1 "Channel Type"), which
/// the peer applies to both directions of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelType {
    pub ordered: bool,
    pub reliability: Reliability,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reliability {
    Reliable,
    /// At most this many retransmissions (the reliability parameter).
    MaxRetransmits(u32),
    /// Retransmit for at most this many milliseconds (the reliability parameter).
    MaxLifetimeMs(u32),
}

impl ChannelType {
    pub const RELIABLE_ORDERED: ChannelType = ChannelType {
        ordered: true,
        reliability: Reliability::Reliable,
    };

    fn from_wire(kind: u8, param: u32) -> Result<Self, DataChannelError> {
        // The high bit selects unordered delivery; the low bits the policy.
        let ordered = kind & 0x80 == 0;
        let reliability = match kind & 0x7f {
            0x00 => Reliability::Reliable,
            0x01 => Reliability::MaxRetransmits(param),
            0x02 => Reliability::MaxLifetimeMs(param),
            _ => return Err(DataChannelError::MalformedDcep("unknown channel type")),
        };
        Ok(ChannelType {
            ordered,
            reliability,
        })
    }

    fn to_wire(self) -> (u8, u32) {
        let (low, param) = match self.reliability {
            Reliability::Reliable => (0x00, 0),
            Reliability::MaxRetransmits(n) => (0x01, n),
            Reliability::MaxLifetimeMs(ms) => (0x02, ms),
        };
        let high = if self.ordered { 0x00 } else { 0x80 };
        (high | low, param)
    }
}

/// A parsed DATA_CHANNEL_OPEN, borrowing its strings from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Open<'a> {
    pub channel_type: ChannelType,
    pub priority: u16,
    pub label: &'a str,
    pub protocol: &'a str,
}

/// One DCEP message as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Open(Open<'a>),
    Ack,
}

impl<'a> Message<'a> {
    pub fn parse(buf: &'a [u8]) -> Result<Self, DataChannelError> {
        match buf.first() {
            Some(&MSG_ACK) => Ok(Message::Ack),
            Some(&MSG_OPEN) => Open::parse(buf).map(Message::Open),
            Some(_) => Err(DataChannelError::MalformedDcep("unknown message type")),
            None => Err(DataChannelError::MalformedDcep("empty message")),
        }
    }
}

impl<'a> Open<'a> {
    fn parse(buf: &'a [u8]) -> Result<Self, DataChannelError> {
        let header = buf
            .get(..OPEN_HEADER_LEN)
            .ok_or(DataChannelError::MalformedDcep(
                "truncated DATA_CHANNEL_OPEN",
            ))?;
        let be16 = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
        let kind = header[1];
        let priority = be16(2);
        let param = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let label_len = usize::from(be16(8));
        let protocol_len = usize::from(be16(10));

        let body = &buf[OPEN_HEADER_LEN..];
        // Trailing bytes past the declared lengths would mean a framing
        // disagreement with the sender; refuse rather than guess.
        if body.len() != label_len + protocol_len {
            return Err(DataChannelError::MalformedDcep(
                "label/protocol lengths do not match",
            ));
        }
        let (label, protocol) = body.split_at(label_len);
        let label = std::str::from_utf8(label)
            .map_err(|_| DataChannelError::MalformedDcep("label is not UTF-8"))?;
        let protocol = std::str::from_utf8(protocol)
            .map_err(|_| DataChannelError::MalformedDcep("protocol is not UTF-8"))?;

        Ok(Open {
            channel_type: ChannelType::from_wire(kind, param)?,
            priority,
            label,
            protocol,
        })
    }

    /// Appends the encoded message to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), DataChannelError> {
        let label_len =
            u16::try_from(self.label.len()).map_err(|_| DataChannelError::LabelTooLong)?;
        let protocol_len =
            u16::try_from(self.protocol.len()).map_err(|_| DataChannelError::LabelTooLong)?;
        let (kind, param) = self.channel_type.to_wire();
        out.reserve(OPEN_HEADER_LEN + self.label.len() + self.protocol.len());
        out.push(MSG_OPEN);
        out.push(kind);
        out.extend_from_slice(&self.priority.to_be_bytes());
        out.extend_from_slice(&param.to_be_bytes());
        out.extend_from_slice(&label_len.to_be_bytes());
        out.extend_from_slice(&protocol_len.to_be_bytes());
        out.extend_from_slice(self.label.as_bytes());
        out.extend_from_slice(self.protocol.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn open_round_trips() {
        let open = Open {
            channel_type: ChannelType {
                ordered: false,
                reliability: Reliability::MaxRetransmits(3),
            },
            priority: 256,
            label: "ion-sfu",
            protocol: "json",
        };
        let mut buf = Vec::new();
        open.write(&mut buf).unwrap();
        assert_eq!(buf[..2], [MSG_OPEN, 0x81]);
        assert_eq!(Message::parse(&buf).unwrap(), Message::Open(open));
    }

    #[test]
    fn parses_browser_open() {
        // Chromium's OPEN for createDataChannel("chat"): reliable ordered, priority 256.
        let wire = [3, 0, 1, 0, 0, 0, 0, 0, 0, 4, 0, 0, b'c', b'h', b'a', b't'];
        let Message::Open(open) = Message::parse(&wire).unwrap() else {
            panic!("not an OPEN");
        };
        assert_eq!(open.label, "chat");
        assert_eq!(open.protocol, "");
        assert_eq!(open.channel_type, ChannelType::RELIABLE_ORDERED);
    }

    #[test]
    fn rejects_bad_open() {
        assert!(Message::parse(&[]).is_err());
        assert!(Message::parse(&[9]).is_err());
        assert!(Message::parse(&[3, 0, 0]).is_err());
        // Declared label longer than the body.
        assert!(Message::parse(&[3, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, b'a']).is_err());
        // Unknown channel type.
        assert!(Message::parse(&[3, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        // Label not UTF-8.
        assert!(Message::parse(&[3, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xff]).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Message::parse(&buf);
        }

        #[test]
        fn open_header_with_random_tail_never_panics(
            kind in any::<u8>(),
            label_len in 0u16..40,
            protocol_len in 0u16..40,
            tail in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let mut buf = vec![MSG_OPEN, kind, 0, 0, 0, 0, 0, 1];
            buf.extend_from_slice(&label_len.to_be_bytes());
            buf.extend_from_slice(&protocol_len.to_be_bytes());
            buf.extend_from_slice(&tail);
            let _ = Message::parse(&buf);
        }
    }
}
