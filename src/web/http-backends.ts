/**
 * The HTTP route backends of a portal process: their state (in flight, viewers, requests,
 * failures), health (active probes with rise/fall, and a cool-down after a refused or timed-out
 * request), the load new viewers are balanced on, and the choice of a backend for a route.
 *
 *   load = (rtspSessions + viewers + inFlight) / weight
 *
 * `rtspSessions` are the sessions of the backend's tied RTSP backend (`rtspBackend`) as the RTSP
 * balancer sees them, so one HTTP viewer weighs as much as one RTSP session (docs/http-routes.md).
 */
import http from 'node:http'
import type { Logger } from 'pino'
import { chooseBackend, type BackendSnapshot } from '../balancer/policy.js'
import type { HttpBackendConfig, HttpProxyConfig, HttpRouteConfig } from '../config/http-routes.js'
import type { GatewayMetrics } from '../core/metrics.js'
import type { HttpRouteMetrics } from './http-route-metrics.js'

export interface HttpBackendState {
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
    const headers = { 'user-agent': 'tunnelgate-probe', connection: 'close' }
    const req = http.request({ host, port, path, method: 'GET', agent: false, headers }, res => {
      res.on('error', () => {})
      const status = res.statusCode ?? 0
      finish(status > 0 && status < 500 ? { ok: true, status } : { ok: false, status, reason: `HTTP ${status}` })
    })
    const timer = setTimeout(() => finish({ ok: false, reason: `no answer within ${timeoutMs} ms` }), timeoutMs)
    req.on('error', err => finish({ ok: false, reason: (err as NodeJS.ErrnoException).code ?? err.message }))
    req.end()
  })
}

/** One backend in `/status` (docs/http-routes.md). */
export interface HttpBackendStatus {
  name: string,
  url: string,
  weight: number,
  /** In the choice now (probes passing and not cooling down). */
  healthy: boolean,
  /** Active probes passing (true when probes are off). */
  up: boolean,
  /** The last probe: HTTP status or failure reason ('' before the first or with probes off). */
  probe: string,
  viewers: number,
  inFlight: number,
  requests: number,
  failures: number,
  /** The tied RTSP backend and its sessions (null when untied or unknown). */
  rtspBackend: string,
  rtspSessions: number | null,
  /** What the balancer compares for new viewers: (rtspSessions + viewers + inFlight) ÷ weight. */
  load: number
}

export interface HttpBackendPoolDeps {
  config: HttpProxyConfig
  routes: readonly HttpRouteConfig[]
  metrics: HttpRouteMetrics
  gatewayMetrics: GatewayMetrics
  logger: Logger
  rtspLoad: RtspLoadOf
}

export class HttpBackendPool {
  readonly #d: HttpBackendPoolDeps
  readonly #backends = new Map<string, HttpBackendState>()
  #probeTimer: NodeJS.Timeout | null = null
  #probeRound: Promise<void> | null = null
  #closed = false

