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
 */
import t, { type Test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Gateway } from '../../src/gateway.js'
import { startGstServer, type GstServer } from '../helpers/gst-server.js'
import { controlUrl, delay, establishedTo, metricValue, parseFramecrc, sdpMediaControls, startTestGateway, TunnelClient, waitFor, waitQuiet } from '../helpers/interop.js'
import { makeTestMedia, runPeer } from '../helpers/peers.js'

const FPS = 25
const SECONDS = 5
const MIN_VIDEO_FRAMES = Math.ceil(SECONDS * FPS * 0.9)
// AAC-LC 48 kHz: 1024 samples a frame
const MIN_AUDIO_FRAMES = Math.ceil(SECONDS * 48000 / 1024 * 0.9)

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

const url = (path: string): string => `rtsp://127.0.0.1:${gw!.port}${path}`

async function assertQuiet (tt: Test): Promise<void> {
  const s = await waitQuiet(gw!, [gst!.port])
  tt.same(s, { tunnels: 0, backendSessions: 0, backendConnections: 0 }, 'no tunnel, backend session or backend connection left')
}

for (const path of ['/vod', '/live']) {
  t.test(`ffmpeg decodes ${SECONDS} s of ${path} through the tunnel`, async tt => {
    const r = await runPeer('ffmpeg', ['-nostdin', '-v', 'error', '-rtsp_transport', 'http', '-i', url(path),
      '-t', String(SECONDS), '-fps_mode', 'passthrough', '-f', 'framecrc', '-'], { timeoutMs: 30000 })
    tt.equal(r.timedOut, false, 'ffmpeg finished')
    tt.equal(r.code, 0, 'ffmpeg exit 0')
    tt.equal(r.stderr, '', 'ffmpeg -v error printed nothing')
    const { frames, firstPts, timebase } = parseFramecrc(r.stdout)
    tt.ok((frames.get(0) ?? 0) >= MIN_VIDEO_FRAMES, `video frames ${frames.get(0) ?? 0} ≥ ${MIN_VIDEO_FRAMES}`)
    tt.ok((frames.get(1) ?? 0) >= MIN_AUDIO_FRAMES, `audio frames ${frames.get(1) ?? 0} ≥ ${MIN_AUDIO_FRAMES}`)
    tt.ok(r.ms >= (SECONDS - 0.5) * 1000, `streamed in real time (${r.ms} ms)`)
    if (path === '/vod') {
      const v0 = (firstPts.get(0) ?? NaN) * (timebase.get(0) ?? NaN)
      tt.ok(v0 >= 0 && v0 < 0.5, `VOD starts at the beginning (first video pts ${v0} s)`)
    }
    await assertQuiet(tt)
  })

  t.test(`ffprobe lists h264 + aac for ${path}`, async tt => {
    const r = await runPeer('ffprobe', ['-v', 'error', '-rtsp_transport', 'http', '-show_entries', 'stream=codec_name,codec_type',
      '-of', 'csv=p=0', url(path)], { timeoutMs: 20000 })
    tt.equal(r.code, 0, 'ffprobe exit 0')
    tt.equal(r.stderr, '', 'ffprobe -v error printed nothing')
    const streams = r.stdout.trim().split('\n').map(l => l.trim()).sort()
    tt.same(streams, ['aac,audio', 'h264,video'], 'one H.264 video and one AAC audio stream')
    await assertQuiet(tt)
  })
}

t.test('ffmpeg -ss 8 seeks the VOD (PLAY Range: npt=8)', async tt => {
  const plays0 = await metricValue(gw!, 'tunnelgate_rtsp_requests_total', { method: 'PLAY' })
  const pauses0 = await metricValue(gw!, 'tunnelgate_rtsp_requests_total', { method: 'PAUSE' })
  // -copyts keeps the input timestamps, which ffmpeg's RTSP demuxer bases on the PLAY reply's Range
  const r = await runPeer('ffmpeg', ['-nostdin', '-v', 'error', '-rtsp_transport', 'http', '-ss', '8', '-i', url('/vod'),
    '-copyts', '-fps_mode', 'passthrough', '-frames:v', '50', '-frames:a', '50', '-f', 'framecrc', '-'], { timeoutMs: 30000 })
  tt.equal(r.code, 0, 'ffmpeg exit 0')
  tt.equal(r.stderr, '', 'ffmpeg -v error printed nothing')
  const { frames, firstPts, timebase } = parseFramecrc(r.stdout)
  tt.equal(frames.get(0), 50, '50 video frames decoded')
  const v0 = (firstPts.get(0) ?? NaN) * (timebase.get(0) ?? NaN)
  const a0 = (firstPts.get(1) ?? NaN) * (timebase.get(1) ?? NaN)
  tt.ok(v0 >= 7.5 && v0 <= 9, `first video pts ${v0} s ≈ 8 s`)
  tt.ok(a0 >= 7.5 && a0 <= 9, `first audio pts ${a0} s ≈ 8 s`)
  tt.ok(r.ms < 8000, `did not play the first 8 s (${r.ms} ms)`)
  // ffmpeg 5.1 opens with PLAY Range: npt=0.000-, then seeks: PAUSE, PLAY Range: npt=8.000- (reply npt=8-20)
  tt.equal(await metricValue(gw!, 'tunnelgate_rtsp_requests_total', { method: 'PLAY' }) - plays0, 2, 'PLAY, then the seeking PLAY, through the gateway')
  tt.equal(await metricValue(gw!, 'tunnelgate_rtsp_requests_total', { method: 'PAUSE' }) - pauses0, 1, 'the PAUSE before the seek through the gateway')
  await assertQuiet(tt)
})

