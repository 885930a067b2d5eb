/**
 * CPU and memory of processes from /proc (Linux): utime+stime in clock ticks (USER_HZ = 100 on
 * Linux x86/arm), RSS in bytes, and the process tree below a pid (for a portal and its workers).
 */
import { readFileSync } from 'node:fs'

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
      for (const t of readFileSync(`/proc/${p}/task/${p}/children`, 'latin1').trim().split(/\s+/)) if (t !== '') out.push(Number(t))
    } catch { /* gone */ }
  }
  return out
}

export function sumCpu (pids: number[]): number { return pids.reduce((n, p) => n + cpuSeconds(p), 0) }
export function sumRss (pids: number[]): number { return pids.reduce((n, p) => n + rssBytes(p), 0) }
