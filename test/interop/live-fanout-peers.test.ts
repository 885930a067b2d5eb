/**
 * Live fan-out with real players: ffmpeg and GStreamer through the HTTP tunnel to a live
 * path (route live: true) served by the embedded origin(s):
 *  - ffmpeg -rtsp_transport http decodes 5 s of /live/demo, `-v error` silent (shared checks);
 *  - upstream loss, second backend: the origin serving the live path is killed while an ffmpeg
 *    and a GStreamer viewer play; the relay moves the path to the other origin; both players keep
 *    playing after the gap on their first tunnel (no new tunnel GET), ffmpeg exits 0 after its
 *    -t duration and prints nothing at -v error, gst-launch reaches num-buffers;
 *  - upstream loss, same backend: the only origin is killed and restarted on the same port 1.5 s
 *    later; ffmpeg keeps playing across the gap.
 */
import t, { type Test } from 'tap'
import type { Gateway } from '../../src/gateway.js'
import { startOrigin, type OriginHandle } from '../../src/origin/index.js'
import { buildConfig } from '../../src/config/config.js'
import { startGateway } from '../../src/gateway.js'
import { checkFfmpegDecode } from '../helpers/interop-checks.js'
import { pause as delay, waitFor } from '../helpers/wait.js'
import { metric as metricValue } from '../helpers/gateway-harness.js'
import { gstSummary, runGst, runPeer, type GstResult, type PeerResult } from '../helpers/peers.js'

const quietLog = { info () {}, warn () {}, error () {} }
const LIVE = { lingerMs: 1000, reconnectMinMs: 100, reconnectMaxMs: 400, stallTimeoutMs: 2000 }

async function liveGateway (tt: Test, backends: Array<{ name: string, url: string }>): Promise<Gateway> {
  const gw = await startGateway(buildConfig([{
    port: 0,
    ops: { port: 0 },
    host: '127.0.0.1',
    logLevel: 'silent',
    workers: 0,
    backends,
    routes: [{ path: '/', backends: [] }, { path: '/live', backends: [], live: true }],
    backend: { failureCooldownMs: 300, probeIntervalMs: 0 },
    live: LIVE
  }]))
  tt.teardown(async () => { await gw.close() })
  return gw
}

async function sessionsOf (o: OriginHandle): Promise<number> {
  const m = o.registry.getSingleMetric('tunnelgate_origin_sessions')
  return m === undefined ? 0 : (await m.get()).values.reduce((s, v) => s + v.value, 0)
}

/** Video frames of `-f framecrc` output with their pts in seconds. */
function videoPts (out: string): number[] {
  let tb = NaN
  const pts: number[] = []
  for (const line of out.split('\n')) {
    const m = /^#tb 0: (\d+)\/(\d+)/.exec(line)
    if (m !== null) { tb = Number(m[1]) / Number(m[2]); continue }
    const f = /^\s*0,\s*(-?\d+),\s*(-?\d+),/.exec(line)
    if (f !== null) pts.push(Number(f[2]) * tb)
  }
  return pts
}

function ffmpegLive (gw: Gateway, seconds: number): Promise<PeerResult> {
  return runPeer('ffmpeg',
    ['-nostdin', '-v', 'error', '-rtsp_transport', 'http', '-i', `rtsp://127.0.0.1:${gw.port}/live/demo`,
      '-t', String(seconds), '-fps_mode', 'passthrough', '-f', 'framecrc', '-'], { timeoutMs: 60000 })
}

/** GStreamer's own stop-time race (its PAUSE write cancelled after every buffer) counts as played: runGst. */
function gstLive (gw: Gateway, buffers: number): Promise<GstResult> {
  return runGst(['rtspsrc', `location=rtsph://127.0.0.1:${gw.port}/live/demo`,
    '!', 'rtph264depay', '!', 'h264parse', '!', 'avdec_h264'], buffers, { timeoutMs: 60000 })
}

t.test('ffmpeg decodes 5 s of the live path through the tunnel, -v error silent', async tt => {
  const o = await startOrigin({ port: 0, host: '127.0.0.1', logger: quietLog })
  tt.teardown(async () => { await o.close() })
  const gw = await liveGateway(tt, [{ name: 'origin', url: `rtsp://127.0.0.1:${o.port}` }])
  await checkFfmpegDecode(tt, { gw, backendPorts: [o.port] }, '/live/demo', { vod: false })
  tt.ok(await metricValue(gw, 'tunnelgate_live_detections_total') === 0, 'route live: true (no detection)')
})

