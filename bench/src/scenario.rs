//! Scenarios named after LiveKit's benchmarks, grown step by step against
//! one running target, with the target's CPU and memory measured over a
//! fixed window at each step.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::engine::Engine;
use crate::procstat;
use crate::sdp::Kind;
use crate::session::{Session, State};
use crate::simulcast;
use crate::target::Target;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// 1 video publisher -> N viewers.
    Livestream,
    /// 10 audio publishers -> N listeners (each listener: 10 sessions, one per publisher's room).
    AudioRoom,
    /// N participants, each publishing audio+video and viewing the other N-1
    /// (N rooms of 1 publisher + N-1 viewers).
    Meeting,
    /// 1 publisher of three VP8 simulcast layers -> N viewers, a third each
    /// with a 200 kbit/s, a 600 kbit/s and no budget.
    LivestreamSimulcast,
}

pub const AUDIO_ROOM_PUBLISHERS: usize = 10;

#[derive(Serialize, Default, Clone, Debug)]
pub struct Step {
    /// Viewers (livestream), listeners (audio-room) or participants (meeting).
    pub n: usize,
    pub sessions: usize,
    pub publishers: usize,
    pub failed_sessions: usize,
    pub viewers_without_media: usize,
    pub setup_s: f64,
    pub window_s: f64,
    pub target_cpu_pct: f64,
    /// Everything the target's core did (process + softirq + other), percent.
    pub target_core_busy_pct: f64,
    pub target_core_softirq_pct: f64,
    pub gen_cpu_pct: f64,
    pub fwd_pps: f64,
    pub fwd_mbps: f64,
    pub cpu_us_per_pkt: f64,
    pub target_fwd_pkts: Option<u64>,
    pub expected: u64,
    pub received: u64,
    pub loss_pct: f64,
    pub delay_p50_ms: Option<f64>,
    pub delay_p99_ms: Option<f64>,
    pub auth_fail: u64,
    pub replay: u64,
    pub rss_kib: u64,
    pub rss_base_kib: u64,
    pub rss_per_session_kib: f64,
    pub pub_pps: f64,
    pub plis: u64,
    pub nacks: u64,
    /// Loss runs (all over the window): viewers' deliberate drops, NACK
    /// packets and sequence numbers they sent, holes refilled by RTX or by a
    /// resend on the primary SSRC, resends that were not needed, PLIs sent.
    pub viewer_loss: f64,
    pub dropped: u64,
    pub viewer_nacks: u64,
    pub viewer_nacked_seqs: u64,
    pub recovered_rtx: u64,
    pub recovered_primary: u64,
    pub repairs_wasted: u64,
    pub viewer_plis: u64,
    /// Publishers' deliberate drops, and the packets they resent when NACKed.
    pub publisher_loss: f64,
    pub pub_dropped: u64,
    pub pub_retransmits: u64,
    pub pub_retransmits_rtx: u64,
    /// livestream-simulcast: per budget class.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<ClassStep>,
}

/// One budget class over a step's window.
#[derive(Serialize, Default, Clone, Debug)]
pub struct ClassStep {
    pub class: &'static str,
    pub viewers: usize,
    /// The layer the budget allows (0 = q, 1 = h, 2 = f).
    pub expected_layer: u8,
    /// Mean per viewer, whole datagrams (SRTP and headers included).
    pub kbps_per_viewer: f64,
    /// Of that, RTX packets of media the viewer already had: sfud's probes.
    pub probe_kbps_per_viewer: f64,
    /// Viewers whose last keyframe was each layer's size, and those that
    /// saw no keyframe yet.
    pub on_layer: [usize; 3],
    pub no_keyframe: usize,
    /// Layer changes seen by the class's viewers in the window.
    pub switches: u64,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub scenario: Scenario,
    pub steps: Vec<usize>,
    pub warmup: Duration,
    pub window: Duration,
    /// Stop growing once a step loses more than this (percent).
    pub stop_loss_pct: f64,
    pub setup_timeout: Duration,
    pub target_core: usize,
}

impl Plan {
    /// Whether the load should grow no further after `step`: too much loss,
    /// or a saturated target core. run.sh reads it from the JSON too.
    pub fn stops_after(&self, step: &Step) -> bool {
        step.loss_pct > self.stop_loss_pct || step.target_cpu_pct > 98.0
    }
}

fn pump(eng: &mut Engine, d: Duration) {
    eng.run_until(Instant::now() + d);
}

