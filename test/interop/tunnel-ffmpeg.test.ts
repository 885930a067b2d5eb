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
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Gateway } from '../../src/gateway.js'
import { startGstServer, type GstServer } from '../helpers/gst-server.js'
import { startTestGateway } from '../helpers/interop.js'
import { checkFfmpegDecode, checkFfmpegSeek, checkFfprobe, checkPauseResume, FPS, type Target } from '../helpers/interop-checks.js'
import { makeTestMedia } from '../helpers/peers.js'

let dir = ''
let gst: GstServer | undefined
let gw: Gateway | undefined

t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tg-interop-ffmpeg-'))
  const vodFile = await makeTestMedia(dir, 20, { width: 320, height: 240, fps: FPS })
  gst = await startGstServer({ vodFile, width: 320, height: 240, fps: FPS })
  gw = await startTestGateway([gst.url])
})

t.teardown(async () => {
  await gw?.close()
  await gst?.close()
  if (dir !== '') await rm(dir, { recursive: true, force: true })
})

const target = (): Target => ({ gw: gw!, backendPorts: [gst!.port] })

for (const path of ['/vod', '/live']) {
  t.test(`ffmpeg decodes 5 s of ${path} through the tunnel`, tt => checkFfmpegDecode(tt, target(), path, { vod: path === '/vod' }))
  t.test(`ffprobe lists h264 + aac for ${path}`, tt => checkFfprobe(tt, target(), path))
}
t.test('ffmpeg -ss 8 seeks the VOD (PLAY Range: npt=8)', tt => checkFfmpegSeek(tt, target(), '/vod'))
t.test('raw tunnel client: PLAY, PAUSE, resume PLAY, TEARDOWN on /vod', tt => checkPauseResume(tt, target(), '/vod'))
