/**
 * The balancer's load bookkeeping (pure parts and the pool's arithmetic, no sockets): which figure the
 * pool uses per backend (promql > backend > cluster/workers > local), the in-flight correction (no
 * herd on a stale view), staleness, maxBandwidth, probe rise/fall.
 */
import t from 'tap'
import { buildConfig } from '../../../src/config/config.js'
import { createMetrics } from '../../../src/core/metrics.js'
import { BackendPool } from '../../../src/backends/pool.js'
import { chooseBackend, isFull } from '../../../src/balancer/policy.js'

const route = { path: '/', backends: [] }

type Metrics = ReturnType<typeof createMetrics>

function makePool (extra: Record<string, unknown> = {}): { pool: BackendPool, metrics: Metrics } {
  const config = buildConfig([{
    workers: 0,
    backends: [{ name: 'a', url: 'rtsp://127.0.0.1:1001' }, {
      name: 'b',
      url: 'rtsp://127.0.0.1:1002',
      maxBandwidth: 8000
    }],
    balancer: { scrapeIntervalMs: 1000, staleIntervals: 3 },
    backend: { probeIntervalMs: 1000, probeRise: 2 },
    ...extra
  }])
  const metrics = createMetrics({ defaultMetrics: false })
  return { pool: new BackendPool(config, metrics), metrics }
}

const snap = (pool: BackendPool, name: string) =>
  pool.snapshots(route).find(s => s.name === name) ?? (() => { throw new Error(name) })()
const gauge = async (m: Metrics, name: string, labels: Record<string, string>): Promise<number | undefined> => {
  const got = await m.registry.getSingleMetric(name)!.get()
  return got.values.find(v =>
    Object.entries(labels).every(([k, w]) => String((v.labels as Record<string, unknown>)[k]) === w))?.value
}

t.test('sources: local, workers + cluster add to own counts; backend and promql replace them', async t => {
  const { pool, metrics } = makePool()
  const now = Date.now()
  pool.acquire('a'); pool.acquire('a')
  t.equal(snap(pool, 'a').sessions, 2, 'local: own sessions')
  t.equal(await gauge(metrics, 'tunnelgate_balancer_backend_load', { backend: 'a', source: 'local' }), 2)

  pool.setExternal({ backend: 'a', source: 'workers', sessions: 5, bps: 100, at: now })
  t.equal(snap(pool, 'a').sessions, 7, 'other workers add')
  pool.setExternal({ backend: 'a', source: 'cluster', sessions: 10, bps: 1000, at: now })
  t.equal(snap(pool, 'a').sessions, 17, 'other relays add too')
  t.equal(await gauge(metrics, 'tunnelgate_balancer_backend_load', { backend: 'a', source: 'cluster' }), 17)
  t.equal(await gauge(metrics, 'tunnelgate_balancer_backend_load', { backend: 'a', source: 'local' }), undefined,
    'the previous source series is removed')

  // The backend's own figure includes this relay as of the scrape: only choices since then are added.
  pool.setExternal({ backend: 'a', source: 'backend', sessions: 30, bps: null, at: now })
  t.equal(snap(pool, 'a').sessions, 30)
  pool.acquire('a'); pool.acquire('a'); pool.acquire('a')
  t.equal(snap(pool, 'a').sessions, 33, 'in-flight: 3 choices since the scrape are added')
  pool.release('a')
  t.equal(snap(pool, 'a').sessions, 32)
  pool.setExternal({ backend: 'a', source: 'promql', sessions: 40, bps: 5, at: now })
  t.equal(snap(pool, 'a').sessions, 40, 'promql wins over the backend figure')
  t.equal(snap(pool, 'a').bandwidthBps, 5)
  t.equal(await gauge(metrics, 'tunnelgate_balancer_backend_load', { backend: 'a', source: 'promql' }), 40)
  t.equal(pool.externalFigures(now).length, 4, 'every fresh figure is forwardable to workers')
  // An older figure never replaces a newer one.
  pool.setExternal({ backend: 'a', source: 'promql', sessions: 1, bps: 1, at: now - 10 })
  t.equal(snap(pool, 'a').sessions, 40)
})

