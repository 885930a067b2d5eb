/**
 * Admission of one client RTSP request, pure: forward it (rewritten: Proxy-* headers gone, its URL
 * canonical, its Transport cut to interleaved TCP) or answer it in the gateway's name (status, error
 * code, reason, headers), or close the session. The checks, in order: the request rate, the version,
 * Proxy-Require, the URL, header ambiguity, the route, the token's path, Transport, the Session id.
 * The session's state comes in as a context; the request passed in is never changed.
 */
import type { Config } from '../config/config.js'
import type { ErrorCode } from '../core/errors.js'
import { pathOfUrl, resolveRoute, type ResolvedRoute } from '../backends/routes.js'
import {
  getHeader, removeHeaderPrefix, setHeader, type Header, type RtspRequest
} from '../tunnel/codec/rtsp-message.js'
import { canonicalUri } from '../tunnel/codec/rtsp-url.js'
import { ambiguity } from '../tunnel/codec/header-ambiguity.js'
import { printable } from '../tunnel/codec/head-grammar.js'
import { COOKIE_QUERY_PARAM } from '../tunnel/codec/http-head.js'
import { filterTcpTransports, parseSessionHeader } from '../tunnel/codec/transport.js'
import { pathAllowed } from '../tunnel/codec/access.js'

/** Proxy-Require options the gateway supports (none: any is answered 551). */
const SUPPORTED_PROXY_OPTIONS: ReadonlySet<string> = new Set<string>()
const PUBLIC_METHODS = 'OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER'

export type ClientRequest = RtspRequest & { raw: Buffer }

/** What the session knows when a request comes. */
export interface AdmissionContext {
  config: Pick<Config, 'routes' | 'auth' | 'limits'>
  /** Path of the HTTP GET (routes `OPTIONS *` before any URL was seen). */
  entryPath: string
  /** Stream path a token bound the session to. */
  allowedPath?: string | undefined
  /** False: the request rate limit (limits.rtspRequestsPerSecond) is reached. */
  rateOk: boolean
  /** A live fan-out delegate holds the session: checked requests go to it. */
  live: boolean
  /** The route of the session's first routed request (null before it). */
  route: ResolvedRoute | null
  /** A backend was chosen (`OPTIONS *` is then forwarded, not answered). */
  backendChosen: boolean
  /** Session ids the backend granted. */
  granted: { has (id: string): boolean }
}

export type Admission =
  /** Answer in the gateway's name (`code` null: not an error), the CSeq added by the caller. */
  | { kind: 'answer', status: number, code: ErrorCode | null, reason: string, headers: Header[], limit?: string }
  /** Not RTSP at all (an HTTP request inside the stream): close the session. */
  | { kind: 'close', code: ErrorCode, reason: string }
  /** Checked: for the live fan-out delegate. */
  | { kind: 'delegate', req: ClientRequest }
  /** For the backend, with the route (and routed public path) it resolved to. */
  | { kind: 'forward', req: ClientRequest, route: ResolvedRoute, path: string }

