/** The bench's command line: options from argv, and its usage text. */
import { FULL, QUICK, SMOKE, type BenchOptions, type BenchScenario } from './options.js'
import { SCENARIOS } from './scenarios.js'

export function parseBenchArgs (argv: string[], defaultOut: string): BenchOptions {
  const get = (flag: string): string | undefined => { const i = argv.indexOf(flag); return i >= 0 ? argv[i + 1] : undefined }
  const base = argv.includes('--smoke') ? SMOKE : argv.includes('--quick') ? QUICK : FULL
  const o: BenchOptions = { ...base, outDir: get('--out') ?? defaultOut, log: line => process.stderr.write(line + '\n') }
  const sc = get('--scenarios')
  if (sc !== undefined) o.scenarios = sc.split(',').map(s => s.trim()).filter((s): s is BenchScenario => s in SCENARIOS || s === 'live' || s === 'scaling')
  const num = (flag: string): number | undefined => { const v = get(flag); return v === undefined ? undefined : Number(v) }
  o.kbps = num('--kbps') ?? o.kbps
  o.scaleTunnels = num('--scale') ?? o.scaleTunnels
  o.stepSeconds = num('--step-seconds') ?? o.stepSeconds
  o.tickMs = num('--tick-ms') ?? o.tickMs
  o.phases = num('--phases') ?? o.phases
  o.scaleConcurrency = num('--scale-concurrency') ?? o.scaleConcurrency
  const steps = get('--steps')
  if (steps !== undefined) o.steps = steps.split(',').map(Number).filter(n => n > 0)
  const liveSteps = get('--live-steps')
  if (liveSteps !== undefined) o.liveSteps = liveSteps.split(',').map(Number).filter(n => n > 0)
  o.liveKbps = num('--live-kbps') ?? o.liveKbps
  o.capWorkerCores = num('--cap-worker-cores') ?? o.capWorkerCores
  o.capPasses = Math.max(1, Math.round(num('--cap-passes') ?? o.capPasses))
  o.setupBursts = Math.max(1, Math.round(num('--setup-bursts') ?? o.setupBursts ?? 1))
  return o
}

export const BENCH_USAGE = `Usage: tunnelgate bench [--quick | --smoke] [--out DIR] [--scenarios a,b1,b2,c,d,e,f,scaling,live] [--kbps 2000]
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
  per scenario, each just after a burst straight to the source; the setup verdict takes their median. A single middle-box process holds 2 descriptors per
  paused tunnel: 10,000 in one process need an open-files hard limit above 20,400 (ulimit -Hn); b2 splits them.
       tunnelgate bench --render DIR/benchmarks.json   re-renders the report from a run's raw results.`
