// The leak check with real players: ffmpeg and GStreamer (rtsph://) play through a gateway with 2
// relay workers in front of the embedded origin, and afterwards each worker is back at its
// baseline of descriptors, sockets and timers, every armed timer counted, unref()'d ones too (the
// workers run with TUNNELGATE_TRACK_TIMERS=1: src/core/timer-census.ts). A player's session arms
// the deadlines a scripted client does not reach (RTCP, keepalive, PAUSE and TEARDOWN paths).
import t from 'tap'
import pino from 'pino'
import { buildConfig } from '../../src/config/config.js'
import { startGateway } from '../../src/gateway.js'
import { startOrigin } from '../../src/origin/index.js'
import { gstSummary, runGst, runPeer } from '../helpers/peers.js'
import { adminClient, until } from '../helpers/ops.js'
import { assertNoChildLeaks, childLeakSnapshot } from '../helpers/leaks.js'

const silent = pino({ level: 'silent' })

t.test('ffmpeg and GStreamer through two workers leave no descriptor, socket or timer behind', async t => {
  // The workers are forked with this environment.
  process.env.TUNNELGATE_TRACK_TIMERS = '1'
  t.teardown(() => { delete process.env.TUNNELGATE_TRACK_TIMERS })
  const origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: silent })
  t.teardown(() => origin.close())
  const gw = await startGateway(buildConfig([{
    port: 0,
    host: '127.0.0.1',
    logLevel: 'silent',
    workers: 2,
    ops: { port: 0 },
    admin: { enabled: true },
    backends: [`rtsp://127.0.0.1:${origin.port}`],
    limits: { maxTunnelsPerIp: 0, maxUnpairedLegsPerIp: 0 }
  }]),
  { logger: silent })
  t.teardown(() => gw.close())
  const api = adminClient(gw.opsPort)
  await until(async () => (await api('GET', '/admin/process')).body.processes as Array<{ up: boolean }>,
    l => l.length === 3 && l.every(p => p.up), 'workers up', 10_000)
  const target = { opsPort: gw.opsPort, include: (id: string) => id !== 'portal' }
  const url = `rtsp://127.0.0.1:${gw.port}/demo`
  const noneOpen = async (): Promise<void> => {
    await until(async () =>
      (await api('GET', '/admin/tunnels')).body.tunnels.length as number,
    n => n === 0, 'no tunnel open', 10_000, 50)
  }
  const ffmpeg = async (): Promise<void> => {
    const r = await runPeer('ffmpeg',
      ['-v', 'error', '-rtsp_transport', 'http', '-i', url, '-t', '2', '-f', 'null', '-'], { timeoutMs: 30_000 })
    t.equal(r.code, 0, `ffmpeg plays (stderr: ${r.stderr.slice(0, 300)})`)
  }
  // runGst: sync=true, and GStreamer's own stop-time race told apart from a failure (test/helpers/peers.ts);
  // a raced run sends no PAUSE and may send no TEARDOWN: the gateway's own clean-up must leave nothing either.
  const gst = async (): Promise<void> => {
    const r = await runGst(['rtspsrc', `location=rtsph://127.0.0.1:${gw.port}/demo`, '!', 'decodebin'], 50, {
      timeoutMs: 30_000
    })
    t.ok(r.played, `GStreamer rtsph:// plays (${gstSummary(r, 1000)})`)
  }

  // Warm-up: each worker's first sessions create what lasts (backend pool state, lazily built objects).
  await Promise.all([ffmpeg(), ffmpeg(), gst(), gst()])
  await noneOpen()
  const before = await childLeakSnapshot(target)
  t.same(before.processes.map(p => p.id), ['w0', 'w1'], 'both workers measured')
  t.ok(before.processes.every(p => p.allTimers !== undefined), 'each worker counts every timer')

  await Promise.all([ffmpeg(), ffmpeg(), ffmpeg(), gst(), gst(), gst()])
  await noneOpen()
  const after = await assertNoChildLeaks(target, before)
  t.equal(after.tunnels, 0, 'tunnels gauge back to 0')
})
