/**
 * GET /admin/process: the portal process and each local relay worker report pid, open
 * descriptors, active handles by type and memory; the figures follow what the process holds (a
 * tunnel open: more descriptors and TCP sockets in the process carrying it; closed: back).
 */
import t, { type Test } from 'tap'
import { readdirSync } from 'node:fs'
import { startTestGateway } from '../helpers/gateway-harness.js'
import { ScriptedBackend } from '../helpers/scripted-backend.js'
import { TunnelClient, destroyAllClients } from '../helpers/tunnel-client.js'
import { adminClient, until } from '../helpers/ops.js'
import { assertNoChildLeaks, childLeakSnapshot } from '../helpers/leaks.js'
import { openApiDocument } from '../../src/ops/admin.js'
import type { ProcessInfo } from '../../src/ops/process-view.js'

const TOKEN = 'process-view-token-0123456789'

t.afterEach(() => destroyAllClients())

function checkShape (t: Test, p: ProcessInfo): void {
  t.equal(p.up, true, `${p.id} up`)
  t.ok(Number.isInteger(p.pid) && p.pid! > 0, `${p.id}: pid`)
  t.ok(Number.isInteger(p.fds) && p.fds! > 3, `${p.id}: fds ${p.fds}`)
  const h = p.handles!
  for (const k of ['timers', 'tcp', 'pipes', 'other'] as const) {
    t.ok(Number.isInteger(h[k]) && h[k] >= 0, `${p.id}: handles.${k} ${h[k]}`)
  }
  t.equal(
    Object.values(h.byType).reduce((a, b) => a + b, 0),
    h.timers + h.tcp + h.pipes + h.other,
    `${p.id}: byType adds up to the groups`
  )
  t.ok(
    p.rssBytes! > 10 * 1024 * 1024 && p.heapUsedBytes! > 1024 * 1024 && p.heapUsedBytes! < p.rssBytes!,
    `${p.id}: rss ${p.rssBytes} heap ${p.heapUsedBytes}`
  )
  t.ok(Number.isInteger(p.uptimeMs) && p.uptimeMs! >= 0, `${p.id}: uptime`)
}

t.test('OpenAPI documents GET /admin/process', async t => {
  const doc = openApiDocument() as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }
  t.ok(doc.paths['/admin/process']?.get?.responses['200'], 'documented with its 200 schema')
})

t.test('in-process relay: the portal process, numbers move with a tunnel', async t => {
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend], { workers: 0, ops: { token: TOKEN }, admin: { enabled: true } })
  const api = adminClient(gw.opsPort, TOKEN)
  t.equal((await adminClient(gw.opsPort)('GET', '/admin/process')).status, 401, 'behind the admin token')
  const get = async (): Promise<ProcessInfo> => {
    const r = await api('GET', '/admin/process')
    t.equal(r.status, 200)
    t.equal(r.body.processes.length, 1, 'one process')
    return r.body.processes[0] as ProcessInfo
  }
  const before = await get()
  t.equal(before.id, 'portal')
  t.equal(before.kind, 'portal')
  t.equal(before.pid, process.pid, 'this process')
  checkShape(t, before)
  t.ok(before.handles!.tcp >= 3, `listeners counted as TCP (${before.handles!.tcp})`)
  const outside = readdirSync('/proc/self/fd').length - 1
  t.ok(Math.abs(before.fds! - outside) <= 2, `fds matches /proc/self/fd (${before.fds} vs ${outside})`)

  const c = await TunnelClient.open(gw.port)
  t.equal((await c.request('DESCRIBE', c.url, [], { timeoutMs: 5000 })).status, 200)
  const during = await get()
  // Client GET + POST, their accepted sides and the backend connection (both ends): all in this process.
  t.ok(during.fds! >= before.fds! + 5, `fds grew with the tunnel (${before.fds} -> ${during.fds})`)
  t.ok(
    during.handles!.tcp >= before.handles!.tcp + 5,
    `TCP sockets grew (${before.handles!.tcp} -> ${during.handles!.tcp})`
  )
  // This process counts every timer (test/helpers/leaks.ts turned src/core/timer-census.ts on). Not
  // checked back at its baseline here: this process also serves the admin API, whose keep-alive
  // sockets, Date header cache and HTTP client arm timers of their own (the leak checks count
  // every timer where only the gateway runs: test/helpers/leaks.ts, worker-leaks.test.ts).
  t.ok(
    during.handles!.allTimers! > before.handles!.allTimers!,
    `the tunnel's timers, unref()'d ones too, counted (${before.handles!.allTimers} -> ${during.handles!.allTimers})`
  )
  c.close()
  await until(
    get,
    p => p.fds! <= before.fds! && p.handles!.tcp <= before.handles!.tcp && p.handles!.timers <= before.handles!.timers,
    'fds, sockets and timers back',
    6000,
    50
  )
})

