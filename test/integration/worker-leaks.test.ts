/**
 * Issue 5 "no leaks" for relay worker processes: 20 tunnels opened and closed through
 * `workers: 2` leave no descriptor, timer (unref()'d ones too: the workers run with
 * TUNNELGATE_TRACK_TIMERS=1) or socket behind in either worker (GET /admin/process and
 * /proc/<pid>/fd), and the tunnels gauge is back to 0. The check itself is shown to fail while a
 * tunnel is still open.
 */
import t from 'tap'
import { startTestGateway } from '../helpers/gateway-harness.js'
import { TunnelClient, destroyAllClients } from '../helpers/tunnel-client.js'
import { pause } from '../helpers/wait.js'
import { ScriptedBackend } from '../helpers/scripted-backend.js'
import { adminClient, until } from '../helpers/ops.js'
import { assertNoChildLeaks, childLeakSnapshot } from '../helpers/leaks.js'

t.afterEach(() => destroyAllClients())

t.test('20 tunnels through two workers: no fd, timer or socket growth in any worker', async t => {
  // The workers are forked with this environment: they count every timer (src/core/timer-census.ts).
  process.env.TUNNELGATE_TRACK_TIMERS = '1'
  t.teardown(() => { delete process.env.TUNNELGATE_TRACK_TIMERS })
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend], {
    workers: 2,
    ops: { port: 0 },
    admin: { enabled: true },
    limits: { maxTunnelsPerIp: 0, maxUnpairedLegsPerIp: 0 }
  })
  const api = adminClient(gw.opsPort)
  const target = { opsPort: gw.opsPort, include: (id: string) => id !== 'portal' }
  await until(
    async () => (await api('GET', '/admin/process')).body.processes as Array<{ up: boolean }>,
    l => l.length === 3 && l.every(p => p.up),
    'workers up',
    10_000
  )
  const openTunnel = async (): Promise<TunnelClient> => {
    const c = await TunnelClient.open(gw.port)
    t.equal((await c.request('DESCRIBE', c.url, [], { timeoutMs: 5000 })).status, 200)
    return c
  }
  const noneOpen = async (): Promise<void> => {
    await until(
      async () => (await api('GET', '/admin/tunnels')).body.tunnels.length as number,
      n => n === 0,
      'no tunnel open',
      6000,
      50
    )
  }

  // Warm-up: each worker's first tunnels create what lasts (backend pool state, lazily built objects).
  const warm = await Promise.all(Array.from({ length: 8 }, openTunnel))
  for (const c of warm) c.close()
  await noneOpen()
  await pause(300)
  const before = await childLeakSnapshot(target)
  t.same(before.processes.map(p => p.id), ['w0', 'w1'], 'both workers measured')
  t.ok(
    before.processes.every(p => p.allTimers !== undefined && p.allTimers >= p.timers),
    "each worker counts every timer, unref()'d ones too"
  )
  t.equal(before.tunnels, 0)

  // The check fails while a tunnel is open (its legs and backend connection are in a worker).
  const held = await openTunnel()
  await t.rejects(
    assertNoChildLeaks(target, before, 300),
    /leak after 300 ms: .*(fds|sockets|tunnels_active)/,
    'an open tunnel is reported as a difference'
  )
  const during = await childLeakSnapshot(target)
  t.ok(
    during.processes.some((p, i) => p.allTimers! > before.processes[i]!.allTimers!),
    "the open tunnel's timers (its session's deadlines, mostly unref()'d) are counted in its worker"
  )
  held.close()

  // 20 tunnels, in two waves, closed three ways: GET first, POST first, both at once.
  const used = new Set<string>()
  for (let wave = 0; wave < 2; wave++) {
    const cs = await Promise.all(Array.from({ length: 10 }, openTunnel))
    for (const tun of (await api('GET', '/admin/tunnels')).body.tunnels as Array<{ relay: string }>) used.add(tun.relay)
    for (const [i, c] of cs.entries()) {
      if (i % 3 === 0) {
        c.get.destroy()
        await pause(5)
        c.post.destroy()
      } else if (i % 3 === 1) {
        c.post.destroy()
        await pause(5)
        c.get.destroy()
      } else c.close()
    }
  }
  t.same([...used].sort(), ['w0', 'w1'], 'both workers carried tunnels')
  const after = await assertNoChildLeaks(target, before)
  t.equal(after.tunnels, 0, 'tunnels gauge back to 0')
  t.equal(backend.conns.filter(c => !c.closed).length, 0, 'every backend connection closed')
})
