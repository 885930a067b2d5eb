/**
 * Every armed timer of this process, unref()'d ones too, for GET /admin/process. Node lists only
 * the timers that keep the process alive (process.getActiveResourcesInfo()), and the gateway
 * unrefs most of its own (session deadlines, pairing, idle), so a timer left armed after its
 * session closed, which keeps the session in memory until it fires, does not show there.
 *
 * Counting them takes an async hook, called for every async resource the process creates (each
 * socket request, promise and timer): a diagnostic, off unless TUNNELGATE_TRACK_TIMERS=1 (the
 * leak tests set it; test/helpers/leaks.ts).
 */
import { createHook } from 'node:async_hooks'

let armed: Set<number> | null = null

/** Start counting when the environment asks for it (idempotent); true when counting. */
export function trackTimersIfAsked (env: NodeJS.ProcessEnv = process.env): boolean {
  if (armed !== null) return true
  if (env.TUNNELGATE_TRACK_TIMERS !== '1') return false
  const set = new Set<number>()
  armed = set
  // Node emits `destroy` when a timer is cleared or has run (an interval: when cleared).
  createHook({
    init (id, type) { if (type === 'Timeout') set.add(id) },
    destroy (id) { set.delete(id) }
  }).enable()
  return true
}

/** Timers armed now and created since counting began, or null when not counting. */
export function armedTimers (): number | null {
  return armed === null ? null : armed.size
}
