/**
 * One client RTSP session relayed to one backend TCP connection (reference §3).
 *
 * The client side is any byte duplex that yields RTSP units (a paired HTTP tunnel, a plain
 * RTSP/TCP connection, a WebSocket): the session never knows which. It composes the parts that
 * do the work: admission (admission.ts: forward a request, rewritten, or answer it in the
 * gateway's name), reply ordering (reply-order.ts), the backend link (backend-link.ts: connect and
 * failover, the read buffer, the write budget, TEARDOWN on client loss) and the client output
 * (client-output.ts: drops, stalls, backpressure). It owns what ties them together: the route,
 * the URL mapping both ways, the Session ids the backend granted, the idle timer, the live
 * fan-out hand-over, and closing (its metrics and log line).
 */
import type { Logger } from 'pino'
import type { ErrorCode } from '../core/errors.js'
import { methodLabel } from '../core/metrics.js'
import type { ResolvedRoute } from '../backends/routes.js'
import type { RtspUnit } from '../tunnel/codec/demux.js'
import type { InterleavedFrame } from '../tunnel/codec/interleaved.js'
import {
  getHeader, makeResponse, serializeMessage, setHeader, type Header, type RtspRequest, type RtspResponse
} from '../tunnel/codec/rtsp-message.js'
import { urlBase } from '../tunnel/codec/rtsp-url.js'
import { parseSessionHeader } from '../tunnel/codec/transport.js'
import { maskSdpAddress } from '../tunnel/codec/sdp/rewrite.js'
import { rewriteRequestUrls, rewriteResponseUrls, UrlMapper } from '../tunnel/codec/url-rewrite.js'
import { reportFault, type EntryPoint, type FaultOwner } from '../core/containment.js'
import type { BackendState } from '../backends/pool.js'
import { admit, RequestRate, type ClientRequest } from './admission.js'
import { ReplyOrder, type ReplySlot } from './reply-order.js'
import { BackendLink, type LinkOwner, type LinkState } from './backend-link.js'
import { ClientOutput } from './client-output.js'
import { containedTimers, type SessionTimers, type TimerHandle } from './timers.js'
import type { ClientSide } from './client-side.js'
import type { LiveDelegate } from './live-seam.js'
import type { SessionDeps, SessionInfo, SessionSnapshot, SessionTally } from './session-info.js'

export type { ClientSide } from './client-side.js'
export type { LiveAttachContext, LiveDelegate, LiveGate } from './live-seam.js'
export type { SessionDeps, SessionInfo, SessionSnapshot, SessionTally } from './session-info.js'

export class ProxySession implements FaultOwner, LinkOwner {
  readonly #deps: SessionDeps
  readonly #client: ClientSide
  readonly #info: SessionInfo
  readonly #log: Logger
  readonly #timers: SessionTimers
  readonly #replies: ReplyOrder
  readonly #out: ClientOutput
  readonly #link: BackendLink
  readonly #rate = new RequestRate()
  #route: ResolvedRoute | null = null
  #path = ''
  #mapper: UrlMapper | null = null
  /** The backend #mapper was built for (a failover builds another). */
  #mapperBackend: BackendState | null = null
  #publicAuthority: string | null = null
  /** Session ids the backend granted, with their timeouts. */
  readonly #granted = new Map<string, number | undefined>()
  #lastCseq = 0
  #controlUrl: string | null = null
  #closeReason: string = 'client-closed'
  #outcome: string = 'ok'
  #lastActivity = Date.now()
  #idleTimer: TimerHandle | null = null
  #onClose: Array<(reason: string) => void> = []
  readonly #openedAt = Date.now()
  #framesFromClient = 0
  /** Live fan-out delegate (null: ordinary proxying). */
  #live: LiveDelegate | null = null

