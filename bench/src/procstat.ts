/**
 * CPU and memory of processes from /proc (Linux): utime+stime in clock ticks (USER_HZ = 100 on
 * Linux x86/arm), RSS in bytes, and the process tree below a pid (for a portal and its workers).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { setPriority } from 'node:os'
import { join } from 'node:path'

const CLK_TCK = 100
const PAGE = 4096

/** CPU seconds (user + system) used so far by `pid`, or 0 when it is gone. */
export function cpuSeconds (pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1')
    // Fields after the command name "(...)": state is field 3; utime 14, stime 15.
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK
  } catch { return 0 }
}

/** Does this kernel keep per-thread run times (this process has run, so its own is above 0)? */
const SCHEDSTAT = ((): boolean => {
  try { return Number(readFileSync('/proc/self/schedstat', 'latin1').split(' ')[0]) > 0 } catch { return false }
})()

/**
 * CPU seconds used so far by every live thread of `pid`, from the scheduler's run time in
 * nanoseconds (/proc/PID/task/TID/schedstat), for windows too short for clock ticks (a burst of
 * setups takes tens of ms, a tick is 10). Falls back to cpuSeconds where the kernel gives no
 * schedstat; 0 when the process is gone. A thread that exits takes its time with it: use deltas
 * over threads that live through the window (Node's, HAProxy's and GStreamer's do).
 */
export function threadCpuSeconds (pid: number): number {
  if (!SCHEDSTAT) return cpuSeconds(pid)
  let ns = 0
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0])
      } catch { /* thread gone */ }
    }
  } catch { return 0 }
  return ns / 1e9
}

/** Resident set size of `pid` in bytes (0 when gone). */
export function rssBytes (pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ')
    return Number(s[1]) * PAGE
  } catch { return 0 }
}

/** `pid` and every descendant. */
export function processTree (pid: number): number[] {
  const out = [pid]
  for (let i = 0; i < out.length; i++) {
    try {
      const p = out[i]!
      for (const t of readFileSync(`/proc/${p}/task/${p}/children`, 'latin1').trim().split(/\s+/)) {
        if (t !== '') out.push(Number(t))
      }
    } catch { /* gone */ }
  }
  return out
}

export function sumCpu (pids: number[]): number { return pids.reduce((n, p) => n + cpuSeconds(p), 0) }
export function sumRss (pids: number[]): number { return pids.reduce((n, p) => n + rssBytes(p), 0) }

/**
 * Whole-machine CPU time from /proc/stat (s, summed over all CPUs): busy (user, nice, system,
 * irq, softirq), idle (idle, iowait) and steal (taken by the hypervisor). The bench subtracts what
 * its own processes used from `busy` to see what else ran during a window.
 */
export function machineCpu (): { busy: number, idle: number, steal: number } {
  try {
    const f = readFileSync('/proc/stat', 'latin1').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f
    return {
      busy: (user + nice + system + irq + softirq) / CLK_TCK, idle: (idle + iowait) / CLK_TCK, steal: steal / CLK_TCK
    }
  } catch { return { busy: 0, idle: 0, steal: 0 } }
}

