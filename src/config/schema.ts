/**
 * Every setting, declared once: type, bounds, default, description (docs/configuration.md's table is
 * generated from it), flags and environment variables. The Config type and DEFAULTS come from here.
 */
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { HttpProxySchema, HttpRoutesSchema, type HttpRouteConfig } from './http-routes.js'
import { BACKEND_NAME, bool, entry, int, list, oneOf, section, text } from './kinds.js'

/** Shortest ops.token. */
export const OPS_TOKEN_MIN = 16
/** Shortest cluster secret. */
export const CLUSTER_SECRET_MIN = 16

const PORT = { min: 0, max: 65535 }
const PATH = { pattern: /^\//, hint: "must be a path starting with '/'" }
const RELAY_SPEC = /^(dns:[^:]+:\d+|\[?[^\]]+\]?:\d+)$/
const RELAY_LIST_HINT = 'must be a list of host:port or dns:NAME:PORT'
const SECRET = { minLength: CLUSTER_SECRET_MIN, hint: `must be a string of at least ${CLUSTER_SECRET_MIN} characters` }
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const metricName = (emptyOk: boolean): { pattern: RegExp, hint: string, showValue: true } => ({
  pattern: emptyOk ? new RegExp(`^(${METRIC_NAME.source.slice(1, -1)})?$`) : METRIC_NAME,
  hint: 'must be a Prometheus metric name',
  showValue: true
})
const HTTP_URL_HINT = 'must be an http:// URL or empty'
const TLS_FILE_HINT = "must be a file path ('' = no TLS)"

const BackendSchema = entry({
  name: Type.Optional(text(undefined, 'stable name in metrics and routes',
    { ...BACKEND_NAME, docDefault: '`host:port`' })),
  url: text(undefined, '`rtsp://host[:port]`, no path (routes map paths)'),
  maxSessions: int(0, { min: 0 }, 'sessions this relay opens to it at once (0 = unlimited); all full → RTSP 453'),
  weight: int(1, { min: 1, max: 1000 }, 'relative share when loads are equal'),
  maxBandwidth: int(0, { min: 0 }, 'bits/s sent from it at once across the cluster (0 = unlimited), from the ' +
    'measured bytes rate (see `balancer`); full → RTSP 453'),
  metricsUrl: text('', "the backend's own Prometheus `/metrics` (`http://…`); when fresh, its figures replace the " +
    "relays' sums for this backend", { hint: HTTP_URL_HINT }),
  metricsSessions: text('tunnelgate_origin_sessions', 'gauge at `metricsUrl` counting its sessions (all series summed)',
    metricName(false)),
  metricsBytes: text('tunnelgate_origin_bytes_sent_total', 'counter at `metricsUrl` of bytes it sent (rate = ' +
    "bandwidth); `''` = none", metricName(true))
}, 'must be an rtsp:// URL or an object with a url')

const RouteSchema = entry({
  path: text(undefined, "public path prefix (`'/'` matches everything)", PATH),
  backends: list(text(undefined, 'a backend name', { hint: 'must be the name of a configured backend' }), [],
    'names of the backends that serve it (empty = all)', { hint: 'must be a list of backend names' }),
  backendPath: Type.Optional(text(undefined, 'path prefix on the backend that replaces `path`',
    { ...PATH, docDefault: '`path`' })),
  live: Type.Optional(oneOf([true, false, 'auto'], undefined, '`true`: the path is a live fan-out path (one backend ' +
    'session per path per relay, shared by its viewers); `auto`: decided per path from the backend\'s SDP / PLAY ' +
    'reply; see `live-fanout.md`', { docDefault: '`false`' }))
}, 'must be an object')

const BasicUserSchema = entry({
  user: text(undefined, 'a user name, without `:`',
    { pattern: /^[^:]+$/, hint: "must be a non-empty name without ':'" }),
  hash: text(undefined, 'its password hash, from `tunnelgate hash-password`',
    {
      pattern: /^scrypt\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/,
      hint: "must be a scrypt hash made by 'tunnelgate hash-password'"
    })
}, 'must be an object { user, hash }')

