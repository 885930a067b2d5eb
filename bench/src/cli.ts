/** The bench command line: help, re-rendering a report, or a run (see docs/benchmarks.md). */
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { BENCH_USAGE, parseBenchArgs } from './args.js'
import { writeReport } from './report-files.js'
import type { BenchResults } from './results.js'
import { runBench } from './run.js'

export async function benchMain (argv: string[], defaultOut = resolve(process.cwd(), 'bench-report')): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) { process.stdout.write(BENCH_USAGE + '\n'); return }
  const i = argv.indexOf('--render')
  if (i >= 0) {
    // Re-render the report from a run's raw results (no new measurement).
    const file = argv[i + 1] ?? ''
    const results = JSON.parse(readFileSync(file, 'utf8')) as BenchResults
    writeReport(argv.includes('--out') ? argv[argv.indexOf('--out') + 1]! : dirname(file), results)
    return
  }
  const o = parseBenchArgs(argv, defaultOut)
  await runBench(o)
}
