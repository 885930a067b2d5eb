/**
 * Backend choice (pure): least load with power-of-two-choices. Two distinct candidates are drawn
 * at random with probability proportional to weight, and the one with the lower load per weight
 * wins; ties go to the first draw. Many relays deciding on the same stale view therefore do not
 * all pile onto the single least-loaded backend.
 */
export interface BackendSnapshot {
  name: string
  /** Sessions open now (as this relay sees it, or summed across the cluster). */
  sessions: number
  /** 0 = unlimited. */
  maxSessions: number
  weight: number
  healthy: boolean
  draining?: boolean
  /** Bits/s it sends now (as measured by this relay, or summed across the cluster). */
  bandwidthBps?: number
  /** 0 or absent = unlimited. */
  maxBandwidthBps?: number
}

export type Choice = { backend: string } | { backend: null, reason: 'none-healthy' | 'all-full' }

export function loadOf (b: BackendSnapshot): number { return b.sessions / b.weight }

export function isFull (b: BackendSnapshot): boolean {
  if (b.maxSessions > 0 && b.sessions >= b.maxSessions) return true
  return b.maxBandwidthBps !== undefined && b.maxBandwidthBps > 0 && (b.bandwidthBps ?? 0) >= b.maxBandwidthBps
}

export function chooseBackend (candidates: readonly BackendSnapshot[], random: () => number = Math.random): Choice {
  const up = candidates.filter(b => b.healthy && b.draining !== true)
  if (up.length === 0) return { backend: null, reason: 'none-healthy' }
  const open = up.filter(b => !isFull(b))
  if (open.length === 0) return { backend: null, reason: 'all-full' }
  if (open.length === 1) return { backend: open[0]!.name }
  const first = drawWeighted(open, random)
  const rest = open.filter(b => b !== first)
  const second = drawWeighted(rest, random)
  return { backend: loadOf(second) < loadOf(first) ? second.name : first.name }
}

function drawWeighted (list: readonly BackendSnapshot[], random: () => number): BackendSnapshot {
  let total = 0
  for (const b of list) total += b.weight
  let r = random() * total
  for (const b of list) {
    r -= b.weight
    if (r < 0) return b
  }
  return list[list.length - 1]!
}
