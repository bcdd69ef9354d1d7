//! The systems under test, each started pinned to its core and driven
//! through its own signaling: sfud (WHIP/WHEP), the floor forwarder
//! (static registration), Janus VideoRoom (REST API, in janus.rs).

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use dataplane::srtp::{MasterKey, SrtpContext, SrtpProfile};

use crate::engine::{session_socket, Engine};
use crate::http;
use crate::media::{Repair, RtxCache, TrackGen};
use crate::sdp::{self, Kind, LocalParams, Section, PT_RTX};
use crate::simulcast::{CLASSES, LAYERS};
use dataplane::forward::twcc_receiver::TwccReceiver;
use crate::session::{Ice, Role, Session};

pub trait Target {
    fn name(&self) -> &'static str;
    fn pid(&self) -> i32;
    fn publish(&mut self, eng: &mut Engine, room: &str, kinds: &[Kind]) -> Result<usize>;
    fn subscribe(&mut self, eng: &mut Engine, room: &str, kinds: &[Kind]) -> Result<usize>;
    /// livestream-simulcast: a publisher of the three `simulcast::LAYERS`.
    fn publish_simulcast(&mut self, _eng: &mut Engine, _room: &str) -> Result<usize> {
        bail!("{} does not take simulcast publishers in this bench", self.name())
    }
    /// livestream-simulcast: a video viewer of budget class `class`.
    fn subscribe_class(&mut self, _eng: &mut Engine, _room: &str, _class: u8) -> Result<usize> {
        bail!("{} has no budget viewers in this bench", self.name())
    }
    /// Target-side forwarded packet counter, when it has one.
    fn forwarded_packets(&self) -> Option<u64> {
        None
    }
    fn stop(&mut self);
}

pub struct Spawn {
    pub core: Option<usize>,
    pub log: PathBuf,
}

/// Starts `bin args` under `taskset -c core` (taskset execs, so the pid is
/// the target's own).
pub fn spawn(sp: &Spawn, bin: &str, args: &[&str], env: &[(&str, String)], preload: Option<&str>) -> Result<Child> {
    let log = File::create(&sp.log).with_context(|| format!("create {}", sp.log.display()))?;
    let mut cmd = match sp.core {
        Some(c) => {
            let mut k = Command::new("taskset");
            k.arg("-c").arg(c.to_string()).arg(bin);
            k
        }
        None => Command::new(bin),
    };
    cmd.args(args).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(p) = preload {
        cmd.env("LD_PRELOAD", p);
    }
    cmd.spawn().with_context(|| format!("spawn {bin}"))
}

pub fn kill(child: &mut Child) {
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn publisher_role(kinds: &[Kind], now: Instant) -> (Role, Vec<Section>) {
    let mut tracks = Vec::new();
    let mut sections = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        let ssrc: u32 = rand::random::<u32>() | 1;
        let g = TrackGen::new(*k, ssrc, now);
        // Video offers RTX like a browser; the answer decides whether it is used.
        let rtx = (*k == Kind::Video).then(|| (PT_RTX, rand::random::<u32>() | 1));
        sections.push(Section::plain(*k, i.to_string(), "sendonly", ssrc, g.pt, rtx));
        tracks.push(g);
    }
    let rtx = kinds.contains(&Kind::Video).then(RtxCache::new);
    (Role::publisher(tracks, rtx), sections)
}

/// One video section with the three layers as RIDs (no RTX: the scenario
/// has no loss, and RID repair streams would need repaired-rtp-stream-id).
fn simulcast_publisher(now: Instant) -> (Role, Vec<Section>) {
    let tracks: Vec<TrackGen> = LAYERS.iter().map(|m| TrackGen::new_layer(rand::random::<u32>() | 1, now, *m)).collect();
    let mut v = Section::plain(Kind::Video, "0".into(), "sendonly", tracks[0].ssrc, sdp::PT_VP8, None);
    v.rids = LAYERS.iter().map(|m| m.rid).collect();
    (Role::publisher(tracks, None), vec![v])
}

fn viewer_sections(kinds: &[Kind]) -> Vec<Section> {
    kinds
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let pt = if *k == Kind::Audio { sdp::PT_OPUS } else { sdp::PT_VP8 };
            Section::plain(*k, i.to_string(), "recvonly", rand::random(), pt, (*k == Kind::Video).then_some((PT_RTX, 0)))
        })
        .collect()
}

/// What the answer said about simulcast: a simulcast publisher needs every
/// layer accepted (else sfud would forward one encoding); a budget viewer
/// learns the transport-cc id and the downtrack's SSRC.
fn use_answered_simulcast(role: &mut Role, ans: &sdp::Remote) -> Result<()> {
    let video = ans.media.iter().find(|m| m.kind == Some(Kind::Video));
    match role {
        Role::Publisher { tracks, .. } => {
            let layers = tracks.iter().filter(|t| t.layer.is_some()).count();
            let accepted = video.map_or(0, |m| m.simulcast_recv.len());
            if layers > 0 && accepted != layers {
                bail!("answer accepted {accepted} of {layers} simulcast layers (a=simulcast:recv)");
            }
        }
        Role::Subscriber(r) => {
            if let (Some(b), Some(m)) = (r.budget.as_mut(), video) {
                b.media_ssrc = m.ssrcs.first().copied().unwrap_or(0);
                b.twcc = m.ext_id(sdp::TWCC_URI).map(|id| (id, TwccReceiver::new(r.own_ssrc)));
            }
        }
    }
    Ok(())
}

