/**
 * Worker scaling with each relay worker capped (the bench's last target): does a second relay
 * worker carry as much again as the first?
 *
 * On this machine the uncapped sweep cannot say: the source and the load generator need about
 * as much CPU per delivered Gbit as the box, so b1 runs out of MACHINE before its one worker is
 * busy, and b2's ratio over b1 measures the cores left over (report.ts workerScaling). Here each
 * relay worker of b1 and b2 is put in a cgroup of its own with a CPU quota of `workerCores` of a
 * core (cpu-cap.ts): a worker then saturates at a load the machine carries with cores to spare,
 * so the held load of each layout is what its workers can carry — one capped worker against
 * two. The portal is not capped (it hands each leg's socket to a worker and is then out of the
 * data path); every window records where the machine's CPU went, so a step where the machine
 * rather than the workers ran out shows as such (no idle left, workers below their quota).
 *
 * The held load is found by search rather than a fixed sweep, so the ratio is not set by the step
 * grid: the tunnel count grows by `growth` until a step is not held (lost or late packets, a
 * failed tunnel or < 97 % delivered; measured twice), then is bisected between the last step held
 * and the first not held until they are within `precision` of each other.
 *
 * Each layout is searched `passes` times, in the order b1 b2 b2 b1 (b1 b2 b2 b1 b1 b2 … for more),
 * each pass on a box started afresh; a layout's held load is the mean of its passes. The shared
 * machine's speed drifts over minutes (another tenant's work): a single b1-then-b2 order puts all of
 * a drift into the ratio, the mirrored order cancels a steady one and averages the rest.
 */
import { cpus, release } from 'node:os'
import { readFileSync } from 'node:fs'
import { capCpu, cpuHierarchy, removeEmptyCaps, type CpuCap } from './cpu-cap.js'
import { type BenchTunnel } from './load.js'
import { startScenario, startSource, SCENARIOS, type Running } from './scenarios.js'
import { closeAll, Ctx, measureUndisturbed, openMany, sleep, stepLine, type StepResult } from './window.js'
import type { BenchOptions } from './options.js'

export interface CappedStep extends StepResult {
  /** CPU-s per second of each relay worker over the window (its cap is the result's workerCores). */
  workerCores: number[]
  /** Time each worker was held back by its quota during the window (ms). */
  throttledMs: number[]
  /**
   * Tunnels each relay worker held at the end of the window, as the gateway's /status/summary says
   * (w0, w1, …: cookies are hashed to workers, so the split is not exactly even); empty when it did
   * not answer.
   */
  workerTunnels: number[]
}

export interface CappedLayout {
  id: 'b1' | 'b2'
  name: string
  workers: number
  /** Which search of this layout (1, 2, …; absent in results from before there were several: 1). */
  pass?: number
  /** Every window, in the order measured (the search goes up, then bisects). */
  steps: CappedStep[]
  /** The most tunnels held, and what they delivered (0 when none was held). */
  heldTunnels: number
  heldMbps: number
  /** The fewest tunnels not held (null when the search never found the limit). */
  failedTunnels: number | null
  error?: string
}

export interface CappedScalingOptions {
  workerCores: number
  startTunnels: number
  growth: number
  precision: number
  maxSteps: number
  maxTunnels: number
  /** Searches per layout, in mirrored order (b1 b2 b2 b1 …); absent in older results: 1. */
  passes?: number
  kbps: number
  stepSeconds: number
  warmSeconds: number
  /** A packet later than this (ms) is late. */
  lateMs: number
}

export interface CappedScalingResult {
  date: string
  profile: string
  durationSeconds: number
  machine: { nproc: number, cpu: string, kernel: string, loadavg: string }
  options: CappedScalingOptions
  /** The cgroup hierarchy used ('v1' / 'v2'); null when the run could not cap (see skipped). */
  cgroup: 'v1' | 'v2' | null
  layouts: CappedLayout[]
  /** Why nothing was measured (no cgroup cpu controller, not root). */
  skipped?: string
}

