/**
 * The middle boxes under test, each started as its own process(es) so its CPU and memory are
 * read from /proc alone:
 *
 *   a   tunnelgate all-in-one (portal + relay in one process)
 *   b1  tunnelgate --workers 1 (portal + 1 relay worker process; sockets handed over)
 *   b2  tunnelgate --workers 2
 *   c   direct: the bench source terminates the tunnel itself (no middle box)
 *   d   HAProxy (Debian package) in TCP mode, balance source, in front of the source
 *   e   raw TCP relay (Node pipe) in front of the source: the floor of any forwarder
 */
import { randomBytes } from 'node:crypto'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { processTree } from './procstat.js'
import { benchTempDir } from './temp-dirs.js'
import { tunnelgateBin } from './tunnelgate-bin.js'

export type ScenarioId = 'a' | 'b1' | 'b2' | 'c' | 'd' | 'e' | 'f'

export const SCENARIOS: Record<ScenarioId, string> = {
  a: 'tunnelgate all-in-one',
  b1: 'tunnelgate portal + 1 relay worker',
  b2: 'tunnelgate portal + 2 relay workers',
  c: 'direct (source terminates the tunnel)',
  d: 'HAProxy TCP mode, balance source',
  e: 'raw TCP relay (Node pipe)',
  f: 'tunnelgate portal + relay node (cluster roles, two processes)'
}

export interface Running {
  id: ScenarioId
  port: number
  /** A tunnelgate box's ops listener (metrics, /status/summary; the portal's in scenario f). */
  opsPort?: number
  /** The middle box's processes now (empty for direct). */
  pids (): number[]
  /**
   * Directory where the box's Node processes (tunnelgate, raw relay) preloaded with gc-hook.ts
   * write their memory after a forced GC (procstat.ts memorySnapshot); undefined for HAProxy and
   * direct.
   */
  gcDir?: string
  stop (): Promise<void>
}

const here = fileURLToPath(import.meta.url)
const isTs = here.endsWith('.ts')

/** One of the bench's own modules: compiled (.js), or its source (.ts) when the bench runs through tsx. */
const own = (m: string): string => join(dirname(here), isTs ? m.replace(/\.js$/, '.ts') : m)

/**
 * `--expose-gc --import gc-hook.js` for a bench middle box whose memory the scale phase reads after
 * a forced GC (fork()ed relay workers inherit these arguments); nothing without `gcHook`.
 */
function hookArgs (gcHook: boolean | undefined): string[] {
  if (gcHook !== true) return []
  // TUNNELGATE_BENCH_BOX_NODE_FLAGS: extra node flags for the middle box (e.g. --trace-gc, --cpu-prof), to study it.
  const extra = (process.env.TUNNELGATE_BENCH_BOX_NODE_FLAGS ?? '').split(/\s+/).filter(f => f !== '')
  return ['--expose-gc', '--import', pathToFileURL(own('gc-hook.js')).href, ...extra]
}

/** `node` arguments to run one of the bench's own modules (child.js), with the GC hook on request. */
export function benchArgs (module: string, opts: { gcHook?: boolean } = {}): string[] {
  return [...(isTs ? ['--import', 'tsx'] : []), ...hookArgs(opts.gcHook), own(module)]
}

/** `node` arguments to run the `tunnelgate` bin (compiled; tsx only to load the hook from source). */
export function tunnelgateArgs (opts: { gcHook?: boolean } = {}): string[] {
  const hook = hookArgs(opts.gcHook)
  return [...(isTs && hook.length > 0 ? ['--import', 'tsx'] : []), ...hook, tunnelgateBin()]
}

/** A fresh directory for gc-hook.ts reports, and the environment that points a box at it. */
function gcEnv (env: NodeJS.ProcessEnv): { gcDir: string, env: NodeJS.ProcessEnv } {
  const gcDir = benchTempDir('gc')
  return { gcDir, env: { ...env, TUNNELGATE_BENCH_GC_DIR: gcDir } }
}

export const NOFILE = 131072

/** The open-files hard limit of this process (what `ulimit -n` may be raised to without privileges). */
export function hardNofile (): number {
  const r = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' })
  const v = r.stdout?.trim()
  return v === 'unlimited' ? NOFILE : (Number(v) || 1024)
}

