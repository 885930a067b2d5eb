/**
 * The worker side of the operator surface: names the worker's relay and its tunnel ids, sends
 * access records and tunnel ends to the portal, registers the per-relay byte counter, and answers
 * the portal's operator questions (summary, tunnels, kick, drain-backend, reconfigure, process).
 */
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import type { Config } from '../config/config.js'
import type { Relay } from '../route/relay.js'
import { AccessLog } from './access-log.js'
import { processInfo } from './process-view.js'
import { registerRelayBytes } from './surface.js'

export function setupWorkerOps (
  relay: Relay, m: { config: Config, workerId: number, generation?: number, drainedBackends?: string[] },
  logger: Logger, registry: Registry
): void {
  relay.name = `w${m.workerId}`
  relay.idPrefix = `w${m.workerId}.${(m.generation ?? 0).toString(36)}`
  const send = (msg: unknown): void => { if (process.connected) process.send?.(msg, undefined, {}, () => {}) }
  relay.onTunnelEnd = cookie => send({ type: 'tunnel-end', cookie })
  relay.onSessionEnd = ip => send({ type: 'session-end', ip })
  // The portal writes the access file; on stdout each worker logs its own lines.
  const local = new AccessLog({ ...m.config.accessLog, file: '' }, logger.child({ component: 'access' }))
  relay.accessSink = !m.config.accessLog.enabled
    ? null
    : m.config.accessLog.file === '' ? local : { write: r => send({ type: 'access', record: r }) }
  for (const n of m.drainedBackends ?? []) relay.pool.setDraining(n, true)
  registerRelayBytes(registry, () => ({ [relay.name]: relay.summary().bytes }))
}

/** The answer to an operator query, or undefined when `what` is not an operator query. */
export function answerOps (relay: Relay | null, what: string, arg: unknown): unknown {
  if (relay === null) return undefined
  switch (what) {
    case 'summary': return relay.summary()
    case 'tunnels': return relay.listTunnels()
    case 'kick': return relay.kick(String(arg))
    case 'drain-backend': {
      const a = arg as { name: string, draining: boolean }
      return relay.pool.setDraining(a.name, a.draining)
    }
    case 'reconfigure': relay.reconfigure(arg as Config); return true
    case 'process': return processInfo(relay.name, 'worker')
    default: return undefined
  }
}