  constructor (deps: SessionDeps, client: ClientSide, info: SessionInfo) {
    this.#deps = deps
    this.#client = client
    this.#info = info
    this.#log = deps.logger
    this.#timers = containedTimers(this)
    const limits = deps.config.limits
    const { metrics, logger } = deps
    const timers = this.#timers
    const { clientAddress, startedAt } = info
    const out = this.#out = new ClientOutput(client, { limits, metrics, logger, clientAddress, timers, owner: this })
    const { config, pool } = deps
    this.#link = new BackendLink({ config, pool, metrics, logger, timers, client, out, startedAt }, this)
    this.#out.source = this.#link
    this.#replies = new ReplyOrder({
      write: buf => this.#out.write(buf),
      answered: status => deps.metrics.gatewayResponsesTotal.inc({ status: String(status) }),
      close: (reason, outcome) => this.close(reason, outcome),
      pauseInput: () => client.pauseInput()
    }, this.#timers)
    client.onDrain(() => this.#out.drained())
    client.onOverflow?.(reason => {
      this.error('TG_ERR_TUN_OUTPUT_OVERFLOW', reason)
      this.#log.info({ client: this.#info.clientAddress, reason }, 'client output budget exceeded: tunnel closed')
      this.close('client-too-slow', 'client_slow')
    })
    deps.metrics.tunnelsActive.inc()
    this.#armIdle()
  }