/** Spawn with the open-files soft limit raised as far as allowed (`ulimit -n`). */
function spawnLimited (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const want = Math.min(NOFILE, hardNofile())
  const child = spawn('sh', ['-c', `ulimit -n ${want} 2>/dev/null; exec "$@"`, 'sh', cmd, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'], env
  })
  // Always drain both pipes (a full pipe would block the child's logger); show them on request.
  const debug = process.env.TUNNELGATE_BENCH_DEBUG !== undefined
  child.stderr!.on('data', (d: Buffer) => { if (debug) process.stderr.write(d) })
  child.stdout!.on('data', (d: Buffer) => { if (debug) process.stderr.write(d) })
  return child
}

/** Raise this process's own open-files limit (root only; silently skipped otherwise). */
export function raiseOwnNofile (): number {
  if (!existsSync('/usr/bin/prlimit')) return 1024
  const want = Math.min(NOFILE, hardNofile())
  spawnSync('/usr/bin/prlimit', [`--pid=${process.pid}`, `--nofile=${want}:${want}`])
  const r = spawnSync(
    '/usr/bin/prlimit', [`--pid=${process.pid}`, '--nofile', '--raw', '--noheadings', '--output=SOFT'],
    { encoding: 'utf8' }
  )
  return Number(r.stdout?.trim()) || 1024
}

function readJsonLine (child: ChildProcess, what: string, timeoutMs = 15_000): Promise<{ port: number }> {
  return new Promise((resolve, reject) => {
    let buf = ''
    const t = setTimeout(() => reject(new Error(`${what} did not start`)), timeoutMs)
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString()
      const m = /\{"port":(\d+)\}/.exec(buf)
      if (m !== null) { clearTimeout(t); resolve({ port: Number(m[1]) }) }
    })
    child.once('exit', code => { clearTimeout(t); reject(new Error(`${what} exited (${code})`)) })
  })
}

export async function freePort (): Promise<number> {
  const s = net.createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as net.AddressInfo).port
  await new Promise<void>(resolve => s.close(() => resolve()))
  return port
}

