/**
 * A CPU cap for one process (all its threads): a cgroup of its own with a CFS bandwidth quota,
 * so the process gets at most `cores` of a core however idle the machine is. The capped worker
 * scaling run (capped-scaling.ts) puts each relay worker under one, so the workers, not the
 * machine that also runs the source and the load generator, are what runs out.
 *
 * cgroup v2 (a unified hierarchy with the cpu controller: `cpu.max`) or v1 (the cpu controller's
 * own hierarchy: `cpu.cfs_quota_us` / `cpu.cfs_period_us`); needs root. Linux only.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface CpuCap {
  pid: number
  cores: number
  /** The cgroup directory. */
  dir: string
  /** Periods in which the process ran out of its quota, and the time it was held back (ms), so far. */
  throttled (): { periods: number, ms: number }
  /** Moves the process back to the root group and removes the cgroup (also when it is gone). */
  release (): void
}

/** The CFS period: short, so a capped process is held back at most this long at a time. */
export const CAP_PERIOD_US = 10_000

interface Hierarchy { kind: 'v1' | 'v2', root: string }

/** Where a cpu controller can be used here (v2 with `cpu` enabled for children, else v1), or null. */
export function cpuHierarchy (base = '/sys/fs/cgroup'): Hierarchy | null {
  const v2 = join(base, 'cgroup.controllers')
  if (existsSync(v2) && readFileSync(v2, 'utf8').split(/\s+/).includes('cpu')) return { kind: 'v2', root: base }
  const v1 = join(base, 'cpu')
  if (existsSync(join(v1, 'cpu.cfs_quota_us'))) return { kind: 'v1', root: v1 }
  return null
}

/** The quota in µs per CAP_PERIOD_US for `cores` of a core (at least 1 ms, as the kernel requires). */
export function quotaUs (cores: number): number { return Math.max(1000, Math.round(cores * CAP_PERIOD_US)) }

function throttledStat (file: string, kind: Hierarchy['kind']): { periods: number, ms: number } {
  try {
    const kv = new Map(readFileSync(file, 'utf8').trim().split('\n').map(l => {
      const [k, v] = l.split(' ')
      return [k!, Number(v)] as const
    }))
    // v1 reports throttled_time in ns, v2 throttled_usec in µs.
    return {
      periods: kv.get('nr_throttled') ?? 0,
      ms: kind === 'v1' ? (kv.get('throttled_time') ?? 0) / 1e6 : (kv.get('throttled_usec') ?? 0) / 1e3
    }
  } catch { return { periods: 0, ms: 0 } }
}

/**
 * Cap `pid` at `cores` of a core. Throws with the reason when it cannot (no cpu controller, not
 * root, the process gone).
 */
export function capCpu (pid: number, cores: number, name: string, h: Hierarchy | null = cpuHierarchy()): CpuCap {
  if (h === null) throw new Error('no cgroup cpu controller (neither cgroup v2 cpu.max nor v1 cpu.cfs_quota_us)')
  if (!(cores > 0)) throw new Error(`a CPU cap must be above 0 cores (got ${cores})`)
  if (h.kind === 'v2') {
    // Children of the root can only use controllers enabled in its subtree_control.
    const ctl = join(h.root, 'cgroup.subtree_control')
    if (!readFileSync(ctl, 'utf8').split(/\s+/).includes('cpu')) writeFileSync(ctl, '+cpu')
  }
  const dir = join(h.root, name)
  mkdirSync(dir, { recursive: true })
  try {
    if (h.kind === 'v2') writeFileSync(join(dir, 'cpu.max'), `${quotaUs(cores)} ${CAP_PERIOD_US}`)
    else {
      writeFileSync(join(dir, 'cpu.cfs_period_us'), String(CAP_PERIOD_US))
      writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quotaUs(cores)))
    }
    writeFileSync(join(dir, 'cgroup.procs'), String(pid))
  } catch (err) {
    try { rmdirSync(dir) } catch {}
    throw new Error(`cannot cap pid ${pid} at ${cores} cores in ${dir}: ${(err as Error).message}`)
  }
  const stat = join(dir, 'cpu.stat')
  return {
    pid,
    cores,
    dir,
    throttled: () => throttledStat(stat, h.kind),
    release: () => {
      try { writeFileSync(join(h.root, 'cgroup.procs'), String(pid)) } catch { /* gone */ }
      try { rmdirSync(dir) } catch { /* still busy or gone */ }
    }
  }
}

/**
 * Remove the cgroups named `prefix…` that no process is in any more (left by a run that was
 * killed before it could release its caps). Returns how many were removed.
 */
export function removeEmptyCaps (prefix: string, h: Hierarchy | null = cpuHierarchy()): number {
  if (h === null) return 0
  let n = 0
  for (const name of readdirSync(h.root)) {
    if (!name.startsWith(prefix)) continue
    try {
      if (readFileSync(join(h.root, name, 'cgroup.procs'), 'utf8').trim() !== '') continue
      rmdirSync(join(h.root, name))
      n++
    } catch { /* not ours to remove, or busy */ }
  }
  return n
}