export interface MemorySnapshot {
  /** RSS of every process (bytes), read after the forced GC when there was one. */
  rss: number
  /**
   * V8 heap used + external (incl. ArrayBuffers, i.e. socket buffers held by JS) summed over the hooked processes; null
   * when a process is not hooked.
   */
  heap: number | null
  /** Did every process run a full GC before the figures were read? */
  gc: boolean
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

function readGcReport (dir: string, pid: number): {
  seq: number
  gc: boolean
  heapUsed: number
  external: number
} | null {
  const file = join(dir, `gc-${pid}.json`)
  if (!existsSync(file)) return null
  try { return JSON.parse(readFileSync(file, 'utf8')) } catch { return null }
}

/**
 * Memory of a middle box's processes. Processes preloaded with gc-hook.ts (they announce
 * themselves with a report in `gcDir`) are sent SIGUSR2, run two full GCs and report their heap;
 * the RSS of all is read once they have (or after `timeoutMs`). Processes that never announced
 * themselves (HAProxy) are not signalled: SIGUSR2 would kill them.
 */
export async function memorySnapshot (
  pids: number[], gcDir: string | undefined, timeoutMs = 10_000
): Promise<MemorySnapshot> {
  const asked = new Map<number, number>()
  if (gcDir !== undefined) {
    for (const pid of pids) {
      const r = readGcReport(gcDir, pid)
      if (r === null) continue
      try { process.kill(pid, 'SIGUSR2'); asked.set(pid, r.seq) } catch { /* gone */ }
    }
  }
  const deadline = Date.now() + timeoutMs
  let heap: number | null = asked.size === pids.length && pids.length > 0 ? 0 : null
  let gc = asked.size === pids.length && pids.length > 0
  for (const [pid, seq] of asked) {
    let r = readGcReport(gcDir!, pid)
    while ((r === null || r.seq <= seq) && Date.now() < deadline) { await sleep(20); r = readGcReport(gcDir!, pid) }
    if (r === null || r.seq <= seq) { heap = null; gc = false; continue }
    if (!r.gc) gc = false
    if (heap !== null) heap += r.heapUsed + r.external
  }
  return { rss: sumRss(pids), heap, gc }
}

export interface GcStats {
  /** Per hooked process: collections and their total pause so far (ms), recent pauses ≥ 1 ms as [end epoch ms, ms]. */
  procs: Map<number, { count: number, totalMs: number, pauses: Array<[number, number]> }>
}

/**
 * GC pause counters of a box's hooked Node processes (gc-hook.ts), asked with SIGURG (ignored
 * by default, so a process without the hook is unaffected) and read once each has answered (or
 * after `timeoutMs`); null without a gc directory or a hooked process.
 */
export async function gcStats (pids: number[], gcDir: string | undefined, timeoutMs = 1000): Promise<GcStats | null> {
  if (gcDir === undefined) return null
  const read = (pid: number): {
    seq: number
    count: number
    totalMs: number
    pauses: Array<[number, number]>
  } | null => {
    const file = join(gcDir, `gcstats-${pid}.json`)
    if (!existsSync(file)) return null
    try { return JSON.parse(readFileSync(file, 'utf8')) } catch { return null }
  }
  const asked = new Map<number, number>()
  for (const pid of pids) {
    if (readGcReport(gcDir, pid) === null) continue // not hooked (or not yet)
    const seq = read(pid)?.seq ?? 0 // before the signal: the answer can be written before kill() returns
    try { process.kill(pid, 'SIGURG'); asked.set(pid, seq) } catch { /* gone */ }
  }
  if (asked.size === 0) return null
  const deadline = Date.now() + timeoutMs
  const procs: GcStats['procs'] = new Map()
  for (const [pid, seq] of asked) {
    let r = read(pid)
    while ((r === null || r.seq <= seq) && Date.now() < deadline) { await sleep(5); r = read(pid) }
    if (r !== null && r.seq > seq) procs.set(pid, { count: r.count, totalMs: r.totalMs, pauses: r.pauses })
  }
  return { procs }
}

/**
 * GC in the box between two gcStats readings: collections, total pause (ms), longest pause ending in [fromMs, toMs]
 * (epoch ms).
 */
export function gcBetween (
  a: GcStats | null, b: GcStats | null, fromMs: number, toMs: number
): { count: number, totalMs: number, maxMs: number } | null {
  if (a === null || b === null) return null
  let count = 0
  let totalMs = 0
  let maxMs = 0
  if (a.procs.size === 0 || a.procs.size !== b.procs.size) {
    return null
  } // a process did not answer: no figure rather than a partial one
  for (const [pid, y] of b.procs) {
    const x = a.procs.get(pid)
    if (x === undefined) return null
    count += y.count - x.count
    totalMs += y.totalMs - x.totalMs
    for (const [end, ms] of y.pauses) if (end >= fromMs && end <= toMs && ms > maxMs) maxMs = ms
  }
  return { count, totalMs, maxMs }
}

/**
 * Set the scheduling priority (nice) of every thread of `pids` (Linux nice is per thread; threads
 * started later inherit their creator's). False when not permitted (a nice below 0 needs root or
 * CAP_SYS_NICE) or a process is gone.
 */
export function setThreadsNice (pids: number[], nice: number): boolean {
  try {
    for (const p of pids) for (const tid of readdirSync(`/proc/${p}/task`)) setPriority(Number(tid), nice)
    return true
  } catch { return false }
}
