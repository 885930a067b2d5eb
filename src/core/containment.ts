/**
 * Faults stay where they happen. Every event that enters a session or a connection (socket data,
 * connect, close, drain, timers, IPC messages) runs its handler through `contained`: a throw
 * closes that one session or connection (TG_ERR_INTERNAL, a log line naming the entry point, the
 * metric), never the process. Process-wide faults keep Node's default.
 *
 * Tests reach every entry point with an injected throw: `setFaultHook` in process, or
 * `TUNNELGATE_FAULTS=<entry>@<marker>,…` for child processes (a throw where a session's tag, its
 * client's User-Agent, contains the marker). Without either, the hook costs one null check.
 */

/** Every entry point a fault can be injected at (the containment test reaches each one). */
export const ENTRY_POINTS = [
  'door-data', 'door-timeout',
  'tunnel-get-data', 'tunnel-get-close', 'tunnel-get-drain', 'tunnel-post-data', 'tunnel-pairing-timer',
  'pending-post-data', 'pending-post-timer',
  'rtsp-data', 'rtsp-close',
  'ws-data', 'ws-close',
  'session-backend-connect', 'session-backend-read', 'session-backend-error', 'session-backend-close',
  'session-backend-drain',
  'session-reply-timer', 'session-idle-timer', 'session-connect-timer', 'session-stall-timer', 'session-flush-timer',
  'session-teardown-timer',
  'live-upstream-connect', 'live-upstream-read', 'live-upstream-close', 'live-upstream-timer', 'live-channel-timer',
  'live-viewer-timer',
  'worker-leg-message', 'worker-post-message',
  'portal-post-data', 'portal-forward-connect', 'portal-forward-data'
] as const

export type EntryPoint = typeof ENTRY_POINTS[number]

/** What a fault is reported to: it closes what it owns and counts the fault. */
export interface FaultOwner {
  /** Close this session or connection after a fault at `where`; must not throw. */
  fault (err: unknown, where: EntryPoint): void
  /** What injected faults are matched against (the client's User-Agent). */
  readonly faultTag: string
}

export type FaultHook = (where: EntryPoint, tag: string) => void

let hook: FaultHook | null = null

/** Tests: call `h` before every contained handler (it may throw to inject a fault); null removes it. */
export function setFaultHook (h: FaultHook | null): void { hook = h }

/**
 * `TUNNELGATE_FAULTS=session-backend-read@victim,door-data@x`: each contained handler at that
 * entry point throws for a session whose tag contains the marker. For tests of child processes.
 */
export function installFaultsFromEnv (env: NodeJS.ProcessEnv): void {
  const spec = env.TUNNELGATE_FAULTS
  if (spec === undefined || spec === '') return
  const rules = spec.split(',').map(r => r.trim()).filter(Boolean).map(r => {
    const at = r.indexOf('@')
    return { where: at === -1 ? r : r.slice(0, at), marker: at === -1 ? '' : r.slice(at + 1) }
  })
  setFaultHook((where, tag) => {
    for (const r of rules) if (r.where === where && tag.includes(r.marker)) throw new InjectedFault(where)
  })
}

/** The error an injected fault throws. */
export class InjectedFault extends Error {
  constructor (where: EntryPoint) {
    super(`injected fault at ${where}`)
    this.name = 'InjectedFault'
  }
}

/**
 * `fn` wrapped so that a throw inside it goes to `owner.fault` (and `fallback` is returned) instead
 * of reaching the event loop.
 */
export function contained<A extends unknown[], R> (
  owner: FaultOwner, where: EntryPoint, fn: (...args: A) => R, fallback?: R
): (...args: A) => R {
  return (...args: A): R => {
    try {
      if (hook !== null) hook(where, owner.faultTag)
      return fn(...args)
    } catch (err) {
      owner.fault(err, where)
      return fallback as R
    }
  }
}

/** A short, single-line description of a thrown value for a log line (no data it may carry beyond its message). */
export function describeFault (err: unknown): { error: string, stack?: string } {
  if (err instanceof Error) {
    const out: { error: string, stack?: string } = { error: `${err.name}: ${err.message}`.slice(0, 300) }
    if (err.stack !== undefined) out.stack = err.stack.split('\n').slice(1, 8).map(l => l.trim()).join(' | ')
    return out
  }
  return { error: String(err).slice(0, 300) }
}

interface FaultCounters {
  errorsTotal: { inc (labels: { code: string }): void }
  faultsTotal: { inc (labels: { where: string }): void }
}
interface FaultLog { error (obj: object, msg: string): void }

/** Count and log a contained fault (the owner closes what it owns). */
export function reportFault (
  metrics: FaultCounters, log: FaultLog, where: EntryPoint, err: unknown, context: object = {}
): void {
  metrics.errorsTotal.inc({ code: 'TG_ERR_INTERNAL' })
  metrics.faultsTotal.inc({ where })
  log.error(
    { code: 'TG_ERR_INTERNAL', where, ...context, ...describeFault(err) }, `fault at ${where}: closed this session only`
  )
}

/** The fault owner of a bare connection: a throw destroys that socket (counted where metrics are known). */
export function socketOwner (
  socket: { destroy (): void }, tag = '', report?: (where: EntryPoint, err: unknown) => void
): FaultOwner {
  return {
    faultTag: tag,
    fault (err: unknown, where: EntryPoint): void {
      try { report?.(where, err) } catch {}
      socket.destroy()
    }
  }
}
