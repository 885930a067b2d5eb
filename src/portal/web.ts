/**
 * The web surface on port 80 (everything that is not a tunnel leg): health, readiness,
 * Prometheus metrics and a small status page. Built without listening: the front door feeds it
 * connections.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { GatewayMetrics } from '../metrics.js'

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

export async function buildWeb (deps: { metrics: GatewayMetrics, logger: Logger, source: StatusSource }): Promise<FastifyInstance> {
  const { metrics, source } = deps
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'web' }, { level: 'warn' }) as unknown as FastifyBaseLogger,
    http: { requireHostHeader: false } as never,
    connectionTimeout: 60_000,
    keepAliveTimeout: 5_000
  })
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
  app.get('/status', async () => await source.status())
  app.get('/', async (_req, reply) => {
    const s = await source.status()
    const rows = s.backends.map(b => `<tr><td>${esc(b.name)}</td><td>${esc(b.url)}</td><td>${b.healthy ? 'up' : 'down'}</td><td>${b.sessions}${b.maxSessions > 0 ? ` / ${b.maxSessions}` : ''}</td></tr>`).join('')
    return reply.type('text/html; charset=utf-8').send(`<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>tunnelgate</title>
<style>body{font-family:system-ui,sans-serif;margin:1.5rem}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem}</style></head>
<body><h1>tunnelgate</h1><p>Tunnels open: <b>${s.tunnels}</b> &middot; legs waiting for their pair: ${s.unpairedLegs}</p>
<h2>Backends</h2><table><tr><th>name</th><th>url</th><th>health</th><th>sessions</th></tr>${rows}</table>
<p><a href="/metrics">/metrics</a> &middot; <a href="/status">/status</a> &middot; <a href="/healthz">/healthz</a></p></body></html>`)
  })
  await app.ready()
  return app
}

function esc (s: string): string {
  return s.replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`)
}
