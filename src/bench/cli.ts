/** `tunnelgate bench [...]`: runs the benchmark from the compiled tree (see docs/benchmarks.md). */
import { resolve } from 'node:path'
import { BENCH_USAGE, parseBenchArgs, runBench } from './run.js'

export async function benchMain (argv: string[], defaultOut = resolve(process.cwd(), 'bench-report')): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) { process.stdout.write(BENCH_USAGE + '\n'); return }
  const o = parseBenchArgs(argv, defaultOut)
  await runBench(o)
}
