/**
 * One client RTSP session relayed to one backend TCP connection (reference §3).
 *
 * The client side is any byte duplex that yields RTSP units (a paired HTTP tunnel, a plain
 * RTSP/TCP connection, a WebSocket): this class never knows which. It owns the backend socket:
 * it chooses the backend on the first routed request, rewrites URLs both ways, filters Transport,
 * answers what the gateway must answer itself (400/404/454/461/502/503/504/505/551), keeps
 * replies in request order, forwards `$` frames untouched in both directions, propagates
 * backpressure, and on client loss sends the backend a TEARDOWN before closing.
 */
import net from 'node:net'
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import type { ErrorCode } from '../core/errors.js'
import { methodLabel, type GatewayMetrics } from '../core/metrics.js'
import type { BackendPool, BackendState } from '../backends/pool.js'
import { pathOfUrl, resolveRoute, type ResolvedRoute } from '../backends/routes.js'
import { RtspDemuxer, type RtspUnit } from '../tunnel/codec/demux.js'
import { leadingFrames, type InterleavedFrame } from '../tunnel/codec/interleaved.js'
import { getHeader, makeResponse, removeHeaderPrefix, serializeMessage, setHeader, type Header, type RtspRequest, type RtspResponse } from '../tunnel/codec/rtsp-message.js'
import { canonicalUri, urlBase } from '../tunnel/codec/rtsp-url.js'
import { ambiguity } from '../tunnel/codec/header-ambiguity.js'
import { printable } from '../tunnel/codec/head-grammar.js'
import { COOKIE_QUERY_PARAM } from '../tunnel/codec/http-head.js'
import { filterTcpTransports, parseSessionHeader } from '../tunnel/codec/transport.js'
import { maskSdpAddress } from '../tunnel/codec/sdp/rewrite.js'
import { rewriteRequestUrls, rewriteResponseUrls, UrlMapper } from '../tunnel/codec/url-rewrite.js'
import { pathAllowed } from '../tunnel/codec/access.js'
import { ReadGate } from './read-gate.js'
import { contained, reportFault, type EntryPoint, type FaultOwner } from '../core/containment.js'
import type { OutputLedger } from './socket-output.js'

/** What a session needs from its client connection(s). */
export interface ClientSide {
  /**
   * Write towards the client; false when past the high-water mark (wait for onDrain). An RTSP
   * message is always written whole in a call of its own (ProxySession and the live fan-out's
   * LiveViewer both do): the WebSocket side adjusts SDP responses there (codec/sdp-browser.ts).
   */
  write (buf: Buffer, done?: () => void): boolean
  /**
   * Optional: write `a` then `b` as if they were one buffer (`$` frames only, never a message),
   * e.g. corked into one writev; false as `write` would be for their concatenation. Without it,
   * the session concatenates them and calls `write` once.
   *
   * `done` (of either): called once the bytes have left the process, or were discarded (closed
   * client). The session passes it when the bytes sit in its backend read buffer
   * (`backend.readBufferBytes`), and reads nothing more into that buffer until it is called.
   */
  writeBoth? (a: Buffer, b: Buffer, done?: () => void): boolean
  /** Bytes queued towards the client and not yet sent. */
  readonly queued: number
  onDrain (cb: () => void): void
  /** Stop / restart reading client input (backpressure from the backend). */
  pauseInput (): void
  resumeInput (): void
  /** Close every client connection of this session. */
  close (): void
  /**
   * Who to tell when a write would pass the connection's output budget (socket-output.ts): the
   * write was dropped, and the session closes the client.
   */
  onOverflow? (handler: (reason: string) => void): void
  /**
   * Server-originated RTSP requests (OPTIONS/GET_PARAMETER keepalives, ANNOUNCE, ...): 'forward'
   * them to the client (default), or 'answer' them on the client's behalf (a WebSocket player
   * whose parser throws on requests).
   */
  readonly serverRequests?: 'forward' | 'answer'
}

export interface SessionInfo {
  transport: 'http-tunnel' | 'rtsp' | 'websocket'
  clientAddress: string
  userAgent: string
  /** Path of the HTTP GET (used to route `OPTIONS *` before any URL was seen). */
  entryPath: string
  /** When the client arrived (ms, performance.now() clock) for the setup-time histogram. */
  startedAt: number
  /** Stream path a token bound this session to: requests for other paths get RTSP 403. */
  allowedPath?: string
  /** Stable id for the admin API and the access log (never the cookie). */
  id?: string
  /** The gateway-authenticated user, when gateway auth is on. */
  user?: string
  /** Name of the relay (process) that holds the session. */
  relay?: string
}

/** What a relay's summary (status page, /metrics byte totals) counts of one open session. */
export interface SessionTally { path: string, backend: string | null, bytes: number }

/** What the admin API lists and the access log records for one session. */
export interface SessionSnapshot {
  id: string
  transport: SessionInfo['transport']
  client: string
  userAgent: string
  path: string
  backend: string | null
  relay: string
  user: string
  /** Epoch ms when the session opened. */
  startedAt: number
  ageMs: number
  bytesToClient: number
  bytesFromClient: number
  rtpPacketsToClient: number
  rtpPacketsFromClient: number
}

export interface SessionDeps {
  config: Config
  pool: BackendPool
  metrics: GatewayMetrics
  logger: Logger
  /** Live fan-out (src/live/): asked at the first routed request whether the path is live. */
  live?: LiveGate
  /** Process-wide output ledger for the client sides (limits.clientOutputBytesTotal). */
  output?: OutputLedger
}