/** The next tunnel count to try, or null when the limit is found (held `lo`, not held `hi`). */
export function nextCount (
  lo: number, hi: number | null, o: Pick<CappedScalingOptions, 'growth' | 'precision' | 'maxTunnels'>
): number | null {
  if (hi === null) {
    if (lo >= o.maxTunnels) return null
    return Math.min(o.maxTunnels, Math.max(lo + 1, Math.ceil(lo * o.growth)))
  }
  if (hi - lo <= Math.max(1, Math.ceil(lo * o.precision))) return null
  return Math.floor((lo + hi) / 2)
}

/** Keep `n` live tunnels in `list`: drop the ones the box closed, close the surplus, open the rest. */
async function hold (box: Running, ctx: Ctx, list: BenchTunnel[], n: number, kbps: number): Promise<void> {
  const live = list.filter(t => !t.closed)
  list.length = 0
  list.push(...live)
  if (list.length > n) closeAll(list.splice(n))
  else await openMany(box, ctx, list, n, kbps)
}

/** The order of the searches: b1 b2, then mirrored (b2 b1), and so on, `passes` of each layout. */
export function passOrder (passes: number): Array<{ id: 'b1' | 'b2', pass: number }> {
  const out: Array<{ id: 'b1' | 'b2', pass: number }> = []
  for (let p = 1; p <= Math.max(1, passes); p++) {
    const pair = p % 2 === 1 ? (['b1', 'b2'] as const) : (['b2', 'b1'] as const)
    for (const id of pair) out.push({ id, pass: p })
  }
  return out
}

async function searchLayout (
  id: 'b1' | 'b2', pass: number, sourcePort: number, ctx: Ctx, so: CappedScalingOptions
): Promise<CappedLayout> {
  const o = ctx.o
  const workers = id === 'b1' ? 1 : 2
  const r: CappedLayout = {
    id, name: SCENARIOS[id], workers, pass, steps: [], heldTunnels: 0, heldMbps: 0, failedTunnels: null
  }
  o.log(`  ${id} capped, pass ${pass}`)
  const box = await startScenario(id, sourcePort)
  const caps: CpuCap[] = []
  const list: BenchTunnel[] = []
  try {
    await sleep(o.settleMs / 3)
    const workerPids = box.pids().slice(1)
    if (workerPids.length !== workers) {
      throw new Error(`expected ${workers} relay worker processes, found ${workerPids.length}`)
    }
    workerPids.forEach(
      (pid, i) => caps.push(capCpu(pid, so.workerCores, `${CAP_PREFIX}${process.pid}-${id}-w${i + 1}`))
    )
    let lo = 0
    let hi: number | null = null
    let n: number | null = so.startTunnels
    while (n !== null && r.steps.length < so.maxSteps) {
      const wentDown = list.length > n
      await hold(box, ctx, list, n, so.kbps)
      // Coming down from a step not held, the workers first work off what they had queued.
      await sleep(so.warmSeconds * 1000 * (wentDown ? 2 : 1))
      let s = await cappedWindow(box, ctx, caps, n, so)
      if (!s.held && list.filter(t => !t.closed).length >= n) {
        o.log(stepLine(`${id} capped`, s) + ' (measuring again)')
        await hold(box, ctx, list, n, so.kbps)
        await sleep(so.warmSeconds * 1000)
        s = await cappedWindow(box, ctx, caps, n, so)
      }
      if (list.length < n) s.held = false
      r.steps.push(s)
      o.log(stepLine(`${id} capped`, s) +
        `; workers ${s.workerCores.map(c => c.toFixed(2)).join(' + ')} cores of ${so.workerCores} each, ` +
        `throttled ${s.throttledMs.map(x => x.toFixed(0)).join(' + ')} ms`)
      if (s.held) { lo = n; r.heldTunnels = n; r.heldMbps = s.deliveredMbps } else hi = n
      n = nextCount(lo, hi, so)
    }
    r.failedTunnels = hi
  } catch (err) {
    r.error = (err as Error).message
    o.log(`  ${id} capped: failed: ${r.error}`)
  } finally {
    closeAll(list)
    for (const c of caps) c.release()
    await box.stop()
  }
  return r
}

