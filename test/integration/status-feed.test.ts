/**
 * The status feed's samples (status page, /status/live, /status/events) against a real gateway:
 * tunnels, relay rows, streams and error counts by code, in one process and with two relay
 * workers, where the errors are counted in the workers; and at a portal in front of a relay node,
 * which reads the node's /status/summary (bad replies left out, see parseSummaries). A sample reads the error counters
 * directly: it must not render the metrics registry (the default process metrics list
 * /proc/self/fd, a pause that grew with every open tunnel, every status.sampleIntervalMs).
 */
import t, { type Test } from 'tap'
import pino from 'pino'
import { startOrigin, type OriginHandle } from '../../src/origin/index.js'
import { parsePromText } from '../../src/balancer/prom-text.js'
import type { Gateway } from '../../src/gateway.js'
import { freePort } from '../helpers/ports.js'
import { errorCount, startTestGateway } from '../helpers/gateway-harness.js'
import { until } from '../helpers/ops.js'
import { TunnelClient, cookieForWorker, destroyAllClients } from '../helpers/tunnel-client.js'

let origin: OriginHandle
let deadUrl = ''
t.before(async () => {
  origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }) })
  deadUrl = `rtsp://127.0.0.1:${await freePort()}`
})
t.teardown(async () => { destroyAllClients(); await origin.close() })

/** Make every registry render throw: a sample that renders one fails the test. */
function forbidRendering (gw: Gateway): void {
  const fail = async (): Promise<never> => { throw new Error('the status feed rendered the metrics registry') }
  Object.assign(gw.metrics.registry, { metrics: fail, getMetricsAsJSON: fail })
}

/** A tunnel to `path` (DESCRIBE, SETUP, PLAY) and one refused DESCRIBE on `/dead` (TG_ERR_BACKEND_UNAVAILABLE). */
async function traffic (t: Test, gw: Gateway, cookies: [string?, string?] = []): Promise<TunnelClient> {
  const c = await TunnelClient.open(gw.port, {
    path: '/demo',
    url: `rtsp://127.0.0.1:${gw.port}/demo`,
    ...(cookies[0] === undefined ? {} : { cookie: cookies[0] })
  })
  const { play } = await c.play({ track: 'trackID=1' })
  t.equal(play.status, 200, 'a tunnel plays')
  const dead = await TunnelClient.open(gw.port, {
    path: '/dead/x',
    url: `rtsp://127.0.0.1:${gw.port}/dead/x`,
    ...(cookies[1] === undefined ? {} : { cookie: cookies[1] })
  })
  const d = await dead.request('DESCRIBE', dead.url, [['Accept', 'application/sdp']])
  t.equal(d.status, 503, 'a DESCRIBE to an unreachable backend is refused')
  dead.close()
  await until(
    async () => (await gw.ops.operator.summaries()).reduce((n, r) => n + r.tunnels, 0),
    n => n === 1,
    'only the playing tunnel left open',
    5000
  )
  return c
}

const routes = (): Record<string, unknown> => ({
  backends: [{ name: 'live', url: `rtsp://127.0.0.1:${origin.port}` }, { name: 'dead', url: deadUrl }],
  routes: [{ path: '/dead', backends: ['dead'] }, { path: '/', backends: ['live'] }]
})

t.test('one process: tunnels, relay row, streams and error counts from the counters', async t => {
  const gw = await startTestGateway(t, [], { ...routes(), status: { sampleIntervalMs: 60_000 } })
  const c = await traffic(t, gw)
  forbidRendering(gw)
  const s = await gw.ops.feed.sample()
  t.equal(s.tunnels, 1, 'one tunnel open')
  t.same(s.relays.map(r => [r.kind, r.tunnels]), [['in-process', 1]], 'the in-process relay row counts it')
  t.equal(s.streams[0]?.path, '/demo', 'the busiest stream is /demo')
  const want = await errorCount(gw, 'TG_ERR_BACKEND_UNAVAILABLE')
  t.ok(want >= 1, 'the refusal is counted')
  t.equal(s.errors.TG_ERR_BACKEND_UNAVAILABLE, want, 'the sample has the counter\'s value')
  const b = s.backends.find(x => x.name === 'live')
  t.ok(b !== undefined && b.bytes > 0, 'bytes relayed to the live backend are summed')
  c.close()
})

