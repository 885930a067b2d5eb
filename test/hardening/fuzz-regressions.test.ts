/**
 * Every input the stack fuzzer ever saved (test/fixtures/fuzz/*.json) replayed against a fresh
 * gateway of its layout, child processes as the fuzzer runs them, with every oracle asserted: no
 * process crashes, /healthz answers, the reference viewer keeps playing, descriptors and memory
 * come back to the baseline. `npm run fuzz -- --replay FILE` replays one of them.
 */
import t from 'tap'
import { basename } from 'node:path'
import { listFixtures } from '../fuzz/fixtures.js'
import { replayFixture } from '../fuzz/replay.js'

const files = listFixtures()
// A replay: gateway, viewer and warm-up, the cases, the viewer's stall window, the settle wait.
t.setTimeout(Math.max(1, files.length) * 90_000)

t.test('the fuzzer\'s regression fixtures', async t => {
  t.ok(files.length > 0, `${files.length} fixture(s) in test/fixtures/fuzz/`)
  for (const file of files) {
    const { fixture, failure } = await replayFixture(file)
    t.equal(failure, null,
      `${basename(file)} (${fixture.layout}, found as ${fixture.oracle}: ${fixture.signature}): every oracle holds` +
      (failure === null ? '' : `\n  ${failure.oracle} failed: ${failure.signature}\n  ${failure.message.split('\n').slice(0, 8).join('\n  ')}`))
  }
})
