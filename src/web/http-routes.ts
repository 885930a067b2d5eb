/**
 * Balanced HTTP pass-through on port 80 (issue 10): configured path prefixes (`httpRoutes`) are
 * forwarded to backend HTTP servers (HLS playlists and segments, progressive MP4, status pages)
 * with `http-proxy`, as a Fastify plugin registered by web.ts.
 *
 * http-proxy is right here and never for tunnel legs: these are ordinary, finite HTTP requests,
 * already parsed by Node's HTTP server behind the front door (docs/architecture.md).
 *
 * - Only configured prefixes, only to configured backends. The request target is normalised
 *   (percent-decoding, '.', '..', '//') before matching; absolute-form targets, encoded '/', '\' and
 *   NUL, and '..' above the root are refused with 400; an unmapped path gets 404. The upstream path
 *   is rebuilt from the decoded segments, so what reaches a backend is always <base>/<canonical rest>.
 * - Balancing: a viewer (the affinity cookie the portal sets, an opaque id and the backend's place
 *   in the route, else client address + User-Agent) stays on its backend while that backend is healthy; a new viewer goes to the backend with the
 *   most room (the p2c policy of src/balancer/policy.ts; load = viewers + requests in flight, per
 *   weight). A backend that refuses a connection or times out is marked failed for
 *   `httpProxy.failureCooldownMs`; the request is retried on another backend when nothing of the
 *   answer was sent yet, and the viewer moves there.
 * - Streaming both ways (pipes, no buffering); Range and 206 pass through untouched; hop-by-hop
 *   headers dropped both ways; Host is the backend's, X-Forwarded-For/-Host/-Proto/-Port are set
 *   by the portal (client-sent ones are dropped).
 * - Access control as for tunnels (the gate, gate.ts): path-bound tokens (`auth.tokenSecrets`, Bearer
 *   or query parameter; the answer sets a signed grant cookie for the token's path, so HLS segments
 *   need not carry it), else HTTP Basic (`auth.basic`) when configured. Address + User-Agent never
 *   stand for a credential.
 */
import http from 'node:http'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import httpProxy from 'http-proxy'
import type { Logger } from 'pino'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { chooseBackend, type BackendSnapshot } from '../balancer/policy.js'
import type { Config } from '../config/config.js'
import type { ErrorCode } from '../core/errors.js'
import type { GatewayMetrics } from '../core/metrics.js'
import type { Header } from '../tunnel/codec/rtsp-message.js'
import { pathAllowed, signGrant, tokenOf, verifyGrant } from '../tunnel/codec/access.js'
import { gateFor, type Gate } from '../door/gate.js'
import { redactUrl } from '../core/redact.js'
import { encodeSegment, matchRoute, normalisePath } from '../config/http-path.js'
import type { HttpBackendConfig, HttpProxyConfig, HttpRouteConfig } from '../config/http-routes.js'

