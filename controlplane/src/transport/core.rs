//! One session's transport as a sans-IO state machine: its DTLS server, its
//! SCTP data channels (room sessions only), and the DTLS datagrams that
//! arrive before the peer's fingerprint is known. Time comes in as `now`;
//! what to do comes out of `poll_output`. The task in `task.rs` drives it.

use std::collections::VecDeque;
use std::time::Instant;

use tracing::{debug, info, trace};

use crate::datachannel::{ChannelId, DataChannelEvent, DataChannels, MessageData};
use crate::dtls::{DtlsContext, DtlsError, DtlsEvent, DtlsServer};

/// DTLS datagrams kept while the peer's fingerprint is unknown (a
/// subscriber PC's ClientHello can beat the browser's answer). More are
/// dropped: the browser retransmits its flight.
pub const MAX_EARLY_DATAGRAMS: usize = 16;

/// Text messages passed on per input, as the hub did before: a peer cannot
/// make one step (and the hub) do unbounded work. Further ones in the same
/// step are logged and dropped.
const MAX_MESSAGES_PER_STEP: usize = 16;

/// What the transport asks its driver to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// DTLS datagrams for the peer, in order (`Command::SendDtls`).
    Transmit(Vec<Vec<u8>>),
    /// The handshake finished and the peer matched its fingerprint: the
    /// SRTP keys can be installed. Emitted once.
    Keys { srtp_profile: String, keying_material: Vec<u8> },
    /// A data channel is usable (ours acknowledged, or the peer's opened).
    ChannelOpened { label: String },
    /// A text message on a data channel.
    Message { text: String },
    /// The peer sent close_notify (our answering close_notify is already in
    /// a `Transmit` before this). The transport is done.
    PeerClosed,
    /// DTLS failed; the transport is done. `on_datagram`: it failed on a
    /// peer's datagram (counted as a failed handshake), not on a
    /// retransmission timer that gave up.
    Failed { error: String, on_datagram: bool },
}

pub struct Transport {
    dtls: Option<DtlsServer>,
    early: Vec<Vec<u8>>,
    dc: Option<DataChannels>,
    out: VecDeque<Output>,
    /// Set once PeerClosed or Failed went out: later inputs are ignored.
    done: bool,
}

impl Transport {
    /// `remote_fingerprint`: the peer's `a=fingerprint` if known now (an
    /// offer); None for a PC sfud offered, until its answer arrives.
    /// `data_channels`: whether the session carries SCTP (room sessions).
    pub fn new(
        ctx: &DtlsContext,
        remote_fingerprint: Option<(String, String)>,
        data_channels: bool,
        now: Instant,
    ) -> Result<Self, DtlsError> {
        let dtls = remote_fingerprint.map(|fp| DtlsServer::new(ctx, fp)).transpose()?;
        Ok(Transport {
            dtls,
            early: Vec::new(),
            dc: data_channels.then(|| DataChannels::new(now)),
            out: VecDeque::new(),
            done: false,
        })
    }

    /// Opens a data channel of ours (the `ion-sfu` API channel). The id is
    /// known at once; it opens on the wire when the association is up.
    /// None when the session has no data channels.
    pub fn open_channel(&mut self, label: &str) -> Option<ChannelId> {
        self.dc.as_mut().map(|dc| dc.open(label))
    }

    /// The peer's fingerprint is known now: start DTLS and feed it what
    /// arrived before. A second call changes nothing.
    pub fn set_remote_fingerprint(
        &mut self,
        ctx: &DtlsContext,
        fingerprint: (String, String),
        now: Instant,
    ) -> Result<(), DtlsError> {
        if self.dtls.is_some() || self.done {
            return Ok(());
        }
        self.dtls = Some(DtlsServer::new(ctx, fingerprint)?);
        for d in std::mem::take(&mut self.early) {
            self.handle_dtls(&d, now);
        }
        Ok(())
    }

    /// One DTLS datagram from the peer.
    pub fn handle_dtls(&mut self, datagram: &[u8], now: Instant) {
        if self.done {
            return;
        }
        let Some(dtls) = self.dtls.as_mut() else {
            if self.early.len() < MAX_EARLY_DATAGRAMS {
                self.early.push(datagram.to_vec());
            } else {
                trace!("early DTLS datagram dropped (buffer full)");
            }
            return;
        };
        if let Err(e) = dtls.handle_datagram(datagram, now) {
            self.fail(&e, true);
            return;
        }
        self.pump(now);
    }