const cidrList = (description: string) => list(
  text(undefined, 'a CIDR block', { hint: 'must be a CIDR block like 10.0.0.0/8' }), [], description,
  { hint: 'must be a list of CIDR blocks like 10.0.0.0/8' })

export const ConfigSchema = section({
  role: oneOf(['all-in-one', 'portal', 'relay'], 'all-in-one', '`all-in-one` (portal + relay, plus the embedded ' +
    'origin when no backend is set), `portal` (forwards legs to relay nodes) or `relay` (a relay node)',
  { cli: ['subcommand'] }),
  host: text('0.0.0.0', 'listen address',
    { minLength: 1, hint: 'must be a non-empty string', cli: ['--host'], env: ['TUNNELGATE_HOST'] }),
  port: int(80, PORT, 'listen port (tunnel legs, WebSocket, plain RTSP, `/watch`, HTTP routes, `/healthz`, ' +
    '`/readyz`; no metrics or status: those are on `ops.port`)', { cli: ['--port'], env: ['PORT', 'TUNNELGATE_PORT'] }),
  workers: Type.Union([Type.Literal('auto'), int(undefined, { min: 0, max: 256 }, 'a number of workers')], {
    default: 'auto',
    description: 'local relay worker processes: `auto` = one per CPU core (`os.availableParallelism()`) in the ' +
      'all-in-one (a relay node stays in one process unless given a number); 0 = the relay runs inside the portal ' +
      'process (one core for media, but the fastest to take a burst of new tunnels: with workers the portal hands ' +
      "each GET's socket to its worker over Node's IPC channel one at a time, see `docs/scaling.md`, `t_node`)",
    cli: ['--workers'],
    env: ['TUNNELGATE_WORKERS']
  }),
  logLevel: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info', 'pino log level',
    { cli: ['--log-level'], env: ['TUNNELGATE_LOG_LEVEL'] }),
  limits: section({
    httpHeadBytes: int(8192, { min: 256 }, 'largest HTTP request head'),
    httpHeaders: int(64, { min: 0 }, 'most HTTP header lines'),
    headerTimeoutMs: int(10_000, { min: 0 }, 'time for a new connection to send its whole request head (slowloris)'),
    rtspHeadBytes: int(16_384, { min: 0 }, 'largest RTSP message head (both directions)'),
    rtspHeaders: int(64, { min: 0 }, 'most RTSP header lines'),
    rtspBodyBytes: int(1024 * 1024, { min: 0 }, 'largest RTSP body (SDP)'),
    clientOutputBytes: int(8 * 1024 * 1024, { min: 4096 }, 'bytes queued towards one client connection (proxied ' +
      "replies and frames, the gateway's own answers, live fan-out, WebSocket pongs) before it is closed"),
    clientOutputBytesTotal: int(512 * 1024 * 1024, { min: 0 }, "bytes queued past their sockets' high-water marks " +
      'towards all clients of one process; a client that already has bytes unread may not push the sum over it (0 = ' +
      'no bound)'),
    backendOutputBytes: int(1024 * 1024, { min: 4096 }, 'bytes queued towards one backend connection before its ' +
      'tunnel is closed (the client is paused at the high-water mark long before)'),
    sessionsPerTunnel: int(16, { min: 1 }, 'distinct `Session` ids a backend may grant on one tunnel (each costs a ' +
      'TEARDOWN at close)'),
    pendingInputBytes: int(256 * 1024, { min: 0 }, 'client bytes held while the backend connection opens, or early ' +
      'POST body before its GET'),
    maxTunnels: int(0, { min: 0 }, 'sessions (tunnels, WebSockets, plain RTSP) at once: for the whole gateway with ' +
      'local workers, per portal and per relay node in a cluster (0 = unlimited; `security.md`)'),
    maxUnpairedLegs: int(10_000, { min: 0 }, 'GETs without POST and POSTs without GET at once (same scope as ' +
      '`maxTunnels`)'),
    minCookieLength: int(8, { min: 1 }, 'shortest accepted `x-sessioncookie`'),
    maxCookieLength: int(128, { min: 0 }, 'longest accepted `x-sessioncookie` (not below `minCookieLength`)'),
    maxTunnelsPerIp: int(500, { min: 0 }, 'tunnels open at once from one client address (0 = unlimited)'),
    maxUnpairedLegsPerIp: int(100, { min: 0 }, 'GETs without POST and POSTs without GET at once from one client ' +
      'address (0 = unlimited)'),
    clientFrameBytes: int(65_539, { min: 4 }, 'largest `$` frame (header + payload) a client may send; larger ones ' +
      'are dropped (65539 = protocol maximum, no cap)'),
    rtspRequestsPerSecond: int(20, { min: 0 }, 'RTSP requests per second per tunnel (0 = unlimited); over → RTSP 503'),
    rtspRequestBurst: int(200, { min: 0 }, 'RTSP requests a tunnel may send in a burst above the rate'),
    clientStallMs: int(30_000, { min: 0 }, 'a client whose output stays blocked this long (backend paused for it) ' +
      'is closed (0 = never)'),
    dropFramesAboveBytes: int(0, { min: 0 }, 'with more than this queued towards a client, whole `$` frames are ' +
      'dropped and counted (0 = never; close at `clientOutputBytes`)'),
    wsMessageBytes: int(256 * 1024, { min: 1024 }, 'largest WebSocket message (fragments together) from a client; ' +
      'over it → close 1009 (`TG_ERR_WS_TOO_LARGE`)')
  }),
  tunnel: section({
    pairingTimeoutMs: int(30_000, { min: 1 }, 'GET without POST / POST without GET dropped after this'),
    shutdownGraceMs: int(5_000, { min: 0 }, 'on SIGTERM/SIGINT: stop accepting, let open tunnels finish this long, ' +
      'then TEARDOWN the rest and exit 0'),
    idleTimeoutMs: int(180_000, { min: 1 }, 'no byte either way → tunnel closed (keep ≥ 2 × the RTSP session timeout)'),
    requireSameClientIp: bool(false, "refuse (HTTP 403) a POST from another address than its cookie's GET; off " +
      'because proxy farms split legs'),
    getUpstream: oneOf(['forward', 'drop'], 'forward', '`$` frames a client sends on its GET connection ' +
      '(live555/VLC RTCP): `forward` or `drop`'),
    orphanPostMs: int(5_000, { min: 1 }, 'on a relay node: a POST whose cookie no relay knows (the portal asked ' +
      'them, see `scaling.md`) is held this long for a late GET, then closed (`TG_ERR_TUN_ORPHAN_POST`)')
  }),
  backend: section({
    connectTimeoutMs: int(5_000, { min: 0 }, 'backend TCP connect timeout'),
    readBufferBytes: Type.Union([Type.Literal(0), int(undefined, { min: 1024, max: 1 << 20 }, 'a buffer size')], {
      default: 16_384,
      description: "each proxied session's own buffer for reads from its backend, and at a portal each forwarded " +
        "GET, WebSocket or plain-RTSP leg's buffer for reads from its relay node (1024 – 1048576; 0 = a fresh " +
        "buffer per read, Node's default). `$` frames go to the client straight from it; while such a write waits " +
        "in the client's queue the session reads nothing more from its backend (see `architecture.md`, \"Read " +
        'buffer"). ' +
        'Costs its size in virtual memory per session, touched (resident) only as far as reads fill it. Not used ' +
        'with `limits.dropFramesAboveBytes` (a lagging client must not pause the backend there)'
    }),
    replyTimeoutMs: int(15_000, { min: 0 }, 'a request unanswered this long gets RTSP 504'),
    failureCooldownMs: int(5_000, { min: 0 }, 'a backend that refused a connection is skipped this long'),
    teardownGraceMs: int(1_000, { min: 0 }, "wait for the final TEARDOWN's reply before FIN"),
    probeIntervalMs: int(2_000, { min: 0 }, 'RTSP `OPTIONS *` health probe of each backend (0 = off; connection ' +
      'failures still count)'),
    probeTimeoutMs: int(2_000, { min: 1 }, 'a probe without an RTSP reply within this fails'),
    probeRise: int(2, { min: 1, max: 100 }, 'passing probes in a row before a failed backend is chosen again')
  }),
  backends: list(BackendSchema, [], 'RTSP media servers: `rtsp://host:port` strings or objects; empty = the ' +
    'embedded origin', { hint: 'must be a list', cli: ['--backend'], env: ['TUNNELGATE_BACKENDS'] }),
  routes: list(RouteSchema, [{ path: '/', backends: [] }], 'public path prefix → backends, optionally with a ' +
    'backend prefix; a path no route maps gets RTSP 404', { minItems: 1, hint: 'must be a non-empty list' }),
  auth: section({
    basic: list(BasicUserSchema, [], 'users allowed to open a tunnel (HTTP Basic on the GET); empty = no gateway ' +
      'auth. When on, plain RTSP on the port is refused (403).', { hint: 'must be a list of { user, hash }' }),
    realm: text('tunnelgate', 'realm in the 401 challenge',
      { pattern: /^[^"\r\n]*$/, hint: 'must be a string without quotes or line breaks' }),
    tokenSecrets: list(text(undefined, 'a secret', SECRET), [], 'shared secrets for path-bound, expiring tokens on ' +
      'the tunnel GET (tunnelgate HMAC `tg1.…` or HS256 JWT; see `security.md`); empty = no tokens',
    { hint: 'must be a list of secrets' }),
    tokenQueryParam: text('token', 'query parameter of the GET URL that may carry the token (besides ' +
      '`Authorization: Bearer`)',
    { pattern: /^[A-Za-z0-9_.-]{1,64}$/, hint: 'must be 1-64 characters of A-Z a-z 0-9 _ . -' }),
    maxFailuresPerAddress: int(5, { min: 0, max: 1_000_000 }, 'failed Basic sign-ins from one client address (IPv6: ' +
      'its /64) before its attempts get HTTP 429 + `Retry-After` for a while, with no password checked (0 = never); ' +
      '`security.md`'),
    maxFailuresPerUser: int(20, { min: 0, max: 1_000_000 }, 'failed Basic sign-ins as one user before attempts for ' +
      'it get 429, except from addresses that signed in as it before (0 = never; the trade-off is in `security.md`)'),
    failureWindowMs: int(60_000, { min: 1, max: 86_400_000 }, 'failures are counted until none came (and no refusal ' +
      'period ran) for this long'),
    backoffMs: int(1_000, { min: 1, max: 86_400_000 }, 'first refusal period, doubled by each further failure'),
    backoffMaxMs: int(60_000, { min: 1, max: 86_400_000 }, 'longest refusal period (not below `backoffMs`)'),
    backoffEntries: int(10_000, { min: 1, max: 10_000_000 }, 'client addresses (and, apart, unknown user names) ' +
      'remembered by the back-off; least recently seen forgotten first'),
    // The threadpool also serves fs, dns.lookup and zlib; more verifications than it has threads only queue there.
    maxVerifications: int(2, { min: 1, max: 1024 }, "password checks (scrypt, on libuv's threadpool) running at " +
      'once; more get HTTP 503 + `Retry-After: 1`. The threadpool has 4 threads (`UV_THREADPOOL_SIZE`), shared with ' +
      'fs, dns.lookup and zlib'),
    cacheEntries: int(1_024, { min: 0, max: 1_000_000 }, 'verified credentials remembered (SHA-256 of the ' +
      "`Authorization` value), so a player's repeated GETs cost no scrypt; 0 = none")
  }),
  access: section({
    allow: cidrList('client addresses (CIDR) allowed to connect; empty = all not denied'),
    deny: cidrList('client addresses (CIDR) refused at once; wins over `allow`')
  }),
  cluster: section({
    relays: list(text(undefined, 'a relay node', { pattern: RELAY_SPEC }), [], 'relay nodes for a portal: ' +
      '`host:port` or `dns:NAME:PORT` (re-resolved)',
    { hint: RELAY_LIST_HINT, cli: ['--relay', '--relays'], env: ['TUNNELGATE_RELAYS'] }),
    probeIntervalMs: int(2_000, { min: 1 }, 'portal → relay `/healthz` probe interval'),
    dnsIntervalMs: int(5_000, { min: 1 }, '`dns:` relay re-resolution interval'),
    connectTimeoutMs: int(3_000, { min: 1 }, 'portal → relay connect timeout (then the next relay in HRW order)'),
    peers: list(text(undefined, 'a relay node', { pattern: RELAY_SPEC }), [], 'relays whose `/metrics` (on their ' +
      'tunnel port, signed with `cluster.secret`) this relay reads to sum `tunnelgate_backend_sessions` / ' +
      '`tunnelgate_backend_bandwidth_bits` across the cluster (`host:port` or `dns:NAME:PORT`; itself may be listed)',
    { hint: RELAY_LIST_HINT, cli: ['--peer'], env: ['TUNNELGATE_PEERS'] }),
    drainTimeoutMs: int(60_000, { min: 0 }, 'a relay node on SIGTERM drains (no new tunnels, existing ones go on) ' +
      'for at most this, then stops'),
    postAskRelays: int(3, { min: 0, max: 64 }, "portal: relays asked (GET's relay first, then HRW order) whether " +
      "they hold a POST's GET before the POST is left with its owner (0 = POSTs follow the hash only); a POST whose " +
      "GET went through this same portal goes straight to the GET's relay, unasked; see `scaling.md`"),
    secret: text('', `shared secret (${CLUSTER_SECRET_MIN}+ characters, the same on every portal and relay ` +
      'node; never logged): portals sign every leg they forward and the cluster reads (`/status/summary`, ' +
      "`/metrics` on a relay node's tunnel port), relay nodes refuse anything without a valid proof " +
      '(`security.md`, `scaling.md`); required for `role: portal`, `role: relay` and with `cluster.peers`',
    {
      pattern: new RegExp(`^(|[\\s\\S]{${CLUSTER_SECRET_MIN},})$`),
      hint: SECRET.hint,
      env: ['TUNNELGATE_CLUSTER_SECRET']
    }),
    acceptSecrets: list(text(undefined, 'a secret', SECRET), [], 'more secrets a node accepts proofs signed with, ' +
      'but never signs with: rotation without downtime (`scaling.md`)',
    { hint: 'must be a list of secrets', env: ['TUNNELGATE_CLUSTER_ACCEPT_SECRETS'] }),
    maxClockSkewMs: int(30_000, { min: 1000, max: 3_600_000 }, "a proof older or newer than this (the nodes' clock " +
      'difference included) is refused'),
    maxNonces: int(200_000, { min: 1000, max: 10_000_000 }, 'proof nonces a relay node remembers (each for 2 × ' +
      '`maxClockSkewMs`) to refuse replays; when full, new legs are refused')
  }),
  balancer: section({
    scrapeIntervalMs: int(1_000, { min: 100 }, 'load scrape interval (peers, metrics URLs, PromQL); also the portal ' +
      '→ worker load push'),
    scrapeTimeoutMs: int(2_000, { min: 1 }, 'timeout of one scrape'),
    staleIntervals: int(3, { min: 1, max: 1000 }, 'figures older than this many intervals are ignored (own counts ' +
      'only)'),
    promql: section({
      url: text('', "Prometheus server whose HTTP API (`/api/v1/query`) gives the load; `''` = off",
        { hint: HTTP_URL_HINT }),
      query: text('sum by (backend) (tunnelgate_backend_sessions)', 'instant query: sessions per backend (vector ' +
        'with a `backend` label)', { hint: 'must be a PromQL expression string' }),
      bandwidthQuery: text('', 'instant query: bits/s per backend, for `maxBandwidth`; `\'\'` = none',
        { hint: 'must be a PromQL expression string' })
    })
  }),
  websocket: section({
    enabled: bool(true, 'accept RTSP over WebSocket (subprotocols `binary`, `rtsp.onvif.org`), see ' +
      '`docs/websocket.md`'),
    path: text('/rtsp-over-websocket', 'request path of the WebSocket upgrade',
      { pattern: /^\/[A-Za-z0-9_.~\-/]*$/, hint: "must be a path starting with '/' (A-Z a-z 0-9 _ . ~ - /)" })
  }),
  watch: section({
    enabled: bool(true, 'serve the browser player at `/watch/<stream path>` and the index at `/watch`'),
    streams: list(text(undefined, 'a stream path', { pattern: /^\/[^\s?#<>"']*$/ }), [], 'stream paths listed at ' +
      "`/watch` and on the status page (the embedded origin's streams are added)",
    { hint: "must be a list of stream paths starting with '/'" })
  }),
  tls: section({
    cert: text('', 'PEM certificate chain file; when both `cert` and `key` are set the front door also listens with ' +
      'TLS (tunnel legs, WebSocket, web surface)',
    { hint: TLS_FILE_HINT, cli: ['--tls-cert'], env: ['TUNNELGATE_TLS_CERT'] }),
    key: text('', 'PEM private key file', { hint: TLS_FILE_HINT, cli: ['--tls-key'], env: ['TUNNELGATE_TLS_KEY'] }),
    port: int(443, PORT, 'TLS listen port', { cli: ['--tls-port'], env: ['TUNNELGATE_TLS_PORT'] })
  }),
  ops: section({
    host: text('127.0.0.1', "the ops listener's address, in every role: `/metrics`, `/status`, the status page, " +
      '`/healthz`, `/readyz`, the admin API (`docs/operations.md`); a non-loopback address requires `ops.token`',
    { minLength: 1, hint: 'must be a non-empty address', cli: ['--ops-host'], env: ['TUNNELGATE_OPS_HOST'] }),
    port: int(9180, PORT, "the ops listener's port (0 = any free port; give each gateway on one machine its own)",
      { cli: ['--ops-port'], env: ['TUNNELGATE_OPS_PORT'] }),
    token: text('', 'token every ops request carries (`Authorization: Bearer …`, or the password of HTTP Basic); ' +
      `${OPS_TOKEN_MIN}+ characters; \`''\` = none, loopback only`, {
      pattern: new RegExp(`^(|\\S{${OPS_TOKEN_MIN},})$`),
      hint: `must be '' or ${OPS_TOKEN_MIN} characters or more, without spaces`,
      env: ['TUNNELGATE_OPS_TOKEN']
    })
  }),
  admin: section({
    enabled: bool(false, 'serve the admin API under `/admin` on the ops listener. `admin.host`, `admin.port`, ' +
      '`admin.token` (and `TUNNELGATE_ADMIN_TOKEN`) are refused with a message naming `ops.host`, `ops.port`, ' +
      '`ops.token` (`TUNNELGATE_OPS_TOKEN`)')
  }),
  accessLog: section({
    enabled: bool(true, 'one access line per finished tunnel'),
    file: text('', 'file to append to (rotated by size); `\'\'` = the process log on stdout (`event: "access"`)',
      { hint: "must be a file path ('' = stdout)" }),
    maxBytes: int(10 * 1024 * 1024, { min: 1024 }, 'rotate the file when it would grow past this size'),
    keep: int(5, { min: 0, max: 1000 }, 'rotated files kept (`file.1` newest; 0 = start the file over)')
  }),
  status: section({
    sampleIntervalMs: int(2_000, { min: 100, max: 3_600_000 }, 'status page sample interval (live updates, ' +
      'sparklines)'),
    historySamples: int(180, { min: 2, max: 100_000 }, 'samples kept in memory for the sparklines'),
    streams: int(10, { min: 1, max: 1000 }, 'busiest streams listed on the status page'),
    maxEventClients: int(100, { min: 0, max: 100_000 }, 'status pages with live updates (SSE) at once; more get 503 ' +
      'and poll')
  }),
  live: section({
    lingerMs: int(5_000, { min: 0 }, 'the backend session of a live path stays open this long after its last viewer ' +
      'left'),
    outageDeadlineMs: int(30_000, { min: 1 }, 'viewers of a live path whose backend session cannot be restored ' +
      'within this are closed'),
    reconnectMinMs: int(250, { min: 1 }, 'first delay before reconnecting a lost live backend session (doubles per ' +
      'failed attempt)'),
    reconnectMaxMs: int(5_000, { min: 0 }, 'longest delay between reconnect attempts (not below `reconnectMinMs`)'),
    stallTimeoutMs: int(5_000, { min: 1 }, 'a playing live backend session with no RTP for this long is lost'),
    gopCacheBytes: int(4 * 1024 * 1024, { min: 0 }, 'largest GOP cache per live path (0 = none: new viewers wait ' +
      'for the next keyframe)'),
    viewerQueueBytes: int(1024 * 1024, { min: 1024 }, 'bytes queued towards a live viewer above which its whole ' +
      'frames are dropped up to the next keyframe'),
    maxViewersPerPath: int(0, { min: 0 }, 'viewers of one live path on one relay (0 = unlimited); more get RTSP 453'),
    maxPaths: int(100, { min: 1 }, 'live paths open at once on one relay; more get RTSP 453'),
    metricsPaths: int(50, { min: 0 }, 'distinct `path` label values in the `tunnelgate_live_*` metrics; later paths ' +
      'count as `_other`'),
    detectCacheMs: int(60_000, { min: 0 }, '`live: auto` routes: how long a live/VOD verdict is remembered'),
    detectCacheEntries: int(1_000, { min: 0 }, '`live: auto` routes: most verdicts remembered')
  }),
  httpRoutes: HttpRoutesSchema,
  httpProxy: HttpProxySchema,
  origin: section({
    enabled: bool(true, 'start the embedded origin when no backend is configured', { cli: ['--no-origin'] }),
    host: text('127.0.0.1', 'where the embedded origin listens'),
    port: int(0, PORT, "the embedded origin's port (0 = any free port)"),
    mediaDir: Type.Optional(text(undefined, 'media directory of the embedded origin', {
      hint: 'must be a directory path',
      docDefault: "the repository's `media/`",
      cli: ['--media'],
      env: ['TUNNELGATE_MEDIA']
    }))
  })
})

type Declared = Static<typeof ConfigSchema>
/** An RTSP backend after validation: the URL normalised to rtsp://host:port, the name filled in. */
export type BackendConfig = Declared['backends'][number] & { name: string }
export type RouteConfig = Declared['routes'][number]
export type Config = Omit<Declared, 'backends' | 'httpRoutes'> & {
  backends: BackendConfig[]
  httpRoutes: HttpRouteConfig[]
}

/** The built-in defaults: every setting's `default` (docker/tunnelgate.example.yml spells them out). */
export const DEFAULTS: Config = Value.Create(ConfigSchema) as Config
