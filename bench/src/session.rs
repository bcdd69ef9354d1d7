//! One client session: a full-ICE agent (controlling when we offered), the
//! DTLS client, SRTP, and either publishing (synthetic media, answering PLI
//! and NACK) or viewing (counting, loss, delay). Sans-IO: the engine hands
//! it datagrams and time and sends what it queues.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dataplane::rtcp::{iter_compound, RtcpPacket};
use dataplane::srtp::{SrtpContext, SrtpError};
use dataplane::stun::{attr, method, Class, Message, MessageWriter};
use openssl::ssl::SslContext;

use crate::dtls::{DtlsClient, DtlsState};
use crate::loss::Dropper;
use crate::media::{Histogram, MediaConfig, Repair, RtxCache, TrackGen, MAX_PACKET};
use crate::recv::{Budget, Receiver};
use crate::sdp::Kind;

pub const SLOT: usize = 1536;

/// Datagrams queued for one socket (flushed with one sendmmsg).
pub struct Outq {
    pub buf: Vec<u8>,
    pub lens: Vec<usize>,
}

impl Outq {
    pub const CAP: usize = 64;
    pub fn new() -> Self {
        Self { buf: vec![0; SLOT * Self::CAP], lens: Vec::with_capacity(Self::CAP) }
    }
    pub fn is_full(&self) -> bool {
        self.lens.len() >= Self::CAP
    }
    /// The next free slot; commit it with `commit`.
    pub fn slot(&mut self) -> &mut [u8] {
        let i = self.lens.len();
        &mut self.buf[i * SLOT..(i + 1) * SLOT]
    }
    pub fn commit(&mut self, len: usize) {
        self.lens.push(len);
    }
    pub fn push(&mut self, d: &[u8]) {
        if self.is_full() || d.len() > SLOT {
            return;
        }
        let n = d.len();
        self.slot()[..n].copy_from_slice(d);
        self.commit(n);
    }
}

/// Process-wide counters, read by the scenario runner at window edges.
pub struct Counters {
    pub rtp_rx: u64,
    pub bytes_rx: u64,
    pub rtcp_rx: u64,
    pub auth_fail: u64,
    pub replay: u64,
    pub other_err: u64,
    pub rtp_tx: u64,
    pub bytes_tx: u64,
    /// PLI/FIR received by publishers.
    pub plis: u64,
    /// NACK packets received by publishers, and the packets they resent
    /// (on RTX or on the primary SSRC).
    pub nacks: u64,
    pub retransmits: u64,
    /// Of those, sent as RTX (sfud accepted the publisher's `rtx`).
    pub retransmits_rtx: u64,
    /// Publishers' packets dropped on purpose (`--publisher-loss`).
    pub pub_dropped: u64,
    /// Viewers: media packets dropped on purpose (`--viewer-loss`; counted
    /// in rtp_rx too: the target sent them).
    pub dropped: u64,
    /// Viewers: NACK packets sent, sequence numbers requested, PLIs sent.
    pub nacks_tx: u64,
    pub nacked_seqs: u64,
    pub plis_tx: u64,
    /// Viewers: holes filled by an RTX packet, or by a resend on the primary SSRC.
    pub recovered_rtx: u64,
    pub recovered_primary: u64,
    /// Viewers: resends of packets already received or given up on.
    pub repairs_wasted: u64,
    pub delay: Histogram,
}

