#!/usr/bin/python3
# Copied verbatim (apart from this comment) from /work/shared/reference/peers/gst-origin.py,
# the project's reference GStreamer RTSP server, so the interop tests (test/interop/) carry their own
# harness. Started by test/helpers/gst-server.ts with Debian's /usr/bin/python3.
"""gst-origin.py — GStreamer RTSP origin server (Debian: python3-gi, gir1.2-gst-rtsp-server-1.0).

Run with the *system* python (/usr/bin/python3): a pyenv python on PATH has no `gi`.

Mounts (choose with --mounts, comma separated; default "live,vod"):
  /live     live test pattern: videotestsrc -> x264enc tune=zerolatency -> rtph264pay (pt 96)
            + optional audio: audiotestsrc -> AAC (rtpmp4gpay, pt 97) | PCMA (pt 8) | none.
            Shared: every client receives the same encoder output (cheap for load tests).
  /vod      --vod-file (H.264+AAC MP4, e.g. from make-media.sh): filesrc -> qtdemux -> pay.
            Not shared: each client gets its own pipeline, so PLAY with Range:npt=,
            PAUSE and re-PLAY (seek) work per client.
  /live-vonly  same as /live without audio (handy for simple clients).

Live mounts are made NON-seekable (publish-clock-mode clock+offset, so the SDP carries
a=mediaclk:direct=<offset> instead of a=mediaclk:sender). Stock gst-rtsp-server would
otherwise flush-seek the *shared* videotestsrc pipeline on every PLAY that has
"Range: npt=0-" (ffmpeg, openRTSP, live555ProxyServer all send one): that resets
timestamps for every other viewer and, if the pipeline is PAUSED at that moment (e.g.
live555ProxyServer paused it when its last client left), it never prerolls: after 20 s
the media goes to error status and every later DESCRIBE of that mount gets 503 until the
server is restarted. --seekable-live restores the stock behaviour (to reproduce that).

gst-rtsp-server's GstRTSPClient also answers RTSP-over-HTTP tunneling (GET/POST with
x-sessioncookie) on the same TCP port, so rtsph://HOST:PORT/live works with no extra option.

Examples:
  /usr/bin/python3 gst-origin.py --port 8554 --bitrate 2000 --vod-file /tmp/peers-media/test.mp4
  /usr/bin/python3 gst-origin.py --mounts live --audio none --width 1280 --height 720 --fps 30
  /usr/bin/python3 gst-origin.py --auth user:pass      # Basic auth required for every mount
"""
import argparse
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
# RTSPLowerTrans lives in GstRtsp (gst-plugins-base), not GstRtspServer.
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def have(element):
    return Gst.ElementFactory.find(element) is not None


def live_launch(a, with_audio):
    overlay = ""
    if have("clockoverlay") and not a.no_overlay:
        # wall-clock burned into the picture: lets a person eyeball end-to-end latency
        overlay = ' ! clockoverlay time-format="%H:%M:%S" font-desc="Sans 24"'
    video = (
        f"videotestsrc is-live=true pattern={a.pattern} "
        f"! video/x-raw,width={a.width},height={a.height},framerate={a.fps}/1"
        f"{overlay} "
        f"! x264enc tune=zerolatency speed-preset={a.preset} bitrate={a.bitrate} "
        f"key-int-max={a.gop or a.fps} byte-stream=false "
        "! video/x-h264,profile=baseline "
        "! rtph264pay name=pay0 pt=96 config-interval=-1"
    )
    if not with_audio or a.audio == "none":
        return f"( {video} )"
    if a.audio == "aac":
        aenc = "avenc_aac" if have("avenc_aac") else "voaacenc"
        audio = (
            "audiotestsrc is-live=true wave=sine freq=440 volume=0.2 "
            "! audio/x-raw,rate=48000,channels=2 ! audioconvert ! audioresample "
            f"! {aenc} bitrate=128000 ! aacparse ! rtpmp4gpay name=pay1 pt=97"
        )
    else:  # pcma
        audio = (
            "audiotestsrc is-live=true wave=sine freq=440 volume=0.2 "
            "! audio/x-raw,rate=8000,channels=1 ! audioconvert ! audioresample "
            "! alawenc ! rtppcmapay name=pay1 pt=8"
        )
    return f"( {video} {audio} )"


def vod_launch(a):
    loc = a.vod_file.replace('"', '\\"')
    return (
        f'( filesrc location="{loc}" ! qtdemux name=d '
        "d.video_0 ! queue ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 "
        "d.audio_0 ! queue ! aacparse ! rtpmp4gpay name=pay1 pt=97 )"
    )


