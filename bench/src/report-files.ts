/**
 * The report directory: benchmarks.json (raw results), benchmarks.md and benchmarks.svg, and how a
 * run's results merge with the ones already there.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { renderMarkdown, renderSvg } from './report.js'
import type { BenchResults } from './results.js'

/** Did this run measure the middle-box scenarios (a–f and the micro-benchmarks)? */
export function hasBoxes (r: BenchResults): boolean { return r.scenarios.length > 0 || r.micro.length > 0 }

/**
 * The results to write after `run`, given what the report directory held before (`prev`, null
 * when none). The report has three sections that runs may measure apart: the middle boxes a–f
 * with the micro-benchmarks (the top level: date, machine, profile), the capped worker scaling
 * and the live scenario. Each section comes from `run` when it measured it, else from `prev`: a
 * run of `--scenarios live` alone replaces only the live section, a run of a–f keeps an earlier
 * live and capped-scaling section, a run of everything replaces everything.
 */
export function mergeResults (prev: BenchResults | null, run: BenchResults): BenchResults {
  if (prev === null) return run
  const top = hasBoxes(run) ? run : { ...prev, live: run.live, cappedScaling: run.cappedScaling }
  const out: BenchResults = { ...top }
  const live = run.live ?? prev.live
  const capped = run.cappedScaling ?? prev.cappedScaling
  if (live !== undefined) out.live = live; else delete out.live
  if (capped !== undefined) out.cappedScaling = capped; else delete out.cappedScaling
  return hasBoxes(run) && out.live === run.live && out.cappedScaling === run.cappedScaling ? run : out
}

/** The results in `outDir`/benchmarks.json, or null when there are none (or they do not parse). */
export function readResults (outDir: string): BenchResults | null {
  const file = join(outDir, 'benchmarks.json')
  if (!existsSync(file)) return null
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as BenchResults
    return Array.isArray(r.scenarios) && Array.isArray(r.micro) ? r : null
  } catch { return null }
}

/**
 * Write benchmarks.{json,svg,md}; with `merge`, merged with what `outDir` holds (mergeResults). Returns what was
 * written.
 */
export function writeReport (outDir: string, results: BenchResults, opts: { merge?: boolean } = {}): BenchResults {
  const out = opts.merge === true ? mergeResults(readResults(outDir), results) : results
  mkdirSync(outDir, { recursive: true })
  writeFileSync(join(outDir, 'benchmarks.json'), JSON.stringify(out, null, 2) + '\n')
  writeFileSync(join(outDir, 'benchmarks.svg'), renderSvg(out))
  writeFileSync(join(outDir, 'benchmarks.md'), renderMarkdown(out))
  return out
}
