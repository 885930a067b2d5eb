/**
 * An RTSP-over-WebSocket client connection as a ProxySession client side (the second way in,
 * beside HttpTunnel): each binary message from the client carries part of the RTSP-over-TCP byte
 * stream; each write towards the client leaves as one binary message. ProxySession writes every
 * RTSP response on its own and runs of `$` frames on their own, so every response reaches the
 * player in a message of its own with nothing after an SDP body (media-stream-library's parser
 * takes everything after a response head as its body).
 *
 * Server-originated RTSP requests (OPTIONS/GET_PARAMETER keepalives, ANNOUNCE, REDIRECT) are
 * answered by the session on the client's behalf (`serverRequests: 'answer'`): the library throws
 * on any message that is not a response or a `$` frame.
 *
 * The handshake (101) is written by the caller; this class starts at the first frame.
 */
import { refuseConnection } from './refuse.js'
import type net from 'node:net'
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import type { GatewayMetrics } from '../core/metrics.js'
import { RtspDemuxer } from './codec/demux.js'
import { browserSdpMessage } from './codec/sdp/browser.js'
import { getHeader, type Header } from './codec/rtsp-message.js'
import type { HttpHead } from './codec/http-head.js'
import { buildHttpError } from './codec/http-head.js'
import {
  CLOSE_GOING_AWAY, CLOSE_NORMAL, OP_BINARY, OP_CLOSE, OP_PONG, WsFrameDecoder,
  checkHandshake, closePayload, encodeFrame, frameHeader
} from './codec/websocket-frame.js'
import { ProxySession, type SessionDeps, type SessionInfo } from '../session/proxy-session.js'
import type { ClientSide } from '../session/client-side.js'
import { contained, reportFault, type EntryPoint, type FaultOwner } from '../core/containment.js'
import type { OutputLedger } from '../session/socket-output.js'
import { SocketClientSide } from './socket-client.js'

export class WebSocketClient extends SocketClientSide implements ClientSide, FaultOwner {
  readonly serverRequests = 'answer' as const
  readonly #metrics: GatewayMetrics
  readonly #log: Logger
  readonly #decoder: WsFrameDecoder
  readonly #demux: RtspDemuxer
  #session: ProxySession | null = null
  #closed = false
  /** Close code to send when the session closes us (set by a client close or a protocol error). */
  #closeCode = CLOSE_GOING_AWAY
  #closeReason = 'stream ended'
  #drainCbs: Array<() => void> = []

