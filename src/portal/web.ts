/**
 * The web surface on port 80 (everything that is not a tunnel leg): health, readiness,
 * Prometheus metrics and a small status page. Built without listening: the front door feeds it
 * connections.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { guardKeptAliveHeads, webClientError } from './web-limits.js'
import type { GatewayMetrics } from '../metrics.js'
import type { Config } from '../config.js'
import { HttpRoutes, type RtspLoadOf } from './http-routes.js'
import { registerWatch, type WatchOptions } from './watch/routes.js'
import { gateFor } from './gate.js'

export interface StatusSource {
  /** The exposition text for /metrics (this process's registry, or aggregated across workers). */
  metricsText (): Promise<string>
  status (): Promise<{
    tunnels: number
    unpairedLegs: number
    backends: Array<{ name: string, url: string, sessions: number, maxSessions: number, healthy: boolean }>
  }>
  ready (): boolean
  /** A draining relay: /healthz says so (portals then send it no new tunnels). */
  draining? (): boolean
}

export async function buildWeb (deps: { config?: Config, metrics: GatewayMetrics, logger: Logger, source: StatusSource, extend?: (app: FastifyInstance) => void, watch?: WatchOptions, /** Sessions of an RTSP backend as the balancer sees them (HTTP backends tied by `rtspBackend`). */ rtspLoad?: RtspLoadOf }): Promise<FastifyInstance> {
  const { metrics, source } = deps
  const limits = deps.config?.limits
  const log = deps.logger.child({ component: 'web' })
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'web' }, { level: 'warn' }) as unknown as FastifyBaseLogger,
    // The front door read the first request head of a web connection under limits.httpHead*; the
    // later requests of a kept-alive connection are read by Node's parser under the same limits.
    http: { requireHostHeader: false, ...(limits === undefined ? {} : { maxHeaderSize: limits.httpHeadBytes }) } as never,
    connectionTimeout: 60_000,
    keepAliveTimeout: 5_000,
    clientErrorHandler: (err: Error & { code?: string }, socket) => { webClientError(err, socket, metrics, log) }
  })
  if (limits !== undefined) guardKeptAliveHeads(app, limits, metrics, log)
  app.addHook('onResponse', async (req, reply) => {
    metrics.webRequestsTotal.inc({ route: req.routeOptions.url ?? 'unknown', status: String(reply.statusCode) })
  })
  app.get('/healthz', async () => source.draining?.() === true ? { status: 'draining', draining: true } : { status: 'ok' })
  app.get('/readyz', async (_req, reply) => {
    const ok = source.ready()
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not-ready' })
  })
  app.get('/metrics', async (_req, reply) => {
    return reply.type(metrics.registry.contentType).send(await source.metricsText())
  })
  // HTTP routes (issue 10, docs/http-routes.md): the proxy plugin, and its figures in /status.
  const httpRoutes = deps.config !== undefined && deps.config.httpRoutes.length > 0 ? new HttpRoutes(deps.config, metrics, deps.logger, { rtspLoad: deps.rtspLoad }) : null
  if (httpRoutes !== null) await app.register(httpRoutes.plugin)
  app.get('/status', async () => httpRoutes === null ? await source.status() : { ...(await source.status()), httpRoutes: httpRoutes.status() })
  // The status page (/, /status/assets/*, /status/live, /status/events): src/ops/status-routes.ts.
  deps.extend?.(app)
  // The browser player (issue 8): /watch, /watch/<stream path>, /watch-assets/* (src/portal/watch/routes.ts).
  if (deps.watch !== undefined) await registerWatch(app, deps.watch, gateFor(deps.watch.config, metrics, deps.logger))
  await app.ready()
  return app
}

