/**
 * HTTP routes (issue 10): the settings of the balanced HTTP pass-through on port 80 and the pure
 * path normalisation it matches with. No sockets here; `http-routes.ts` is the proxy itself.
 *
 *   httpRoutes:
 *     - path: /hls                       # public prefix (segment boundary: /hls matches /hls/x, not /hlsx)
 *       backends:                        # backend HTTP base URLs; /hls/a.ts → <base>/a.ts
 *         - http://10.0.0.5:8080/hls
 *         - { url: 'http://10.0.0.6:8080/hls', name: web-b, weight: 2 }
 *       auth: true                       # apply the gateway's access control (tokens, else Basic) when configured
 *       maxInFlight: 0                   # requests in flight on this route at once (0 = unlimited)
 */
import { TunnelgateError } from '../core/errors.js'
import { redactText } from '../core/redact.js'

export interface HttpBackendConfig {
  /** Backend identity in metrics, status and the affinity cookie (default host:port). Shared by routes. */
  name: string
  /** Normalised base URL: http://host:port/base (no trailing slash, '' base for the root). */
  url: string
  host: string
  port: number
  /** Base path on the backend ('' or '/x/y'). */
  basePath: string
  weight: number
  /** Path GET by the active health probe (default: the base path + '/', i.e. '/' for a root base). */
  healthPath: string
  /**
   * Name of a configured RTSP backend (`backends[].name`) on the same machine, or ''. When set, this
   * backend's load for new viewers adds that backend's sessions as the RTSP balancer sees them
   * (BackendPool.loadOf: local, other workers, peers, its metricsUrl, PromQL).
   */
  rtspBackend: string
}

export interface HttpRouteConfig {
  /** Public prefix, normalised: '/hls' (never '/' and never a trailing slash). */
  path: string
  backends: HttpBackendConfig[]
  /** Apply the gateway's access control (path-bound tokens, else Basic) when it is configured. */
  auth: boolean
  /** Requests in flight on this route at once (0 = unlimited). */
  maxInFlight: number
}

export interface HttpProxyConfig {
  /** Time to open the TCP connection to a backend; then the next backend is tried. */
  connectTimeoutMs: number
  /** A backend that sends nothing (head or body) for this long: 504 (or the transfer is cut). */
  responseTimeoutMs: number
  /** A backend that refused a connection or timed out is skipped for this long. */
  failureCooldownMs: number
  /** Other backends tried when a backend cannot be connected before any byte of the answer was sent. */
  retries: number
  /** A viewer (affinity cookie, else client address + User-Agent) with no request for this long is forgotten. */
  viewerIdleMs: number
  /** Viewers remembered at once (the oldest is forgotten first). */
  maxViewers: number
  /** Proxied requests in flight at once over all routes (0 = unlimited). */
  maxInFlight: number
  /** Keep-alive connections to one backend at most. */
  maxSocketsPerBackend: number
  /** Name of the affinity cookie the portal sets (Path = the route's prefix). */
  cookie: string
  /** Name of the grant cookie the portal sets on the answer to a request with a valid token (Path = the token's path). */
  grantCookie: string
  /** Active health probe (HTTP GET of each backend's healthPath) interval; 0 = no probes (passive marking only). */
  probeIntervalMs: number
  /** A probe without an answer head within this time fails. */
  probeTimeoutMs: number
  /** Passing probes in a row before a backend that failed probes is chosen again. */
  probeRise: number
  /** Failing probes in a row before a backend leaves the choice. */
  probeFall: number
}

export const HTTP_PROXY_DEFAULTS: HttpProxyConfig = {
  connectTimeoutMs: 3_000,
  responseTimeoutMs: 15_000,
  failureCooldownMs: 5_000,
  retries: 1,
  viewerIdleMs: 30_000,
  maxViewers: 100_000,
  maxInFlight: 1_000,
  maxSocketsPerBackend: 256,
  cookie: 'tg_http',
  grantCookie: 'tg_grant',
  probeIntervalMs: 2_000,
  probeTimeoutMs: 2_000,
  probeRise: 2,
  probeFall: 1
}

/** Paths the web surface owns; a route may not take them (or anything below them). */
export const RESERVED_WEB_PATHS = ['/healthz', '/readyz', '/metrics', '/status', '/hls.js', '/hls-player.html']

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

function fail (key: string, msg: string): never {
  throw new TunnelgateError('TG_ERR_CFG_INVALID', `config: '${key}' ${redactText(msg)}`, { key })
}

function int (v: unknown, key: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(key, `must be an integer (got ${JSON.stringify(v)})`)
  if (v < min || v > max) fail(key, `must be between ${min} and ${max} (got ${v})`)
  return v
}

