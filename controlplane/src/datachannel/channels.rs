//! [`DataChannels`]: one SCTP association (server side) and the data
//! channels carried on its streams.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sctp_proto::{
    Association, AssociationHandle, DatagramEvent, Endpoint, EndpointConfig, EndpointEvent, Event,
    Payload, PayloadProtocolIdentifier as Ppi, ReliabilityType, ServerConfig, StreamEvent,
    Transmit, TransportConfig,
};

use super::dcep::{self, ChannelType, Reliability};
use super::{ChannelId, DataChannelError, DataChannelEvent, MessageData, MAX_MESSAGE_SIZE};

/// Largest SCTP packet we emit. DTLS adds up to ~65 bytes (CBC-SHA1 with
/// padding; ~37 with GCM), and the record must fit the 1200-byte datagrams
/// the DTLS layer is sized for, so nothing relies on IP fragmentation.
const MAX_SCTP_PACKET: u32 = 1120;
/// SCTP common header (12) + DATA chunk header (16), which sctp-proto adds
/// on top of its "max payload size".
const SCTP_DATA_OVERHEAD: u32 = 28;

/// Queued-but-unacknowledged bytes per channel beyond which sends are
/// refused, so a stalled peer cannot grow our memory without bound.
const MAX_BUFFERED_PER_CHANNEL: usize = 4 * 1024 * 1024;

/// sctp-proto addresses associations by socket address; the DTLS session
/// already identifies the peer, so any fixed address will do.
const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), super::SCTP_PORT);

/// RFC 8831 reserves stream 65535; it doubles as "no channel" when we run
/// out of odd ids.
const INVALID_STREAM: u16 = u16::MAX;

/// DCEP priority "normal" (RFC 8831 §6.4).
const PRIORITY_NORMAL: u16 = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Ours, waiting for the association to come up.
    Pending,
    /// Ours, DATA_CHANNEL_OPEN sent, no ACK yet.
    Opening,
    Open,
}

#[derive(Debug)]
struct Channel {
    label: String,
    state: State,
}

struct Assoc {
    handle: AssociationHandle,
    inner: Association,
    established: bool,
    /// It reported AssociationLost or HandshakeFailed. (sctp-proto's
    /// `is_closed` is no use here: a server association sits in CLOSED
    /// until the COOKIE ECHO arrives.)
    lost: bool,
    /// The endpoint already forgot it (it emitted Drained), so it must not
    /// be told again.
    drained: bool,
}

/// The channels of one association, kept apart from the association itself
/// so both can be borrowed mutably while handling an event.
#[derive(Debug)]
struct Table {
    channels: BTreeMap<u16, Channel>,
    /// Next odd stream id to try for a channel we open.
    next_local: u16,
    events: VecDeque<DataChannelEvent>,
    /// Reused encoding buffer for DCEP OPEN.
    scratch: Vec<u8>,
}

/// A sans-IO WebRTC data channel endpoint for one session (see the module
/// docs for how to wire it).
pub struct DataChannels {
    endpoint: Endpoint,
    assoc: Option<Assoc>,
    table: Table,
    transmits: VecDeque<Vec<u8>>,
    /// Latest time seen; sctp-proto needs one when polled for packets.
    now: Instant,
}

impl DataChannels {
    /// A server-side endpoint on port 5000 that waits for the peer's INIT.
    pub fn new(now: Instant) -> Self {
        let transport = TransportConfig::default()
            .with_local_port(super::SCTP_PORT)
            .with_remote_port(super::SCTP_PORT)
            .with_max_send_message_size(MAX_MESSAGE_SIZE)
            .with_max_receive_message_size(MAX_MESSAGE_SIZE);
        let mut server = ServerConfig::new();
        server.transport = Arc::new(transport);
        let mut endpoint_config = EndpointConfig::new();
        endpoint_config.max_payload_size(MAX_SCTP_PACKET - SCTP_DATA_OVERHEAD);

        Self {
            endpoint: Endpoint::new(Arc::new(endpoint_config), Some(Arc::new(server))),
            assoc: None,
            table: Table {
                channels: BTreeMap::new(),
                next_local: 1,
                events: VecDeque::new(),
                scratch: Vec::new(),
            },
            transmits: VecDeque::new(),
            now,
        }
    }

