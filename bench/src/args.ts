/**
 * The bench's command line, parsed by node:util parseArgs in strict mode: an unknown flag, a missing
 * value, a stray argument or a bad number is refused with a message naming it (BenchArgsError).
 */
import { parseArgs } from 'node:util'
import { FULL, QUICK, SMOKE, type BenchOptions, type BenchScenario } from './options.js'
import { SCENARIOS } from './scenarios.js'

/** A command line the bench refuses; the message says which flag and why. */
export class BenchArgsError extends Error {
  override name = 'BenchArgsError'
}

export type BenchCommand =
  | { kind: 'help' }
  /** Re-render the report from a run's raw results into `outDir` (default: the file's directory). */
  | { kind: 'render', file: string, outDir?: string }
  /** A run; `ignored`: names given to --scenarios that are none of the scenarios. */
  | { kind: 'run', options: BenchOptions, ignored: string[] }

const FLAGS = {
  help: { type: 'boolean', short: 'h' },
  render: { type: 'string' },
  out: { type: 'string' },
  quick: { type: 'boolean' },
  smoke: { type: 'boolean' },
  scenarios: { type: 'string' },
  kbps: { type: 'string' },
  steps: { type: 'string' },
  'step-seconds': { type: 'string' },
  scale: { type: 'string' },
  'scale-concurrency': { type: 'string' },
  'tick-ms': { type: 'string' },
  phases: { type: 'string' },
  'cap-worker-cores': { type: 'string' },
  'cap-passes': { type: 'string' },
  'setup-bursts': { type: 'string' },
  'live-steps': { type: 'string' },
  'live-kbps': { type: 'string' }
} as const
const CONFIG = { options: FLAGS, strict: true, allowPositionals: false } as const
type Values = ReturnType<typeof parseArgs<typeof CONFIG>>['values']

/** A number above 0 (decimals allowed). */
function positive (v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined
  const n = /^\d+(\.\d+)?$/.test(v) ? Number(v) : NaN
  if (!(n > 0)) throw new BenchArgsError(`--${flag} must be a number above 0 (got '${v}')`)
  return n
}

/** A whole number of at least `min`. */
function whole (v: string | undefined, flag: string, min: number): number | undefined {
  if (v === undefined) return undefined
  if (!/^\d+$/.test(v) || Number(v) < min) {
    throw new BenchArgsError(`--${flag} must be a whole number of at least ${min} (got '${v}')`)
  }
  return Number(v)
}

/** A comma list of whole numbers of at least 1 (tunnel or viewer counts). */
function counts (v: string | undefined, flag: string): number[] | undefined {
  if (v === undefined) return undefined
  const parts = v.split(',').map(s => s.trim())
  if (parts.some(p => !/^\d+$/.test(p) || Number(p) < 1)) {
    throw new BenchArgsError(`--${flag} must be a comma list of whole numbers of at least 1 (got '${v}')`)
  }
  return parts.map(Number)
}

function isScenario (s: string): s is BenchScenario { return s in SCENARIOS || s === 'live' || s === 'scaling' }

function values (argv: string[]): Values {
  try {
    return parseArgs({ ...CONFIG, args: argv }).values
  } catch (err) {
    throw new BenchArgsError((err as Error).message)
  }
}