/// Adds sessions, keeping media flowing between signaling calls.
fn add<T: Target + ?Sized>(t: &mut T, eng: &mut Engine, room: &str, kinds: &[Kind], publish: bool, added: &mut usize) {
    let r = if publish { t.publish(eng, room, kinds) } else { t.subscribe(eng, room, kinds) };
    match r {
        Ok(_) => {}
        Err(e) => eprintln!("{} {room}: {e:#}", if publish { "publish" } else { "subscribe" }),
    }
    *added += 1;
    if *added % 8 == 0 {
        pump(eng, Duration::from_millis(2));
    }
}

/// Waits until the given sessions finished ICE/DTLS, bounded.
fn settle(eng: &mut Engine, timeout: Duration, need_media: bool) {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        pump(eng, Duration::from_millis(50));
        let pending = eng
            .sessions
            .iter()
            .filter(|s| matches!(s.state, State::Ice | State::Dtls | State::FloorJoin))
            .count();
        let no_media = eng
            .sessions
            .iter()
            .filter(|s| s.state == State::Media && !s.is_publisher() && s.media_at.is_none())
            .count();
        if pending == 0 && (!need_media || no_media == 0) {
            return;
        }
    }
}

fn grow<T: Target + ?Sized>(t: &mut T, eng: &mut Engine, plan: &Plan, from: usize, to: usize) {
    let mut added = 0;
    match plan.scenario {
        Scenario::Livestream => {
            if from == 0 {
                add(t, eng, "live", &[Kind::Video], true, &mut added);
                settle(eng, plan.setup_timeout, false);
            }
            for _ in from..to {
                add(t, eng, "live", &[Kind::Video], false, &mut added);
            }
        }
        Scenario::LivestreamSimulcast => {
            if from == 0 {
                if let Err(e) = t.publish_simulcast(eng, "live") {
                    eprintln!("publish live (simulcast): {e:#}");
                }
                settle(eng, plan.setup_timeout, false);
            }
            for i in from..to {
                if let Err(e) = t.subscribe_class(eng, "live", simulcast::class_of(i)) {
                    eprintln!("subscribe live (class {}): {e:#}", simulcast::class_of(i));
                }
                added += 1;
                if added % 8 == 0 {
                    pump(eng, Duration::from_millis(2));
                }
            }
        }
        Scenario::AudioRoom => {
            if from == 0 {
                for p in 0..AUDIO_ROOM_PUBLISHERS {
                    add(t, eng, &format!("ar{p}"), &[Kind::Audio], true, &mut added);
                }
                settle(eng, plan.setup_timeout, false);
            }
            for _ in from..to {
                for p in 0..AUDIO_ROOM_PUBLISHERS {
                    add(t, eng, &format!("ar{p}"), &[Kind::Audio], false, &mut added);
                }
            }
        }
        Scenario::Meeting => {
            let av = [Kind::Audio, Kind::Video];
            for k in from..to {
                add(t, eng, &format!("m{k}"), &av, true, &mut added);
                settle(eng, plan.setup_timeout, false);
                for j in 0..k {
                    // k views j, and j views k.
                    add(t, eng, &format!("m{j}"), &av, false, &mut added);
                    add(t, eng, &format!("m{k}"), &av, false, &mut added);
                }
            }
        }
    }
}

struct Snap {
    at: Instant,
    cpu: u64,
    gen_cpu: u64,
    exp: u64,
    rcv: u64,
    rx: u64,
    bytes: u64,
    auth: u64,
    replay: u64,
    tx: u64,
    plis: u64,
    nacks: u64,
    loss: [u64; 10],
    fwd: Option<u64>,
    core: (u64, u64),
    softirq: u64,
    /// Per class: bytes received, layer switches, RTX bytes.
    classes: Vec<(u64, u64, u64)>,
}

/// Sums each budget class's bytes and switches (empty outside livestream-simulcast).
fn class_totals(eng: &Engine) -> Vec<(u64, u64, u64)> {
    let mut v = vec![(0, 0, 0); simulcast::CLASSES.len()];
    for b in eng.sessions.iter().filter_map(Session::budget) {
        let e = &mut v[usize::from(b.class)];
        e.0 += b.bytes;
        e.1 += b.switches;
        e.2 += b.rtx_bytes;
    }
    v
}

