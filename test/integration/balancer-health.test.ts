/**
 * Per-backend limits, health probes and backend drain, through the tunnel, against two embedded origins:
 *  - maxSessions: when every backend is full the client gets RTSP 453 (with Retry-After) at once;
 *  - maxBandwidth: a backend at its measured bit rate takes no new session (453 when it is the only one);
 *  - pool.setDraining (the internal API the operator surface calls): no new sessions, old ones go on;
 *  - RTSP OPTIONS probes: an origin that stops leaves the choice within a second or two
 *    (tunnelgate_backend_up 0, new sessions go to the other), and comes back after probeRise passes
 *    once restarted on the same port.
 */
import t from 'tap'
import type { Gateway } from '../../src/gateway.js'
import { getHeader } from '../../src/tunnel/codec/rtsp-message.js'
import { clipDir, gateway, metricValue, origin, originSessions, playing, until } from '../helpers/cluster.js'
import { startOrigin } from '../../src/origin/index.js'
import { TunnelClient } from '../helpers/tunnel-client.js'

t.test('limits, drain and health probes', async t => {
  const media = await clipDir(t)
  const o1 = await origin(t, media)
  const o2 = await origin(t, media)
  const backends = (extra: Array<Record<string, unknown>> = [{}, {}]): object[] =>
    [o1, o2].map((o, i) => ({ name: `o${i + 1}`, url: `rtsp://127.0.0.1:${o.port}`, ...extra[i] }))
  const choices = async (gw: Gateway, b: string): Promise<number> =>
    await metricValue(gw, 'tunnelgate_backend_choices_total', { backend: b }) ?? 0

  await t.test('maxSessions: all full → RTSP 453 + Retry-After, promptly', async t => {
    const gw = await gateway(t, {
      backends: backends([{ maxSessions: 1 }, { maxSessions: 1 }]),
      backend: { probeIntervalMs: 0 }
    })
    t.equal((await playing(t, gw.port, '/clip')).status, 200)
    t.equal((await playing(t, gw.port, '/clip')).status, 200)
    t.same([await choices(gw, 'o1'), await choices(gw, 'o2')], [1, 1], 'one session on each')
    const c = await TunnelClient.open(gw.port, { path: '/clip', url: 'rtsp://gw.test/clip' })
    t.teardown(() => c.close())
    const t0 = Date.now()
    const r = await c.request('DESCRIBE', c.url, [['Accept', 'application/sdp']], { timeoutMs: 3000 })
    t.equal(r.status, 453, 'third session: 453 Not Enough Bandwidth')
    t.ok(Date.now() - t0 < 1000, `answered in ${Date.now() - t0} ms`)
    t.equal(getHeader(r, 'Retry-After'), '5', 'with Retry-After')
    t.ok((await metricValue(gw, 'tunnelgate_gateway_responses_total', { status: '453' }) ?? 0) >= 1)
    t.ok((await metricValue(gw, 'tunnelgate_errors_total', { code: 'TG_ERR_BACKEND_UNAVAILABLE' }) ?? 0) >= 1)
  })

  await t.test('maxBandwidth: a backend at its measured bit rate takes no new session', async t => {
    const gw = await gateway(t, {
      backends: backends([{ maxBandwidth: 8000 }, {}]),
      routes: [{ path: '/', backends: ['o1'] }],
      backend: { probeIntervalMs: 0 },
      balancer: { scrapeIntervalMs: 250 }
    })
    t.equal((await playing(t, gw.port, '/clip')).status, 200, 'first session plays')
    const bits = await until(
      async () => await metricValue(gw, 'tunnelgate_backend_bandwidth_bits', { backend: 'o1' }) ?? 0,
      v => v >= 8000,
      5000
    )
    t.ok(bits >= 8000, `measured ${bits} bit/s from o1 (maxBandwidth 8000)`)
    const c = await TunnelClient.open(gw.port, { path: '/clip', url: 'rtsp://gw.test/clip' })
    t.teardown(() => c.close())
    const r = await c.request('DESCRIBE', c.url, [['Accept', 'application/sdp']], { timeoutMs: 3000 })
    t.equal(r.status, 453, 'second session on the only (full) backend: 453')
  })

  await t.test('setDraining: no new sessions to a draining backend; its sessions go on', async t => {
    const gw = await gateway(t, { backends: backends(), backend: { probeIntervalMs: 0 } })
    const first = await playing(t, gw.port, '/clip')
    t.equal(first.status, 200)
    const drained = (await choices(gw, 'o1')) === 1 ? 'o1' : 'o2'
    const other = drained === 'o1' ? 'o2' : 'o1'
    t.ok(gw.relay.pool.setDraining(drained, true), `drain ${drained}`)
    for (let i = 0; i < 4; i++) t.equal((await playing(t, gw.port, '/clip')).status, 200)
    t.same([await choices(gw, drained), await choices(gw, other)], [1, 4], `the 4 new sessions all went to ${other}`)
    const frames = first.client.get.frames().length
    await until(async () => first.client.get.frames().length, n => n > frames + 3, 3000)
    t.ok(first.client.get.frames().length > frames + 3, 'the session on the draining backend still receives media')
    gw.relay.pool.setDraining(drained, false)
    t.equal((await playing(t, gw.port, '/clip')).status, 200)
    t.equal(await choices(gw, drained), 2, 'undrained: chosen again (least loaded)')
  })

  await t.test('RTSP OPTIONS probes: a stopped origin leaves the choice, and returns after passing probes', async t => {
    const gw = await gateway(t, {
      backends: backends(),
      backend: { probeIntervalMs: 200, probeTimeoutMs: 500, probeRise: 2, failureCooldownMs: 500 }
    })
    const up = async (b: string): Promise<number | undefined> =>
      await metricValue(gw, 'tunnelgate_backend_up', { backend: b })
    await until(
      async () => await metricValue(gw, 'tunnelgate_backend_probe_seconds_count', { backend: 'o1' }) ?? 0,
      n => n >= 1,
      3000
    )
    t.same([await up('o1'), await up('o2')], [1, 1], 'both up after the first probes')
    const port1 = o1.port
    t.equal(await originSessions(o1), 0)
    const t0 = Date.now()
    await o1.close()
    const down = await until(async () => await up('o1'), v => v === 0, 5000, 20)
    const leftMs = Date.now() - t0
    t.equal(down, 0, `o1 out of the choice ${leftMs} ms after it stopped`)
    t.ok(leftMs < 2000, 'within 2 s (probe every 200 ms)')
    t.ok(
      (await metricValue(gw, 'tunnelgate_errors_total', { code: 'TG_ERR_BACKEND_PROBE' }) ?? 0) >= 1,
      'probe failure counted'
    )
    const before = await choices(gw, 'o2')
    for (let i = 0; i < 3; i++) {
      t.equal((await playing(t, gw.port, '/clip')).status, 200, `session ${i + 1} plays while o1 is down`)
    }
    t.equal(await choices(gw, 'o2') - before, 3, 'all three went to o2')
    t.equal(
      await metricValue(gw, 'tunnelgate_backend_connect_failures_total', { backend: 'o1' }),
      undefined,
      'and none tried o1 first'
    )

    const again = await startOrigin({
      port: port1,
      host: '127.0.0.1',
      mediaDir: media,
      logger: { info () {}, warn () {}, error () {} }
    })
    t.teardown(async () => { await again.close() })
    const t1 = Date.now()
    const back = await until(async () => await up('o1'), v => v === 1, 5000, 20)
    const backMs = Date.now() - t1
    t.equal(back, 1, `o1 back ${backMs} ms after its restart`)
    t.ok(backMs >= 150, 'not before a second passing probe (probeRise 2)')
    const o1Before = await choices(gw, 'o1')
    t.equal((await playing(t, gw.port, '/clip')).status, 200)
    t.equal(await choices(gw, 'o1') - o1Before, 1, 'the next session goes to the restarted, idle o1')
    t.equal(await originSessions(again), 1, 'which serves it')
  })
})
