/**
 * The operator surface of one gateway process, assembled: the Operator (control over relays,
 * workers, backends, reload), the status feed (samples for the status page), the access log,
 * the admin listener, and the per-relay traffic counters. gateway.ts creates it; main.ts wires
 * SIGHUP to reload().
 */
import type net from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { Counter, type Registry } from 'prom-client'
import type { Config } from '../config.js'
import type { GatewayMetrics } from '../metrics.js'
import type { Relay } from '../relay/relay.js'
import type { WorkerPool } from '../relay/workers.js'
import type { RemoteRelays } from '../portal/remote-relays.js'
import { AccessLog } from './access-log.js'
import { buildAdmin } from './admin.js'
import { Operator } from './control.js'
import { StatusFeed } from './status-feed.js'
import { registerStatusRoutes } from './status-routes.js'

/**
 * `tunnelgate_relay_bytes_total{relay}`: bytes relayed per relay (both directions), read from
 * the relays' own totals at scrape time (no per-packet cost).
 */
export function registerRelayBytes (registry: Registry, totals: () => Record<string, number>): void {
  const reported = new Map<string, number>()
  // eslint-disable-next-line no-new
  new Counter({
    name: 'tunnelgate_relay_bytes_total',
    help: 'Bytes relayed per relay (in-process "local", worker "wN", or relay node as seen by a portal), both directions',
    labelNames: ['relay'],
    registers: [registry],
    collect () {
      for (const [relay, bytes] of Object.entries(totals())) {
        const prev = reported.get(relay) ?? 0
        if (bytes > prev) { this.inc({ relay }, bytes - prev); reported.set(relay, bytes) } else if (!reported.has(relay)) { this.inc({ relay }, 0); reported.set(relay, 0) }
      }
    }
  })
}

export interface OpsSurface {
  operator: Operator
  feed: StatusFeed
  accessLog: AccessLog
  /** Register the status page routes on the port-80 web app (before it is ready). */
  registerWeb (app: FastifyInstance): void
  /** Start the admin listener (when admin.enabled); returns its port or null. */
  startAdmin (listen: (server: net.Server, port: number, host: string) => Promise<void>): Promise<number | null>
  close (): Promise<void>
}

export function createOpsSurface (d: { config: Config, relay: Relay, workers: WorkerPool | null, remote: RemoteRelays | null, metrics: GatewayMetrics, logger: Logger, loadConfig?: (() => Config) | undefined }): OpsSurface {
  const { config, metrics, logger } = d
  const accessLog = new AccessLog(config.accessLog, logger.child({ component: 'access' }), () => metrics.errorsTotal.inc({ code: 'TG_ERR_ACCESS_LOG_WRITE' }))
  if (d.remote === null && d.workers === null) {
    d.relay.accessSink = accessLog
    registerRelayBytes(metrics.registry, () => ({ [d.relay.name]: d.relay.summary().bytes }))
  }
  if (d.workers !== null) d.workers.onAccess = r => accessLog.write(r)
  if (d.remote !== null) registerRelayBytes(metrics.registry, () => Object.fromEntries(d.remote!.relays().map(r => [r.id, r.bytes])))
  const operator = new Operator({ relay: d.relay, workers: d.workers, remote: d.remote, metrics, logger, config, loadConfig: d.loadConfig })
  const feed = new StatusFeed(operator, { sampleIntervalMs: config.status.sampleIntervalMs, historySamples: config.status.historySamples, streams: config.status.streams })
  let admin: FastifyInstance | null = null
  let streams: { closeStreams: () => void } | null = null
  return {
    operator,
    feed,
    accessLog,
    registerWeb (app) {
      streams = registerStatusRoutes(app, { feed, metrics, maxEventClients: config.status.maxEventClients, sampleIntervalMs: config.status.sampleIntervalMs, summaries: async () => await operator.summaries() })
      feed.start()
    },
    async startAdmin (listen) {
      if (!config.admin.enabled) return null
      admin = await buildAdmin({ op: operator, metrics, logger, token: config.admin.token })
      await listen(admin.server, config.admin.port, config.admin.host)
      const port = (admin.server.address() as net.AddressInfo).port
      logger.info({ event: 'admin-listening', host: config.admin.host, port }, `admin API on http://${config.admin.host}:${port}/admin/openapi.json`)
      return port
    },
    async close () {
      feed.stop()
      streams?.closeStreams()
      if (admin !== null) await admin.close()
      await accessLog.close()
    }
  }
}
