/**
 * Relay worker process entry: receives its config over IPC, then tunnel legs (socket handles
 * with the bytes already read; POST legs as relayed messages, see relayed-post.ts), and answers
 * metrics/status queries from the portal.
 */
import { createLogger } from '../core/logger.js'
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import { countsByCode, createMetrics } from '../core/metrics.js'
import { Relay } from './relay.js'
import { isLegMessage, type LegMessage } from './handoff.js'
import { isPostToWorker, RelayedPost, type PostToWorker } from './relayed-post.js'
import { answerOps, setupWorkerOps } from '../ops/worker-ops.js'
import { startBalancing, type Balancing } from '../backends/balancing.js'
import type { LoadFigure } from '../backends/pool.js'
import type net from 'node:net'
import { trackTimersIfAsked } from '../core/timer-census.js'
import { contained, installFaultsFromEnv, reportFault, type FaultOwner } from '../core/containment.js'

trackTimersIfAsked()
installFaultsFromEnv(process.env)

type ControlMessage =
  | { type: 'config', config: Config, workerId: number, generation?: number, drainedBackends?: string[] }
  | {
    type: 'query'
    id: number
    what: 'metrics' | 'errors' | 'status' | 'summary' | 'tunnels' | 'kick' | 'drain-backend' | 'reconfigure'
    arg?: unknown
  }
  | { type: 'shutdown', graceMs: number }
  | { type: 'load', figures: LoadFigure[] }

/** To the portal; a failed write (the portal is gone) is dropped: 'disconnect' below ends this process. */
function toPortal (msg: unknown): void { if (process.connected) process.send?.(msg, undefined, {}, () => {}) }

let relay: Relay | null = null
/** POST legs the portal relays here, by its id. */
const posts = new Map<number, RelayedPost>()

function relayedPost (m: PostToWorker): void {
  if (m.type === 'post') {
    const leg = new RelayedPost(m.id, toPortal, () => { posts.delete(m.id) })
    if (relay === null) { leg.destroy(); return }
    posts.set(m.id, leg)
    relay.acceptPost(leg, m.head, m.cookie, Buffer.from(m.rest, 'latin1'), {
      clientAddress: m.clientAddress, acceptedAt: performance.now()
    })
  } else if (m.type === 'post-data') posts.get(m.id)?.deliver(Buffer.from(m.data, 'latin1'))
  else posts.get(m.id)?.clientClosed()
}
let registry: ReturnType<typeof createMetrics>['registry'] | null = null
let balancing: Balancing | null = null

/** A throw while taking one leg closes that leg (its socket, or its relayed POST), not the worker. */
function legOwner (close: () => void, tag: string): FaultOwner {
  return {
    faultTag: tag,
    fault (err, where) {
      if (relay !== null) reportFault(relay.metrics, logOf(), where, err)
      try { close() } catch {}
    }
  }
}
const userAgentOf = (
  head: { headers: Array<[string, string]> }
): string => head.headers.find(([k]) => k.toLowerCase() === 'user-agent')?.[1] ?? ''
let workerLog: Logger | null = null
const logOf = (): Logger => workerLog ?? (workerLog = createLogger('info'))

process.on('message', (msg: unknown, handle?: unknown) => {
  if (isPostToWorker(msg)) {
    const m = msg
    const tag = m.type === 'post' ? userAgentOf(m.head) : ''
    const close = (): void => {
      const leg = posts.get(m.id)
      posts.delete(m.id)
      if (leg !== undefined) leg.destroy()
      else toPortal({ type: 'post-ctl', id: m.id, op: 'destroy' })
    }
    contained(legOwner(close, tag), 'worker-post-message', relayedPost)(m)
    return
  }
  if (isLegMessage(msg)) {
    const socket = handle as net.Socket | undefined
    if (socket === undefined || relay === null) return
    contained(
      legOwner(() => socket.destroy(), msg.head === null ? '' : userAgentOf(msg.head)), 'worker-leg-message', takeLeg
    )(msg, socket)
    return
  }
  control(msg as ControlMessage)
})

function takeLeg (msg: LegMessage, socket: net.Socket): void {
  if (relay === null) return
  const rest = Buffer.from(msg.rest, 'base64')
  const info = {
    clientAddress: msg.clientAddress,
    acceptedAt: performance.now(),
    ...(msg.allowedPath === undefined ? {} : { allowedPath: msg.allowedPath }),
    ...(msg.user === undefined ? {} : { user: msg.user })
  }
  if (msg.kind === 'get' && msg.head !== null) relay.acceptGet(socket, msg.head, msg.cookie, rest, info)
  else if (msg.kind === 'post' && msg.head !== null) relay.acceptPost(socket, msg.head, msg.cookie, rest, info)
  else if (msg.kind === 'websocket' && msg.head !== null) relay.acceptWebSocket(socket, msg.head, rest, info)
  else relay.acceptRtsp(socket, rest, info)
}

function control (m: ControlMessage): void {
  if (m.type === 'config') {
    const logger = createLogger(m.config.logLevel).child({ component: 'relay-worker', worker: m.workerId })
    workerLog = logger
    const metrics = createMetrics({ defaultMetrics: false })
    registry = metrics.registry
    relay = new Relay(m.config, metrics, logger)
    setupWorkerOps(relay, m, logger, metrics.registry)
    // Probes and bandwidth here; outside load figures come from the portal ('load' messages).
    balancing = startBalancing({ config: m.config, pool: relay.pool, metrics, logger, scrape: false, probe: true })
    toPortal({ type: 'ready' })
    return
  }
  if (m.type === 'query') {
    const ops = answerOps(relay, m.what, m.arg)
    if (ops !== undefined) { toPortal({ type: 'reply', id: m.id, data: ops }); return }
    if (m.what === 'errors') {
      void (relay === null ? Promise.resolve({}) : countsByCode(relay.metrics.errorsTotal)).then(
        data => toPortal({ type: 'reply', id: m.id, data }), () => toPortal({ type: 'reply', id: m.id, data: {} })
      )
    } else if (m.what === 'metrics') {
      registry?.getMetricsAsJSON().then(
        json => toPortal({ type: 'reply', id: m.id, data: json }), () => toPortal({ type: 'reply', id: m.id, data: [] })
      )
    } else {
      toPortal({
        type: 'reply',
        id: m.id,
        data: {
          tunnels: relay?.activeSessions ?? 0,
          unpairedLegs: relay?.pendingPostCount ?? 0,
          tunnelsByIp: relay?.tunnelsPerIp() ?? {},
          backends: relay?.pool.all().map(
            b => ({ name: b.config.name, sessions: b.sessions, healthy: relay!.pool.isHealthy(b), bps: b.bps })
          ) ??
            []
        }
      })
    }
    return
  }
  if (m.type === 'load') {
    for (const f of m.figures) relay?.pool.setExternal(f)
    return
  }
  if (m.type === 'shutdown') {
    void balancing?.close()
    void (relay?.close(m.graceMs) ?? Promise.resolve()).then(() => process.exit(0))
  }
}

process.on('disconnect', () => { void (relay?.close(0) ?? Promise.resolve()).then(() => process.exit(0)) })