t.test('two relay workers: errors counted in the workers reach the sample', async t => {
  const gw = await startTestGateway(t, [], { ...routes(), workers: 2, status: { sampleIntervalMs: 60_000 } })
  // The playing tunnel on worker 1, the refused one on worker 0: both workers answer.
  const c = await traffic(t, gw, [cookieForWorker(1), cookieForWorker(0)])
  const text = await gw.workers!.metricsText(gw.metrics)
  const inWorkers = parsePromText(text)
    .filter(x => x.name === 'tunnelgate_errors_total' && x.labels.code === 'TG_ERR_BACKEND_UNAVAILABLE')
    .reduce((n, x) => n + x.value, 0)
  t.ok(inWorkers >= 1, '/metrics (portal + workers) counts the refusal')
  t.equal(await errorCount(gw, 'TG_ERR_BACKEND_UNAVAILABLE'), 0, 'the portal process did not count it itself')
  forbidRendering(gw)
  const s = await gw.ops.feed.sample()
  t.equal(s.errors.TG_ERR_BACKEND_UNAVAILABLE, inWorkers, 'the sample sums the workers\' counters, as /metrics does')
  t.equal(s.tunnels, 1, 'one tunnel open')
  t.same(s.relays.map(r => [r.id, r.tunnels]), [['w0', 0], ['w1', 1]], 'each worker row has its own tunnels')
  t.equal(s.streams[0]?.path, '/demo', 'the busiest stream is /demo')
  c.close()
})

t.test('portal in front of a relay node: the relay row and the streams come from its /status/summary', async t => {
  const relay = await startTestGateway(t, [], { ...routes(), role: 'relay', status: { sampleIntervalMs: 60_000 } })
  const portal = await startTestGateway(t, [], {
    role: 'portal',
    cluster: { relays: [`127.0.0.1:${relay.port}`], probeIntervalMs: 200, connectTimeoutMs: 1000 },
    status: { sampleIntervalMs: 60_000 }
  })
  const id = `127.0.0.1:${relay.port}`
  const empty = await portal.ops.feed.sample()
  t.same(
    empty.relays.map(r => [r.id, r.kind, r.tunnels]),
    [[id, 'remote', 0]],
    'the relay node answers: no tunnels yet'
  )
  const c = await TunnelClient.open(portal.port, { path: '/demo', url: `rtsp://127.0.0.1:${portal.port}/demo` })
  t.equal((await c.play({ track: 'trackID=1' })).play.status, 200, 'a tunnel plays through the portal')
  const s = await until(
    async () => await portal.ops.feed.sample(),
    x => x.tunnels === 1 && (x.streams[0]?.mbps ?? 0) >= 0,
    'the portal sees the tunnel',
    5000
  )
  t.same(s.relays.map(r => [r.id, r.tunnels]), [[id, 1]], 'the relay row counts the relay node\'s tunnel')
  t.equal(s.streams[0]?.path, '/demo', 'the busiest stream is /demo')
  const direct = await fetch(`http://127.0.0.1:${relay.opsPort}/status/summary`)
  const body = await direct.json() as { relays: Array<{ relay: string, tunnels: number }> }
  t.same(body.relays.map(r => r.tunnels), [1], 'the relay node\'s /status/summary')
  c.close()
  await relay.close()
  const gone = await until(
    async () => await portal.ops.feed.sample(),
    x => x.relays.every(r => !r.up),
    'the portal sees the relay down',
    5000
  )
  t.same(
    gone.relays.map(r => [r.id, r.tunnels]),
    [[id, null]],
    'a relay node that does not answer: tunnels unknown (null), not 0'
  )
})
