/**
 * Load spread through local relay workers:
 *  1. 200 tunnels (raw tunnel client, 20 at a time; each DESCRIBE/SETUP/PLAY, then held open) through an
 *     all-in-one gateway with 2 local relay worker processes, over two embedded origins of unequal
 *     capacity (weight 1:3, maxSessions 60:180). The sessions the origins hold end within 10 % of the
 *     3:1 capacity ratio; the workers balanced on each other's load (source "workers" in /metrics).
 *  2. `node bin/tunnelgate.js` (compiled dist/) with the default `workers: auto` starts one relay worker
 *     per CPU core, plays a tunnel, and its /metrics aggregates the workers (sessions, backend_up).
 */
import t from 'tap'
import os from 'node:os'
import { spawn, execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { clipDir, freePort, gateway, origin, originSessions, playing, until } from '../helpers/cluster.js'
import { parsePromText, sumBy, valueOf } from '../../src/balancer/prom-text.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

async function metricsText (port: number): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`)
  return await r.text()
}

t.test('200 tunnels over two origins with capacity 1:3 through 2 workers end within 10 % of 3:1', async t => {
  const media = await clipDir(t, 60)
  const o1 = await origin(t, media)
  const o2 = await origin(t, media)
  const gw = await gateway(t, {
    workers: 2,
    backends: [
      { name: 'small', url: `rtsp://127.0.0.1:${o1.port}`, weight: 1, maxSessions: 60 },
      { name: 'large', url: `rtsp://127.0.0.1:${o2.port}`, weight: 3, maxSessions: 180 }
    ],
    balancer: { scrapeIntervalMs: 200 },
    backend: { probeIntervalMs: 1000 },
    tunnel: { idleTimeoutMs: 120_000 }
  })
  t.equal(gw.workers?.size, 2, 'two relay worker processes')
  const total = 200
  const batch = 20
  const statuses: number[] = []
  for (let i = 0; i < total; i += batch) {
    const rs = await Promise.all(Array.from({ length: batch }, async () => (await playing(t, gw.port, '/clip')).status))
    statuses.push(...rs)
  }
  t.equal(
    statuses.filter(s => s === 200).length,
    total,
    `all ${total} tunnels play (${JSON.stringify(statuses.filter(s => s !== 200))})`
  )
  const small = await until(async () => await originSessions(o1), n => n > 0, 2000)
  const large = await originSessions(o2)
  t.equal(small + large, total, `the origins hold ${small} + ${large} sessions`)
  const ratio = large / small
  t.ok(ratio >= 2.7 && ratio <= 3.3, `large/small = ${ratio.toFixed(2)}, within 10 % of 3`)
  // Both workers took tunnels and each saw the other's load.
  const samples = parsePromText(await metricsText(gw.opsPort))
  const sessions = sumBy(samples, 'tunnelgate_backend_sessions', 'backend')
  t.same([sessions.get('small'), sessions.get('large')], [small, large], '/metrics aggregates both workers\' sessions')
  const status = await gw.workers!.status()
  t.equal(status.length, 2)
  t.ok(status.every(w => w.tunnels >= 50), `both workers carry tunnels (${status.map(w => w.tunnels).join(' + ')})`)
  t.ok(
    samples.some(s => s.name === 'tunnelgate_balancer_backend_load' && s.labels.source === 'workers'),
    'workers balanced on each other\'s load (source="workers")'
  )
})

t.test('node bin/tunnelgate.js: workers auto = one per core, plays, /metrics aggregates', async t => {
  if (!existsSync(join(ROOT, 'dist', 'main.js'))) {
    t.fail('dist/ is missing: run `npm run build` (npm test builds first)')
    return
  }
  const media = await clipDir(t, 20)
  const o = await origin(t, media)
  const port = await freePort()
  const opsPort = await freePort()
  const env = { ...process.env }
  delete env.TUNNELGATE_WORKERS
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'bin', 'tunnelgate.js'),
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--ops-port',
      String(opsPort),
      '--backend',
      `rtsp://127.0.0.1:${o.port}`,
      '--log-level',
      'warn'
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env }
  )
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { out += d.toString() })
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGTERM')
    const k = setTimeout(() => child.kill('SIGKILL'), 8000)
    await gone
    clearTimeout(k)
  })
  const text = await until(
    async () => {
      try {
        return await metricsText(opsPort)
      } catch {
        return ''
      }
    },
    s => s.includes('tunnelgate_backend_up'),
    20_000,
    100
  )
  t.ok(
    text.includes('tunnelgate_backend_up'),
    `the binary serves /metrics on its ops port ${text === '' ? out.slice(-2000) : ''}`
  )
  const kids = execFileSync('ps', ['--ppid', String(child.pid), '-o', 'args='])
    .toString()
    .split('\n')
    .filter(l => l.includes('worker.js'))
  t.equal(kids.length, os.availableParallelism(), `${kids.length} relay workers = ${os.availableParallelism()} cores`)
  const p = await playing(t, port, '/clip')
  t.equal(p.status, 200, 'a tunnel plays through the binary')
  const samples = parsePromText(
    await until(
      async () => await metricsText(opsPort),
      s => /tunnelgate_backend_sessions\{[^}]*\} 1\b/.test(s),
      5000
    )
  )
  t.equal(
    [...sumBy(samples, 'tunnelgate_backend_sessions', 'backend').values()].reduce((a, b) => a + b, 0),
    1,
    'aggregated /metrics: 1 backend session'
  )
  t.equal(valueOf(samples, 'tunnelgate_backend_up'), 1, 'backend up in every worker (min)')
  t.ok(samples.some(s => s.name === 'tunnelgate_relay_instance_info'), 'the process tree publishes its instance id')
})
