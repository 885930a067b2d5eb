/**
 * One error module: every failure tunnelgate reports has a stable code (TG_ERR_<AREA>_<WHAT>).
 * Codes are API: docs/errors.md lists each one, and a test keeps the two in sync.
 */
export const ERROR_CODES = {
  TG_ERR_HTTP_HEAD_TOO_LARGE: 'HTTP request head exceeds the configured limit',
  TG_ERR_HTTP_HEAD_MALFORMED: 'HTTP request head could not be parsed',
  TG_ERR_HTTP_HEAD_TIMEOUT: 'HTTP request head not complete within the header timeout',
  TG_ERR_TUN_NO_COOKIE: 'tunnel leg without an x-sessioncookie header',
  TG_ERR_TUN_BAD_COOKIE: 'x-sessioncookie value is empty, too short or too long',
  TG_ERR_TUN_DUPLICATE_GET: 'a second GET arrived for a cookie that already has a live GET',
  TG_ERR_TUN_PAIRING_TIMEOUT: 'a tunnel leg waited longer than the pairing window for its other half',
  TG_ERR_TUN_SAME_CONNECTION: 'GET and POST of one cookie on the same TCP connection',
  TG_ERR_TUN_IDLE: 'tunnel idle (no byte either way) longer than the idle timeout',
  TG_ERR_TUN_TOO_MANY: 'too many tunnels or unpaired legs',
  TG_ERR_TUN_BAD_CHUNKED: 'malformed chunked transfer coding on a POST leg',
  TG_ERR_TUN_OUTPUT_OVERFLOW: 'client did not read its GET leg fast enough (output cap reached)',
  TG_ERR_B64_GARBAGE: 'characters outside the base64 alphabet in a POST body',
  TG_ERR_RTSP_MALFORMED: 'unparseable RTSP message',
  TG_ERR_RTSP_TOO_LARGE: 'RTSP message head or body exceeds the configured limit',
  TG_ERR_RTSP_VERSION: 'RTSP version not supported',
  TG_ERR_RTSP_NO_ROUTE: 'no route maps the requested URL to a backend',
  TG_ERR_RTSP_TRANSPORT: 'no TCP-interleaved alternative in the Transport header',
  TG_ERR_RTSP_PROXY_REQUIRE: 'Proxy-Require names an option the gateway does not support',
  TG_ERR_RTSP_SESSION: 'Session id unknown on this tunnel',
  TG_ERR_RTSP_BAD_URL: 'a request URL whose authority or path is not a legal RTSP URL (bad port, host, bracket, ' +
    'scheme, .. above the root)',
  TG_ERR_RTSP_AMBIGUOUS: 'a request a backend could read another way (a header name hidden in other text, a ' +
    'singleton header twice)',
  TG_ERR_BACKEND_SLOW: 'a backend did not read what its client sent (limits.backendOutputBytes queued towards it)',
  TG_ERR_BACKEND_TOO_MANY_SESSIONS: 'a backend granted more Session ids on one connection than ' +
    'limits.sessionsPerTunnel',
  TG_ERR_INTERNAL: 'a fault inside the gateway while handling one session or connection; only that one was closed',
  TG_ERR_BACKEND_UNAVAILABLE: 'no backend could be connected',
  TG_ERR_BACKEND_TIMEOUT: 'backend did not answer in time',
  TG_ERR_BACKEND_PROTOCOL: 'backend sent bytes that are not RTSP',
  TG_ERR_BACKEND_CLOSED: 'backend closed the connection',
  TG_ERR_CFG_INVALID: 'invalid configuration',
  TG_ERR_CFG_RELOAD: 'config reload not possible (no config file, or a reload already running)',
  TG_ERR_OPS_AUTH: 'ops listener request without the ops token, or (no token) naming a non-loopback Host or from ' +
    'another site',
  TG_ERR_ADMIN_BAD_REQUEST: 'admin API request malformed (JSON, types, unknown fields, bad id)',
  TG_ERR_ADMIN_NOT_FOUND: 'admin API: no such tunnel, relay, backend or route',
  TG_ERR_ADMIN_INTERNAL: 'admin API request failed inside the gateway',
  TG_ERR_STATUS_TOO_MANY_CLIENTS: 'too many status pages connected for live updates',
  TG_ERR_ACCESS_LOG_WRITE: 'the access log file could not be written',
  TG_ERR_LISTEN: 'cannot listen on the configured address',
  TG_ERR_AUTH_REQUIRED: 'a tunnel GET without valid gateway credentials',
  TG_ERR_AUTH_TOKEN: 'a tunnel GET token that is malformed, badly signed or expired',
  TG_ERR_AUTH_FORBIDDEN: 'a valid token used for a stream path it is not bound to',
  TG_ERR_AUTH_BACKOFF: 'a sign-in attempt from an address or for a user under back-off after failed attempts',
  TG_ERR_AUTH_BUSY: 'too many password verifications in flight (auth.maxVerifications)',
  TG_ERR_ACCESS_DENIED: 'a client address refused by access.allow / access.deny',
  TG_ERR_TUN_IP_LIMIT: 'too many tunnels or unpaired legs from one client address',
  TG_ERR_TUN_CLIENT_MISMATCH: 'a POST from another client address than its GET (tunnel.requireSameClientIp)',
  TG_ERR_RTSP_RATE_LIMITED: 'a tunnel sent RTSP requests faster than limits.rtspRequestsPerSecond',
  TG_ERR_RTSP_FRAME_TOO_LARGE: 'a client $ frame larger than limits.clientFrameBytes',
  TG_ERR_WORKER_EXIT: 'a relay worker process exited and is being restarted',
  TG_ERR_RELAY_UNAVAILABLE: 'no relay could take the tunnel leg',
  TG_ERR_RELAY_UNTRUSTED: 'a leg or cluster read at a relay node without a valid portal proof (missing, malformed, ' +
    'wrong secret, stale, replayed or for another leg)',
  TG_ERR_HTTP_BAD_PATH: 'HTTP route request target refused (absolute-form, encoded slash, .. above the root, body on ' +
    'GET)',
  TG_ERR_HTTP_NO_ROUTE: 'no HTTP route maps the normalised path',
  TG_ERR_HTTP_METHOD: 'HTTP route request with a method other than GET or HEAD',
  TG_ERR_HTTP_BUSY: 'too many HTTP route requests in flight',
  TG_ERR_HTTP_UPSTREAM: 'HTTP route backend could not be reached (after retries)',
  TG_ERR_HTTP_UPSTREAM_TIMEOUT: 'HTTP route backend did not answer in time',
  TG_ERR_BALANCER_SCRAPE: 'a load scrape (peer /metrics, backend metrics URL or PromQL query) failed or returned bad ' +
    'data',
  TG_ERR_BACKEND_PROBE: 'a backend failed its RTSP OPTIONS health probe',
  TG_ERR_HTTP_BACKEND_PROBE: 'an HTTP route backend failed its HTTP GET health probe',
  TG_ERR_TUN_ORPHAN_POST: 'a POST whose GET is on no relay was dropped after tunnel.orphanPostMs',
  TG_ERR_WS_HANDSHAKE: 'a WebSocket upgrade request that is malformed or offers no supported subprotocol',
  TG_ERR_WS_PROTOCOL: 'a WebSocket frame that breaks RFC 6455 (unmasked, reserved bits, bad fragmentation or control ' +
    'frame)',
  TG_ERR_WS_TOO_LARGE: 'a WebSocket message larger than limits.wsMessageBytes',
  TG_ERR_TLS_CONFIG: 'the TLS certificate or key cannot be read or used',
  TG_ERR_TLS_HANDSHAKE: 'a client TLS handshake failed or timed out',
  TG_ERR_LIVE_UPSTREAM_LOST: 'the backend session of a live path was lost (closed, failed or stalled); reconnecting',
  TG_ERR_LIVE_UPSTREAM_REFUSED: 'a backend answered DESCRIBE, SETUP or PLAY of a live path with an error status',
  TG_ERR_LIVE_OUTAGE: 'a live path had no backend session for longer than live.outageDeadlineMs',
  TG_ERR_LIVE_SDP_CHANGED: 'a live path reconnected to a backend whose SDP has another media layout',
  TG_ERR_LIVE_VIEWER_SLOW: 'a live viewer fell behind by more than live.viewerQueueBytes (frames dropped to the next ' +
    'keyframe)',
  TG_ERR_LIVE_TOO_MANY: 'live.maxPaths or live.maxViewersPerPath reached',
  TG_ERR_LIVE_METHOD: 'a method a live viewer may not use (ANNOUNCE, RECORD, unknown)',
  TG_ERR_LIVE_TRACK: 'a live viewer SETUP for a track the live path does not have',
  TG_ERR_LIVE_STATE: 'a live viewer request not valid in its session state (PLAY before SETUP)'
} as const

export type ErrorCode = keyof typeof ERROR_CODES

const kBrand = Symbol.for('tunnelgate.error')

export class TunnelgateError extends Error {
  readonly code: ErrorCode
  readonly [kBrand] = true
  /** Extra context, enumerable so loggers print it. */
  readonly details: Record<string, unknown>

  constructor (code: ErrorCode, message?: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message ?? ERROR_CODES[code], cause === undefined ? undefined : { cause })
    this.name = 'TunnelgateError'
    this.code = code
    this.details = details
  }

  static is (value: unknown): value is TunnelgateError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kBrand] === true
  }

  toJSON (): Record<string, unknown> { return { code: this.code, message: this.message, ...this.details } }
}
