//! The I/O loop around one session's `Transport`: a tokio task that takes
//! the peer's DTLS datagrams (from the `Registry`) and the hub's requests
//! on bounded channels, sleeps until the transport's next timer, sends
//! datagrams to the owning shard and reports the rest to the hub. Nothing
//! here takes the hub's lock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use dataplane::msg::{Command, SessionId, ShardId};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn, Instrument};

use super::core::{Output, Transport};
use super::registry::{Registry, INBOX};
use crate::contain;
use crate::datachannel::ChannelId;
use crate::dtls::DtlsContext;

/// Requests from the hub a task may have waiting (fingerprints, data
/// channel messages). Kept apart from the datagram inbox so a flood of
/// datagrams cannot crowd them out.
const CONTROL: usize = 64;

/// Reports all tasks may have waiting for the hub. A task waits when it is
/// full, so nothing is lost and its own inbox fills instead.
pub const REPORTS: usize = 1024;

/// No shard has claimed the session yet.
const NO_SHARD: usize = usize::MAX;

/// The shards' command queues: a task sends its datagrams on the same
/// queue the hub uses, so each shard sees one session's commands in order.
#[derive(Clone)]
pub struct Shards(Arc<[flume::Sender<Command>]>);

impl Shards {
    pub fn new(commands: &[flume::Sender<Command>]) -> Self {
        Shards(commands.into())
    }

    fn send(&self, shard: ShardId, cmd: Command) {
        if let Some(tx) = self.0.get(shard) {
            let _ = tx.send(cmd);
        }
    }

    fn broadcast(&self, cmd: &Command) {
        for tx in self.0.iter() {
            let _ = tx.send(cmd.clone());
        }
    }
}

/// What a task tells the hub: every `Output` except datagrams.
#[derive(Debug)]
pub struct Report {
    pub session: SessionId,
    pub output: Output,
}

enum Control {
    RemoteFingerprint((String, String)),
    SendText { channel: ChannelId, text: String },
}

/// What the tasks share: made once by the hub.
#[derive(Clone)]
pub struct Spawner {
    ctx: DtlsContext,
    shards: Shards,
    registry: Registry,
    reports: mpsc::Sender<Report>,
}

/// The hub's side of one task. Dropping it (with the registry entry) ends
/// the task without a word to the peer; `finish` ends it with close_notify.
pub struct TransportHandle {
    control: mpsc::Sender<Control>,
    finish: Option<oneshot::Sender<()>>,
    shard: Arc<AtomicUsize>,
    /// The `ion-sfu` channel, when the hub opened one.
    api_channel: Option<ChannelId>,
}

impl Spawner {
    /// Also returns the receiving end of the reports, for the hub's loop.
    pub fn new(ctx: DtlsContext, shards: Shards) -> (Self, mpsc::Receiver<Report>) {
        let (reports, rx) = mpsc::channel(REPORTS);
        (Spawner { ctx, shards, registry: Registry::default(), reports }, rx)
    }

    pub fn ctx(&self) -> &DtlsContext {
        &self.ctx
    }

    pub fn registry(&self) -> Registry {
        self.registry.clone()
    }

    /// Starts `session`'s task, registered to receive its DTLS datagrams.
    /// `api_channel`: the channel the hub opened on `transport` beforehand.
    /// Must run inside the tokio runtime.
    pub fn spawn(&self, session: SessionId, transport: Transport, api_channel: Option<ChannelId>) -> TransportHandle {
        let (dtls_tx, dtls_rx) = mpsc::channel(INBOX);
        let (control_tx, control_rx) = mpsc::channel(CONTROL);
        let (finish_tx, finish_rx) = oneshot::channel();
        let shard = Arc::new(AtomicUsize::new(NO_SHARD));
        self.registry.insert(session, dtls_tx);
        let task = Task {
            session,
            transport,
            ctx: self.ctx.clone(),
            shards: self.shards.clone(),
            shard: shard.clone(),
            reports: self.reports.clone(),
        };
        let span = tracing::debug_span!("transport", session = session.0);
        tokio::spawn(task.run(dtls_rx, control_rx, finish_rx).instrument(span));
        TransportHandle { control: control_tx, finish: Some(finish_tx), shard, api_channel }
    }
}

impl TransportHandle {
    /// The shard that owns the session now (where datagrams go).
    pub fn set_shard(&self, shard: ShardId) {
        self.shard.store(shard, Ordering::Relaxed);
    }

    pub fn api_channel(&self) -> Option<ChannelId> {
        self.api_channel
    }