t.test('upstream loss: the serving origin is killed, the relay moves the path to the other origin; ffmpeg and ' +
  'GStreamer keep playing', async tt => {
  const a = await startOrigin({ port: 0, host: '127.0.0.1', logger: quietLog })
  const b = await startOrigin({ port: 0, host: '127.0.0.1', logger: quietLog })
  tt.teardown(async () => { await a.close(); await b.close() })
  const gw = await liveGateway(tt,
    [{ name: 'a', url: `rtsp://127.0.0.1:${a.port}` }, { name: 'b', url: `rtsp://127.0.0.1:${b.port}` }])
  const gets0 = await metricValue(gw, 'tunnelgate_legs_total', { leg: 'get' })
  const spawnAt = Date.now()
  const ff = ffmpegLive(gw, 10)
  const gst = gstLive(gw, 250)
  const serving = await waitFor(async () => [await sessionsOf(a), await sessionsOf(b)], ([x, y]) => x + y === 1, 10000)
  tt.equal(serving[0]! + serving[1]!, 1, 'one backend session for both players')
  await waitFor(() => metricValue(gw, 'tunnelgate_live_viewers', { path: '/live/demo' }), n => n === 2, 10000)
  await delay(2500)
  const [victim, survivor] = serving[0] === 1 ? [a, b] : [b, a]
  const killAt = Date.now()
  await victim.close()
  const moved = await waitFor(() => sessionsOf(survivor), n => n === 1, 10000, 50)
  tt.equal(moved, 1, `the live path moved to the other origin (${Date.now() - killAt} ms after the kill)`)
  const [rf, rg] = await Promise.all([ff, gst])
  tt.equal(rf.code, 0, 'ffmpeg exit 0 after its -t duration')
  tt.equal(rf.stderr, '', 'ffmpeg -v error printed nothing')
  const pts = videoPts(rf.stdout)
  const killPts = (killAt - spawnAt) / 1000
  tt.ok(pts.length >= 200, `ffmpeg decoded ${pts.length} video frames`)
  tt.ok(pts.filter(p => p > killPts + 1).length >= 100,
    `ffmpeg decoded ${pts.filter(p => p > killPts + 1).length} frames after the gap (kill at ~${killPts.toFixed(1)} s)`)
  tt.equal(rg.timedOut, false, 'gst-launch reached num-buffers')
  tt.equal(rg.buffers, 250, 'GStreamer decoded all 250 frames')
  tt.ok(rg.played, `gst-launch played (${gstSummary(rg, 3000)})`)
  tt.equal(rg.stopRace ? '' : rg.stderr, '', 'gst-launch printed nothing on stderr (but for its own stop-time race)')
  tt.equal(await metricValue(gw, 'tunnelgate_legs_total', { leg: 'get' }) - gets0, 2,
    'no player opened a second tunnel (no reconnect)')
  tt.ok(await metricValue(gw, 'tunnelgate_live_upstream_reconnects_total', { path: '/live/demo' }) >= 1,
    'tunnelgate_live_upstream_reconnects_total counted')
  tt.ok(await metricValue(gw, 'tunnelgate_errors_total', { code: 'TG_ERR_LIVE_UPSTREAM_LOST' }) >= 1,
    'TG_ERR_LIVE_UPSTREAM_LOST counted')
  tt.equal(await metricValue(gw, 'tunnelgate_errors_total', { code: 'TG_ERR_LIVE_OUTAGE' }), 0,
    'no viewer dropped for the outage')
})

t.test('upstream loss: the only origin is killed and restarted on the same port; ffmpeg keeps playing', async tt => {
  let o = await startOrigin({ port: 0, host: '127.0.0.1', logger: quietLog })
  const port = o.port
  tt.teardown(async () => { await o.close() })
  const gw = await liveGateway(tt, [{ name: 'origin', url: `rtsp://127.0.0.1:${port}` }])
  const spawnAt = Date.now()
  const ff = ffmpegLive(gw, 9)
  await waitFor(() => metricValue(gw, 'tunnelgate_live_viewers', { path: '/live/demo' }), n => n === 1, 10000)
  await waitFor(() => sessionsOf(o), n => n === 1, 10000)
  await delay(2000)
  const killAt = Date.now()
  await o.close()
  await delay(1500)
  o = await startOrigin({ port, host: '127.0.0.1', logger: quietLog })
  const back = await waitFor(() => sessionsOf(o), n => n === 1, 10000, 50)
  tt.equal(back, 1,
    `the relay re-opened the live path on the restarted origin (${Date.now() - killAt} ms after the kill)`)
  const r = await ff
  tt.equal(r.code, 0, 'ffmpeg exit 0 after its -t duration')
  tt.equal(r.stderr, '', 'ffmpeg -v error printed nothing')
  const pts = videoPts(r.stdout)
  const killPts = (killAt - spawnAt) / 1000
  tt.ok(pts.filter(p => p > killPts + 1.5).length >= 75,
    `ffmpeg decoded ${pts.filter(p => p > killPts + 1.5).length} frames after the gap`)
  // No time jump: pts across the gap advance by about the outage, not by a random offset.
  const gaps = pts.slice(1).map((p, i) => p - pts[i]!)
  const biggest = Math.max(...gaps)
  tt.ok(biggest > 1 && biggest < 5, `the largest pts step (${biggest.toFixed(2)} s) is the outage, not a jump`)
})
