/**
 * One fuzzing campaign against one layout: generated cases pumped at the gateway with N
 * connections in flight for the time box, the live oracles checked all the while, the resource
 * oracle after the traffic. A failure names the inputs in flight; the gateway is started afresh and
 * the run goes on (each distinct failure is kept once). At the end every new failure is shrunk and
 * saved as a fixture.
 */
import { loadCorpus, type CapturedPair } from './corpus.js'
import {
  commitId,
  knownFixture,
  saveFixture,
  FIXTURES,
  MAX_STORED_CASES,
  type Fixture,
  type OracleName,
  type TimedCase
} from './fixtures.js'
import { generateCase } from './generate.js'
import { Harness, STALL_MS, type OracleFailure } from './harness.js'
import type { LayoutName } from './layouts.js'
import { SETTLE_MS } from './probe.js'
import { minimise } from './minimise.js'
import { regenerate } from './replay.js'
import { newStats, Pump, type PumpStats } from './pump.js'
import { describe, type Baseline } from './resources.js'
import { figures } from './proc.js'

export interface CampaignOptions {
  layout: LayoutName
  seconds: number
  seed: number
  connections: number
  /** Time budget for shrinking each new finding. */
  shrinkSeconds: number
  fixturesDir?: string
  log?: (line: string) => void
}

export interface Finding {
  layout: LayoutName
  oracle: OracleName
  signature: string
  message: string
  /** When it was first seen, ms into the campaign. */
  afterMs: number
  occurrences: number
  /** The fixture written for it, or the one that already held it. */
  fixture: string | null
  replay: string | null
  known: boolean
}

export interface CampaignResult {
  layout: LayoutName
  seed: number
  seconds: number
  stats: PumpStats
  casesPerSecond: number
  connsPerSecond: number
  restarts: number
  findings: Finding[]
  /**
   * Baseline and settled figures of the first gateway: the resource oracle is checked only when it ran
   * to the end (a gateway restarted after a failure has no baseline; `settled` is then null).
   */
  baseline: Baseline
  settled: Baseline | null
}

/** How far back a failure looks for the inputs that caused it. */
function windowFor (oracle: OracleName): number {
  return oracle === 'crash' ? 3000 : oracle === 'healthz' ? 5000 : STALL_MS + 2000
}

interface Pending {
  failure: OracleFailure
  inputs: TimedCase[]
  range: { from: number, to: number }
  afterMs: number
  count: number
}

