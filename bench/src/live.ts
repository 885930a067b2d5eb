/**
 * The `live` scenario: viewers per core on ONE live stream, tunnelgate's live fan-out
 * side by side with GStreamer's RTSP server serving a shared media to the same number of viewers.
 *
 *   tunnelgate  gst-rtsp-server (shared /live-vonly mount: videotestsrc → x264enc → rtph264pay)
 *               ← ONE RTSP/TCP session ← tunnelgate `--workers 0` with `routes: [{ path: '/',
 *               live: true }]` ← N viewers (QuickTime tunnels)
 *   gst         a fresh gst-rtsp-server ← the same N viewers, tunnels terminated by the server itself
 *
 * Both sides are driven by the same client (load.ts BenchTunnel in `live` mode: GET + POST,
 * DESCRIBE, SETUP of the SDP's video track, PLAY) through the same steps: a 1-viewer baseline, then
 * every N of `liveSteps` (viewers kept open and added to), a GET_PARAMETER keepalive round, a
 * warm-up, and a measured window. Per step: CPU-s of the serving process (tunnelgate's, or
 * gst-rtsp-server's, which also runs the encoder: its 1-viewer baseline rate is reported and
 * subtracted in "above baseline"), CPU-s per delivered Gbit, viewers per core (N / cores busy),
 * RSS, lost packets (RTP sequence gaps), viewers that fell behind the stream clock by more than
 * `liveLagMs` (late), and tunnels that failed. A step is held with zero lost, late, failed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { cpus } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cpuSeconds, processTree, sumCpu, sumRss } from './procstat.js'
import { BenchTunnel, newStats, percentile, pool, resetCounters, type LoadStats } from './load.js'
import { freePort, GATEWAY_BENCH_CONFIG, hardNofile, NOFILE, stopChild, tunnelgateArgs } from './scenarios.js'
import { benchTempDir } from './temp-dirs.js'

export const LIVE_NAME = 'viewers per core on one live stream: tunnelgate live fan-out vs gst-rtsp-server shared media'

/** The live stream both sides serve (gst-origin.py arguments). */
export const LIVE_STREAM = {
  mount: 'live-vonly', width: 640, height: 360, fps: 25, gop: 25, pattern: 'snow', preset: 'ultrafast'
} as const

export interface LiveOptions {
  liveSteps: number[]
  /** x264enc bitrate of the live stream (kbit/s). */
  liveKbps: number
  liveSeconds: number
  warmSeconds: number
  /** A viewer that falls behind the stream's clock by more than this in a window is late. */
  liveLagMs: number
  openTimeoutMs: number
  settleMs: number
  profile: string
  log: (line: string) => void
}

export interface LiveStep {
  viewers: number
  /** Tunnels actually playing during the window. */
  opened: number
  failed: number
  seconds: number
  deliveredMbps: number
  /** Delivered Mbit/s per viewer (the stream's rate as each viewer got it). */
  perViewerKbps: number
  packets: number
  lost: number
  /** Viewers that fell behind the stream clock by more than liveLagMs, or got no video in the window. */
  late: number
  errors: number
  held: boolean
  cpuServer: number
  cpuPerGbit: number | null
  /** gst side: CPU-s minus its 1-viewer baseline rate × seconds (the encoder and one session). */
  cpuAboveBaseline: number | null
  cpuPerGbitAboveBaseline: number | null
  /** N / (CPU-s / s): viewers one fully busy core would serve at this step's cost per viewer. */
  viewersPerCore: number | null
  viewersPerCoreAboveBaseline: number | null
  /** CPU-s of gst-rtsp-server as tunnelgate's source (tunnelgate side). */
  cpuSource: number
  cpuClient: number
  serverRssMB: number
  lagMs: { n: number, p50: number, p99: number, max: number }
}

export interface LiveSide {
  id: 'tunnelgate' | 'gst'
  name: string
  baseline: LiveStep | null
  steps: LiveStep[]
  /** Highest step held (0: none). */
  heldViewers: number
  /** Viewers per core at the highest held step (gst: above its baseline), null when none held. */
  viewersPerCore: number | null
  /** (RSS at the highest step − RSS with 1 viewer) / (N − 1), KiB. */
  kibPerViewer: number | null
  error?: string
}

export interface LiveResult {
  date: string
  profile: string
  durationSeconds: number
  machine: { nproc: number, loadavg: string, gstreamer: string | null }
  options: Omit<LiveOptions, 'log'>
  stream: typeof LIVE_STREAM & { kbps: number }
  sides: LiveSide[]
}

