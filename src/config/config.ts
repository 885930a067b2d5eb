/**
 * Configuration: defaults, file loading (YAML or JSON), environment and command-line overrides,
 * validation with messages that name the bad key, and a deep-frozen result. This is the only
 * module that reads the environment.
 */
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { TunnelgateError } from '../core/errors.js'
import { HTTP_PROXY_DEFAULTS, validateHttpProxy, validateHttpRoutes, type HttpProxyConfig, type HttpRouteConfig } from './http-routes.js'
import { parseCidr } from '../tunnel/codec/access.js'
import { redactText } from '../core/redact.js'

export interface BackendConfig {
  /** Stable name used in metrics and routes (defaults to host:port). */
  name: string
  /** rtsp://host:port — the backend's RTSP listener. */
  url: string
  /** Most sessions this gateway opens to it at once (0 = unlimited). */
  maxSessions: number
  /** Relative share of new sessions when loads are equal. */
  weight: number
  /** Most bits/s this gateway (cluster) sends from it at once (0 = unlimited); measured, see balancer. */
  maxBandwidth: number
  /** The backend's own Prometheus /metrics URL (http://…); '' = none. Its load overrides the relays' sums. */
  metricsUrl: string
  /** Gauge at metricsUrl that counts the backend's sessions (summed over label sets). */
  metricsSessions: string
  /** Counter at metricsUrl of bytes it sent (its rate is the bandwidth); '' = none. */
  metricsBytes: string
}

export interface RouteConfig {
  /** Public path prefix ('/' matches everything). */
  path: string
  /** Names of the backends that serve it (empty = all backends). */
  backends: string[]
  /** Path prefix on the backend that replaces `path` (default: the same as `path`). */
  backendPath?: string
  /** Live fan-out (docs/live-fanout.md): true, false (default) or 'auto' (detected from the backend's SDP / PLAY reply). */
  live?: boolean | 'auto'
}