export function validateHttpProxy (raw: unknown): HttpProxyConfig {
  if (!isObj(raw)) fail('httpProxy', 'must be an object')
  const c = raw as unknown as HttpProxyConfig
  int(c.connectTimeoutMs, 'httpProxy.connectTimeoutMs', 1)
  int(c.responseTimeoutMs, 'httpProxy.responseTimeoutMs', 1)
  int(c.failureCooldownMs, 'httpProxy.failureCooldownMs', 0)
  int(c.retries, 'httpProxy.retries', 0, 10)
  int(c.viewerIdleMs, 'httpProxy.viewerIdleMs', 1)
  int(c.maxViewers, 'httpProxy.maxViewers', 1)
  int(c.maxInFlight, 'httpProxy.maxInFlight', 0)
  int(c.maxSocketsPerBackend, 'httpProxy.maxSocketsPerBackend', 1)
  int(c.probeIntervalMs, 'httpProxy.probeIntervalMs', 0)
  int(c.probeTimeoutMs, 'httpProxy.probeTimeoutMs', 1)
  int(c.probeRise, 'httpProxy.probeRise', 1, 100)
  int(c.probeFall, 'httpProxy.probeFall', 1, 100)
  for (const k of ['cookie', 'grantCookie'] as const) if (typeof c[k] !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(c[k])) fail(`httpProxy.${k}`, 'must be 1-64 characters of A-Z a-z 0-9 _ -')
  if (c.grantCookie === c.cookie) fail('httpProxy.grantCookie', 'must differ from httpProxy.cookie')
  return c
}

function parseHttpBackend (b: unknown, key: string): HttpBackendConfig {
  if (typeof b === 'string') b = { url: b }
  if (!isObj(b)) fail(key, 'must be an http:// base URL or an object with a url')
  for (const k of Object.keys(b)) if (!['url', 'name', 'weight', 'healthPath', 'rtspBackend'].includes(k)) fail(`${key}.${k}`, 'is not a known setting')
  if (typeof b.url !== 'string') fail(`${key}.url`, 'is required and must be a string')
  let u: URL
  try { u = new URL(b.url) } catch { fail(`${key}.url`, `is not a URL: '${b.url}'`) }
  if (u.protocol !== 'http:') fail(`${key}.url`, `must be an http:// URL (got '${b.url}')`)
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') fail(`${key}.url`, `must be a plain base URL without credentials, query or fragment: '${b.url}'`)
  const host = u.hostname.replace(/^\[|\]$/g, '')
  const port = u.port === '' ? 80 : Number(u.port)
  const norm = normalisePath(u.pathname)
  if (!norm.ok) fail(`${key}.url`, `has a path that is not canonical: '${b.url}'`)
  const basePath = norm.path === '/' ? '' : norm.path.replace(/\/$/, '')
  const hostPort = `${host.includes(':') ? `[${host}]` : host}:${port}`
  const name = b.name ?? hostPort
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.:\-[\]]{1,64}$/.test(name)) fail(`${key}.name`, 'must be 1-64 characters of A-Z a-z 0-9 _ . : -')
  let healthPath = basePath + '/'
  if (b.healthPath !== undefined) {
    if (typeof b.healthPath !== 'string' || !b.healthPath.startsWith('/')) fail(`${key}.healthPath`, "must be a path starting with '/'")
    const h = normalisePath(b.healthPath)
    if (!h.ok || h.path + h.query !== b.healthPath) fail(`${key}.healthPath`, `must be a canonical path (no '..', '.', '//' or percent-escapes): '${b.healthPath}'`)
    healthPath = b.healthPath
  }
  const rtspBackend = b.rtspBackend ?? ''
  if (typeof rtspBackend !== 'string') fail(`${key}.rtspBackend`, 'must be the name of a configured RTSP backend')
  return { name, url: `http://${hostPort}${basePath}`, host, port, basePath, weight: int(b.weight ?? 1, `${key}.weight`, 1, 1000), healthPath, rtspBackend }
}

/**
 * Validate `httpRoutes`. `rtspBackends`: the names of the configured RTSP backends
 * (`httpRoutes[].backends[].rtspBackend` must name one of them).
 */