fn class_steps(eng: &Engine, a: &Snap, b: &Snap, secs: f64) -> Vec<ClassStep> {
    let budgets: Vec<_> = eng.sessions.iter().filter_map(Session::budget).collect();
    if budgets.is_empty() {
        return Vec::new();
    }
    simulcast::CLASSES
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mine: Vec<_> = budgets.iter().filter(|x| usize::from(x.class) == i).collect();
            let mut on_layer = [0usize; 3];
            for x in &mine {
                if let Some(l) = x.layer {
                    on_layer[usize::from(l).min(2)] += 1;
                }
            }
            let bytes = b.classes[i].0 - a.classes[i].0;
            let rtx = b.classes[i].2 - a.classes[i].2;
            let per_viewer = |x: u64| if mine.is_empty() { 0.0 } else { x as f64 * 8.0 / secs / 1e3 / mine.len() as f64 };
            ClassStep {
                class: c.name,
                viewers: mine.len(),
                expected_layer: c.layer,
                kbps_per_viewer: per_viewer(bytes),
                probe_kbps_per_viewer: per_viewer(rtx),
                on_layer,
                no_keyframe: mine.iter().filter(|x| x.layer.is_none()).count(),
                switches: b.classes[i].1 - a.classes[i].1,
            }
        })
        .collect()
}

fn snap<T: Target + ?Sized>(t: &T, eng: &Engine, core: usize) -> Snap {
    let (exp, rcv) = eng.loss_totals();
    Snap {
        core: procstat::core_jiffies(core).unwrap_or((0, 0)),
        softirq: procstat::core_softirq(core).unwrap_or(0),
        at: Instant::now(),
        cpu: procstat::cpu_ticks(t.pid()).unwrap_or(0),
        gen_cpu: procstat::cpu_ticks(std::process::id() as i32).unwrap_or(0),
        exp,
        rcv,
        rx: eng.c.rtp_rx,
        bytes: eng.c.bytes_rx,
        auth: eng.c.auth_fail,
        replay: eng.c.replay,
        tx: eng.c.rtp_tx,
        plis: eng.c.plis,
        nacks: eng.c.nacks,
        loss: [
            eng.c.dropped,
            eng.c.nacks_tx,
            eng.c.nacked_seqs,
            eng.c.recovered_rtx,
            eng.c.recovered_primary,
            eng.c.repairs_wasted,
            eng.c.plis_tx,
            eng.c.pub_dropped,
            eng.c.retransmits,
            eng.c.retransmits_rtx,
        ],
        fwd: t.forwarded_packets(),
        classes: class_totals(eng),
    }
}