export function parseBenchCommand (argv: string[], defaultOut: string): BenchCommand {
  const v = values(argv)
  if (v.help === true) return { kind: 'help' }
  if (v.render !== undefined) {
    const others = Object.keys(v).filter(k => k !== 'render' && k !== 'out')
    if (others.length > 0) throw new BenchArgsError(`--render takes only --out (got --${others.join(', --')})`)
    return { kind: 'render', file: v.render, ...(v.out === undefined ? {} : { outDir: v.out }) }
  }
  if (v.quick === true && v.smoke === true) throw new BenchArgsError('--quick and --smoke: give one of them')
  const base = v.smoke === true ? SMOKE : v.quick === true ? QUICK : FULL
  const o: BenchOptions = { ...base, outDir: v.out ?? defaultOut, log: line => process.stderr.write(line + '\n') }
  const ignored: string[] = []
  if (v.scenarios !== undefined) {
    const names = v.scenarios.split(',').map(s => s.trim()).filter(s => s !== '')
    o.scenarios = names.filter(isScenario)
    ignored.push(...names.filter(s => !isScenario(s)))
    if (o.scenarios.length === 0) {
      const known = [...Object.keys(SCENARIOS), 'scaling', 'live'].join(', ')
      throw new BenchArgsError(`--scenarios names none of ${known} (got '${v.scenarios}')`)
    }
  }
  o.kbps = positive(v.kbps, 'kbps') ?? o.kbps
  o.scaleTunnels = whole(v.scale, 'scale', 1) ?? o.scaleTunnels
  o.stepSeconds = positive(v['step-seconds'], 'step-seconds') ?? o.stepSeconds
  o.tickMs = positive(v['tick-ms'], 'tick-ms') ?? o.tickMs
  o.phases = whole(v.phases, 'phases', 1) ?? o.phases
  o.scaleConcurrency = whole(v['scale-concurrency'], 'scale-concurrency', 1) ?? o.scaleConcurrency
  o.steps = counts(v.steps, 'steps') ?? o.steps
  o.liveSteps = counts(v['live-steps'], 'live-steps') ?? o.liveSteps
  o.liveKbps = positive(v['live-kbps'], 'live-kbps') ?? o.liveKbps
  o.capWorkerCores = positive(v['cap-worker-cores'], 'cap-worker-cores') ?? o.capWorkerCores
  // 0 passes or bursts is taken as 1: every run searches each layout and pairs a burst at least once.
  o.capPasses = Math.max(1, whole(v['cap-passes'], 'cap-passes', 0) ?? o.capPasses)
  o.setupBursts = Math.max(1, whole(v['setup-bursts'], 'setup-bursts', 0) ?? o.setupBursts ?? 1)
  return { kind: 'run', options: o, ignored }
}

/** A run's options from the command line (parseBenchCommand; --help and --render are not a run). */
export function parseBenchArgs (argv: string[], defaultOut: string): BenchOptions {
  const c = parseBenchCommand(argv, defaultOut)
  if (c.kind !== 'run') throw new BenchArgsError(`not a run: --${c.kind}`)
  return c.options
}

export const BENCH_USAGE = `Usage: tunnelgate bench [--quick | --smoke] [--out DIR]
                       [--scenarios a,b1,b2,c,d,e,f,scaling,live] [--kbps 2000]
                       [--steps 25,50,100,...] [--step-seconds 3] [--scale 10000] [--scale-concurrency 16]
                       [--tick-ms 10] [--phases 10] [--cap-worker-cores 0.15] [--cap-passes 4]
                       [--setup-bursts 5]
                       [--live-steps 50,100,200,400] [--live-kbps 2000]
  Runs the load generator against every scenario in one run and writes DIR/benchmarks.{md,json,svg}
  (default DIR: ./bench-report), merged with the results already in DIR: \`--scenarios live\` alone
  replaces only the live section, \`--scenarios scaling\` only the capped worker scaling (b1 against
  b2 with each relay worker capped at --cap-worker-cores of a core by a cgroup, each layout searched
  --cap-passes times in the order b1 b2 b2 b1 …; needs root). Needs haproxy for scenario d; the live scenario needs
  gst-rtsp-server (python3-gi, gir1.2-gst-rtsp-server-1.0) and the repository's
  test/peers/gst-origin.py. --phases N: the source serves each session in its own slot of N per tick
  (1 = every session's packets in one burst per tick). --setup-bursts N: bursts of simultaneous setups
  per scenario, each just after a burst straight to the source; the setup verdict takes their median. A single
  middle-box process holds 2 descriptors per paused tunnel: 10,000 in one process need an open-files hard
  limit above 20,400 (ulimit -Hn); b2 splits them.
       tunnelgate bench --render DIR/benchmarks.json [--out DIR2]
  re-renders the report from a run's raw results.
  The bench is the package bench/ of a checkout: \`tunnelgate bench\` runs bench/dist/main.js (built by
  \`npm run build:bench\`; \`npm run bench\` builds and runs it into docs/).`
