/**
 * The gateway's authentication decision for a tunnel GET, a WebSocket upgrade, an HTTP route
 * request or a player page: a path-bound token (access.ts), else HTTP Basic (auth.ts) under a
 * back-off per client address and per user (auth-backoff.ts) and a cap on scrypt runs in flight.
 * One gate per gateway process (gateFor), so the tables and the cap hold across all its doors.
 *
 * Every refusal is counted (tunnelgate_errors_total{code}, tunnelgate_limit_hits_total{limit})
 * and logged here; callers only write the answer. A log line never holds a password, an
 * Authorization value or a token, and names a user only when it is a configured one.
 */
import type { Logger } from 'pino'
import { Counter } from 'prom-client'
import type { Config } from '../config/config.js'
import type { ErrorCode } from '../core/errors.js'
import type { GatewayMetrics } from '../core/metrics.js'
import type { Header } from '../tunnel/codec/rtsp-message.js'
import { pathAllowed, tokenOf, verifyToken } from '../tunnel/codec/access.js'
import { BasicAuth, basicOffer } from './auth.js'
import { AuthBackoff } from './auth-backoff.js'

export interface GateRequest {
  /** The client address (the back-off key). */
  client: string
  headers: readonly Header[]
  /** Request target (its query may carry the token). */
  target: string
  /** The path asked for: a token must cover it (403 otherwise); absent = not checked here. */
  path?: string
  transport: 'http-tunnel' | 'websocket' | 'http' | 'watch'
}

export interface GateRefusal {
  ok: false
  status: 401 | 403 | 429 | 503
  statusText: string
  code: ErrorCode
  /** WWW-Authenticate or Retry-After. */
  headers: Header[]
}

export type GateVerdict = { ok: true, tokenPath?: string, tokenExpMs?: number, user?: string } | GateRefusal

const STATUS_TEXT = {
  401: 'Unauthorized', 403: 'Forbidden', 429: 'Too Many Requests', 503: 'Service Unavailable'
} as const

export class Gate {
  readonly basic: BasicAuth
  readonly #config: Config
  readonly #metrics: GatewayMetrics
  readonly #logger: Logger
  readonly #backoff: AuthBackoff
  readonly #now: () => number
  readonly #checks: Counter<'result'>