  constructor (
    socket: net.Socket, deps: { config: Config, metrics: GatewayMetrics, logger: Logger, output?: OutputLedger | null }
  ) {
    // The budget covers data frames, pongs and the close frame alike.
    super(socket, deps.config.limits.clientOutputBytes, deps.output ?? null)
    this.#metrics = deps.metrics
    this.#log = deps.logger
    const l = deps.config.limits
    this.#decoder = new WsFrameDecoder({ maxMessageBytes: l.wsMessageBytes, requireMask: true })
    this.#demux = new RtspDemuxer({
      maxHeadBytes: l.rtspHeadBytes, maxHeaders: l.rtspHeaders, maxBodyBytes: l.rtspBodyBytes
    })
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 30_000)
    socket.on('drain', () => { for (const cb of this.#drainCbs) cb() })
    socket.on('error', () => {})
    socket.on('close', contained(this, 'ws-close', () => {
      if (this.#session !== null) this.#session.clientGone('client-closed')
      this.#closed = true
    }))
  }

  get faultTag (): string { return this.#session?.faultTag ?? '' }

  /** FaultOwner: a throw in this connection's handlers closes its session. */
  fault (err: unknown, where: EntryPoint): void {
    if (this.#session !== null) { this.#session.fault(err, where); return }
    reportFault(this.#metrics, this.#log, where, err, { transport: 'websocket' })
    this.socket.destroy()
  }

  get closed (): boolean { return this.#closed }

  /** Attach the session and start reading (`initial`: frame bytes read with the handshake). */
  start (session: ProxySession, initial: Buffer): void {
    this.#session = session
    const input = contained(this, 'ws-data', (chunk: Buffer) => this.#input(chunk))
    this.socket.on('data', input)
    if (initial.length > 0) input(initial)
    this.socket.resume()
  }

  #input (chunk: Buffer): void {
    const session = this.#session
    if (session === null || this.#closed || session.closed) return
    session.touch()
    for (const ev of this.#decoder.push(chunk)) {
      switch (ev.kind) {
        case 'message':
          for (const u of this.#demux.push(ev.data)) {
            if (session.closed) return
            session.handleClientUnit(u)
          }
          break
        case 'ping':
          this.#frame(encodeFrame(OP_PONG, ev.data))
          break
        case 'pong':
          break
        case 'close':
          // Echo the close (RFC 6455 §5.5.1), then the session tears the backend down.
          this.#closeCode = ev.code ?? CLOSE_NORMAL
          this.#closeReason = ''
          session.clientGone('client-closed')
          return
        case 'error':
          this.#metrics.errorsTotal.inc({ code: ev.code })
          this.#log.info(
            { transport: 'websocket', code: ev.code, reason: ev.reason }, 'bad WebSocket frame: connection closed'
          )
          this.#closeCode = ev.closeCode
          this.#closeReason = ev.reason
          session.clientGone('client-protocol-error')
          return
      }
    }
  }

  #frame (buf: Buffer): boolean { return this.#closed ? true : this.out.write(buf) }

  // ClientSide
  write (buf: Buffer, done?: () => void): boolean {
    if (this.#closed || this.socket.destroyed) { done?.(); return true }
    // media-stream-library takes only a 2-byte AAC config (codec/sdp/browser.ts). Reduced here, where
    // every response to a WebSocket client passes whole (proxied replies and live fan-out viewers'
    // replies from src/live/ alike); `$` frame runs start with 0x24 and pass untouched.
    if (buf[0] === 0x52) buf = browserSdpMessage(buf)
    return this.out.writeBoth(frameHeader(OP_BINARY, buf.length), buf, done)
  }

  onDrain (cb: () => void): void { this.#drainCbs.push(cb) }

  close (): void {
    if (this.#closed) return
    this.#closed = true
    const s = this.socket
    if (!s.destroyed) {
      // 1001 (going away) when the stream or backend ended: media-stream-library reports it as onServerClose.
      this.out.write(encodeFrame(OP_CLOSE, closePayload(this.#closeCode, this.#closeReason)))
      s.end()
    }
    setTimeout(() => s.destroy(), 1000).unref()
  }
}

export interface WebSocketEntry {
  clientAddress: string
  acceptedAt: number
  /** Stream path a token bound the session to (RTSP requests for other paths get 403). */
  allowedPath?: string
  user?: string
  id?: string
  relay?: string
}

/**
 * On the relay that keeps the socket: answer the upgrade (101, subprotocol echoed) and start an
 * RTSP session with a WebSocket client side. Null (and an HTTP 400 sent) when the handshake is bad;
 * the front door checked it already, so that only happens for a relay node fed by a broken portal.
 */
export function openWebSocketSession (
  deps: SessionDeps, socket: net.Socket, head: HttpHead, rest: Buffer, entry: WebSocketEntry
): ProxySession | null {
  const hs = checkHandshake(head)
  if (!hs.ok) {
    deps.metrics.errorsTotal.inc({ code: hs.code })
    socket.on('error', () => {})
    refuseConnection(socket, buildHttpError(hs.status, 'Bad Request', hs.headers))
    return null
  }
  socket.write(hs.reply)
  const client = new WebSocketClient(socket, deps)
  const info: SessionInfo = {
    transport: 'websocket',
    clientAddress: entry.clientAddress,
    userAgent: header(head.headers, 'User-Agent') ?? '',
    // `OPTIONS *` before any URL routes by the token's stream, else by '/'.
    entryPath: entry.allowedPath ?? '/',
    startedAt: entry.acceptedAt,
    ...(entry.allowedPath === undefined ? {} : { allowedPath: entry.allowedPath }),
    ...(entry.id === undefined ? {} : { id: entry.id }),
    ...(entry.relay === undefined ? {} : { relay: entry.relay }),
    ...(entry.user === undefined ? {} : { user: entry.user })
  }
  const session = new ProxySession(deps, client, info)
  client.start(session, rest)
  return session
}

function header (headers: Header[], name: string): string | undefined { return getHeader({ headers }, name) }