  constructor (d: HttpBackendPoolDeps) {
    this.#d = d
    for (const r of d.routes) {
      for (const b of r.backends) {
        if (this.#backends.has(b.name)) continue
        this.#backends.set(b.name, {
          name: b.name,
          config: b,
          inFlight: 0,
          viewers: 0,
          requests: 0,
          failedUntil: 0,
          failures: 0,
          up: true,
          passes: 0,
          fails: 0,
          probe: ''
        })
      }
    }
    for (const b of this.#backends.values()) {
      d.metrics.viewers.set({ transport: 'http', backend: b.name }, 0)
      d.metrics.backendUp.set({ backend: b.name }, 1)
    }
  }

  /** Probe every backend now and every `httpProxy.probeIntervalMs` (0: never) until close(). */
  startProbes (): void {
    if (this.#d.config.probeIntervalMs <= 0 || this.#probeTimer !== null) return
    this.#probeTimer = setInterval(() => { void this.probeAll() }, this.#d.config.probeIntervalMs)
    this.#probeTimer.unref()
    void this.probeAll()
  }

  close (): void {
    this.#closed = true
    if (this.#probeTimer !== null) clearInterval(this.#probeTimer)
  }

  get (name: string): HttpBackendState { return this.#backends.get(name)! }

  /** In the choice: active probes passing (or off) and not cooling down after a passive failure. */
  healthy (s: HttpBackendState, now: number): boolean { return s.up && s.failedUntil <= now }

  /** Load for new viewers (before the weight): tied RTSP sessions + HTTP viewers + requests in flight. */
  load (b: HttpBackendConfig): number {
    const s = this.get(b.name)
    const rtsp = b.rtspBackend === '' ? null : this.#d.rtspLoad(b.rtspBackend)
    return (rtsp ?? 0) + s.viewers + s.inFlight
  }

  /** A viewer more (+1) or fewer (-1) on `name`. */
  countViewer (name: string, delta: 1 | -1): void { this.get(name).viewers += delta }

  /** The viewers gauge, per backend. */
  publishViewers (): void {
    for (const b of this.#backends.values()) {
      this.#d.metrics.viewers.set({ transport: 'http', backend: b.name }, b.viewers)
    }
  }

  /**
   * The backend with the most room among `route`'s in the choice, `exclude` left out. When none is in
   * the choice, one whose probes pass and whose cool-down ends first (else the earliest cool-down of
   * the ones failing probes) rather than refusing.
   */
  choose (route: HttpRouteConfig, exclude: ReadonlySet<string>, now: number): HttpBackendConfig {
    const snaps: BackendSnapshot[] = route.backends.filter(b => !exclude.has(b.name)).map(b => ({
      name: b.name,
      sessions: this.load(b),
      maxSessions: 0,
      weight: b.weight,
      healthy: this.healthy(this.get(b.name), now)
    }))
    const c = chooseBackend(snaps)
    if (c.backend !== null) return route.backends.find(b => b.name === c.backend)!
    const left = route.backends.filter(b => !exclude.has(b.name))
    const pool = left.length > 0 ? left : route.backends
    const rank = (b: HttpBackendConfig): number => (this.get(b.name).up ? 0 : 1e15) + this.get(b.name).failedUntil
    return pool.reduce((a, b) => rank(b) < rank(a) ? b : a)
  }

  /** A refused or timed-out request: out of the choice for `httpProxy.failureCooldownMs`. */
  markFailed (name: string): void {
    const s = this.get(name)
    s.failedUntil = Date.now() + this.#d.config.failureCooldownMs
    s.failures++
    this.#publishUp(s)
    // Back to 1 when the cool-down ends (unless probes failed meanwhile).
    setTimeout(() => { this.#publishUp(s) }, this.#d.config.failureCooldownMs + 1).unref()
  }

  status (b: HttpBackendConfig, now: number): HttpBackendStatus {
    const s = this.get(b.name)
    const rtspSessions = b.rtspBackend === '' ? null : this.#d.rtspLoad(b.rtspBackend)
    return {
      name: b.name,
      url: b.url,
      weight: b.weight,
      healthy: this.healthy(s, now),
      up: s.up,
      probe: s.probe,
      viewers: s.viewers,
      inFlight: s.inFlight,
      requests: s.requests,
      failures: s.failures,
      rtspBackend: b.rtspBackend,
      rtspSessions,
      load: this.load(b) / b.weight
    }
  }

  #publishUp (s: HttpBackendState): void {
    this.#d.metrics.backendUp.set({ backend: s.name }, this.healthy(s, Date.now()) ? 1 : 0)
  }

  /** Probe every HTTP backend once; a round still running is not doubled. */
  probeAll (): Promise<void> {
    if (this.#closed) return Promise.resolve()
    if (this.#probeRound !== null) return this.#probeRound
    this.#probeRound = Promise.all([...this.#backends.values()].map(s => this.#probe(s)))
      .then(() => {})
      .finally(() => { this.#probeRound = null })
    return this.#probeRound
  }

  async #probe (s: HttpBackendState): Promise<void> {
    const b = s.config
    const cfg = this.#d.config
    const r = await probeHttp(b.host, b.port, b.healthPath, cfg.probeTimeoutMs)
    if (this.#closed) return
    this.#d.metrics.probeSeconds.observe({ backend: s.name }, r.seconds)
    s.probe = r.ok ? String(r.status) : (r.reason ?? 'failed')
    const was = s.up
    if (r.ok) {
      s.fails = 0
      s.passes++
      if (!s.up && s.passes >= cfg.probeRise) s.up = true
    } else {
      this.#d.gatewayMetrics.errorsTotal.inc({ code: 'TG_ERR_HTTP_BACKEND_PROBE' })
      s.passes = 0
      s.fails++
      if (s.up && s.fails >= cfg.probeFall) s.up = false
    }
    this.#publishUp(s)
    const log = this.#d.logger
    if (was && !s.up) {
      const code = 'TG_ERR_HTTP_BACKEND_PROBE'
      const probe = `GET ${b.healthPath}`
      const fields = { event: 'http-backend-down', code, backend: s.name, probe, reason: s.probe }
      log.warn(fields, `HTTP backend ${s.name} failed its health probe; out of the choice`)
    } else if (!was && s.up) {
      const fields = { event: 'http-backend-up', backend: s.name }
      log.info(fields, `HTTP backend ${s.name} passed its health probes; back in the choice`)
    }
  }
}