export interface Config {
  /** all-in-one: portal + relay (+ origin); portal: forwards legs to relay nodes; relay: a relay node. */
  role: 'all-in-one' | 'portal' | 'relay'
  host: string
  port: number
  /** Local relay workers (0 = relay inside the portal process; 'auto' = one per CPU core in the all-in-one). */
  workers: number | 'auto'
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  limits: {
    /** Bytes of an HTTP request head on port 80. */
    httpHeadBytes: number
    /** Header lines in an HTTP request head. */
    httpHeaders: number
    /** Time for a new connection to send its whole request head (slowloris). */
    headerTimeoutMs: number
    /** RTSP message head bytes (both directions). */
    rtspHeadBytes: number
    /** RTSP header lines. */
    rtspHeaders: number
    /** RTSP body bytes (SDP). */
    rtspBodyBytes: number
    /** Bytes queued towards one client connection (replies, frames, the gateway's answers, pongs) before it is closed for not reading. */
    clientOutputBytes: number
    /** Bytes queued past their sockets' high-water marks towards all clients of one process (0 = no bound); a lagging client may not push the sum over it. */
    clientOutputBytesTotal: number
    /** Bytes queued towards one backend connection before its tunnel is closed (the client is paused long before). */
    backendOutputBytes: number
    /** Distinct Session ids a backend may grant on one tunnel (each costs a TEARDOWN at close). */
    sessionsPerTunnel: number
    /** Bytes of client data held while its backend connection is being opened. */
    pendingInputBytes: number
    /** Tunnels open at once (0 = unlimited). */
    maxTunnels: number
    /** Legs waiting for their other half at once. */
    maxUnpairedLegs: number
    minCookieLength: number
    maxCookieLength: number
    /** Tunnels open at once from one client address (0 = unlimited). */
    maxTunnelsPerIp: number
    /** Legs waiting for their other half at once from one client address (0 = unlimited). */
    maxUnpairedLegsPerIp: number
    /** Largest `$` frame (4-byte header + payload) a client may send upstream; larger ones are dropped. */
    clientFrameBytes: number
    /** RTSP requests per second one tunnel may send (0 = unlimited); over the rate → RTSP 503. */
    rtspRequestsPerSecond: number
    /** Requests a tunnel may send in a burst above the rate. */
    rtspRequestBurst: number
    /** With more than this queued towards a client, whole `$` frames are dropped (0 = never drop; close at clientOutputBytes). */
    dropFramesAboveBytes: number
    /** A client whose output stays blocked (nothing drained) this long is closed (0 = never). */
    clientStallMs: number
    /** Largest WebSocket message (fragments together) a client may send, in bytes. */
    wsMessageBytes: number
  }
  tunnel: {
    /** A GET without POST, or POST without GET, is dropped after this. */
    pairingTimeoutMs: number
    /** On SIGTERM/SIGINT: open tunnels may finish for this long, then the rest get TEARDOWN. */
    shutdownGraceMs: number
    /** No byte either way for this long closes the tunnel (≥ 2 × RTSP session timeout). */
    idleTimeoutMs: number
    /** What to do with `$` frames a client sends on its GET connection (live555/VLC RTCP). */
    getUpstream: 'forward' | 'drop'
    /** Refuse a POST whose cookie's GET came from another client address (off: proxy farms split legs). */
    requireSameClientIp: boolean
    /** On a relay node: a POST whose cookie no relay knows (no GET yet) is held this long, not pairingTimeoutMs. */
    orphanPostMs: number
  }
  backend: {
    connectTimeoutMs: number
    /**
     * Each proxied session's own buffer for reads from its backend (bytes; 0 = a fresh buffer
     * per read, Node's default): reused for every read, so the media path allocates nothing per read.
     */
    readBufferBytes: number
    /** A request the backend has not answered by then gets 504. */
    replyTimeoutMs: number
    /** After a connection failure a backend is skipped for this long. */
    failureCooldownMs: number
    /** Wait after the final TEARDOWN before closing the backend connection. */
    teardownGraceMs: number
    /** RTSP OPTIONS health probe interval (0 = no probes; connection failures still count). */
    probeIntervalMs: number
    /** A probe without a reply within this time fails. */
    probeTimeoutMs: number
    /** Passing probes in a row before a failed backend is chosen again. */
    probeRise: number
  }
  backends: BackendConfig[]
  routes: RouteConfig[]
  auth: {
    /** Users allowed to open a tunnel (HTTP Basic on the GET); empty = no gateway authentication. */
    basic: Array<{ user: string, hash: string }>
    realm: string
    /** Shared secrets for path-bound tokens on the tunnel GET (tunnelgate HMAC tokens and HS256 JWTs); empty = no tokens. */
    tokenSecrets: string[]
    /** Query parameter that may carry the token (besides `Authorization: Bearer`). */
    tokenQueryParam: string
    /** Failed Basic sign-ins from one client address (IPv6: its /64) before it is refused (429) for a while (0 = never). */
    maxFailuresPerAddress: number
    /** Failed Basic sign-ins as one user (from addresses it never signed in from) before it is refused (0 = never). */
    maxFailuresPerUser: number
    /** Failures are counted until none came (and no refusal period ran) for this long. */
    failureWindowMs: number
    /** First refusal period; each further failure doubles it. */
    backoffMs: number
    /** Longest refusal period. */
    backoffMaxMs: number
    /** Client addresses (and, separately, unknown user names) the back-off remembers at once. */
    backoffEntries: number
    /** Password verifications (scrypt on libuv's threadpool) running at once; more get 503 + Retry-After. */
    maxVerifications: number
    /** Verified credentials remembered (so a player's repeated GETs cost no scrypt). */
    cacheEntries: number
  }
  access: {
    /** Client addresses (CIDR) allowed to connect; empty = all not denied. */
    allow: string[]
    /** Client addresses (CIDR) refused at once; wins over allow. */
    deny: string[]
  }
  cluster: {
    /** Relay nodes for a portal: "host:port" or "dns:NAME:PORT" (re-resolved). */
    relays: string[]
    probeIntervalMs: number
    dnsIntervalMs: number
    connectTimeoutMs: number
    /** Relay nodes whose /metrics this relay reads for cluster-wide backend load: "host:port" or "dns:NAME:PORT". */
    peers: string[]
    /** On SIGTERM a relay drains (keeps its tunnels, takes no new ones) for at most this long, then stops. */
    drainTimeoutMs: number
    /** Portal: relays asked "is this POST's GET yours?" (in try order) before the POST is held by its owner. */
    postAskRelays: number
    /**
     * Shared secret portals sign what they forward with and relay nodes verify (src/tunnel/codec/forward-proof.ts);
     * required for role portal and relay and with cluster.peers. Never logged.
     */
    secret: string
    /** More secrets a relay node accepts (not used to sign): rotation without downtime. */
    acceptSecrets: string[]
    /** A proof older or newer than this (clock difference included) is refused. */
    maxClockSkewMs: number
    /** Proof nonces remembered at once (2 × maxClockSkewMs); past this, new legs are refused. */
    maxNonces: number
  }
  balancer: {
    /** Interval of load scrapes (peers, backend metrics URLs, PromQL) and of the portal → worker load push. */
    scrapeIntervalMs: number
    /** Timeout of one scrape. */
    scrapeTimeoutMs: number
    /** Figures older than this many scrape intervals are ignored (the relay falls back to its own counts). */
    staleIntervals: number
    /** Optional PromQL load source: a Prometheus server's HTTP API and instant queries returning a vector by `backend`. */
    promql: {
      /** Prometheus base URL (http://host:9090); '' = off. */
      url: string
      /** Sessions per backend, e.g. sum by (backend) (tunnelgate_backend_sessions). */
      query: string
      /** Bits/s per backend; '' = none. */
      bandwidthQuery: string
    }
  }
  websocket: {
    /** Accept RTSP over WebSocket (subprotocols `binary` and `rtsp.onvif.org`) on the listen port(s). */
    enabled: boolean
    /** Request path of the WebSocket upgrade (media-stream-library's default). */
    path: string
  }
  watch: {
    /** Serve the browser player at /watch/<stream path> and its index at /watch. */
    enabled: boolean
    /** Stream paths listed at /watch and on the status page (the embedded origin's streams are added). */
    streams: string[]
  }
  tls: {
    /** PEM certificate chain file; with `key`, the front door also listens with TLS on `port`. '' = no TLS. */
    cert: string
    /** PEM private key file. */
    key: string
    /** TLS listen port (tunnel legs, WebSocket and the web surface, as on the plain port). */
    port: number
  }
  /** The operations listener: /metrics, /status, the status page, /healthz, /readyz and the admin API. */
  ops: {
    /** Listen address (loopback by default; any other address requires a token). */
    host: string
    /** Listen port (0 = any free port). */
    port: number
    /** Bearer token (or Basic password) for every request ('' = none, allowed on loopback only). */
    token: string
  }
  admin: {
    /** Serve the admin API (JSON, /admin/*) on the ops listener. */
    enabled: boolean
  }
  accessLog: {
    /** One line per finished tunnel (Darwin-style access log). */
    enabled: boolean
    /** File to append to ('' = through the process log on stdout, `event: "access"`). */
    file: string
    /** Rotate the file when it would grow past this many bytes. */
    maxBytes: number
    /** Rotated files kept (file.1 … file.N). */
    keep: number
  }
  status: {
    /** Interval of the status page's samples (live updates and sparklines). */
    sampleIntervalMs: number
    /** Samples kept for the sparklines (history = sampleIntervalMs × historySamples). */
    historySamples: number
    /** Busiest streams listed. */
    streams: number
    /** Status pages connected at once for live updates (server-sent events). */
    maxEventClients: number
  }
  /** Live fan-out: one backend session per live path per relay, shared by its viewers (docs/live-fanout.md). */
  live: {
    /** The backend session of a live path stays open this long after its last viewer left. */
    lingerMs: number
    /** Viewers of a live path whose backend session cannot be restored within this are closed. */
    outageDeadlineMs: number
    /** First delay before reconnecting a lost live backend session (doubles per failure). */
    reconnectMinMs: number
    /** Longest delay between reconnect attempts. */
    reconnectMaxMs: number
    /** No RTP from a playing live backend session this long = lost (reconnect). */
    stallTimeoutMs: number
    /** Largest GOP cache per live path in bytes (0 = none: new viewers wait for the next keyframe). */
    gopCacheBytes: number
    /** Bytes queued towards a live viewer above which its whole frames are dropped up to the next keyframe. */
    viewerQueueBytes: number
    /** Viewers of one live path on one relay (0 = unlimited); more get RTSP 453. */
    maxViewersPerPath: number
    /** Live paths open at once on one relay; more get RTSP 453. */
    maxPaths: number
    /** Distinct path label values in the live metrics; later paths are counted under path="_other". */
    metricsPaths: number
    /** Route `live: auto`: how long a path's live/VOD verdict is remembered. */
    detectCacheMs: number
    /** Route `live: auto`: most remembered verdicts. */
    detectCacheEntries: number
  }
  /** HTTP pass-through routes on the listen port (path prefix → backend HTTP base URLs); see docs/http-routes.md. */
  httpRoutes: HttpRouteConfig[]
  /** Settings shared by all HTTP routes (timeouts, cool-down, viewer affinity, limits). */
  httpProxy: HttpProxyConfig
  origin: {
    /** Start the embedded origin and use it as the backend when no backend is configured. */
    enabled: boolean
    host: string
    port: number
    mediaDir?: string
  }
}