/// What the answer said about RTX: a publisher resends on its repair SSRC
/// only if `rtx` was accepted; a viewer learns the payload type and the
/// FID pairs that tell RTX packets from media.
fn use_answered_rtx(role: &mut Role, sections: &[Section], ans: &sdp::Remote) {
    let video = ans.media.iter().find(|m| m.kind == Some(Kind::Video));
    match role {
        Role::Publisher { repair, .. } => {
            let offered = sections.iter().find_map(|s| s.rtx.filter(|_| s.kind == Kind::Video));
            if let (Some(m), Some((_, ssrc))) = (video, offered) {
                *repair = m.rtx_pt.map(|pt| Repair::new(pt, ssrc));
            }
        }
        Role::Subscriber(r) => {
            if let Some(m) = video {
                r.rtx_pt = m.rtx_pt;
                r.fid = m.fid.clone();
            }
        }
    }
}

pub struct Sfud {
    child: Child,
    http: SocketAddr,
    fingerprint: String,
    pub resources: Vec<String>,
}

impl Sfud {
    pub fn start(bin: &str, sp: &Spawn, http: SocketAddr, fingerprint: String) -> Result<Self> {
        let env = vec![
            ("SFUD_DATAPLANE__SHARDS", "1".to_owned()),
            ("SFUD_DATAPLANE__CORES", format!("[{}]", sp.core.unwrap_or(0))),
            ("SFUD_HTTP__LISTEN", http.to_string()),
            ("SFUD_RTC__BIND_ADDRESS", "127.0.0.1".to_owned()),
            ("SFUD_ROOM__MAX_PARTICIPANTS", "100000".to_owned()),
            // The defaults (1000 subscribers a room, 5000 sessions, 64
            // pending per address) are below the largest steps.
            ("SFUD_LIMITS__MAX_SUBSCRIBERS_PER_ROOM", "100000".to_owned()),
            ("SFUD_LIMITS__MAX_SESSIONS", "100000".to_owned()),
            ("SFUD_LIMITS__MAX_PENDING_PER_ADDRESS", "100000".to_owned()),
            ("SFUD_METRICS__ENABLED", "false".to_owned()),
            ("SFUD_LOG__LEVEL", "warn".to_owned()),
        ];
        let child = spawn(sp, bin, &["run"], &env, None)?;
        let mut me = Self { child, http, fingerprint, resources: Vec::new() };
        let t0 = Instant::now();
        loop {
            if let Ok(r) = http::request(http, "GET", "/healthz", None, b"", Duration::from_secs(1)) {
                if r.status == 200 {
                    break;
                }
            }
            if let Ok(Some(st)) = me.child.try_wait() {
                bail!("sfud exited at start: {st} (log {})", sp.log.display());
            }
            if t0.elapsed() > Duration::from_secs(10) {
                me.stop();
                bail!("sfud did not answer /healthz in 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(me)
    }

    fn session(&mut self, eng: &mut Engine, path: &str, sections: &[Section], mut role: Role) -> Result<usize> {
        let (lu, lp) = (sdp::random_token(8), sdp::random_token(24));
        let local = LocalParams { ufrag: &lu, pwd: &lp, fingerprint: &self.fingerprint, setup: "active", cname: "bench" };
        let offer = sdp::write(&local, sections);
        let r = http::request(self.http, "POST", path, Some("application/sdp"), offer.as_bytes(), Duration::from_secs(10))?;
        if r.status != 201 {
            bail!("POST {path}: {} {}", r.status, r.text().trim());
        }
        if let Some(loc) = r.header("location") {
            self.resources.push(loc.to_owned());
        }
        let ans = sdp::parse(&r.text())?;
        let cand = sdp::pick_candidate(&ans).ok_or_else(|| anyhow!("answer has no usable candidate"))?;
        use_answered_rtx(&mut role, sections, &ans);
        use_answered_simulcast(&mut role, &ans)?;
        let sock = session_socket(cand)?;
        let now = Instant::now();
        let ice = Ice::new(lu, lp, ans.ufrag.clone(), ans.pwd.clone(), true);
        let label = path.to_owned();
        eng.add(sock, move |fd| {
            let mut s = Session::new_webrtc(fd, cand, ice, role, now);
            s.label = label;
            s
        })
    }

    /// sfud's own count of datagrams sent, summed over shards.
    pub fn packets_out(&self) -> Option<u64> {
        let r = http::request(self.http, "GET", "/api/v1/stats", None, b"", Duration::from_secs(2)).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        let shards = v.get("shards").and_then(|s| s.as_array()).cloned().or_else(|| v.as_array().cloned())?;
        Some(shards.iter().filter_map(|s| s.get("rtp_forwarded").and_then(|x| x.as_u64())).sum())
    }
}

impl Target for Sfud {
    fn name(&self) -> &'static str {
        "sfud"
    }
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
    fn publish(&mut self, eng: &mut Engine, room: &str, kinds: &[Kind]) -> Result<usize> {
        let (role, sections) = publisher_role(kinds, Instant::now());
        self.session(eng, &format!("/whip/{room}"), &sections, role)
    }
    fn subscribe(&mut self, eng: &mut Engine, room: &str, kinds: &[Kind]) -> Result<usize> {
        let sections = viewer_sections(kinds);
        self.session(eng, &format!("/whep/{room}"), &sections, Role::subscriber())
    }
    fn publish_simulcast(&mut self, eng: &mut Engine, room: &str) -> Result<usize> {
        let (role, sections) = simulcast_publisher(Instant::now());
        self.session(eng, &format!("/whip/{room}"), &sections, role)
    }
    fn subscribe_class(&mut self, eng: &mut Engine, room: &str, class: u8) -> Result<usize> {
        let mut sections = viewer_sections(&[Kind::Video]);
        sections[0].twcc = true;
        let c = CLASSES[usize::from(class)];
        self.session(eng, &format!("/whep/{room}"), &sections, Role::budget_subscriber(class, c.remb_bps))
    }
    fn forwarded_packets(&self) -> Option<u64> {
        self.packets_out()
    }
    fn stop(&mut self) {
        kill(&mut self.child);
    }
}

/// The floor forwarder (`sfu-bench floor-server`), same pinning.
pub struct Floor {
    child: Child,
    addr: SocketAddr,
}

/// The pre-shared key of floor mode (a benchmark constant, not a secret).
pub fn floor_key() -> MasterKey {
    MasterKey { profile: SrtpProfile::AeadAes128Gcm, key: [7; 16], salt: [9; 14] }
}

pub fn room_id(room: &str) -> u32 {
    // FNV-1a: stable, and rooms only need telling apart.
    room.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

impl Floor {
    pub fn start(self_exe: &str, sp: &Spawn, addr: SocketAddr) -> Result<Self> {
        let a = addr.to_string();
        let child = spawn(sp, self_exe, &["floor-server", "--listen", &a], &[], None)?;
        std::thread::sleep(Duration::from_millis(300));
        Ok(Self { child, addr })
    }
}

impl Target for Floor {
    fn name(&self) -> &'static str {
        "floor"
    }
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
    fn publish(&mut self, eng: &mut Engine, room: &str, kinds: &[Kind]) -> Result<usize> {
        let (role, _) = publisher_role(kinds, Instant::now());
        let mut hello = b"PUBL".to_vec();
        hello.extend_from_slice(&room_id(room).to_be_bytes());
        let sock = session_socket(self.addr)?;
        let addr = self.addr;
        eng.add(sock, move |fd| Session::new_floor(fd, addr, hello, None, role, Instant::now()))
    }
    fn subscribe(&mut self, eng: &mut Engine, room: &str, _kinds: &[Kind]) -> Result<usize> {
        let mut hello = b"JOIN".to_vec();
        hello.extend_from_slice(&room_id(room).to_be_bytes());
        let sock = session_socket(self.addr)?;
        let addr = self.addr;
        let rx = SrtpContext::new(&floor_key())?;
        eng.add(sock, move |fd| {
            Session::new_floor(fd, addr, hello, Some(rx), Role::subscriber(), Instant::now())
        })
    }
    /// PUBL + room + the layers' SSRCs, lowest first: the floor tells
    /// layers apart by SSRC.
    fn publish_simulcast(&mut self, eng: &mut Engine, room: &str) -> Result<usize> {
        let (role, _) = simulcast_publisher(Instant::now());
        let mut hello = b"PUBL".to_vec();
        hello.extend_from_slice(&room_id(room).to_be_bytes());
        if let Role::Publisher { tracks, .. } = &role {
            for t in tracks {
                hello.extend_from_slice(&t.ssrc.to_be_bytes());
            }
        }
        let sock = session_socket(self.addr)?;
        let addr = self.addr;
        eng.add(sock, move |fd| Session::new_floor(fd, addr, hello, None, role, Instant::now()))
    }
    /// JOIN + room + the one layer the class's budget allows (a static
    /// choice: no estimate, no keyframe gating). No REMB or transport-cc:
    /// the floor reads no feedback but NACKs.
    fn subscribe_class(&mut self, eng: &mut Engine, room: &str, class: u8) -> Result<usize> {
        let mut hello = b"JOIN".to_vec();
        hello.extend_from_slice(&room_id(room).to_be_bytes());
        hello.push(CLASSES[usize::from(class)].layer);
        let sock = session_socket(self.addr)?;
        let addr = self.addr;
        let rx = SrtpContext::new(&floor_key())?;
        eng.add(sock, move |fd| Session::new_floor(fd, addr, hello, Some(rx), Role::budget_subscriber(class, None), Instant::now()))
    }
    fn stop(&mut self) {
        kill(&mut self.child);
    }
}
