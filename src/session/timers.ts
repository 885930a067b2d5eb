/**
 * The timers of one session: each callback runs as a handler of the session (a throw closes that
 * session only, src/core/containment.ts), and none keeps the process alive.
 */
import { contained, type EntryPoint, type FaultOwner } from '../core/containment.js'

export type TimerHandle = ReturnType<typeof setTimeout>

export interface SessionTimers {
  set (where: EntryPoint, ms: number, fn: () => void): TimerHandle
  clear (t: TimerHandle | null | undefined): void
}

export function containedTimers (owner: FaultOwner): SessionTimers {
  return {
    set (where, ms, fn) {
      const t = setTimeout(contained(owner, where, fn), ms)
      t.unref()
      return t
    },
    clear (t) { if (t !== null && t !== undefined) clearTimeout(t) }
  }
}
