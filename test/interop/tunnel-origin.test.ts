/**
 * Interop: the same real-peer checks as tunnel-ffmpeg / tunnel-gstreamer, with the embedded
 * origin (src/origin, media/demo.mp4: /demo VOD 12 s, /live/demo live) as the backend:
 *  - ffmpeg -rtsp_transport http decodes 5 s of /demo and /live/demo, `-v error` silent;
 *  - ffprobe lists h264 + aac for both;
 *  - ffmpeg -ss 8 on /demo starts at pts ≈ 8 s (PLAY Range: npt=8 honoured through the tunnel);
 *  - raw tunnel client PLAY / PAUSE (no RTP for 1 s) / resume / TEARDOWN on /demo;
 *  - gst-launch rtspsrc rtsph:// decodes 130 frames of /demo and /live/demo, PAUSE + TEARDOWN relayed;
 *  - after each: no tunnel, backend session or backend TCP connection left;
 *  - a gateway with TWO origins: 4 concurrent ffmpeg sessions are spread 2 + 2 by the
 *    least-loaded balancer (tunnelgate_backend_choices_total), both origins serve at once.
 */
import t, { type Test } from 'tap'
import type { Gateway } from '../../src/gateway.js'
import { startOrigin, type OriginHandle } from '../../src/origin/index.js'
import { establishedTo, metricByLabel, parseFramecrc } from '../helpers/interop.js'
import { startTestGateway } from '../helpers/gateway-harness.js'
import { waitFor } from '../helpers/wait.js'
import {
  assertQuiet, checkFfmpegDecode, checkFfmpegSeek, checkFfprobe, checkGstDecode, checkPauseResume, GST_BUFFERS,
  MIN_VIDEO_FRAMES, type Target
} from '../helpers/interop-checks.js'
import { runPeer } from '../helpers/peers.js'

const quietLog = { info () {}, warn () {}, error () {} }

let origin: OriginHandle | undefined
let gw: Gateway | undefined

t.before(async () => {
  origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: quietLog })
  t.ok(origin.streams().includes('demo'), 'origin serves media/demo.mp4 as "demo"')
  gw = await startTestGateway(t, [`rtsp://127.0.0.1:${origin.port}`])
})

t.teardown(async () => {
  await origin?.close()
})

const target = (): Target => ({ gw: gw!, backendPorts: [origin!.port] })

async function originGauge (o: OriginHandle, name: string): Promise<number> {
  const m = o.registry.getSingleMetric(name)
  if (m === undefined) throw new Error(`origin has no metric ${name}`)
  return (await m.get()).values.reduce((s, v) => s + v.value, 0)
}

async function assertOriginIdle (tt: Test, o: OriginHandle, label: string): Promise<void> {
  const s = await waitFor(async () => ({
    sessions: await originGauge(o, 'tunnelgate_origin_sessions'),
    connections: await originGauge(o, 'tunnelgate_origin_connections')
  }), v => v.sessions === 0 && v.connections === 0, 8000)
  tt.same(s, { sessions: 0, connections: 0 }, `${label}: no RTSP session or connection left on the origin`)
}

for (const path of ['/demo', '/live/demo']) {
  t.test(`ffmpeg decodes 5 s of ${path} through the tunnel`,
    tt => checkFfmpegDecode(tt, target(), path, { vod: path === '/demo' }))
  t.test(`ffprobe lists h264 + aac for ${path}`, tt => checkFfprobe(tt, target(), path))
}
t.test('ffmpeg -ss 8 seeks /demo (PLAY Range: npt=8)', tt => checkFfmpegSeek(tt, target(), '/demo'))
t.test('raw tunnel client: PLAY, PAUSE, resume PLAY, TEARDOWN on /demo', tt => checkPauseResume(tt, target(), '/demo'))
for (const path of ['/demo', '/live/demo']) {
  t.test(`gst-launch rtspsrc rtsph:// decodes ${GST_BUFFERS} frames of ${path} through the tunnel`,
    tt => checkGstDecode(tt, target(), path))
}
t.test('the origin is idle afterwards', tt => assertOriginIdle(tt, origin!, 'origin'))

t.test('two origins behind one gateway: concurrent sessions are spread over both', async tt => {
  const o1 = await startOrigin({ port: 0, host: '127.0.0.1', logger: quietLog })
  const o2 = await startOrigin({ port: 0, host: '127.0.0.1', logger: quietLog })
  const gw2 = await startTestGateway(tt, [
    { name: 'origin-a', url: `rtsp://127.0.0.1:${o1.port}` },
    { name: 'origin-b', url: `rtsp://127.0.0.1:${o2.port}` }
  ])
  tt.teardown(async () => { await o1.close(); await o2.close() })
  const url = `rtsp://127.0.0.1:${gw2.port}/demo`
  const runs = [0, 1, 2,
    3].map(() => runPeer('ffmpeg', ['-nostdin', '-v', 'error', '-rtsp_transport', 'http', '-i', url,
    '-t', '4', '-fps_mode', 'passthrough', '-f', 'framecrc', '-'], { timeoutMs: 30000 }))
  // while all four play, both origins hold connections from the gateway
  const during = await waitFor(() => [establishedTo(o1.port), establishedTo(o2.port)], ([a, b]) => a === 2 && b === 2,
    3000)
  tt.same(during, [2, 2], 'both origins serve 2 sessions at once')
  const results = await Promise.all(runs)
  for (const [i, r] of results.entries()) {
    tt.equal(r.code, 0, `ffmpeg #${i} exit 0`)
    tt.equal(r.stderr, '', `ffmpeg #${i} printed nothing`)
    const v = parseFramecrc(r.stdout).frames.get(0) ?? 0
    tt.ok(v >= Math.ceil(MIN_VIDEO_FRAMES * 4 / 5), `ffmpeg #${i} decoded ${v} video frames`)
  }
  tt.same(await metricByLabel(gw2, 'tunnelgate_backend_choices_total', 'backend'), { 'origin-a': 2, 'origin-b': 2 },
    'tunnelgate_backend_choices_total: 2 sessions to each origin')
  await assertQuiet(tt, { gw: gw2, backendPorts: [o1.port, o2.port] })
  await assertOriginIdle(tt, o1, 'origin-a')
  await assertOriginIdle(tt, o2, 'origin-b')
})