export function admit (original: ClientRequest, ctx: AdmissionContext): Admission {
  const req: ClientRequest = { ...original, headers: original.headers.slice() }
  // The client's Session id is echoed on every error answer.
  const answer = (status: number, code: ErrorCode, reason: string, extra: Header[] = [], limit?: string): Admission => {
    const session = getHeader(req, 'Session')
    const headers = session === undefined ? extra : [...extra, ['Session', session] as Header]
    const a: Admission = { kind: 'answer', status, code, reason, headers }
    return limit === undefined ? a : { ...a, limit }
  }
  const l = ctx.config.limits
  if (!ctx.rateOk) {
    const reason = `more than ${l.rtspRequestsPerSecond} requests/s`
    return answer(503, 'TG_ERR_RTSP_RATE_LIMITED', reason, [['Retry-After', '1']], 'limits.rtspRequestsPerSecond')
  }
  if (req.version !== 'RTSP/1.0' && !ctx.live) {
    if (req.version.startsWith('RTSP/')) return answer(505, 'TG_ERR_RTSP_VERSION', `version ${req.version}`)
    // An HTTP request inside the tunnel (e.g. a POST leg on the GET's own connection).
    const reason = `${req.method} ${req.version} inside an RTSP stream`
    return { kind: 'close', code: 'TG_ERR_TUN_SAME_CONNECTION', reason }
  }
  const proxyRequire = getHeader(req, 'Proxy-Require')
  if (proxyRequire !== undefined) {
    const unsupported = proxyRequire.split(',').map(s => s.trim())
      .filter(s => s !== '' && !SUPPORTED_PROXY_OPTIONS.has(s))
    if (unsupported.length > 0) {
      const extra: Header[] = [['Unsupported', unsupported.join(', ')]]
      return answer(551, 'TG_ERR_RTSP_PROXY_REQUIRE', `Proxy-Require ${proxyRequire}`, extra)
    }
  }
  // Proxy-* headers are addressed to the gateway (the proxy), never to the backend.
  removeHeaderPrefix(req, 'proxy-')
  if (req.uri !== '*') {
    const uri = canonicalUri(req.uri, [ctx.config.auth.tokenQueryParam, COOKIE_QUERY_PARAM])
    if (!uri.ok) return answer(400, 'TG_ERR_RTSP_BAD_URL', `'${printable(req.uri)}': ${uri.reason}`)
    req.uri = uri.uri
  }
  const ambiguous = ambiguity(req.method, req.uri, req.headers)
  if (ambiguous !== null) return answer(400, 'TG_ERR_RTSP_AMBIGUOUS', ambiguous)
  if (ctx.live) return { kind: 'delegate', req }
  // Route by the request URL (OPTIONS * by the GET path).
  const path = req.uri === '*' ? pathOfUrl(ctx.entryPath) : pathOfUrl(req.uri)
  const route = path === null ? null : resolveRoute(ctx.config.routes, path)
  const allowed = ctx.allowedPath
  if (allowed !== undefined && req.uri !== '*' && (path === null || !pathAllowed(allowed, path))) {
    return answer(403, 'TG_ERR_AUTH_FORBIDDEN', `'${req.uri.slice(0, 200)}' is outside the token's path '${allowed}'`)
  }
  if (route === null || (ctx.route !== null && route.route !== ctx.route.route)) {
    if (req.uri === '*' && req.method === 'OPTIONS' && !ctx.backendChosen) {
      const headers: Header[] = [['Public', PUBLIC_METHODS]]
      return { kind: 'answer', status: 200, code: null, reason: 'OPTIONS * before any backend', headers }
    }
    return answer(404, 'TG_ERR_RTSP_NO_ROUTE', `no route for '${req.uri.slice(0, 200)}'`)
  }
  if (req.method === 'SETUP') {
    const transport = getHeader(req, 'Transport')
    const tcp = transport === undefined ? null : filterTcpTransports(transport)
    if (tcp === null) return answer(461, 'TG_ERR_RTSP_TRANSPORT', `Transport '${transport ?? ''}'`)
    setHeader(req, 'Transport', tcp)
  }
  const session = getHeader(req, 'Session')
  if (session !== undefined && !ctx.granted.has(parseSessionHeader(session).id)) {
    return answer(454, 'TG_ERR_RTSP_SESSION', `unknown Session '${session.slice(0, 80)}'`)
  }
  return { kind: 'forward', req, route, path: path ?? '' }
}

/**
 * The request rate of one session: a token bucket of limits.rtspRequestsPerSecond, burst
 * limits.rtspRequestBurst (rate 0 = unlimited). `now` in ms on one monotonic clock.
 */
export class RequestRate {
  #tokens = -1
  #at = 0

  take (limits: Pick<Config['limits'], 'rtspRequestsPerSecond' | 'rtspRequestBurst'>, now: number): boolean {
    const { rtspRequestsPerSecond: rate, rtspRequestBurst: burst } = limits
    if (rate <= 0) return true
    const cap = Math.max(1, burst)
    this.#tokens = this.#tokens < 0 ? cap : Math.min(cap, this.#tokens + (now - this.#at) * rate / 1000)
    this.#at = now
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }
}