/** Hop-by-hop headers (RFC 9110 §7.6.1) plus ones the portal sets itself. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']
const PORTAL_SET = ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'forwarded', 'x-real-ip']
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'TG_CONNECT_TIMEOUT'])
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const

export interface HttpRouteMetrics {
  requests: Counter<'transport' | 'route' | 'backend' | 'status'>
  bytes: Counter<'transport' | 'route' | 'direction'>
  upstreamErrors: Counter<'transport' | 'route' | 'backend' | 'kind'>
  inFlight: Gauge<'transport' | 'route'>
  viewers: Gauge<'transport' | 'backend'>
  backendUp: Gauge<'backend'>
  probeSeconds: Histogram<'backend'>
}

const metricsByRegistry = new WeakMap<Registry, HttpRouteMetrics>()

/** The HTTP-route metrics, registered once per registry. */
export function httpRouteMetrics (registry: Registry): HttpRouteMetrics {
  const had = metricsByRegistry.get(registry)
  if (had !== undefined) return had
  const registers = [registry]
  const m: HttpRouteMetrics = {
    requests: new Counter({ name: 'tunnelgate_http_requests_total', help: 'Requests on HTTP routes, by route, backend (none = answered by the portal) and status', labelNames: ['transport', 'route', 'backend', 'status'], registers }),
    bytes: new Counter({ name: 'tunnelgate_http_bytes_total', help: 'Body bytes relayed on HTTP routes, by route and direction (client_to_backend, backend_to_client)', labelNames: ['transport', 'route', 'direction'], registers }),
    upstreamErrors: new Counter({ name: 'tunnelgate_http_upstream_errors_total', help: 'Failed upstream requests on HTTP routes, by route, backend and kind (refused, timeout, reset, aborted, other)', labelNames: ['transport', 'route', 'backend', 'kind'], registers }),
    inFlight: new Gauge({ name: 'tunnelgate_http_in_flight', help: 'Requests on HTTP routes being answered now, by route', labelNames: ['transport', 'route'], registers }),
    viewers: new Gauge({ name: 'tunnelgate_http_viewers', help: 'HTTP viewers (affinity keys seen within httpProxy.viewerIdleMs) per backend', labelNames: ['transport', 'backend'], registers }),
    backendUp: new Gauge({ name: 'tunnelgate_http_backend_up', help: 'HTTP route backend in the choice (1) or out of it (0: failed its health probes, or cooling down after a refused/timed-out request)', labelNames: ['backend'], registers }),
    probeSeconds: new Histogram({ name: 'tunnelgate_http_backend_probe_seconds', help: 'Duration of HTTP backend health probes (GET of healthPath up to the answer head)', labelNames: ['backend'], buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2], registers })
  }
  metricsByRegistry.set(registry, m)
  return m
}

interface BackendState {
  name: string
  /** The first config naming this backend (host, port, healthPath, rtspBackend). */
  config: HttpBackendConfig
  inFlight: number
  viewers: number
  requests: number
  failedUntil: number
  failures: number
  /** Health from the active probes (true until probes fail httpProxy.probeFall times in a row). */
  up: boolean
  /** Passing / failing probes in a row. */
  passes: number
  fails: number
  /** The last probe: HTTP status or failure reason ('' before the first). */
  probe: string
}

/** RTSP sessions of the tied RTSP backend (`rtspBackend`) as the RTSP balancer sees them, or null when unknown. */
export type RtspLoadOf = (rtspBackend: string) => number | null

export interface HttpProbeOutcome { ok: boolean, status?: number, reason?: string, seconds: number }

/**
 * One HTTP health probe: GET http://host:port<path>, passing on any answer head below 500 (a 403 or
 * 404 still proves a live HTTP server); refused, reset, no head within `timeoutMs`, or a 5xx fail.
 * The body is not read. Never rejects.
 */
export function probeHttp (host: string, port: number, path: string, timeoutMs: number): Promise<HttpProbeOutcome> {
  const t0 = performance.now()
  return new Promise(resolve => {
    let done = false
    const finish = (o: Omit<HttpProbeOutcome, 'seconds'>): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      req.destroy()
      resolve({ ...o, seconds: (performance.now() - t0) / 1000 })
    }
    const req = http.request({ host, port, path, method: 'GET', agent: false, headers: { 'user-agent': 'tunnelgate-probe', connection: 'close' } }, res => {
      res.on('error', () => {})
      const status = res.statusCode ?? 0
      finish(status > 0 && status < 500 ? { ok: true, status } : { ok: false, status, reason: `HTTP ${status}` })
    })
    const timer = setTimeout(() => finish({ ok: false, reason: `no answer within ${timeoutMs} ms` }), timeoutMs)
    req.on('error', err => finish({ ok: false, reason: (err as NodeJS.ErrnoException).code ?? err.message }))
    req.end()
  })
}

interface Viewer {
  backend: string
  route: string
  lastSeen: number
  /** The id in this viewer's affinity cookie. */
  cookieId: string
  /** Forgotten (expired or evicted) while a request of it was still in flight. */
  gone?: boolean
}

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
  backends: Array<{
    name: string, url: string, weight: number,
    /** In the choice now (probes passing and not cooling down). */
    healthy: boolean,
    /** Active probes passing (true when probes are off). */
    up: boolean,
    /** The last probe: HTTP status or failure reason ('' before the first or with probes off). */
    probe: string,
    viewers: number, inFlight: number, requests: number, failures: number,
    /** The tied RTSP backend and its sessions (null when untied or unknown). */
    rtspBackend: string, rtspSessions: number | null,
    /** What the balancer compares for new viewers: (rtspSessions + viewers + inFlight) ÷ weight. */
    load: number
  }>
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

