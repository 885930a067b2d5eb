/**
 * What a bench run is asked to do: the options of every phase and scenario, and the three
 * profiles (full, quick, smoke) the command line starts from.
 */
import type { ScenarioId } from './scenarios.js'

/**
 * What `--scenarios` takes: the middle boxes a–f, the capped worker-scaling run (b1 against b2
 * with each relay worker under a CPU quota: capped-scaling.ts) and the live scenario.
 */
export type BenchScenario = ScenarioId | 'scaling' | 'live'

export interface BenchOptions {
  outDir: string
  scenarios: BenchScenario[]
  kbps: number
  steps: number[]
  stepSeconds: number
  warmSeconds: number
  setupSequential: number
  setupParallel: number
  /**
   * Bursts of setupParallel simultaneous setups per scenario, each just after a direct one; the verdict takes the
   * median of the pairs (absent in older results: 1, unpaired).
   */
  setupBursts?: number
  scaleTunnels: number
  /** Scenarios that run the scale phase (memory per paused tunnel). */
  scaleScenarios: ScenarioId[]
  /** Time allowed for opening the paused tunnels of one scenario (s); the rest are not attempted. */
  scaleOpenSeconds: number
  /** Paused tunnels being opened at once (each goes DESCRIBE … PAUSE before its slot takes the next). */
  scaleConcurrency: number
  /** Loopback source addresses (127.0.0.1 … 127.0.0.N) the scale phase spreads its tunnels over (ephemeral ports). */
  scaleAddresses: number
  delayFractions: number[]
  delaySeconds: number
  /**
   * The 50 % delay window (the verdict's) measured this many more times, in rounds across the
   * scenarios after all of them have run (delayRounds): one window's p99 on a shared 2-core machine
   * swings by several ms from run to run, so the verdict takes the median of all of them (absent in
   * older results: one window).
   */
  delayRepeats?: number
  /**
   * Direct probe tunnels (load generator → source, no middle box) held open through the delay
   * phase beside the box's tunnels: their delays, recorded in the same windows, are the baseline
   * of the box's added delay (optional in results written before they existed).
   */
  delayProbes?: number
  /**
   * Box first: each delay window is measured again with every thread of the box at this nice
   * value (e.g. -10), so the box runs whenever it is ready instead of waiting behind the source and
   * the load generator for one of the shared cores, as it would on a host of its own. Undefined =
   * not measured.
   */
  boxFirstNice?: number
  tickMs: number
  /**
   * Slots per source tick: each session is sent in its own slot (1 = every session's packets in one burst per tick).
   */
  phases: number
  lateMs: number
  microMs: number
  /** Sockets per round of the leg hand-off micro-benchmark (ipc-handoff.ts), and the busy worker's µs per loop turn. */
  handoffLegs: number
  handoffBusyUs: number
  /** A tunnel that has not seen its first RTP byte (or PLAY reply) by then counts as failed. */
  openTimeoutMs: number
  /**
   * A window in which processes other than the bench's used more than this share of the machine
   * (cpuOther / (cores × seconds)) is disturbed: it is measured again, up to `disturbedRetries`
   * times, and marked if it stays so.
   */
  otherCpuMax: number
  disturbedRetries: number
  /** Pause between phases for the middle box to settle (ms). */
  settleMs: number
  /** Label of the run ('full', 'quick', 'smoke'). */
  profile: string
  /** live scenario: viewer counts, stream bitrate (kbit/s), window (s), lag above which a viewer is late (ms). */
  liveSteps: number[]
  liveKbps: number
  liveSeconds: number
  liveLagMs: number
  /**
   * Capped worker scaling (capped-scaling.ts): each relay worker's CPU quota (cores), the first
   * tunnel count, its growth until a step is not held, the precision of the bisection after it
   * (fraction of the held count), the most windows and tunnels per layout, and how many times each
   * layout is searched (mirrored order b1 b2 b2 b1: capped-scaling.ts passOrder).
   */
  capWorkerCores: number
  capStartTunnels: number
  capGrowth: number
  capPrecision: number
  capMaxSteps: number
  capMaxTunnels: number
  capPasses: number
  log: (line: string) => void
}

export const FULL: Omit<BenchOptions, 'outDir' | 'log'> = {
  scenarios: ['a', 'b1', 'b2', 'c', 'd', 'e', 'f', 'scaling', 'live'],
  kbps: 2000,
  steps: [25, 50, 100, 200, 300, 400, 500, 650, 800, 1000, 1300, 1600, 2000],
  stepSeconds: 2.5,
  warmSeconds: 1,
  setupSequential: 500,
  setupParallel: 200,
  setupBursts: 5,
  scaleTunnels: 10000,
  scaleScenarios: ['a', 'b2', 'd', 'e'],
  scaleOpenSeconds: 120,
  scaleConcurrency: 16,
  scaleAddresses: 16,
  delayFractions: [0.25, 0.5, 0.9],
  delaySeconds: 5,
  delayRepeats: 4,
  delayProbes: 32,
  boxFirstNice: -10,
  tickMs: 10,
  phases: 10,
  lateMs: 50,
  microMs: 400,
  handoffLegs: 400,
  handoffBusyUs: 500,
  settleMs: 1000,
  otherCpuMax: 0.15,
  disturbedRetries: 3,
  openTimeoutMs: 20_000,
  profile: 'full',
  liveSteps: [50, 100, 200, 400],
  liveKbps: 2000,
  liveSeconds: 3,
  liveLagMs: 100,
  capWorkerCores: 0.15,
  capStartTunnels: 40,
  capGrowth: 1.25,
  capPrecision: 0.04,
  capMaxSteps: 16,
  capMaxTunnels: 1500,
  // Four searches per layout (b1 b2 b2 b1 b1 b2 b2 b1): with two, the ratio of the means ranged
  // 1.56–1.76 between full runs of the same code, and a single search 1.63–2.46.
  capPasses: 4
}

export const QUICK: Omit<BenchOptions, 'outDir' | 'log'> = {
  ...FULL,
  steps: [25, 50, 100, 200, 300],
  stepSeconds: 1.5,
  warmSeconds: 0.5,
  setupSequential: 100,
  setupParallel: 50,
  setupBursts: 3,
  scaleTunnels: 1000,
  delaySeconds: 2,
  delayProbes: 16,
  microMs: 150,
  handoffLegs: 100,
  profile: 'quick',
  liveSteps: [50, 100, 200],
  liveSeconds: 2,
  capPrecision: 0.08,
  capMaxSteps: 10,
  capPasses: 2
}

export const SMOKE: Omit<BenchOptions, 'outDir' | 'log'> = {
  ...FULL,
  kbps: 500,
  steps: [2, 4],
  stepSeconds: 0.4,
  warmSeconds: 0.2,
  setupSequential: 3,
  setupParallel: 3,
  setupBursts: 2,
  scaleTunnels: 10,
  delayFractions: [0.5, 1],
  delaySeconds: 0.4,
  delayRepeats: 1,
  delayProbes: 2,
  microMs: 20,
  handoffLegs: 10,
  settleMs: 100,
  openTimeoutMs: 5000,
  disturbedRetries: 0,
  scaleScenarios: ['a', 'b1', 'b2', 'c', 'd', 'e', 'f'],
  profile: 'smoke',
  liveSteps: [2, 4],
  liveKbps: 500,
  liveSeconds: 0.6,
  capStartTunnels: 2,
  capGrowth: 2,
  capPrecision: 0.5,
  capMaxSteps: 3,
  capMaxTunnels: 4,
  capPasses: 2
}
