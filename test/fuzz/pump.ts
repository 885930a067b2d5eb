/**
 * Keeps up to N connections in flight: starts the next case whenever there is room, remembers the
 * cases of the last seconds (to name what was in flight when an oracle failed), and counts what
 * was sent and what came back.
 */
import type { CasePlan } from './plan.js'
import type { TimedCase } from './fixtures.js'
import { sendCase } from './send.js'

/** Connections in flight unless told otherwise (the CLI's default, the CI test's, a replay's). */
export const DEFAULT_CONNECTIONS = 192
/** How long a finished case stays in the log of recent cases. */
const KEEP_MS = 10_000

interface Record { index: number, startedAt: number, endedAt: number | null, plan: CasePlan }

export interface PumpStats {
  cases: number
  conns: number
  /** First line the gateway answered, by its status (e.g. "HTTP/1.0 400", "RTSP/1.0 200", "(nothing)"). */
  answers: Map<string, number>
  kinds: Map<string, number>
}

export function newStats (): PumpStats {
  return { cases: 0, conns: 0, answers: new Map(), kinds: new Map() }
}

function bump (m: Map<string, number>, k: string): void { m.set(k, (m.get(k) ?? 0) + 1) }

export class Pump {
  readonly #port: number
  readonly #maxConns: number
  readonly stats: PumpStats
  #inFlight = 0
  readonly #running = new Set<Promise<void>>()
  #recent: Record[] = []
  #wake: (() => void) | null = null

  constructor (port: number, maxConns: number, stats = newStats()) {
    this.#port = port
    this.#maxConns = maxConns
    this.stats = stats
  }

  /** Start a case now (whether or not there is room). */
  start (index: number, plan: CasePlan): void {
    const rec: Record = { index, startedAt: Date.now(), endedAt: null, plan }
    this.#recent.push(rec)
    this.#inFlight += plan.conns.length
    const p = sendCase(this.#port, plan).then(r => {
      this.stats.cases++
      this.stats.conns += r.conns.length
      bump(this.stats.kinds, plan.kind.replace(/-.*/, ''))
      for (const c of r.conns) {
        const answer = c.firstLine === '' ? '(nothing)' : c.firstLine.split(' ').slice(0, 2).join(' ').slice(0, 24)
        bump(this.stats.answers, answer)
      }
    }, () => {}).finally(() => {
      rec.endedAt = Date.now()
      this.#inFlight -= plan.conns.length
      this.#running.delete(p)
      this.#wake?.()
    })
    this.#running.add(p)
  }

  /** Start cases from `next` while there is room, until `stop()` says so. */
  async run (next: () => { index: number, plan: CasePlan }, stop: () => boolean): Promise<void> {
    while (!stop()) {
      while (this.#inFlight < this.#maxConns && !stop()) { const n = next(); this.start(n.index, n.plan) }
      await new Promise<void>(resolve => {
        const t = setTimeout(() => { this.#wake = null; resolve() }, 100)
        this.#wake = () => { clearTimeout(t); this.#wake = null; resolve() }
      })
      this.#forget()
    }
  }

  /** Resolves when every case started has finished. */
  async drain (): Promise<void> {
    while (this.#running.size > 0) await Promise.all([...this.#running])
  }

  /** The cases running at `at` or finished within `windowMs` before it, oldest first, timed from the first. */
  inFlightAt (at: number, windowMs: number): TimedCase[] {
    const recs = this.#recent.filter(r => r.startedAt <= at && (r.endedAt === null || r.endedAt >= at - windowMs))
    const t0 = recs[0]?.startedAt ?? at
    return recs.map(r => ({ index: r.index, atMs: r.startedAt - t0, plan: r.plan }))
  }

  #forget (): void {
    const cut = Date.now() - KEEP_MS
    if (this.#recent.length > 0 && this.#recent[0]!.endedAt !== null && this.#recent[0]!.endedAt < cut) {
      this.#recent = this.#recent.filter(r => r.endedAt === null || r.endedAt >= cut)
    }
  }
}

/**
 * Send `cases` as they were found: each at its offset, but never more than `maxConns` connections
 * at once (a long list, e.g. a generated range, is pumped through like the run that made it).
 */
export async function replayCases (
  port: number,
  cases: readonly TimedCase[],
  maxConns = DEFAULT_CONNECTIONS
): Promise<void> {
  const pump = new Pump(port, maxConns)
  const t0 = Date.now()
  let i = 0
  await pump.run(
    () => {
      const c = cases[i++]!
      return { index: c.index, plan: c.plan }
    },
    () => i >= cases.length || cases[i]!.atMs > Date.now() - t0
  )
  while (i < cases.length) {
    await new Promise(resolve => setTimeout(resolve, Math.max(1, Math.min(50, cases[i]!.atMs - (Date.now() - t0)))))
    await pump.run(
      () => {
        const c = cases[i++]!
        return { index: c.index, plan: c.plan }
      },
      () => i >= cases.length || cases[i]!.atMs > Date.now() - t0
    )
  }
  await pump.drain()
}