def make_factory(launch, shared, a, live=False):
    f = GstRtspServer.RTSPMediaFactory()
    f.set_launch(launch)
    f.set_shared(shared)
    if live and not a.seekable_live:
        # makes gst_rtsp_media_seek_trickmode() answer "pipeline is not seekable", so a
        # PLAY Range never flush-seeks the shared live pipeline (PLAY still returns 200)
        f.set_publish_clock_mode(GstRtspServer.RTSPPublishClockMode.CLOCK_AND_OFFSET)
    f.set_latency(a.latency)
    if a.protocols == "tcp":
        f.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    elif a.protocols == "udp":
        f.set_protocols(GstRtsp.RTSPLowerTrans.UDP)
    if a.auth:
        f.add_role_from_structure(
            Gst.Structure.from_string(
                "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )[0]
        )
    return f


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--address", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8554)
    p.add_argument("--mounts", default="live,vod", help="comma list of: live, live-vonly, vod")
    p.add_argument("--bitrate", type=int, default=1000, help="live video kbit/s (x264enc bitrate)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--gop", type=int, default=0, help="key-int-max in frames (default = fps, 1 s)")
    p.add_argument("--preset", default="ultrafast", help="x264 speed-preset (ultrafast..veryslow)")
    p.add_argument("--pattern", default="smpte", help="videotestsrc pattern (smpte, ball, snow, ...)")
    p.add_argument("--audio", choices=["aac", "pcma", "none"], default="aac", help="live audio track")
    p.add_argument("--vod-file", default="/tmp/peers-media/test.mp4", help="H.264+AAC MP4 for /vod")
    p.add_argument("--protocols", choices=["all", "tcp", "udp"], default="all",
                   help="RTP lower transports offered (all = UDP, UDP-mcast, TCP)")
    p.add_argument("--latency", type=int, default=200, help="rtpbin latency ms on the server side")
    p.add_argument("--auth", default="", help="user:pass -> require Basic auth")
    p.add_argument("--no-overlay", action="store_true", help="no clockoverlay even if available")
    p.add_argument("--verbose", action="store_true", help="log client connects/requests")
    p.add_argument("--seekable-live", action="store_true",
                   help="leave live mounts seekable (stock behaviour; see the 503 note above)")
    a = p.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(a.address)
    server.set_service(str(a.port))
    server.set_backlog(1024)

    if a.auth:
        user, _, pw = a.auth.partition(":")
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, pw), token)
        server.set_auth(auth)

    mounts = server.get_mount_points()
    names = [m.strip() for m in a.mounts.split(",") if m.strip()]
    for m in names:
        if m == "live":
            mounts.add_factory("/live", make_factory(live_launch(a, True), True, a, live=True))
        elif m == "live-vonly":
            mounts.add_factory("/live-vonly", make_factory(live_launch(a, False), True, a, live=True))
        elif m == "vod":
            if not os.path.isfile(a.vod_file):
                sys.exit(f"gst-origin: --vod-file {a.vod_file} missing (run make-media.sh first)")
            mounts.add_factory("/vod", make_factory(vod_launch(a), False, a))
        else:
            sys.exit(f"gst-origin: unknown mount {m!r}")

    def on_client(_srv, client):
        if not a.verbose:
            return
        conn = client.get_connection()
        ip = conn.get_ip() if conn else "?"
        print(f"gst-origin: client connected from {ip}", flush=True)
        for sig in ("describe-request", "setup-request", "play-request", "pause-request",
                    "teardown-request", "options-request", "get-parameter-request"):
            client.connect(sig, lambda _c, ctx, s=sig: print(
                f"gst-origin:   {s} {ctx.uri.abspath if ctx.uri else ''}", flush=True))
        client.connect("closed", lambda _c: print("gst-origin: client closed", flush=True))

    server.connect("client-connected", on_client)

    if server.attach(None) == 0:
        sys.exit(f"gst-origin: cannot bind {a.address}:{a.port}")
    # periodic cleanup of timed-out sessions (as in the gst-rtsp-server examples)
    GLib.timeout_add_seconds(2, lambda: (server.get_session_pool().cleanup(), True)[1])

    loop = GLib.MainLoop()
    for s in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, s, loop.quit)
    print(f"gst-origin: {Gst.version_string()} listening on rtsp://{a.address}:{a.port}/"
          f" mounts={','.join('/' + n for n in names)} bitrate={a.bitrate}k "
          f"{a.width}x{a.height}@{a.fps} audio={a.audio} (RTSP-over-HTTP: rtsph://{a.address}:{a.port}/...)",
          flush=True)
    loop.run()


if __name__ == "__main__":
    main()
