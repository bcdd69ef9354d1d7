//! Janus VideoRoom as the peer, driven through its REST API (one Janus
//! session per WebRTC handle so each long-poll only sees its own events).
//! Publishers offer (we are ICE-controlling, DTLS client); viewers get
//! Janus's offer and answer it (Janus controls ICE, we stay DTLS client).
//! A scenario room maps to one VideoRoom room with one publisher.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::engine::Engine;
use crate::http;
use crate::media::{RtxCache, TrackGen};
use crate::sdp::{self, Kind, LocalParams, Section};
use crate::session::{Ice, Role, Session, State};
use crate::target::{kill, room_id, spawn, Spawn, Target};

const API: &str = "127.0.0.1:8088";

pub struct Janus {
    child: Child,
    api: SocketAddr,
    fingerprint: String,
    control: (u64, u64),
    /// room name -> (room id, publisher id, publisher session index)
    rooms: HashMap<String, (u64, u64, usize)>,
    next_pub_id: u64,
}

fn tx() -> String {
    sdp::random_token(12)
}

impl Janus {
    pub fn start(bin: &str, conf: &Path, preload: &str, sp: &Spawn, fingerprint: String) -> Result<Self> {
        let conf = conf.canonicalize().with_context(|| format!("janus config dir {}", conf.display()))?;
        let jcfg = conf.join("janus.jcfg");
        let args = [
            "-C",
            jcfg.to_str().unwrap_or_default(),
            "-F",
            conf.to_str().unwrap_or_default(),
            "--ice-enforce-list=lo",
            "-i",
            "127.0.0.1",
        ];
        let pre = (!preload.is_empty()).then_some(preload);
        let child = spawn(sp, bin, &args, &[], pre)?;
        let api: SocketAddr = API.parse()?;
        let mut me = Self { child, api, fingerprint, control: (0, 0), rooms: HashMap::new(), next_pub_id: 1000 };
        let t0 = Instant::now();
        loop {
            if let Ok(r) = http::request(api, "GET", "/janus/info", None, b"", Duration::from_secs(1)) {
                if r.status == 200 {
                    break;
                }
            }
            if let Ok(Some(st)) = me.child.try_wait() {
                bail!("janus exited at start: {st} (log {})", sp.log.display());
            }
            if t0.elapsed() > Duration::from_secs(15) {
                me.stop();
                bail!("janus did not answer /janus/info in 15 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        me.control = me.attach()?;
        Ok(me)
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let r = http::request(self.api, "POST", path, Some("application/json"), body.to_string().as_bytes(), Duration::from_secs(10))?;
        let v: Value = serde_json::from_slice(&r.body).with_context(|| format!("janus reply to {path}: {}", r.text()))?;
        if v["janus"] == "error" {
            bail!("janus error on {path}: {}", v["error"]);
        }
        Ok(v)
    }

    /// A new Janus session with one VideoRoom handle.
    fn attach(&self) -> Result<(u64, u64)> {
        let v = self.post("/janus", &json!({"janus": "create", "transaction": tx()}))?;
        let sid = v["data"]["id"].as_u64().ok_or_else(|| anyhow!("create: {v}"))?;
        let v = self.post(&format!("/janus/{sid}"), &json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": tx()}))?;
        let hid = v["data"]["id"].as_u64().ok_or_else(|| anyhow!("attach: {v}"))?;
        Ok((sid, hid))
    }

    fn message(&self, h: (u64, u64), body: Value, jsep: Option<Value>) -> Result<Value> {
        let mut m = json!({"janus": "message", "transaction": tx(), "body": body});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        self.post(&format!("/janus/{}/{}", h.0, h.1), &m)
    }

    /// Long-polls the session until an event from the plugin arrives.
    fn wait_event(&self, sid: u64, want: impl Fn(&Value) -> bool) -> Result<Value> {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(15) {
            let r = http::request(self.api, "GET", &format!("/janus/{sid}?maxev=5"), None, b"", Duration::from_secs(35))?;
            let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            let evs = match v {
                Value::Array(a) => a,
                other => vec![other],
            };
            for e in evs {
                if let Some(err) = e["plugindata"]["data"].get("error") {
                    bail!("videoroom: {err}");
                }
                if want(&e) {
                    return Ok(e);
                }
            }
        }
        bail!("no matching Janus event in 15 s")
    }

    fn ensure_room(&mut self, room: &str) -> Result<u64> {
        let id = u64::from(room_id(room) & 0x7fff_ffff) + 1;
        let body = json!({
            "request": "create", "room": id, "publishers": 1, "bitrate": 2_500_000u64,
            "audiocodec": "opus", "videocodec": "vp8", "notify_joining": false, "fir_freq": 0
        });
        let v = self.message(self.control, body, None)?;
        let data = &v["plugindata"]["data"];
        if data["videoroom"] != "created" && data["error_code"].as_u64() != Some(427) {
            bail!("create room: {v}");
        }
        Ok(id)
    }

    fn socket() -> Result<(UdpSocket, u16)> {
        let s = UdpSocket::bind("127.0.0.1:0")?;
        let port = s.local_addr()?.port();
        Ok((s, port))
    }

    fn finish(eng: &mut Engine, sock: UdpSocket, remote: &sdp::Remote, ice: Ice, role: Role, label: String) -> Result<usize> {
        let cand = sdp::pick_candidate(remote).ok_or_else(|| anyhow!("Janus SDP has no usable candidate"))?;
        sock.connect(cand)?;
        sock.set_nonblocking(true)?;
        let now = Instant::now();
        eng.add(sock, move |fd| {
            let mut s = Session::new_webrtc(fd, cand, ice, role, now);
            s.label = label;
            s
        })
    }
}

fn with_candidate(mut sdp_text: String, port: u16) -> String {
    // Our one host candidate, in every section (BUNDLE makes them the same).
    let cand = format!("a=candidate:1 1 udp 2130706431 127.0.0.1 {port} typ host\r\na=end-of-candidates\r\n");
    let mut out = String::with_capacity(sdp_text.len() + 200);
    let mut first = true;
    for part in sdp_text.split_inclusive("\r\n") {
        if part.starts_with("m=") {
            if !first {
                out.push_str(&cand);
            }
            first = false;
        }
        out.push_str(part);
    }
    if !first {
        out.push_str(&cand);
    }
    sdp_text.clear();
    out
}

impl Target for Janus {
    fn name(&self) -> &'static str {
        "janus"
    }
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn publish(&mut self, eng: &mut Engine, room: &str, kinds: &[Kind]) -> Result<usize> {
        let rid = self.ensure_room(room)?;
        let h = self.attach()?;
        let pub_id = self.next_pub_id;
        self.next_pub_id += 1;
        let v = self.message(h, json!({"request": "join", "ptype": "publisher", "room": rid, "id": pub_id}), None)?;
        if v["janus"] != "ack" && v["janus"] != "success" {
            bail!("join: {v}");
        }
        self.wait_event(h.0, |e| e["plugindata"]["data"]["videoroom"] == "joined")?;
        let now = Instant::now();
        let mut tracks = Vec::new();
        let mut sections = Vec::new();
        for (i, k) in kinds.iter().enumerate() {
            let ssrc: u32 = rand::random::<u32>() | 1;
            let g = TrackGen::new(*k, ssrc, now);
            sections.push(Section::plain(*k, i.to_string(), "sendonly", ssrc, g.pt, None));
            tracks.push(g);
        }
        let (lu, lp) = (sdp::random_token(8), sdp::random_token(24));
        let (sock, port) = Self::socket()?;
        let local = LocalParams { ufrag: &lu, pwd: &lp, fingerprint: &self.fingerprint, setup: "active", cname: "bench" };
        let offer = with_candidate(sdp::write(&local, &sections), port);
        let body = json!({"request": "publish", "audio": kinds.contains(&Kind::Audio), "video": kinds.contains(&Kind::Video)});
        self.message(h, body, Some(json!({"type": "offer", "sdp": offer})))?;
        let ev = self.wait_event(h.0, |e| e.get("jsep").is_some())?;
        let answer = ev["jsep"]["sdp"].as_str().ok_or_else(|| anyhow!("no SDP in {ev}"))?;
        let remote = sdp::parse(answer)?;
        let ice = Ice::new(lu, lp, remote.ufrag.clone(), remote.pwd.clone(), true);
        let rtx = kinds.contains(&Kind::Video).then(RtxCache::new);
        let idx = Self::finish(eng, sock, &remote, ice, Role::publisher(tracks, rtx), format!("janus pub {room}"))?;
        self.rooms.insert(room.to_owned(), (rid, pub_id, idx));
        Ok(idx)
    }

    fn subscribe(&mut self, eng: &mut Engine, room: &str, _kinds: &[Kind]) -> Result<usize> {
        let &(rid, pub_id, pidx) = self.rooms.get(room).ok_or_else(|| anyhow!("no publisher in {room}"))?;
        // VideoRoom answers "No such feed" until the publisher's PeerConnection is up.
        let t0 = Instant::now();
        while eng.sessions.get(pidx).is_some_and(|s| s.state != State::Media) && t0.elapsed() < Duration::from_secs(10) {
            eng.run_until(Instant::now() + Duration::from_millis(20));
        }
        let h = self.attach()?;
        let mut offer_ev = None;
        for _ in 0..20 {
            self.message(h, json!({"request": "join", "ptype": "subscriber", "room": rid, "streams": [{"feed": pub_id}]}), None)?;
            match self.wait_event(h.0, |e| e.get("jsep").is_some()) {
                Ok(e) => {
                    offer_ev = Some(e);
                    break;
                }
                Err(e) if e.to_string().contains("428") || e.to_string().contains("No such feed") => {
                    eng.run_until(Instant::now() + Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
        let ev = offer_ev.ok_or_else(|| anyhow!("subscriber never got an offer"))?;
        let offer = ev["jsep"]["sdp"].as_str().ok_or_else(|| anyhow!("no SDP in {ev}"))?;
        let remote = sdp::parse(offer)?;
        let sections: Vec<Section> = remote
            .media
            .iter()
            .filter_map(|m| {
                Some(Section::plain(m.kind?, m.mid.clone(), "recvonly", rand::random(), m.pt?, None))
            })
            .collect();
        let (lu, lp) = (sdp::random_token(8), sdp::random_token(24));
        let (sock, port) = Self::socket()?;
        let local = LocalParams { ufrag: &lu, pwd: &lp, fingerprint: &self.fingerprint, setup: "active", cname: "bench" };
        let answer = with_candidate(sdp::write(&local, &sections), port);
        self.message(h, json!({"request": "start"}), Some(json!({"type": "answer", "sdp": answer})))?;
        let ice = Ice::new(lu, lp, remote.ufrag.clone(), remote.pwd.clone(), false);
        Self::finish(eng, sock, &remote, ice, Role::subscriber(), format!("janus sub {room}"))
    }

    fn stop(&mut self) {
        kill(&mut self.child);
    }
}
