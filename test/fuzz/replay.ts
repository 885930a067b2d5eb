/**
 * Replaying a fixture: its cases (or, for a fixture that kept only a generator range, the cases
 * that range makes again) against a fresh gateway of its layout with every oracle attached.
 */
import { loadCorpus } from './corpus.js'
import { loadFixture, rewriteFixture, type Fixture, type TimedCase } from './fixtures.js'
import { generateCase } from './generate.js'
import type { OracleFailure } from './harness.js'
import { replayOnHarness } from './probe.js'
import { minimise } from './minimise.js'

export function fixtureCases (f: Fixture): TimedCase[] {
  if (f.cases.length > 0 || f.generated === undefined) return f.cases
  const { seed, from, to } = f.generated
  const corpus = loadCorpus()
  return Array.from({ length: to - from }, (_, i) => ({ index: from + i, atMs: 0, plan: generateCase(seed, from + i, corpus) }))
}

export async function replayFixture (path: string): Promise<{ fixture: Fixture, failure: OracleFailure | null }> {
  const fixture = loadFixture(path)
  return { fixture, failure: await replayOnHarness(fixture.layout, fixtureCases(fixture)) }
}

/** Shrink a saved fixture again (from its original inputs) with a new budget, in place. */
export async function reshrinkFixture (path: string, seconds: number, log: (s: string) => void): Promise<Fixture> {
  const f = loadFixture(path)
  const original = f.original ?? fixtureCases(f)
  const cases = await minimise(f.layout, f, original, seconds, log)
  const next: Fixture = { ...f, cases, shrunk: cases !== original, ...(cases !== original ? { original } : {}) }
  rewriteFixture(path, next)
  return next
}
