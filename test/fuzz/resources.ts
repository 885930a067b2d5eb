/**
 * The resource oracle: every process's descriptors and resident memory, taken as a baseline after
 * the warm-up and checked again after the traffic has stopped and the gateway has settled.
 *
 * Each figure is the lowest of the samples over a window (SAMPLES × SAMPLE_MS), so connections that
 * live for milliseconds (health probes, load scrapes, the relays' /healthz probes) do not count.
 * Tolerances:
 * - descriptors: FD_SLACK over the baseline per process. The gateway's own periodic connections can
 *   still be open in every sample of a window; a leak of a few descriptors per run hides below it,
 *   one that grows with the traffic does not.
 * - resident memory: the larger of RSS_SLACK_KIB and RSS_SLACK_RATIO over the baseline. V8 keeps the
 *   heap it grew under load and glibc keeps freed arenas, so RSS does not fall back after a burst; the
 *   bound catches memory that keeps growing with the traffic (held buffers, sessions never freed).
 */
import { census, figures, type ProcFigures } from './proc.js'

export const FD_SLACK = 2
export const RSS_SLACK_KIB = 64 * 1024
export const RSS_SLACK_RATIO = 0.5
const SAMPLES = 4
const SAMPLE_MS = 500

export type Baseline = ProcFigures[]

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** The lowest descriptor count and RSS of each process over one window. */
export async function sampleWindow (procs: ReadonlyArray<{ role: string, pid: number }>): Promise<Baseline> {
  const low = new Map<number, ProcFigures>()
  for (let i = 0; i < SAMPLES; i++) {
    if (i > 0) await sleep(SAMPLE_MS)
    for (const p of procs) {
      const f = figures(p.role, p.pid)
      if (f === null) continue
      const prev = low.get(p.pid)
      low.set(
        p.pid,
        prev === undefined ? f : { ...f, fds: Math.min(prev.fds, f.fds), rssKiB: Math.min(prev.rssKiB, f.rssKiB) }
      )
    }
  }
  return [...low.values()]
}

export function rssBoundKiB (baseKiB: number): number {
  return baseKiB + Math.max(RSS_SLACK_KIB, Math.round(baseKiB * RSS_SLACK_RATIO))
}

/** What is above its tolerance in `now` against `base` (empty when nothing). */
export function overBaseline (base: Baseline, now: Baseline): string[] {
  const out: string[] = []
  for (const b of base) {
    const n = now.find(x => x.pid === b.pid)
    if (n === undefined) { out.push(`${b.role} (pid ${b.pid}) is gone`); continue }
    if (n.fds > b.fds + FD_SLACK) {
      out.push(`${b.role} (pid ${b.pid}): ${b.fds} -> ${n.fds} descriptors (tolerance +${FD_SLACK})`)
    }
    if (n.rssKiB > rssBoundKiB(b.rssKiB)) {
      out.push(
        `${b.role} (pid ${b.pid}): RSS ${Math.round(b.rssKiB / 1024)} -> ${Math.round(n.rssKiB / 1024)} MiB (bound ${
          Math.round(rssBoundKiB(b.rssKiB) / 1024)} MiB)`
      )
    }
  }
  return out
}

export function describe (figs: Baseline): string {
  return figs.map(f => `${f.role} ${f.fds} fds ${Math.round(f.rssKiB / 1024)} MiB`).join(', ')
}

/** What each process over its baseline holds (descriptor census), for the failure message. */
export function censusOf (base: Baseline, now: Baseline, ports: readonly number[]): string {
  return now
    .filter(n => {
      const b = base.find(x => x.pid === n.pid)
      return b !== undefined && n.fds > b.fds + FD_SLACK
    })
    .map(n => `${n.role} (pid ${n.pid}) holds: ${JSON.stringify(census(n.pid, ports))}`)
    .join('\n')
}

/**
 * Wait (up to `settleMs`) until every process is back within its tolerance; null when it is,
 * otherwise what stayed over, with the census of the descriptors held.
 */
export async function settledOrLeak (
  base: Baseline,
  procs: () => ReadonlyArray<{ role: string, pid: number }>,
  ports: readonly number[],
  settleMs: number
): Promise<{ message: string, now: Baseline } | { message: null, now: Baseline }> {
  const deadline = Date.now() + settleMs
  for (;;) {
    const now = await sampleWindow(procs())
    const over = overBaseline(base, now)
    if (over.length === 0) return { message: null, now }
    if (Date.now() > deadline) {
      return {
        message: `not back at the baseline ${Math.round(settleMs / 1000)} s after the traffic stopped: ${
          over.join('; ')}\n${censusOf(base, now, ports)}`,
        now
      }
    }
  }
}