    /// Retransmission timers (DTLS flights, SCTP) that are due by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.done {
            return;
        }
        if let Some(dc) = self.dc.as_mut() {
            if dc.poll_timeout().is_some_and(|t| t <= now) {
                dc.handle_timeout(now);
            }
        }
        if let Some(dtls) = self.dtls.as_mut() {
            if dtls.poll_timeout().is_some_and(|t| t <= now) {
                if let Err(e) = dtls.handle_timeout(now) {
                    self.fail(&e, false);
                    return;
                }
            }
        }
        self.pump(now);
    }

    /// Sends a text message on one of the session's channels. A channel not
    /// open yet, or congested, loses this message (logged): the callers'
    /// messages are state updates that the next one supersedes.
    pub fn send_text(&mut self, channel: ChannelId, text: &str, now: Instant) {
        if self.done {
            return;
        }
        let Some(dc) = self.dc.as_mut() else { return };
        match dc.send_text(channel, text) {
            Ok(()) => self.pump(now),
            Err(e) => debug!(error = %e, "data channel message not sent"),
        }
    }

    /// Sends close_notify if the handshake finished (it comes out as a
    /// `Transmit`), and stops: later inputs are ignored.
    pub fn close(&mut self) {
        if let Some(dtls) = self.dtls.as_mut() {
            dtls.close();
            self.take_datagrams();
        }
        self.done = true;
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When `handle_timeout` is next due, if ever.
    ///
    /// openssl keeps its DTLS retransmission timer on its own clock, so the
    /// DTLS part is "the process clock now plus what openssl has left"
    /// (`DtlsServer::poll_timeout`): the one clock read under this type.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.done {
            return None;
        }
        let dtls = self.dtls.as_ref().and_then(DtlsServer::poll_timeout);
        let sctp = self.dc.as_ref().and_then(DataChannels::poll_timeout);
        match (dtls, sctp) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    fn fail(&mut self, e: &DtlsError, on_datagram: bool) {
        // An alert openssl produced goes out, so the peer learns at once.
        self.take_datagrams();
        self.out.push_back(Output::Failed { error: e.to_string(), on_datagram });
        self.done = true;
    }

    /// Moves DTLS events into SCTP and SCTP packets into DTLS records
    /// (RFC 8261), then collects what came out.
    fn pump(&mut self, now: Instant) {
        let Some(dtls) = self.dtls.as_mut() else { return };
        let mut closed = false;
        while let Some(ev) = dtls.poll_event() {
            match ev {
                DtlsEvent::Connected { srtp_profile, keying_material } => {
                    self.out.push_back(Output::Keys { srtp_profile, keying_material });
                }
                DtlsEvent::ApplicationData(packet) => {
                    if let Some(dc) = self.dc.as_mut() {
                        dc.handle_sctp(&packet, now);
                    }
                }
                DtlsEvent::Closed => closed = true,
            }
        }
        if let Some(dc) = self.dc.as_mut() {
            if dtls.is_connected() {
                while let Some(packet) = dc.poll_transmit() {
                    if let Err(e) = dtls.send_application_data(&packet) {
                        debug!(error = %e, "SCTP packet not sent");
                    }
                }
            }
            let mut messages = 0;
            while let Some(ev) = dc.poll_event() {
                match ev {
                    DataChannelEvent::Opened { label, .. } => {
                        info!(%label, "data channel open");
                        self.out.push_back(Output::ChannelOpened { label });
                    }
                    DataChannelEvent::Message { data: MessageData::Text(text), .. } if messages < MAX_MESSAGES_PER_STEP => {
                        messages += 1;
                        self.out.push_back(Output::Message { text });
                    }
                    other => debug!(event = ?other, "data channel event"),
                }
            }
        }
        self.take_datagrams();
        if closed {
            self.out.push_back(Output::PeerClosed);
            self.done = true;
        }
    }

    fn take_datagrams(&mut self) {
        let Some(dtls) = self.dtls.as_mut() else { return };
        let mut datagrams = Vec::new();
        while let Some(d) = dtls.poll_datagram() {
            datagrams.push(d);
        }
        if !datagrams.is_empty() {
            self.out.push_back(Output::Transmit(datagrams));
        }
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