t.test('raw tunnel client: PLAY, PAUSE, resume PLAY, TEARDOWN on /vod', async tt => {
  const c = await TunnelClient.open(gw!.port, '/vod')
  tt.teardown(() => c.close())
  const rtp = new Map<number, number>()
  let lastVideoTs = -1
  c.onFrame = (ch, p) => {
    if (ch % 2 !== 0) return // RTCP
    if (p.length < 12 || p[0]! >> 6 !== 2) { tt.fail(`bad RTP packet on channel ${ch}`); return }
    rtp.set(ch, (rtp.get(ch) ?? 0) + 1)
    if (ch === 0) lastVideoTs = p.readUInt32BE(4)
  }
  const total = (): number => [...rtp.values()].reduce((a, b) => a + b, 0)

  const d = await c.request('DESCRIBE', url('/vod'), { Accept: 'application/sdp' })
  tt.equal(d.status, 200, 'DESCRIBE 200')
  const medias = sdpMediaControls(d.body.toString())
  tt.same(medias.map(m => m.media), ['video', 'audio'], 'SDP has video and audio')
  const base = d.header('content-base') ?? url('/vod')
  tt.ok(base.startsWith(url('/vod')), `Content-Base ${base} names the gateway`)
  for (const [i, m] of medias.entries()) {
    const s = await c.request('SETUP', controlUrl(base, m.control), { Transport: `RTP/AVP/TCP;unicast;interleaved=${2 * i}-${2 * i + 1}` })
    tt.equal(s.status, 200, `SETUP ${m.media} 200`)
    tt.match(s.header('transport') ?? '', new RegExp(`interleaved=${2 * i}-${2 * i + 1}`), `${m.media} interleaved ${2 * i}-${2 * i + 1}`)
  }
  tt.ok(c.session, 'got a session id')

  const p1 = await c.request('PLAY', base, { Range: 'npt=0-' })
  tt.equal(p1.status, 200, 'PLAY 200')
  await delay(2000)
  tt.ok((rtp.get(0) ?? 0) >= 30, `video RTP in 2 s: ${rtp.get(0) ?? 0}`)
  tt.ok((rtp.get(2) ?? 0) >= 20, `audio RTP in 2 s: ${rtp.get(2) ?? 0}`)
  // the probes used by assertQuiet() do see a live session (so their 0 afterwards means something)
  tt.equal(await metricValue(gw!, 'tunnelgate_tunnels_active'), 1, 'one tunnel active while playing')
  tt.equal(await metricValue(gw!, 'tunnelgate_backend_sessions'), 1, 'one backend session while playing')
  tt.equal(establishedTo(gst!.port), 1, 'one TCP connection to the backend while playing')

  const pause = await c.request('PAUSE', base)
  tt.equal(pause.status, 200, 'PAUSE 200')
  await delay(250) // packets already in flight when the PAUSE was handled
  const tsAtPause = lastVideoTs
  const beforeQuiet = total()
  await delay(1000)
  tt.equal(total() - beforeQuiet, 0, 'no RTP for 1 s while paused')

  const p2 = await c.request('PLAY', base)
  tt.equal(p2.status, 200, 'resume PLAY 200')
  const resumedFrom = /npt=([\d.]+)-/.exec(p2.header('range') ?? '')
  tt.ok(resumedFrom !== null && Number(resumedFrom[1]) >= 1.5, `resumed at the pause point (Range: ${p2.header('range') ?? 'none'})`)
  const atResume = total()
  const after = await waitFor(() => total() - atResume, n => n >= 20, 3000)
  tt.ok(after >= 20, `RTP resumes (${after} packets)`)
  // 90 kHz video clock: resuming continues from the pause point instead of rewinding to 0
  tt.ok(((lastVideoTs - tsAtPause) >>> 0) < 90000 * 10, 'video RTP timestamps continue after resume')

  const td = await c.request('TEARDOWN', base)
  tt.equal(td.status, 200, 'TEARDOWN 200')
  c.close()
  await assertQuiet(tt)
  tt.ok(await metricValue(gw!, 'tunnelgate_rtsp_requests_total', { method: 'PAUSE' }) >= 1, 'gateway counted the PAUSE')
  tt.ok(await metricValue(gw!, 'tunnelgate_rtsp_requests_total', { method: 'TEARDOWN' }) >= 1, 'gateway counted the TEARDOWN')
})
