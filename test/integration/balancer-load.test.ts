/**
 * Load-aware balancing from Prometheus metrics, against real peers on loopback:
 *  - two embedded origins (o1, o2) with their own /metrics;
 *  - relays R1, R2 (role relay) with `cluster.peers` = both relays (each finds itself and skips it)
 *    plus a dead peer address (scrape errors are counted, the rest still works);
 *  - relay R3 with `backends[].metricsUrl` = the origins' /metrics;
 *  - a REAL Prometheus (Debian `prometheus`) scraping R1, R2 and both origins every second, and relay
 *    R4 with `balancer.promql` pointing at it.
 * Three sessions are played on o1 through R1 (route /o1 → o1 only). Then: R2 uses 3 for o1 from the
 * cluster, R3 uses 3 from o1's own metrics, R4 uses 3 from PromQL and sends its new sessions to o2;
 * when Prometheus stops, R4's figures go stale and it falls back to its own counts.
 */
import t from 'tap'
import {
  clipDir,
  freePort,
  gateway,
  metricValue,
  origin,
  originSessions,
  playing,
  startPrometheus,
  until
} from '../helpers/cluster.js'
import type { Gateway } from '../../src/gateway.js'

t.test('cluster peers, backend metrics URL and PromQL (real Prometheus) feed the balancer', async t => {
  const media = await clipDir(t)
  const o1 = await origin(t, media)
  const o2 = await origin(t, media)
  const backends = (metricsUrl: boolean): object[] => [o1, o2].map((o, i) => ({
    name: `o${i + 1}`,
    url: `rtsp://127.0.0.1:${o.port}`,
    ...(metricsUrl ? { metricsUrl: `http://127.0.0.1:${o.metricsPort}/metrics` } : {})
  }))
  const routes = [{ path: '/', backends: [] }, { path: '/o1', backends: ['o1'], backendPath: '/' }]
  const balancer = { scrapeIntervalMs: 250, scrapeTimeoutMs: 1000, staleIntervals: 4 }
  const [p1, p2, dead] = [await freePort(), await freePort(), await freePort()]
  const peers = [`127.0.0.1:${p1}`, `127.0.0.1:${p2}`, `127.0.0.1:${dead}`]
  const relay = (port: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    role: 'relay',
    port,
    backends: backends(false),
    routes,
    balancer,
    backend: { probeIntervalMs: 0 },
    ...extra
  })
  const r1 = await gateway(t, relay(p1, { cluster: { peers } }))
  const r2 = await gateway(t, relay(p2, { cluster: { peers } }))
  const r3 = await gateway(t, relay(0, { backends: backends(true) }))
  // Relay nodes take legs from a portal only (signed): each relay played through gets one in front.
  const portalFor = async (r: Gateway): Promise<number> =>
    (await gateway(t, { role: 'portal', cluster: { relays: [`127.0.0.1:${r.port}`], probeIntervalMs: 500 } })).port
  const [via1, via3] = [await portalFor(r1), await portalFor(r3)]

  // Three sessions on o1 through R1.
  for (let i = 0; i < 3; i++) {
    const r = await playing(t, via1, '/o1/clip')
    t.equal(r.status, 200, `session ${i + 1} plays /o1/clip through R1`)
  }
  t.equal(await originSessions(o1), 3, 'o1 has 3 RTSP sessions')
  t.equal(await metricValue(r1, 'tunnelgate_backend_sessions', { backend: 'o1' }), 3)

  await t.test('(a) cluster.peers: R2 sums the other relays\' tunnelgate_backend_sessions', async t => {
    // The gauge shows what the last snapshot (a choice, or this call) used.
    const got = await until(async () => {
      r2.relay.pool.snapshots(routes[0]!)
      return await metricValue(r2, 'tunnelgate_balancer_backend_load', { backend: 'o1', source: 'cluster' })
    }, v => v === 3, 5000)
    t.equal(got, 3, 'R2 uses 3 sessions for o1 (all of them on R1), source=cluster')
    // R1 lists itself among its peers: it must not count its own sessions twice.
    const own = await until(async () => {
      r1.relay.pool.snapshots(routes[0]!)
      return await metricValue(r1, 'tunnelgate_balancer_backend_load', { backend: 'o1', source: 'cluster' })
    }, v => v !== undefined, 5000)
    t.equal(own, 3, 'R1 uses 3 for o1 (its own 3 + 0 from R2; itself skipped)')
    const errs = await until(
      async () => await metricValue(r1, 'tunnelgate_balancer_scrape_errors_total', { target: `127.0.0.1:${dead}` }),
      v => (v ?? 0) >= 2,
      5000
    )
    t.ok((errs ?? 0) >= 2, `the dead peer's scrape errors are counted (${errs})`)
    t.ok(
      (await metricValue(r1, 'tunnelgate_errors_total', { code: 'TG_ERR_BALANCER_SCRAPE' }) ?? 0) >= 2,
      'and as TG_ERR_BALANCER_SCRAPE'
    )
    // R2 started after R1: R1's first scrapes of it may have failed, but none fails any more.
    const live = async (): Promise<number> =>
      await metricValue(r1, 'tunnelgate_balancer_scrape_errors_total', { target: `127.0.0.1:${p2}` }) ?? 0
    const before = await live()
    await new Promise(resolve => setTimeout(resolve, 1000))
    t.equal(await live(), before, `no new scrape error for the live peer R2 (${before} at startup)`)
  })

  await t.test('(b) backends[].metricsUrl: R3 uses the origin\'s own tunnelgate_origin_sessions', async t => {
    const got = await until(async () => {
      r3.relay.pool.snapshots(routes[0]!)
      return await metricValue(r3, 'tunnelgate_balancer_backend_load', { backend: 'o1', source: 'backend' })
    }, v => v === 3, 5000)
    t.equal(got, 3, 'o1: 3 from its /metrics')
    t.equal(await metricValue(r3, 'tunnelgate_balancer_backend_load', { backend: 'o2', source: 'backend' }), 0, 'o2: 0')
    // A new session through R3 goes to the idle o2.
    const r = await playing(t, via3, '/clip')
    t.equal(r.status, 200)
    t.equal(await metricValue(r3, 'tunnelgate_backend_choices_total', { backend: 'o2' }), 1, 'R3 chose o2')
  })

  await t.test('(c) balancer.promql against a real Prometheus scraping the relays and origins', async t => {
    const prom = await startPrometheus(t, [
      { job: 'relays', targets: [`127.0.0.1:${r1.opsPort}`, `127.0.0.1:${r2.opsPort}`] },
      { job: 'origins', targets: [`127.0.0.1:${o1.metricsPort}`, `127.0.0.1:${o2.metricsPort}`] }
    ], 1)
    t.comment('prometheus up; every target scraped at least once')
    const r4 = await gateway(
      t,
      relay(0, {
        balancer: {
          ...balancer,
          promql: {
            url: prom.url,
            query: 'sum by (backend) (tunnelgate_backend_sessions)',
            bandwidthQuery: 'sum by (backend) (tunnelgate_backend_bandwidth_bits)'
          }
        }
      })
    )
    const load = async (b: string): Promise<number | undefined> => {
      r4.relay.pool.snapshots(routes[0]!)
      return await metricValue(r4, 'tunnelgate_balancer_backend_load', { backend: b, source: 'promql' })
    }
    const got = await until(async () => await load('o1'), v => v === 3, 8000, 100)
    t.equal(got, 3, 'R4 uses 3 sessions for o1 from PromQL (summed over R1 and R2 by Prometheus)')
    // R2 holds one session on o2 at most (from (a)); whatever PromQL says for o2 is below o1's 3.
    const o2Load = await load('o2') ?? -1
    t.ok(o2Load >= 0 && o2Load < 3, `o2 per PromQL: ${o2Load}`)
    // Two new sessions through R4: both go to the less loaded o2 (in-flight counted between scrapes).
    const via4 = await portalFor(r4)
    for (let i = 0; i < 2; i++) t.equal((await playing(t, via4, '/clip')).status, 200)
    t.equal(
      await metricValue(r4, 'tunnelgate_backend_choices_total', { backend: 'o2' }),
      2,
      'both new sessions went to o2'
    )
    t.equal(await metricValue(r4, 'tunnelgate_backend_choices_total', { backend: 'o1' }), undefined, 'none to o1')
    t.equal(await metricValue(r4, 'tunnelgate_balancer_scrape_errors_total'), undefined, 'no PromQL scrape error')

    // Prometheus gone: after staleIntervals x scrapeIntervalMs the figures are ignored (own counts only).
    await prom.stop()
    const t0 = Date.now()
    const src = await until(async () => {
      r4.relay.pool.snapshots(routes[0]!)
      return await metricValue(r4, 'tunnelgate_balancer_backend_load', { backend: 'o1', source: 'local' })
    }, v => v !== undefined, 5000)
    t.equal(src, 0, `R4 falls back to its own count for o1 (0) after ${Date.now() - t0} ms`)
    t.ok(
      (await metricValue(r4, 'tunnelgate_balancer_scrape_errors_total', { target: `promql:${prom.url}` }) ?? 0) >= 1,
      'failed PromQL scrapes are counted'
    )
  })
})
