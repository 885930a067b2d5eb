/**
 * Measurement windows shared by the bench's phases (run.ts) and the capped worker-scaling run
 * (capped-scaling.ts): the load generator's context, opening and closing tunnels, and one window's
 * figures — delivered bits, lost and late packets, one-way delays, the CPU of the box, the source,
 * the load generator and the whole machine, and the box's GC pauses.
 */
import { cpus } from 'node:os'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { cpuSeconds, gcBetween, gcStats, machineCpu, sumRss } from './procstat.js'
import { BenchTunnel, delayPercentiles, newStats, resetCounters, pool, type LoadStats } from './load.js'
import type { Running } from './scenarios.js'
import type { BenchOptions } from './options.js'

export interface StepResult {
  tunnels: number
  kbps: number
  seconds: number
  offeredMbps: number
  deliveredMbps: number
  packets: number
  lost: number
  late: number
  errors: number
  held: boolean
  cpuBox: number
  /** CPU-s of each middle-box process over the window (tunnelgate: portal first, then its workers). */
  cpuProcs: number[]
  cpuPerGbit: number | null
  cpuSource: number
  cpuClient: number
  /** CPU-s the whole machine was busy over the window (all CPUs, /proc/stat), and stolen by the hypervisor. */
  cpuMachine: number
  cpuSteal: number
  /** CPUs of the machine (the window's capacity is cores × seconds). */
  cores: number
  /**
   * GC in the box's Node processes during the window (collections, total and longest pause ms); null for HAProxy,
   * direct, or when not read.
   */
  gc: { count: number, totalMs: number, maxMs: number } | null
  /** Other processes used more than otherCpuMax of the machine in this window (after the retries). */
  disturbed: boolean
  boxRssMB: number
  delayMs: Percentiles
  /** Delay phase: the direct probe tunnels' delays in the same window (BenchOptions.delayProbes); absent elsewhere. */
  probeDelayMs?: Percentiles
  /** Lost + late packets of the probe tunnels in that window (a window where they have any says nothing of the box). */
  probeLate?: number
  /**
   * The load generator's own event-loop stalls over the window (ms beyond a 1 ms timer, p99 and
   * longest; perf_hooks.monitorEventLoopDelay): a stall delays every tunnel's packets alike,
   * the box's and the direct probes'. Absent in results from before it was recorded.
   */
  clientStallMs?: { p99: number, max: number }
}

export interface Percentiles { n: number, p50: number, p99: number, p999: number }

/** p99 one-way delay of a window over that of the direct probes measured in it (null without probes). */
export function inWindow (s: StepResult): number | null {
  return s.probeDelayMs === undefined || s.probeDelayMs.n === 0 || s.delayMs.n === 0
    ? null
    : s.delayMs.p99 - s.probeDelayMs.p99
}

export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

export function withTimeout<T> (p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([p, new Promise<T>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), ms)
  })]).finally(() => clearTimeout(timer))
}

export class Ctx {
  readonly o: BenchOptions
  readonly stats: LoadStats
  /** The delay phase's direct probe tunnels (measure() records them while `probing`). */
  readonly probeStats: LoadStats
  probing = false
  sourcePid = 0
  sourcePort = 0
  nofile = 1024
  readonly openErrors = new Map<string, number>()
  constructor (o: BenchOptions) { this.o = o; this.stats = newStats(o.lateMs); this.probeStats = newStats(o.lateMs) }
}

export async function openMany (
  box: Running, ctx: Ctx, list: BenchTunnel[], n: number, kbps: number, opts: { play?: boolean } = {}, concurrency = 64,
  deadline = Infinity, stats = ctx.stats
): Promise<void> {
  const fresh: BenchTunnel[] = []
  for (let i = list.length; i < n; i++) {
    fresh.push(new BenchTunnel({ port: box.port, path: `/b/${kbps}`, stats, timeoutMs: ctx.o.openTimeoutMs }))
  }
  await pool(fresh, concurrency, async t => {
    if (performance.now() > deadline) return
    try {
      await t.open(opts)
      list.push(t)
    } catch (err) {
      ctx.openErrors.set((err as Error).message, (ctx.openErrors.get((err as Error).message) ?? 0) + 1)
      t.close()
    }
  })
  if (ctx.openErrors.size > 0) {
    ctx.o.log(`    tunnels that failed to open: ${[...ctx.openErrors].map(([m, n]) => `${n} × ${m}`).join(', ')}`)
    ctx.openErrors.clear()
  }
}

export function closeAll (list: BenchTunnel[]): void { for (const t of list) t.close(); list.length = 0 }