impl Counters {
    pub fn new() -> Self {
        Self {
            rtp_rx: 0,
            bytes_rx: 0,
            rtcp_rx: 0,
            auth_fail: 0,
            replay: 0,
            other_err: 0,
            rtp_tx: 0,
            bytes_tx: 0,
            plis: 0,
            nacks: 0,
            retransmits: 0,
            retransmits_rtx: 0,
            pub_dropped: 0,
            dropped: 0,
            nacks_tx: 0,
            nacked_seqs: 0,
            plis_tx: 0,
            recovered_rtx: 0,
            recovered_primary: 0,
            repairs_wasted: 0,
            delay: Histogram::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting for a successful Binding response.
    Ice,
    /// DTLS handshake in flight.
    Dtls,
    /// Floor mode: waiting for the forwarder to acknowledge a JOIN/PUBL.
    FloorJoin,
    Media,
    Failed,
}

pub enum Role {
    Publisher {
        tracks: Vec<TrackGen>,
        rtx: Option<RtxCache>,
        /// Set when the answer accepted RTX: resends go out on it.
        repair: Option<Repair>,
        drop: Option<Dropper>,
    },
    Subscriber(Receiver),
}

impl Role {
    pub fn publisher(tracks: Vec<TrackGen>, rtx: Option<RtxCache>) -> Self {
        Role::Publisher { tracks, rtx, repair: None, drop: None }
    }
    pub fn subscriber() -> Self {
        Role::Subscriber(Receiver::new(rand::random()))
    }
    /// A livestream-simulcast viewer of budget class `class`.
    pub fn budget_subscriber(class: u8, remb_bps: Option<u64>) -> Self {
        let mut r = Receiver::new(rand::random());
        r.budget = Some(Budget::new(class, remb_bps));
        Role::Subscriber(r)
    }
}

pub struct Ice {
    pub local_ufrag: String,
    pub local_pwd: String,
    pub remote_ufrag: String,
    pub remote_pwd: String,
    pub controlling: bool,
    pub tiebreaker: u64,
    tid: [u8; 12],
    pub ok: bool,
}

pub struct Session {
    pub fd: i32,
    pub remote: SocketAddr,
    pub state: State,
    pub role: Role,
    pub ice: Option<Ice>,
    dtls: Option<DtlsClient>,
    tx: Option<SrtpContext>,
    rx: Option<SrtpContext>,
    /// Floor mode: the JOIN/PUBL message to repeat until acknowledged.
    floor_hello: Option<Vec<u8>>,
    pub media_at: Option<Instant>,
    last_try: Instant,
    tries: u32,
    next_consent: Instant,
    /// Free text for reporting (room, resource URL, Janus handle).
    pub label: String,
    pub fail_reason: Option<String>,
}

/// Handles are built by the targets (sfud/Janus/floor) after signaling.
impl Session {
    pub fn new_webrtc(fd: i32, remote: SocketAddr, ice: Ice, role: Role, now: Instant) -> Self {
        Self {
            fd,
            remote,
            state: State::Ice,
            role,
            ice: Some(ice),
            dtls: None,
            tx: None,
            rx: None,
            floor_hello: None,
            media_at: None,
            last_try: now - Duration::from_secs(1),
            tries: 0,
            next_consent: now + Duration::from_secs(3),
            label: String::new(),
            fail_reason: None,
        }
    }

    /// Floor mode: plain RTP out (tx None), pre-shared SRTP keys in.
    pub fn new_floor(fd: i32, remote: SocketAddr, hello: Vec<u8>, rx: Option<SrtpContext>, role: Role, now: Instant) -> Self {
        let mut s = Self::new_webrtc(fd, remote, Ice::dummy(), role, now);
        s.ice = None;
        s.state = State::FloorJoin;
        s.floor_hello = Some(hello);
        s.rx = rx;
        s
    }

    pub fn is_publisher(&self) -> bool {
        matches!(self.role, Role::Publisher { .. })
    }

    /// Deliberate loss for this session (`seed`: its index, so runs repeat).
    pub fn set_loss(&mut self, cfg: &MediaConfig, seed: u64) {
        match &mut self.role {
            Role::Publisher { drop, .. } => *drop = Dropper::new(cfg.publisher_loss, seed),
            Role::Subscriber(r) => r.drop = Dropper::new(cfg.viewer_loss, seed),
        }
    }

    /// When this viewer next has NACK work (None: nothing pending).
    pub fn nack_due(&self) -> Option<Instant> {
        if self.state != State::Media {
            return None;
        }
        match &self.role {
            Role::Subscriber(r) => r.nack_due(),
            Role::Publisher { .. } => None,
        }
    }

    /// The engine's bookkeeping flag: this session is in its NACK list.
    pub fn nack_queued(&mut self) -> Option<&mut bool> {
        match &mut self.role {
            Role::Subscriber(r) => Some(&mut r.queued),
            Role::Publisher { .. } => None,
        }
    }

    pub fn poll_nacks(&mut self, now: Instant, out: &mut Outq, c: &mut Counters) {
        if self.state != State::Media {
            return;
        }
        if let Role::Subscriber(r) = &mut self.role {
            r.poll_nacks(now, self.tx.as_mut(), out, c);
        }
    }

    fn fail(&mut self, why: &str) {
        self.state = State::Failed;
        self.fail_reason = Some(why.to_owned());
    }

    /// Retransmissions and consent; call every few tens of ms.
    pub fn on_timer(&mut self, now: Instant, ctx: &SslContext, out: &mut Outq, dtls_out: &mut Vec<Vec<u8>>) {
        match self.state {
            State::Ice => {
                if now.duration_since(self.last_try) >= Duration::from_millis(100) {
                    if self.tries >= 150 {
                        return self.fail("ICE: no Binding success in 15 s");
                    }
                    self.tries += 1;
                    self.last_try = now;
                    self.send_check(out, true);
                }
            }
            State::Dtls => {
                if now.duration_since(self.last_try) >= Duration::from_millis(400) {
                    if self.tries >= 40 {
                        return self.fail("DTLS: handshake did not finish in 16 s");
                    }
                    self.tries += 1;
                    self.last_try = now;
                    if let Some(d) = &self.dtls {
                        d.retransmit(dtls_out);
                    }
                    for d in dtls_out.drain(..) {
                        out.push(&d);
                    }
                }
            }
            State::FloorJoin => {
                if now.duration_since(self.last_try) >= Duration::from_millis(100) {
                    if self.tries >= 100 {
                        return self.fail("floor: no acknowledgement");
                    }
                    self.tries += 1;
                    self.last_try = now;
                    if let Some(h) = &self.floor_hello {
                        out.push(h);
                    }
                }
            }
            State::Media => {
                if let Role::Subscriber(r) = &mut self.role {
                    r.poll_feedback(now, self.tx.as_mut(), out);
                }
                if self.ice.is_some() && now >= self.next_consent {
                    // RFC 7675 consent freshness: a check every ~5 s, jittered.
                    self.next_consent = now + Duration::from_millis(4000 + rand::random::<u64>() % 2000);
                    self.send_check(out, false);
                }
            }
            State::Failed => {}
        }
        let _ = ctx;
    }

    fn send_check(&mut self, out: &mut Outq, nominate: bool) {
        let Some(ice) = &mut self.ice else { return };
        if !nominate || ice.tid == [0; 12] {
            ice.tid = rand::random();
        }
        let user = format!("{}:{}", ice.remote_ufrag, ice.local_ufrag);
        let slot = out.slot();
        let Ok(mut w) = MessageWriter::new(slot, Class::Request, method::BINDING, &ice.tid) else { return };
        let ok = (|| {
            w.add_attr(attr::USERNAME, user.as_bytes())?;
            // Peer-reflexive priority, type preference 110 (RFC 8445 §5.1.2.1).
            w.add_u32(attr::PRIORITY, (110 << 24) | (65535 << 8) | 255)?;
            if ice.controlling {
                w.add_u64(attr::ICE_CONTROLLING, ice.tiebreaker)?;
                if nominate {
                    w.add_attr(attr::USE_CANDIDATE, &[])?;
                }
            } else {
                w.add_u64(attr::ICE_CONTROLLED, ice.tiebreaker)?;
            }
            w.add_message_integrity(ice.remote_pwd.as_bytes())?;
            w.add_fingerprint()
        })();
        if ok.is_ok() {
            let n = w.finish();
            out.commit(n);
        }
    }

    fn answer_check(&mut self, m: &Message, out: &mut Outq) {
        let Some(ice) = &self.ice else { return };
        if m.check_integrity(ice.local_pwd.as_bytes()).is_err() {
            return;
        }
        let tid = *m.transaction_id();
        let remote = self.remote;
        let slot = out.slot();
        let Ok(mut w) = MessageWriter::new(slot, Class::Success, method::BINDING, &tid) else { return };
        let ok = (|| {
            w.add_xor_address(attr::XOR_MAPPED_ADDRESS, remote)?;
            w.add_message_integrity(ice.local_pwd.as_bytes())?;
            w.add_fingerprint()
        })();
        if ok.is_ok() {
            let n = w.finish();
            out.commit(n);
        }
    }

    /// One datagram from the peer.
    pub fn on_datagram(
        &mut self,
        d: &mut [u8],
        now: Instant,
        ctx: &SslContext,
        cfg: &MediaConfig,
        out: &mut Outq,
        dtls_out: &mut Vec<Vec<u8>>,
        c: &mut Counters,
    ) {
        let Some(&b0) = d.first() else { return };
        match b0 {
            0..=3 => self.on_stun(d, now, ctx, out, dtls_out),
            20..=63 => self.on_dtls(d, now, ctx, out, dtls_out),
            128..=191 => self.on_srtp(d, now, cfg, out, c),
            b'O' if self.state == State::FloorJoin && d.starts_with(b"OKAY") => {
                self.state = State::Media;
                self.media_ready(now);
            }
            _ => {}
        }
    }

    fn media_ready(&mut self, now: Instant) {
        if let Role::Publisher { tracks, .. } = &mut self.role {
            for t in tracks.iter_mut() {
                t.next_at = now;
                t.force_key = true;
            }
        }
    }

    fn on_stun(&mut self, d: &[u8], now: Instant, ctx: &SslContext, out: &mut Outq, dtls_out: &mut Vec<Vec<u8>>) {
        let Ok(m) = Message::parse(d) else { return };
        if m.method() != method::BINDING {
            return;
        }
        match m.class() {
            Class::Request => self.answer_check(&m, out),
            Class::Success => {
                let Some(ice) = &mut self.ice else { return };
                if m.transaction_id() != &ice.tid || m.check_integrity(ice.remote_pwd.as_bytes()).is_err() {
                    return;
                }
                ice.ok = true;
                if self.state == State::Ice {
                    self.start_dtls(now, ctx, out, dtls_out);
                }
            }
            Class::Error => {
                if self.state == State::Ice {
                    let code = m.error_code().map(|(c, _)| c).unwrap_or(0);
                    self.fail(&format!("ICE: Binding error {code}"));
                }
            }
            Class::Indication => {}
        }
    }

    fn start_dtls(&mut self, now: Instant, ctx: &SslContext, out: &mut Outq, dtls_out: &mut Vec<Vec<u8>>) {
        let mut c = match DtlsClient::new(ctx, true) {
            Ok(c) => c,
            Err(e) => return self.fail(&format!("DTLS setup: {e}")),
        };
        self.state = State::Dtls;
        self.tries = 0;
        self.last_try = now;
        let _ = c.handle(None, dtls_out);
        for d in dtls_out.drain(..) {
            out.push(&d);
        }
        self.dtls = Some(c);
    }

    fn on_dtls(&mut self, d: &[u8], now: Instant, _ctx: &SslContext, out: &mut Outq, dtls_out: &mut Vec<Vec<u8>>) {
        let Some(c) = &mut self.dtls else { return };
        let st = c.handle(Some(d), dtls_out);
        for d in dtls_out.drain(..) {
            out.push(&d);
        }
        self.last_try = now;
        match st {
            DtlsState::Handshaking => {}
            DtlsState::Failed => self.fail("DTLS handshake failed"),
            DtlsState::Connected(txk, rxk) => match (SrtpContext::new(&txk), SrtpContext::new(&rxk)) {
                (Ok(tx), Ok(rx)) => {
                    self.tx = Some(tx);
                    self.rx = Some(rx);
                    self.state = State::Media;
                    self.media_ready(now);
                }
                _ => self.fail("SRTP context"),
            },
        }
    }

    fn on_srtp(&mut self, d: &mut [u8], now: Instant, cfg: &MediaConfig, out: &mut Outq, c: &mut Counters) {
        let _ = cfg;
        let len = d.len();
        let is_rtcp = d.get(1).is_some_and(|b| (192..=223).contains(b));
        let Some(rx) = &mut self.rx else { return };
        if is_rtcp {
            let n = match rx.unprotect_rtcp(d, len) {
                Ok(n) => n,
                Err(e) => return count_err(c, e),
            };
            c.rtcp_rx += 1;
            self.on_rtcp(n, d, out, c);
            return;
        }
        let Role::Subscriber(recv) = &mut self.role else { return };
        // The network's loss happens before decryption (a resend on the
        // primary SSRC must not look like a replay).
        if let Some(&b1) = d.get(1) {
            if recv.drop_arrival(b1 & 0x7f) {
                c.rtp_rx += 1;
                c.bytes_rx += len as u64;
                c.dropped += 1;
                return;
            }
        }
        let n = match rx.unprotect_rtp(d, len) {
            Ok(n) => n,
            Err(e) => return count_err(c, e),
        };
        let Ok(h) = dataplane::rtp::parse(&d[..n]) else {
            c.other_err += 1;
            return;
        };
        c.rtp_rx += 1;
        c.bytes_rx += len as u64;
        recv.on_budget_rtp(&h, &d[..n], len, now);
        recv.on_rtp(&h, &d[..n], now, c);
        if self.media_at.is_none() {
            self.media_at = recv.first_media;
        }
    }

    fn on_rtcp(&mut self, n: usize, d: &mut [u8], out: &mut Outq, c: &mut Counters) {
        let Role::Publisher { tracks, rtx, repair, .. } = &mut self.role else { return };
        let Some(tx) = &mut self.tx else { return };
        let mut nacked: [u16; 64] = [0; 64];
        let mut nn = 0;
        let mut nack_ssrc = 0;
        for p in iter_compound(&d[..n]) {
            match p {
                Ok(RtcpPacket::Pli { media_ssrc, .. }) => {
                    c.plis += 1;
                    // A simulcast encoder keys only the layer asked for;
                    // a PLI naming no track of ours keys every video.
                    let named = tracks.iter().any(|t| t.ssrc == media_ssrc);
                    for t in tracks.iter_mut().filter(|t| if named { t.ssrc == media_ssrc } else { t.kind == Kind::Video }) {
                        t.force_key = true;
                    }
                }
                Ok(RtcpPacket::Fir { .. }) => {
                    c.plis += 1;
                    for t in tracks.iter_mut().filter(|t| t.kind == Kind::Video) {
                        t.force_key = true;
                    }
                }
                Ok(RtcpPacket::Nack { media_ssrc, items, .. }) => {
                    c.nacks += 1;
                    nack_ssrc = media_ssrc;
                    for s in items.lost_sequences() {
                        if nn < nacked.len() {
                            nacked[nn] = s;
                            nn += 1;
                        }
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let Some(cache) = rtx else { return };
        if !tracks.iter().any(|t| t.ssrc == nack_ssrc && t.kind == Kind::Video) {
            return;
        }
        for &s in &nacked[..nn] {
            if out.is_full() {
                break;
            }
            let Some(p) = cache.get(s) else { continue };
            let slot = out.slot();
            let len = match repair {
                Some(r) => match r.wrap(p, slot) {
                    Some(n) => n,
                    None => continue,
                },
                None => {
                    slot[..p.len()].copy_from_slice(p);
                    p.len()
                }
            };
            if let Ok(m) = tx.protect_rtp(slot, len) {
                out.commit(m);
                c.retransmits += 1;
                c.retransmits_rtx += u64::from(repair.is_some());
            }
        }
    }

    /// Emits whatever media is due; returns the earliest next due time.
    pub fn publish_due(&mut self, now: Instant, cfg: &MediaConfig, out: &mut Outq, scratch: &mut [u8; MAX_PACKET], c: &mut Counters) -> Option<Instant> {
        if self.state != State::Media {
            return None;
        }
        let Role::Publisher { tracks, rtx, drop, .. } = &mut self.role else { return None };
        let mut next: Option<Instant> = None;
        for t in tracks.iter_mut() {
            if t.next_at <= now {
                let tx = &mut self.tx;
                t.frame(now, cfg, scratch, |pkt, seq| {
                    if out.is_full() {
                        return;
                    }
                    if t_is_video(pkt) {
                        if let Some(cache) = rtx.as_mut() {
                            cache.put(seq, pkt);
                        }
                        // Uplink loss: cached (so a NACK can repair it) but never sent.
                        if drop.as_mut().is_some_and(Dropper::drop_next) {
                            c.pub_dropped += 1;
                            return;
                        }
                    }
                    let slot = out.slot();
                    slot[..pkt.len()].copy_from_slice(pkt);
                    let n = match tx {
                        Some(ctx) => match ctx.protect_rtp(slot, pkt.len()) {
                            Ok(n) => n,
                            Err(_) => return,
                        },
                        None => pkt.len(),
                    };
                    out.commit(n);
                    c.rtp_tx += 1;
                    c.bytes_tx += n as u64;
                });
            }
            next = Some(next.map_or(t.next_at, |n: Instant| n.min(t.next_at)));
        }
        next
    }

    /// A livestream-simulcast viewer's class and what it saw.
    pub fn budget(&self) -> Option<&Budget> {
        match &self.role {
            Role::Subscriber(r) => r.budget.as_ref(),
            Role::Publisher { .. } => None,
        }
    }

    /// (expected, received) over all inbound streams.
    pub fn loss_totals(&self) -> (u64, u64) {
        match &self.role {
            Role::Subscriber(r) => r.loss_totals(),
            Role::Publisher { .. } => (0, 0),
        }
    }
}

fn t_is_video(pkt: &[u8]) -> bool {
    pkt.get(1).is_some_and(|b| b & 0x7f == crate::sdp::PT_VP8)
}

fn count_err(c: &mut Counters, e: SrtpError) {
    match e {
        SrtpError::AuthFailed => c.auth_fail += 1,
        SrtpError::Replay => c.replay += 1,
        _ => c.other_err += 1,
    }
}

impl Ice {
    pub fn new(local_ufrag: String, local_pwd: String, remote_ufrag: String, remote_pwd: String, controlling: bool) -> Self {
        Self { local_ufrag, local_pwd, remote_ufrag, remote_pwd, controlling, tiebreaker: rand::random(), tid: [0; 12], ok: false }
    }
    fn dummy() -> Self {
        Self::new(String::new(), String::new(), String::new(), String::new(), true)
    }
}
