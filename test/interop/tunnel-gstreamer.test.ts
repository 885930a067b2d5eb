/**
 * Interop: real GStreamer rtspsrc (gst-launch-1.0, rtsph:// = RTSP over the QuickTime HTTP
 * tunnel) through the gateway, with real gst-rtsp-server (test/peers/gst-origin.py) as backend.
 *
 * For /vod and /live: rtspsrc ! rtph264depay ! h264parse ! avdec_h264 ! fakesink num-buffers=130
 * sync=true decodes 130 frames (5.2 s at 25 fps) in real time and exits 0 with nothing on
 * stderr; on stop rtspsrc sends PAUSE then TEARDOWN, which the gateway must relay (counted in
 * tunnelgate_rtsp_requests_total); afterwards no tunnel, backend session or backend TCP
 * connection is left. (gst-launch cannot seek or pause from the command line: test/interop/gst-controls.test.ts
 * drives GStreamer through pause, resume, seek and teardown with test/peers/gst-player.py.)
 *
 * The backend runs with --seekable-live: rtspsrc PAUSEs the live stream when it stops, and
 * gst-rtsp-server 1.22 answers that PAUSE with 400 Bad Request on gst-origin's default
 * non-seekable live mount — gst-launch then exits 1 with "Bad Request (400)", identically when
 * it talks to gst-rtsp-server's own tunnel directly, so that is backend behaviour, not the
 * gateway's. Only rtspsrc (Range: npt=now-) plays /live here, so the shared-pipeline seek issue
 * described in gst-origin.py does not arise.
 */
import t from 'tap'
import { checkGstDecode, GST_BUFFERS, gstBackendBed } from '../helpers/interop-checks.js'

const { target } = gstBackendBed('gst', { seekableLive: true })

for (const path of ['/vod', '/live']) {
  t.test(`gst-launch rtspsrc rtsph:// decodes ${GST_BUFFERS} frames of ${path} through the tunnel`,
    tt => checkGstDecode(tt, target(), path))
}