  constructor (config: Config, metrics: GatewayMetrics, logger: Logger, now: () => number = Date.now) {
    const a = config.auth
    this.#config = config
    this.#metrics = metrics
    this.#logger = logger
    this.#now = now
    this.#checks = new Counter({
      name: 'tunnelgate_auth_password_checks_total',
      help: 'Password verifications run (scrypt on the threadpool), by result (ok, fail); an unknown user is checked ' +
        'against a dummy hash and counts as fail',
      labelNames: ['result'],
      registers: [metrics.registry]
    })
    // Relay nodes trust the portal that authenticated the leg.
    this.basic = new BasicAuth(config.role === 'relay' ? [] : a.basic, a.realm, a.cacheEntries)
    this.#backoff = new AuthBackoff({
      maxFailuresPerAddress: a.maxFailuresPerAddress,
      maxFailuresPerUser: a.maxFailuresPerUser,
      windowMs: a.failureWindowMs,
      backoffMs: a.backoffMs,
      backoffMaxMs: a.backoffMaxMs,
      maxEntries: a.backoffEntries
    }, this.basic.users())
  }

  /** Gateway authentication is on (Basic users or token secrets configured). */
  get enabled (): boolean { return this.basic.enabled || this.#config.auth.tokenSecrets.length > 0 }

  get backoffSizes (): { addresses: number, users: number } { return this.#backoff.sizes }

  /** WWW-Authenticate headers for a 401. */
  challenge (): Header[] {
    return [
      ...(this.basic.enabled ? this.basic.challenge() : []),
      ...(this.#config.auth.tokenSecrets.length > 0
        ? [['WWW-Authenticate', `Bearer realm="${this.#config.auth.realm}"`] as Header]
        : [])
    ]
  }

  /** Decide; synchronous unless a password must be verified. */
  check (req: GateRequest): GateVerdict | Promise<GateVerdict> {
    const secrets = this.#config.auth.tokenSecrets
    const token = secrets.length > 0 ? tokenOf(req.target, req.headers, this.#config.auth.tokenQueryParam) : null
    if (token !== null) {
      const v = verifyToken(token, secrets, this.#now() / 1000)
      if (!v.ok) return this.#refuse(req, 401, 'TG_ERR_AUTH_TOKEN', `token ${v.reason}`, this.challenge())
      if (req.path !== undefined && !pathAllowed(v.path, req.path)) {
        return this.#refuse(req, 403, 'TG_ERR_AUTH_FORBIDDEN', `token bound to ${v.path}`)
      }
      return { ok: true, tokenPath: v.path, tokenExpMs: v.exp * 1000 }
    }
    const offer = this.basic.enabled ? basicOffer(req.headers) : { kind: 'none' as const }
    if (offer.kind === 'none') {
      return this.#refuse(req, 401, 'TG_ERR_AUTH_REQUIRED', 'no token and no Basic credentials', this.challenge())
    }
    const now = this.#now()
    // The back-off comes before the cache: a refused address must not test guesses against remembered successes.
    const user = offer.kind === 'basic' ? offer.user : null
    const b = this.#backoff.check(req.client, user, now)
    if (b.blocked) {
      this.#metrics.limitHitsTotal.inc({
        limit: b.by === 'address' ? 'auth.maxFailuresPerAddress' : 'auth.maxFailuresPerUser'
      })
      return this.#refuse(
        req, 429, 'TG_ERR_AUTH_BACKOFF', `too many failed attempts (per ${b.by})`, retryAfter(b.retryAfterMs), user
      )
    }
    if (offer.kind === 'malformed') return this.#failed(req, null, 'malformed Authorization header')
    const cached = this.basic.cached(offer)
    if (cached !== null) { this.#backoff.succeed(req.client, cached, now); return { ok: true, user: cached } }
    const shared = this.basic.isRunning(offer)
    if (!shared && this.basic.running >= this.#config.auth.maxVerifications) {
      this.#metrics.limitHitsTotal.inc({ limit: 'auth.maxVerifications' })
      return this.#refuse(
        req, 503, 'TG_ERR_AUTH_BUSY', `${this.basic.running} password verifications in flight (auth.maxVerifications)`,
        retryAfter(1000), user
      )
    }
    return this.basic.verify(offer).then(ok => {
      if (!shared) this.#checks.inc({ result: ok ? 'ok' : 'fail' })
      if (!ok) return this.#failed(req, offer.user, 'wrong user or password')
      this.#backoff.succeed(req.client, offer.user, this.#now())
      return { ok: true, user: offer.user }
    })
  }

  /**
   * The plain RTSP answer while gateway authentication is on: 403, or 503 + Retry-After for an address under back-off.
   */
  rtspRefusal (client: string): string {
    const b = this.#backoff.check(client, null, this.#now())
    if (!b.blocked) return 'RTSP/1.0 403 Forbidden\r\nConnection: close\r\n\r\n'
    this.#metrics.errorsTotal.inc({ code: 'TG_ERR_AUTH_BACKOFF' })
    this.#metrics.limitHitsTotal.inc({ limit: 'auth.maxFailuresPerAddress' })
    this.#logger.debug(
      { event: 'auth', client, transport: 'rtsp', code: 'TG_ERR_AUTH_BACKOFF' },
      'plain RTSP from an address under back-off: 503'
    )
    return `RTSP/1.0 503 Service Unavailable\r\nRetry-After: ${retryAfter(b.retryAfterMs)[0]![1]}\r\nConnection: ` +
      'close\r\n\r\n'
  }

  #failed (req: GateRequest, user: string | null, why: string): GateRefusal {
    const delay = this.#backoff.fail(req.client, user, this.#now())
    if (delay > 0) {
      this.#logger.warn(
        {
          event: 'auth-backoff',
          client: req.client,
          user: this.#userLabel(user),
          transport: req.transport,
          code: 'TG_ERR_AUTH_BACKOFF',
          ms: delay
        },
        `failed sign-ins: further attempts refused for ${delay} ms`
      )
    }
    return this.#refuse(req, 401, 'TG_ERR_AUTH_REQUIRED', why, this.challenge(), user)
  }

  #refuse (
    req: GateRequest, status: GateRefusal['status'], code: ErrorCode, reason: string, headers: Header[] = [],
    user: string | null = null
  ): GateRefusal {
    this.#metrics.errorsTotal.inc({ code })
    // Refusals that cost nothing (back-off, busy) are logged at debug: a flood of them must not flood the log.
    const level = status === 429 || status === 503 ? 'debug' : 'info'
    this.#logger[level](
      {
        event: 'auth',
        client: req.client,
        user: this.#userLabel(user),
        transport: req.transport,
        path: req.path?.slice(0, 256),
        code,
        reason
      },
      `${req.transport} refused: ${status}`
    )
    return { ok: false, status, statusText: STATUS_TEXT[status], code, headers }
  }

  /** Only configured user names are logged (an unknown one may be a password typed in the wrong field). */
  #userLabel (user: string | null): string | undefined {
    return user === null ? undefined : this.basic.isUser(user) ? user : '(unknown)'
  }
}

function retryAfter (ms: number): Header[] { return [['Retry-After', String(Math.max(1, Math.ceil(ms / 1000)))]] }

const gates = new WeakMap<GatewayMetrics, Gate>()

/** The gate of the gateway owning `metrics` (one per process, shared by every door). */
export function gateFor (config: Config, metrics: GatewayMetrics, logger: Logger): Gate {
  let g = gates.get(metrics)
  if (g === undefined) { g = new Gate(config, metrics, logger); gates.set(metrics, g) }
  return g
}

/**
 * Run `then` with the verdict: at once when it is ready, else when the verification ends, and then
 * only if the client is still connected (nothing is written to a socket that closed meanwhile).
 */
export function whenDecided (
  socket: { readonly destroyed: boolean, destroy (): void }, verdict: GateVerdict | Promise<GateVerdict>,
  then: (v: GateVerdict) => void
): void {
  if (!(verdict instanceof Promise)) { then(verdict); return }
  // A verification that failed, or a `then` that threw, closes this connection only.
  verdict.then(v => { if (!socket.destroyed) then(v) }).catch(() => { socket.destroy() })
}
