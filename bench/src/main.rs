//! sfu-bench: a load generator whose sessions are real WebRTC clients
//! (WHIP/WHEP or Janus's REST API, full ICE, DTLS, SRTP), the floor
//! forwarder it is compared against, and the scenario runner.

mod dtls;
mod engine;
mod floor;
mod http;
mod janus;
mod loss;
mod media;
mod procstat;
mod recv;
mod scenario;
mod sdp;
mod session;
mod simulcast;
mod target;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::engine::Engine;
use crate::media::MediaConfig;
use crate::scenario::{Plan, Scenario};
use crate::target::{Spawn, Target};

#[derive(Parser)]
#[command(name = "sfu-bench", about = "WebRTC load generator and floor forwarder for sfud")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TargetKind {
    Sfud,
    Floor,
    Janus,
}

#[derive(clap::Args, Clone)]
struct TargetArgs {
    /// The sfud binary (for --target sfud).
    #[arg(long, default_value = "target/release/sfud")]
    sfud_bin: String,
    /// Core the target is pinned to (taskset); the generator pins itself with --gen-core.
    #[arg(long, default_value_t = 0)]
    core: usize,
    /// Core for this process (the generator); none = leave as is.
    #[arg(long)]
    gen_core: Option<usize>,
    /// sfud's HTTP address.
    #[arg(long, default_value = "127.0.0.1:7880")]
    http: SocketAddr,
    /// The floor forwarder's UDP address.
    #[arg(long, default_value = "127.0.0.1:7990")]
    floor_addr: SocketAddr,
    /// Directory with janus.jcfg and plugin/transport configs (for --target janus).
    #[arg(long, default_value = "bench/janus")]
    janus_conf: PathBuf,
    /// LD_PRELOAD shim that makes Janus use loopback candidates.
    #[arg(long, default_value = "")]
    janus_preload: String,
    #[arg(long, default_value = "janus")]
    janus_bin: String,
    /// Where target logs go.
    #[arg(long, default_value = "/tmp")]
    log_dir: PathBuf,
    /// use_srtp profiles to offer (openssl names, ':'-separated).
    #[arg(long, default_value = "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80")]
    srtp: String,
    /// Video bitrate per publisher, kbit/s.
    #[arg(long, default_value_t = 1500)]
    video_kbps: u64,
    /// Fraction of video packets each viewer drops on arrival and NACKs
    /// (deterministic per session), e.g. 0.01.
    #[arg(long, default_value_t = 0.0)]
    viewer_loss: f64,
    /// Fraction of video packets each publisher drops before sending
    /// (kept in its cache, so a NACK repairs it), e.g. 0.01.
    #[arg(long, default_value_t = 0.0)]
    publisher_loss: f64,
}

#[derive(Subcommand)]
enum Cmd {
    /// Grow a scenario step by step against a target and measure each step.
    Run {
        #[arg(long, value_enum)]
        target: TargetKind,
        #[arg(long, value_enum)]
        scenario: Scenario,
        /// Load steps (viewers / listeners / participants), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "10,50,100")]
        steps: Vec<usize>,
        #[arg(long, default_value_t = 2.0)]
        warmup_s: f64,
        #[arg(long, default_value_t = 5.0)]
        window_s: f64,
        #[arg(long, default_value_t = 5.0)]
        stop_loss_pct: f64,
        /// JSON result file.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        t: TargetArgs,
    },
    /// The floor forwarder itself (started by `run --target floor`).
    FloorServer {
        #[arg(long, default_value = "127.0.0.1:7990")]
        listen: SocketAddr,
    },
    /// sfud with no sessions: CPU over a window.
    Idle {
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        t: TargetArgs,
    },
    /// CI smoke: start sfud, N livestream viewers for a few seconds; fail
    /// unless every viewer got media and nothing was lost. With
    /// --viewer-loss/--publisher-loss: fail unless NACKs were answered (by
    /// RTX to viewers, by the publisher's resends upstream) and what
    /// stayed missing is under 0.2%.
    Smoke {
        #[arg(long, default_value_t = 20)]
        viewers: usize,
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
        #[command(flatten)]
        t: TargetArgs,
    },
}

fn pin_self(core: Option<usize>) {
    let Some(c) = core else { return };
    // SAFETY: a cpu_set_t on the stack, for this thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(c, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn start_target(kind: TargetKind, a: &TargetArgs, fingerprint: &str) -> Result<Box<dyn Target>> {
    let sp = Spawn {
        core: Some(a.core),
        log: a.log_dir.join(format!("sfu-bench-{}.log", format!("{kind:?}").to_lowercase())),
    };
    Ok(match kind {
        TargetKind::Sfud => Box::new(target::Sfud::start(&a.sfud_bin, &sp, a.http, fingerprint.to_owned())?),
        TargetKind::Floor => {
            let exe = std::env::current_exe()?.to_string_lossy().into_owned();
            Box::new(target::Floor::start(&exe, &sp, a.floor_addr)?)
        }
        TargetKind::Janus => Box::new(janus::Janus::start(&a.janus_bin, &a.janus_conf, &a.janus_preload, &sp, fingerprint.to_owned())?),
    })
}

