/**
 * Balanced HTTP pass-through on port 80, the Fastify plugin registered by web.ts: configured path
 * prefixes (`httpRoutes`) are forwarded to backend HTTP servers (HLS playlists and segments,
 * progressive MP4, status pages) with `http-proxy`. This file owns the request path; the backends'
 * state, health and choice are http-backends.ts, viewer affinity http-affinity.ts, token grants
 * http-grants.ts (docs/http-routes.md).
 *
 * http-proxy is right here and never for tunnel legs: these are ordinary, finite HTTP requests,
 * already parsed by Node's HTTP server behind the front door (docs/architecture.md).
 *
 * - Only configured prefixes, only to configured backends. The request target is normalised
 *   (percent-decoding, '.', '..', '//') before matching; absolute-form targets, encoded '/', '\' and
 *   NUL, and '..' above the root are refused with 400; an unmapped path gets 404. The upstream path
 *   is rebuilt from the decoded segments, so what reaches a backend is always <base>/<canonical rest>.
 * - A viewer stays on its backend while that backend is healthy; a new viewer goes to the one with
 *   the most room. A request refused or timed out is retried on another backend when nothing of
 *   the answer was sent yet, and the viewer moves there.
 * - Streaming both ways (pipes, no buffering); Range and 206 pass through untouched; hop-by-hop
 *   headers dropped both ways; Host is the backend's, X-Forwarded-For/-Host/-Proto/-Port are set
 *   by the portal (client-sent ones are dropped).
 * - Access control as for tunnels (the gate, gate.ts): path-bound tokens (`auth.tokenSecrets`, Bearer
 *   or query parameter) or a grant cookie, else HTTP Basic (`auth.basic`) when configured.
 */
import http from 'node:http'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import httpProxy from 'http-proxy'
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import type { ErrorCode } from '../core/errors.js'
import type { GatewayMetrics } from '../core/metrics.js'
import type { Header } from '../tunnel/codec/rtsp-message.js'
import { tokenOf } from '../tunnel/codec/access.js'
import { gateFor, type Gate } from '../door/gate.js'
import { redactUrl } from '../core/redact.js'
import { encodeSegment, matchRoute, normalisePath } from '../config/http-path.js'
import type { HttpBackendConfig, HttpProxyConfig, HttpRouteConfig } from '../config/http-routes.js'
import {
  affinityCookie, formatAffinity, newViewerId, parseAffinity, ViewerTable, wantedBackend, type Viewer
} from './http-affinity.js'
import { HttpBackendPool, type HttpBackendStatus, type RtspLoadOf } from './http-backends.js'
import { parseCookies } from './http-cookies.js'
import { grantCookie, grantCovers } from './http-grants.js'
import { httpRouteMetrics, type HttpRouteMetrics } from './http-route-metrics.js'
import { loadAssets } from './static-assets.js'

/** Hop-by-hop headers (RFC 9110 §7.6.1) plus ones the portal sets itself. */
const HOP_BY_HOP = [
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade'
]
const PORTAL_SET = [
  'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'forwarded', 'x-real-ip'
]
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'TG_CONNECT_TIMEOUT'])
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const

interface RouteState {
  config: HttpRouteConfig
  inFlight: number
  requests: number
  bytes: number
  upstreamErrors: number
  statuses: Record<string, number>
}

export interface HttpRoutesStatus {
  path: string
  inFlight: number
  requests: number
  bytes: number
  upstreamErrors: number
  statuses: Record<string, number>
  backends: HttpBackendStatus[]
}

interface Ctx {
  route: RouteState
  backend: HttpBackendConfig | null
  tried: Set<string>
  attempts: number
  upstreamPath: string
  startedAt: number
  bytesDown: number
  viewer: Viewer
  /** The affinity cookie value the request carried (id.slot), to decide whether to set it. */
  cookieSent: string | null
  /** The grant cookie to set (the request carried a valid token), else null. */
  grantCookie: string | null
  timedOut: boolean
  connectTimer: NodeJS.Timeout | null
  publicPath: string
  client: string
}

/** The HTTP-route proxy: routes' state, the request path and the Fastify plugin. */
export class HttpRoutes {
  readonly routes: RouteState[]
  readonly #cfg: HttpProxyConfig
  readonly #config: Config
  readonly #logger: Logger
  readonly #metrics: GatewayMetrics
  readonly #m: HttpRouteMetrics
  readonly #pool: HttpBackendPool
  readonly #viewers: ViewerTable
  readonly #agent: http.Agent
  readonly #proxy: httpProxy
  readonly #ctx = new WeakMap<http.IncomingMessage, Ctx>()
  readonly #gate: Gate
  readonly #sweep: NodeJS.Timeout
  #inFlight = 0
  #hlsJs: Buffer | null = null