  get backendName (): string | null { return this.#link.backend?.config.name ?? null }
  get closed (): boolean { return this.#link.state === 'closed' }
  get bytes (): { clientToBackend: number, backendToClient: number } {
    return { clientToBackend: this.#link.bytes, backendToClient: this.#out.bytes }
  }

  /** What a relay summary counts of this session (relay-view.ts summarize), without building a snapshot. */
  get tally (): SessionTally {
    return { path: this.#publicPath, backend: this.backendName, bytes: this.#link.bytes + this.#out.bytes }
  }

  onClose (cb: (reason: string) => void): void { this.#onClose.push(cb) }
  /** Close reason and outcome (final once closed). */
  get closeReason (): string { return this.#closeReason }
  get outcome (): string { return this.#outcome }

  get #publicPath (): string { return this.#route === null ? this.#info.entryPath : this.#path }

  snapshot (): SessionSnapshot {
    return {
      id: this.#info.id ?? '',
      transport: this.#info.transport,
      client: this.#info.clientAddress,
      userAgent: this.#info.userAgent,
      path: this.#publicPath,
      backend: this.backendName,
      relay: this.#info.relay ?? '',
      user: this.#info.user ?? '',
      startedAt: this.#openedAt,
      ageMs: Date.now() - this.#openedAt,
      bytesToClient: this.#out.bytes,
      bytesFromClient: this.#link.bytes,
      rtpPacketsToClient: this.#out.frames,
      rtpPacketsFromClient: this.#framesFromClient
    }
  }

  /** FaultOwner: what injected faults match (the client's User-Agent). */
  get faultTag (): string { return this.#info.userAgent }

  /** FaultOwner: a throw inside one of this session's handlers closes this session only. */
  fault (err: unknown, where: EntryPoint): void {
    const context = { transport: this.#info.transport, client: this.#info.clientAddress, path: this.#publicPath }
    reportFault(this.#deps.metrics, this.#log, where, err, context)
    try {
      this.#replies.answerAll(cseq => makeResponse(500, cseq))
    } catch {}
    try {
      this.close('internal-error', 'internal_error')
    } catch {
      this.#link.abort()
      try { this.#client.close() } catch {}
    }
  }

  /** Any byte from the client counts as activity (RTCP, keepalives, base64 whitespace). */
  touch (): void { this.#lastActivity = Date.now() }

  /** A unit decoded from the client's input (POST body, GET upstream, plain RTSP). */
  handleClientUnit (unit: RtspUnit): void {
    const state = this.#link.state
    if (state === 'closing' || state === 'closed' || this.#replies.flushing) return
    this.touch()
    if (this.#live !== null && unit.kind !== 'request') { this.#live.handleClientUnit(unit); return }
    switch (unit.kind) {
      case 'frame': this.#clientFrame(unit); return
      case 'response': this.#link.send(serializeMessage(unit)); return
      case 'error':
        this.error(unit.code, unit.reason)
        this.#replies.reply(makeResponse(400, unit.cseq))
        if (unit.fatal) this.#closeAfterFatalInput()
        return
      case 'request': this.#clientRequest(unit)
    }
  }

  /** Fatal client input: read nothing more; the replies before it flush, then the session closes. */
  #closeAfterFatalInput (): void {
    this.#replies.closeAfterFlush('client-protocol-error', 'client_error', this.#deps.config.backend.replyTimeoutMs)
  }

  #clientFrame (frame: InterleavedFrame): void {
    if (frame.raw.length > this.#deps.config.limits.clientFrameBytes) {
      this.error('TG_ERR_RTSP_FRAME_TOO_LARGE', `client $ frame of ${frame.raw.length} bytes dropped`)
      this.#deps.metrics.limitHitsTotal.inc({ limit: 'limits.clientFrameBytes' })
      return
    }
    this.#framesFromClient++
    this.#link.send(frame.raw)
  }

  #clientRequest (req: ClientRequest): void {
    const cseq = getHeader(req, 'CSeq')
    // Plain RTSP has no HTTP head: its User-Agent comes with the first request.
    if (this.#info.userAgent === '') this.#info.userAgent = own((getHeader(req, 'User-Agent') ?? '').slice(0, 200))
    this.#deps.metrics.rtspRequestsTotal.inc({ method: methodLabel(req.method) })
    if (cseq !== undefined && /^\d+$/.test(cseq)) this.#lastCseq = Math.max(this.#lastCseq, Number(cseq))
    const slot = this.#replies.open(cseq, req.method)
    const config = this.#deps.config
    const d = admit(req, {
      config,
      entryPath: this.#info.entryPath,
      allowedPath: this.#info.allowedPath,
      rateOk: this.#rate.take(config.limits, performance.now()),
      live: this.#live !== null,
      route: this.#route,
      backendChosen: this.#link.backend !== null,
      granted: this.#granted
    })
    switch (d.kind) {
      case 'answer':
        if (d.limit !== undefined) this.#deps.metrics.limitHitsTotal.inc({ limit: d.limit })
        if (d.code !== null) this.error(d.code, d.reason)
        this.#replies.fill(slot, makeResponse(d.status, cseq, d.headers))
        return
      case 'close':
        this.error(d.code, d.reason)
        this.close('http-inside-rtsp', 'client_error')
        return
      case 'delegate':
        this.#replies.withdrawLast()
        this.#live!.handleClientUnit(d.req)
        return
      case 'forward': this.#forward(slot, d.req, d.route, d.path)
    }
  }

  /** An admitted request: to the live fan-out, or to the backend (connecting first, or queued meanwhile). */
  #forward (slot: ReplySlot, req: ClientRequest, route: ResolvedRoute, path: string): void {
    const first = this.#route === null && this.#link.state === 'idle'
    if (first && this.#deps.live !== undefined && this.#tryLive(req, route, path)) return
    if (this.#route === null) { this.#route = route; this.#path = own(path) }
    if (this.#publicAuthority === null) {
      const base = urlBase(req.uri)
      if (base !== null) { this.#publicAuthority = own(base); this.#mapper = null }
    }
    const session = getHeader(req, 'Session')
    if (req.method === 'TEARDOWN' && session !== undefined) this.#granted.delete(parseSessionHeader(session).id)
    const ms = this.#deps.config.backend.replyTimeoutMs
    this.#replies.expect(slot, 'session-reply-timer', ms, () => {
      this.error('TG_ERR_BACKEND_TIMEOUT', `no reply to ${req.method} within ${ms} ms`)
      this.#replies.fill(slot, makeResponse(504, slot.cseq, session === undefined ? [] : [['Session', session]]))
    })
    const link = this.#link
    if (link.state === 'connected') { link.write(this.forBackend(req)); return }
    if (link.state === 'idle') {
      link.connect(this.#route)
      // No backend left: every waiting request was answered.
      if ((link.state as LinkState) !== 'connecting') return
    }
    link.queue(req)
  }

  /** Live fan-out seam: hand the client to a live delegate when the gate says the path is live. */
  #tryLive (req: ClientRequest, route: ResolvedRoute, path: string): boolean {
    const delegate = this.#deps.live!.attach(req, {
      owner: this,
      route,
      path,
      client: this.#client,
      info: this.#info,
      sent: (bytes, frames) => { this.#out.bytes += bytes; this.#out.frames += frames; this.touch() },
      close: (reason, outcome) => this.close(reason, outcome),
      release: units => {
        this.#live = null
        for (const u of units) { if (this.closed) return; this.handleClientUnit(u) }
      }
    })
    if (delegate === null) return false
    this.#replies.withdrawLast()
    this.#route = route
    this.#path = path
    this.#live = delegate
    delegate.handleClientUnit(req)
    return true
  }

  /** URL mapping between what the client uses and the chosen backend (built once both are known). */
  #getMapper (): UrlMapper | null {
    const backend = this.#link.backend
    if (this.#mapper !== null && this.#mapperBackend === backend) return this.#mapper
    if (backend === null || this.#route === null) return null
    const publicBase = (this.#publicAuthority ?? 'rtsp://gateway') + this.#route.publicPrefix
    const backendBase = `rtsp://${authorityOf(backend)}${this.#route.backendPrefix}`
    this.#mapper = new UrlMapper({ publicBase, backendBase })
    this.#mapperBackend = backend
    return this.#mapper
  }

  /** LinkOwner: rewrite a client request for the backend and serialize it. */
  forBackend (req: RtspRequest): Buffer {
    const mapper = this.#getMapper()
    if (mapper !== null && req.uri !== '*') rewriteRequestUrls(req, url => mapper.toBackend(absolute(url)))
    if (req.method === 'PLAY' || req.method === 'DESCRIBE' || (req.method === 'SETUP' && this.#controlUrl === null)) {
      this.#controlUrl = own(req.method === 'SETUP' ? req.uri.replace(/\/[^/]*$/, '') : req.uri)
    }
    return serializeMessage(req)
  }

  /** LinkOwner: an RTSP message from the backend. */
  backendMessage (msg: RtspResponse | RtspRequest): void {
    if (msg.kind === 'response') this.#backendResponse(msg)
    else this.#backendRequest(msg)
  }

  /** LinkOwner: the backend sent bytes that are not RTSP. */
  backendGarbage (reason: string): void {
    this.error('TG_ERR_BACKEND_PROTOCOL', reason)
    this.#log.warn({ backend: this.backendName, reason }, 'backend sent bytes that are not RTSP')
    this.#replies.answerAll(cseq => makeResponse(502, cseq))
    this.close('backend-protocol-error', 'backend_error')
  }

  /** LinkOwner: answer every waiting request with `status` (+ Retry-After) and drop queued input. */
  unavailable (status: 453 | 503, reason: string): void {
    this.error('TG_ERR_BACKEND_UNAVAILABLE', reason)
    this.#link.dropPending()
    this.#replies.answerAll(cseq => makeResponse(status, cseq, [['Retry-After', '5']]))
  }

  /** LinkOwner: the backend connection closed. */
  backendClosed (wasClosing: boolean): void {
    if (wasClosing) { this.close(this.#closeReason, this.#outcome); return }
    this.error('TG_ERR_BACKEND_CLOSED', 'backend closed the connection')
    this.close('backend-closed', 'backend_closed')
  }

  /** LinkOwner: the TEARDOWN reply came, or its grace time passed. */
  teardownDone (): void { this.close(this.#closeReason, 'ok') }

  #backendResponse (res: RtspResponse): void {
    const cseq = getHeader(res, 'CSeq')
    const session = getHeader(res, 'Session')
    if (session !== undefined && res.status >= 200 && res.status < 300) {
      const parsed = parseSessionHeader(session)
      const max = this.#deps.config.limits.sessionsPerTunnel
      if (!this.#granted.has(parsed.id) && this.#granted.size >= max) {
        // Each id would cost a map entry and a TEARDOWN at close: a backend may not grow them without bound.
        this.error('TG_ERR_BACKEND_TOO_MANY_SESSIONS', `backend granted more than ${max} Session ids on one tunnel`)
        this.#deps.metrics.limitHitsTotal.inc({ limit: 'limits.sessionsPerTunnel' })
        this.#log.warn({ backend: this.backendName, max }, 'backend granted too many Session ids: tunnel closed')
        this.#replies.answerAll(c => makeResponse(502, c))
        this.close('backend-protocol-error', 'backend_error')
        return
      }
      this.#granted.set(parsed.id, parsed.timeout)
    }
    const mapper = this.#getMapper()
    if (mapper !== null) rewriteResponseUrls(res, url => mapper.toPublic(url))
    const backend = this.#link.backend
    if (backend !== null && res.body.length > 0 && /^application\/sdp/i.test(getHeader(res, 'Content-Type') ?? '')) {
      res.body = maskSdpAddress(res.body, backend.host)
    }
    const out = serializeMessage(res)
    const slot = this.#replies.match(cseq)
    if (slot === undefined) { this.#out.write(out); return }
    this.#replies.fill(slot, out)
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
    this.#out.write(serializeMessage(req))
  }

  /** Answer a backend's request for a client that must not see it: keepalives 200, others 501. */
  #answerForClient (req: RtspRequest): void {
    const ok = req.method === 'OPTIONS' || req.method === 'GET_PARAMETER' || req.method === 'SET_PARAMETER'
    const headers: Header[] = [['CSeq', getHeader(req, 'CSeq') ?? '0']]
    const session = getHeader(req, 'Session')
    if (session !== undefined) headers.push(['Session', session])
    const res: RtspResponse = {
      kind: 'response',
      version: 'RTSP/1.0',
      status: ok ? 200 : 501,
      reason: ok ? 'OK' : 'Not Implemented',
      headers,
      body: Buffer.alloc(0)
    }
    this.#log.debug({ method: req.method, status: res.status, transport: this.#info.transport },
      'server request answered for the client')
    if (this.#link.state === 'connected') this.#link.write(serializeMessage(res))
  }

  /** Count a session error (the caller logs what it must). */
  error (code: ErrorCode, reason: string): void {
    this.#deps.metrics.errorsTotal.inc({ code })
    this.#log.debug({ code, reason }, 'session error')
  }

  #armIdle (): void {
    const idle = this.#deps.config.tunnel.idleTimeoutMs
    const check = (): void => {
      if (this.closed) return
      const quiet = Date.now() - this.#lastActivity
      if (quiet >= idle) {
        this.error('TG_ERR_TUN_IDLE', `no byte either way for ${quiet} ms`)
        this.close('idle-timeout', 'idle')
        return
      }
      this.#idleTimer = this.#timers.set('session-idle-timer', idle - quiet, check)
    }
    this.#idleTimer = this.#timers.set('session-idle-timer', idle, check)
  }

  /**
   * The client is gone (GET closed): tell the backend with a TEARDOWN for each session it
   * granted, then close the backend connection (FIN) after its reply or the grace time.
   */
  clientGone (reason: string): void {
    const state = this.#link.state
    if (state === 'closed' || state === 'closing') return
    if (this.#live !== null) { this.#live.clientGone(reason); return }
    this.#closeReason = reason
    if (state !== 'connected' || this.#granted.size === 0) { this.close(reason, 'ok'); return }
    this.#outcome = 'ok'
    const url = this.#controlUrl ?? '*'
    const teardowns: Buffer[] = []
    for (const id of this.#granted.keys()) {
      const headers: Header[] = [['CSeq', String(++this.#lastCseq)], ['Session', id], ['User-Agent', 'tunnelgate']]
      const body = Buffer.alloc(0)
      const td: RtspRequest = { kind: 'request', method: 'TEARDOWN', uri: url, version: 'RTSP/1.0', headers, body }
      teardowns.push(serializeMessage(td))
    }
    this.#granted.clear()
    this.#link.teardown(teardowns)
  }

  /** Close everything now. Idempotent. */
  close (reason: string, outcome: string): void {
    if (this.closed) return
    this.#link.close()
    this.#closeReason = reason
    this.#outcome = outcome
    this.#timers.clear(this.#idleTimer)
    this.#out.clearStall()
    this.#replies.clear()
    this.#live?.closed()
    this.#client.close()
    this.#deps.metrics.tunnelsActive.dec()
    this.#deps.metrics.tunnelsTotal.inc({ outcome, transport: this.#info.transport })
    this.#log.info({
      event: 'tunnel-closed',
      transport: this.#info.transport,
      client: this.#info.clientAddress,
      userAgent: this.#info.userAgent,
      path: this.#publicPath,
      backend: this.backendName,
      durationMs: Date.now() - this.#openedAt,
      bytesClientToBackend: this.#link.bytes,
      bytesBackendToClient: this.#out.bytes,
      reason,
      outcome
    }, 'tunnel closed')
    for (const cb of this.#onClose) cb(reason)
  }
}

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