export const DEFAULTS: Config = {
  role: 'all-in-one',
  host: '0.0.0.0',
  port: 80,
  workers: 'auto',
  logLevel: 'info',
  limits: {
    httpHeadBytes: 8192,
    httpHeaders: 64,
    headerTimeoutMs: 10_000,
    rtspHeadBytes: 16_384,
    rtspHeaders: 64,
    rtspBodyBytes: 1024 * 1024,
    clientOutputBytes: 8 * 1024 * 1024,
    clientOutputBytesTotal: 512 * 1024 * 1024,
    backendOutputBytes: 1024 * 1024,
    sessionsPerTunnel: 16,
    pendingInputBytes: 256 * 1024,
    maxTunnels: 0,
    maxUnpairedLegs: 10_000,
    minCookieLength: 8,
    maxCookieLength: 128,
    maxTunnelsPerIp: 500,
    maxUnpairedLegsPerIp: 100,
    clientFrameBytes: 65_539,
    rtspRequestsPerSecond: 20,
    rtspRequestBurst: 200,
    clientStallMs: 30_000,
    dropFramesAboveBytes: 0,
    wsMessageBytes: 256 * 1024
  },
  tunnel: {
    pairingTimeoutMs: 30_000,
    shutdownGraceMs: 5_000,
    idleTimeoutMs: 180_000,
    requireSameClientIp: false,
    getUpstream: 'forward',
    orphanPostMs: 5_000
  },
  backend: {
    connectTimeoutMs: 5_000,
    readBufferBytes: 16_384,
    replyTimeoutMs: 15_000,
    failureCooldownMs: 5_000,
    teardownGraceMs: 1_000,
    probeIntervalMs: 2_000,
    probeTimeoutMs: 2_000,
    probeRise: 2
  },
  backends: [],
  routes: [{ path: '/', backends: [] }],
  auth: {
    basic: [],
    realm: 'tunnelgate',
    tokenSecrets: [],
    tokenQueryParam: 'token',
    maxFailuresPerAddress: 5,
    maxFailuresPerUser: 20,
    failureWindowMs: 60_000,
    backoffMs: 1_000,
    backoffMaxMs: 60_000,
    backoffEntries: 10_000,
    maxVerifications: 2,
    cacheEntries: 1_024
  },
  access: { allow: [], deny: [] },
  cluster: { relays: [], probeIntervalMs: 2_000, dnsIntervalMs: 5_000, connectTimeoutMs: 3_000, peers: [], drainTimeoutMs: 60_000, postAskRelays: 3, secret: '', acceptSecrets: [], maxClockSkewMs: 30_000, maxNonces: 200_000 },
  balancer: {
    scrapeIntervalMs: 1_000,
    scrapeTimeoutMs: 2_000,
    staleIntervals: 3,
    promql: { url: '', query: 'sum by (backend) (tunnelgate_backend_sessions)', bandwidthQuery: '' }
  },
  websocket: { enabled: true, path: '/rtsp-over-websocket' },
  watch: { enabled: true, streams: [] },
  tls: { cert: '', key: '', port: 443 },
  ops: { host: '127.0.0.1', port: 9180, token: '' },
  admin: { enabled: false },
  accessLog: { enabled: true, file: '', maxBytes: 10 * 1024 * 1024, keep: 5 },
  status: { sampleIntervalMs: 2_000, historySamples: 180, streams: 10, maxEventClients: 100 },
  live: {
    lingerMs: 5_000,
    outageDeadlineMs: 30_000,
    reconnectMinMs: 250,
    reconnectMaxMs: 5_000,
    stallTimeoutMs: 5_000,
    gopCacheBytes: 4 * 1024 * 1024,
    viewerQueueBytes: 1024 * 1024,
    maxViewersPerPath: 0,
    maxPaths: 100,
    metricsPaths: 50,
    detectCacheMs: 60_000,
    detectCacheEntries: 1_000
  },
  httpRoutes: [],
  httpProxy: { ...HTTP_PROXY_DEFAULTS },
  origin: { enabled: true, host: '127.0.0.1', port: 0 }
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

function fail (key: string, msg: string): never {
  throw new TunnelgateError('TG_ERR_CFG_INVALID', `config: '${key}' ${redactText(msg)}`, { key })
}

/** Settings that were renamed: a config naming the old key is refused with the new one. */
const MOVED: Record<string, string> = { 'admin.host': 'ops.host', 'admin.port': 'ops.port', 'admin.token': 'ops.token (environment: TUNNELGATE_OPS_TOKEN)' }
const MOVED_WHY = 'the admin API is served on the ops listener with /metrics and the status page (docs/configuration.md)'

/** Merge `src` into `dst` (plain objects recursively, arrays and scalars replaced), rejecting unknown keys. */
function mergeStrict (dst: Obj, src: Obj, path: string): void {
  for (const [k, v] of Object.entries(src)) {
    const key = path ? `${path}.${k}` : k
    const moved = MOVED[key]
    if (moved !== undefined) fail(key, `has moved to '${moved}': ${MOVED_WHY}`)
    if (!(k in dst) && !(path === 'origin' && k === 'mediaDir')) fail(key, 'is not a known setting')
    if (isObj(dst[k]) && !Array.isArray(dst[k])) {
      if (!isObj(v)) fail(key, 'must be an object')
      mergeStrict(dst[k] as Obj, v, key)
    } else {
      dst[k] = v
    }
  }
}

function int (v: unknown, key: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(key, `must be an integer (got ${JSON.stringify(v)})`)
  if (v < min || v > max) fail(key, `must be between ${min} and ${max} (got ${v})`)
  return v
}

export function parseBackendUrl (raw: string, key: string): { host: string, port: number } {
  let u: URL
  try { u = new URL(raw) } catch { fail(key, `is not a URL: '${raw}'`) }
  if (u.protocol !== 'rtsp:') fail(key, `must be an rtsp:// URL (got '${raw}')`)
  if (!u.hostname) fail(key, `has no host: '${raw}'`)
  if (u.pathname !== '/' && u.pathname !== '') fail(key, `must not have a path (routes map paths): '${raw}'`)
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port === '' ? 554 : Number(u.port) }
}

