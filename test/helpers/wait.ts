/**
 * Waiting in tests: a poller with a deadline (tests never sleep for a fixed time when an event can
 * be awaited) and a pause for the gaps no event marks.
 */

type Falsy = undefined | null | false

/**
 * Poll until something holds. Two forms:
 * - `waitFor(fn, what, timeoutMs = 3000, intervalMs = 5)`: until `fn` gives a truthy value
 *   (returned); rejects naming `what` once the deadline passes.
 * - `waitFor(probe, ok, timeoutMs = 8000, stepMs = 100)`: until `ok(value)`; returns the last value
 *   either way, so the caller asserts on what was seen.
 */
export async function waitFor<T> (fn: () => T | Falsy | Promise<T | Falsy>, what: string, timeoutMs?: number,
  intervalMs?: number): Promise<T>
export async function waitFor<T> (probe: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs?: number,
  stepMs?: number): Promise<T>
export async function waitFor<T> (fn: () => T | Promise<T>, until: string | ((v: T) => boolean), timeoutMs?: number,
  stepMs?: number): Promise<T> {
  const settled = typeof until === 'string'
    ? (v: T): boolean => v !== undefined && v !== null && v !== false
    : until
  const limit = timeoutMs ?? (typeof until === 'string' ? 3000 : 8000)
  const step = stepMs ?? (typeof until === 'string' ? 5 : 100)
  const deadline = Date.now() + limit
  for (;;) {
    const v = await fn()
    if (settled(v)) return v
    if (Date.now() > deadline) {
      if (typeof until === 'string') throw new Error(`timed out after ${limit} ms waiting for ${until}`)
      return v
    }
    await pause(step)
  }
}

/** Resolve after `ms` (only for gaps that no event can mark, e.g. forcing TCP segments apart). */
export function pause (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}
