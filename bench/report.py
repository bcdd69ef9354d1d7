#!/usr/bin/env python3
"""Turns sfu-bench's raw JSON (one file per target and scenario) into
bench/results/<date>-<scenario>.{md,json,png} and <date>-summary.md.
Standard library only; the plot is drawn by gnuplot."""
import argparse, json, os, shutil, subprocess, statistics

LOSS_BOUND = 0.5      # percent
P99_BOUND = 20.0      # ms
TARGETS = ["sfud", "floor", "janus", "sfud-loss", "floor-loss"]
UNITS = {"livestream": "viewers", "audio-room": "listeners", "meeting": "participants", "livestream-simulcast": "viewers"}
SCENARIOS = ["livestream", "audio-room", "meeting", "livestream-simulcast"]
# livestream-simulcast: a step holds only if this share of every class's
# viewers ended the window on the layer its budget allows.
ON_LAYER_BOUND = 90.0
MODEL = {
    "livestream": "1 VP8 publisher (1.5 Mbps, 30 fps, keyframe every 2 s) -> N WHEP viewers, one room.",
    "audio-room": "10 Opus publishers (50 pkt/s, 100 B) -> N listeners. WHEP plays one room's single publisher, so "
                  "the 10 publishers are 10 rooms and each listener is 10 sessions (one per room).",
    "meeting": "N participants, each publishing Opus + VP8 (1.5 Mbps) and viewing the other N-1. WHEP plays one room's "
               "single publisher, so this is N rooms of 1 publisher + N-1 viewers (N*N sessions in all).",
    "livestream-simulcast": "1 publisher of three VP8 simulcast layers (RIDs q/h/f: 150 kbit/s 320x180, 400 kbit/s 640x360, "
                            "2 Mbit/s 1280x720; 30 fps, keyframe every 2 s on each layer) -> N WHEP viewers, one room: a third "
                            "with a 200 kbit/s budget, a third with 600 kbit/s, a third unlimited.",
}
SIMULCAST_METHOD = (
    "livestream-simulcast: the publisher offers one video section with `a=rid:q/h/f send`, `a=simulcast:send q;h;f` and the "
    "rtp-stream-id extension (id 10) on every packet, no `a=ssrc` lines and no RTX, as a browser does; each layer has its own "
    "SSRC, sequence and timestamp space, and an extended VP8 payload descriptor (15-bit PictureID, TL0PICIDX, TID in the "
    "L1T3 pattern 0,2,1,2 with Y on TID 0), which is what sfud's layer selector and VP8 rewriter read. A PLI keys only the "
    "layer it names. Every viewer offers transport-cc (extension + rtcp-fb) and sends transport-cc feedback built by "
    "dataplane's TwccReceiver (about every 50 ms), as browsers do: that is what sfud's delay-based estimate and its probes "
    "are judged on, and it lets the unlimited third climb from sfud's 1 Mbit/s initial estimate to the top layer in a few "
    "seconds (without it only the RR loss-based estimate grows, 8%/s). The budgeted thirds also send RR + REMB with their "
    "budget every 300 ms: REMB is what caps sfud's estimate (loopback has no bottleneck, so transport-cc alone would call "
    "every viewer unlimited). The layer sizes follow sfud's allocator: it plans with 90% of the estimate and upgrades only "
    "with 1.2x headroom, so 600 kbit/s admits a middle layer of at most 450 kbit/s. Each viewer reads the size from every "
    "keyframe it gets, so it knows which layer it is on (as a browser sees the decoded resolution); per class the table "
    "gives kbit/s per viewer (whole SRTP datagrams; 'of which probes' = RTX packets, all of them probes since nothing is lost) and how many viewers ended the window on each layer. The warm-up is "
    "longer for this scenario (8 s quick, 10 s full) so new viewers are capped and the unlimited ones have climbed. "
    f"A step holds only if, besides the bounds above, at least {ON_LAYER_BOUND:g}% of each class ended on the layer its "
    "budget allows, and the sfud/floor cost ratios are taken only at steps where that held (elsewhere sfud forwards a "
    "different mix of layers from the floor's). 'dup/probe pkts' counts RTX packets of media the viewer already had: sfud's bandwidth probes. "
    "The floor's matching minimum: the publisher registers its three SSRCs, each viewer registers with the one layer its "
    "budget allows, and the floor forwards to each viewer only that layer's packets: a static choice with no estimate, no "
    "feedback, no keyframe gating and no rewriting, so cost per forwarded packet compares like with like. "
    "Janus is not run for this scenario: its VideoRoom forwards each subscriber the substream that subscriber asks for "
    "in a `configure` request (substream/temporal), not one chosen from REMB or transport-cc, so budget viewers would need "
    "a different client path from this bench's Janus client (one encoding, no per-subscriber configure)."
)