const here = fileURLToPath(import.meta.url)
/** bench/src or bench/dist → the repository root, which holds test/peers/gst-origin.py. */
export const GST_ORIGIN = resolve(dirname(here), '..', '..', 'test', 'peers', 'gst-origin.py')
const PYTHON = '/usr/bin/python3'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

function spawnLimited (
  cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env
): { child: ChildProcess, output: () => string } {
  const want = Math.min(NOFILE, hardNofile())
  const child = spawn('sh', ['-c', `ulimit -n ${want} 2>/dev/null; exec "$@"`, 'sh', cmd, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'], env
  })
  let out = ''
  const debug = process.env.TUNNELGATE_BENCH_DEBUG !== undefined
  const keep = (d: Buffer): void => { if (debug) process.stderr.write(d); out = (out + d.toString()).slice(-4000) }
  child.stderr!.on('data', keep)
  child.stdout!.on('data', keep)
  return { child, output: () => out }
}

async function waitPort (
  port: number, child: ChildProcess, what: string, output: () => string, timeoutMs = 20_000
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited ` +
        `(${child.exitCode ?? child.signalCode}): ${output().trim().split('\n').slice(-3).join(' | ')}`)
    }
    const ok = await new Promise<boolean>(resolve => {
      const s = net.connect({ port, host: '127.0.0.1' })
      s.once('connect', () => { s.destroy(); resolve(true) })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port} within ${timeoutMs} ms`)
    await sleep(100)
  }
}

interface Proc { pid: number, stop: () => Promise<void> }

/** gst-rtsp-server (test/peers/gst-origin.py) serving the live stream on a free port. */
export async function startGstLive (kbps: number): Promise<Proc & { port: number }> {
  if (!existsSync(GST_ORIGIN)) {
    throw new Error(`the live scenario needs ${GST_ORIGIN} (run the bench from a checkout of the repository)`)
  }
  if (!existsSync(PYTHON)) {
    throw new Error(`the live scenario needs ${PYTHON} with python3-gi and gir1.2-gst-rtsp-server-1.0`)
  }
  const port = await freePort()
  const s = LIVE_STREAM
  const { child, output } = spawnLimited(PYTHON, [GST_ORIGIN, '--address', '127.0.0.1', '--port', String(port),
    '--mounts', s.mount, '--width', String(s.width), '--height', String(s.height), '--fps', String(s.fps),
    '--gop', String(s.gop), '--pattern', s.pattern, '--preset', s.preset, '--bitrate', String(kbps), '--no-overlay'])
  try {
    await waitPort(
      port, child,
      'gst-rtsp-server (gst-origin.py; needs python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-ugly)', output
    )
  } catch (err) { await stopChild(child); throw err }
  return { port, pid: child.pid!, stop: () => stopChild(child) }
}

/** tunnelgate all-in-one with every path live, in front of `backendPort`. */
async function startTunnelgateLive (backendPort: number): Promise<Proc & { port: number, pids: () => number[] }> {
  const port = await freePort()
  const file = join(benchTempDir('live'), 'tunnelgate.json')
  writeFileSync(file, JSON.stringify({ ...GATEWAY_BENCH_CONFIG, routes: [{ path: '/', backends: [], live: true }] }))
  const { child, output } = spawnLimited(process.execPath, [...tunnelgateArgs(), '--config', file,
    '--port', String(port), '--host', '127.0.0.1', '--ops-port', '0',
    '--backend', `rtsp://127.0.0.1:${backendPort}`, '--workers', '0'], {
    ...process.env, TUNNELGATE_LOG_LEVEL: 'warn', TUNNELGATE_BACKENDS: ''
  })
  try { await waitPort(port, child, 'tunnelgate', output) } catch (err) { await stopChild(child); throw err }
  const pid = child.pid!
  return { port, pid, pids: () => processTree(pid), stop: () => stopChild(child) }
}

function gstVersion (): string | null {
  const r = spawnSync('gst-launch-1.0', ['--version'], { encoding: 'utf8' })
  return r.status === 0 ? /GStreamer (\S+)/.exec(r.stdout ?? '')?.[1] ?? null : null
}

function loadavg (): string {
  const r = spawnSync('cat', ['/proc/loadavg'], { encoding: 'utf8' })
  return r.stdout?.trim() ?? ''
}

class SideRun {
  readonly stats: LoadStats
  readonly tunnels: BenchTunnel[] = []
  failed = 0
  readonly errors = new Map<string, number>()
  constructor (
    readonly o: LiveOptions, readonly port: number, readonly path: string, readonly serverPids: () => number[],
    readonly sourcePid: number
  ) { this.stats = newStats(o.liveLagMs) }

