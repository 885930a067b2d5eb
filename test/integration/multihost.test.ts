/**
 * Multi-host test bed: real `tunnelgate` processes on separate network hosts (Linux network
 * namespaces on one bridge, see test/helpers/netns.ts), a client host behind an nftables egress
 * firewall that only lets TCP port 80 out, two portals, three relays, two origins.
 *
 *   client (10.213.7.10)   output policy drop: lo, established/related, tcp dport 80 only
 *   portal a/b (.21/.22)   tunnelgate portal --port 80 --relay r1 --relay r2 --relay r3
 *   relay r1/r2/r3 (.31-.33) tunnelgate relay --port 8081 --backend o1:554 --backend o2:554
 *   origin o1/o2 (.41/.42) tunnelgate origin --port 554
 *
 * It shows, in order:
 *   1. plain RTSP from the client to an origin's port 554 is blocked (and works from a relay host);
 *   1b. a host that can reach a relay node (an origin host: a firewall mistake) is refused there: forged
 *      X-Tunnelgate-* headers, plain RTSP, a forged preamble, unsigned /status/summary and /metrics;
 *   2. ffmpeg `-rtsp_transport http` through portal A plays;
 *   3. a hand-written tunnel with its GET on portal A and its POST on portal B plays (≥ 50 frames);
 *   4. under a load of 50 tunnels (GET/POST on different portals), killing one relay and one
 *      origin does not stop new sessions: ≥ 90 % of those started after the kill succeed and the
 *      last 10 all do.
 *
 * Needs root (namespaces, nftables), iproute2, nft, ffmpeg, ffprobe and a built dist/. It fails —
 * never skips — when any of those is missing.
 */
import t from 'tap'
import { existsSync, statSync, readdirSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { NetnsBed, type Host, type Proc } from '../helpers/netns.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const BIN = join(ROOT, 'bin', 'tunnelgate.js')
const CLIENT_SCRIPT = join(ROOT, 'test', 'helpers', 'raw-tunnel-client.mjs')
/** Portals sign what they forward with the cluster secret; relay nodes refuse anything else. */
const ENV = { ...process.env, TUNNELGATE_LOG_LEVEL: 'warn', TUNNELGATE_CLUSTER_SECRET: 'multihost-cluster-secret-0123' }
/** Every node's ops listener (the default port, on its own host's loopback). */
const OPS_PORT = 9180
const T0 = Date.now()
const since = (): string => `${((Date.now() - T0) / 1000).toFixed(1)} s`

/** Newest mtime under a directory (files only). */
function newest (dir: string): number {
  let m = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    m = Math.max(m, e.isDirectory() ? newest(p) : statSync(p).mtimeMs)
  }
  return m
}

interface TunnelResult {
  i?: number
  get: string
  post: string
  started: number
  ok: boolean
  frames: number
  steps: string[]
  error?: string
  ms: number
}

/** Sample value of `name{label="value"}` lines in a Prometheus text body, by label value. */
function metricByLabel (body: string, name: string, label: string): Map<string, number> {
  const out = new Map<string, number>()
  const re = new RegExp(`^${name}\\{[^}]*${label}="([^"]*)"[^}]*\\} ([0-9.eE+-]+)$`, 'gm')
  for (const m of body.matchAll(re)) out.set(m[1]!, Number(m[2]))
  return out
}