    /// The peer's fingerprint arrived (a subscriber PC's answer).
    pub fn set_remote_fingerprint(&self, fingerprint: (String, String)) {
        if self.control.try_send(Control::RemoteFingerprint(fingerprint)).is_err() {
            // Only a task hundreds of requests behind, or gone: the session
            // then fails to connect and is reaped.
            warn!("transport task did not take the peer's fingerprint");
        }
    }

    /// A text message on one of the session's data channels. A task that is
    /// behind loses it (logged): these are state updates that the next one
    /// supersedes (`audioLevels`, `activeLayer`).
    pub fn send_text(&self, channel: ChannelId, text: String) {
        if self.control.try_send(Control::SendText { channel, text }).is_err() {
            debug!("transport task behind; data channel message not sent");
        }
    }

    /// Ends the task after it sent close_notify (if connected) and then the
    /// dataplane's `RemoveSession`, in that order on the owning shard's
    /// queue. False when the task is already gone: the caller sends the
    /// `RemoveSession` itself.
    pub fn finish(&mut self) -> bool {
        self.finish.take().is_some_and(|f| f.send(()).is_ok())
    }
}

/// What woke a task.
enum Wake {
    /// The hub ended the session: with close_notify (true) or silently.
    Finish(bool),
    Datagram(Vec<u8>),
    Control(Control),
    Timer,
}

struct Task {
    session: SessionId,
    transport: Transport,
    ctx: DtlsContext,
    shards: Shards,
    shard: Arc<AtomicUsize>,
    reports: mpsc::Sender<Report>,
}

impl Task {
    async fn run(
        mut self,
        mut dtls: mpsc::Receiver<Vec<u8>>,
        mut control: mpsc::Receiver<Control>,
        mut finish: oneshot::Receiver<()>,
    ) {
        loop {
            let deadline = self.transport.poll_timeout();
            let timer = async move {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            // `biased`: an end request wins over anything still queued.
            let wake = tokio::select! {
                biased;
                end = &mut finish => Wake::Finish(end.is_ok()),
                Some(d) = dtls.recv() => Wake::Datagram(d),
                Some(c) = control.recv() => Wake::Control(c),
                () = timer => Wake::Timer,
            };
            let (transport, ctx) = (&mut self.transport, &self.ctx);
            let ok = match wake {
                Wake::Finish(close) => {
                    if close {
                        self.close_then_remove();
                    }
                    return;
                }
                Wake::Datagram(d) => contain::step("transport", || transport.handle_dtls(&d, Instant::now())),
                Wake::Control(Control::RemoteFingerprint(fp)) => contain::step("transport", || {
                    if let Err(e) = transport.set_remote_fingerprint(ctx, fp, Instant::now()) {
                        warn!(error = %e, "subscriber DTLS setup failed");
                    }
                }),
                Wake::Control(Control::SendText { channel, text }) => {
                    contain::step("transport", || transport.send_text(channel, &text, Instant::now()))
                }
                Wake::Timer => contain::step("transport", || transport.handle_timeout(Instant::now())),
            };
            if !ok {
                // The transport's state is suspect: the session ends.
                let output = Output::Failed { error: "controlplane panic in the transport task".into(), on_datagram: false };
                let _ = self.reports.send(Report { session: self.session, output }).await;
                // Stay until the hub ends the session: a `finish` still gets
                // its RemoveSession (without close_notify: no more DTLS).
                if finish.await.is_ok() {
                    self.shards.broadcast(&Command::RemoveSession(self.session));
                }
                return;
            }
            self.flush().await;
        }
    }

    async fn flush(&mut self) {
        while let Some(out) = self.transport.poll_output() {
            match out {
                Output::Transmit(datagrams) => self.transmit(datagrams),
                output => {
                    if self.reports.send(Report { session: self.session, output }).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    fn transmit(&self, datagrams: Vec<Vec<u8>>) {
        match self.shard.load(Ordering::Relaxed) {
            NO_SHARD => debug!(n = datagrams.len(), "no shard owns the session yet; DTLS datagrams not sent"),
            shard => self.shards.send(shard, Command::SendDtls { session: self.session, datagrams }),
        }
    }

    fn close_then_remove(&mut self) {
        self.transport.close();
        while let Some(out) = self.transport.poll_output() {
            if let Output::Transmit(datagrams) = out {
                self.transmit(datagrams);
            }
        }
        self.shards.broadcast(&Command::RemoveSession(self.session));
    }
}