  async openTo (n: number): Promise<void> {
    const fresh: BenchTunnel[] = []
    for (let i = this.tunnels.length + this.failed; i < n; i++) {
      fresh.push(
        new BenchTunnel({
          port: this.port, path: this.path, stats: this.stats, timeoutMs: this.o.openTimeoutMs, live: true
        })
      )
    }
    await pool(fresh, 50, async t => {
      try { await t.open(); this.tunnels.push(t) } catch (err) {
        this.failed++
        const m = (err as Error).message
        this.errors.set(m, (this.errors.get(m) ?? 0) + 1)
        t.close()
      }
    })
    if (this.errors.size > 0) {
      this.o.log(`    viewers that failed to open: ${[...this.errors].map(([m, k]) => `${k} × ${m}`).join(', ')}`)
      this.errors.clear()
    }
  }

  async keepalive (): Promise<void> {
    await pool(this.tunnels.slice(), 100, async t => {
      let timer: NodeJS.Timeout | undefined
      try {
        await Promise.race([t.keepalive(), new Promise((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error('keepalive timed out')), this.o.openTimeoutMs)
        })])
      } catch {} finally { clearTimeout(timer) }
    })
  }

  async measure (viewers: number, baselineRate: number | null): Promise<LiveStep> {
    const s = this.stats
    const pids = this.serverPids()
    resetCounters(s)
    const cpu0 = sumCpu(pids)
    const src0 = this.sourcePid > 0 ? cpuSeconds(this.sourcePid) : 0
    const self0 = process.cpuUsage()
    const t0 = performance.now()
    await sleep(this.o.liveSeconds * 1000)
    const seconds = (performance.now() - t0) / 1000
    const cpuServer = sumCpu(pids) - cpu0
    const cpuSource = this.sourcePid > 0 ? cpuSeconds(this.sourcePid) - src0 : 0
    const self = process.cpuUsage(self0)
    const live = this.tunnels.filter(t => !t.closed)
    const lags = live.map(t => t.lagMs())
    const measured = Float64Array.from(lags.filter((x): x is number => x !== null)).sort()
    const starved = lags.filter(x => x === null).length
    const late = starved + measured.filter(x => x > this.o.liveLagMs).length
    const gbit = (s.bytes * 8) / 1e9
    const deliveredMbps = (s.bytes * 8) / seconds / 1e6
    const opened = live.length
    const above = baselineRate === null ? null : cpuServer - baselineRate * seconds
    const cores = cpuServer / seconds
    const coresAbove = above === null ? null : above / seconds
    const failed = viewers - opened
    return {
      viewers,
      opened,
      failed,
      seconds,
      deliveredMbps,
      perViewerKbps: opened === 0 ? 0 : deliveredMbps * 1000 / opened,
      packets: s.packets,
      lost: s.lost,
      late,
      errors: s.errors,
      held: s.lost === 0 && late === 0 && s.errors === 0 && failed === 0 && s.packets > 0,
      cpuServer,
      cpuPerGbit: gbit === 0 ? null : cpuServer / gbit,
      cpuAboveBaseline: above,
      cpuPerGbitAboveBaseline: above === null || gbit === 0 ? null : above / gbit,
      viewersPerCore: cores > 0 ? opened / cores : null,
      viewersPerCoreAboveBaseline: coresAbove === null || coresAbove <= 0 ? null : opened / coresAbove,
      cpuSource,
      cpuClient: (self.user + self.system) / 1e6,
      serverRssMB: sumRss(pids) / 1048576,
      lagMs: {
        n: measured.length,
        p50: percentile(measured, 50),
        p99: percentile(measured, 99),
        max: measured.length === 0 ? NaN : measured[measured.length - 1]!
      }
    }
  }

  closeAll (): void { for (const t of this.tunnels) t.close(); this.tunnels.length = 0; this.failed = 0 }
}

function stepLine (id: string, s: LiveStep): string {
  const f = (v: number | null, d: number): string => v === null || !Number.isFinite(v) ? '-' : v.toFixed(d)
  return `  live/${id} ${String(s.viewers).padStart(4)} viewers: ${s.opened} playing, ${f(s.deliveredMbps, 1)} ` +
    `Mbit/s (${f(s.perViewerKbps, 0)} kbit/s each), lost ${s.lost} ` +
    `late ${s.late}${s.errors > 0 ? ` errors ${s.errors}` : ''}, server ${f(s.cpuServer, 2)} CPU-s ` +
    `= ${f(s.cpuPerGbit, 3)} ` +
    `CPU-s/Gbit${s.cpuPerGbitAboveBaseline !== null ? ` (${f(s.cpuPerGbitAboveBaseline, 3)} above baseline)` : ''}, ` +
    `${f(s.viewersPerCore, 0)} viewers/core, RSS ${f(s.serverRssMB, 0)} MB, lag p99 ${f(s.lagMs.p99, 1)} ` +
    `ms${s.held ? '' : '  ← not held'}`
}

