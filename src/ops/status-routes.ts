/**
 * The status page on the ops listener: `/` (index.html), its assets under /status/assets/
 * (files in src/web/status-page/, served by the portal: no CDN), `/status/live` (the last sample +
 * the sparkline history, JSON), `/status/events` (server-sent events, one per sample) and
 * `/status/summary` (this gateway's relay summaries, JSON; a portal reads a relay node's with a signed
 * request on the relay's tunnel port, src/web/cluster-reads.ts).
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import type { GatewayMetrics } from '../core/metrics.js'
import type { RelaySummary } from '../route/relay-view.js'
import type { StatusFeed } from './status-feed.js'

/**
 * The page's files: <module dir>/../web/status-page, i.e. src/web/status-page when running from src/,
 * dist/web/status-page when the build copied them (the Docker image); else the repository's src/.
 */
const here = dirname(fileURLToPath(import.meta.url))
export const STATUS_ASSET_DIR = existsSync(resolve(here, '../web/status-page/index.html'))
  ? resolve(here, '../web/status-page')
  : resolve(here, '../../src/web/status-page')

const ASSETS: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8', 'style.css': 'text/css; charset=utf-8', 'favicon.svg': 'image/svg+xml'
}

export interface StatusRoutesDeps {
  feed: StatusFeed
  metrics: GatewayMetrics
  maxEventClients: number
  sampleIntervalMs: number
  summaries: () => Promise<RelaySummary[]>
  /** The public port serving /watch (the page links there), null when the player is off. */
  watchPort: () => number | null
  /** The admin API is on this listener (the page shows its drain buttons). */
  admin: boolean
}

export function registerStatusRoutes (app: FastifyInstance, deps: StatusRoutesDeps): { closeStreams: () => void } {
  const { feed, metrics } = deps
  const files = new Map<string, Buffer>()
  for (const name of ['index.html', ...Object.keys(ASSETS)]) files.set(name, readFileSync(join(STATUS_ASSET_DIR, name)))
  const streams = new Set<{ end: () => void }>()
  const meta = (): { sampleIntervalMs: number, watchPort: number | null, admin: boolean } => ({
    sampleIntervalMs: deps.sampleIntervalMs, watchPort: deps.watchPort(), admin: deps.admin
  })

  app.get(
    '/',
    async (_req, reply) => reply.type('text/html; charset=utf-8').header(
      'Cache-Control', 'no-cache'
    ).send(files.get('index.html'))
  )
  app.get('/favicon.ico', async (_req, reply) => reply.type(ASSETS['favicon.svg']!).send(files.get('favicon.svg')))
  app.get('/status/assets/:name', async (req, reply) => {
    const name = (req.params as { name: string }).name
    const type = ASSETS[name]
    if (type === undefined) return reply.code(404).send({ error: 'not found' })
    return reply.type(type).header('Cache-Control', 'no-cache').send(files.get(name))
  })
  app.get('/status/live', async () => {
    const last = feed.last ?? await feed.sample()
    return { sample: last, history: feed.history.toArray(), ...meta() }
  })
  // This gateway's relays in brief (tunnels, bytes, busiest paths): what a portal in front of it
  // asks for its own status page (RemoteRelays.summaries).
  app.get('/status/summary', async () => ({ relays: await deps.summaries() }))
  app.get('/status/events', (req, reply) => {
    if (feed.listenerCount >= deps.maxEventClients) {
      metrics.errorsTotal.inc({ code: 'TG_ERR_STATUS_TOO_MANY_CLIENTS' })
      void reply.code(503).header('Retry-After', '10').send({
        error: { code: 'TG_ERR_STATUS_TOO_MANY_CLIENTS', message: 'too many live status pages; poll /status/live' }
      })
      return
    }
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no'
    })
    res.write(`retry: ${deps.sampleIntervalMs}\n`)
    res.write(
      `event: history\ndata: ${JSON.stringify({ history: feed.history.toArray(), ...meta(), sample: feed.last })}\n\n`
    )
    const stream = { end: () => { off(); res.end() } }
    const off = feed.subscribe(s => { res.write(`event: sample\ndata: ${JSON.stringify(s)}\n\n`) })
    streams.add(stream)
    req.raw.socket.setTimeout(0)
    req.raw.on('close', () => { off(); streams.delete(stream) })
  })
  return { closeStreams: () => { for (const s of streams) s.end(); streams.clear() } }
}
