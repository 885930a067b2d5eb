/** The bench command line: help, re-rendering a report, or a run (see docs/benchmarks.md). */
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { BENCH_USAGE, BenchArgsError, parseBenchCommand } from './args.js'
import { writeReport } from './report-files.js'
import type { BenchResults } from './results.js'
import { runBench } from './run.js'

/** Runs what `argv` asks; throws BenchArgsError for a command line it refuses. */
export async function benchMain (argv: string[], defaultOut = resolve(process.cwd(), 'bench-report')): Promise<void> {
  const c = parseBenchCommand(argv, defaultOut)
  if (c.kind === 'help') { process.stdout.write(BENCH_USAGE + '\n'); return }
  if (c.kind === 'render') {
    // Re-render the report from a run's raw results (no new measurement).
    let results: BenchResults
    try {
      results = JSON.parse(readFileSync(c.file, 'utf8')) as BenchResults
    } catch (err) {
      throw new BenchArgsError(`--render: no results read from '${c.file}': ${(err as Error).message}`)
    }
    writeReport(c.outDir ?? dirname(c.file), results)
    return
  }
  if (c.ignored.length > 0) c.options.log(`note: not a scenario, ignored: ${c.ignored.join(', ')}`)
  await runBench(c.options)
}

/** benchMain as a whole process: exits 0 when done, 2 with the reason for a refused command line. */
export async function benchProcess (argv: string[], defaultOut?: string): Promise<never> {
  try {
    await benchMain(argv, defaultOut)
  } catch (err) {
    if (!(err instanceof BenchArgsError)) throw err
    process.stderr.write(`tunnelgate bench: ${err.message}\n(tunnelgate bench --help lists the options)\n`)
    process.exit(2)
  }
  process.exit(0)
}
