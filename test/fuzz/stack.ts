/**
 * A layout's processes as children of the fuzzer: started in order (each one's port answering
 * before the next starts), watched for crashes (a child that exits, or a relay worker that
 * disappears: the portal would restart it, but its tunnels died with it), their stderr kept for the
 * crash report, stopped with SIGTERM then SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../helpers/ports.js'
import { layoutProcesses, type LayoutName } from './layouts.js'
import { childrenOf, alive } from './proc.js'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const STDERR_KEEP = 256 * 1024

export interface Crash {
  role: string
  pid: number
  /** Exit code or signal, or how it was seen to be gone. */
  how: string
  stderr: string
  /** The error and the function it was thrown in, without the parts that change between runs. */
  signature: string
  /** When the fuzzer saw it. */
  atMs: number
}

interface Proc { role: string, child: ChildProcess, stderr: string, stopping: boolean }

/** The last uncaught error in `stderr`: "Name: message @ function (file)", quoted values elided. */
export function crashSignature (stderr: string): string {
  const m = [...stderr.matchAll(/^(\w*Error|Error \[\w+\])(?::\s*([^\n]*))?\n((?:\s+at [^\n]*\n?)+)/gm)].pop()
  if (m === undefined) {
    return stderr.trim() === ''
      ? 'exited without an error on stderr'
      : `exited: ${stderr.trim().split('\n').pop()!.slice(0, 120)}`
  }
  const message = (m[2] ?? '')
    .replace(/'[^']*'/g, "'…'")
    .replace(/"[^"]*"/g, '"…"')
    .replace(/\d{3,}/g, 'N')
    .slice(0, 120)
  const frame = /at (?:async )?([^\s(]+(?: [^\s(]+)?) \(([^)]+)\)/.exec(m[3]!) ?? /at ([^\s]+)/.exec(m[3]!)
  // The file without its directory, position and extension (source maps turn .js into .ts).
  const where =
    frame === null
      ? ''
      : ` @ ${frame[1]}${
          frame[2] === undefined
            ? ''
            : ` (${frame[2]
                .replace(/^.*\//, '')
                .replace(/:\d+:\d+$/, '')
                .replace(/\.[cm]?[jt]s$/, '')})`
        }`
  return `${m[1]}: ${message}${where}`
}

function waitPort (port: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  return new Promise(resolve => {
    const attempt = (): void => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true) })
      s.on('error', () => { s.destroy(); if (Date.now() > deadline) resolve(false); else setTimeout(attempt, 50) })
    }
    attempt()
  })
}

export class GatewayStack {
  readonly layout: LayoutName
  readonly port: number
  /** Ports the stack listens on (for the descriptor census). */
  readonly ports: number[]
  readonly #procs: Proc[] = []
  readonly #dir: string
  #workers: Array<{ role: string, pid: number }> = []
  #watch: NodeJS.Timeout | null = null
  #crash: Crash | null = null
  #onCrash: Array<(c: Crash) => void> = []

  private constructor (layout: LayoutName, port: number, ports: number[], dir: string) {
    this.layout = layout
    this.port = port
    this.ports = ports
    this.#dir = dir
  }