fn engine(a: &TargetArgs) -> Result<(Engine, String)> {
    let id = dtls::Identity::generate()?;
    let ctx = id.context(&a.srtp)?;
    let cfg = MediaConfig {
        video_bps: a.video_kbps * 1000,
        viewer_loss: a.viewer_loss,
        publisher_loss: a.publisher_loss,
        ..MediaConfig::default()
    };
    Ok((Engine::new(ctx, cfg)?, id.fingerprint))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    engine::raise_nofile();
    match cli.cmd {
        Cmd::FloorServer { listen } => floor::serve(listen),
        Cmd::Run { target: kind, scenario, steps, warmup_s, window_s, stop_loss_pct, out, t } => {
            pin_self(t.gen_core);
            let (mut eng, fp) = engine(&t)?;
            let mut tgt = start_target(kind, &t, &fp)?;
            let plan = Plan {
                scenario,
                steps,
                warmup: Duration::from_secs_f64(warmup_s),
                window: Duration::from_secs_f64(window_s),
                stop_loss_pct,
                setup_timeout: Duration::from_secs(20),
                target_core: t.core,
            };
            let res = scenario::run(tgt.as_mut(), &mut eng, &plan, false);
            drop(eng);
            tgt.stop();
            let steps = res?;
            let over_stop_bound = steps.last().is_some_and(|s| plan.stops_after(s));
            let j = json!({
                "target": tgt.name(),
                "scenario": scenario,
                "video_kbps": t.video_kbps,
                "srtp": t.srtp,
                "target_core": t.core,
                "gen_core": t.gen_core,
                "warmup_s": warmup_s,
                "window_s": window_s,
                "steps": steps,
                "over_stop_bound": over_stop_bound,
            });
            let text = serde_json::to_string_pretty(&j)?;
            match out {
                Some(p) => std::fs::write(&p, text).with_context(|| format!("write {}", p.display()))?,
                None => println!("{text}"),
            }
            Ok(())
        }
        Cmd::Idle { secs, out, t } => {
            pin_self(t.gen_core);
            let (_eng, fp) = engine(&t)?;
            let mut tgt = start_target(TargetKind::Sfud, &t, &fp)?;
            std::thread::sleep(Duration::from_secs(2));
            let pct = scenario::idle_cpu_pct(tgt.pid(), Duration::from_secs_f64(secs));
            let rss = procstat::rss_kib(tgt.pid()).unwrap_or(0);
            tgt.stop();
            let j = json!({ "target": "sfud", "idle_secs": secs, "cpu_pct": pct, "rss_kib": rss });
            eprintln!("idle: sfud used {pct:.3}% of a core over {secs} s, RSS {rss} KiB");
            let text = serde_json::to_string_pretty(&j)?;
            match out {
                Some(p) => std::fs::write(p, text)?,
                None => println!("{text}"),
            }
            Ok(())
        }
        Cmd::Smoke { viewers, secs, t } => smoke(viewers, secs, &t),
    }
}

fn smoke(viewers: usize, secs: f64, t: &TargetArgs) -> Result<()> {
    let (mut eng, fp) = engine(t)?;
    let mut tgt = start_target(TargetKind::Sfud, t, &fp)?;
    let plan = Plan {
        scenario: Scenario::Livestream,
        steps: vec![viewers],
        warmup: Duration::from_secs(1),
        window: Duration::from_secs_f64(secs),
        stop_loss_pct: 100.0,
        setup_timeout: Duration::from_secs(15),
        target_core: t.core,
    };
    let t0 = Instant::now();
    let res = scenario::run(tgt.as_mut(), &mut eng, &plan, false);
    drop(eng);
    tgt.stop();
    let steps = res?;
    let Some(s) = steps.first() else { bail!("smoke: no step measured") };
    eprintln!("smoke: {:.1} s total", t0.elapsed().as_secs_f64());
    let mut bad = Vec::new();
    if s.failed_sessions > 0 {
        bad.push(format!("{} sessions failed to connect", s.failed_sessions));
    }
    if s.viewers_without_media > 0 {
        bad.push(format!("{} viewers received no media", s.viewers_without_media));
    }
    if s.received == 0 {
        bad.push("nothing received".into());
    }
    let lossy = t.viewer_loss > 0.0 || t.publisher_loss > 0.0;
    if !lossy && s.expected != s.received {
        bad.push(format!("loss: expected {} received {}", s.expected, s.received));
    }
    if lossy {
        // A hole can still be open at the window's end; anything more is a
        // repair that did not happen.
        if s.loss_pct >= 0.2 {
            bad.push(format!("residual loss {:.3}% after NACKs (expected {} received {})", s.loss_pct, s.expected, s.received));
        }
        if t.viewer_loss > 0.0 && (s.dropped == 0 || s.recovered_rtx == 0) {
            bad.push(format!("viewers dropped {} and got {} repairs by RTX", s.dropped, s.recovered_rtx));
        }
        if t.publisher_loss > 0.0 && (s.pub_dropped == 0 || s.pub_retransmits_rtx == 0) {
            bad.push(format!("publisher dropped {} and resent {} ({} as RTX)", s.pub_dropped, s.pub_retransmits, s.pub_retransmits_rtx));
        }
    }
    if s.auth_fail > 0 {
        bad.push(format!("{} SRTP auth failures", s.auth_fail));
    }
    if !bad.is_empty() {
        bail!("smoke failed: {}", bad.join("; "));
    }
    if lossy {
        eprintln!(
            "smoke ok: {viewers} viewers, {} packets, viewers dropped {} and recovered {} by RTX, publisher dropped {} and resent {} as RTX, residual loss {:.3}%",
            s.received, s.dropped, s.recovered_rtx, s.pub_dropped, s.pub_retransmits_rtx, s.loss_pct
        );
    } else {
        eprintln!("smoke ok: {viewers} viewers, {} packets, no loss, p99 {:?} ms", s.received, s.delay_p99_ms);
    }
    Ok(())
}