/// Runs every step of the plan against `t`; returns the steps measured.
pub fn run<T: Target + ?Sized>(t: &mut T, eng: &mut Engine, plan: &Plan, quiet: bool) -> Result<Vec<Step>> {
    let rss_base = procstat::rss_kib(t.pid()).unwrap_or(0);
    let tps = procstat::ticks_per_sec();
    let mut out = Vec::new();
    let mut have = 0;
    for &n in &plan.steps {
        let t0 = Instant::now();
        grow(t, eng, plan, have, n);
        have = n;
        settle(eng, plan.setup_timeout, true);
        let setup_s = t0.elapsed().as_secs_f64();
        pump(eng, plan.warmup);
        let a = snap(t, eng, plan.target_core);
        eng.c.delay.reset();
        pump(eng, plan.window);
        let b = snap(t, eng, plan.target_core);
        let secs = b.at.duration_since(a.at).as_secs_f64();
        let rx = b.rx - a.rx;
        let expected = b.exp - a.exp;
        let received = b.rcv - a.rcv;
        let lost = expected.saturating_sub(received);
        let cpu_s = (b.cpu - a.cpu) as f64 / tps;
        let sessions = eng.sessions.len();
        let rss = procstat::rss_kib(t.pid()).unwrap_or(0);
        let step = Step {
            n,
            sessions,
            publishers: eng.sessions.iter().filter(|s| s.is_publisher()).count(),
            failed_sessions: eng.count(State::Failed),
            viewers_without_media: eng
                .sessions
                .iter()
                .filter(|s| !s.is_publisher() && s.media_at.is_none())
                .count(),
            setup_s,
            window_s: secs,
            target_cpu_pct: 100.0 * cpu_s / secs,
            target_core_busy_pct: 100.0 * (b.core.0 - a.core.0) as f64 / ((b.core.1 - a.core.1).max(1)) as f64,
            target_core_softirq_pct: 100.0 * (b.softirq - a.softirq) as f64 / ((b.core.1 - a.core.1).max(1)) as f64,
            gen_cpu_pct: 100.0 * (b.gen_cpu - a.gen_cpu) as f64 / tps / secs,
            fwd_pps: rx as f64 / secs,
            fwd_mbps: (b.bytes - a.bytes) as f64 * 8.0 / secs / 1e6,
            cpu_us_per_pkt: if rx > 0 { cpu_s * 1e6 / rx as f64 } else { 0.0 },
            target_fwd_pkts: match (a.fwd, b.fwd) {
                (Some(x), Some(y)) => Some(y.saturating_sub(x)),
                _ => None,
            },
            expected,
            received,
            loss_pct: if expected > 0 { 100.0 * lost as f64 / expected as f64 } else { 0.0 },
            delay_p50_ms: eng.c.delay.quantile_ms(0.5),
            delay_p99_ms: eng.c.delay.quantile_ms(0.99),
            auth_fail: b.auth - a.auth,
            replay: b.replay - a.replay,
            rss_kib: rss,
            rss_base_kib: rss_base,
            rss_per_session_kib: if sessions > 0 { rss.saturating_sub(rss_base) as f64 / sessions as f64 } else { 0.0 },
            pub_pps: (b.tx - a.tx) as f64 / secs,
            plis: b.plis - a.plis,
            nacks: b.nacks - a.nacks,
            viewer_loss: eng.cfg.viewer_loss,
            dropped: b.loss[0] - a.loss[0],
            viewer_nacks: b.loss[1] - a.loss[1],
            viewer_nacked_seqs: b.loss[2] - a.loss[2],
            recovered_rtx: b.loss[3] - a.loss[3],
            recovered_primary: b.loss[4] - a.loss[4],
            repairs_wasted: b.loss[5] - a.loss[5],
            viewer_plis: b.loss[6] - a.loss[6],
            publisher_loss: eng.cfg.publisher_loss,
            pub_dropped: b.loss[7] - a.loss[7],
            pub_retransmits: b.loss[8] - a.loss[8],
            pub_retransmits_rtx: b.loss[9] - a.loss[9],
            classes: class_steps(eng, &a, &b, secs),
        };
        if !quiet {
            eprintln!(
                "[{}] n={} sessions={} failed={} nomedia={} cpu={:.1}% core={:.1}% (softirq {:.1}%) gen={:.1}% fwd={:.0} pps {:.1} Mb/s {:.2} us/pkt loss={:.3}% p50={:?} p99={:?} rss/session={:.1} KiB",
                t.name(),
                step.n,
                step.sessions,
                step.failed_sessions,
                step.viewers_without_media,
                step.target_cpu_pct,
                step.target_core_busy_pct,
                step.target_core_softirq_pct,
                step.gen_cpu_pct,
                step.fwd_pps,
                step.fwd_mbps,
                step.cpu_us_per_pkt,
                step.loss_pct,
                step.delay_p50_ms,
                step.delay_p99_ms,
                step.rss_per_session_kib
            );
            for c in &step.classes {
                eprintln!(
                    "[{}]   {}: {} viewers, {:.0} kbit/s each ({:.0} of it probes), on layer q/h/f {:?} (expected {}), no keyframe {}, {} switches",
                    t.name(),
                    c.class,
                    c.viewers,
                    c.kbps_per_viewer,
                    c.probe_kbps_per_viewer,
                    c.on_layer,
                    c.expected_layer,
                    c.no_keyframe,
                    c.switches
                );
            }
            if !step.classes.is_empty() {
                eprintln!("[{}]   RTX packets of media viewers already had (probes): {}", t.name(), step.repairs_wasted);
            }
            if step.dropped + step.pub_dropped > 0 {
                eprintln!(
                    "[{}]   loss: viewers dropped {} sent {} NACKs ({} seqs), recovered {} by RTX + {} on primary, {} resends wasted, {} PLIs; publishers dropped {} resent {} ({} as RTX)",
                    t.name(),
                    step.dropped,
                    step.viewer_nacks,
                    step.viewer_nacked_seqs,
                    step.recovered_rtx,
                    step.recovered_primary,
                    step.repairs_wasted,
                    step.viewer_plis,
                    step.pub_dropped,
                    step.pub_retransmits,
                    step.pub_retransmits_rtx
                );
            }
        }
        let stop = plan.stops_after(&step);
        out.push(step);
        if stop {
            break;
        }
    }
    Ok(out)
}

/// sfud (or any target) with no sessions: CPU over `secs`.
pub fn idle_cpu_pct(pid: i32, d: Duration) -> f64 {
    let a = procstat::cpu_ticks(pid).unwrap_or(0);
    let t0 = Instant::now();
    std::thread::sleep(d);
    let b = procstat::cpu_ticks(pid).unwrap_or(0);
    100.0 * (b - a) as f64 / procstat::ticks_per_sec() / t0.elapsed().as_secs_f64()
}
