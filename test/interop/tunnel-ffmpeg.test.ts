/**
 * Interop: real ffmpeg / ffprobe (Debian) through the gateway's QuickTime tunnel, with real
 * GStreamer RTSP server (gst-rtsp-server via test/peers/gst-origin.py) as the backend.
 *
 *  - ffmpeg -rtsp_transport http decodes 5 s of /vod and /live (≥ 90 % of 125 video frames,
 *    audio too, in real time), with `-v error` printing nothing at all;
 *  - ffprobe -rtsp_transport http lists h264 + aac for both mounts;
 *  - ffmpeg -ss 8 (PLAY Range: npt=8) starts the VOD at pts ≈ 8 s;
 *  - a raw tunnel client (GET + POST, one base64 block per request) does DESCRIBE, SETUP of
 *    both tracks over TCP interleaved, PLAY, PAUSE (no RTP for 1 s), PLAY (RTP resumes at
 *    the pause point), TEARDOWN;
 *  - after each: no tunnel, no backend session and no TCP connection to the backend is left.
 * The checks live in test/helpers/interop-checks.ts (shared with tunnel-origin.test.ts).
 */
import t from 'tap'
import {
  checkFfmpegDecode, checkFfmpegSeek, checkFfprobe, checkPauseResume, gstBackendBed
} from '../helpers/interop-checks.js'

const { target } = gstBackendBed('ffmpeg')

for (const path of ['/vod', '/live']) {
  t.test(`ffmpeg decodes 5 s of ${path} through the tunnel`,
    tt => checkFfmpegDecode(tt, target(), path, { vod: path === '/vod' }))
  t.test(`ffprobe lists h264 + aac for ${path}`, tt => checkFfprobe(tt, target(), path))
}
t.test('ffmpeg -ss 8 seeks the VOD (PLAY Range: npt=8)', tt => checkFfmpegSeek(tt, target(), '/vod'))
t.test('raw tunnel client: PLAY, PAUSE, resume PLAY, TEARDOWN on /vod', tt => checkPauseResume(tt, target(), '/vod'))
