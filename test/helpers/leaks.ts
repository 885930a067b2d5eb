/**
 * Leak checks for the hardening tests: open file descriptors (/proc/self/fd), active
 * timers and sockets (process.getActiveResourcesInfo()), the tunnels_active gauge and backend
 * connections return to their starting values after each test. assertNoLeaks checks a gateway
 * running in the test process, and there also every timer whether unref()'d or not (an async
 * hook: Node lists only the timers that hold the process open, and the gateway unrefs most of
 * its own, so a session timer left armed after its session closed, keeping the session in memory
 * until it fires, was invisible); assertNoChildLeaks one whose processes are children (the real
 * binary, relay workers), through GET /admin/process and /proc/<pid>/fd, every timer too when
 * those processes run with TUNNELGATE_TRACK_TIMERS=1.
 */
import { readdirSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import type { Gateway } from '../../src/gateway.js'
import type { ProcessInfo } from '../../src/ops/process-view.js'
import { armedTimers, trackTimersIfAsked } from '../../src/core/timer-census.js'
import type { ScriptedBackend } from './scripted-backend.js'

export interface LeakSnapshot {
  fds: number
  timers: number
  /** Timers armed in this process, unref()'d ones too (since this module was loaded). */
  allTimers: number
  sockets: number
  tunnels: number
}

// Count every timer of this process from now on (src/core/timer-census.ts): from when the test
// file loads, before any of its gateways starts.
trackTimersIfAsked({ TUNNELGATE_TRACK_TIMERS: '1' })

function resources (): { timers: number, sockets: number } {
  let timers = 0
  let sockets = 0
  for (const r of process.getActiveResourcesInfo()) {
    if (r === 'Timeout') timers++
    else if (r === 'TCPSocketWrap' || r === 'TCPWrap' || r === 'PipeWrap') sockets++
  }
  return { timers, sockets }
}

export async function leakSnapshot (gw: Gateway): Promise<LeakSnapshot> {
  const tunnels = (await gw.metrics.tunnelsActive.get()).values.reduce((n, v) => n + v.value, 0)
  // Node runs the destroy hooks of timers cleared or fired in this turn of the loop in its check
  // phase: let it pass, or a timer that has just fired (this module's own poll) still counts.
  await new Promise(resolve => setImmediate(resolve))
  return { fds: readdirSync('/proc/self/fd').length, ...resources(), allTimers: armedTimers() ?? 0, tunnels }
}

/**
 * Wait (up to `timeoutMs`: close paths keep 1-2 s destroy timers) until fds, timers (ref'd and
 * all), sockets and the tunnels gauge are back to `before` and every backend connection is closed; otherwise throw
 * with the difference.
 */
export async function assertNoLeaks (
  gw: Gateway,
  before: LeakSnapshot,
  backends: ScriptedBackend[] = [],
  timeoutMs = 6000
): Promise<LeakSnapshot> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const now = await leakSnapshot(gw)
    const open = backends.reduce((n, b) => n + b.conns.filter(c => !c.closed).length, 0)
    if (
      now.fds <= before.fds &&
      now.timers <= before.timers &&
      now.allTimers <= before.allTimers &&
      now.sockets <= before.sockets &&
      now.tunnels === before.tunnels &&
      open === 0
    ) { return now }
    if (Date.now() > deadline) {
      throw new Error(
        `leak: before ${JSON.stringify(before)} after ${JSON.stringify(now)} backend connections open=${open}`
      )
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

// ---------------------------------------------------------------- gateways in child processes

/**
 * A gateway whose processes are not this one (`node bin/tunnelgate.js` spawned by the test, or the
 * relay worker processes of a `workers: N` gateway): its admin API (`GET /admin/process`) reports
 * each process's descriptors and handles, `/proc/<pid>/fd` is read from here, and the tunnels
 * gauge comes from its `/metrics` (both on the ops listener).
 */
export interface ChildGateway {
  /** The ops listener: /admin/process and /metrics. */
  opsPort: number
  token?: string
  /** Which processes to check (default all: `portal`, `w0`, `w1`, …). */
  include?: (id: string) => boolean
}

export interface ProcessLeakFigures {
  id: string
  pid: number
  /** Descriptors the process counts in /proc/self/fd. */
  fds: number
  /** Entries of /proc/<pid>/fd as read from the test process (-1 when unreadable). */
  procFds: number
  timers: number
  /** Every armed timer, unref()'d ones too: only from a process run with TUNNELGATE_TRACK_TIMERS=1. */
  allTimers?: number
  sockets: number
}

export interface ChildLeakSnapshot {
  processes: ProcessLeakFigures[]
  tunnels: number
}

/** A GET on a connection of its own (Connection: close): no keep-alive socket left in the gateway. */
function getClose (port: number, path: string, token?: string): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        headers: { connection: 'close', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) }
      },
      res => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', d => {
          body += d
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        res.on('error', reject)
      }
    )
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${path}: no answer in 5 s`)))
    req.on('error', reject)
    req.end()
  })
}

function procFds (pid: number): number {
  try { return readdirSync(`/proc/${pid}/fd`).length } catch { return -1 }
}

export async function childLeakSnapshot (gw: ChildGateway): Promise<ChildLeakSnapshot> {
  const r = await getClose(gw.opsPort, '/admin/process', gw.token)
  if (r.status !== 200) throw new Error(`GET /admin/process answered ${r.status}: ${r.body.slice(0, 300)}`)
  const list = (JSON.parse(r.body) as { processes: ProcessInfo[] }).processes
  const processes: ProcessLeakFigures[] = []
  for (const p of list) {
    if (gw.include !== undefined && !gw.include(p.id)) continue
    if (!p.up || p.pid === undefined || p.handles === undefined) {
      throw new Error(`process ${p.id} is not up: ${JSON.stringify(p)}`)
    }
    processes.push({
      id: p.id,
      pid: p.pid,
      fds: p.fds ?? -1,
      procFds: procFds(p.pid),
      timers: p.handles.timers,
      ...(p.handles.allTimers === undefined ? {} : { allTimers: p.handles.allTimers }),
      sockets: p.handles.tcp + p.handles.pipes
    })
  }
  const m = await getClose(gw.opsPort, '/metrics', gw.token)
  let tunnels = 0
  for (const line of m.body.split('\n')) {
    if (/^tunnelgate_tunnels_active(\{| )/.test(line)) tunnels += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return { processes, tunnels }
}

function childDiff (before: ChildLeakSnapshot, now: ChildLeakSnapshot): string[] {
  const out: string[] = []
  if (now.tunnels !== before.tunnels) out.push(`tunnelgate_tunnels_active ${before.tunnels} -> ${now.tunnels}`)
  for (const b of before.processes) {
    const n = now.processes.find(p => p.id === b.id)
    if (n === undefined) { out.push(`${b.id}: gone`); continue }
    if (n.pid !== b.pid) { out.push(`${b.id}: pid ${b.pid} -> ${n.pid} (restarted)`); continue }
    for (const k of ['fds', 'procFds', 'timers', 'sockets'] as const) {
      if (n[k] > b[k]) out.push(`${b.id} (pid ${b.pid}): ${k} ${b[k]} -> ${n[k]}`)
    }
    if (b.allTimers !== undefined && n.allTimers !== undefined && n.allTimers > b.allTimers) {
      out.push(`${b.id} (pid ${b.pid}): allTimers ${b.allTimers} -> ${n.allTimers}`)
    }
  }
  for (const n of now.processes) if (!before.processes.some(b => b.id === n.id)) out.push(`${n.id}: new process`)
  return out
}

/**
 * Wait (up to `timeoutMs`, the settle time assertNoLeaks allows) until every process's descriptors
 * (its own count and /proc/<pid>/fd), timers and sockets are back to `before`, the same processes
 * run, and the tunnels gauge is back; otherwise throw with the difference.
 */
export async function assertNoChildLeaks (
  gw: ChildGateway,
  before: ChildLeakSnapshot,
  timeoutMs = 6000
): Promise<ChildLeakSnapshot> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const now = await childLeakSnapshot(gw)
    const diff = childDiff(before, now)
    if (diff.length === 0) return now
    if (Date.now() > deadline) {
      throw new Error(
        `leak after ${timeoutMs} ms: ${diff.join('; ')}\nbefore ${JSON.stringify(before)}\nafter ${JSON.stringify(now)}`
      )
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