def on_layer_pct(c):
    return 100.0 * c["on_layer"][c["expected_layer"]] / c["viewers"] if c["viewers"] else 100.0


def held(step):
    p99 = step.get("delay_p99_ms")
    layers_ok = all(on_layer_pct(c) >= ON_LAYER_BOUND for c in step.get("classes", []))
    return (step["loss_pct"] < LOSS_BOUND and p99 is not None and p99 < P99_BOUND
            and step["failed_sessions"] == 0 and step["viewers_without_media"] == 0 and layers_ok)


def max_held(steps):
    best, capped = 0, True
    for s in steps:
        if held(s):
            best = max(best, s["n"])
        else:
            capped = False
    return best, capped  # capped=True: every step held, the limit is above the last step


def delivered_pct(sc, s):
    """What viewers received over what the publishers' streams times their
    audiences should give: a target that falls behind queues packets (no
    sequence gaps, so no 'loss') but delivers less than this."""
    if sc == "livestream-simulcast":
        # Each viewer takes one of three layers: the publisher's total rate
        # times the audience means nothing; see the per-class table.
        return None
    fan = s["n"] - 1 if sc == "meeting" else s["n"]
    nominal = s.get("pub_pps", 0) * fan
    return 100.0 * s["fwd_pps"] / nominal if nominal > 0 else None


def max_no_loss(sc, steps):
    ok = [s["n"] for s in steps if s["loss_pct"] < LOSS_BOUND and s["failed_sessions"] == 0
          and s["viewers_without_media"] == 0 and (delivered_pct(sc, s) or 100.0) >= 99.0]
    return max(ok) if ok else 0


def cost_ratios(runs, a, b):
    """(n, a's cost per packet / b's) at the steps both ran without loss."""
    if a not in runs or b not in runs:
        return []
    fl = {s["n"]: s for s in runs[b]["steps"]}
    out = []
    for s in runs[a]["steps"]:
        f = fl.get(s["n"])
        # Cost per packet is meaningful whatever the delay did, as long as
        # both forwarded (nearly) everything.
        # livestream-simulcast: only where sfud's viewers got the layers
        # the floor forwards them, or the packet mixes differ.
        layers_ok = all(on_layer_pct(c) >= ON_LAYER_BOUND for c in s.get("classes", []))
        if (f and f["cpu_us_per_pkt"] > 0 and s["cpu_us_per_pkt"] > 0 and layers_ok
                and s["loss_pct"] < LOSS_BOUND and f["loss_pct"] < LOSS_BOUND):
            out.append((s["n"], s["cpu_us_per_pkt"] / f["cpu_us_per_pkt"]))
    return out


def media_cost(s):
    """CPU us per forwarded packet that was not a duplicate (an RTX of media
    the viewer had: in a run without loss, a bandwidth probe)."""
    pkts = s["fwd_pps"] * s["window_s"] - s.get("repairs_wasted", 0)
    return s["target_cpu_pct"] / 100.0 * s["window_s"] * 1e6 / pkts if pkts > 0 else None