async function cappedWindow (
  box: Running, ctx: Ctx, caps: CpuCap[], n: number, so: CappedScalingOptions
): Promise<CappedStep> {
  const t0 = caps.map(c => c.throttled().ms)
  const s = await measureUndisturbed(box, ctx, `${box.id} capped`, n, so.stepSeconds)
  // cpuProcs: the portal first, then the workers in the order of box.pids() (as the caps).
  const workerCores = s.cpuProcs.slice(1).map(x => x / s.seconds)
  return {
    ...s,
    workerCores,
    throttledMs: caps.map((c, i) => c.throttled().ms - t0[i]!),
    workerTunnels: box.opsPort === undefined ? [] : await workerTunnels(box.opsPort)
  }
}

/** Tunnels per relay worker from the gateway's /status/summary on its ops listener (sorted by worker name), or [] . */
export async function workerTunnels (opsPort: number): Promise<number[]> {
  try {
    const res = await fetch(`http://127.0.0.1:${opsPort}/status/summary`, { signal: AbortSignal.timeout(2000) })
    const body = await res.json() as { relays?: Array<{ relay?: unknown, tunnels?: unknown }> }
    return (body.relays ?? [])
      .filter(
        (r): r is { relay: string, tunnels: number } => typeof r.relay === 'string' && typeof r.tunnels === 'number'
      )
      .sort((a, b) => a.relay.localeCompare(b.relay))
      .map(r => r.tunnels)
  } catch { return [] }
}

/** The name of every cgroup this run makes starts so (a later run removes those left empty). */
const CAP_PREFIX = 'tunnelgate-bench-'

export function cappedOptions (o: BenchOptions): CappedScalingOptions {
  return {
    workerCores: o.capWorkerCores,
    startTunnels: o.capStartTunnels,
    growth: o.capGrowth,
    precision: o.capPrecision,
    maxSteps: o.capMaxSteps,
    maxTunnels: o.capMaxTunnels,
    passes: o.capPasses,
    kbps: o.kbps,
    stepSeconds: o.stepSeconds,
    warmSeconds: o.warmSeconds,
    lateMs: o.lateMs
  }
}

/** b1 and b2 with every relay worker capped at `workerCores`, each searched `passes` times for its held load. */
export async function runCappedScaling (o: BenchOptions): Promise<CappedScalingResult> {
  const started = performance.now()
  const so = cappedOptions(o)
  let loadavg = ''
  try { loadavg = readFileSync('/proc/loadavg', 'utf8').trim() } catch {}
  const result: CappedScalingResult = {
    date: new Date().toISOString(),
    profile: o.profile,
    durationSeconds: 0,
    machine: { nproc: cpus().length, cpu: cpus()[0]?.model.trim() ?? 'unknown', kernel: release(), loadavg },
    options: so,
    cgroup: null,
    layouts: []
  }
  const h = cpuHierarchy()
  if (h === null) {
    result.skipped = 'no cgroup cpu controller on this machine (neither cgroup v2 cpu.max nor v1 cpu.cfs_quota_us)'
  } else if (process.getuid?.() !== 0) result.skipped = 'capping a process\'s CPU with a cgroup needs root'
  if (result.skipped !== undefined) {
    o.log(`capped worker scaling: skipped: ${result.skipped}`)
    result.durationSeconds = (performance.now() - started) / 1000
    return result
  }
  result.cgroup = h!.kind
  removeEmptyCaps(CAP_PREFIX, h)
  const order = passOrder(so.passes ?? 1)
  o.log(`capped worker scaling: each relay worker capped at ${so.workerCores} of a core (cgroup ${h!.kind}), b1 ` +
    `against b2, searched in the order ${order.map(x => x.id).join(' ')}`)
  const ctx = new Ctx(o)
  const source = await startSource(o.tickMs, o.phases)
  ctx.sourcePid = source.pid
  ctx.sourcePort = source.port
  try {
    for (const { id, pass } of order) {
      result.layouts.push(await searchLayout(id, pass, source.port, ctx, so))
      await sleep(o.settleMs)
    }
  } finally { await source.stop() }
  result.durationSeconds = (performance.now() - started) / 1000
  return result
}
