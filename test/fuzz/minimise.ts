/**
 * Shrink the inputs of one finding against its own layout and oracle (a crash with the same
 * signature; any other oracle by name), within a time budget; the inputs as given when nothing
 * reproduces or the probe itself fails.
 */
import type { OracleName, TimedCase } from './fixtures.js'
import type { LayoutName } from './layouts.js'
import { crashProbe, oracleProbe } from './probe.js'
import { shrink } from './shrink.js'

export async function minimise (
  layout: LayoutName,
  failure: { oracle: OracleName, signature: string },
  inputs: TimedCase[],
  seconds: number,
  log: (s: string) => void
): Promise<TimedCase[]> {
  const probe = failure.oracle === 'crash' ? crashProbe(layout, failure.signature) : oracleProbe(layout, failure.oracle)
  try {
    return (await shrink(inputs, probe.reproduces, seconds * 1000, s => log(`${layout}: ${s}`))).cases
  } catch (err) {
    log(`${layout}: shrinking stopped: ${(err as Error).message}`)
    return inputs
  } finally {
    await probe.close()
  }
}
