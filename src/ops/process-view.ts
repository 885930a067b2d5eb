/**
 * What one process of the gateway holds (GET /admin/process): open file descriptors, active
 * handles by type (process.getActiveResourcesInfo()), memory. Asked of the portal process and,
 * over IPC (worker-ops.ts), of each local relay worker, so an operator (and the leak checks of
 * the tests, test/helpers/leaks.ts) can see descriptors, sockets or timers that grow and never
 * come back.
 */
import { readdirSync } from 'node:fs'
import { armedTimers } from '../core/timer-census.js'

export interface HandleCounts {
  /** setTimeout / setInterval timers (`Timeout`) that keep the process alive: Node does not list unref()'d ones. */
  timers: number
  /** TCP sockets and listeners (`TCPSocketWrap`, `TCPServerWrap`, `TCPWrap`, `TCPConnectWrap`). */
  tcp: number
  /** Pipes: IPC channels to and from workers, stdio pipes (`PipeWrap`, `PipeServerWrap`, `PipeConnectWrap`). */
  pipes: number
  /** Everything else (UDP, FS requests, DNS look-ups, immediates, …). */
  other: number
  /** Every type as Node names it, with its count. */
  byType: Record<string, number>
  /**
   * Every armed timer, unref()'d ones too (created since the process started counting): only with
   * TUNNELGATE_TRACK_TIMERS=1 (timer-census.ts).
   */
  allTimers?: number
}

export interface ProcessInfo {
  /** `portal` (the main process; it also relays when `workers: 0`) or the worker's relay id `w0`, `w1`, … */
  id: string
  kind: 'portal' | 'worker'
  /** False for a worker slot with no live process (restarting); then the figures are absent. */
  up: boolean
  pid?: number
  /** Open file descriptors (entries of /proc/self/fd, not counting the one opened to list them); null off Linux. */
  fds?: number | null
  handles?: HandleCounts
  rssBytes?: number
  heapUsedBytes?: number
  uptimeMs?: number
}

const TCP = new Set(['TCPSocketWrap', 'TCPServerWrap', 'TCPWrap', 'TCPConnectWrap'])
const PIPES = new Set(['PipeWrap', 'PipeServerWrap', 'PipeConnectWrap'])

/** Group Node's active resource names into timers, TCP, pipes and other. */
export function countHandles (types: readonly string[]): HandleCounts {
  const out: HandleCounts = { timers: 0, tcp: 0, pipes: 0, other: 0, byType: {} }
  for (const t of types) {
    out.byType[t] = (out.byType[t] ?? 0) + 1
    if (t === 'Timeout') out.timers++
    else if (TCP.has(t)) out.tcp++
    else if (PIPES.has(t)) out.pipes++
    else out.other++
  }
  return out
}

/** Open descriptors of this process, or null where /proc/self/fd does not exist. */
export function openFds (): number | null {
  try {
    // readdirSync opens one descriptor on the directory while it lists it: not ours to count.
    return readdirSync('/proc/self/fd').length - 1
  } catch { return null }
}

/** This process's figures. */
export function processInfo (id: string, kind: ProcessInfo['kind']): ProcessInfo {
  const mem = process.memoryUsage()
  const handles = countHandles(process.getActiveResourcesInfo())
  const allTimers = armedTimers()
  if (allTimers !== null) handles.allTimers = allTimers
  return {
    id,
    kind,
    up: true,
    pid: process.pid,
    fds: openFds(),
    handles,
    rssBytes: mem.rss,
    heapUsedBytes: mem.heapUsed,
    uptimeMs: Math.round(process.uptime() * 1000)
  }
}
