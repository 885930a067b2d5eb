/**
 * The ops listener's app (`ops.host:ops.port`, loopback by default): /metrics, /status, the status
 * page and its feeds (src/ops/status-routes.ts), /healthz, /readyz and, with `admin.enabled`, the
 * admin API under /admin. Every request passes checkOpsRequest first (src/ops/ops-guard.ts).
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import type { GatewayMetrics } from '../core/metrics.js'
import type { HttpRoutes } from '../web/http-routes.js'
import { registerHealth, type StatusSource } from '../web/web.js'
import { registerAdmin } from './admin.js'
import type { Operator } from './control.js'
import { checkOpsRequest } from './ops-guard.js'

export const OPS_REALM = 'tunnelgate-ops'

export interface OpsWebDeps {
  config: Config
  metrics: GatewayMetrics
  logger: Logger
  source: StatusSource
  httpRoutes: HttpRoutes | null
  operator: Operator
  /** The status page routes (/, /status/assets, /status/live, /status/events, /status/summary). */
  registerStatus: (app: FastifyInstance) => void
}

export async function buildOpsWeb (d: OpsWebDeps): Promise<FastifyInstance> {
  const { config, metrics, source } = d
  const log = d.logger.child({ component: 'ops' })
  const app = Fastify({
    loggerInstance: log.child({}, { level: 'warn' }) as unknown as FastifyBaseLogger,
    http: { requireHostHeader: false } as never,
    bodyLimit: 64 * 1024,
    connectionTimeout: 30_000,
    // Admin requests: unknown fields are an error (400), not silently dropped.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } }
  })
  app.addHook('onRequest', async (req, reply) => {
    const v = checkOpsRequest(config.ops.token, req.headers)
    if (v.ok) return
    metrics.errorsTotal.inc({ code: 'TG_ERR_OPS_AUTH' })
    log.info(
      { event: 'ops-refused', client: req.ip, status: v.status, code: 'TG_ERR_OPS_AUTH', reason: v.message },
      'ops request refused'
    )
    if (v.status === 401) {
      void reply.header('WWW-Authenticate', [`Bearer realm="${OPS_REALM}"`, `Basic realm="${OPS_REALM}"`])
    }
    return await reply.code(v.status).send({ error: { code: 'TG_ERR_OPS_AUTH', message: v.message } })
  })
  app.addHook('onResponse', async (req, reply) => {
    metrics.webRequestsTotal.inc({
      route: `ops:${req.routeOptions.url ?? 'unknown'}`, status: String(reply.statusCode)
    })
  })
  registerHealth(app, source)
  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await source.metricsText()))
  app.get(
    '/status',
    async () => d.httpRoutes === null
      ? await source.status()
      : { ...(await source.status()), httpRoutes: d.httpRoutes.status() }
  )
  d.registerStatus(app)
  if (config.admin.enabled) await registerAdmin(app, { op: d.operator, metrics, logger: d.logger })
  await app.ready()
  return app
}