/** The HTTP-route proxy: state, balancing, metrics and the Fastify plugin. */
export class HttpRoutes {
  readonly routes: RouteState[]
  readonly #cfg: HttpProxyConfig
  readonly #config: Config
  readonly #logger: Logger
  readonly #metrics: GatewayMetrics
  readonly #m: HttpRouteMetrics
  readonly #backends = new Map<string, BackendState>()
  readonly #viewers = new Map<string, Viewer>()
  readonly #agent: http.Agent
  readonly #proxy: httpProxy
  readonly #ctx = new WeakMap<http.IncomingMessage, Ctx>()
  readonly #gate: Gate
  readonly #sweep: NodeJS.Timeout
  #inFlight = 0
  #hlsJs: Buffer | null = null
  readonly #rtspLoad: RtspLoadOf
  #probeTimer: NodeJS.Timeout | null = null
  #probeRound: Promise<void> | null = null
  #closed = false

  constructor (config: Config, metrics: GatewayMetrics, logger: Logger, opts: { rtspLoad?: RtspLoadOf } = {}) {
    this.#rtspLoad = opts.rtspLoad ?? (() => null)
    this.#config = config
    this.#cfg = config.httpProxy
    this.#metrics = metrics
    this.#logger = logger.child({ component: 'http-routes' })
    this.#m = httpRouteMetrics(metrics.registry)
    this.routes = config.httpRoutes.map(r => ({ config: r, inFlight: 0, requests: 0, bytes: 0, upstreamErrors: 0, statuses: {} }))
    for (const r of config.httpRoutes) {
      for (const b of r.backends) if (!this.#backends.has(b.name)) this.#backends.set(b.name, { name: b.name, config: b, inFlight: 0, viewers: 0, requests: 0, failedUntil: 0, failures: 0, up: true, passes: 0, fails: 0, probe: '' })
      this.#m.inFlight.set({ transport: 'http', route: r.path }, 0)
    }
    for (const b of this.#backends.values()) { this.#m.viewers.set({ transport: 'http', backend: b.name }, 0); this.#m.backendUp.set({ backend: b.name }, 1) }
    this.#gate = gateFor(config, metrics, logger)
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: this.#cfg.maxSocketsPerBackend, scheduling: 'lifo' })
    this.#proxy = httpProxy.createProxyServer({ agent: this.#agent, xfwd: false, changeOrigin: true, ws: false, ignorePath: false })
    // Never a crash: every proxy error without a per-call handler ends up here.
    this.#proxy.on('error', (err, req, res) => { this.#onProxyError(err as NodeJS.ErrnoException, req, res as http.ServerResponse) })
    this.#proxy.on('econnreset', (_err, req) => { this.#clientGone(req) })
    this.#proxy.on('proxyReq', (proxyReq, req) => { this.#onProxyReq(proxyReq, req) })
    this.#proxy.on('proxyRes', (proxyRes, req, res) => { this.#onProxyRes(proxyRes, req, res) })
    this.#sweep = setInterval(() => { this.#expireViewers(Date.now()) }, Math.max(250, Math.min(this.#cfg.viewerIdleMs / 2, 10_000)))
    this.#sweep.unref()
    if (this.enabled && this.#cfg.probeIntervalMs > 0) {
      this.#probeTimer = setInterval(() => { void this.probeAll() }, this.#cfg.probeIntervalMs)
      this.#probeTimer.unref()
      void this.probeAll()
    }
  }

  get enabled (): boolean { return this.routes.length > 0 }

  close (): void {
    this.#closed = true
    clearInterval(this.#sweep)
    if (this.#probeTimer !== null) clearInterval(this.#probeTimer)
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
      backends: r.config.backends.map(b => {
        const s = this.#backends.get(b.name)!
        const rtspSessions = b.rtspBackend === '' ? null : this.#rtspLoad(b.rtspBackend)
        return {
          name: b.name, url: b.url, weight: b.weight, healthy: this.#healthy(s, now), up: s.up, probe: s.probe,
          viewers: s.viewers, inFlight: s.inFlight, requests: s.requests, failures: s.failures,
          rtspBackend: b.rtspBackend, rtspSessions, load: this.#load(b, s) / b.weight
        }
      })
    }))
  }

  // ------------------------------------------------------------ health and load

  /** In the choice: active probes passing (or off) and not cooling down after a passive failure. */
  #healthy (s: BackendState, now: number): boolean { return s.up && s.failedUntil <= now }

  /** Load for new viewers (before the weight): tied RTSP sessions + HTTP viewers + requests in flight. */
  #load (b: HttpBackendConfig, s: BackendState): number {
    const rtsp = b.rtspBackend === '' ? null : this.#rtspLoad(b.rtspBackend)
    return (rtsp ?? 0) + s.viewers + s.inFlight
  }

