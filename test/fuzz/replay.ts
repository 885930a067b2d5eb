/**
 * Replaying a fixture: its cases (or, for a fixture that kept only a generator range, the cases
 * that range makes again) against a fresh gateway of its layout with every oracle attached.
 */
import { loadCorpus } from './corpus.js'
import {
  loadFixture,
  MAX_STORED_CASES,
  rewriteFixture,
  type Fixture,
  type GeneratedInputs,
  type TimedCase
} from './fixtures.js'
import { generateCase } from './generate.js'
import type { OracleFailure } from './harness.js'
import { replayOnHarness } from './probe.js'
import { minimise } from './minimise.js'

/** Generated inputs made again (the same cases as long as the generator is that of the commit that found them). */
export function regenerate (g: GeneratedInputs): TimedCase[] {
  const corpus = loadCorpus()
  const at: Array<[number, number]> =
    'cases' in g ? g.cases : Array.from({ length: g.to - g.from }, (_, i) => [g.from + i, 0])
  return at.map(([index, atMs]) => ({ index, atMs, plan: generateCase(g.seed, index, corpus) }))
}

export function fixtureCases (f: Fixture): TimedCase[] {
  return f.cases.length > 0 ? f.cases : regenerate(f.original)
}

export async function replayFixture (path: string): Promise<{ fixture: Fixture, failure: OracleFailure | null }> {
  const fixture = loadFixture(path)
  return { fixture, failure: await replayOnHarness(fixture.layout, fixtureCases(fixture)) }
}

/** Shrink a saved fixture again, from its inputs as found, with a new budget; in place. */
export async function reshrinkFixture (path: string, seconds: number, log: (s: string) => void): Promise<Fixture> {
  const f = loadFixture(path)
  const original = regenerate(f.original)
  const cases = await minimise(f.layout, f, original, seconds, log)
  const next: Fixture = { ...f, cases: cases.length <= MAX_STORED_CASES ? cases : [], shrunk: cases !== original }
  rewriteFixture(path, next)
  return next
}
