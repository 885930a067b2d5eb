/**
 * `npm run fuzz`: the socket-level fuzzer of the whole stack (see docs/security.md, "Stack fuzzer").
 *
 *   npm run fuzz -- [--layout all|workers|cluster|every] [--seconds N] [--seed N] [--connections N]
 *                   [--shrink-seconds N] [--fixtures DIR]
 *   npm run fuzz -- --replay test/fixtures/fuzz/FILE.json
 *   npm run fuzz -- --shrink test/fixtures/fuzz/FILE.json [--shrink-seconds N]   (shrink it again, in place)
 *
 * Needs dist/ (`npm run build`) and ffmpeg. Exits 1 when an oracle failed.
 */
import { parseArgs } from 'node:util'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { runCampaign } from './campaign.js'
import { report } from './report.js'
import { DEFAULT_CONNECTIONS } from './pump.js'
import { isLayout, LAYOUTS, type LayoutName } from './layouts.js'
import { replayFixture, reshrinkFixture } from './replay.js'
import { ROOT } from './stack.js'

function whole (v: string | undefined, flag: string, dflt: number): number {
  if (v === undefined) return dflt
  if (!/^\d+$/.test(v)) throw new Error(`--${flag} must be a whole number (got '${v}')`)
  return Number(v)
}

async function main (): Promise<number> {
  const { values } = parseArgs({
    options: {
      layout: { type: 'string' },
      seconds: { type: 'string' },
      seed: { type: 'string' },
      connections: { type: 'string' },
      'shrink-seconds': { type: 'string' },
      fixtures: { type: 'string' },
      replay: { type: 'string' },
      shrink: { type: 'string' }
    },
    strict: true
  })
  if (!existsSync(join(ROOT, 'dist/main.js'))) throw new Error('dist/ is missing: run `npm run build` first')
  if (values.shrink !== undefined) {
    const f = await reshrinkFixture(values.shrink, whole(values['shrink-seconds'], 'shrink-seconds', 120), line =>
      process.stdout.write(`[fuzz] ${line}\n`)
    )
    process.stdout.write(`${values.shrink}: ${f.cases.length} case(s) (shrunk: ${f.shrunk})\n`)
    return 0
  }
  if (values.replay !== undefined) {
    const { fixture, failure } = await replayFixture(values.replay)
    if (failure === null) {
      process.stdout.write(`${values.replay}: every oracle held (${fixture.layout}, ${fixture.cases.length} case(s))\n`)
      return 0
    }
    process.stdout.write(`${values.replay}: ${failure.oracle} failed: ${failure.signature}\n${failure.message}\n`)
    return 1
  }
  const which = values.layout ?? 'every'
  if (which !== 'every' && !isLayout(which)) {
    throw new Error(`--layout must be one of ${LAYOUTS.join(', ')} or every (got '${which}')`)
  }
  const layouts: readonly LayoutName[] = which === 'every' ? LAYOUTS : [which as LayoutName]
  const seed = whole(values.seed, 'seed', Date.now() % 1_000_000)
  let failed = false
  for (const layout of layouts) {
    const r = await runCampaign({
      layout,
      seed,
      seconds: whole(values.seconds, 'seconds', 60),
      connections: whole(values.connections, 'connections', DEFAULT_CONNECTIONS),
      shrinkSeconds: whole(values['shrink-seconds'], 'shrink-seconds', 120),
      ...(values.fixtures === undefined ? {} : { fixturesDir: values.fixtures }),
      log: line => process.stdout.write(`[fuzz] ${line}\n`)
    })
    process.stdout.write(report(r) + '\n')
    failed ||= r.findings.length > 0
  }
  return failed ? 1 : 0
}

main().then(
  code => process.exit(code),
  err => {
    process.stderr.write(`fuzz: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(2)
  }
)
