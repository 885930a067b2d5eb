/**
 * The raw results of a run (benchmarks.json): per scenario its phases, the micro-benchmarks, the
 * machine, and the capped-scaling and live sections. The report is rendered from these alone.
 */
import type { CappedScalingResult } from './capped-scaling.js'
import type { LiveResult } from './live.js'
import type { MicroResult } from './micro.js'
import type { BenchOptions } from './options.js'
import type { ScenarioId } from './scenarios.js'
import type { StepResult } from './window.js'

export interface ScenarioResult {
  id: ScenarioId
  name: string
  scale?: ScaleResult
  /** `parallel` is the first of `bursts` through the box (results from before bursts were paired have no `bursts`). */
  setup?: { sequential: SetupSummary, parallel: SetupSummary, bursts?: SetupBurstPair[] }
  sweep: StepResult[]
  heldTunnels: number
  heldMbps: number
  delay: Array<StepResult & { fraction: number }>
  /** The delay windows measured again with the box first (BenchOptions.boxFirstNice); absent when not measured. */
  delayBoxFirst?: Array<StepResult & { fraction: number }>
  /**
   * The 50 % window measured again (BenchOptions.delayRepeats), one per round of delayRounds, on a box started afresh.
   */
  delayRepeats?: Array<StepResult & { fraction: number }>
  /** Why the box-first windows were not measured (not permitted to raise the box's priority). */
  boxFirstSkipped?: string
  error?: string
}

export interface ScaleResult {
  requested: number
  /** What this scenario can hold on this machine (open-files limits, see capReason). */
  limit: number
  /** Why `limit` < `requested` (null when it is not). */
  capReason: string | null
  nofile: number
  opened: number
  keepaliveAnswered: number
  rssBeforeMB: number
  rssAfterMB: number
  /** RSS delta / tunnels held (bytes). */
  bytesPerTunnel: number | null
  /**
   * V8 heap used + external before/after (MB) and its delta / tunnels held; null for a box that is not a hooked Node
   * process.
   */
  heapBeforeMB: number | null
  heapAfterMB: number | null
  heapBytesPerTunnel: number | null
  /** Were both memory readings taken after a forced full GC in every box process? */
  gc: boolean
  openSeconds: number
  /** Tunnels that failed to open (or to pause), by error. */
  openErrors: Record<string, number>
}

export interface Summary { n: number, failed: number, p50: number, p99: number, max: number }

/**
 * CPU used over a part of the setup phase, per setup attempted (µs): by the box (0 for direct), the source and the load
 * generator.
 */
export interface SetupCpu { boxUs: number, sourceUs: number, clientUs: number }
export interface SetupSummary extends Summary { cpu?: SetupCpu }
/** A burst of simultaneous setups through the box and the direct burst just before it. */
export interface SetupBurstPair { box: SetupSummary, direct: SetupSummary }

export interface BenchResults {
  date: string
  profile: string
  machine: {
    nproc: number
    cpu: string
    kernel: string
    node: string
    ffmpeg: string | null
    haproxy: string | null
    gstreamer: string | null
    loadavg: string
  }
  options: Omit<BenchOptions, 'outDir' | 'log'>
  durationSeconds: number
  micro: MicroResult[]
  scenarios: ScenarioResult[]
  /** Reference load for the delay phase (tunnels). */
  referenceTunnels: number
  /** The live scenario, from its own run (its `date` may differ from the top-level one). */
  live?: LiveResult
  /** Capped worker scaling (b1 against b2, each relay worker under a CPU quota), from its own run. */
  cappedScaling?: CappedScalingResult
}
