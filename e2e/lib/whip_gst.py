#!/usr/bin/env python3
"""A minimal GStreamer webrtcbin WHIP publisher (issue 13), written for the
e2e tests: test video (VP8) and audio (Opus), bundle-policy max-bundle, so
webrtcbin offers the second section with port 0 and a=bundle-only. It does
the WHIP POST itself (RFC 9725), prints the Location as "LOCATION <url>",
runs until SIGTERM/SIGINT, then DELETEs the session.

usage: whip_gst.py WHIP_URL [--token TOKEN]
"""
import argparse
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

PIPELINE = (
    "webrtcbin name=w bundle-policy=max-bundle "
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 "
    "! vp8enc deadline=1 keyframe-max-dist=30 cpu-used=8 ! rtpvp8pay pt=96 "
    "! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000 ! w. "
    "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111 "
    "! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! w. "
)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


class Publisher:
    def __init__(self, url, token):
        self.url = url
        self.token = token
        self.location = None
        self.offered = False
        self.loop = GLib.MainLoop()
        self.pipe = Gst.parse_launch(PIPELINE)
        self.webrtc = self.pipe.get_by_name("w")
        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_error)

    def headers(self, content_type=None):
        h = {}
        if content_type:
            h["Content-Type"] = content_type
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        return h

    def on_error(self, _bus, msg):
        err, dbg = msg.parse_error()
        log("gstreamer error:", err.message, dbg)
        self.fail()

    def fail(self):
        self.exit_code = 1
        self.loop.quit()

    def on_negotiation_needed(self, _element):
        # Fired once per linked pad; one offer covers both sections.
        if self.offered:
            return
        self.offered = True
        for i in range(2):
            t = self.webrtc.emit("get-transceiver", i)
            if t is not None:
                t.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        promise = Gst.Promise.new_with_change_func(self.on_offer, None)
        self.webrtc.emit("create-offer", None, promise)

    def on_offer(self, promise, _data):
        promise.wait()
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None else None
        if offer is None:
            log("create-offer failed:", reply.to_string() if reply is not None else "no reply")
            self.fail()
            return
        self.webrtc.emit("set-local-description", offer, Gst.Promise.new())
        sdp = offer.sdp.as_text()
        # sfud is ICE-lite and learns our address from our checks, so the
        # offer goes out at once, without waiting for gathering.
        GLib.idle_add(self.post, sdp)

    def post(self, sdp):
        log("offer:\n" + sdp)
        req = urllib.request.Request(self.url, data=sdp.encode(), method="POST",
                                     headers=self.headers("application/sdp"))
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                answer = resp.read().decode()
                self.location = urllib.parse.urljoin(self.url, resp.headers["Location"])
        except urllib.error.HTTPError as e:
            log("WHIP POST refused:", e.code, e.read().decode(errors="replace"))
            self.fail()
            return False
        except OSError as e:
            log("WHIP POST failed:", e)
            self.fail()
            return False
        log("answer:\n" + answer)
        # Before applying the answer: that emit can take a while in webrtcbin
        # 1.22 (it waits for its own operation queue), and the test only needs
        # to know the session exists.
        sys.stdout.write(f"LOCATION {self.location}\n")
        sys.stdout.flush()
        ok, msg = GstSdp.SDPMessage.new_from_text(answer)
        if ok != GstSdp.SDPResult.OK:
            log("cannot parse the answer")
            self.fail()
            return False
        desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        self.webrtc.emit("set-remote-description", desc, Gst.Promise.new())
        log("answer applied")
        return False

    def delete(self):
        if not self.location:
            return
        req = urllib.request.Request(self.location, method="DELETE", headers=self.headers())
        try:
            urllib.request.urlopen(req, timeout=5).read()
        except (urllib.error.HTTPError, OSError) as e:
            log("DELETE failed:", e)

    def run(self):
        self.exit_code = 0
        for sig in (signal.SIGTERM, signal.SIGINT):
            GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, self.loop.quit)
        self.pipe.set_state(Gst.State.PLAYING)
        self.loop.run()
        self.delete()
        self.pipe.set_state(Gst.State.NULL)
        return self.exit_code


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--token")
    args = ap.parse_args()
    Gst.init(None)
    sys.exit(Publisher(args.url, args.token).run())


if __name__ == "__main__":
    main()
