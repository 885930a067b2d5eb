/**
 * Request-head limits for the later requests of a kept-alive web connection. The front door reads
 * the first head of every connection itself (limits.httpHeadBytes, limits.httpHeaders,
 * limits.headerTimeoutMs); after it hands a web connection to Fastify, Node's HTTP parser reads the
 * next heads. Node enforces `maxHeaderSize` (set from limits.httpHeadBytes) but only truncates
 * header lines past `maxHeadersCount`, and its `headersTimeout` never runs here (that check is set
 * up when an http.Server listens, and this one never does: it is fed connections). So:
 *  - too many header lines → 431 (onRequest hook; Node parses one line more than allowed);
 *  - a head started but not finished within limits.headerTimeoutMs after the previous reply →
 *    408 and close; an idle kept-alive connection is closed silently at that time (or earlier by
 *    the keep-alive timeout);
 *  - parser errors (head too large, malformed) → 431 / 400 like the front door.
 * Each is counted in tunnelgate_errors_total{code} and tunnelgate_limit_hits_total{limit}, and logged.
 */
import type net from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import type { GatewayMetrics } from '../core/metrics.js'
import { buildHttpError } from '../tunnel/codec/http-head.js'

type Limits = Pick<Config['limits'], 'httpHeadBytes' | 'httpHeaders' | 'headerTimeoutMs'>

interface HeadWatch { timer: NodeJS.Timeout | null, bytes: boolean }

export function guardKeptAliveHeads (app: FastifyInstance, limits: Limits, metrics: GatewayMetrics, log: Logger): void {
  app.server.maxHeadersCount = limits.httpHeaders + 1
  app.addHook('onRequest', async (req, reply) => {
    if (req.raw.rawHeaders.length / 2 <= limits.httpHeaders) return
    const reason = `more than ${limits.httpHeaders} header lines`
    metrics.errorsTotal.inc({ code: 'TG_ERR_HTTP_HEAD_TOO_LARGE' })
    metrics.limitHitsTotal.inc({ limit: 'limits.httpHeaders' })
    log.info({ client: req.socket.remoteAddress, reason }, 'bad HTTP head')
    return await reply.code(431).header('Connection', 'close').send({
      error: { code: 'TG_ERR_HTTP_HEAD_TOO_LARGE', message: reason }
    })
  })

  const watches = new WeakMap<net.Socket, HeadWatch>()
  const stop = (w: HeadWatch): void => { if (w.timer !== null) { clearTimeout(w.timer); w.timer = null } }
  app.server.on('connection', (socket: net.Socket) => {
    // The first head was read (and timed) by the front door; the watch starts after its reply.
    const w: HeadWatch = { timer: null, bytes: false }
    watches.set(socket, w)
    socket.on('data', () => { if (w.timer !== null) w.bytes = true })
    socket.once('close', () => stop(w))
  })
  app.server.on('request', (req: { socket: net.Socket }, res: { once: (e: 'finish', f: () => void) => void }) => {
    const socket = req.socket
    const w = watches.get(socket)
    if (w === undefined) return
    stop(w)
    res.once('finish', () => {
      if (socket.destroyed) return
      w.bytes = false
      w.timer = setTimeout(() => {
        w.timer = null
        if (socket.destroyed) return
        if (!w.bytes) { socket.destroy(); return }
        metrics.errorsTotal.inc({ code: 'TG_ERR_HTTP_HEAD_TIMEOUT' })
        metrics.limitHitsTotal.inc({ limit: 'limits.headerTimeoutMs' })
        log.info(
          { client: socket.remoteAddress, reason: `head not complete within ${limits.headerTimeoutMs} ms` },
          'bad HTTP head'
        )
        socket.end(buildHttpError(408, 'Request Timeout'))
        setTimeout(() => socket.destroy(), 1000).unref()
      }, limits.headerTimeoutMs)
      w.timer.unref()
    })
  })
}

/**
 * A request Node's parser refused on a web connection: answered like the front door answers a
 * first head (431 too large, 400 malformed), counted and logged.
 */
export function webClientError (
  err: Error & { code?: string }, socket: Duplex, metrics: GatewayMetrics, log: Logger
): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW'
  const code = tooLarge ? 'TG_ERR_HTTP_HEAD_TOO_LARGE' : 'TG_ERR_HTTP_HEAD_MALFORMED'
  metrics.errorsTotal.inc({ code })
  if (tooLarge) metrics.limitHitsTotal.inc({ limit: 'limits.httpHeadBytes' })
  log.info({ client: (socket as Partial<net.Socket>).remoteAddress, reason: err.code ?? err.message }, 'bad HTTP head')
  if (socket.writable) {
    socket.write(buildHttpError(tooLarge ? 431 : 400, tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'))
  }
  socket.destroy()
}