export function validateHttpRoutes (raw: unknown, rtspBackends: readonly string[] = []): HttpRouteConfig[] {
  if (!Array.isArray(raw)) fail('httpRoutes', 'must be a list')
  const seen = new Set<string>()
  const byName = new Map<string, string>()
  return raw.map((r: unknown, i) => {
    const key = `httpRoutes[${i}]`
    if (!isObj(r)) fail(key, 'must be an object { path, backends }')
    for (const k of Object.keys(r)) if (!['path', 'backends', 'auth', 'maxInFlight'].includes(k)) fail(`${key}.${k}`, 'is not a known setting')
    if (typeof r.path !== 'string' || !r.path.startsWith('/')) fail(`${key}.path`, "must be a path starting with '/'")
    const norm = normalisePath(r.path)
    if (!norm.ok || norm.path.replace(/\/$/, '') !== r.path.replace(/\/$/, '')) fail(`${key}.path`, `must be a canonical path (no '..', '.', '//' or percent-escapes): '${r.path}'`)
    const path = norm.path.replace(/\/$/, '')
    if (path === '') fail(`${key}.path`, "must not be '/' (it would shadow the web surface); name a prefix such as /hls")
    for (const w of RESERVED_WEB_PATHS) if (path === w || path.startsWith(`${w}/`)) fail(`${key}.path`, `must not take '${w}' (the web surface uses it)`)
    if (seen.has(path)) fail(`${key}.path`, `duplicates the route '${path}'`)
    seen.add(path)
    if (!Array.isArray(r.backends) || r.backends.length === 0) fail(`${key}.backends`, 'must be a non-empty list of http:// base URLs')
    const backends = (r.backends as unknown[]).map((b, j) => parseHttpBackend(b, `${key}.backends[${j}]`))
    const names = new Set<string>()
    for (const [j, b] of backends.entries()) {
      if (names.has(b.name)) fail(`${key}.backends[${j}]`, `duplicates the backend '${b.name}' in this route`)
      names.add(b.name)
      const hostPort = `${b.host}:${b.port}`
      const other = byName.get(b.name)
      if (other !== undefined && other !== hostPort) fail(`${key}.backends[${j}].name`, `names '${b.name}' for ${hostPort}, but another route uses it for ${other}`)
      byName.set(b.name, hostPort)
      if (b.rtspBackend !== '' && !rtspBackends.includes(b.rtspBackend)) fail(`${key}.backends[${j}].rtspBackend`, `names no configured RTSP backend ('${b.rtspBackend}'; backends[].name: ${rtspBackends.length === 0 ? 'none' : rtspBackends.join(', ')})`)
    }
    if (r.auth !== undefined && typeof r.auth !== 'boolean') fail(`${key}.auth`, 'must be true or false')
    return { path, backends, auth: r.auth !== false, maxInFlight: int(r.maxInFlight ?? 0, `${key}.maxInFlight`, 0) }
  })
}

// ---------------------------------------------------------------- path normalisation

export type NormalisedPath =
  | { ok: true, /** decoded, '/'-joined, '.' and '..' resolved, '//' collapsed */ path: string, segments: string[], trailingSlash: boolean, query: string }
  | { ok: false, reason: string }

/** Characters that may stand unescaped in a path segment we send upstream (RFC 3986 pchar minus '%'). */
const PCHAR = /[A-Za-z0-9\-._~!$&'()*+,;=:@]/

/**
 * Normalise an origin-form request target (`/a/b?q`). Refused: anything not starting with '/'
 * (absolute-form, authority-form, '*'), encoded '/', '\' or NUL (`%2f`, `%5c`, `%00`), a raw '\',
 * control characters, a fragment, bad percent-escapes, and '..' that climbs above the root.
 * Percent-escapes are decoded, '.' segments and empty segments ('//') dropped, '..' resolved.
 */
export function normalisePath (target: string): NormalisedPath {
  if (!target.startsWith('/')) return { ok: false, reason: 'request target is not origin-form (absolute URLs are refused)' }
  const q = target.indexOf('?')
  const rawPath = q === -1 ? target : target.slice(0, q)
  const query = q === -1 ? '' : target.slice(q)
  if (/[\x00-\x20\x7f\\#]/.test(rawPath)) return { ok: false, reason: 'control character, space, backslash or fragment in the path' }
  if (/[\x00-\x20\x7f#]/.test(query)) return { ok: false, reason: 'control character, space or fragment in the query' }
  const out: string[] = []
  const raw = rawPath.split('/')
  let trailingSlash = false
  for (let i = 1; i < raw.length; i++) {
    const s = raw[i]!
    if (/%(2f|5c|00)/i.test(s)) return { ok: false, reason: 'encoded slash, backslash or NUL in the path' }
    let d: string
    try { d = decodeURIComponent(s) } catch { return { ok: false, reason: 'bad percent-escape in the path' } }
    if (/[\x00-\x1f\x7f\\/]/.test(d)) return { ok: false, reason: 'encoded control character in the path' }
    const last = i === raw.length - 1
    if (d === '' || d === '.') { if (last) trailingSlash = true; continue }
    if (d === '..') {
      if (out.length === 0) return { ok: false, reason: "'..' above the root" }
      out.pop()
      if (last) trailingSlash = true
      continue
    }
    out.push(d)
  }
  const path = '/' + out.join('/') + (trailingSlash && out.length > 0 ? '/' : '')
  return { ok: true, path, segments: out, trailingSlash, query }
}

/** Percent-encode one decoded path segment for the upstream request (UTF-8, pchar kept). */
export function encodeSegment (s: string): string {
  let o = ''
  for (const ch of s) {
    if (PCHAR.test(ch)) { o += ch; continue }
    for (const b of Buffer.from(ch, 'utf8')) o += '%' + b.toString(16).toUpperCase().padStart(2, '0')
  }
  return o
}

/** The route whose prefix covers `segments` (longest prefix wins), or null. */
export function matchRoute<R extends { path: string }> (routes: readonly R[], segments: readonly string[]): { route: R, rest: string[] } | null {
  let best: { route: R, rest: string[] } | null = null
  let bestLen = -1
  for (const r of routes) {
    const rs = r.path.split('/').slice(1)
    if (rs.length > segments.length || rs.length <= bestLen) continue
    if (rs.every((s, i) => s === segments[i])) { best = { route: r, rest: segments.slice(rs.length) }; bestLen = rs.length }
  }
  return best
}