function normaliseBackend (b: unknown, i: number): BackendConfig {
  const key = `backends[${i}]`
  if (typeof b === 'string') b = { url: b }
  if (!isObj(b)) fail(key, 'must be an rtsp:// URL or an object with a url')
  for (const k of Object.keys(b)) if (!['name', 'url', 'maxSessions', 'weight', 'maxBandwidth', 'metricsUrl', 'metricsSessions', 'metricsBytes'].includes(k)) fail(`${key}.${k}`, 'is not a known setting')
  if (typeof b.url !== 'string') fail(`${key}.url`, 'is required and must be a string')
  const { host, port } = parseBackendUrl(b.url, `${key}.url`)
  const name = b.name === undefined ? `${host}:${port}` : b.name
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.:\-[\]]{1,64}$/.test(name)) fail(`${key}.name`, 'must be 1-64 characters of A-Z a-z 0-9 _ . : -')
  return {
    name,
    url: `rtsp://${host.includes(':') ? `[${host}]` : host}:${port}`,
    maxSessions: int(b.maxSessions ?? 0, `${key}.maxSessions`, 0),
    weight: int(b.weight ?? 1, `${key}.weight`, 1, 1000),
    maxBandwidth: int(b.maxBandwidth ?? 0, `${key}.maxBandwidth`, 0),
    metricsUrl: httpUrl(b.metricsUrl ?? '', `${key}.metricsUrl`),
    metricsSessions: metricName(b.metricsSessions ?? 'tunnelgate_origin_sessions', `${key}.metricsSessions`, false),
    metricsBytes: metricName(b.metricsBytes ?? 'tunnelgate_origin_bytes_sent_total', `${key}.metricsBytes`, true)
  }
}