    /// Feeds one SCTP packet (one decrypted DTLS application-data record).
    /// Malformed packets are dropped, as SCTP requires.
    pub fn handle_sctp(&mut self, packet: &[u8], now: Instant) {
        self.now = now;
        let datagram = Bytes::copy_from_slice(packet);
        let Some((handle, event)) = self.endpoint.handle(now, PEER, None, None, datagram) else {
            tracing::trace!(len = packet.len(), "dropped SCTP packet");
            return;
        };
        match event {
            DatagramEvent::AssociationEvent(event) => match self.assoc.as_mut() {
                Some(assoc) if assoc.handle == handle => assoc.inner.handle_event(event),
                _ => tracing::debug!("SCTP packet for a forgotten association"),
            },
            DatagramEvent::NewAssociation(inner) => {
                if self.assoc.as_ref().is_some_and(|a| !a.lost) {
                    // One DTLS session carries one association (RFC 8261 §3).
                    tracing::debug!("ignoring INIT for a second SCTP association");
                    let _ = self.endpoint.handle_event(handle, EndpointEvent::drained());
                } else {
                    self.forget_association();
                    self.assoc = Some(Assoc {
                        handle,
                        inner,
                        established: false,
                        lost: false,
                        drained: false,
                    });
                }
            }
        }
        self.drive();
    }

    /// Next SCTP packet to hand to `DtlsServer::send_application_data`.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.assoc.as_ref().and_then(|a| a.inner.poll_timeout())
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if let Some(assoc) = self.assoc.as_mut() {
            assoc.inner.handle_timeout(now);
        }
        self.drive();
    }

    /// Whether the SCTP association is up (channels can be opened on the wire).
    pub fn is_established(&self) -> bool {
        self.assoc
            .as_ref()
            .is_some_and(|a| a.established && !a.lost)
    }

    /// Opens a reliable, ordered channel with this label and protocol "" on
    /// the next free odd stream id. Before the association is up it is queued
    /// and opened once established. [`DataChannelEvent::Opened`] follows the
    /// peer's ACK; [`DataChannelEvent::Closed`] if it could not be opened.
    pub fn open(&mut self, label: &str) -> ChannelId {
        let Some(id) = self.table.allocate_local_id() else {
            tracing::warn!("no free odd SCTP stream id for a new data channel");
            let id = ChannelId(INVALID_STREAM);
            self.table.events.push_back(DataChannelEvent::Closed { id });
            return id;
        };
        self.table.channels.insert(
            id,
            Channel {
                label: label.to_owned(),
                state: State::Pending,
            },
        );
        self.drive();
        ChannelId(id)
    }

    /// The channel with this label (the first, if several).
    pub fn by_label(&self, label: &str) -> Option<ChannelId> {
        self.table.channels.iter().find(|(_, c)| c.label == label).map(|(id, _)| ChannelId(*id))
    }

    /// Sends a text message (PPID 51, or 56 when empty).
    pub fn send_text(&mut self, ch: ChannelId, text: &str) -> Result<(), DataChannelError> {
        self.send(ch, text.as_bytes(), Ppi::String, Ppi::StringEmpty)
    }

    /// Sends a binary message (PPID 53, or 57 when empty).
    pub fn send_binary(&mut self, ch: ChannelId, data: &[u8]) -> Result<(), DataChannelError> {
        self.send(ch, data, Ppi::Binary, Ppi::BinaryEmpty)
    }

    /// Closes a channel by resetting its stream (RFC 8831 §6.7). Emits
    /// [`DataChannelEvent::Closed`] at once.
    pub fn close(&mut self, ch: ChannelId) {
        let Some(channel) = self.table.channels.remove(&ch.0) else {
            return;
        };
        if channel.state != State::Pending {
            if let Some(assoc) = self.assoc.as_mut() {
                if let Err(err) = assoc.inner.stream(ch.0).and_then(|mut s| s.close()) {
                    tracing::debug!(stream = ch.0, %err, "could not reset data channel stream");
                }
            }
        }
        self.table
            .events
            .push_back(DataChannelEvent::Closed { id: ch });
        self.drive();
    }

    pub fn poll_event(&mut self) -> Option<DataChannelEvent> {
        self.table.events.pop_front()
    }

    fn send(
        &mut self,
        ch: ChannelId,
        payload: &[u8],
        ppi: Ppi,
        empty_ppi: Ppi,
    ) -> Result<(), DataChannelError> {
        if payload.len() > MAX_MESSAGE_SIZE as usize {
            return Err(DataChannelError::MessageTooLarge(payload.len()));
        }
        let channel = self
            .table
            .channels
            .get(&ch.0)
            .ok_or(DataChannelError::UnknownChannel(ch))?;
        if channel.state == State::Pending {
            return Err(DataChannelError::NotOpen(ch));
        }
        let assoc = self
            .assoc
            .as_mut()
            .filter(|a| a.established)
            .ok_or(DataChannelError::NotOpen(ch))?;
        let mut stream = assoc.inner.stream(ch.0)?;
        if stream.buffered_amount()? > MAX_BUFFERED_PER_CHANNEL {
            return Err(DataChannelError::Congested(ch));
        }
        // An SCTP DATA chunk cannot be empty, so empty messages travel as
        // one zero byte under their own PPID (RFC 8831 §6.6).
        if payload.is_empty() {
            stream.write_with_ppi(&[0], empty_ppi)?;
        } else {
            stream.write_with_ppi(payload, ppi)?;
        }
        self.drive();
        Ok(())
    }

    /// Runs everything the association has to say after any input: its
    /// events, pending opens, and outgoing packets.
    fn drive(&mut self) {
        let Some(assoc) = self.assoc.as_mut() else {
            return;
        };
        while let Some(event) = assoc.inner.poll() {
            match event {
                Event::Connected => {
                    tracing::debug!("SCTP association established");
                    assoc.established = true;
                }
                Event::HandshakeFailed { reason } | Event::AssociationLost { reason } => {
                    tracing::debug!(%reason, "SCTP association ended");
                    assoc.established = false;
                    assoc.lost = true;
                    self.table.close_all();
                }
                Event::Stream(StreamEvent::Opened { .. }) => {
                    // Channels are announced by DCEP, not by the first DATA
                    // on a stream, so just keep sctp-proto's queue empty.
                    while assoc.inner.accept_stream().is_some() {}
                }
                Event::Stream(StreamEvent::Readable { id }) => {
                    self.table.read_stream(&mut assoc.inner, id);
                }
                Event::Stream(StreamEvent::Finished { id }) => self.table.finished(id),
                _ => {}
            }
        }
        if assoc.established && !assoc.lost {
            self.table.open_pending(&mut assoc.inner);
        }

        while let Some(event) = assoc.inner.poll_endpoint_event() {
            if event.is_drained() {
                assoc.drained = true;
            }
            let _ = self.endpoint.handle_event(assoc.handle, event);
        }
        while let Some(transmit) = assoc.inner.poll_transmit(self.now) {
            queue_transmit(&mut self.transmits, transmit);
        }
        while let Some(transmit) = self.endpoint.poll_transmit() {
            queue_transmit(&mut self.transmits, transmit);
        }
        if assoc.lost {
            self.forget_association();
        }
    }

    fn forget_association(&mut self) {
        if let Some(assoc) = self.assoc.take() {
            if !assoc.drained {
                let _ = self
                    .endpoint
                    .handle_event(assoc.handle, EndpointEvent::drained());
            }
            self.table.close_all();
        }
    }
}