export async function measure (
  box: Running, ctx: Ctx, tunnels: number, kbps: number, seconds: number, recordDelays: boolean
): Promise<StepResult> {
  const s = ctx.stats
  const pids = box.pids()
  // GC counters are read (asynchronously) before the window opens and after it has closed and
  // every other figure is taken: nothing that arrives while they are read is counted.
  const gc0 = await gcStats(pids, box.gcDir)
  const probe = ctx.probing ? ctx.probeStats : null
  resetCounters(s)
  s.recording = recordDelays
  if (probe !== null) { resetCounters(probe); probe.recording = true }
  const stall = monitorEventLoopDelay({ resolution: 1 })
  stall.enable()
  const wall0 = Date.now()
  const cpu0 = pids.map(cpuSeconds)
  const src0 = cpuSeconds(ctx.sourcePid)
  const self0 = process.cpuUsage()
  const m0 = machineCpu()
  const t0 = performance.now()
  await sleep(seconds * 1000)
  const dt = (performance.now() - t0) / 1000
  stall.disable()
  const m1 = machineCpu()
  // A process gone by the end of the window reads 0: count nothing for it rather than a negative delta.
  const cpuProcs = pids.map((p, i) => Math.max(0, cpuSeconds(p) - cpu0[i]!))
  const cpuBox = cpuProcs.reduce((x, y) => x + y, 0)
  const cpuSource = cpuSeconds(ctx.sourcePid) - src0
  const self = process.cpuUsage(self0)
  s.recording = false
  if (probe !== null) probe.recording = false
  const wall1 = Date.now()
  const gbit = (s.bytes * 8) / 1e9
  const offeredMbps = (tunnels * kbps) / 1000
  const deliveredMbps = (s.bytes * 8) / dt / 1e6
  const held = s.lost === 0 && s.late === 0 && s.errors === 0 && deliveredMbps >= offeredMbps * 0.97
  const r: StepResult = {
    tunnels,
    kbps,
    seconds: dt,
    offeredMbps,
    deliveredMbps,
    packets: s.packets,
    lost: s.lost,
    late: s.late,
    errors: s.errors,
    held,
    cpuBox,
    cpuProcs,
    cpuPerGbit: pids.length === 0 || gbit === 0 ? null : cpuBox / gbit,
    cpuSource,
    cpuClient: (self.user + self.system) / 1e6,
    cpuMachine: m1.busy - m0.busy,
    cpuSteal: m1.steal - m0.steal,
    cores: cpus().length,
    gc: null,
    disturbed: false,
    boxRssMB: sumRss(pids) / 1048576,
    delayMs: delayPercentiles(s),
    clientStallMs: { p99: Math.max(0, stall.percentile(99) / 1e6 - 1), max: Math.max(0, stall.max / 1e6 - 1) },
    ...(probe === null
      ? {}
      : { probeDelayMs: delayPercentiles(probe), probeLate: probe.lost + probe.late + probe.errors })
  }
  r.gc = gcBetween(gc0, await gcStats(pids, box.gcDir), wall0, wall1)
  return r
}

/**
 * CPU-s of a window used by processes other than the bench's (box, source, load generator): the
 * machine's busy time minus theirs. Includes softirq time the kernel does not charge to a process
 * (loopback TCP), so it is never quite 0 under load; a large value means something else ran.
 */
export function cpuOther (s: StepResult): number {
  return Math.max(0, s.cpuMachine - s.cpuBox - s.cpuSource - s.cpuClient)
}

/** CPU-s of a window nobody used: cores × seconds minus busy and stolen time. */
export function cpuIdle (s: StepResult): number { return Math.max(0, s.cores * s.seconds - s.cpuMachine - s.cpuSteal) }

export function isDisturbed (s: StepResult, otherCpuMax: number): boolean {
  return s.cores * s.seconds > 0 && cpuOther(s) / (s.cores * s.seconds) > otherCpuMax
}

/**
 * measure(), again while other processes took more than otherCpuMax of the machine (up to
 * disturbedRetries times): the figures of a window shared with something else are not the box's.
 * The result says whether it stayed disturbed.
 */
export async function measureUndisturbed (
  box: Running, ctx: Ctx, id: string, tunnels: number, seconds: number
): Promise<StepResult> {
  let s = await measure(box, ctx, tunnels, ctx.o.kbps, seconds, true)
  for (let k = 0; k < ctx.o.disturbedRetries && isDisturbed(s, ctx.o.otherCpuMax); k++) {
    ctx.o.log(stepLine(id, s) + ` (disturbed: other processes used ${cpuOther(s).toFixed(2)} CPU-s; measuring again)`)
    s = await measure(box, ctx, tunnels, ctx.o.kbps, seconds, true)
  }
  s.disturbed = isDisturbed(s, ctx.o.otherCpuMax)
  return s
}

export function stepLine (id: string, s: StepResult): string {
  return `  ${id} ${String(s.tunnels).padStart(5)} × ${s.kbps} kbit/s: offered ${s.offeredMbps.toFixed(0)} Mbit/s ` +
    `delivered ${s.deliveredMbps.toFixed(0)}, lost ${s.lost} ` +
    `late ${s.late}${s.errors > 0 ? ` errors ${s.errors}` : ''}, ` +
    `box ${s.cpuPerGbit === null ? '-' : s.cpuPerGbit.toFixed(3)} CPU-s/Gbit, delay p50 ${s.delayMs.p50.toFixed(2)} ` +
    `p99 ${s.delayMs.p99.toFixed(2)} ` +
    'ms' + (inWindow(s) !== null
    ? ` (direct probes p99 ${s.probeDelayMs!.p99.toFixed(2)}: added ${inWindow(s)!.toFixed(2)})`
    : '') + (s.gc !== null
    ? `; box GC ${s.gc.count} × ${s.gc.totalMs.toFixed(1)} ms, longest ${s.gc.maxMs.toFixed(1)} ms`
    : '') + (s.clientStallMs !== undefined
    ? `; load generator stalls p99 ${s.clientStallMs.p99.toFixed(1)} max ${s.clientStallMs.max.toFixed(1)} ms`
    : '') + `; CPU-s box ${s.cpuBox.toFixed(2)}` +
          `${s.cpuProcs.length > 1 ? ` (${s.cpuProcs.map(x => x.toFixed(2)).join('+')})` : ''} ` +
          `source ${s.cpuSource.toFixed(2)} client ${s.cpuClient.toFixed(2)} other ${cpuOther(s).toFixed(2)} ` +
          `steal ${s.cpuSteal.toFixed(2)} idle ${cpuIdle(s).toFixed(2)} ` +
          `of ${(s.cores * s.seconds).toFixed(2)}${s.disturbed ? '  (disturbed)' : ''}${s.held ? '' : '  ← not held'}`
}