/**
 * The live fan-out seam. At the first routed request (before any backend is dialled) the session
 * asks the gate; a non-null delegate then receives every later client unit and answers the client
 * itself (one shared backend session per live path). `release` hands the client back to ordinary
 * proxying (route `live: auto` that turned out to be VOD) with the units the delegate held.
 */
export interface LiveGate {
  attach (req: RtspRequest, ctx: LiveAttachContext): LiveDelegate | null
}

export interface LiveAttachContext {
  /** Where a fault in the delegate's own handlers goes (the session: it closes). */
  owner: FaultOwner
  route: ResolvedRoute
  /** The routed public path. */
  path: string
  client: ClientSide
  info: SessionInfo
  /** Bytes / $ frames written to the client (activity, counters). */
  sent (bytes: number, frames: number): void
  /** Close the client session (every connection of it). */
  close (reason: string, outcome: string): void
  release (units: RtspUnit[]): void
}

export interface LiveDelegate {
  handleClientUnit (unit: RtspUnit): void
  /** The client went away (GET closed): finish and call ctx.close. */
  clientGone (reason: string): void
  /** The session closed (any reason): let go of shared state. Idempotent. */
  closed (): void
}

interface ReplySlot {
  cseq: string | undefined
  method: string
  /** Filled when the reply is known (backend's, or the gateway's own). */
  out?: Buffer
  timer?: NodeJS.Timeout
}

const SUPPORTED_PROXY_OPTIONS = new Set<string>()
/** Label sets of the per-read byte counters (no object per read). */
const BACKEND_TO_CLIENT = Object.freeze({ direction: 'backend_to_client' })
const CLIENT_TO_BACKEND = Object.freeze({ direction: 'client_to_backend' })
/** No backend has failed yet (shared, never added to). */
const NONE_TRIED: ReadonlySet<string> = new Set<string>()

type SessionState = 'idle' | 'connecting' | 'connected' | 'closing' | 'closed'

export class ProxySession implements FaultOwner {
  readonly #deps: SessionDeps
  readonly #client: ClientSide
  readonly #info: SessionInfo
  readonly #log: Logger
  #state: SessionState = 'idle'
  #backend: BackendState | null = null
  #socket: net.Socket | null = null
  #route: ResolvedRoute | null = null
  #mapper: UrlMapper | null = null
  #publicAuthority: string | null = null
  #path = ''

  #demux: RtspDemuxer
  /** Serialized client units waiting for the backend connection. */
  #pendingOut: Array<Buffer | RtspRequest> = []
  #pendingBytes = 0
  #slots: ReplySlot[] = []
  #sessions = new Map<string, number | undefined>()
  #lastCseq = 0
  #controlUrl: string | null = null
  #firstBackendByte = false
  #closeReason: string = 'client-closed'
  #outcome: string = 'ok'
  #bytesIn = 0
  #bytesOut = 0
  #lastActivity = Date.now()
  #idleTimer: NodeJS.Timeout | null = null
  #connectTimer: NodeJS.Timeout | null = null
  #onClose: Array<(reason: string) => void> = []
  readonly #openedAt = Date.now()
  #framesToClient = 0
  #framesFromClient = 0
  /** Hardening (issue 5): request-rate token bucket, lag handling. */
  #rateTokens = -1
  #rateAt = 0
  #stallTimer: NodeJS.Timeout | null = null
  /** Fatal client input: close once the ordered replies are flushed (or at the deadline). */
  #closeWhenFlushed: { reason: string, outcome: string, timer: NodeJS.Timeout } | null = null
  #dropping = false
  /**
   * backend.readBufferBytes > 0: this session's own buffer the backend socket reads into (socket
   * `onread`), so a read allocates nothing: at hundreds of Mbit/s, a fresh ArrayBuffer per read
   * made V8 run a full GC every few hundred ms (external memory pressure), each a pause of ms.
   */
  #readBuffer: Buffer | null = null
  /** True while #backendData runs on bytes of #readBuffer: they stay valid only until it returns. */
  #borrowed = false
  /** Pauses the backend socket while the client is full or holds a write of #readBuffer bytes. */
  #gate: ReadGate | null = null

  /** Set by clientGone: the next backend bytes (the TEARDOWN reply) end the session. */
  #teardownFinish: (() => void) | null = null
  /** Live fan-out delegate (null: ordinary proxying). */
  #live: LiveDelegate | null = null

  constructor (deps: SessionDeps, client: ClientSide, info: SessionInfo) {
    this.#deps = deps
    this.#client = client
    this.#info = info
    this.#log = deps.logger
    const l = deps.config.limits
    this.#demux = new RtspDemuxer({ maxHeadBytes: l.rtspHeadBytes, maxHeaders: l.rtspHeaders, maxBodyBytes: l.rtspBodyBytes })
    client.onDrain(() => {
      this.#gate?.drained()
      this.#clearStall()
    })
    client.onOverflow?.(reason => {
      this.#error('TG_ERR_TUN_OUTPUT_OVERFLOW', reason)
      this.#log.info({ client: this.#info.clientAddress, reason }, 'client output budget exceeded: tunnel closed')
      this.close('client-too-slow', 'client_slow')
    })
    deps.metrics.tunnelsActive.inc()
    this.#armIdle()
  }

