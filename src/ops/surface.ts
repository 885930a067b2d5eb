/**
 * The operator surface of one gateway process, assembled: the Operator (control over relays,
 * workers, backends, reload), the status feed (samples for the status page), the access log,
 * the ops listener (metrics, status, the status page, the admin API), and the per-relay traffic
 * counters. gateway.ts creates it; main.ts wires SIGHUP to reload().
 */
import type net from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { Counter, type Registry } from 'prom-client'
import type { Config } from '../config/config.js'
import type { GatewayMetrics } from '../core/metrics.js'
import type { Relay } from '../route/relay.js'
import type { WorkerPool } from '../route/workers.js'
import type { RemoteRelays } from '../route/remote-relays.js'
import type { HttpRoutes } from '../web/http-routes.js'
import type { StatusSource } from '../web/web.js'
import { AccessLog } from './access-log.js'
import { Operator } from './control.js'
import { buildOpsWeb } from './ops-web.js'
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
    help: 'Bytes relayed per relay (in-process "local", worker "wN", or relay node as seen by a portal), both ' +
      'directions',
    labelNames: ['relay'],
    registers: [registry],
    collect () {
      for (const [relay, bytes] of Object.entries(totals())) {
        const prev = reported.get(relay) ?? 0
        if (bytes > prev) {
          this.inc({ relay }, bytes - prev)
          reported.set(relay, bytes)
        } else if (!reported.has(relay)) { this.inc({ relay }, 0); reported.set(relay, 0) }
      }
    }
  })
}

export interface OpsSurface {
  operator: Operator
  feed: StatusFeed
  accessLog: AccessLog
  /** Start the ops listener (`ops.host:ops.port`); returns its port. */
  start (
    listen: (server: net.Server, port: number, host: string) => Promise<void>,
    web: { source: StatusSource, httpRoutes: HttpRoutes | null, watchPort: () => number | null }
  ): Promise<number>
  close (): Promise<void>
}

export function createOpsSurface (
  d: {
    config: Config
    relay: Relay
    workers: WorkerPool | null
    remote: RemoteRelays | null
    metrics: GatewayMetrics
    logger: Logger
    loadConfig?: (() => Config) | undefined
  }
): OpsSurface {
  const { config, metrics, logger } = d
  const accessLog = new AccessLog(
    config.accessLog, logger.child({ component: 'access' }),
    () => metrics.errorsTotal.inc({ code: 'TG_ERR_ACCESS_LOG_WRITE' })
  )
  if (d.remote === null && d.workers === null) {
    d.relay.accessSink = accessLog
    registerRelayBytes(metrics.registry, () => ({ [d.relay.name]: d.relay.summary().bytes }))
  }
  if (d.workers !== null) d.workers.onAccess = r => accessLog.write(r)
  if (d.remote !== null) {
    registerRelayBytes(metrics.registry, () => Object.fromEntries(d.remote!.relays().map(r => [r.id, r.bytes])))
  }
  const operator = new Operator({
    relay: d.relay, workers: d.workers, remote: d.remote, metrics, logger, config, loadConfig: d.loadConfig
  })
  const feed = new StatusFeed(operator, {
    sampleIntervalMs: config.status.sampleIntervalMs,
    historySamples: config.status.historySamples,
    streams: config.status.streams
  })
  let app: FastifyInstance | null = null
  let streams: { closeStreams: () => void } | null = null
  return {
    operator,
    feed,
    accessLog,
    async start (listen, web) {
      app = await buildOpsWeb({
        config,
        metrics,
        logger,
        source: web.source,
        httpRoutes: web.httpRoutes,
        operator,
        registerStatus: a => {
          streams = registerStatusRoutes(a, {
            feed,
            metrics,
            maxEventClients: config.status.maxEventClients,
            sampleIntervalMs: config.status.sampleIntervalMs,
            summaries: async () => await operator.summaries(),
            watchPort: web.watchPort,
            admin: config.admin.enabled
          })
        }
      })
      await listen(app.server, config.ops.port, config.ops.host)
      feed.start()
      const port = (app.server.address() as net.AddressInfo).port
      logger.info(
        { event: 'ops-listening', host: config.ops.host, port, admin: config.admin.enabled },
        `ops listener (metrics, status page${config.admin.enabled ? ', admin API' : ''}) on ` +
          `http://${config.ops.host}:${port}/`
      )
      return port
    },
    async close () {
      feed.stop()
      streams?.closeStreams()
      if (app !== null) await app.close()
      await accessLog.close()
    }
  }
}