  /** Start `layout` (`extra`: more settings for the process clients connect to). */
  static async start (layout: LayoutName, extra: Record<string, unknown> = {}): Promise<GatewayStack> {
    const ports = { front: await freePort(), relay: await freePort(), origin: await freePort() }
    const specs = layoutProcesses(layout, ports, extra)
    const stack = new GatewayStack(
      layout,
      ports.front,
      [ports.front, ports.relay, ports.origin],
      mkdtempSync(join(tmpdir(), 'tg-fuzz-'))
    )
    try {
      for (const spec of specs) {
        const args = [...spec.args]
        if (spec.config !== undefined) {
          const file = join(stack.#dir, `${spec.role}.json`)
          writeFileSync(file, JSON.stringify(spec.config))
          args.push('--config', file)
        }
        const p = stack.#spawn(spec.role, args)
        if (!await waitPort(spec.port, 20_000) || p.child.exitCode !== null) {
          throw new Error(`${layout}: ${spec.role} did not start: ${p.stderr.slice(-2000)}`)
        }
        if (spec.workers > 0) await stack.#findWorkers(p, spec.workers)
      }
    } catch (err) {
      await stack.stop()
      throw err
    }
    stack.#watch = setInterval(() => stack.#checkWorkers(), 200)
    return stack
  }

  #spawn (role: string, args: string[]): Proc {
    // TUNNELGATE_FUZZ_LOG_DIR: each process's log (level info) in a file there, for a look at a finding.
    const logDir = process.env.TUNNELGATE_FUZZ_LOG_DIR
    const out = logDir === undefined ? 'ignore' : openSync(join(logDir, `${role}-${Date.now()}.log`), 'a')
    // NODE_OPTIONS: not a test runner's loader; the gateway runs as it does in production.
    const env = { ...process.env, NODE_OPTIONS: '', TUNNELGATE_LOG_LEVEL: logDir === undefined ? 'warn' : 'info' }
    const child = spawn(process.execPath, ['bin/tunnelgate.js', ...args], {
      cwd: ROOT,
      stdio: ['ignore', out, 'pipe'],
      env
    })
    if (typeof out === 'number') closeSync(out)
    const p: Proc = { role, child, stderr: '', stopping: false }
    child.stderr!.on('data', (d: Buffer) => { p.stderr = (p.stderr + d.toString()).slice(-STDERR_KEEP) })
    // 'close', not 'exit': the stack trace is in stderr by then.
    child.once('close', (code, signal) => {
      if (!p.stopping) {
        this.#crashed({
          role,
          pid: child.pid ?? 0,
          how: signal === null ? `exit code ${code}` : `signal ${signal}`,
          stderr: p.stderr,
          signature: crashSignature(p.stderr),
          atMs: Date.now()
        })
      }
    })
    this.#procs.push(p)
    return p
  }

  async #findWorkers (p: Proc, n: number): Promise<void> {
    const deadline = Date.now() + 20_000
    for (;;) {
      const pids = childrenOf(p.child.pid!, /worker\.js/)
      if (pids.length >= n) { this.#workers = pids.map((pid, i) => ({ role: `w${i}`, pid })); return }
      if (Date.now() > deadline) {
        throw new Error(`${this.layout}: ${n} relay workers did not start (found ${pids.length})`)
      }
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }

  #checkWorkers (): void {
    for (const w of this.#workers) {
      if (alive(w.pid)) continue
      const portal = this.#procs[0]!
      // Give the portal's stderr (the worker's is inherited) a moment to receive the stack trace.
      setTimeout(
        () =>
          this.#crashed({
            role: w.role,
            pid: w.pid,
            how: 'relay worker gone (the portal restarts it)',
            stderr: portal.stderr,
            signature: crashSignature(portal.stderr),
            atMs: Date.now()
          }),
        100
      )
      this.#workers = this.#workers.filter(x => x !== w)
    }
  }

  #crashed (c: Crash): void {
    if (this.#crash !== null) return
    this.#crash = c
    for (const cb of this.#onCrash) cb(c)
  }

  get crash (): Crash | null { return this.#crash }
  onCrash (cb: (c: Crash) => void): void { this.#onCrash.push(cb) }

  /** Every process to measure: the started ones and the relay workers. */
  processes (): Array<{ role: string, pid: number }> {
    return [
      ...this.#procs
        .filter(p => p.child.exitCode === null && p.child.pid !== undefined)
        .map(p => ({ role: p.role, pid: p.child.pid! })),
      ...this.#workers
    ]
  }

  async stop (): Promise<void> {
    if (this.#watch !== null) clearInterval(this.#watch)
    await Promise.all([...this.#procs].reverse().map(async p => {
      p.stopping = true
      if (p.child.exitCode !== null || p.child.signalCode !== null) return
      const gone = new Promise(resolve => p.child.once('exit', resolve))
      p.child.kill('SIGTERM')
      const kill = setTimeout(() => p.child.kill('SIGKILL'), 5000)
      await gone
      clearTimeout(kill)
    }))
    rmSync(this.#dir, { recursive: true, force: true })
  }
}
