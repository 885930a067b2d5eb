/**
 * A real gateway as child processes (`node bin/tunnelgate.js` from dist/), in one of the three
 * layouts: `all` (one process, workers 0, the embedded origin), `workers` (a portal with two relay
 * workers), `cluster` (an origin, a relay node in front of it and a portal in front of that). Each
 * process's JSON log lines are kept, so a test can ask whether any process died or logged a code.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { freePort } from './ports.js'
import { TEST_CLUSTER_SECRET } from './gateway-harness.js'

export type Layout = 'all' | 'workers' | 'cluster'
export const LAYOUTS: readonly Layout[] = ['all', 'workers', 'cluster']

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

export interface ChildProc {
  name: string
  child: ChildProcess
  /** Parsed JSON log lines (stdout) and the raw stderr. */
  logs: Array<Record<string, unknown>>
  stderr: string
  exited: Promise<number | null>
}

export interface ChildGateway {
  layout: Layout
  /** The port clients use (the portal's in the cluster layout). */
  port: number
  procs: ChildProc[]
  /** Every process still running. */
  alive (): boolean
  /** Log lines of every process that carry `code`. */
  logged (code: string): Array<Record<string, unknown>>
  stop (): Promise<void>
}

/** Settings every layout shares (short timeouts so a test settles quickly), merged into each config. */
export interface ChildOptions {
  /** Extra config for the process the clients talk to (the all-in-one, or the portal). */
  front?: Record<string, unknown>
  /** Extra config for the relay node (cluster layout). */
  relay?: Record<string, unknown>
  /** Extra environment for every process (e.g. TUNNELGATE_FAULTS). */
  env?: NodeJS.ProcessEnv
}

const BASE = {
  host: '127.0.0.1',
  logLevel: 'info',
  ops: { port: 0 },
  tunnel: { pairingTimeoutMs: 4000 },
  limits: { headerTimeoutMs: 3000 }
}
const CLUSTER = { secret: TEST_CLUSTER_SECRET }

export async function startChildGateway (layout: Layout, o: ChildOptions = {}): Promise<ChildGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'tg-child-'))
  const procs: ChildProc[] = []
  const run = (name: string, args: string[]): ChildProc => {
    const child = spawn(process.execPath, ['bin/tunnelgate.js', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...o.env }
    })
    const p: ChildProc = {
      name,
      child,
      logs: [],
      stderr: '',
      exited: new Promise(resolve => child.once('exit', code => resolve(code)))
    }
    let rest = ''
    child.stdout!.on('data', d => {
      rest += String(d)
      const lines = rest.split('\n')
      rest = lines.pop()!
      for (const l of lines) { try { p.logs.push(JSON.parse(l) as Record<string, unknown>) } catch {} }
    })
    child.stderr!.on('data', d => { p.stderr += String(d) })
    procs.push(p)
    return p
  }
  const config = (name: string, c: Record<string, unknown>): string => {
    const file = join(dir, `${name}.json`)
    writeFileSync(file, JSON.stringify(c))
    return file
  }
  const port = await freePort()
  if (layout === 'cluster') {
    const originPort = await freePort()
    const relayPort = await freePort()
    run('origin', ['origin', '--port', String(originPort)])
    await listening(originPort, procs)
    run('relay', [
      'relay',
      '--config',
      config('relay', {
        ...BASE,
        ...o.relay,
        role: 'relay',
        port: relayPort,
        workers: 0,
        cluster: CLUSTER,
        backends: [`rtsp://127.0.0.1:${originPort}`]
      })
    ])
    await listening(relayPort, procs)
    run('portal', [
      'portal',
      '--config',
      config('portal', {
        ...BASE,
        ...o.front,
        role: 'portal',
        port,
        cluster: { ...CLUSTER, relays: [`127.0.0.1:${relayPort}`] }
      })
    ])
  } else {
    run('gateway', ['--config', config('gateway', { ...BASE, ...o.front, port, workers: layout === 'all' ? 0 : 2 })])
  }
  await listening(port, procs)
  await healthy(port, procs)
  return {
    layout,
    port,
    procs,
    alive: () => procs.every(p => p.child.exitCode === null && p.child.signalCode === null),
    logged: code => procs.flatMap(p => p.logs.filter(l => l.code === code)),
    async stop () {
      for (const p of [...procs].reverse()) if (p.child.exitCode === null) p.child.kill('SIGKILL')
      await Promise.all(procs.map(async p => await p.exited))
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

async function listening (port: number, procs: ChildProc[]): Promise<void> {
  const deadline = Date.now() + 20_000
  for (;;) {
    const ok = await new Promise<boolean>(resolve => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy()
        resolve(true)
      })
      s.on('error', () => resolve(false))
    })
    if (ok) return
    const dead = procs.find(p => p.child.exitCode !== null)
    if (dead !== undefined || Date.now() > deadline) {
      throw new Error(`port ${port} not listening: ${procs.map(p => `${p.name}: ${p.stderr.slice(-500)}`).join('; ')}`)
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/** GET /healthz answers 200 within `timeoutMs` (the portal's relay probe has run, in the cluster). */
export async function healthz (port: number, timeoutMs = 1000): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(timeoutMs) })
    return r.status === 200
  } catch { return false }
}

async function healthy (port: number, procs: ChildProc[]): Promise<void> {
  const deadline = Date.now() + 20_000
  while (!(await healthz(port))) {
    if (Date.now() > deadline) {
      throw new Error(`no /healthz on ${port}: ${procs.map(p => `${p.name}: ${p.stderr.slice(-500)}`).join('; ')}`)
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  // A portal forwards legs only to relays its probe has seen up; readiness says so.
  while (await fetch(`http://127.0.0.1:${port}/readyz`).then(r => r.status !== 200, () => true)) {
    if (Date.now() > deadline) throw new Error(`not ready on ${port}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}