def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--date", required=True)
    ap.add_argument("--mode", default="quick")
    ap.add_argument("--cmd", default="bench/run.sh")
    a = ap.parse_args()
    rd = lambda n: open(os.path.join(a.raw, n)).read().strip() if os.path.exists(os.path.join(a.raw, n)) else "unknown"
    machine, commit = rd("machine.txt"), rd("commit.txt")
    idle = None
    if os.path.exists(os.path.join(a.raw, "idle.json")):
        idle = json.load(open(os.path.join(a.raw, "idle.json")))
    method = (
        "Every session is a real WebRTC client built by sfu-bench: WHIP/WHEP (or Janus's REST API), full ICE "
        "(controlling, USE-CANDIDATE, consent every ~5 s), DTLS 1.2 client (openssl, use_srtp GCM preferred, CM offered), "
        "SRTP via dataplane::srtp. Publishers send synthetic Opus (50 pkt/s) and VP8-shaped video (frames of ~1100-1160 B "
        "packets at 30 fps, keyframe every 2 s with a valid VP8 keyframe header), answer PLI with a keyframe and NACK from "
        "a 512-packet cache. Viewers SRTP-unprotect every packet (auth failures counted on all packets, no sampling), "
        "count loss from RTP sequence numbers per SSRC, and one-way delay from a CLOCK_MONOTONIC send time in the payload. "
        "The target runs pinned to core 0 (sfud: 1 shard on core 0 plus taskset; Janus: taskset; floor: taskset), the "
        "generator (one thread, epoll + recvmmsg/sendmmsg, one socket per session) is pinned to core 1, all inside a "
        "private network namespace on loopback. Each step is measured against a fresh target process over a fixed window "
        "after a warm-up, several times (run.sh --rounds, default 3); at each step the targets run back to back in "
        "alternating order (ABBA), so a drift in the machine's speed hits sfud and the floor alike, and each target's "
        "median run (by cost per packet) is the one reported; the JSON keeps every run's cost. CPU = user+sys of the target process from /proc/PID/stat "
        "(all threads); 'core busy' also counts softirq and anything else on core 0 (loopback delivery of the target's "
        "sends runs there in softirq context). cost/pkt = target CPU seconds / packets received by viewers. "
        "delivered = packets viewers received / (publishers' packets x audience size): a target that falls behind "
        "queues packets, which shows as delay and a delivered deficit rather than as sequence-number loss. "
        "RSS/session = (VmRSS - VmRSS before the first session) / sessions. "
        f"'Held' = loss < {LOSS_BOUND}% and p99 delay < {P99_BOUND} ms with every session connected and receiving. "
        "The floor (sfu-bench floor-server) is one UDP socket, recvmmsg, one SRTP AES-128-GCM protect per destination "
        "(ring, through the same SrtpContext sfud uses), sendmmsg; publishers send it plain RTP and viewers register with "
        "a JOIN datagram and a pre-shared key: no ICE, DTLS, RTCP, header rewriting, keyframe gating or per-track state. "
        "Loss runs (`sfud-loss`, `floor-loss`, run.sh --loss P): each viewer drops a fraction P of the video packets it "
        "receives (RTP and RTX; before SRTP, seeded per session so runs repeat) and NACKs them like a browser "
        "(dataplane's NackGenerator: first request 5 ms after the gap is seen, repeated every 30 ms, at most 10 times; "
        "RR + generic NACK in one SRTCP packet). Viewers offer `rtx` (apt=96), so sfud resends on each downtrack's RTX "
        "SSRC from its per-shard cache; the floor keeps the room's last 512 video packets and resends the NACKed ones on "
        "the primary SSRC, protected for that viewer (the viewers send it plain RTCP; no RTX, no resend limit). "
        "In loss runs, fwd pkt/s and cost/pkt count every packet the target delivered to viewers, dropped ones and "
        "retransmissions included; loss % is what stayed missing after repair."
    )
    summary_rows = []
    for sc in SCENARIOS:
        runs = {}
        for t in TARGETS:
            p = os.path.join(a.raw, f"{t}-{sc}.json")
            if os.path.exists(p):
                try:
                    runs[t] = json.load(open(p))
                except Exception:
                    pass
        if not runs:
            continue
        stem = os.path.join(a.out, f"{a.date}-{sc}")
        unit = UNITS[sc]
        lines = [f"# {sc}: sfud vs floor vs Janus ({a.mode})", "",
                 f"- command: `{a.cmd}`", f"- commit: {commit}", f"- scenario: {MODEL[sc]}", "", "## Machine", "", "```",
                 machine, "```", "", "## Method", "", method, ""]
        if sc == "livestream-simulcast":
            lines += [SIMULCAST_METHOD, ""]
        held_n, ratios = {}, []
        for t, r in runs.items():
            held_n[t] = max_held(r["steps"])
        ratios = cost_ratios(runs, "sfud", "floor")
        loss_ratios = cost_ratios(runs, "sfud-loss", "floor-loss")
        lines += ["## Results", ""]
        for t in TARGETS:
            if t in held_n:
                n, capped = held_n[t]
                lines.append(f"- {t}: largest {unit} count held: **{'>= ' if capped and n else ''}{n}**"
                             + (" (every step held: the limit is above the largest step run)" if capped and n else ""))
        for t in TARGETS:
            if t in runs:
                lines.append(f"- {t}: largest {unit} count with loss < {LOSS_BOUND}% and >= 99% delivered, whatever the delay: "
                             f"{max_no_loss(sc, runs[t]['steps'])}")
        if sc == "livestream-simulcast" and "sfud" in runs and "floor" in runs:
            # sfud's probes are packets it chose to send on top of media:
            # compare per media packet too.
            fl = {s["n"]: s for s in runs["floor"]["steps"]}
            per_media = [(s["n"], media_cost(s) / media_cost(fl[s["n"]])) for s in runs["sfud"]["steps"]
                         if s["n"] in fl and media_cost(s) and media_cost(fl[s["n"]])
                         and all(on_layer_pct(c) >= ON_LAYER_BOUND for c in s.get("classes", []))
                         and s["loss_pct"] < LOSS_BOUND and fl[s["n"]]["loss_pct"] < LOSS_BOUND]
            if per_media:
                lines.append("- sfud cost per forwarded media packet (its probes not counted as forwarded) / floor's, at the steps where "
                             f"every class got its layer: "
                             + ", ".join(f"{x:.2f}x @ {n}" for n, x in per_media))
        if ratios:
            med = statistics.median(r for _, r in ratios)
            # The most loaded step that both held is the most telling.
            last_n, last_r = ratios[-1]
            lines.append(f"- sfud cost per forwarded packet / floor's: median **{med:.2f}x** over {len(ratios)} common steps without loss; "
                         f"{last_r:.2f}x at {last_n} {unit} (goal: <= 1.2x)")
        if loss_ratios:
            vl = runs["sfud-loss"]["steps"][0].get("viewer_loss", 0) * 100
            med = statistics.median(r for _, r in loss_ratios)
            last_n, last_r = loss_ratios[-1]
            lines.append(f"- at {vl:g}% viewer loss, repaired by NACK: sfud cost per forwarded packet / floor's: median **{med:.2f}x** over "
                         f"{len(loss_ratios)} common steps with residual loss < {LOSS_BOUND}%; {last_r:.2f}x at {last_n} {unit}")
            for x, y in (("sfud", "sfud-loss"), ("floor", "floor-loss")):
                if x in runs and y in runs:
                    base = {s["n"]: s for s in runs[x]["steps"]}
                    d = [f"{s['cpu_us_per_pkt'] / base[s['n']]['cpu_us_per_pkt']:.2f}x @ {s['n']}" for s in runs[y]["steps"]
                         if s["n"] in base and base[s["n"]]["cpu_us_per_pkt"] > 0]
                    if d:
                        lines.append(f"- {x} cost per packet with loss / without: " + ", ".join(d))
        if "sfud" in held_n and "janus" in held_n and held_n["janus"][0] > 0:
            r = held_n["sfud"][0] / held_n["janus"][0]
            note = " (lower bound: sfud held every step run)" if held_n["sfud"][1] else ""
            note += " (Janus held every step run, so this may overstate)" if held_n["janus"][1] else ""
            lines.append(f"- {unit} per core, sfud / Janus at the same bound: **{r:.1f}x**{note} (goal: >= 3x)")
        if "sfud" in runs and "janus" in runs:
            jn = {s["n"]: s for s in runs["janus"]["steps"]}
            cmp_ = [(s["n"], jn[s["n"]]["cpu_us_per_pkt"] / s["cpu_us_per_pkt"]) for s in runs["sfud"]["steps"]
                    if s["n"] in jn and s["cpu_us_per_pkt"] > 0 and jn[s["n"]]["cpu_us_per_pkt"] > 0]
            if cmp_:
                lines.append(f"- Janus cost per packet / sfud's at equal load: " + ", ".join(f"{x:.1f}x @ {n}" for n, x in cmp_))
        lines += ["", f"| target | {unit} | sessions | CPU % | core busy % | softirq % | gen CPU % | fwd pkt/s | fwd Mb/s | "
                  "cost us/pkt | delivered % | loss % | p50 ms | p99 ms | RSS MiB | RSS/session KiB | failed | held |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for t in TARGETS:
            for s in runs.get(t, {}).get("steps", []):
                lines.append("| " + " | ".join([
                    t, str(s["n"]), str(s["sessions"]), fmt(s["target_cpu_pct"]), fmt(s.get("target_core_busy_pct")),
                    fmt(s.get("target_core_softirq_pct")), fmt(s["gen_cpu_pct"]), f"{s['fwd_pps']:.0f}", fmt(s["fwd_mbps"]),
                    fmt(s["cpu_us_per_pkt"], 2), fmt(delivered_pct(sc, s)), fmt(s["loss_pct"], 3), fmt(s["delay_p50_ms"], 2), fmt(s["delay_p99_ms"], 2),
                    fmt(s["rss_kib"] / 1024.0), fmt(s["rss_per_session_kib"]), str(s["failed_sessions"] + s["viewers_without_media"]),
                    "yes" if held(s) else "no"]) + " |")
        class_rows = [(t, s) for t in TARGETS for s in runs.get(t, {}).get("steps", []) if s.get("classes")]
        if class_rows:
            lines += ["", "Per budget class (layers: 0 = q 320x180, 1 = h 640x360, 2 = f 1280x720; 'on q/h/f' = viewers whose "
                      "last keyframe was that layer's size at the window's end):", "",
                      f"| target | {unit} | class | viewers | kbit/s per viewer | of which probes | expected layer | on q / h / f | "
                      "no keyframe | on expected % | switches | dup/probe pkts (all classes) |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for t, s in class_rows:
                for c in s["classes"]:
                    lines.append("| " + " | ".join([t, str(s["n"]), c["class"], str(c["viewers"]), fmt(c["kbps_per_viewer"], 0),
                                                    fmt(c.get("probe_kbps_per_viewer"), 0),
                                                    str(c["expected_layer"]), " / ".join(map(str, c["on_layer"])), str(c["no_keyframe"]),
                                                    fmt(on_layer_pct(c), 0), str(c["switches"]), str(s.get("repairs_wasted", 0))]) + " |")
        loss_rows = [(t, s) for t in TARGETS for s in runs.get(t, {}).get("steps", []) if s.get("dropped", 0) > 0]
        if loss_rows:
            lines += ["", "Repair in the loss runs (over each window; NACKs and PLIs sent by viewers):", "",
                      f"| target | {unit} | dropped | NACK pkts | NACKed seqs | recovered by RTX | recovered on primary | "
                      "resends wasted | PLIs | residual loss % |", "|---|---|---|---|---|---|---|---|---|---|"]
            for t, s in loss_rows:
                lines.append("| " + " | ".join([t, str(s["n"]), str(s["dropped"]), str(s["viewer_nacks"]), str(s["viewer_nacked_seqs"]),
                                                str(s["recovered_rtx"]), str(s["recovered_primary"]), str(s["repairs_wasted"]),
                                                str(s["viewer_plis"]), fmt(s["loss_pct"], 3)]) + " |")
        lines += ["", f"![CPU and loss vs {unit}]({os.path.basename(stem)}.png)", ""]
        open(stem + ".md", "w").write("\n".join(lines) + "\n")
        json.dump({"scenario": sc, "date": a.date, "mode": a.mode, "command": a.cmd, "commit": commit, "machine": machine,
                   "method": method + (" " + SIMULCAST_METHOD if sc == "livestream-simulcast" else ""),
                   "bounds": {"loss_pct": LOSS_BOUND, "p99_ms": P99_BOUND},
                   "held": {t: {"n": v[0], "every_step_held": v[1]} for t, v in held_n.items()},
                   "sfud_over_floor_cost": ratios, "sfud_over_floor_cost_with_loss": loss_ratios, "runs": runs, "idle": idle},
                  open(stem + ".json", "w"), indent=1)
        plot(stem, runs, unit)
        summary_rows.append((sc, held_n, ratios, loss_ratios))
    s = [f"# sfu-bench summary {a.date} ({a.mode})", "", f"- command: `{a.cmd}`", f"- commit: {commit}", "", "```", machine, "```", ""]
    if idle:
        s.append(f"- idle: sfud with no sessions used **{idle['cpu_pct']:.3f}%** of a core over {idle['idle_secs']} s "
                 f"(bar: < 1%), RSS {idle['rss_kib'] / 1024:.1f} MiB")
    for sc, held_n, ratios, loss_ratios in summary_rows:
        parts = [f"{t} {'>=' if c and n else ''}{n}" for t, (n, c) in held_n.items()]
        r = f"; sfud/floor cost {statistics.median(x for _, x in ratios):.2f}x" if ratios else ""
        if loss_ratios:
            r += f", with viewer loss {statistics.median(x for _, x in loss_ratios):.2f}x"
        s.append(f"- {sc}: held {UNITS[sc]}: " + ", ".join(parts) + r + f" ([details]({a.date}-{sc}.md))")
    open(os.path.join(a.out, f"{a.date}-summary.md"), "w").write("\n".join(s) + "\n")


def plot(stem, runs, unit):
    if not shutil.which("gnuplot"):
        return
    dat = {}
    for t, r in runs.items():
        p = f"{stem}.{t}.dat"
        with open(p, "w") as f:
            for s in r["steps"]:
                f.write(f"{s['n']} {s['target_cpu_pct']:.3f} {s['loss_pct']:.4f} {s.get('target_core_busy_pct', 0):.3f}\n")
        dat[t] = p
    cpu = ", ".join(f"'{p}' using 1:2 with linespoints title '{t}'" for t, p in dat.items())
    loss = ", ".join(f"'{p}' using 1:3 with linespoints title '{t}'" for t, p in dat.items())
    script = f"""set terminal pngcairo size 1100,450 noenhanced
set output '{stem}.png'
set multiplot layout 1,2
set xlabel '{unit}'
set grid
set key left top
set ylabel 'target CPU, % of one core (user+sys)'
plot {cpu}
set ylabel 'loss %'
set yrange [0:*]
plot {loss}
unset multiplot
"""
    try:
        subprocess.run(["gnuplot"], input=script.encode(), check=True, capture_output=True)
    except Exception:
        try:
            subprocess.run(["gnuplot"], input=script.replace("pngcairo", "png").encode(), check=True, capture_output=True)
        except Exception:
            pass
    for p in dat.values():
        os.remove(p)


if __name__ == "__main__":
    main()