async function runSide (id: LiveSide['id'], o: LiveOptions, side: LiveSide): Promise<void> {
  const gst = await startGstLive(o.liveKbps)
  let tg: Awaited<ReturnType<typeof startTunnelgateLive>> | null = null
  let run: SideRun | null = null
  try {
    if (id === 'tunnelgate') {
      tg = await startTunnelgateLive(gst.port)
      const t = tg
      run = new SideRun(o, t.port, `/${LIVE_STREAM.mount}`, () => t.pids(), gst.pid)
    } else { run = new SideRun(o, gst.port, `/${LIVE_STREAM.mount}`, () => [gst.pid], 0) }
    await sleep(o.settleMs / 2)
    // 1-viewer baseline: for gst it is the encoder plus one session (subtracted from its steps).
    await run.openTo(1)
    await sleep(o.warmSeconds * 1000)
    side.baseline = await run.measure(1, null)
    o.log(stepLine(`${id} baseline`, side.baseline))
    const baselineRate = id === 'gst' && side.baseline.seconds > 0
      ? side.baseline.cpuServer / side.baseline.seconds
      : null
    for (const n of o.liveSteps) {
      await run.openTo(n)
      await run.keepalive()
      await sleep(o.warmSeconds * 1000)
      let s = await run.measure(n, baselineRate)
      if (!s.held && s.failed === 0) {
        // One retry, as in the sweep: a spike from outside the bench should not decide a step.
        o.log(stepLine(id, s) + ' (measuring again)')
        s = await run.measure(n, baselineRate)
      }
      side.steps.push(s)
      o.log(stepLine(id, s))
      if (s.held) side.heldViewers = n
      if (s.failed > 0) break // viewers cannot even be opened: larger steps would not be the same test
    }
    const top = side.steps.filter(s => s.held).pop()
    side.viewersPerCore = top === undefined
      ? null
      : (id === 'gst' ? top.viewersPerCoreAboveBaseline : top.viewersPerCore)
    const last = side.steps[side.steps.length - 1]
    side.kibPerViewer = last === undefined || last.opened < 2
      ? null
      : (last.serverRssMB - side.baseline.serverRssMB) * 1024 / (last.opened - 1)
  } finally {
    run?.closeAll()
    await tg?.stop()
    await gst.stop()
  }
}

export async function runLive (o: LiveOptions): Promise<LiveResult> {
  const started = performance.now()
  const options: LiveResult['options'] = {
    liveSteps: o.liveSteps,
    liveKbps: o.liveKbps,
    liveSeconds: o.liveSeconds,
    warmSeconds: o.warmSeconds,
    liveLagMs: o.liveLagMs,
    openTimeoutMs: o.openTimeoutMs,
    settleMs: o.settleMs,
    profile: o.profile
  }
  const result: LiveResult = {
    date: new Date().toISOString(),
    profile: o.profile,
    durationSeconds: 0,
    machine: { nproc: cpus().length, loadavg: loadavg(), gstreamer: gstVersion() },
    options,
    stream: { ...LIVE_STREAM, kbps: o.liveKbps },
    sides: []
  }
  o.log(`live: ${LIVE_NAME}; ${LIVE_STREAM.width}x${LIVE_STREAM.height}@${LIVE_STREAM.fps} H.264 ${o.liveKbps} ` +
    `kbit/s (x264enc ${LIVE_STREAM.preset}, videotestsrc ${LIVE_STREAM.pattern}), steps ${o.liveSteps.join(', ')} ` +
    `viewers; load ${result.machine.loadavg}`)
  for (const id of ['tunnelgate', 'gst'] as const) {
    const side: LiveSide = {
      id,
      name: id === 'tunnelgate'
        ? 'tunnelgate live fan-out (one upstream session to gst-rtsp-server)'
        : 'gst-rtsp-server shared media, tunnels terminated by the server',
      baseline: null,
      steps: [],
      heldViewers: 0,
      viewersPerCore: null,
      kibPerViewer: null
    }
    result.sides.push(side)
    try { await runSide(id, o, side) } catch (err) {
      side.error = (err as Error).message
      o.log(`  live/${id}: failed: ${side.error}`)
    }
    await sleep(o.settleMs)
  }
  result.durationSeconds = (performance.now() - started) / 1000
  return result
}
