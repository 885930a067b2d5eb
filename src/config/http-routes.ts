/**
 * The HTTP pass-through routes' settings (`httpRoutes`, `httpProxy`): their declaration, and the checks
 * the schema cannot make (URLs, canonical paths, names shared across routes), which also normalise them.
 *
 *   httpRoutes:
 *     - path: /hls                       # public prefix (segment boundary: /hls matches /hls/x, not /hlsx)
 *       backends:                        # backend HTTP base URLs; /hls/a.ts → <base>/a.ts
 *         - http://10.0.0.5:8080/hls
 *         - { url: 'http://10.0.0.6:8080/hls', name: web-b, weight: 2 }
 */
import { Type, type Static } from '@sinclair/typebox'
import { normalisePath } from './http-path.js'
import { BACKEND_NAME, bool, entry, int, list, section, text } from './kinds.js'
import { fail } from './refuse.js'

const COOKIE_NAME = { pattern: /^[A-Za-z0-9_-]{1,64}$/, hint: 'must be 1-64 characters of A-Z a-z 0-9 _ -' }
const PATH_HINT = "must be a path starting with '/'"
const CANONICAL = "must be a canonical path (no '..', '.', '//' or percent-escapes)"

export const HttpBackendSchema = entry({
  url: text(undefined, '`http://host[:port][/base]`, no credentials, query or fragment; `/hls/a.ts` → `<base>/a.ts`'),
  name: Type.Optional(text(undefined, 'backend identity in metrics, status and the affinity cookie; shared by routes',
    { ...BACKEND_NAME, docDefault: '`host:port`' })),
  weight: int(1, { min: 1, max: 1000 }, 'relative share of new viewers when loads are equal'),
  healthPath: Type.Optional(text(undefined, 'path the health probe GETs (any answer below 500 passes)',
    { pattern: /^\//, hint: PATH_HINT, docDefault: 'base path + `/`' })),
  rtspBackend: text('', 'name of an RTSP backend (`backends[].name`) on the same machine: its sessions as the RTSP ' +
    "balancer sees them count in this HTTP backend's load for new viewers", {
    hint: 'must be the name of a ' +
      'configured RTSP backend'
  })
}, 'must be an http:// base URL or an object with a url')

export const HttpRouteSchema = entry({
  path: text(undefined, 'public prefix, on a segment boundary (`/hls` matches `/hls/x`, not `/hlsx`); not `/` and ' +
    'not a path of the web surface', { pattern: /^\//, hint: PATH_HINT }),
  backends: list(HttpBackendSchema, undefined, 'backend `http://` base URLs (strings) or `{ url, name, weight, ' +
    'healthPath, rtspBackend }`', { minItems: 1, hint: 'must be a non-empty list of http:// base URLs' }),
  auth: bool(true, 'apply `auth.tokenSecrets` (path-bound tokens), else `auth.basic`, when set'),
  maxInFlight: int(0, { min: 0 }, 'requests in flight on the route at once (0 = unlimited); over → 503')
}, 'must be an object { path, backends }')

export const HttpRoutesSchema = list(HttpRouteSchema, [], 'HTTP pass-through routes on the listen port: path prefix ' +
  '→ backend `http://` base URLs, balanced with viewer affinity; see `http-routes.md`', { hint: 'must be a list' })

export const HttpProxySchema = section({
  connectTimeoutMs: int(3_000, { min: 1 }, 'HTTP backend connect timeout (then the next backend)'),
  responseTimeoutMs: int(15_000, { min: 1 }, 'HTTP backend silent this long → 504 (or the transfer is cut)'),
  failureCooldownMs: int(5_000, { min: 0 }, 'an HTTP backend that refused or timed out is skipped this long'),
  retries: int(1, { min: 0, max: 10 }, 'other backends tried before any byte of the answer was sent'),
  viewerIdleMs: int(30_000, { min: 1 }, 'a viewer (affinity cookie, else client address + User-Agent) idle this ' +
    'long is forgotten'),
  maxViewers: int(100_000, { min: 1 }, 'viewers remembered at once (the oldest is forgotten first)'),
  maxInFlight: int(1_000, { min: 0 }, 'proxied HTTP requests in flight at once over all routes (0 = unlimited); ' +
    'over → 503'),
  maxSocketsPerBackend: int(256, { min: 1 }, 'keep-alive connections to one HTTP backend at most'),
  cookie: text('tg_http', "name of the affinity cookie (`<random id>.<the backend's index in the route>`, `Path` = " +
    "the route's prefix)", COOKIE_NAME),
  grantCookie: text('tg_grant', 'name of the grant cookie set on the answer to a request with a valid token (`Path` ' +
    "= the token's path); `http-routes.md`", COOKIE_NAME),
  probeIntervalMs: int(2_000, { min: 0 }, 'HTTP backend health probe interval (GET `healthPath`); 0 = no probes'),
  probeTimeoutMs: int(2_000, { min: 1 }, 'a probe without an answer head this long fails'),
  probeRise: int(2, { min: 1, max: 100 }, 'passing probes in a row before a failed HTTP backend is chosen again'),
  probeFall: int(1, { min: 1, max: 100 }, 'failing probes in a row before an HTTP backend leaves the choice')
})

export type HttpProxyConfig = Static<typeof HttpProxySchema>

/** An HTTP backend as the proxy uses it: the URL taken apart, the derived defaults filled in. */
export type HttpBackendConfig = Static<typeof HttpBackendSchema> & {
  name: string
  /** Normalised base URL: http://host:port/base (no trailing slash, '' base for the root). */
  url: string
  host: string
  port: number
  /** Base path on the backend ('' or '/x/y'). */
  basePath: string
  healthPath: string
}

export type HttpRouteConfig = Omit<Static<typeof HttpRouteSchema>, 'backends'> & {
  /** Normalised: '/hls' (never '/' and never a trailing slash). */
  path: string
  backends: HttpBackendConfig[]
}

/** Paths the web surface owns; a route may not take them (or anything below them). */
export const RESERVED_WEB_PATHS = ['/healthz', '/readyz', '/metrics', '/status', '/hls.js', '/hls-player.html']

export function checkHttpProxy (c: HttpProxyConfig): HttpProxyConfig {
  if (c.grantCookie === c.cookie) fail('httpProxy.grantCookie', 'must differ from httpProxy.cookie')
  return c
}

function normaliseHttpBackend (b: Static<typeof HttpBackendSchema>, key: string): HttpBackendConfig {
  let u: URL
  try { u = new URL(b.url) } catch { fail(`${key}.url`, `is not a URL: '${b.url}'`) }
  if (u.protocol !== 'http:') fail(`${key}.url`, `must be an http:// URL (got '${b.url}')`)
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') {
    fail(`${key}.url`, `must be a plain base URL without credentials, query or fragment: '${b.url}'`)
  }
  const host = u.hostname.replace(/^\[|\]$/g, '')
  const port = u.port === '' ? 80 : Number(u.port)
  const norm = normalisePath(u.pathname)
  if (!norm.ok) fail(`${key}.url`, `has a path that is not canonical: '${b.url}'`)
  const basePath = norm.path === '/' ? '' : norm.path.replace(/\/$/, '')
  const hostPort = `${host.includes(':') ? `[${host}]` : host}:${port}`
  let healthPath = basePath + '/'
  if (b.healthPath !== undefined) {
    const h = normalisePath(b.healthPath)
    if (!h.ok || h.path + h.query !== b.healthPath) fail(`${key}.healthPath`, `${CANONICAL}: '${b.healthPath}'`)
    healthPath = b.healthPath
  }
  const { name = hostPort, weight, rtspBackend } = b
  return { name, url: `http://${hostPort}${basePath}`, host, port, basePath, weight, healthPath, rtspBackend }
}

/**
 * Check and normalise schema-valid `httpRoutes`. `rtspBackends`: the names of the configured RTSP
 * backends (`httpRoutes[].backends[].rtspBackend` must name one of them).
 */
export function checkHttpRoutes (routes: Static<typeof HttpRoutesSchema>,
  rtspBackends: readonly string[]): HttpRouteConfig[] {
  const seen = new Set<string>()
  const byName = new Map<string, string>()
  return routes.map((r, i) => {
    const key = `httpRoutes[${i}]`
    const norm = normalisePath(r.path)
    const noSlash = (p: string): string => p.replace(/\/$/, '')
    if (!norm.ok || noSlash(norm.path) !== noSlash(r.path)) fail(`${key}.path`, `${CANONICAL}: '${r.path}'`)
    const path = noSlash(norm.path)
    if (path === '') {
      fail(`${key}.path`, "must not be '/' (it would shadow the web surface); name a prefix such as " +
      '/hls')
    }
    for (const w of RESERVED_WEB_PATHS) {
      if (path === w || path.startsWith(`${w}/`)) fail(`${key}.path`, `must not take '${w}' (the web surface uses it)`)
    }
    if (seen.has(path)) fail(`${key}.path`, `duplicates the route '${path}'`)
    seen.add(path)
    const backends = r.backends.map((b, j) => normaliseHttpBackend(b, `${key}.backends[${j}]`))
    const names = new Set<string>()
    for (const [j, b] of backends.entries()) {
      const bKey = `${key}.backends[${j}]`
      if (names.has(b.name)) fail(bKey, `duplicates the backend '${b.name}' in this route`)
      names.add(b.name)
      const hostPort = `${b.host}:${b.port}`
      const other = byName.get(b.name)
      if (other !== undefined && other !== hostPort) {
        fail(`${bKey}.name`, `names '${b.name}' for ${hostPort}, but another route uses it for ${other}`)
      }
      byName.set(b.name, hostPort)
      if (b.rtspBackend !== '' && !rtspBackends.includes(b.rtspBackend)) {
        const known = rtspBackends.length === 0 ? 'none' : rtspBackends.join(', ')
        fail(`${bKey}.rtspBackend`, `names no configured RTSP backend ('${b.rtspBackend}'; backends[].name: ${known})`)
      }
    }
    return { path, backends, auth: r.auth, maxInFlight: r.maxInFlight }
  })
}
