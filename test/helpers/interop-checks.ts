/**
 * The interop checks, shared by test/interop/*.test.ts so the same real-peer scenarios run
 * against every backend (gst-rtsp-server, the embedded origin). Each check drives a real peer
 * (or the raw tunnel client) through the gateway, asserts on what the peer got, and ends by
 * asserting that no tunnel, backend session or backend TCP connection is left.
 */
import t from 'tap'
import type { Test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startGstServer, type GstServer, type GstServerOptions } from './gst-server.js'
import type { Gateway } from '../../src/gateway.js'
import { controlUrl, establishedTo, parseFramecrc, sdpMediaControls, waitQuiet } from './interop.js'
import { pause as delay, waitFor } from './wait.js'
import { metric as metricValue, startTestGateway } from './gateway-harness.js'
import { TunnelClient } from './tunnel-client.js'
import { makeTestMedia, runGst, runPeer } from './peers.js'

export const FPS = 25
export const DECODE_SECONDS = 5
export const MIN_VIDEO_FRAMES = Math.ceil(DECODE_SECONDS * FPS * 0.9)
/** AAC-LC 48 kHz: 1024 samples a frame. */
export const MIN_AUDIO_FRAMES = Math.ceil(DECODE_SECONDS * 48000 / 1024 * 0.9)
export const GST_BUFFERS = 130

export interface Target {
  gw: Gateway
  /** RTSP ports of the gateway's backends (their established connections must drop to 0). */
  backendPorts: number[]
}

/**
 * The usual interop bed of a test file: 20 s of 320×240 test media (H.264 + AAC), GStreamer's RTSP
 * server serving it (/vod, /live) and a gateway in front, started before the file's tests and
 * closed after them. `target()` is valid inside the tests.
 */
export function gstBackendBed (
  name: string,
  gstOptions: Omit<GstServerOptions, 'vodFile'> = {}
): { target: () => Target, gst: () => GstServer } {
  let dir = ''
  let gst: GstServer | undefined
  let gw: Gateway | undefined
  t.before(async () => {
    dir = await mkdtemp(join(tmpdir(), `tg-interop-${name}-`))
    const vodFile = await makeTestMedia(dir, 20, { width: 320, height: 240, fps: FPS })
    gst = await startGstServer({ vodFile, width: 320, height: 240, fps: FPS, ...gstOptions })
    gw = await startTestGateway(t, [gst.url])
  })
  t.teardown(async () => {
    await gst?.close()
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  })
  return { target: () => ({ gw: gw!, backendPorts: [gst!.port] }), gst: () => gst! }
}

export const gwUrl = (t: Target, path: string): string => `rtsp://127.0.0.1:${t.gw.port}${path}`

const requests = async (t: Target, method: string): Promise<number> =>
  await metricValue(t.gw, 'tunnelgate_rtsp_requests_total', { method })

export async function assertQuiet (tt: Test, t: Target): Promise<void> {
  const s = await waitQuiet(t.gw, t.backendPorts)
  tt.same(
    s,
    { tunnels: 0, backendSessions: 0, backendConnections: 0 },
    'no tunnel, backend session or backend connection left'
  )
}

/** ffmpeg -rtsp_transport http decodes DECODE_SECONDS of `path`, -v error silent. */
export async function checkFfmpegDecode (tt: Test, t: Target, path: string, o: { vod: boolean }): Promise<void> {
  const r = await runPeer('ffmpeg', ['-nostdin', '-v', 'error', '-rtsp_transport', 'http', '-i', gwUrl(t, path),
    '-t', String(DECODE_SECONDS), '-fps_mode', 'passthrough', '-f', 'framecrc', '-'], { timeoutMs: 30000 })
  tt.equal(r.timedOut, false, 'ffmpeg finished')
  tt.equal(r.code, 0, 'ffmpeg exit 0')
  tt.equal(r.stderr, '', 'ffmpeg -v error printed nothing')
  const { frames, firstPts, timebase } = parseFramecrc(r.stdout)
  tt.ok((frames.get(0) ?? 0) >= MIN_VIDEO_FRAMES, `video frames ${frames.get(0) ?? 0} ≥ ${MIN_VIDEO_FRAMES}`)
  tt.ok((frames.get(1) ?? 0) >= MIN_AUDIO_FRAMES, `audio frames ${frames.get(1) ?? 0} ≥ ${MIN_AUDIO_FRAMES}`)
  tt.ok(r.ms >= (DECODE_SECONDS - 0.5) * 1000, `streamed in real time (${r.ms} ms)`)
  if (o.vod) {
    const v0 = (firstPts.get(0) ?? NaN) * (timebase.get(0) ?? NaN)
    tt.ok(v0 >= 0 && v0 < 0.5, `VOD starts at the beginning (first video pts ${v0} s)`)
  }
  await assertQuiet(tt, t)
}