t.test('two relay workers: one entry each, queried over IPC, their numbers move', async t => {
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend], { workers: 2, ops: { token: TOKEN }, admin: { enabled: true } })
  const api = adminClient(gw.opsPort, TOKEN)
  const list = async (): Promise<ProcessInfo[]> => (await api('GET', '/admin/process')).body.processes as ProcessInfo[]
  const all = await until(list, l => l.length === 3 && l.every(p => p.up), 'portal and two workers up', 10_000)
  t.same(all.map(p => [p.id, p.kind]), [['portal', 'portal'], ['w0', 'worker'], ['w1', 'worker']])
  for (const p of all) checkShape(t, p)
  t.equal(all[0]!.pid, process.pid)
  t.ok(
    all[1]!.pid !== process.pid && all[2]!.pid !== process.pid && all[1]!.pid !== all[2]!.pid,
    'workers are processes of their own'
  )
  for (const p of all.slice(1)) {
    t.ok(p.handles!.pipes >= 1, `${p.id}: its IPC channel is a pipe (${JSON.stringify(p.handles!.byType)})`)
    t.equal(
      p.handles!.allTimers,
      undefined,
      `${p.id}: does not count every timer unless TUNNELGATE_TRACK_TIMERS=1 (an async hook: a diagnostic)`
    )
    const outside = readdirSync(`/proc/${p.pid}/fd`).length
    t.ok(Math.abs(p.fds! - outside) <= 2, `${p.id}: fds matches /proc/${p.pid}/fd (${p.fds} vs ${outside})`)
  }

  // Warm-up (the first tunnel of each worker), then the baseline.
  const warm = await Promise.all(Array.from({ length: 6 }, async () => await TunnelClient.open(gw.port)))
  for (const c of warm) t.equal((await c.request('DESCRIBE', c.url, [], { timeoutMs: 5000 })).status, 200)
  for (const c of warm) c.close()
  const target = { opsPort: gw.opsPort, token: TOKEN, include: (id: string) => id !== 'portal' }
  await until(
    async () => (await api('GET', '/admin/tunnels')).body.tunnels.length,
    n => n === 0,
    'warm-up tunnels closed',
    6000,
    50
  )
  const base = await childLeakSnapshot(target)

  const c = await TunnelClient.open(gw.port)
  t.equal((await c.request('DESCRIBE', c.url, [], { timeoutMs: 5000 })).status, 200)
  const [tun] = (await api('GET', '/admin/tunnels')).body.tunnels as Array<{ relay: string }>
  t.ok(tun !== undefined, 'the tunnel is listed')
  const during = await childLeakSnapshot(target)
  const w = during.processes.find(p => p.id === tun!.relay)!
  const wb = base.processes.find(p => p.id === tun!.relay)!
  // The GET handed to it and its backend connection (the POST stays in the portal, its bytes
  // relayed as messages: src/route/relayed-post.ts).
  t.ok(
    w.fds >= wb.fds + 2 && w.procFds >= wb.procFds + 2,
    `${w.id}: fds grew by the GET and the backend connection (${wb.fds} -> ${w.fds}, /proc ${wb.procFds} -> ${
      w.procFds})`
  )
  t.ok(w.sockets >= wb.sockets + 2, `${w.id}: sockets grew (${wb.sockets} -> ${w.sockets})`)
  t.equal(during.tunnels, base.tunnels + 1, 'tunnels gauge +1')
  c.close()
  await assertNoChildLeaks(target, base)
  t.pass('the worker is back to its baseline once the tunnel closed')
})