  constructor (config: Config, metrics: GatewayMetrics, logger: Logger, opts: { rtspLoad?: RtspLoadOf } = {}) {
    this.#config = config
    this.#cfg = config.httpProxy
    this.#metrics = metrics
    this.#logger = logger.child({ component: 'http-routes' })
    this.#m = httpRouteMetrics(metrics.registry)
    this.routes = config.httpRoutes.map(
      r => ({ config: r, inFlight: 0, requests: 0, bytes: 0, upstreamErrors: 0, statuses: {} })
    )
    for (const r of config.httpRoutes) this.#m.inFlight.set({ transport: 'http', route: r.path }, 0)
    this.#pool = new HttpBackendPool({
      config: this.#cfg,
      routes: config.httpRoutes,
      metrics: this.#m,
      gatewayMetrics: metrics,
      logger: this.#logger,
      rtspLoad: opts.rtspLoad ?? (() => null)
    })
    this.#viewers = new ViewerTable({
      maxViewers: this.#cfg.maxViewers,
      idleMs: this.#cfg.viewerIdleMs,
      count: (backend, delta) => { this.#pool.countViewer(backend, delta) }
    })
    this.#gate = gateFor(config, metrics, logger)
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: this.#cfg.maxSocketsPerBackend, scheduling: 'lifo' })
    this.#proxy = httpProxy.createProxyServer({
      agent: this.#agent, xfwd: false, changeOrigin: true, ws: false, ignorePath: false
    })
    // Never a crash: every proxy error without a per-call handler ends up here.
    this.#proxy.on('error', (err, req, res) => {
      this.#onProxyError(err as NodeJS.ErrnoException, req, res as http.ServerResponse)
    })
    this.#proxy.on('econnreset', (_err, req) => { this.#clientGone(req) })
    this.#proxy.on('proxyReq', (proxyReq, req) => { this.#onProxyReq(proxyReq, req) })
    this.#proxy.on('proxyRes', (proxyRes, req, res) => { this.#onProxyRes(proxyRes, req, res) })
    const sweepMs = Math.max(250, Math.min(this.#cfg.viewerIdleMs / 2, 10_000))
    this.#sweep = setInterval(() => { this.#viewers.expire(Date.now()); this.#pool.publishViewers() }, sweepMs)
    this.#sweep.unref()
    if (this.enabled) this.#pool.startProbes()
  }

  get enabled (): boolean { return this.routes.length > 0 }

  close (): void {
    clearInterval(this.#sweep)
    this.#pool.close()
    this.#proxy.close()
    this.#agent.destroy()
  }

  status (): HttpRoutesStatus[] {
    const now = Date.now()
    return this.routes.map(r => ({
      path: r.config.path,
      inFlight: r.inFlight,
      requests: r.requests,
      bytes: r.bytes,
      upstreamErrors: r.upstreamErrors,
      statuses: { ...r.statuses },
      backends: r.config.backends.map(b => this.#pool.status(b, now))
    }))
  }

  /** Fastify plugin: one wildcard route per prefix, plus the hls.js bundle and a player page (src/web/hls-player/). */
  plugin = async (app: FastifyInstance): Promise<void> => {
    if (!this.enabled) return
    const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
      await this.#handle(req, reply)
    }
    for (const r of this.routes) {
      app.route({ method: [...METHODS], url: r.config.path, exposeHeadRoute: false, handler })
      app.route({ method: [...METHODS], url: `${r.config.path}/*`, exposeHeadRoute: false, handler })
    }
    app.get('/hls.js/hls.min.js', async (_req, reply) => {
      this.#hlsJs ??= await readFile(createRequire(import.meta.url).resolve('hls.js/dist/hls.min.js'))
      return reply.type('text/javascript; charset=utf-8').header(
        'cache-control', 'public, max-age=3600'
      ).send(this.#hlsJs)
    })
    const page = loadAssets('hls-player', ['index.html']).get('index.html')!
    app.get('/hls-player.html', async (_req, reply) =>
      reply.type(page.type).header('cache-control', 'no-cache').send(page.body))
    app.addHook('onClose', async () => { this.close() })
  }

  // ------------------------------------------------------------ request path

  #refuse (
    req: FastifyRequest, reply: FastifyReply, route: string, status: number, code: ErrorCode, reason: string,
    headers: Record<string, string> = {}
  ): void {
    this.#metrics.errorsTotal.inc({ code })
    this.#logger.info(
      {
        event: 'http',
        client: req.ip,
        method: req.method,
        target: redactUrl(req.raw.url ?? '').slice(0, 256),
        route,
        status,
        code,
        reason
      },
      `${req.method} ${status} ${reason}`
    )
    this.#answer(reply, route, status, reason, headers)
  }

  /** A portal-made answer, counted per route (the caller counted and logged its error). */
  #answer (
    reply: FastifyReply, route: string, status: number, reason: string, headers: Record<string, string | string[]> = {}
  ): void {
    this.#m.requests.inc({ transport: 'http', route, backend: 'none', status: String(status) })
    const rs = this.routes.find(r => r.config.path === route)
    if (rs !== undefined) { rs.requests++; rs.statuses[String(status)] = (rs.statuses[String(status)] ?? 0) + 1 }
    void reply.code(status).headers({ 'cache-control': 'no-store', ...headers }).type('text/plain; charset=utf-8').send(
      `${status} ${http.STATUS_CODES[status] ?? ''}: ${reason}\n`
    )
  }

  /**
   * Access control, as for tunnel GETs. A request with a valid token earns a grant cookie for the
   * token's path (set on its answer): HLS segments are relative URLs without the token, and players
   * (hls.js, ffmpeg, GStreamer) send the playlist's cookies with them. Nothing else stands for a
   * token: a client without the cookie presents the token on every request.
   * Returns false when the request was answered (refused, or its client left).
   */
  async #authorise (
    req: FastifyRequest, reply: FastifyReply, rp: string, path: string, cookieHeader: string | undefined
  ): Promise<{ grantCookie: string | null } | false> {
    const raw = req.raw
    const secrets = this.#config.auth.tokenSecrets
    const headers: Header[] = Object.entries(raw.headers).flatMap(
      ([k, v]) => v === undefined ? [] : Array.isArray(v) ? v.map(x => [k, x] as Header) : [[k, v] as Header]
    )
    const target = raw.url ?? ''
    const now = Date.now()
    const tokenLess = secrets.length > 0 && tokenOf(target, headers, this.#config.auth.tokenQueryParam) === null
    if (tokenLess && grantCovers(cookieHeader, this.#cfg.grantCookie, secrets, path, now)) return { grantCookie: null }
    const verdict = this.#gate.check({ client: req.ip, headers, target, path, transport: 'http' })
    const v = verdict instanceof Promise ? await verdict : verdict
    if (raw.socket.destroyed) { reply.hijack(); return false }
    if (!v.ok) {
      const h: Record<string, string[]> = {}
      for (const [k, val] of v.headers) (h[k.toLowerCase()] ??= []).push(val)
      this.#answer(reply, rp, v.status, v.statusText, h)
      return false
    }
    if (v.tokenPath === undefined || v.tokenExpMs === undefined) return { grantCookie: null }
    const secure = (raw.socket as { encrypted?: boolean }).encrypted === true
    const grant = grantCookie({
      name: this.#cfg.grantCookie,
      secret: secrets[0]!,
      tokenPath: v.tokenPath,
      tokenExpMs: v.tokenExpMs,
      nowMs: now,
      secure
    })
    return { grantCookie: grant }
  }

  async #handle (req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const raw = req.raw
    const target = raw.url ?? ''
    const norm = normalisePath(target)
    if (!norm.ok) { this.#refuse(req, reply, 'none', 400, 'TG_ERR_HTTP_BAD_PATH', norm.reason); return }
    const m = matchRoute(this.routes.map(r => r.config), norm.segments)
    if (m === null) {
      this.#refuse(req, reply, 'none', 404, 'TG_ERR_HTTP_NO_ROUTE', `no HTTP route maps ${norm.path}`)
      return
    }
    const route = this.routes.find(r => r.config === m.route)!
    const rp = route.config.path
    if (raw.method !== 'GET' && raw.method !== 'HEAD') {
      this.#refuse(
        req, reply, rp, 405, 'TG_ERR_HTTP_METHOD', `${raw.method ?? '?'} is not proxied (GET and HEAD only)`,
        { allow: 'GET, HEAD' }
      )
      return
    }
    if ((raw.headers['content-length'] !== undefined && raw.headers['content-length'] !== '0') ||
        raw.headers['transfer-encoding'] !== undefined) {
      this.#refuse(req, reply, rp, 400, 'TG_ERR_HTTP_BAD_PATH', 'GET/HEAD with a body'); return
    }
    let grantCookie: string | null = null
    if (route.config.auth && this.#gate.enabled) {
      const a = await this.#authorise(req, reply, rp, norm.path, raw.headers.cookie)
      if (a === false) return
      grantCookie = a.grantCookie
    }
    const now = Date.now()
    const cookies = parseCookies(raw.headers.cookie)
    const affinity = parseAffinity(cookies.get(this.#cfg.cookie))
    const client = req.ip
    const found = this.#viewers.find(rp, affinity, client, String(raw.headers['user-agent'] ?? ''))

    // Limits.
    if (this.#cfg.maxInFlight > 0 && this.#inFlight >= this.#cfg.maxInFlight) {
      this.#metrics.limitHitsTotal.inc({ limit: 'http_in_flight' })
      this.#refuse(
        req, reply, rp, 503, 'TG_ERR_HTTP_BUSY', `${this.#inFlight} requests in flight (httpProxy.maxInFlight)`,
        { 'retry-after': '1' }
      ); return
    }
    if (route.config.maxInFlight > 0 && route.inFlight >= route.config.maxInFlight) {
      this.#metrics.limitHitsTotal.inc({ limit: 'http_in_flight' })
      this.#refuse(
        req, reply, rp, 503, 'TG_ERR_HTTP_BUSY',
        `${route.inFlight} requests in flight on ${rp} (httpRoutes[].maxInFlight)`, { 'retry-after': '1' }
      ); return
    }

    // Backend: the viewer's (or the one its cookie names) while healthy, else the one with the most room.
    const tried = new Set<string>()
    const want = wantedBackend(found.viewer, affinity, route.config)
    let backend = route.config.backends.find(b => b.name === want && this.#pool.healthy(this.#pool.get(b.name), now))
    backend ??= this.#pool.choose(route.config, tried, now)
    const viewer = this.#viewers.touch(found.key, found.viewer, rp, now, affinity?.id ?? newViewerId())
    this.#viewers.assign(viewer, backend.name)

    const rest = m.rest.map(encodeSegment).join('/')
    const ctx: Ctx = {
      route,
      backend: null,
      tried,
      attempts: 0,
      upstreamPath: '/' + rest + (norm.trailingSlash && rest !== '' ? '/' : '') + norm.query,
      startedAt: performance.now(),
      bytesDown: 0,
      viewer,
      cookieSent: affinity === null ? null : formatAffinity(affinity),
      grantCookie,
      timedOut: false,
      connectTimer: null,
      publicPath: norm.path,
      client
    }
    this.#ctx.set(raw, ctx)
    route.inFlight++
    this.#inFlight++
    this.#m.inFlight.set({ transport: 'http', route: rp }, route.inFlight)
    // Strip what must not reach a backend; the portal sets its own X-Forwarded-*.
    const h = raw.headers
    const listed = typeof h.connection === 'string'
      ? h.connection.split(',').map(s => s.trim().toLowerCase()).filter(Boolean)
      : []
    for (const k of [...HOP_BY_HOP, ...PORTAL_SET, ...listed]) Reflect.deleteProperty(h, k)
    if (route.config.auth && this.#gate.enabled) Reflect.deleteProperty(h, 'authorization')
    if (cookies.has(this.#cfg.cookie) || cookies.has(this.#cfg.grantCookie)) {
      const others = [...cookies].filter(
        ([k]) => k !== this.#cfg.cookie && k !== this.#cfg.grantCookie
      ).map(([k, v]) => `${k}=${v}`).join('; ')
      if (others === '') Reflect.deleteProperty(h, 'cookie'); else h.cookie = others
    }
    h['x-forwarded-for'] = client
    h['x-forwarded-host'] = String(req.headers.host ?? '')
    h['x-forwarded-proto'] = 'http'
    h['x-forwarded-port'] = String(raw.socket.localPort ?? '')
    reply.hijack()
    const res = reply.raw
    res.on('close', () => { this.#finish(raw, res) })
    this.#send(raw, res, backend)
  }

  #send (req: http.IncomingMessage, res: http.ServerResponse, backend: HttpBackendConfig): void {
    const ctx = this.#ctx.get(req)!
    ctx.backend = backend
    ctx.tried.add(backend.name)
    ctx.attempts++
    ctx.timedOut = false
    const s = this.#pool.get(backend.name)
    s.inFlight++
    s.requests++
    req.url = backend.basePath + ctx.upstreamPath
    const released = { done: false }
    const release = (): void => { if (!released.done) { released.done = true; s.inFlight-- } }
    res.once('close', release)
    this.#proxy.web(req, res, {
      target: { protocol: 'http:', host: backend.host, port: backend.port } as unknown as string,
      // GET/HEAD only: an empty body stream per attempt (the client's request stream is used up).
      buffer: Readable.from([]) as unknown as httpProxy.ServerOptions['buffer']
    }, (err) => { release(); this.#onProxyError(err as NodeJS.ErrnoException, req, res) })
  }

  #onProxyReq (proxyReq: http.ClientRequest, req: http.IncomingMessage): void {
    const ctx = this.#ctx.get(req)
    if (ctx === undefined) return
    const socket = proxyReq.socket
    if (socket !== null && socket.connecting) {
      ctx.connectTimer = setTimeout(() => {
        const e = new Error(`connect timeout after ${this.#cfg.connectTimeoutMs} ms`) as NodeJS.ErrnoException
        e.code = 'TG_CONNECT_TIMEOUT'
        proxyReq.destroy(e)
      }, this.#cfg.connectTimeoutMs)
      socket.once('connect', () => {
        if (ctx.connectTimer !== null) { clearTimeout(ctx.connectTimer); ctx.connectTimer = null }
      })
    }
    proxyReq.setTimeout(this.#cfg.responseTimeoutMs, () => {
      ctx.timedOut = true
      const e = new Error(`no byte from the backend for ${this.#cfg.responseTimeoutMs} ms`) as NodeJS.ErrnoException
      e.code = 'TG_RESPONSE_TIMEOUT'
      proxyReq.destroy(e)
    })
  }

  #onProxyRes (proxyRes: http.IncomingMessage, req: http.IncomingMessage, res: http.ServerResponse): void {
    const ctx = this.#ctx.get(req)
    if (ctx === undefined) return
    if (ctx.connectTimer !== null) { clearTimeout(ctx.connectTimer); ctx.connectTimer = null }
    const h = proxyRes.headers
    const listed = typeof h.connection === 'string'
      ? h.connection.split(',').map(s => s.trim().toLowerCase()).filter(Boolean)
      : []
    for (const k of [...HOP_BY_HOP, ...listed]) Reflect.deleteProperty(h, k)
    // A redirect to the backend's own address is rewritten to the public prefix (no backend address leaks).
    const b = ctx.backend!
    if (typeof h.location === 'string') {
      for (const origin of [`http://${b.host}:${b.port}`, ...(b.port === 80 ? [`http://${b.host}`] : [])]) {
        if (h.location.startsWith(origin + b.basePath + '/') || h.location === origin + b.basePath) {
          h.location = ctx.route.config.path + h.location.slice(origin.length + b.basePath.length)
          break
        }
        if (h.location.startsWith(origin + '/')) { h.location = h.location.slice(origin.length); break }
      }
    }
    const affinity = affinityCookie(this.#cfg.cookie, ctx.viewer, ctx.route.config, ctx.cookieSent)
    const set = [affinity, ctx.grantCookie].filter((c): c is string => c !== null)
    if (set.length > 0) h['set-cookie'] = [...(h['set-cookie'] ?? []), ...set]
    proxyRes.on('data', (chunk: Buffer) => { ctx.bytesDown += chunk.length })
    // The backend dying mid-body: cut the client's transfer (it sees a short answer), never a crash.
    proxyRes.on('error', (err: NodeJS.ErrnoException) => {
      this.#upstreamError(ctx, ctx.timedOut ? 'timeout' : 'aborted', err)
      res.destroy()
    })
    proxyRes.on('aborted', () => { if (!res.destroyed) res.destroy() })
  }

  #upstreamError (ctx: Ctx, kind: string, err: NodeJS.ErrnoException): void {
    const b = ctx.backend!
    ctx.route.upstreamErrors++
    this.#m.upstreamErrors.inc({ transport: 'http', route: ctx.route.config.path, backend: b.name, kind })
    this.#logger.warn(
      {
        event: 'http-upstream-error',
        route: ctx.route.config.path,
        backend: b.name,
        kind,
        err: err.message,
        code: err.code,
        attempt: ctx.attempts
      },
      `backend ${b.name}: ${kind} (${err.code ?? err.message})`
    )
  }

  #onProxyError (err: NodeJS.ErrnoException, req: http.IncomingMessage, res: http.ServerResponse): void {
    const ctx = this.#ctx.get(req)
    if (ctx?.connectTimer != null) { clearTimeout(ctx.connectTimer); ctx.connectTimer = null }
    if (ctx === undefined || ctx.backend === null) {
      if (!res.headersSent && !res.destroyed) { res.statusCode = 502; res.end() } else res.destroy()
      return
    }
    if (res.destroyed || req.socket.destroyed) { this.#clientGone(req); return }
    const code = err.code ?? ''
    const connectFailed = CONNECT_ERRORS.has(code)
    const timeout = code === 'TG_RESPONSE_TIMEOUT' || code === 'TG_CONNECT_TIMEOUT' || ctx.timedOut
    const kind = code === 'TG_CONNECT_TIMEOUT' || timeout
      ? 'timeout'
      : connectFailed ? 'refused' : code === 'ECONNRESET' ? 'reset' : 'other'
    this.#upstreamError(ctx, kind, err)
    if (connectFailed || timeout) this.#pool.markFailed(ctx.backend.name)
    if (res.headersSent) { res.destroy(); return }
    // Nothing of the answer was sent: another backend, when one is left (GET/HEAD are idempotent).
    const left = ctx.route.config.backends.filter(b => !ctx.tried.has(b.name))
    if ((connectFailed || kind === 'reset' || code === 'TG_CONNECT_TIMEOUT') && ctx.attempts <= this.#cfg.retries &&
        left.length > 0) {
      const next = this.#pool.choose(ctx.route.config, ctx.tried, Date.now())
      this.#viewers.assign(ctx.viewer, next.name)
      this.#send(req, res, next)
      return
    }
    const status = timeout ? 504 : 502
    const codeName: ErrorCode = timeout ? 'TG_ERR_HTTP_UPSTREAM_TIMEOUT' : 'TG_ERR_HTTP_UPSTREAM'
    this.#metrics.errorsTotal.inc({ code: codeName })
    const body = `${status} ${http.STATUS_CODES[status]}: the backend ` +
      `for ${ctx.route.config.path} ${timeout ? 'did not answer in time' : 'could not be reached'}\n`
    res.writeHead(status, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      ...(status === 502 ? { 'retry-after': '1' } : {})
    })
    res.end(req.method === 'HEAD' ? undefined : body)
  }

  #clientGone (req: http.IncomingMessage): void {
    const ctx = this.#ctx.get(req)
    if (ctx?.connectTimer != null) { clearTimeout(ctx.connectTimer); ctx.connectTimer = null }
  }

  #finish (req: http.IncomingMessage, res: http.ServerResponse): void {
    const ctx = this.#ctx.get(req)
    if (ctx === undefined) return
    this.#ctx.delete(req)
    if (ctx.connectTimer !== null) clearTimeout(ctx.connectTimer)
    const rp = ctx.route.config.path
    ctx.route.inFlight--
    this.#inFlight--
    this.#m.inFlight.set({ transport: 'http', route: rp }, ctx.route.inFlight)
    const complete = res.writableFinished
    const status = complete ? String(res.statusCode) : res.headersSent ? `${res.statusCode}-cut` : 'aborted'
    const backend = ctx.backend?.name ?? 'none'
    ctx.route.requests++
    ctx.route.bytes += ctx.bytesDown
    ctx.route.statuses[status] = (ctx.route.statuses[status] ?? 0) + 1
    this.#m.requests.inc({ transport: 'http', route: rp, backend, status })
    this.#m.bytes.inc({ transport: 'http', route: rp, direction: 'backend_to_client' }, ctx.bytesDown)
    this.#logger.info({
      event: 'http',
      client: ctx.client,
      method: req.method,
      path: ctx.publicPath,
      route: rp,
      backend,
      status,
      range: req.headers.range,
      bytes: ctx.bytesDown,
      ms: Math.round(performance.now() - ctx.startedAt),
      attempts: ctx.attempts
    }, `${req.method ?? ''} ${ctx.publicPath} ${status} ${backend}`)
  }
}