/** ffprobe -rtsp_transport http lists exactly one h264 and one aac stream. */
export async function checkFfprobe (tt: Test, t: Target, path: string): Promise<void> {
  const r = await runPeer(
    'ffprobe',
    [
      '-v',
      'error',
      '-rtsp_transport',
      'http',
      '-show_entries',
      'stream=codec_name,codec_type',
      '-of',
      'csv=p=0',
      gwUrl(t, path)
    ],
    { timeoutMs: 20000 }
  )
  tt.equal(r.code, 0, 'ffprobe exit 0')
  tt.equal(r.stderr, '', 'ffprobe -v error printed nothing')
  const streams = r.stdout.trim().split('\n').map(l => l.trim()).sort()
  tt.same(streams, ['aac,audio', 'h264,video'], 'one H.264 video and one AAC audio stream')
  await assertQuiet(tt, t)
}

/** ffmpeg -ss 8 on a VOD: PLAY Range: npt=8 through the gateway; first pts ≈ 8 s. */
export async function checkFfmpegSeek (tt: Test, t: Target, path: string): Promise<void> {
  const plays0 = await requests(t, 'PLAY')
  const pauses0 = await requests(t, 'PAUSE')
  // -copyts keeps the input timestamps, which ffmpeg's RTSP demuxer bases on the PLAY reply's Range
  const r = await runPeer(
    'ffmpeg',
    [
      '-nostdin',
      '-v',
      'error',
      '-rtsp_transport',
      'http',
      '-ss',
      '8',
      '-i',
      gwUrl(t, path),
      '-copyts',
      '-fps_mode',
      'passthrough',
      '-frames:v',
      '50',
      '-frames:a',
      '50',
      '-f',
      'framecrc',
      '-'
    ],
    { timeoutMs: 30000 }
  )
  tt.equal(r.code, 0, 'ffmpeg exit 0')
  tt.equal(r.stderr, '', 'ffmpeg -v error printed nothing')
  const { frames, firstPts, timebase } = parseFramecrc(r.stdout)
  tt.equal(frames.get(0), 50, '50 video frames decoded')
  const v0 = (firstPts.get(0) ?? NaN) * (timebase.get(0) ?? NaN)
  const a0 = (firstPts.get(1) ?? NaN) * (timebase.get(1) ?? NaN)
  tt.ok(v0 >= 7.5 && v0 <= 9, `first video pts ${v0} s ≈ 8 s`)
  tt.ok(a0 >= 7.5 && a0 <= 9, `first audio pts ${a0} s ≈ 8 s`)
  tt.ok(r.ms < 8000, `did not play the first 8 s (${r.ms} ms)`)
  // ffmpeg 5.1 opens with PLAY Range: npt=0.000-, then seeks: PAUSE, PLAY Range: npt=8.000-
  tt.equal(await requests(t, 'PLAY') - plays0, 2, 'PLAY, then the seeking PLAY, through the gateway')
  tt.equal(await requests(t, 'PAUSE') - pauses0, 1, 'the PAUSE before the seek through the gateway')
  await assertQuiet(tt, t)
}

/**
 * Raw tunnel client (GET + POST, one base64 block per request): DESCRIBE, SETUP both tracks
 * TCP interleaved, PLAY 2 s, PAUSE (no RTP for 1 s), PLAY (RTP resumes from the pause point),
 * TEARDOWN.
 */