  #publishUp (s: BackendState): void { this.#m.backendUp.set({ backend: s.name }, this.#healthy(s, Date.now()) ? 1 : 0) }

  /** Probe every HTTP backend once (httpProxy.probeIntervalMs); a round still running is not doubled. */
  probeAll (): Promise<void> {
    if (this.#closed) return Promise.resolve()
    if (this.#probeRound !== null) return this.#probeRound
    this.#probeRound = Promise.all([...this.#backends.values()].map(s => this.#probe(s))).then(() => {}).finally(() => { this.#probeRound = null })
    return this.#probeRound
  }

  async #probe (s: BackendState): Promise<void> {
    const b = s.config
    const r = await probeHttp(b.host, b.port, b.healthPath, this.#cfg.probeTimeoutMs)
    if (this.#closed) return
    this.#m.probeSeconds.observe({ backend: s.name }, r.seconds)
    s.probe = r.ok ? String(r.status) : (r.reason ?? 'failed')
    const was = s.up
    if (r.ok) {
      s.fails = 0
      s.passes++
      if (!s.up && s.passes >= this.#cfg.probeRise) s.up = true
    } else {
      this.#metrics.errorsTotal.inc({ code: 'TG_ERR_HTTP_BACKEND_PROBE' })
      s.passes = 0
      s.fails++
      if (s.up && s.fails >= this.#cfg.probeFall) s.up = false
    }
    this.#publishUp(s)
    if (was && !s.up) this.#logger.warn({ event: 'http-backend-down', code: 'TG_ERR_HTTP_BACKEND_PROBE', backend: s.name, probe: `GET ${b.healthPath}`, reason: s.probe }, `HTTP backend ${s.name} failed its health probe; out of the choice`)
    else if (!was && s.up) this.#logger.info({ event: 'http-backend-up', backend: s.name }, `HTTP backend ${s.name} passed its health probes; back in the choice`)
  }

  /** Fastify plugin: one wildcard route per prefix, plus the hls.js bundle and a player page. */
  plugin = async (app: FastifyInstance): Promise<void> => {
    if (!this.enabled) return
    const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => { await this.#handle(req, reply) }
    for (const r of this.routes) {
      app.route({ method: [...METHODS], url: r.config.path, exposeHeadRoute: false, handler })
      app.route({ method: [...METHODS], url: `${r.config.path}/*`, exposeHeadRoute: false, handler })
    }
    app.get('/hls.js/hls.min.js', async (_req, reply) => {
      this.#hlsJs ??= await readFile(createRequire(import.meta.url).resolve('hls.js/dist/hls.min.js'))
      return reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=3600').send(this.#hlsJs)
    })
    app.get('/hls-player.html', async (_req, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(PLAYER_PAGE))
    app.addHook('onClose', async () => { this.close() })
  }

  // ------------------------------------------------------------ request path

  #refuse (req: FastifyRequest, reply: FastifyReply, route: string, status: number, code: ErrorCode, reason: string, headers: Record<string, string> = {}): void {
    this.#metrics.errorsTotal.inc({ code })
    this.#logger.info({ event: 'http', client: req.ip, method: req.method, target: redactUrl(req.raw.url ?? '').slice(0, 256), route, status, code, reason }, `${req.method} ${status} ${reason}`)
    this.#answer(reply, route, status, reason, headers)
  }

  /** A portal-made answer, counted per route (the caller counted and logged its error). */
  #answer (reply: FastifyReply, route: string, status: number, reason: string, headers: Record<string, string | string[]> = {}): void {
    this.#m.requests.inc({ transport: 'http', route, backend: 'none', status: String(status) })
    const rs = this.routes.find(r => r.config.path === route)
    if (rs !== undefined) { rs.requests++; rs.statuses[String(status)] = (rs.statuses[String(status)] ?? 0) + 1 }
    void reply.code(status).headers({ 'cache-control': 'no-store', ...headers }).type('text/plain; charset=utf-8').send(`${status} ${http.STATUS_CODES[status] ?? ''}: ${reason}\n`)
  }

  /**
   * Access control, as for tunnel GETs. A request with a valid token earns a grant cookie for the
   * token's path (set on its answer): HLS segments are relative URLs without the token, and players
   * (hls.js, ffmpeg, GStreamer) send the playlist's cookies with them. Nothing else stands for a
   * token: a client without the cookie presents the token on every request.
   * Returns false when the request was answered (refused, or its client left).
   */
  async #authorise (req: FastifyRequest, reply: FastifyReply, rp: string, path: string, cookieHeader: string | undefined): Promise<{ grantCookie: string | null } | false> {
    const raw = req.raw
    const secrets = this.#config.auth.tokenSecrets
    const headers: Header[] = Object.entries(raw.headers).flatMap(([k, v]) => v === undefined ? [] : Array.isArray(v) ? v.map(x => [k, x] as Header) : [[k, v] as Header])
    const target = raw.url ?? ''
    const now = Date.now()
    if (secrets.length > 0 && tokenOf(target, headers, this.#config.auth.tokenQueryParam) === null && this.#grantCovers(cookieHeader, path, now)) return { grantCookie: null }
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
    const cookiePath = v.tokenPath === '/' ? '/' : v.tokenPath.replace(/\/+$/, '').split('/').map(encodeURIComponent).join('/')
    const maxAge = Math.max(1, Math.floor((v.tokenExpMs - now) / 1000))
    const secure = (raw.socket as { encrypted?: boolean }).encrypted === true ? '; Secure' : ''
    return { grantCookie: `${this.#cfg.grantCookie}=${signGrant(secrets[0]!, v.tokenPath, v.tokenExpMs / 1000)}; Path=${cookiePath}; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${secure}` }
  }

  /** True when one of the request's grant cookies (a few at most are looked at) is valid and covers `path`. */
  #grantCovers (cookieHeader: string | undefined, path: string, now: number): boolean {
    for (const value of cookieValues(cookieHeader, this.#cfg.grantCookie, 8)) {
      const g = verifyGrant(value, this.#config.auth.tokenSecrets, now / 1000)
      if (g.ok && pathAllowed(g.path, path)) return true
    }
    return false
  }

  async #handle (req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const raw = req.raw
    const target = raw.url ?? ''
    const norm = normalisePath(target)
    if (!norm.ok) { this.#refuse(req, reply, 'none', 400, 'TG_ERR_HTTP_BAD_PATH', norm.reason); return }
    const m = matchRoute(this.routes.map(r => r.config), norm.segments)
    if (m === null) { this.#refuse(req, reply, 'none', 404, 'TG_ERR_HTTP_NO_ROUTE', `no HTTP route maps ${norm.path}`); return }
    const route = this.routes.find(r => r.config === m.route)!
    const rp = route.config.path
    if (raw.method !== 'GET' && raw.method !== 'HEAD') { this.#refuse(req, reply, rp, 405, 'TG_ERR_HTTP_METHOD', `${raw.method ?? '?'} is not proxied (GET and HEAD only)`, { allow: 'GET, HEAD' }); return }
    if ((raw.headers['content-length'] !== undefined && raw.headers['content-length'] !== '0') || raw.headers['transfer-encoding'] !== undefined) {
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
    // A viewer is its affinity cookie, else (first request, or a client that keeps no cookies) its
    // address + User-Agent on this route: for balancing only, never for access.
    const addrKey = `a:${client}|${String(raw.headers['user-agent'] ?? '').slice(0, 200)}|${rp}`
    let viewerKey = addrKey
    let viewer: Viewer | undefined
    if (affinity !== null) {
      viewerKey = `c:${affinity.id}|${rp}`
      viewer = this.#viewers.get(viewerKey)
      if (viewer === undefined) {
        const a = this.#viewers.get(addrKey)
        if (a !== undefined && a.cookieId === affinity.id) { this.#viewers.delete(addrKey); this.#viewers.set(viewerKey, a); viewer = a }
      }
    } else {
      viewer = this.#viewers.get(addrKey)
    }

    // Limits.
    if (this.#cfg.maxInFlight > 0 && this.#inFlight >= this.#cfg.maxInFlight) {
      this.#metrics.limitHitsTotal.inc({ limit: 'http_in_flight' })
      this.#refuse(req, reply, rp, 503, 'TG_ERR_HTTP_BUSY', `${this.#inFlight} requests in flight (httpProxy.maxInFlight)`, { 'retry-after': '1' }); return
    }
    if (route.config.maxInFlight > 0 && route.inFlight >= route.config.maxInFlight) {
      this.#metrics.limitHitsTotal.inc({ limit: 'http_in_flight' })
      this.#refuse(req, reply, rp, 503, 'TG_ERR_HTTP_BUSY', `${route.inFlight} requests in flight on ${rp} (httpRoutes[].maxInFlight)`, { 'retry-after': '1' }); return
    }

    // Backend: the viewer's (or the one its cookie names) while healthy, else the one with the most room.
    const tried = new Set<string>()
    const want = viewer?.backend ?? (affinity === null ? undefined : route.config.backends[affinity.slot]?.name)
    let backend = route.config.backends.find(b => b.name === want && this.#healthy(this.#backendState(b.name), now))
    backend ??= this.#choose(route.config, tried, now)
    viewer = this.#touchViewer(viewerKey, viewer, rp, now, affinity?.id ?? randomBytes(16).toString('hex'))
    this.#assign(viewer, backend.name)

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
      cookieSent: affinity === null ? null : `${affinity.id}.${affinity.slot}`,
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
    const listed = typeof h.connection === 'string' ? h.connection.split(',').map(s => s.trim().toLowerCase()).filter(Boolean) : []
    for (const k of [...HOP_BY_HOP, ...PORTAL_SET, ...listed]) Reflect.deleteProperty(h, k)
    if (route.config.auth && this.#gate.enabled) Reflect.deleteProperty(h, 'authorization')
    if (cookies.has(this.#cfg.cookie) || cookies.has(this.#cfg.grantCookie)) {
      const others = [...cookies].filter(([k]) => k !== this.#cfg.cookie && k !== this.#cfg.grantCookie).map(([k, v]) => `${k}=${v}`).join('; ')
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

  #backendState (name: string): BackendState { return this.#backends.get(name)! }

  #choose (route: HttpRouteConfig, exclude: ReadonlySet<string>, now: number): HttpBackendConfig {
    const snaps: BackendSnapshot[] = route.backends.filter(b => !exclude.has(b.name)).map(b => {
      const s = this.#backendState(b.name)
      return { name: b.name, sessions: this.#load(b, s), maxSessions: 0, weight: b.weight, healthy: this.#healthy(s, now) }
    })
    const c = chooseBackend(snaps)
    if (c.backend !== null) return route.backends.find(b => b.name === c.backend)!
    // No candidate is in the choice: try one whose probes pass and whose cool-down ends first (else
    // the earliest cool-down of the ones failing probes) rather than refusing.
    const left = route.backends.filter(b => !exclude.has(b.name))
    const pool = left.length > 0 ? left : route.backends
    const rank = (b: HttpBackendConfig): number => { const s = this.#backendState(b.name); return (s.up ? 0 : 1e15) + s.failedUntil }
    return pool.reduce((a, b) => rank(b) < rank(a) ? b : a)
  }

  #touchViewer (key: string, viewer: Viewer | undefined, route: string, now: number, cookieId: string): Viewer {
    if (viewer !== undefined) {
      viewer.lastSeen = now
      this.#viewers.delete(key)
      this.#viewers.set(key, viewer)
      return viewer
    }
    const v: Viewer = { backend: '', route, lastSeen: now, cookieId }
    this.#viewers.set(key, v)
    while (this.#viewers.size > this.#cfg.maxViewers) {
      const [oldKey, old] = this.#viewers.entries().next().value as [string, Viewer]
      this.#viewers.delete(oldKey)
      old.gone = true
      if (old.backend !== '') this.#backendState(old.backend).viewers--
    }
    return v
  }

  #assign (viewer: Viewer, backend: string): void {
    if (viewer.backend === backend) return
    if (viewer.gone === true) { viewer.backend = backend; return }
    if (viewer.backend !== '') this.#backendState(viewer.backend).viewers--
    viewer.backend = backend
    this.#backendState(backend).viewers++
  }

  #expireViewers (now: number): void {
    for (const [k, v] of this.#viewers) {
      if (now - v.lastSeen < this.#cfg.viewerIdleMs) break // insertion order = last-seen order
      this.#viewers.delete(k)
      v.gone = true
      if (v.backend !== '') this.#backendState(v.backend).viewers--
    }
    for (const b of this.#backends.values()) this.#m.viewers.set({ transport: 'http', backend: b.name }, b.viewers)
  }

  #send (req: http.IncomingMessage, res: http.ServerResponse, backend: HttpBackendConfig): void {
    const ctx = this.#ctx.get(req)!
    ctx.backend = backend
    ctx.tried.add(backend.name)
    ctx.attempts++
    ctx.timedOut = false
    const s = this.#backendState(backend.name)
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
      socket.once('connect', () => { if (ctx.connectTimer !== null) { clearTimeout(ctx.connectTimer); ctx.connectTimer = null } })
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
    const listed = typeof h.connection === 'string' ? h.connection.split(',').map(s => s.trim().toLowerCase()).filter(Boolean) : []
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
    // The affinity cookie names the backend by its place in the route's list, never by name or address.
    const value = `${ctx.viewer.cookieId}.${ctx.route.config.backends.findIndex(x => x.name === ctx.viewer.backend)}`
    const set = [...(ctx.cookieSent !== value ? [`${this.#cfg.cookie}=${value}; Path=${ctx.route.config.path}; HttpOnly; SameSite=Lax`] : []), ...(ctx.grantCookie === null ? [] : [ctx.grantCookie])]
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
    this.#logger.warn({ event: 'http-upstream-error', route: ctx.route.config.path, backend: b.name, kind, err: err.message, code: err.code, attempt: ctx.attempts }, `backend ${b.name}: ${kind} (${err.code ?? err.message})`)
  }

  #markFailed (name: string): void {
    const s = this.#backendState(name)
    s.failedUntil = Date.now() + this.#cfg.failureCooldownMs
    s.failures++
    this.#publishUp(s)
    // Back to 1 when the cool-down ends (unless probes failed meanwhile).
    setTimeout(() => { this.#publishUp(s) }, this.#cfg.failureCooldownMs + 1).unref()
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
    const kind = code === 'TG_CONNECT_TIMEOUT' || timeout ? 'timeout' : connectFailed ? 'refused' : code === 'ECONNRESET' ? 'reset' : 'other'
    this.#upstreamError(ctx, kind, err)
    if (connectFailed || timeout) this.#markFailed(ctx.backend.name)
    if (res.headersSent) { res.destroy(); return }
    // Nothing of the answer was sent: another backend, when one is left (GET/HEAD are idempotent).
    const left = ctx.route.config.backends.filter(b => !ctx.tried.has(b.name))
    if ((connectFailed || kind === 'reset' || code === 'TG_CONNECT_TIMEOUT') && ctx.attempts <= this.#cfg.retries && left.length > 0) {
      const next = this.#choose(ctx.route.config, ctx.tried, Date.now())
      this.#assign(ctx.viewer, next.name)
      this.#send(req, res, next)
      return
    }
    const status = timeout ? 504 : 502
    const codeName: ErrorCode = timeout ? 'TG_ERR_HTTP_UPSTREAM_TIMEOUT' : 'TG_ERR_HTTP_UPSTREAM'
    this.#metrics.errorsTotal.inc({ code: codeName })
    const body = `${status} ${http.STATUS_CODES[status]}: the backend for ${ctx.route.config.path} ${timeout ? 'did not answer in time' : 'could not be reached'}\n`
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...(status === 502 ? { 'retry-after': '1' } : {}) })
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
      event: 'http', client: ctx.client, method: req.method, path: ctx.publicPath, route: rp, backend, status,
      range: req.headers.range, bytes: ctx.bytesDown, ms: Math.round(performance.now() - ctx.startedAt), attempts: ctx.attempts
    }, `${req.method ?? ''} ${ctx.publicPath} ${status} ${backend}`)
  }
}

/** The affinity cookie: `<32 hex id>.<the backend's index in the route's list>`. */
function parseAffinity (value: string | undefined): { id: string, slot: number } | null {
  const m = value === undefined ? null : /^([0-9a-f]{32})\.(\d{1,4})$/.exec(value)
  return m === null ? null : { id: m[1]!, slot: Number(m[2]) }
}

/** Every value of cookie `name` in a Cookie header (several may come, with different paths), at most `max`. */
function cookieValues (header: string | undefined, name: string, max: number): string[] {
  const out: string[] = []
  if (header === undefined) return out
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq !== -1 && part.slice(0, eq).trim() === name) out.push(part.slice(eq + 1).trim())
    if (out.length >= max) break
  }
  return out
}

function parseCookies (header: string | undefined): Map<string, string> {
  const out = new Map<string, string>()
  if (header === undefined) return out
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq === -1) continue
    const k = part.slice(0, eq).trim()
    if (k !== '' && !out.has(k)) out.set(k, part.slice(eq + 1).trim())
  }
  return out
}

/**
 * A minimal HLS player page: /hls-player.html?src=/hls/stream.m3u8 plays a same-origin playlist
 * with hls.js served by the portal (or natively where the browser plays HLS itself, e.g. Safari).
 * `src` must be a same-origin path; the page exposes its state as window.hlsState for tests.
 */
const PLAYER_PAGE = `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>tunnelgate HLS</title><style>body{font-family:system-ui,sans-serif;margin:1rem}video{max-width:100%;background:#000}</style></head>
<body><video id="v" controls autoplay muted playsinline></video><p id="msg"></p>
<script src="/hls.js/hls.min.js"></script>
<script>
(function () {
  var state = window.hlsState = { errors: [], fatal: null, src: null, engine: null }
  var msg = document.getElementById('msg'); var video = document.getElementById('v')
  var src = new URLSearchParams(location.search).get('src') || ''
  if (!/^\\/(?!\\/)/.test(src)) { msg.textContent = 'src must be a path on this server, e.g. ?src=/hls/stream.m3u8'; state.fatal = 'bad src'; return }
  state.src = src
  if (window.Hls && Hls.isSupported()) {
    state.engine = 'hls.js ' + Hls.version
    var hls = new Hls({ maxBufferLength: 10 })
    hls.on(Hls.Events.ERROR, function (_e, d) { state.errors.push(d.type + ':' + d.details + (d.fatal ? ':fatal' : '')); if (d.fatal) { state.fatal = d.details; msg.textContent = 'error: ' + d.details } })
    hls.loadSource(src); hls.attachMedia(video)
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    state.engine = 'native'; video.src = src
  } else { state.fatal = 'no HLS support'; msg.textContent = 'this browser cannot play HLS' }
  video.addEventListener('error', function () { state.fatal = 'media error ' + (video.error && video.error.code) })
  var p = video.play(); if (p && p.catch) p.catch(function (e) { state.errors.push('play:' + e.name) })
})()
</script></body></html>`