/** '' or an http(s):// URL. */
function httpUrl (v: unknown, key: string): string {
  if (v === '') return ''
  if (typeof v !== 'string') fail(key, 'must be an http:// URL or empty')
  let u: URL
  try { u = new URL(v) } catch { fail(key, `is not a URL: '${v}'`) }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') fail(key, `must be an http:// or https:// URL (got '${v}')`)
  return v
}

function metricName (v: unknown, key: string, emptyOk: boolean): string {
  if (emptyOk && v === '') return ''
  if (typeof v !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(v)) fail(key, `must be a Prometheus metric name (got ${JSON.stringify(v)})`)
  return v
}

/** Shortest ops.token. */
export const OPS_TOKEN_MIN = 16
/** Shortest cluster secret. */
export const CLUSTER_SECRET_MIN = 16

/** A loopback listen address: reachable from this machine only. */
export function isLoopbackHost (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/** Validate a merged config object; returns a deep-frozen Config. */
export function validateConfig (raw: Obj): Config {
  const c = raw as unknown as Config
  if (typeof c.host !== 'string' || c.host === '') fail('host', 'must be a non-empty string')
  int(c.port, 'port', 0, 65535)
  if (c.workers !== 'auto') int(c.workers, 'workers', 0, 256)
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(c.logLevel)) fail('logLevel', `must be one of fatal, error, warn, info, debug, trace, silent (got '${String(c.logLevel)}')`)
  for (const [k, v] of Object.entries(c.limits)) int(v, `limits.${k}`, 0)
  if (c.limits.httpHeadBytes < 256) fail('limits.httpHeadBytes', 'must be at least 256')
  if (c.limits.minCookieLength < 1) fail('limits.minCookieLength', 'must be at least 1')
  if (c.limits.maxCookieLength < c.limits.minCookieLength) fail('limits.maxCookieLength', 'must not be below limits.minCookieLength')
  int(c.tunnel.pairingTimeoutMs, 'tunnel.pairingTimeoutMs', 1)
  int(c.tunnel.shutdownGraceMs, 'tunnel.shutdownGraceMs', 0)
  int(c.tunnel.idleTimeoutMs, 'tunnel.idleTimeoutMs', 1)
  if (!['forward', 'drop'].includes(c.tunnel.getUpstream)) fail('tunnel.getUpstream', "must be 'forward' or 'drop'")
  if (typeof c.tunnel.requireSameClientIp !== 'boolean') fail('tunnel.requireSameClientIp', 'must be true or false')
  if (c.limits.clientFrameBytes < 4) fail('limits.clientFrameBytes', 'must be at least 4')
  if (c.limits.clientOutputBytes < 4096) fail('limits.clientOutputBytes', 'must be at least 4096')
  if (c.limits.backendOutputBytes < 4096) fail('limits.backendOutputBytes', 'must be at least 4096')
  if (c.limits.sessionsPerTunnel < 1) fail('limits.sessionsPerTunnel', 'must be at least 1')
  int(c.tunnel.orphanPostMs, 'tunnel.orphanPostMs', 1)
  for (const [k, v] of Object.entries(c.backend)) int(v, `backend.${k}`, 0)
  if (!Array.isArray(c.backends)) fail('backends', 'must be a list')
  c.backends = c.backends.map(normaliseBackend)
  const names = new Set<string>()
  for (const [i, b] of c.backends.entries()) {
    if (names.has(b.name)) fail(`backends[${i}].name`, `duplicates the name '${b.name}'`)
    names.add(b.name)
  }
  if (!Array.isArray(c.routes) || c.routes.length === 0) fail('routes', 'must be a non-empty list')
  c.routes = c.routes.map((r, i) => {
    const key = `routes[${i}]`
    if (!isObj(r)) fail(key, 'must be an object')
    for (const k of Object.keys(r)) if (!['path', 'backends', 'backendPath', 'live'].includes(k)) fail(`${key}.${k}`, 'is not a known setting')
    if (typeof r.path !== 'string' || !r.path.startsWith('/')) fail(`${key}.path`, "must be a path starting with '/'")
    const backends = r.backends ?? []
    if (!Array.isArray(backends)) fail(`${key}.backends`, 'must be a list of backend names')
    for (const [j, n] of (backends as unknown[]).entries()) {
      if (typeof n !== 'string' || (!names.has(n) && c.backends.length > 0)) fail(`${key}.backends[${j}]`, `names no configured backend ('${String(n)}')`)
    }
    if (r.backendPath !== undefined && (typeof r.backendPath !== 'string' || !r.backendPath.startsWith('/'))) fail(`${key}.backendPath`, "must be a path starting with '/'")
    if (r.live !== undefined && r.live !== true && r.live !== false && r.live !== 'auto') fail(`${key}.live`, "must be true, false or 'auto'")
    return { path: r.path, backends: backends as string[], ...(r.backendPath === undefined ? {} : { backendPath: r.backendPath as string }), ...(r.live === undefined ? {} : { live: r.live as boolean | 'auto' }) }
  })
  if (!Array.isArray(c.auth.basic)) fail('auth.basic', 'must be a list of { user, hash }')
  for (const [i, u] of c.auth.basic.entries()) {
    if (!isObj(u) || typeof u.user !== 'string' || u.user === '' || u.user.includes(':')) fail(`auth.basic[${i}].user`, "must be a non-empty name without ':'")
    if (typeof u.hash !== 'string' || !/^scrypt\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/.test(u.hash)) fail(`auth.basic[${i}].hash`, "must be a scrypt hash made by 'tunnelgate hash-password'")
  }
  if (typeof c.auth.realm !== 'string' || /["\r\n]/.test(c.auth.realm)) fail('auth.realm', 'must be a string without quotes or line breaks')
  if (!Array.isArray(c.auth.tokenSecrets)) fail('auth.tokenSecrets', 'must be a list of secrets')
  for (const [i, sec] of c.auth.tokenSecrets.entries()) if (typeof sec !== 'string' || sec.length < 16) fail(`auth.tokenSecrets[${i}]`, 'must be a string of at least 16 characters')
  if (typeof c.auth.tokenQueryParam !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(c.auth.tokenQueryParam)) fail('auth.tokenQueryParam', 'must be 1-64 characters of A-Z a-z 0-9 _ . -')
  for (const k of ['maxFailuresPerAddress', 'maxFailuresPerUser', 'cacheEntries'] as const) int(c.auth[k], `auth.${k}`, 0, 1_000_000)
  for (const k of ['failureWindowMs', 'backoffMs', 'backoffMaxMs'] as const) int(c.auth[k], `auth.${k}`, 1, 86_400_000)
  int(c.auth.backoffEntries, 'auth.backoffEntries', 1, 10_000_000)
  // The threadpool also serves fs, dns.lookup and zlib; more verifications than it has threads would only queue there.
  int(c.auth.maxVerifications, 'auth.maxVerifications', 1, 1024)
  if (c.auth.backoffMaxMs < c.auth.backoffMs) fail('auth.backoffMaxMs', 'must not be below auth.backoffMs')
  for (const k of ['allow', 'deny'] as const) {
    if (!Array.isArray(c.access[k])) fail(`access.${k}`, 'must be a list of CIDR blocks like 10.0.0.0/8')
    for (const [i, e] of c.access[k].entries()) {
      if (typeof e !== 'string') fail(`access.${k}[${i}]`, 'must be a CIDR block like 10.0.0.0/8')
      try { parseCidr(e) } catch (err) { fail(`access.${k}[${i}]`, (err as Error).message) }
    }
  }
  if (!['all-in-one', 'portal', 'relay'].includes(c.role)) fail('role', "must be 'all-in-one', 'portal' or 'relay'")
  if (!Array.isArray(c.cluster.relays) || c.cluster.relays.some(r => typeof r !== 'string' || !/^(dns:[^:]+:\d+|\[?[^\]]+\]?:\d+)$/.test(r))) fail('cluster.relays', 'must be a list of host:port or dns:NAME:PORT')
  if (c.role === 'portal' && c.cluster.relays.length === 0) fail('cluster.relays', 'must name at least one relay for the portal role (--relay H:P or --relays dns:NAME:PORT)')
  for (const k of ['probeIntervalMs', 'dnsIntervalMs', 'connectTimeoutMs'] as const) int(c.cluster[k], `cluster.${k}`, 1)
  if (!Array.isArray(c.cluster.peers) || c.cluster.peers.some(r => typeof r !== 'string' || !/^(dns:[^:]+:\d+|\[?[^\]]+\]?:\d+)$/.test(r))) fail('cluster.peers', 'must be a list of host:port or dns:NAME:PORT')
  int(c.cluster.drainTimeoutMs, 'cluster.drainTimeoutMs', 0)
  int(c.cluster.postAskRelays, 'cluster.postAskRelays', 0, 64)
  if (typeof c.cluster.secret !== 'string' || (c.cluster.secret !== '' && c.cluster.secret.length < CLUSTER_SECRET_MIN)) fail('cluster.secret', `must be a string of at least ${CLUSTER_SECRET_MIN} characters`)
  const needsSecret = c.role === 'portal' || c.role === 'relay' ? `role ${c.role}` : c.cluster.peers.length > 0 ? 'cluster.peers' : null
  if (c.cluster.secret === '' && needsSecret !== null) fail('cluster.secret', `must be set (${CLUSTER_SECRET_MIN}+ characters, the same on every portal and relay node; TUNNELGATE_CLUSTER_SECRET) for ${needsSecret}: relay nodes believe only what a portal signs`)
  if (!Array.isArray(c.cluster.acceptSecrets)) fail('cluster.acceptSecrets', 'must be a list of secrets')
  for (const [i, s] of c.cluster.acceptSecrets.entries()) if (typeof s !== 'string' || s.length < CLUSTER_SECRET_MIN) fail(`cluster.acceptSecrets[${i}]`, `must be a string of at least ${CLUSTER_SECRET_MIN} characters`)
  int(c.cluster.maxClockSkewMs, 'cluster.maxClockSkewMs', 1000, 3_600_000)
  int(c.cluster.maxNonces, 'cluster.maxNonces', 1000, 10_000_000)
  int(c.backend.probeTimeoutMs, 'backend.probeTimeoutMs', 1)
  if (c.backend.readBufferBytes !== 0) int(c.backend.readBufferBytes, 'backend.readBufferBytes', 1024, 1 << 20)
  int(c.backend.probeRise, 'backend.probeRise', 1, 100)
  int(c.balancer.scrapeIntervalMs, 'balancer.scrapeIntervalMs', 100)
  int(c.balancer.scrapeTimeoutMs, 'balancer.scrapeTimeoutMs', 1)
  int(c.balancer.staleIntervals, 'balancer.staleIntervals', 1, 1000)
  httpUrl(c.balancer.promql.url, 'balancer.promql.url')
  for (const k of ['query', 'bandwidthQuery'] as const) if (typeof c.balancer.promql[k] !== 'string') fail(`balancer.promql.${k}`, 'must be a PromQL expression string')
  if (c.balancer.promql.url !== '' && c.balancer.promql.query.trim() === '') fail('balancer.promql.query', 'must be set when balancer.promql.url is')
  if (c.limits.wsMessageBytes < 1024) fail('limits.wsMessageBytes', 'must be at least 1024')
  if (typeof c.websocket.enabled !== 'boolean') fail('websocket.enabled', 'must be true or false')
  if (typeof c.websocket.path !== 'string' || !/^\/[A-Za-z0-9_.~\-/]*$/.test(c.websocket.path)) fail('websocket.path', "must be a path starting with '/' (A-Z a-z 0-9 _ . ~ - /)")
  if (typeof c.watch.enabled !== 'boolean') fail('watch.enabled', 'must be true or false')
  if (!Array.isArray(c.watch.streams) || c.watch.streams.some(p => typeof p !== 'string' || !/^\/[^\s?#<>"']*$/.test(p))) fail('watch.streams', "must be a list of stream paths starting with '/'")
  if (typeof c.tls.cert !== 'string' || typeof c.tls.key !== 'string') fail('tls', 'cert and key must be file paths (or both empty)')
  if ((c.tls.cert === '') !== (c.tls.key === '')) fail(c.tls.cert === '' ? 'tls.cert' : 'tls.key', 'must be set together with ' + (c.tls.cert === '' ? 'tls.key' : 'tls.cert'))
  int(c.tls.port, 'tls.port', 0, 65535)
  if (typeof c.admin.enabled !== 'boolean') fail('admin.enabled', 'must be true or false')
  if (typeof c.ops.host !== 'string' || c.ops.host === '') fail('ops.host', 'must be a non-empty address')
  int(c.ops.port, 'ops.port', 0, 65535)
  if (typeof c.ops.token !== 'string' || /\s/.test(c.ops.token)) fail('ops.token', 'must be a string without spaces')
  if (c.ops.token !== '' && c.ops.token.length < OPS_TOKEN_MIN) fail('ops.token', `must be ${OPS_TOKEN_MIN} characters or more`)
  if (c.ops.token === '' && !isLoopbackHost(c.ops.host)) fail('ops.token', `must be set (${OPS_TOKEN_MIN} characters or more) when ops.host is not loopback (got host '${c.ops.host}')`)
  if (typeof c.accessLog.enabled !== 'boolean') fail('accessLog.enabled', 'must be true or false')
  if (typeof c.accessLog.file !== 'string') fail('accessLog.file', "must be a file path ('' = stdout)")
  int(c.accessLog.maxBytes, 'accessLog.maxBytes', 1024)
  int(c.accessLog.keep, 'accessLog.keep', 0, 1000)
  int(c.status.sampleIntervalMs, 'status.sampleIntervalMs', 100, 3_600_000)
  int(c.status.historySamples, 'status.historySamples', 2, 100_000)
  int(c.status.streams, 'status.streams', 1, 1000)
  int(c.status.maxEventClients, 'status.maxEventClients', 0, 100_000)
  for (const [k, v] of Object.entries(c.live)) int(v, `live.${k}`, 0)
  for (const k of ['outageDeadlineMs', 'reconnectMinMs', 'stallTimeoutMs', 'maxPaths'] as const) int(c.live[k], `live.${k}`, 1)
  if (c.live.reconnectMaxMs < c.live.reconnectMinMs) fail('live.reconnectMaxMs', 'must not be below live.reconnectMinMs')
  if (c.live.viewerQueueBytes < 1024) fail('live.viewerQueueBytes', 'must be at least 1024')
  if (typeof c.origin.enabled !== 'boolean') fail('origin.enabled', 'must be true or false')
  int(c.origin.port, 'origin.port', 0, 65535)
  if (c.origin.mediaDir !== undefined && typeof c.origin.mediaDir !== 'string') fail('origin.mediaDir', 'must be a directory path')
  c.httpRoutes = validateHttpRoutes(c.httpRoutes, c.backends.map(b => b.name))
  validateHttpProxy(c.httpProxy)
  return deepFreeze(c)
}

function deepFreeze<T> (o: T): T {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v)
    Object.freeze(o)
  }
  return o
}

export function loadConfigFile (file: string): Obj {
  let text: string
  try { text = readFileSync(file, 'utf8') } catch (err) {
    throw new TunnelgateError('TG_ERR_CFG_INVALID', `config: cannot read '${file}': ${(err as Error).message}`)
  }
  let parsed: unknown
  try {
    parsed = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text)
  } catch (err) {
    throw new TunnelgateError('TG_ERR_CFG_INVALID', `config: '${file}' is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`)
  }
  if (parsed === null || parsed === undefined) return {}
  if (!isObj(parsed)) throw new TunnelgateError('TG_ERR_CFG_INVALID', `config: '${file}' must hold a mapping at the top level`)
  return parsed
}

