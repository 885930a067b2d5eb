/**
 * "Does this input still fail?" for the shrinker and the replay. A crash is checked on a bare stack
 * that is reused until it crashes (a fresh one only after a reproduction: cheap). The other oracles
 * need the whole harness (viewer, health poller, baseline), a fresh one per attempt.
 */
import type { OracleName, TimedCase } from './fixtures.js'
import { Harness, STALL_MS, type OracleFailure } from './harness.js'
import type { LayoutName } from './layouts.js'
import { replayCases } from './pump.js'
import { GatewayStack } from './stack.js'
import type { Reproduces } from './shrink.js'

/** How long after the replay a crash may still show (a worker is polled every 200 ms). */
const CRASH_GRACE_MS = 1500
export const SETTLE_MS = 20_000

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

export interface Probe { reproduces: Reproduces, close: () => Promise<void> }

export function crashProbe (layout: LayoutName, signature: string): Probe {
  let stack: GatewayStack | null = null
  return {
    async reproduces (cases) {
      if (stack === null || stack.crash !== null) { await stack?.stop(); stack = await GatewayStack.start(layout) }
      const s = stack
      await Promise.race([replayCases(s.port, cases), new Promise<void>(resolve => s.onCrash(() => resolve()))])
      for (let waited = 0; s.crash === null && waited < CRASH_GRACE_MS; waited += 50) await sleep(50)
      return s.crash === null ? 'no' : s.crash.signature === signature ? 'yes' : 'other'
    },
    async close () { await stack?.stop(); stack = null }
  }
}

/** Replay `cases` on a fresh harness and report the first oracle that fails (null: all held). */
export async function replayOnHarness (
  layout: LayoutName,
  cases: readonly TimedCase[],
  settleMs = SETTLE_MS
): Promise<OracleFailure | null> {
  const h = await Harness.start(layout)
  try {
    let failure: OracleFailure | null = null
    const watch = setInterval(() => {
      failure ??= h.failure()
    }, 250)
    await replayCases(h.stack.port, cases)
    // The live oracles get the viewer's stall window after the traffic to show a failure.
    for (let waited = 0; failure === null && waited < STALL_MS + 2000; waited += 250) await sleep(250)
    clearInterval(watch)
    failure ??= h.failure()
    if (failure !== null) return failure
    const r = await h.resourcesBack(settleMs)
    return r.failure ?? h.failure()
  } finally {
    await h.stop()
  }
}

export function oracleProbe (layout: LayoutName, oracle: OracleName): Probe {
  return {
    async reproduces (cases) {
      const f = await replayOnHarness(layout, cases)
      return f === null ? 'no' : f.oracle === oracle ? 'yes' : 'other'
    },
    async close () {}
  }
}