t.test('stale figures (older than staleIntervals x scrapeIntervalMs) are ignored', async t => {
  const { pool } = makePool()
  pool.acquire('b')
  const old = Date.now() - 3001
  pool.setExternal({ backend: 'b', source: 'promql', sessions: 50, bps: null, at: old })
  pool.setExternal({ backend: 'b', source: 'cluster', sessions: 50, bps: null, at: old })
  t.equal(snap(pool, 'b').sessions, 1, 'only the own count is left')
  t.same(pool.externalFigures(), [])
  pool.setExternal({ backend: 'b', source: 'cluster', sessions: 4, bps: null, at: Date.now() - 2500 })
  t.equal(snap(pool, 'b').sessions, 5, 'a figure within the window counts')
})

t.test('no herd: many choices on one stale cluster view spread by the in-flight correction', async t => {
  const { pool } = makePool()
  // The cluster says a has 20 sessions and b 0; this relay then opens 40 sessions before the next scrape.
  const at = Date.now()
  pool.setExternal({ backend: 'a', source: 'backend', sessions: 20, bps: null, at })
  pool.setExternal({ backend: 'b', source: 'backend', sessions: 0, bps: null, at })
  const got = { a: 0, b: 0 }
  for (let i = 0; i < 40; i++) {
    const c = pool.choose(route)
    if (c.backend === null) throw new Error('no choice')
    pool.acquire(c.backend)
    got[c.backend as 'a' | 'b']++
  }
  t.ok(got.b >= 25 && got.a >= 5, `b gets the first ones, then both share: ${JSON.stringify(got)}`)
  t.ok(Math.abs((20 + got.a) - got.b) <= 4, `loads end level (a 20+${got.a}, b ${got.b})`)
})

t.test('maxBandwidth: a backend at its bit rate is full; all full → all-full (453)', async t => {
  const { pool } = makePool()
  t.notOk(isFull(snap(pool, 'b')))
  pool.addBytes('b', 2000) // 16000 bits over the sampling window below
  pool.sampleBandwidth(Date.now() + 1000)
  t.ok(snap(pool, 'b').bandwidthBps! >= 8000, `measured ${snap(pool, 'b').bandwidthBps} bit/s`)
  t.ok(isFull(snap(pool, 'b')), 'b is at maxBandwidth (8000 bit/s)')
  t.same(pool.choose({ path: '/', backends: ['b'] }), { backend: null, reason: 'all-full' })
  t.same(pool.choose(route), { backend: 'a' })
  t.same(chooseBackend([{
    name: 'x',
    sessions: 0,
    maxSessions: 0,
    weight: 1,
    healthy: true,
    bandwidthBps: 10,
    maxBandwidthBps: 10
  }]),
  { backend: null, reason: 'all-full' })
})

t.test('health: a failed probe or connection takes a backend out; probeRise passes bring it back; drain', async t => {
  const { pool, metrics } = makePool()
  pool.probeResult('a', false)
  t.equal(snap(pool, 'a').healthy, false)
  t.equal(await gauge(metrics, 'tunnelgate_backend_up', { backend: 'a' }), 0)
  t.same(pool.choose(route), { backend: 'b' })
  pool.probeResult('a', true)
  t.equal(snap(pool, 'a').healthy, false, 'one pass is not enough (probeRise 2)')
  pool.probeResult('a', true)
  t.equal(snap(pool, 'a').healthy, true, 'back after two passes')
  t.equal(await gauge(metrics, 'tunnelgate_backend_up', { backend: 'a' }), 1)
  pool.markFailed('a')
  t.equal(snap(pool, 'a').healthy, false, 'a connection failure takes it out')
  t.ok(pool.setDraining('b', true))
  t.same(pool.choose(route), { backend: null, reason: 'none-healthy' })
  t.notOk(pool.setDraining('nope', true))
})
