/**
 * The stack fuzzer (test/fuzz/, docs/security.md "Stack fuzzer") in its CI form: a seeded campaign
 * of TUNNELGATE_FUZZ_SECONDS (20) per layout, 60 s in all, against the real gateway processes, with every oracle
 * asserted: no process crashed, /healthz kept answering, the reference ffmpeg viewer kept playing,
 * descriptors and memory came back to the baseline. A failure is shrunk and saved under
 * test/fixtures/fuzz/ (unless a fixture already holds it) and the message says how to replay it.
 *
 * TUNNELGATE_FUZZ_SEED (1) picks the inputs; TUNNELGATE_FUZZ_SHRINK_SECONDS (30) bounds shrinking.
 */
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { runCampaign } from '../fuzz/campaign.js'
import { LAYOUTS } from '../fuzz/layouts.js'
import { report } from '../fuzz/report.js'
import { DEFAULT_CONNECTIONS } from '../fuzz/pump.js'
import { ROOT } from '../fuzz/stack.js'
import type { OracleName } from '../fuzz/fixtures.js'

const SECONDS = Number(process.env.TUNNELGATE_FUZZ_SECONDS ?? 20)
const SEED = Number(process.env.TUNNELGATE_FUZZ_SEED ?? 1)
const SHRINK_SECONDS = Number(process.env.TUNNELGATE_FUZZ_SHRINK_SECONDS ?? 30)
const ORACLES: OracleName[] = ['crash', 'healthz', 'viewer', 'resources']

// Per layout: the time box, the settle wait, and shrinking for up to a few findings.
t.setTimeout(LAYOUTS.length * (SECONDS + 60 + 3 * SHRINK_SECONDS) * 1000)

t.test('dist/ is built (npm test builds it)', async t => {
  t.ok(existsSync(join(ROOT, 'dist/main.js')), 'dist/main.js exists')
})

for (const layout of LAYOUTS) {
  t.test(`fuzz the ${layout} layout for ${SECONDS} s (seed ${SEED})`, async t => {
    const r = await runCampaign({
      layout,
      seconds: SECONDS,
      seed: SEED,
      connections: DEFAULT_CONNECTIONS,
      shrinkSeconds: SHRINK_SECONDS,
      log: line => t.comment(line)
    })
    t.comment(report(r))
    t.ok(r.stats.cases > 0, `${r.stats.cases} cases sent (${r.casesPerSecond.toFixed(0)}/s)`)
    for (const oracle of ORACLES) {
      const failed = r.findings.filter(f => f.oracle === oracle)
      t.same(failed.map(f => f.signature), [],
        `${oracle}: held${failed.map(f => `\n  FAILED: ${f.signature}\n  fixture: ${f.fixture}\n  replay: ${f.replay}\n  ${f.message.split('\n').slice(0, 8).join('\n  ')}`).join('')}`)
    }
    t.ok(r.settled !== null || r.findings.length > 0,
      'the resource oracle was checked (or another oracle failed first)')
  })
}