export async function checkPauseResume (tt: Test, t: Target, path: string): Promise<void> {
  const url = gwUrl(t, path)
  const c = await TunnelClient.player(t.gw.port, path)
  tt.teardown(() => c.close())
  const rtp = new Map<number, number>()
  let videoChannel = 0
  let lastVideoTs = -1
  let firstTsAfterResume: number | null = null // set to -1 to catch the first video packet after resume
  c.onFrame = (ch, p) => {
    if (ch % 2 !== 0) return // RTCP
    if (p.length < 12 || p[0]! >> 6 !== 2) { tt.fail(`bad RTP packet on channel ${ch}`); return }
    rtp.set(ch, (rtp.get(ch) ?? 0) + 1)
    if (ch !== videoChannel) return
    lastVideoTs = p.readUInt32BE(4)
    if (firstTsAfterResume === -1) firstTsAfterResume = lastVideoTs
  }
  const total = (): number => [...rtp.values()].reduce((a, b) => a + b, 0)

  const d = await c.request('DESCRIBE', url, { Accept: 'application/sdp' })
  tt.equal(d.status, 200, 'DESCRIBE 200')
  const medias = sdpMediaControls(d.body.toString())
  tt.same(medias.map(m => m.media).sort(), ['audio', 'video'], 'SDP has video and audio')
  const base = d.header('content-base') ?? url
  tt.ok(base.startsWith(url), `Content-Base ${base} names the gateway`)
  videoChannel = 2 * medias.findIndex(m => m.media === 'video')
  const audioChannel = 2 * medias.findIndex(m => m.media === 'audio')
  for (const [i, m] of medias.entries()) {
    const s = await c.request('SETUP', controlUrl(base, m.control), {
      Transport: `RTP/AVP/TCP;unicast;interleaved=${2 * i}-${2 * i + 1}`
    })
    tt.equal(s.status, 200, `SETUP ${m.media} 200`)
    tt.match(
      s.header('transport') ?? '',
      new RegExp(`interleaved=${2 * i}-${2 * i + 1}`),
      `${m.media} interleaved ${2 * i}-${2 * i + 1}`
    )
  }
  tt.ok(c.session, 'got a session id')

  const p1 = await c.request('PLAY', base, { Range: 'npt=0-' })
  tt.equal(p1.status, 200, 'PLAY 200')
  await delay(2000)
  tt.ok((rtp.get(videoChannel) ?? 0) >= 30, `video RTP in 2 s: ${rtp.get(videoChannel) ?? 0}`)
  tt.ok((rtp.get(audioChannel) ?? 0) >= 20, `audio RTP in 2 s: ${rtp.get(audioChannel) ?? 0}`)
  // the probes used by assertQuiet() do see a live session (so their 0 afterwards means something)
  tt.equal(await metricValue(t.gw, 'tunnelgate_tunnels_active'), 1, 'one tunnel active while playing')
  tt.equal(await metricValue(t.gw, 'tunnelgate_backend_sessions'), 1, 'one backend session while playing')
  tt.equal(
    t.backendPorts.reduce((s, port) => s + establishedTo(port), 0),
    1,
    'one TCP connection to the backend while playing'
  )

  const pause = await c.request('PAUSE', base)
  tt.equal(pause.status, 200, 'PAUSE 200')
  await delay(250) // packets already in flight when the PAUSE was handled
  const tsAtPause = lastVideoTs
  const beforeQuiet = total()
  await delay(1000)
  tt.equal(total() - beforeQuiet, 0, 'no RTP for 1 s while paused')

  firstTsAfterResume = -1
  const p2 = await c.request('PLAY', base)
  tt.equal(p2.status, 200, 'resume PLAY 200')
  const range = p2.header('range')
  if (range !== undefined) {
    const from = /npt=([\d.]+)-/.exec(range)
    tt.ok(from !== null && Number(from[1]) >= 1.5, `resumed at the pause point (Range: ${range})`)
  }
  const atResume = total()
  const after = await waitFor(() => total() - atResume, n => n >= 20, 3000)
  tt.ok(after >= 20, `RTP resumes (${after} packets)`)
  // 90 kHz video clock: a resume continues near the pause point; a restart at 0 would step back ~2 s
  const step = (((firstTsAfterResume ?? 0) - tsAtPause) | 0) / 90000
  tt.ok(step > -0.5 && step < 1.5, `video RTP timestamps continue after resume (step ${step.toFixed(3)} s)`)

  const td = await c.request('TEARDOWN', base)
  tt.equal(td.status, 200, 'TEARDOWN 200')
  c.close()
  await assertQuiet(tt, t)
}

