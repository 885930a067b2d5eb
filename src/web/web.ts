/**
 * The web surface on the public port (everything that is not a tunnel leg): what viewers and load
 * balancers need, and nothing that names a backend: /healthz, /readyz, the HTTP routes and the
 * browser player. Metrics, status and the admin API are on the ops listener (src/ops/ops-web.ts).
 * Built without listening: the front door feeds it connections.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { guardKeptAliveHeads, webClientError } from './web-limits.js'
import type { GatewayMetrics } from '../core/metrics.js'
import type { Config } from '../config/config.js'
import type { HttpRoutes } from './http-routes.js'
import { registerWatch, type WatchOptions } from './watch/routes.js'
import { gateFor } from '../door/gate.js'

export interface StatusBody {
  tunnels: number
  unpairedLegs: number
  backends: Array<{ name: string, url: string, sessions: number, maxSessions: number, healthy: boolean }>
}

export interface StatusSource {
  /** The exposition text for /metrics (this process's registry, or aggregated across workers). */
  metricsText (): Promise<string>
  status (): Promise<StatusBody>
  ready (): boolean
  /** A draining relay: /healthz says so (portals then send it no new tunnels). */
  draining? (): boolean
}

/** /healthz and /readyz, on the public port (load balancers, portals' probes) and on the ops listener. */
export function registerHealth (app: FastifyInstance, source: StatusSource): void {
  app.get(
    '/healthz', async () => source.draining?.() === true ? { status: 'draining', draining: true } : { status: 'ok' }
  )
  app.get('/readyz', async (_req, reply) => {
    const ok = source.ready()
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not-ready' })
  })
}

export async function buildWeb (deps: {
  config?: Config
  metrics: GatewayMetrics
  logger: Logger
  source: StatusSource
  /** HTTP routes (docs/http-routes.md), registered as a plugin. */
  httpRoutes?: HttpRoutes | null
  watch?: WatchOptions
  /** More routes before the app is ready (the signed cluster reads of a relay node). */
  extend?: (app: FastifyInstance) => void
}): Promise<FastifyInstance> {
  const { metrics, source } = deps
  const limits = deps.config?.limits
  const log = deps.logger.child({ component: 'web' })
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'web' }, { level: 'warn' }) as unknown as FastifyBaseLogger,
    // The front door read the first request head of a web connection under limits.httpHead*; the
    // later requests of a kept-alive connection are read by Node's parser under the same limits.
    http: {
      requireHostHeader: false, ...(limits === undefined ? {} : { maxHeaderSize: limits.httpHeadBytes })
    } as never,
    connectionTimeout: 60_000,
    keepAliveTimeout: 5_000,
    clientErrorHandler: (err: Error & { code?: string }, socket) => { webClientError(err, socket, metrics, log) }
  })
  if (limits !== undefined) guardKeptAliveHeads(app, limits, metrics, log)
  app.addHook('onResponse', async (req, reply) => {
    metrics.webRequestsTotal.inc({ route: req.routeOptions.url ?? 'unknown', status: String(reply.statusCode) })
  })
  registerHealth(app, source)
  if (deps.httpRoutes != null) await app.register(deps.httpRoutes.plugin)
  deps.extend?.(app)
  // The browser player: /watch, /watch/<stream path>, /watch-assets/* (src/web/watch/routes.ts).
  if (deps.watch !== undefined) await registerWatch(app, deps.watch, gateFor(deps.watch.config, metrics, deps.logger))
  await app.ready()
  return app
}