export async function runCampaign (o: CampaignOptions): Promise<CampaignResult> {
  const log = o.log ?? (() => {})
  const corpus: CapturedPair[] = loadCorpus()
  const stats = newStats()
  const pending = new Map<string, Pending>()
  let index = 0
  let restarts = 0
  let trafficMs = 0
  let settled: Baseline | null = null
  let harness: Harness | null = await Harness.start(o.layout)
  // The time box counts from the first gateway up: traffic, and restarts after failures.
  const t0 = Date.now()
  const end = t0 + o.seconds * 1000
  log(
    `${o.layout}: up (${harness.stack
      .processes()
      .map(p => `${p.role} ${p.pid}`)
      .join(', ')}); baseline ${describe(harness.baseline)}`
  )
  const next = (): { index: number, plan: ReturnType<typeof generateCase> } => {
    const i = index++
    return { index: i, plan: generateCase(o.seed, i, corpus) }
  }
  const note = (failure: OracleFailure, inputs: TimedCase[], from: number, to: number): void => {
    const key = `${failure.oracle} ${failure.signature}`
    const p = pending.get(key)
    if (p !== undefined) { p.count++; return }
    pending.set(key, { failure, inputs, range: { from, to }, afterMs: failure.atMs - t0, count: 1 })
    log(
      `${o.layout}: FOUND after ${((failure.atMs - t0) / 1000).toFixed(1)} s (case ${to - 1}): ${failure.oracle}: ${
        failure.signature}`
    )
  }
  let lastReport = Date.now()
  const baseline: Baseline = harness.baseline
  // After a first failure a spare gateway is kept started (viewer playing) while the next one is
  // fuzzed, and takes over at once: restarts would otherwise eat the time box when crashes come often.
  let standby: Promise<Harness> | null = null
  const spare = (): Promise<Harness> => {
    const p = Harness.start(o.layout, { baseline: false })
    p.catch(() => {})
    return p
  }
  while (harness !== null) {
    const h: Harness = harness
    const segmentFrom = index
    const segmentAt = Date.now()
    const pump = new Pump(h.stack.port, o.connections, stats)
    let failure: OracleFailure | null = null
    await pump.run(next, () => {
      failure ??= h.failure()
      if (Date.now() - lastReport >= 10_000) {
        lastReport = Date.now()
        const now = h.stack.processes().map(p => figures(p.role, p.pid)).filter(f => f !== null)
        log(
          `${o.layout}: ${((Date.now() - t0) / 1000).toFixed(0)} s, ${stats.cases} cases, ${
            (stats.cases / ((trafficMs + Date.now() - segmentAt) / 1000)).toFixed(0)} cases/s; ${describe(now)}`
        )
      }
      return failure !== null || Date.now() >= end
    })
    const f = failure as OracleFailure | null
    const inputs = f === null ? [] : pump.inFlightAt(f.atMs, windowFor(f.oracle))
    await pump.drain()
    trafficMs += Date.now() - segmentAt
    if (f !== null) {
      note(f, inputs, segmentFrom, index)
      await h.stop()
      harness = null
      // Fuzzing goes on on a fresh gateway (without warm-up and baseline) while there is time left.
      if (Date.now() < end - 5000) { restarts++; harness = await (standby ?? spare()); standby = spare() }
      continue
    }
    if (h.hasBaseline) {
      const r = await h.resourcesBack(SETTLE_MS)
      settled = r.now
      if (r.failure !== null) note(r.failure, [], segmentFrom, index)
    }
    await h.stop()
    harness = null
  }
  if (standby !== null) await (await standby.catch(() => null))?.stop()
  const findings: Finding[] = []
  for (const p of pending.values()) findings.push(await keep(o, p, log))
  return {
    layout: o.layout,
    seed: o.seed,
    seconds: trafficMs / 1000,
    stats,
    casesPerSecond: stats.cases / (trafficMs / 1000),
    connsPerSecond: stats.conns / (trafficMs / 1000),
    restarts,
    findings,
    baseline,
    settled
  }
}

/** Shrink a new finding and save it (a finding a fixture already holds is only reported). */
async function keep (o: CampaignOptions, p: Pending, log: (s: string) => void): Promise<Finding> {
  const base = {
    layout: o.layout,
    oracle: p.failure.oracle,
    signature: p.failure.signature,
    message: p.failure.message,
    afterMs: p.afterMs,
    occurrences: p.count
  }
  const known = knownFixture(base, o.fixturesDir ?? FIXTURES)
  if (known !== null) return { ...base, fixture: known, replay: `npm run fuzz -- --replay ${known}`, known: true }
  const original = p.inputs.length > 0 ? p.inputs : regenerate({ seed: o.seed, ...p.range })
  // A whole run's traffic replays for as long as it ran, and each attempt needs it: shrink that on request.
  const shrunk =
    p.failure.oracle !== 'crash' && original.length > MAX_STORED_CASES
      ? original
      : await minimise(o.layout, p.failure, original, o.shrinkSeconds, log)
  const fixture: Fixture = {
    ...base,
    found: { seed: o.seed, afterMs: p.afterMs, date: new Date().toISOString(), commit: commitId() },
    shrunk: shrunk !== original,
    cases: shrunk.length <= MAX_STORED_CASES ? shrunk : [],
    original:
      p.inputs.length > 0 ? { seed: o.seed, cases: p.inputs.map(c => [c.index, c.atMs]) } : { seed: o.seed, ...p.range }
  }
  const saved = saveFixture(fixture, o.fixturesDir ?? FIXTURES)
  log(`${o.layout}: saved ${saved.file} (${shrunk.length} case(s)); replay: ${saved.replay}`)
  if (shrunk === original && original.length > MAX_STORED_CASES) {
    log(`${o.layout}: to shrink it (long): npm run fuzz -- --shrink ${saved.file} --shrink-seconds 1800`)
  }
  return { ...base, fixture: saved.file, replay: saved.replay, known: false }
}