/**
 * gst-launch-1.0 rtspsrc location=rtsph://… decodes GST_BUFFERS frames in real time and exits 0;
 * on stop rtspsrc sends PAUSE then TEARDOWN, which the gateway relays. A run that ends in
 * GStreamer's own stop-time race (its PAUSE write cancelled after every frame: runGst) sends no
 * PAUSE, so it is played once more, once, and the second run is held to all of this.
 */
export async function checkGstDecode (tt: Test, t: Target, path: string): Promise<void> {
  const play = async () => {
    const before = {
      PLAY: await requests(t, 'PLAY'),
      PAUSE: await requests(t, 'PAUSE'),
      TEARDOWN: await requests(t, 'TEARDOWN')
    }
    const gwAnswers0 = await metricValue(t.gw, 'tunnelgate_gateway_responses_total')
    const r = await runGst(['rtspsrc', `location=rtsph://127.0.0.1:${t.gw.port}${path}`,
      '!', 'rtph264depay', '!', 'h264parse', '!', 'avdec_h264'], GST_BUFFERS, { timeoutMs: 30000 })
    return { before, gwAnswers0, r }
  }
  let { before, gwAnswers0, r } = await play()
  if (r.stopRace) {
    tt.comment(`GStreamer's own stop-time race after ${r.buffers} frames (no PAUSE sent); playing once more`)
    await waitQuiet(t.gw, t.backendPorts)
    ;({ before, gwAnswers0, r } = await play())
  }
  tt.equal(r.timedOut, false, 'gst-launch finished (reached num-buffers)')
  tt.equal(r.buffers, GST_BUFFERS, `GStreamer decoded all ${GST_BUFFERS} frames`)
  tt.equal(r.code, 0, `gst-launch exit 0${r.code === 0 ? '' : `: ${r.stderr}`}`)
  tt.equal(r.stderr, '', 'nothing on stderr')
  tt.ok(
    r.ms >= (GST_BUFFERS / FPS) * 1000 - 200,
    `decoded in real time (${r.ms} ms for ${GST_BUFFERS} frames at ${FPS} fps)`
  )
  tt.equal(await requests(t, 'PLAY') - before.PLAY, 1, 'gateway relayed the PLAY')
  tt.equal(await requests(t, 'PAUSE') - before.PAUSE, 1, 'gateway relayed the PAUSE rtspsrc sends on stop')
  tt.equal(await requests(t, 'TEARDOWN') - before.TEARDOWN, 1, 'gateway relayed the TEARDOWN')
  tt.equal(
    await metricValue(t.gw, 'tunnelgate_gateway_responses_total') - gwAnswers0,
    0,
    'the gateway answered no request itself'
  )
  await assertQuiet(tt, t)
}

/**
 * GStreamer's playbin on rtsph:// (test/peers/gst-player.py) plays, pauses (the position holds),
 * resumes, seeks to `seekTo` seconds and tears down, all through the gateway.
 */
export async function checkGstControls (tt: Test, t: Target, path: string, seekTo: number): Promise<void> {
  const before = {
    PLAY: await requests(t, 'PLAY'),
    PAUSE: await requests(t, 'PAUSE'),
    TEARDOWN: await requests(t, 'TEARDOWN')
  }
  const script = new URL('../peers/gst-player.py', import.meta.url).pathname
  const r = await runPeer(
    '/usr/bin/python3',
    [script, `rtsph://127.0.0.1:${t.gw.port}${path}`, '--seek', String(seekTo)],
    { timeoutMs: 60000 }
  )
  const seen = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, number | string | boolean>
  tt.equal(r.code, 0, `play, pause, resume, seek and teardown held: ${r.stdout.trim()} ${r.stderr.slice(0, 300)}`)
  tt.ok(Number(seen.after_pause) - Number(seen.paused_at) < 0.2, 'the position held while paused')
  tt.ok(Math.abs(Number(seen.seeked_to) - seekTo) < 1.5, `the seek landed near ${seekTo} s (${String(seen.seeked_to)})`)
  tt.ok(await requests(t, 'PAUSE') - before.PAUSE >= 1, 'gateway relayed the PAUSE')
  tt.ok(await requests(t, 'PLAY') - before.PLAY >= 3, 'gateway relayed PLAY, the resume PLAY and the seek PLAY')
  tt.ok(await requests(t, 'TEARDOWN') - before.TEARDOWN >= 1, 'gateway relayed the TEARDOWN')
  await assertQuiet(tt, t)
}