async function waitListening (port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>(resolve => {
      const s = net.connect({ port, host: '127.0.0.1' })
      s.once('connect', () => { s.destroy(); resolve(true) })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing listening on ${port}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/** SIGTERM, then SIGKILL after 5 s; resolves when the child has exited. */
export function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise(resolve => {
    const t = setTimeout(() => { child.kill('SIGKILL') }, 5000)
    child.once('exit', () => { clearTimeout(t); resolve() })
    child.kill('SIGTERM')
  })
}

/** The bench source in its own process. */
export async function startSource (tickMs: number, phases = 1): Promise<{
  port: number
  pid: number
  stop: () => Promise<void>
}> {
  const child = spawnLimited(
    process.execPath, [...benchArgs('child.js'), 'source', '--tick-ms', String(tickMs), '--phases', String(phases)]
  )
  const { port } = await readJsonLine(child, 'bench source')
  return { port, pid: child.pid!, stop: () => stopChild(child) }
}

export function haproxyVersion (): string | null {
  const r = spawnSync('haproxy', ['-v'], { encoding: 'utf8' })
  if (r.status !== 0 || typeof r.stdout !== 'string') return null
  return /version (\S+)/.exec(r.stdout)?.[1] ?? r.stdout.split('\n')[0]!
}

/**
 * The gateway's settings for the bench: defaults, except the per-address limits (every bench
 * client comes from 127.0.0.1, so the per-IP caps meant for one viewer's address would cap the
 * whole load generator) and the unpaired-leg cap (setups come 64 at a time).
 */
export const GATEWAY_BENCH_CONFIG = {
  limits: { maxTunnelsPerIp: 0, maxUnpairedLegsPerIp: 0, maxUnpairedLegs: 100_000 }
}

function gatewayConfig (): string {
  const file = join(benchTempDir('gw'), 'tunnelgate.json')
  writeFileSync(file, JSON.stringify(GATEWAY_BENCH_CONFIG))
  return file
}

export async function startScenario (id: ScenarioId, sourcePort: number): Promise<Running> {
  if (id === 'c') return { id, port: sourcePort, pids: () => [], stop: async () => {} }
  if (id === 'e') {
    const { gcDir, env } = gcEnv(process.env)
    const child = spawnLimited(
      process.execPath, [...benchArgs('child.js', { gcHook: true }), 'relay', '--target', String(sourcePort)], env
    )
    const { port } = await readJsonLine(child, 'raw relay')
    return { id, port, pids: () => [child.pid!], gcDir, stop: () => stopChild(child) }
  }
  const port = await freePort()
  if (id === 'd') {
    const dir = benchTempDir('haproxy')
    const cfg = join(dir, 'haproxy.cfg')
    writeFileSync(cfg, [
      'global',
      `  maxconn ${Math.floor((Math.min(NOFILE, hardNofile()) - 200) / 2)}`,
      '  log stderr format raw local0 emerg',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 1h',
      '  timeout server 1h',
      'frontend fe',
      `  bind 127.0.0.1:${port}`,
      '  default_backend be',
      'backend be',
      '  balance source',
      `  server s1 127.0.0.1:${sourcePort}`,
      ''
    ].join('\n'))
    const child = spawnLimited('haproxy', ['-db', '-f', cfg])
    await waitListening(port)
    return { id, port, pids: () => [child.pid!], stop: () => stopChild(child) }
  }
  const { gcDir, env } = gcEnv({ ...process.env, TUNNELGATE_LOG_LEVEL: 'warn', TUNNELGATE_BACKENDS: '' })
  // The portal and relay node of scenario f sign and check what they forward with a secret of this run.
  if (id === 'f') {
    return await startCluster(port, sourcePort, gcDir, {
      ...env, TUNNELGATE_CLUSTER_SECRET: randomBytes(24).toString('base64url')
    })
  }
  const workers = id === 'b1' ? ['--workers', '1'] : id === 'b2' ? ['--workers', '2'] : ['--workers', '0']
  const opsPort = await freePort()
  const child = spawnLimited(
    process.execPath,
    [
      ...tunnelgateArgs({ gcHook: true }), '--config', gatewayConfig(), '--port', String(port), '--host', '127.0.0.1',
      '--ops-port', String(opsPort), '--backend', `rtsp://127.0.0.1:${sourcePort}`, ...workers
    ],
    env
  )
  await waitListening(port)
  // Workers announce readiness before the portal listens; give the tree a moment to settle.
  const pid = child.pid!
  return {
    id,
    port,
    opsPort,
    // sh execs the command: the pid is the gateway's.
    pids: () => processTree(pid),
    gcDir,
    stop: () => stopChild(child)
  }
}

/**
 * Scenario f, the paper's layout: `tunnelgate portal` forwards each leg (raw bytes, after reading
 * its head) to `tunnelgate relay`, which unwraps the tunnel and proxies RTSP to the source. The
 * box is both processes; the run starts once the portal's health probe has found the relay up.
 */
async function startCluster (
  port: number, sourcePort: number, gcDir: string, env: NodeJS.ProcessEnv
): Promise<Running> {
  const relayPort = await freePort()
  const [relayOps, portalOps] = [await freePort(), await freePort()]
  const config = gatewayConfig()
  const relay = spawnLimited(
    process.execPath,
    [
      ...tunnelgateArgs({ gcHook: true }), 'relay', '--config', config, '--port', String(relayPort), '--host',
      '127.0.0.1', '--ops-port', String(relayOps), '--backend', `rtsp://127.0.0.1:${sourcePort}`
    ],
    env
  )
  await waitListening(relayPort)
  const portal = spawnLimited(
    process.execPath,
    [
      ...tunnelgateArgs({ gcHook: true }), 'portal', '--config', config, '--port', String(port), '--host', '127.0.0.1',
      '--ops-port', String(portalOps), '--relay', `127.0.0.1:${relayPort}`
    ],
    env
  )
  await waitListening(port)
  const deadline = Date.now() + 20_000
  for (;;) {
    const text = await fetch(`http://127.0.0.1:${portalOps}/metrics`).then(async r => await r.text()).catch(() => '')
    if (/^tunnelgate_relay_up\{[^}]*\} 1$/m.test(text)) break
    if (Date.now() > deadline) throw new Error('the portal never saw its relay node up')
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return {
    id: 'f',
    port,
    opsPort: portalOps,
    pids: () => [...processTree(portal.pid!), ...processTree(relay.pid!)],
    gcDir,
    stop: async () => { await stopChild(portal); await stopChild(relay) }
  }
}