fn queue_transmit(queue: &mut VecDeque<Vec<u8>>, transmit: Transmit) {
    if let Payload::RawEncode(packets) = transmit.payload {
        queue.extend(packets.iter().map(|p| p.to_vec()));
    }
}

impl Table {
    fn allocate_local_id(&mut self) -> Option<u16> {
        // Odd ids only; u16 wrapping keeps the parity (65535 + 2 = 1).
        for _ in 0..=u16::MAX / 2 {
            let id = self.next_local;
            self.next_local = self.next_local.wrapping_add(2);
            if id != INVALID_STREAM && !self.channels.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    fn open_pending(&mut self, assoc: &mut Association) {
        let pending: Vec<u16> = self
            .channels
            .iter()
            .filter(|(_, ch)| ch.state == State::Pending)
            .map(|(id, _)| *id)
            .collect();
        for id in pending {
            let Some(channel) = self.channels.get_mut(&id) else {
                continue;
            };
            match send_open(assoc, id, &channel.label, &mut self.scratch) {
                Ok(()) => channel.state = State::Opening,
                Err(err) => {
                    tracing::warn!(stream = id, %err, "could not open data channel");
                    self.channels.remove(&id);
                    self.events
                        .push_back(DataChannelEvent::Closed { id: ChannelId(id) });
                }
            }
        }
    }

    fn read_stream(&mut self, assoc: &mut Association, id: u16) {
        loop {
            let chunks = match assoc.stream(id).and_then(|mut s| s.read_sctp()) {
                Ok(Some(chunks)) => chunks,
                Ok(None) => return,
                Err(err) => {
                    tracing::trace!(stream = id, %err, "stream not readable");
                    return;
                }
            };
            let mut data = vec![0; chunks.len()];
            match chunks.read(&mut data) {
                Ok(n) => data.truncate(n),
                Err(err) => {
                    tracing::debug!(stream = id, %err, "could not reassemble message");
                    continue;
                }
            }
            self.on_message(assoc, id, chunks.ppi, data);
        }
    }

    fn on_message(&mut self, assoc: &mut Association, id: u16, ppi: Ppi, data: Vec<u8>) {
        let message = match ppi {
            Ppi::Dcep => return self.on_dcep(assoc, id, &data),
            Ppi::String => match String::from_utf8(data) {
                Ok(text) => MessageData::Text(text),
                Err(_) => {
                    tracing::debug!(stream = id, "dropping text message that is not UTF-8");
                    return;
                }
            },
            Ppi::StringEmpty => MessageData::Text(String::new()),
            Ppi::Binary => MessageData::Binary(data),
            Ppi::BinaryEmpty => MessageData::Binary(Vec::new()),
            _ => {
                tracing::debug!(stream = id, ?ppi, "dropping message with unknown PPID");
                return;
            }
        };
        let Some(channel) = self.channels.get_mut(&id) else {
            tracing::debug!(stream = id, "dropping message on a stream with no channel");
            return;
        };
        match channel.state {
            State::Open => {}
            // User data before the ACK means the peer did open it (RFC 8832 §6).
            State::Opening => {
                channel.state = State::Open;
                self.events.push_back(DataChannelEvent::Opened {
                    id: ChannelId(id),
                    label: channel.label.clone(),
                });
            }
            State::Pending => return,
        }
        self.events.push_back(DataChannelEvent::Message {
            id: ChannelId(id),
            data: message,
        });
    }

    fn on_dcep(&mut self, assoc: &mut Association, id: u16, data: &[u8]) {
        match dcep::Message::parse(data) {
            Err(err) => tracing::debug!(stream = id, %err, "dropping DCEP message"),
            Ok(dcep::Message::Ack) => {
                if let Some(channel) = self.channels.get_mut(&id) {
                    if channel.state == State::Opening {
                        channel.state = State::Open;
                        self.events.push_back(DataChannelEvent::Opened {
                            id: ChannelId(id),
                            label: channel.label.clone(),
                        });
                    }
                }
            }
            Ok(dcep::Message::Open(open)) => {
                if self.channels.contains_key(&id) {
                    tracing::debug!(stream = id, "DATA_CHANNEL_OPEN on a stream already in use");
                    return;
                }
                let acked = assoc.stream(id).and_then(|mut s| {
                    let (unordered, kind, value) = sctp_reliability(open.channel_type);
                    s.set_reliability_params(unordered, kind, value)?;
                    s.write_with_ppi(&[dcep::MSG_ACK], Ppi::Dcep)
                });
                if let Err(err) = acked {
                    tracing::debug!(stream = id, %err, "could not accept data channel");
                    let _ = assoc.stream(id).and_then(|mut s| s.close());
                    return;
                }
                tracing::debug!(stream = id, label = open.label, "peer opened data channel");
                self.channels.insert(
                    id,
                    Channel {
                        label: open.label.to_owned(),
                        state: State::Open,
                    },
                );
                self.events.push_back(DataChannelEvent::Opened {
                    id: ChannelId(id),
                    label: open.label.to_owned(),
                });
            }
        }
    }

    fn finished(&mut self, id: u16) {
        if self.channels.remove(&id).is_some() {
            self.events
                .push_back(DataChannelEvent::Closed { id: ChannelId(id) });
        }
    }

    fn close_all(&mut self) {
        for id in std::mem::take(&mut self.channels).into_keys() {
            self.events
                .push_back(DataChannelEvent::Closed { id: ChannelId(id) });
        }
    }
}

fn send_open(
    assoc: &mut Association,
    id: u16,
    label: &str,
    scratch: &mut Vec<u8>,
) -> Result<(), DataChannelError> {
    scratch.clear();
    dcep::Open {
        channel_type: ChannelType::RELIABLE_ORDERED,
        priority: PRIORITY_NORMAL,
        label,
        protocol: "",
    }
    .write(scratch)?;
    let mut stream = assoc.open_stream(id, Ppi::Dcep)?;
    let (unordered, kind, value) = sctp_reliability(ChannelType::RELIABLE_ORDERED);
    stream.set_reliability_params(unordered, kind, value)?;
    stream.write_with_ppi(scratch, Ppi::Dcep)?;
    Ok(())
}

fn sctp_reliability(channel_type: ChannelType) -> (bool, ReliabilityType, u32) {
    let (kind, value) = match channel_type.reliability {
        Reliability::Reliable => (ReliabilityType::Reliable, 0),
        Reliability::MaxRetransmits(n) => (ReliabilityType::Rexmit, n),
        Reliability::MaxLifetimeMs(ms) => (ReliabilityType::Timed, ms),
    };
    (!channel_type.ordered, kind, value)
}
