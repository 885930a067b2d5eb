/**
 * The case generator: case `index` of a run seeded with `seed` is always the same plan (its own
 * PRNG, see prng.ts), drawn from the families below by weight.
 */
import { Rng } from './prng.js'
import type { CasePlan } from './plan.js'
import type { CapturedPair } from './corpus.js'
import { tunnelCase } from './cases/tunnel.js'
import { captureCase } from './cases/capture.js'
import { bytesCase, headCase, rtspCase, webCase, webSocketCase } from './cases/single.js'

export function generateCase (seed: number, index: number, corpus: readonly CapturedPair[]): CasePlan {
  const rng = Rng.forCase(seed, index)
  return rng.weighted<() => CasePlan>([
    [24, () => tunnelCase(rng)],
    [18, () => captureCase(rng, corpus)],
    [20, () => headCase(rng)],
    [14, () => rtspCase(rng)],
    [10, () => webSocketCase(rng)],
    [7, () => webCase(rng)],
    [7, () => bytesCase(rng)]
  ])()
}