/** Environment variables that override settings (documented in docs/configuration.md). */
export function envOverrides (env: NodeJS.ProcessEnv): Obj {
  const o: Obj = {}
  if (env.PORT !== undefined) o.port = Number(env.PORT)
  if (env.TUNNELGATE_PORT !== undefined) o.port = Number(env.TUNNELGATE_PORT)
  if (env.TUNNELGATE_HOST !== undefined) o.host = env.TUNNELGATE_HOST
  if (env.TUNNELGATE_WORKERS !== undefined) o.workers = env.TUNNELGATE_WORKERS === 'auto' ? 'auto' : Number(env.TUNNELGATE_WORKERS)
  if (env.TUNNELGATE_LOG_LEVEL !== undefined) o.logLevel = env.TUNNELGATE_LOG_LEVEL
  if (env.TUNNELGATE_RELAYS !== undefined) o.cluster = { relays: env.TUNNELGATE_RELAYS.split(',').map(s => s.trim()).filter(Boolean) }
  const list = (v: string): string[] => v.split(',').map(s => s.trim()).filter(Boolean)
  if (env.TUNNELGATE_PEERS !== undefined) o.cluster = { ...(o.cluster as Obj ?? {}), peers: list(env.TUNNELGATE_PEERS) }
  if (env.TUNNELGATE_CLUSTER_SECRET !== undefined) o.cluster = { ...(o.cluster as Obj ?? {}), secret: env.TUNNELGATE_CLUSTER_SECRET }
  if (env.TUNNELGATE_CLUSTER_ACCEPT_SECRETS !== undefined) o.cluster = { ...(o.cluster as Obj ?? {}), acceptSecrets: list(env.TUNNELGATE_CLUSTER_ACCEPT_SECRETS) }
  if (env.TUNNELGATE_MEDIA !== undefined) o.origin = { mediaDir: env.TUNNELGATE_MEDIA }
  if (env.TUNNELGATE_TLS_CERT !== undefined || env.TUNNELGATE_TLS_KEY !== undefined || env.TUNNELGATE_TLS_PORT !== undefined) {
    o.tls = {
      ...(env.TUNNELGATE_TLS_CERT === undefined ? {} : { cert: env.TUNNELGATE_TLS_CERT }),
      ...(env.TUNNELGATE_TLS_KEY === undefined ? {} : { key: env.TUNNELGATE_TLS_KEY }),
      ...(env.TUNNELGATE_TLS_PORT === undefined ? {} : { port: Number(env.TUNNELGATE_TLS_PORT) })
    }
  }
  // The old variable still maps to admin.token, which is refused naming ops.token (MOVED).
  if (env.TUNNELGATE_ADMIN_TOKEN !== undefined) o.admin = { token: env.TUNNELGATE_ADMIN_TOKEN }
  if (env.TUNNELGATE_OPS_HOST !== undefined || env.TUNNELGATE_OPS_PORT !== undefined || env.TUNNELGATE_OPS_TOKEN !== undefined) {
    o.ops = {
      ...(env.TUNNELGATE_OPS_HOST === undefined ? {} : { host: env.TUNNELGATE_OPS_HOST }),
      ...(env.TUNNELGATE_OPS_PORT === undefined ? {} : { port: Number(env.TUNNELGATE_OPS_PORT) }),
      ...(env.TUNNELGATE_OPS_TOKEN === undefined ? {} : { token: env.TUNNELGATE_OPS_TOKEN })
    }
  }
  if (env.TUNNELGATE_BACKENDS !== undefined) o.backends = env.TUNNELGATE_BACKENDS.split(',').map(s => s.trim()).filter(Boolean)
  return o
}

/** defaults ← file ← environment ← command line; then validate. */
export function buildConfig (layers: Obj[]): Config {
  const merged = structuredClone(DEFAULTS) as unknown as Obj
  for (const layer of layers) mergeStrict(merged, layer, '')
  return validateConfig(merged)
}