t.test('multi-host: firewall, tunnel through portals, split legs, relay+origin loss under load', async t => {
  if (process.platform !== 'linux') t.fail('needs Linux network namespaces')
  if (process.getuid?.() !== 0) {
    t.fail('needs root to create network namespaces and nftables rules (run as root / in the CI container)')
    return
  }
  if (!existsSync(join(ROOT, 'dist', 'main.js'))) {
    t.fail('dist/ is missing: run `npm run build` (or `npm test`, which builds first)')
    return
  }
  if (newest(join(ROOT, 'src')) > newest(join(ROOT, 'dist'))) {
    t.comment('warning: src/ is newer than dist/; run `npm run build` to test current sources')
  }

  let bed: NetnsBed
  try {
    bed = NetnsBed.create({
      hosts: { client: 10, pa: 21, pb: 22, r1: 31, r2: 32, r3: 33, o1: 41, o2: 42 }
    })
  } catch (e) {
    t.fail((e as Error).message)
    return
  }
  t.teardown(() => bed.destroy())
  t.comment(`[${since()}] namespaces up: ${bed.namespaces.join(' ')}`)

  const h = (n: string): Host => bed.host(n)
  const client = h('client')
  const portals = [h('pa'), h('pb')]
  const relays = [h('r1'), h('r2'), h('r3')]
  const origins = [h('o1'), h('o2')]

  // Client egress firewall: only port 80 (and replies) leaves the client host.
  bed.port80Only(client)

  // The cluster.
  const procs = new Map<string, Proc>()
  const startNode = (host: Host, args: string[]): Proc => {
    const p = bed.start(host, host.name, 'node', [BIN, ...args], ENV)
    procs.set(host.name, p)
    return p
  }
  for (const o of origins) startNode(o, ['origin', '--port', '554', '--host', '0.0.0.0'])
  for (const r of relays) startNode(r, ['relay', '--port', '8081', '--host', '0.0.0.0', ...origins.flatMap(o => ['--backend', `rtsp://${o.ip}:554`])])

  /** Run the raw client script inside a host; returns its JSON lines. */
  const script = async (host: Host, cfg: object, timeoutMs = 20_000): Promise<Array<Record<string, unknown>>> => {
    const r = await bed.run(host, 'node', [CLIENT_SCRIPT, JSON.stringify(cfg)], { timeoutMs })
    if (r.code !== 0) {
      throw new Error(
        `client script in ${host.name} failed (code ${r.code}, timedOut ${r.timedOut}): ${r.stderr.slice(-2000)} ${
          r.stdout.slice(-2000)}`
      )
    }
    return r.stdout.split('\n').filter(l => l.trim() !== '').map(l => JSON.parse(l) as Record<string, unknown>)
  }
  const dump = (): string =>
    [...procs.values()]
      .map(
        p => `--- ${p.label} (exit ${p.child.exitCode ?? p.child.signalCode ?? 'running'})\n${p.output().slice(-3000)}`
      )
      .join('\n')
  const fetchText = async (from: Host, url: string): Promise<string> => {
    const [r] = await script(from, { mode: 'fetch', urls: [url] }, 10_000)
    if (r === undefined || r.status !== 200) throw new Error(`GET ${url}: ${JSON.stringify(r)}`)
    return r.body as string
  }
  /** A node's /metrics, read on its own host: the ops listener is on that host's loopback. */
  const opsMetrics = async (host: Host): Promise<string> =>
    await fetchText(host, `http://127.0.0.1:${OPS_PORT}/metrics`)

  try {
    // Origins and relays first, so the portals' first health probe sees every relay up.
    await script(h('pa'), {
      mode: 'wait',
      tcp: [...origins.map(o => `${o.ip}:554`), ...relays.map(r => `${r.ip}:8081`)],
      timeoutMs: 20_000
    })
    for (const p of portals) {
      startNode(p, ['portal', '--port', '80', '--host', '0.0.0.0', ...relays.flatMap(r => ['--relay', `${r.ip}:8081`])])
    }
    await script(h('r1'), { mode: 'wait', tcp: portals.map(p => `${p.ip}:80`), timeoutMs: 20_000 })
    for (const p of portals) {
      const up = metricByLabel(await opsMetrics(p), 'tunnelgate_relay_up', 'relay')
      t.same([...up.values()], [1, 1, 1], `portal ${p.name} sees all three relays up`)
    }
    t.comment(`[${since()}] cluster up: 2 portals, 3 relays, 2 origins`)
  } catch (e) {
    t.fail(`cluster did not start: ${(e as Error).message}\n${dump()}`)
    return
  }

  // 1. Plain RTSP from the client to an origin is blocked by the client's egress firewall.
  await t.test('1: plain RTSP client → origin:554 is blocked', async t => {
    const url = `rtsp://${origins[0]!.ip}:554/demo`
    const blocked = await bed.run(
      client,
      'timeout',
      ['5', 'ffprobe', '-v', 'error', '-rtsp_transport', 'tcp', '-timeout', '3000000', url],
      { timeoutMs: 8000 }
    )
    t.not(blocked.code, 0, `ffprobe ${url} from the client fails (code ${blocked.code}, ${blocked.ms} ms)`)
    t.ok(blocked.ms < 7000, 'and fails quickly')
    const counter = /counter packets (\d+)/.exec(bed.nftList(client))
    t.ok(
      counter !== null && Number(counter[1]) > 0,
      `the client's output chain dropped its SYNs (${counter?.[1] ?? '?'} packets)`
    )
    // Control: the same probe from a relay host (no firewall) works, so it was the firewall.
    const open = await bed.run(
      relays[0]!,
      'ffprobe',
      ['-v', 'error', '-rtsp_transport', 'tcp', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', url],
      { timeoutMs: 10_000 }
    )
    t.equal(
      open.code,
      0,
      `the same ffprobe from host r1 succeeds (${open.ms} ms): ${open.stdout.trim().replace(/\n/g, ',')} ${
        open.stderr.slice(-500)}`
    )
    t.comment(`[${since()}] step 1 done`)
  })

  // 1b. A host inside the cluster network (as after one firewall mistake) reaches a relay node
  // straight: its forged headers, plain RTSP and unsigned cluster reads are refused, and counted.
  await t.test('1b: a host that reaches a relay node directly is not believed', async t => {
    const r1 = relays[0]!
    const raw = async (send: string): Promise<string> =>
      String((await script(origins[1]!, { mode: 'raw', to: `${r1.ip}:8081`, send }, 10_000))[0]?.received ?? '')
    const forgedGet = `GET /demo HTTP/1.0\r\nx-sessioncookie: ${'f'.repeat(22)}\r\nX-Tunnelgate-Client: ${
      client.ip}\r\nX-Tunnelgate-Path: %2F\r\n\r\n`
    t.match(await raw(forgedGet), /^HTTP\/1\.[01] 403/, 'a GET with forged X-Tunnelgate-Client/-Path: 403')
    t.match(
      await raw(`DESCRIBE rtsp://${r1.ip}:8081/demo RTSP/1.0\r\nCSeq: 1\r\n\r\n`),
      /^RTSP\/1\.0 403/,
      'plain RTSP: RTSP 403'
    )
    t.equal(await raw(`TUNNELGATE-FORWARD tgf1.forged.proof\r\n${forgedGet}`), '', 'a forged preamble: closed')
    const [summary] = await script(
      origins[1]!,
      { mode: 'fetch', urls: [`http://${r1.ip}:8081/status/summary`, `http://${r1.ip}:8081/metrics`] },
      10_000
    )
    t.equal(summary?.status, 404, 'its /status/summary and /metrics are not served unsigned')
    const refused = metricByLabel(await opsMetrics(r1), 'tunnelgate_relay_untrusted_total', 'reason')
    t.ok(
      (refused.get('missing') ?? 0) >= 2 && (refused.get('bad-signature') ?? 0) >= 1,
      `r1 counted the refusals: ${JSON.stringify(Object.fromEntries(refused))}`
    )
    t.comment(`[${since()}] step 1b done`)
  })

  // 2. ffmpeg through the tunnel, port 80 only.
  await t.test('2: ffmpeg -rtsp_transport http through portal A', async t => {
    const r = await bed.run(
      client,
      'ffmpeg',
      [
        '-v',
        'error',
        '-rtsp_transport',
        'http',
        '-i',
        `rtsp://${portals[0]!.ip}:80/demo`,
        '-t',
        '3',
        '-f',
        'null',
        '-'
      ],
      { timeoutMs: 20_000 }
    )
    t.equal(r.code, 0, `ffmpeg plays /demo through the tunnel (${r.ms} ms) ${r.stderr.slice(-1000)}`)
    t.comment(`[${since()}] step 2 done`)
  })

  // 3. GET at portal A, POST at portal B, written by hand.
  await t.test('3: hand-written tunnel, GET → portal A, POST → portal B', async t => {
    const [r] = await script(client, {
      mode: 'one',
      get: `${portals[0]!.ip}:80`,
      post: `${portals[1]!.ip}:80`,
      path: '/demo',
      frames: 50
    }) as unknown as TunnelResult[]
    t.ok(r?.ok, `tunnel with split legs plays: ${JSON.stringify(r)}`)
    t.ok((r?.frames ?? 0) >= 50, `≥ 50 interleaved frames read from the GET (${r?.frames})`)
    t.same(r?.steps.slice(0, 2), ['GET 200', 'OPTIONS 200'])
    t.comment(`[${since()}] step 3 done (${r?.ms} ms)`)
  })

  // 4. Kill a relay and an origin while 50 tunnels run.
  await t.test('4: relay + origin killed during 50 tunnels; new sessions keep succeeding', async t => {
    const total = 50
    const killAfter = 12
    const cfg = {
      mode: 'load',
      portals: portals.map(p => `${p.ip}:80`),
      total,
      concurrency: 4,
      frames: 25,
      holdMs: 1000,
      gapMs: 50,
      path: '/demo'
    }
    const child = spawn('ip', ['netns', 'exec', client.ns, 'node', CLIENT_SCRIPT, JSON.stringify(cfg)], {
      stdio: ['ignore', 'pipe', 'pipe']
    })
    const killTimer = setTimeout(() => child.kill('SIGKILL'), 70_000)
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const results: TunnelResult[] = []
    let killedAt = 0
    let killing: Promise<void> | null = null
    let victims = ''
    const kill = async (): Promise<void> => {
      // The busiest relay (legs forwarded by portal A) and the busiest origin (the relays' choices).
      const bodies = await Promise.all([portals[0]!, ...relays].map(opsMetrics))
      const legs = metricByLabel(bodies[0]!, 'tunnelgate_relay_legs_total', 'relay')
      const relayIp = [...legs.entries()].sort((a, b) => b[1] - a[1])[0]![0].split(':')[0]
      const relay = relays.find(r => r.ip === relayIp)!
      const choices = new Map<string, number>()
      for (const body of bodies.slice(1)) {
        for (const [b, n] of metricByLabel(body, 'tunnelgate_backend_choices_total', 'backend')) {
          choices.set(b, (choices.get(b) ?? 0) + n)
        }
      }
      const top = [...choices.entries()].sort((a, b) => b[1] - a[1])[0]![0]
      const origin = origins.find(o => top.includes(o.ip)) ?? origins[0]!
      victims = `relay ${relay.name} (legs so far ${JSON.stringify(Object.fromEntries(legs))}), origin ${
        origin.name} (choices so far ${JSON.stringify(Object.fromEntries(choices))})`
      killedAt = Date.now()
      await Promise.all([bed.kill(procs.get(relay.name)!), bed.kill(procs.get(origin.name)!)])
      t.comment(`[${since()}] killed ${victims}; ${results.length} tunnels had finished`)
    }
    const lines = createInterface({ input: child.stdout })
    for await (const line of lines) {
      if (line.trim() === '') continue
      const o = JSON.parse(line) as TunnelResult & { done?: boolean }
      if (o.done === true) break
      results.push(o)
      if (results.length === killAfter && killing === null) killing = kill()
    }
    clearTimeout(killTimer)
    await killing
    if (child.exitCode === null && child.signalCode === null) await new Promise(resolve => child.once('close', resolve))
    t.equal(results.length, total, `all ${total} tunnels reported ${stderr.slice(-1000)}`)
    const before = results.filter(r => r.started < killedAt)
    const after = results.filter(r => r.started >= killedAt).sort((a, b) => a.started - b.started)
    const okBefore = before.filter(r => r.ok).length
    const okAfter = after.filter(r => r.ok).length
    t.comment(
      `[${since()}] before the kill: ${okBefore}/${before.length} ok; started after it: ${okAfter}/${after.length} ok`
    )
    for (const r of results.filter(r => !r.ok)) t.comment(`  failed #${r.i} (${r.started >= killedAt ? '+' : ''}${r.started - killedAt} ms from kill): ${r.error} [${r.steps.join(', ')}]`)
    t.ok(killedAt > 0, 'a relay and an origin were killed mid-load')
    t.equal(okBefore >= killAfter, true, `the ${killAfter} tunnels finished before the kill succeeded`)
    t.ok(after.length >= 20, `enough sessions started after the kill (${after.length})`)
    t.ok(
      okAfter >= Math.ceil(after.length * 0.9),
      `≥ 90 % of sessions started after the kill succeed (${okAfter}/${after.length})`
    )
    const last10 = after.slice(-10)
    t.ok(last10.length === 10 && last10.every(r => r.ok), 'the last 10 sessions all succeed')

    // Both portals' health probes now mark the killed relay down (probe every 2 s).
    for (const p of portals) {
      let up = new Map<string, number>()
      for (let i = 0; i < 30; i++) {
        up = metricByLabel(await opsMetrics(p), 'tunnelgate_relay_up', 'relay')
        if ([...up.values()].filter(v => v === 0).length === 1) break
        await new Promise(resolve => setTimeout(resolve, 200))
      }
      t.equal(
        [...up.values()].filter(v => v === 0).length,
        1,
        `portal ${p.name} marks exactly one relay down: ${JSON.stringify(Object.fromEntries(up))}`
      )
    }
    if (results.length < total || okAfter < after.length) t.comment(dump())
  })

  t.comment(`[${since()}] all steps done`)
})