  get backendName (): string | null { return this.#backend?.config.name ?? null }
  get closed (): boolean { return this.#state === 'closed' }
  get bytes (): { clientToBackend: number, backendToClient: number } { return { clientToBackend: this.#bytesIn, backendToClient: this.#bytesOut } }
  /** What a relay summary counts of this session (relay-view.ts summarize), without building a snapshot. */
  get tally (): SessionTally { return { path: this.#route === null ? this.#info.entryPath : this.#path, backend: this.backendName, bytes: this.#bytesIn + this.#bytesOut } }
  onClose (cb: (reason: string) => void): void { this.#onClose.push(cb) }
  /** Close reason and outcome (final once closed). */
  get closeReason (): string { return this.#closeReason }
  get outcome (): string { return this.#outcome }

  snapshot (): SessionSnapshot {
    return {
      id: this.#info.id ?? '',
      transport: this.#info.transport,
      client: this.#info.clientAddress,
      userAgent: this.#info.userAgent,
      path: this.#route === null ? this.#info.entryPath : this.#path,
      backend: this.backendName,
      relay: this.#info.relay ?? '',
      user: this.#info.user ?? '',
      startedAt: this.#openedAt,
      ageMs: Date.now() - this.#openedAt,
      bytesToClient: this.#bytesOut,
      bytesFromClient: this.#bytesIn,
      rtpPacketsToClient: this.#framesToClient,
      rtpPacketsFromClient: this.#framesFromClient
    }
  }

  /** FaultOwner: what injected faults match (the client's User-Agent). */
  get faultTag (): string { return this.#info.userAgent }

  /** FaultOwner: a throw inside one of this session's handlers closes this session only. */
  fault (err: unknown, where: EntryPoint): void {
    reportFault(this.#deps.metrics, this.#log, where, err, { transport: this.#info.transport, client: this.#info.clientAddress, path: this.#route === null ? this.#info.entryPath : this.#path })
    try {
      for (const s of [...this.#slots]) if (s.out === undefined) this.#fill(s, makeResponse(500, s.cseq))
    } catch {}
    try {
      this.close('internal-error', 'internal_error')
    } catch {
      this.#state = 'closed'
      this.#socket?.destroy()
      try { this.#client.close() } catch {}
    }
  }

  /** `fn` run as a handler of this session (a throw inside it closes this session). */
  #guard<A extends unknown[], R> (where: EntryPoint, fn: (...args: A) => R, fallback?: R): (...args: A) => R {
    return contained(this, where, fn, fallback)
  }

  /** A timer whose callback is a handler of this session. */
  #timer (where: EntryPoint, ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(this.#guard(where, fn), ms)
    t.unref()
    return t
  }

  /** Any byte from the client counts as activity (RTCP, keepalives, base64 whitespace). */
  touch (): void { this.#lastActivity = Date.now() }

  /** A unit decoded from the client's input (POST body, GET upstream, plain RTSP). */
  handleClientUnit (unit: RtspUnit): void {
    if (this.#state === 'closing' || this.#state === 'closed' || this.#closeWhenFlushed !== null) return
    this.touch()
    if (this.#live !== null && unit.kind !== 'request') { this.#live.handleClientUnit(unit); return }
    switch (unit.kind) {
      case 'frame': this.#clientFrame(unit); return
      case 'response': this.#toBackend(serializeMessage(unit)); return
      case 'error':
        this.#error(unit.code, unit.reason)
        this.#reply(makeResponse(400, unit.cseq), undefined)
        if (unit.fatal) this.#closeAfterFlush('client-protocol-error', 'client_error')
        return
      case 'request': this.#clientRequest(unit)
    }
  }

  #clientFrame (frame: InterleavedFrame): void {
    if (frame.raw.length > this.#deps.config.limits.clientFrameBytes) {
      this.#error('TG_ERR_RTSP_FRAME_TOO_LARGE', `client $ frame of ${frame.raw.length} bytes dropped`)
      this.#deps.metrics.limitHitsTotal.inc({ limit: 'limits.clientFrameBytes' })
      return
    }
    this.#framesFromClient++
    this.#toBackend(frame.raw)
  }

  #clientRequest (req: RtspRequest & { raw: Buffer }): void {
    const cseq = getHeader(req, 'CSeq')
    // Plain RTSP has no HTTP head: its User-Agent comes with the first request.
    if (this.#info.userAgent === '') this.#info.userAgent = own((getHeader(req, 'User-Agent') ?? '').slice(0, 200))
    this.#deps.metrics.rtspRequestsTotal.inc({ method: methodLabel(req.method) })
    if (cseq !== undefined && /^\d+$/.test(cseq)) this.#lastCseq = Math.max(this.#lastCseq, Number(cseq))
    const slot: ReplySlot = { cseq, method: req.method }
    this.#slots.push(slot)
    const answer = (status: number, code: ErrorCode, reason: string, extra: Header[] = []): void => {
      this.#error(code, reason)
      const session = getHeader(req, 'Session')
      if (session !== undefined) extra.push(['Session', session])
      this.#fill(slot, makeResponse(status, cseq, extra))
    }
    if (!this.#rateOk()) {
      this.#deps.metrics.limitHitsTotal.inc({ limit: 'limits.rtspRequestsPerSecond' })
      return answer(503, 'TG_ERR_RTSP_RATE_LIMITED', `more than ${this.#deps.config.limits.rtspRequestsPerSecond} requests/s`, [['Retry-After', '1']])
    }
    if (req.version !== 'RTSP/1.0' && this.#live === null) {
      if (req.version.startsWith('RTSP/')) return answer(505, 'TG_ERR_RTSP_VERSION', `version ${req.version}`)
      // An HTTP request inside the tunnel (e.g. a POST leg on the GET's own connection).
      this.#error('TG_ERR_TUN_SAME_CONNECTION', `${req.method} ${req.version} inside an RTSP stream`)
      this.close('http-inside-rtsp', 'client_error')
      return
    }
    const proxyRequire = getHeader(req, 'Proxy-Require')
    if (proxyRequire !== undefined) {
      const unsupported = proxyRequire.split(',').map(s => s.trim()).filter(s => s !== '' && !SUPPORTED_PROXY_OPTIONS.has(s))
      if (unsupported.length > 0) return answer(551, 'TG_ERR_RTSP_PROXY_REQUIRE', `Proxy-Require ${proxyRequire}`, [['Unsupported', unsupported.join(', ')]])
    }
    // Proxy-* headers are addressed to the gateway (the proxy), never to the backend.
    removeHeaderPrefix(req, 'proxy-')
    if (req.uri !== '*') {
      const uri = canonicalUri(req.uri, [this.#deps.config.auth.tokenQueryParam, COOKIE_QUERY_PARAM])
      if (!uri.ok) return answer(400, 'TG_ERR_RTSP_BAD_URL', `'${printable(req.uri)}': ${uri.reason}`)
      req.uri = uri.uri
    }
    const ambiguous = ambiguity(req.method, req.uri, req.headers)
    if (ambiguous !== null) return answer(400, 'TG_ERR_RTSP_AMBIGUOUS', ambiguous)
    if (this.#live !== null) { this.#slots.pop(); this.#live.handleClientUnit(req); return }
    // Route by the request URL (OPTIONS * by the GET path).
    const path = req.uri === '*' ? pathOfUrl(this.#info.entryPath) : pathOfUrl(req.uri)
    const route = path === null ? null : resolveRoute(this.#deps.config.routes, path)
    const allowed = this.#info.allowedPath
    if (allowed !== undefined && req.uri !== '*' && (path === null || !pathAllowed(allowed, path))) {
      return answer(403, 'TG_ERR_AUTH_FORBIDDEN', `'${req.uri.slice(0, 200)}' is outside the token's path '${allowed}'`)
    }
    if (route === null || (this.#route !== null && route.route !== this.#route.route)) {
      if (req.uri === '*' && req.method === 'OPTIONS' && this.#backend === null) {
        return this.#fill(slot, makeResponse(200, cseq, [['Public', 'OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER']]))
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
    if (session !== undefined && !this.#sessions.has(parseSessionHeader(session).id)) {
      return answer(454, 'TG_ERR_RTSP_SESSION', `unknown Session '${session.slice(0, 80)}'`)
    }
    if (this.#route === null && this.#state === 'idle' && this.#deps.live !== undefined && this.#tryLive(req, route, path ?? '')) return
    if (this.#route === null) { this.#route = route; this.#path = own(path ?? '') }
    if (this.#publicAuthority === null) {
      const base = urlBase(req.uri)
      if (base !== null) { this.#publicAuthority = own(base); this.#mapper = null }
    }
    if (req.method === 'TEARDOWN' && session !== undefined) this.#sessions.delete(parseSessionHeader(session).id)
    slot.timer = this.#timer('session-reply-timer', this.#deps.config.backend.replyTimeoutMs, () => {
      if (slot.out !== undefined) return
      answer(504, 'TG_ERR_BACKEND_TIMEOUT', `no reply to ${req.method} within ${this.#deps.config.backend.replyTimeoutMs} ms`)
    })
    if (this.#state === 'connected') { this.#writeBackend(this.#forBackend(req)); return }
    if (this.#state === 'idle') {
      this.#connect()
      if ((this.#state as SessionState) !== 'connecting') return
    }
    this.#queue(req)
  }

  /** Live fan-out seam: hand the client to a live delegate when the gate says the path is live. */
  #tryLive (req: RtspRequest & { raw: Buffer }, route: ResolvedRoute, path: string): boolean {
    const delegate = this.#deps.live!.attach(req, {
      owner: this,
      route,
      path,
      client: this.#client,
      info: this.#info,
      sent: (bytes, frames) => { this.#bytesOut += bytes; this.#framesToClient += frames; this.touch() },
      close: (reason, outcome) => this.close(reason, outcome),
      release: units => {
        this.#live = null
        for (const u of units) { if (this.#state === 'closed') return; this.handleClientUnit(u) }
      }
    })
    if (delegate === null) return false
    this.#slots.pop()
    this.#route = route
    this.#path = path
    this.#live = delegate
    delegate.handleClientUnit(req)
    return true
  }

  /** URL mapping between what the client uses and the chosen backend (built once both are known). */
  #getMapper (): UrlMapper | null {
    if (this.#mapper !== null) return this.#mapper
    if (this.#backend === null || this.#route === null) return null
    const publicBase = (this.#publicAuthority ?? 'rtsp://gateway') + this.#route.publicPrefix
    this.#mapper = new UrlMapper({ publicBase, backendBase: `rtsp://${authorityOf(this.#backend)}${this.#route.backendPrefix}` })
    return this.#mapper
  }

  /** Rewrite a client request for the backend and serialize it. */
  #forBackend (req: RtspRequest): Buffer {
    const mapper = this.#getMapper()
    if (mapper !== null && req.uri !== '*') rewriteRequestUrls(req, url => mapper.toBackend(absolute(url)))
    if (req.method === 'PLAY' || req.method === 'DESCRIBE' || (req.method === 'SETUP' && this.#controlUrl === null)) {
      this.#controlUrl = own(req.method === 'SETUP' ? req.uri.replace(/\/[^/]*$/, '') : req.uri)
    }
    return serializeMessage(req)
  }

  /** Raw client bytes (frames, responses) for the backend; dropped when no backend is open. */
  #toBackend (buf: Buffer): void {
    if (this.#state === 'connected') this.#writeBackend(buf)
    else if (this.#state === 'connecting') this.#queue(buf)
  }

  #queue (item: Buffer | RtspRequest): void {
    const size = Buffer.isBuffer(item) ? item.length : item.body.length + 512
    if (this.#pendingBytes + size > this.#deps.config.limits.pendingInputBytes) {
      this.#error('TG_ERR_RTSP_TOO_LARGE', 'client sent too much before the backend connection opened')
      this.close('pending-overflow', 'client_error')
      return
    }
    this.#pendingOut.push(item)
    this.#pendingBytes += size
  }

  #writeBackend (buf: Buffer): void {
    const socket = this.#socket!
    const limit = this.#deps.config.limits.backendOutputBytes
    if (socket.writableLength > 0 && socket.writableLength + buf.length > limit) {
      // The client is paused at the high-water mark; this is what still arrived past it.
      this.#error('TG_ERR_BACKEND_SLOW', `${socket.writableLength + buf.length} bytes would be queued towards the backend (limits.backendOutputBytes ${limit})`)
      this.#deps.metrics.limitHitsTotal.inc({ limit: 'limits.backendOutputBytes' })
      this.close('backend-too-slow', 'backend_error')
      return
    }
    this.#bytesIn += buf.length
    this.#deps.metrics.bytesTotal.inc(CLIENT_TO_BACKEND, buf.length)
    if (!socket.write(buf)) this.#client.pauseInput()
  }

  /** `tried`: backends that failed for this session (allocated on the first failure only: held per tunnel). */
  #connect (tried: ReadonlySet<string> = NONE_TRIED): void {
    const route = this.#route
    if (route === null) return
    const choice = this.#deps.pool.choose(route.route, tried)
    if (choice.backend === null) {
      this.#failPending(choice.reason === 'all-full' ? 453 : 503, choice.reason === 'all-full' ? 'all backends are full' : 'no backend reachable')
      return
    }
    const backend = this.#deps.pool.get(choice.backend)!
    this.#backend = backend
    this.#mapper = null
    this.#deps.pool.acquire(backend.config.name)
    this.#state = 'connecting'
    const readBufferBytes = this.#deps.config.backend.readBufferBytes
    let socket: net.Socket
    // Not with limits.dropFramesAboveBytes: a lagging client must not pause the backend there
    // (frames are dropped instead), so a queued write could not hold the buffer.
    if (readBufferBytes > 0 && this.#deps.config.limits.dropFramesAboveBytes === 0) {
      // Reused by a failover connection: the failed one never carried data.
      const buffer = this.#readBuffer ??= Buffer.allocUnsafeSlow(readBufferBytes)
      socket = net.connect({ host: backend.host, port: backend.port, noDelay: true, onread: { buffer, callback: this.#guard('session-backend-read', (n: number) => { this.#borrowedRead(n); return true }, false) } })
    } else {
      socket = net.connect({ host: backend.host, port: backend.port, noDelay: true })
      socket.on('data', this.#guard('session-backend-read', (chunk: Buffer) => { this.#backendRead(chunk) }))
    }
    this.#socket = socket
    this.#gate = new ReadGate(socket)
    socket.setKeepAlive(true, 30_000)
    this.#connectTimer = this.#timer('session-connect-timer', this.#deps.config.backend.connectTimeoutMs, () => { socket.destroy(new Error('connect timeout')) })
    socket.once('connect', this.#guard('session-backend-connect', () => {
      clearTimeout(this.#connectTimer!)
      this.#connectTimer = null // a held Timeout (and its closure) would outlive the setup
      if (this.#state !== 'connecting') return
      this.#state = 'connected'
      this.#deps.pool.markUp(backend.config.name)
      const pending = this.#pendingOut
      this.#pendingOut = []
      this.#pendingBytes = 0
      for (const item of pending) {
        if (this.#state !== 'connected') return
        this.#writeBackend(Buffer.isBuffer(item) ? item : this.#forBackend(item))
      }
    }))
    socket.on('drain', this.#guard('session-backend-drain', () => this.#client.resumeInput()))
    socket.on('error', this.#guard('session-backend-error', (err: Error) => {
      if (this.#state === 'connecting') {
        clearTimeout(this.#connectTimer!)
        this.#connectTimer = null
        this.#log.warn({ backend: backend.config.name, err: err.message }, 'backend connect failed')
        this.#deps.pool.release(backend.config.name)
        this.#deps.pool.markFailed(backend.config.name)
        this.#error('TG_ERR_BACKEND_UNAVAILABLE', `${backend.config.name}: ${err.message}`)
        this.#backend = null
        this.#socket = null
        this.#gate = null
        this.#state = 'idle'
        const failed = new Set(tried)
        failed.add(backend.config.name)
        // Try the next backend serving this route; 503 when none is left.
        this.#connect(failed)
        return
      }
      this.#log.debug({ err: err.message }, 'backend socket error')
    }))
    socket.on('close', this.#guard('session-backend-close', () => {
      if (this.#state === 'connected') {
        this.#error('TG_ERR_BACKEND_CLOSED', 'backend closed the connection')
        this.close('backend-closed', 'backend_closed')
      } else if (this.#state === 'closing') {
        this.close(this.#closeReason, this.#outcome)
      }
    }))
  }

  /** Answer every waiting request with `status` (503 gets Retry-After) and drop queued input. */
  #failPending (status: number, reason: string): void {
    this.#error('TG_ERR_BACKEND_UNAVAILABLE', reason)
    this.#pendingOut = []
    this.#pendingBytes = 0
    for (const s of this.#slots) {
      if (s.out === undefined) this.#fill(s, makeResponse(status, s.cseq, status === 503 || status === 453 ? [['Retry-After', '5']] : []))
    }
  }

  /** `n` bytes arrived in #readBuffer (socket `onread`): valid until this returns. */
  #borrowedRead (n: number): void {
    this.#borrowed = true
    try {
      this.#backendRead(this.#readBuffer!.subarray(0, n))
    } finally {
      this.#borrowed = false
    }
  }

  #backendRead (chunk: Buffer): void {
    if (this.#teardownFinish !== null) { this.#teardownFinish(); return }
    this.#backendData(chunk)
  }

  #backendData (chunk: Buffer): void {
    if (this.#backend !== null) this.#deps.pool.addBytes(this.#backend.config.name, chunk.length)
    if (!this.#firstBackendByte) {
      this.#firstBackendByte = true
      this.#deps.metrics.tunnelSetupSeconds.observe((performance.now() - this.#info.startedAt) / 1000)
    }
    this.touch()
    // A `$` frame held from the last read (large reads usually end mid-frame): complete it from the
    // head of this read alone, rather than have the demuxer copy the whole read behind it.
    let carried: Buffer | null = null
    const need = this.#demux.frameRemainder
    if (need > 0 && need < chunk.length) {
      carried = (this.#demux.push(chunk.subarray(0, need))[0] as InterleavedFrame).raw
      chunk = chunk.subarray(need)
    }
    // Fast path, no allocation per frame: with nothing held by the demuxer, the whole `$` frames
    // that start the read leave as one slice of it (with the completed frame before them: one
    // write, as when the demuxer returned them back to back); only what follows (a partial frame,
    // an RTSP message) goes through the demuxer. Same writes as the demuxer path below.
    if (this.#demux.buffered === 0) {
      const lead = leadingFrames(chunk)
      if (carried !== null) {
        this.#framesToClient += 1 + lead.frames
        if (lead.frames === 0) this.#toClient(carried, 1)
        else this.#toClientBoth(carried, lead.bytes === chunk.length ? chunk : chunk.subarray(0, lead.bytes), 1 + lead.frames)
      } else if (lead.frames > 0) {
        this.#framesToClient += lead.frames
        this.#toClient(lead.bytes === chunk.length ? chunk : chunk.subarray(0, lead.bytes), lead.frames)
      }
      if (lead.bytes === chunk.length) return
      chunk = chunk.subarray(lead.bytes)
    }
    const units = this.#demux.push(chunk)
    // Consecutive frames that sit back to back in one read go out in one write.
    let runStart = -1
    let runEnd = -1
    let runBuf: Buffer | null = null
    let runFrames = 0
    const flushRun = (): void => {
      if (runBuf !== null) this.#toClient(runBuf.byteOffset === runStart && runBuf.length === runEnd - runStart ? runBuf : Buffer.from(runBuf.buffer, runStart, runEnd - runStart), runFrames)
      runBuf = null
    }
    for (const u of units) {
      if (u.kind === 'frame') {
        this.#framesToClient++
        if (runBuf !== null && u.raw.buffer === (runBuf as Buffer).buffer && u.raw.byteOffset === runEnd) {
          runEnd += u.raw.length
          runFrames++
          continue
        }
        flushRun()
        runBuf = u.raw
        runFrames = 1
        runStart = u.raw.byteOffset
        runEnd = runStart + u.raw.length
        continue
      }
      flushRun()
      if (u.kind === 'response') this.#backendResponse(u)
      else if (u.kind === 'request') this.#backendRequest(u)
      else {
        this.#error('TG_ERR_BACKEND_PROTOCOL', u.reason)
        this.#log.warn({ backend: this.backendName, reason: u.reason }, 'backend sent bytes that are not RTSP')
        for (const s of this.#slots) if (s.out === undefined) this.#fill(s, makeResponse(502, s.cseq))
        this.close('backend-protocol-error', 'backend_error')
        return
      }
    }
    flushRun()
  }

  #backendResponse (res: RtspResponse): void {
    const cseq = getHeader(res, 'CSeq')
    const session = getHeader(res, 'Session')
    if (session !== undefined && res.status >= 200 && res.status < 300) {
      const parsed = parseSessionHeader(session)
      const max = this.#deps.config.limits.sessionsPerTunnel
      if (!this.#sessions.has(parsed.id) && this.#sessions.size >= max) {
        // Each id would cost a map entry and a TEARDOWN at close: a backend may not grow them without bound.
        this.#error('TG_ERR_BACKEND_TOO_MANY_SESSIONS', `backend granted more than ${max} Session ids on one tunnel`)
        this.#deps.metrics.limitHitsTotal.inc({ limit: 'limits.sessionsPerTunnel' })
        this.#log.warn({ backend: this.backendName, max }, 'backend granted too many Session ids: tunnel closed')
        for (const s of [...this.#slots]) if (s.out === undefined) this.#fill(s, makeResponse(502, s.cseq))
        this.close('backend-protocol-error', 'backend_error')
        return
      }
      this.#sessions.set(parsed.id, parsed.timeout)
    }
    const mapper = this.#getMapper()
    if (mapper !== null) rewriteResponseUrls(res, url => mapper.toPublic(url))
    if (this.#backend !== null && res.body.length > 0 && /^application\/sdp/i.test(getHeader(res, 'Content-Type') ?? '')) {
      res.body = maskSdpAddress(res.body, this.#backend.host)
    }
    const out = serializeMessage(res)
    const slot = this.#slots.find(s => s.out === undefined && s.cseq === cseq)
    if (slot === undefined) { this.#toClient(out); return }
    this.#fill(slot, out)
  }

  #backendRequest (req: RtspRequest): void {
    if (this.#client.serverRequests === 'answer') { this.#answerForClient(req); return }
    // Server-originated requests (OPTIONS, GET_PARAMETER, ANNOUNCE, REDIRECT) go to the client.
    const mapper = this.#getMapper()
    if (mapper !== null) {
      const map = (url: string): string => mapper.toPublic(url)
      req.uri = map(req.uri)
      const location = getHeader(req, 'Location')
      if (location !== undefined) setHeader(req, 'Location', map(location))
    }
    this.#toClient(serializeMessage(req))
  }

  /** Answer a backend's request for a client that must not see it: keepalives 200, others 501. */
  #answerForClient (req: RtspRequest): void {
    const ok = req.method === 'OPTIONS' || req.method === 'GET_PARAMETER' || req.method === 'SET_PARAMETER'
    const headers: Header[] = [['CSeq', getHeader(req, 'CSeq') ?? '0']]
    const session = getHeader(req, 'Session')
    if (session !== undefined) headers.push(['Session', session])
    const res: RtspResponse = { kind: 'response', version: 'RTSP/1.0', status: ok ? 200 : 501, reason: ok ? 'OK' : 'Not Implemented', headers, body: Buffer.alloc(0) }
    this.#log.debug({ method: req.method, status: res.status, transport: this.#info.transport }, 'server request answered for the client')
    if (this.#state === 'connected' && this.#socket !== null) this.#writeBackend(serializeMessage(res))
  }

  #fill (slot: ReplySlot, res: RtspResponse | Buffer): void {
    if (slot.timer !== undefined) clearTimeout(slot.timer)
    if (!Buffer.isBuffer(res)) this.#deps.metrics.gatewayResponsesTotal.inc({ status: String(res.status) })
    slot.out = Buffer.isBuffer(res) ? res : serializeMessage(res)
    // Flush in request order.
    while (this.#slots.length > 0 && this.#slots[0]!.out !== undefined) {
      const s = this.#slots.shift()!
      this.#toClient(s.out!)
    }
    if (this.#closeWhenFlushed !== null && this.#slots.length === 0) this.close(this.#closeWhenFlushed.reason, this.#closeWhenFlushed.outcome)
  }

  /**
   * Fatal client input: read nothing more, but let the replies to the requests before it (and
   * its 400) reach the client in order before closing; at most FLUSH_DEADLINE_MS.
   */
  #closeAfterFlush (reason: string, outcome: string): void {
    if (this.#slots.length === 0) { this.close(reason, outcome); return }
    if (this.#closeWhenFlushed !== null) return
    this.#client.pauseInput()
    const timer = this.#timer('session-flush-timer', Math.min(FLUSH_DEADLINE_MS, this.#deps.config.backend.replyTimeoutMs), () => { this.close(reason, outcome) })
    this.#closeWhenFlushed = { reason, outcome, timer }
  }

  #reply (res: RtspResponse, slot: ReplySlot | undefined): void {
    if (slot !== undefined) { this.#fill(slot, res); return }
    const s: ReplySlot = { cseq: getHeader(res, 'CSeq'), method: '' }
    this.#slots.push(s)
    this.#fill(s, res)
  }

  /** Token bucket: limits.rtspRequestsPerSecond, burst limits.rtspRequestBurst (0 = unlimited). */
  #rateOk (): boolean {
    const { rtspRequestsPerSecond: rate, rtspRequestBurst: burst } = this.#deps.config.limits
    if (rate <= 0) return true
    const now = performance.now()
    const cap = Math.max(1, burst)
    this.#rateTokens = this.#rateTokens < 0 ? cap : Math.min(cap, this.#rateTokens + (now - this.#rateAt) * rate / 1000)
    this.#rateAt = now
    if (this.#rateTokens < 1) return false
    this.#rateTokens -= 1
    return true
  }

  #clearStall (): void {
    if (this.#stallTimer !== null) { clearTimeout(this.#stallTimer); this.#stallTimer = null }
  }

  /**
   * `frames` > 0: `buf` is that many whole `$` frames. Past limits.dropFramesAboveBytes queued
   * they are dropped whole (never part of one, never an RTSP message); otherwise a full client
   * buffer pauses the backend socket, and a client that stays full for limits.clientStallMs is closed.
   */
  #toClient (buf: Buffer, frames = 0): void { this.#toClientBoth(buf, null, frames) }

  /** #toClient of `a` followed by `b` (whole `$` frames, `frames` of them in all) as one write. */
  #toClientBoth (a: Buffer, b: Buffer | null, frames: number): void {
    if ((this.#state as SessionState) === 'closed') return
    const dropAbove = this.#deps.config.limits.dropFramesAboveBytes
    if (frames > 0 && dropAbove > 0 && this.#client.queued > dropAbove) {
      this.#deps.metrics.framesDroppedTotal.inc(frames)
      if (!this.#dropping) {
        this.#dropping = true
        this.#deps.metrics.limitHitsTotal.inc({ limit: 'limits.dropFramesAboveBytes' })
        this.#log.info({ client: this.#info.clientAddress, queued: this.#client.queued }, 'client lagging: dropping whole frames')
      }
      return
    }
    if (frames > 0) this.#dropping = false
    const length = b === null ? a.length : a.length + b.length
    this.#bytesOut += length
    this.#deps.metrics.bytesTotal.inc(BACKEND_TO_CLIENT, length)
    // Frames may lie in #readBuffer (#borrowed): written in place, or copied when the client already
    // has bytes queued; #gate keeps the backend from reading into the buffer while it is held.
    const gate = this.#gate
    let ok: boolean
    if (b !== null && this.#client.writeBoth === undefined) {
      ok = this.#client.write(Buffer.concat([a, b], length))
    } else if (frames > 0 && this.#borrowed && gate !== null) {
      if (gate.inPlace(this.#client.queued)) {
        ok = b === null ? this.#client.write(a, gate.written) : this.#client.writeBoth!(a, b, gate.written)
        gate.afterWrite(this.#client.queued)
      } else {
        ok = b === null ? this.#client.write(Buffer.from(a)) : this.#client.writeBoth!(Buffer.from(a), Buffer.from(b))
      }
    } else {
      ok = b === null ? this.#client.write(a) : this.#client.writeBoth!(a, b)
    }
    if (this.#state === 'closed') return
    // A corked pair of writes (writeBoth) of 16 KiB or more says false even when the kernel took it
    // all at once: pause only for bytes really queued.
    if (!ok && dropAbove === 0 && this.#client.queued > 0) {
      this.#gate?.full()
      const stallMs = this.#deps.config.limits.clientStallMs
      if (stallMs > 0 && this.#stallTimer === null) {
        this.#stallTimer = this.#timer('session-stall-timer', stallMs, () => {
          this.#stallTimer = null
          if (this.#state === 'closed' || this.#client.queued === 0) return
          this.#error('TG_ERR_TUN_OUTPUT_OVERFLOW', `client read nothing for ${stallMs} ms (${this.#client.queued} bytes queued)`)
          this.#deps.metrics.limitHitsTotal.inc({ limit: 'limits.clientStallMs' })
          this.#log.info({ client: this.#info.clientAddress, queued: this.#client.queued, stallMs }, 'client stalled: tunnel closed')
          this.close('client-stalled', 'client_slow')
        })
      }
    }
  }

  #error (code: ErrorCode, reason: string): void {
    this.#deps.metrics.errorsTotal.inc({ code })
    this.#log.debug({ code, reason }, 'session error')
  }

  #armIdle (): void {
    const idle = this.#deps.config.tunnel.idleTimeoutMs
    const check = (): void => {
      if (this.#state === 'closed') return
      const quiet = Date.now() - this.#lastActivity
      if (quiet >= idle) {
        this.#error('TG_ERR_TUN_IDLE', `no byte either way for ${quiet} ms`)
        this.close('idle-timeout', 'idle')
        return
      }
      this.#idleTimer = this.#timer('session-idle-timer', idle - quiet, check)
    }
    this.#idleTimer = this.#timer('session-idle-timer', idle, check)
  }

  /**
   * The client is gone (GET closed): tell the backend with a TEARDOWN for each session it
   * granted, then close the backend connection (FIN) after its reply or the grace time.
   */
  clientGone (reason: string): void {
    if (this.#state === 'closed' || this.#state === 'closing') return
    if (this.#live !== null) { this.#live.clientGone(reason); return }
    this.#closeReason = reason
    const socket = this.#socket
    if (this.#state !== 'connected' || socket === null || this.#sessions.size === 0) { this.close(reason, 'ok'); return }
    this.#state = 'closing'
    this.#outcome = 'ok'
    const url = this.#controlUrl ?? '*'
    for (const id of this.#sessions.keys()) {
      const td: RtspRequest = { kind: 'request', method: 'TEARDOWN', uri: url, version: 'RTSP/1.0', headers: [['CSeq', String(++this.#lastCseq)], ['Session', id], ['User-Agent', 'tunnelgate']], body: Buffer.alloc(0) }
      socket.write(serializeMessage(td))
    }
    this.#sessions.clear()
    // The reply (or the grace time) ends the connection; further backend data is discarded.
    const finish = (): void => { this.close(reason, 'ok') }
    this.#teardownFinish = finish
    this.#gate!.release()
    this.#timer('session-teardown-timer', this.#deps.config.backend.teardownGraceMs, finish)
  }

  /** Close everything now. Idempotent. */
  close (reason: string, outcome: string): void {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    this.#closeReason = reason
    this.#outcome = outcome
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer)
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer)
    this.#clearStall()
    if (this.#closeWhenFlushed !== null) clearTimeout(this.#closeWhenFlushed.timer)
    this.#live?.closed()
    for (const s of this.#slots) if (s.timer !== undefined) clearTimeout(s.timer)
    this.#slots = []
    this.#pendingOut = []
    if (this.#socket !== null && !this.#socket.destroyed) {
      this.#socket.end()
      const s = this.#socket
      setTimeout(() => s.destroy(), 2000).unref()
    }
    if (this.#backend !== null) this.#deps.pool.release(this.#backend.config.name)
    this.#client.close()
    this.#deps.metrics.tunnelsActive.dec()
    this.#deps.metrics.tunnelsTotal.inc({ outcome, transport: this.#info.transport })
    this.#log.info({
      event: 'tunnel-closed',
      transport: this.#info.transport,
      client: this.#info.clientAddress,
      userAgent: this.#info.userAgent,
      path: this.#route === null ? this.#info.entryPath : this.#path,
      backend: this.backendName,
      durationMs: Date.now() - this.#openedAt,
      bytesClientToBackend: this.#bytesIn,
      bytesBackendToClient: this.#bytesOut,
      reason,
      outcome
    }, 'tunnel closed')
    for (const cb of this.#onClose) cb(reason)
  }
}

/** How long replies to earlier requests may take to flush before a fatally malformed one closes the tunnel. */
const FLUSH_DEADLINE_MS = 2000

/**
 * A copy of `s` that does not keep the string it was cut from alive (V8 keeps a substring as a
 * view of its parent: a field kept for the session's life would hold the whole request head).
 */
function own (s: string): string { return (' ' + s).slice(1) }

function authorityOf (b: BackendState): string {
  return `${b.host.includes(':') ? `[${b.host}]` : b.host}:${b.port}`
}

function absolute (url: string): string {
  return url.startsWith('/') ? `rtsp://gateway${url}` : url
}
