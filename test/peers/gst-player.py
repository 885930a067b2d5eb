#!/usr/bin/python3
"""gst-player.py — drive GStreamer's playbin as a real RTSP client: play, pause, resume, seek, teardown.

Usage: gst-player.py URI [--seek SECONDS]
  URI   e.g. rtsph://127.0.0.1:8080/demo (rtsph = RTSP over the QuickTime HTTP tunnel)

Steps (each checked with the pipeline's own position query):
  1. PLAYING until the position reaches 2 s
  2. PAUSED for 1.5 s: the position must not advance (rtspsrc sends RTSP PAUSE)
  3. PLAYING again until the position advanced 1 s (rtspsrc sends PLAY)
  4. flushing seek to --seek seconds (PLAY with Range: npt=…): the position lands near it and advances 1 s
  5. NULL (rtspsrc sends TEARDOWN)
Prints one JSON object with what it saw; exits 0 when every step held, 1 otherwise, 2 on a pipeline error.
Run with Debian's /usr/bin/python3 (python3-gi).
"""
import json
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

SEC = Gst.SECOND


def main():
    uri = sys.argv[1]
    seek_to = float(sys.argv[sys.argv.index("--seek") + 1]) if "--seek" in sys.argv else 8.0
    Gst.init(None)
    p = Gst.ElementFactory.make("playbin", None)
    p.set_property("uri", uri)
    for prop in ("video-sink", "audio-sink"):
        sink = Gst.ElementFactory.make("fakesink", None)
        sink.set_property("sync", True)  # position follows the clock, as with a real player
        p.set_property(prop, sink)
    bus = p.get_bus()
    seen = {"uri": uri}

    def check_bus():
        while True:
            m = bus.pop_filtered(Gst.MessageType.ERROR | Gst.MessageType.EOS)
            if m is None:
                return
            if m.type == Gst.MessageType.ERROR:
                err, dbg = m.parse_error()
                seen["error"] = f"{err.message} ({dbg})"
                print(json.dumps(seen))
                p.set_state(Gst.State.NULL)
                sys.exit(2)

    def pos():
        ok, v = p.query_position(Gst.Format.TIME)
        return v / SEC if ok else -1.0

    def wait_until(cond, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            check_bus()
            if cond():
                return True
            time.sleep(0.05)
        seen["failed"] = what
        return False

    ok = True
    p.set_state(Gst.State.PLAYING)
    ok = ok and wait_until(lambda: pos() >= 2.0, 20, "play to 2 s")
    seen["played_to"] = pos()
    if ok:
        p.set_state(Gst.State.PAUSED)
        p.get_state(5 * SEC)
        a = pos()
        time.sleep(1.5)
        check_bus()
        b = pos()
        seen["paused_at"], seen["after_pause"] = a, b
        ok = abs(b - a) < 0.2
        if not ok:
            seen["failed"] = "position advanced while paused"
    if ok:
        start = pos()
        p.set_state(Gst.State.PLAYING)
        ok = wait_until(lambda: pos() >= start + 1.0, 10, "resume advances 1 s")
        seen["resumed_to"] = pos()
    if ok:
        p.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, int(seek_to * SEC))
        ok = wait_until(lambda: abs(pos() - seek_to) < 1.5, 10, "seek lands near the target")
        seen["seeked_to"] = pos()
        if ok:
            land = pos()
            ok = wait_until(lambda: pos() >= land + 1.0, 10, "plays on after the seek")
            seen["after_seek"] = pos()
    p.set_state(Gst.State.NULL)
    seen["ok"] = ok
    print(json.dumps(seen))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
