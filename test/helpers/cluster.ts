/**
 * Helpers for the balancer/cluster tests: in-process gateways in any role on loopback,
 * embedded origins with a tiny test clip, a real Prometheus server (Debian package `prometheus`)
 * with a generated scrape config, metric reads, and a tunnel that DESCRIBE/SETUP/PLAYs and holds.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildConfig } from '../../src/config/config.js'
import { startGateway, type Gateway } from '../../src/gateway.js'
import { startOrigin, type OriginHandle } from '../../src/origin/index.js'
import { makeTestMedia } from './peers.js'
import { TunnelClient } from './tunnel-client.js'
import { getHeader } from '../../src/tunnel/codec/rtsp-message.js'
import { freePort } from './ports.js'
import { withClusterSecret } from './gateway-harness.js'

type Obj = Record<string, unknown>
export interface Teardown { teardown (fn: () => void | Promise<void>): void }

export const quietLog = { info () {}, warn () {}, error () {} }

export { freePort }

/** A directory with one small H.264 clip `clip.mp4` (served as /clip and /live/clip). */
export async function clipDir (t: Teardown, seconds = 30): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'tg-clip-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  await makeTestMedia(dir, seconds, { name: 'clip.mp4', width: 96, height: 64, fps: 10, audio: false, kbps: 30 })
  return dir
}

export async function origin (t: Teardown, mediaDir: string, port = 0): Promise<OriginHandle> {
  const o = await startOrigin({ port, host: '127.0.0.1', mediaDir, metricsPort: 0, logger: quietLog })
  t.teardown(async () => { await o.close() })
  return o
}

/** A gateway in process (ephemeral port unless `layer.port`), silent, workers 0 unless set. */
export async function gateway (t: Teardown, layer: Obj): Promise<Gateway> {
  const gw = await startGateway(
    buildConfig([
      withClusterSecret({ port: 0, host: '127.0.0.1', logLevel: 'silent', workers: 0, ops: { port: 0 }, ...layer })
    ])
  )
  t.teardown(async () => { await gw.close() })
  return gw
}

/** Sum of a metric's series whose labels include `labels` (undefined when no series matches). */
export async function metricValue (
  gw: Gateway,
  name: string,
  labels: Record<string, string> = {}
): Promise<number | undefined> {
  const m = gw.metrics.registry.getSingleMetric(name)
  if (m === undefined) return undefined
  const got = await m.get()
  let sum: number | undefined
  for (const v of got.values) {
    if (Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want)) {
      sum = (sum ?? 0) + v.value
    }
  }
  return sum
}

export async function originSessions (o: OriginHandle): Promise<number> {
  const m = o.registry.getSingleMetric('tunnelgate_origin_sessions')!
  return (await m.get()).values.reduce((s, v) => s + v.value, 0)
}

/** Poll `fn` until `ok(value)`; returns the last value (the caller asserts on it). */
export async function until<T> (
  fn: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs: number,
  intervalMs = 50
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (ok(v) || Date.now() > deadline) return v
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}

/**
 * A tunnel that plays `path` (DESCRIBE, SETUP track 1, PLAY) and stays open; closed at teardown.
 * Generous timeouts: these tests share two cores with other suites.
 */
export async function playing (
  t: Teardown,
  port: number,
  path: string,
  timeoutMs = 15_000
): Promise<{ client: TunnelClient, status: number }> {
  const client = await TunnelClient.open(port, { path, url: `rtsp://gw.test${path}`, headTimeoutMs: timeoutMs })
  t.teardown(() => client.close())
  const describe = await client.request('DESCRIBE', client.url, [['Accept', 'application/sdp']], { timeoutMs })
  if (describe.status !== 200) return { client, status: describe.status }
  const base = getHeader(describe, 'Content-Base') ?? `${client.url}/`
  const setup = await client.request(
    'SETUP',
    `${base}trackID=1`,
    [['Transport', 'RTP/AVP/TCP;unicast;interleaved=0-1']],
    { timeoutMs }
  )
  if (setup.status !== 200) return { client, status: setup.status }
  const session = (getHeader(setup, 'Session') ?? '').split(';')[0]!
  const play = await client.request(
    'PLAY',
    base,
    [
      ['Session', session],
      ['Range', 'npt=0.000-']
    ],
    { timeoutMs }
  )
  return { client, status: play.status }
}

export interface Prometheus { url: string, child: ChildProcess, output: () => string, stop: () => Promise<void> }

/** A real Prometheus on a loopback port scraping `targets` (host:port → metrics path) every `intervalS`. */
export async function startPrometheus (
  t: Teardown,
  jobs: Array<{ job: string, targets: string[], path?: string }>,
  intervalS = 1
): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'tg-prom-'))
  const port = await freePort()
  const cfg =
    [
      'global:',
      `  scrape_interval: ${intervalS}s`,
      `  scrape_timeout: ${Math.round(Math.max(0.5, intervalS * 0.8) * 1000)}ms`,
      'scrape_configs:',
      ...jobs.flatMap(j => [
        `  - job_name: ${j.job}`,
        `    metrics_path: ${j.path ?? '/metrics'}`,
        '    static_configs:',
        `      - targets: [${j.targets.map(x => `'${x}'`).join(', ')}]`
      ])
    ].join('\n') + '\n'
  writeFileSync(join(dir, 'prometheus.yml'), cfg)
  let out = ''
  const child = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn'
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] }
  )
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const failed = new Promise<never>((_resolve, reject) => {
    child.once('error', e => reject(new Error(`cannot run prometheus (Debian package 'prometheus'): ${e.message}`)))
    child.once('exit', (code, signal) =>
      reject(new Error(`prometheus exited (${code ?? signal}): ${out.slice(-1000)}`))
    )
  })
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGTERM')
    const k = setTimeout(() => child.kill('SIGKILL'), 5000)
    await gone
    clearTimeout(k)
  }
  t.teardown(async () => {
    await stop()
    rmSync(dir, { recursive: true, force: true })
  })
  const url = `http://127.0.0.1:${port}`
  // Ready, and every target scraped once (`up` is 1 for all of them).
  const want = jobs.reduce((n, j) => n + j.targets.length, 0)
  const upCount = async (): Promise<number> => {
    try {
      const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent('sum(up)')}`)
      if (r.status !== 200) return 0
      const j = await r.json() as { data?: { result?: Array<{ value: [number, string] }> } }
      return Number(j.data?.result?.[0]?.value[1] ?? 0)
    } catch {
      return 0
    }
  }
  const n = await Promise.race([failed, until(upCount, v => v >= want, 30_000, 200)])
  if (n < want) throw new Error(`prometheus: ${n} of ${want} targets up after 30 s: ${out.slice(-1000)}`)
  return { url, child, output: () => out, stop }
}
